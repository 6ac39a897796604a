"""The bounds of ``cloudkitty-api``'s own server, with real sockets against
the real process: a listen backlog that holds a burst of connections
while every thread is busy, a fixed number of threads whatever the number
of connections, and a deadline for a client to send its request.

The server runs with ``[api] threads = 2`` and ``client_timeout = 2``.
What the server does is read from the system: the accept queue of its
listening socket (``/proc/net/tcp``) and its threads
(``/proc/<pid>/status``).
"""

import contextlib
import select
import socket
import subprocess
import time

import pytest

from cloudkitty.tests.functional import live_server
from cloudkitty.tests.functional import test_api_cli
from cloudkitty.tests import waiting

THREADS = 2
CLIENT_TIMEOUT = 2.0
#: TCP's first retransmission of a connection request, in seconds: a
#: connection refused by a full accept queue takes at least as long.
SYN_RETRY = 1.0
REQUEST = b'GET / HTTP/1.0\r\n\r\n'


class Server:
    """The ``cloudkitty-api`` process and what the system says of it."""

    def __init__(self, process, port):
        self.process = process
        self.port = port

    def accept_queue(self):
        """Connections waiting for the server to accept them."""
        for table in ('/proc/net/tcp', '/proc/net/tcp6'):
            with open(table) as lines:
                for line in list(lines)[1:]:
                    fields = line.split()
                    if fields[3] == '0A' and \
                            fields[1].endswith(f':{self.port:04X}'):
                        return int(fields[4].split(':')[1], 16)
        raise AssertionError(f'nothing listens on {self.port}')

    def threads(self):
        with open(f'/proc/{self.process.pid}/status') as status:
            for line in status:
                if line.startswith('Threads:'):
                    return int(line.split()[1])
        raise AssertionError('no thread count')

    def connect(self):
        return socket.create_connection(('127.0.0.1', self.port), timeout=10)

    def get(self):
        """``GET /`` on a connection of its own: the status line."""
        with contextlib.closing(self.connect()) as connection:
            connection.sendall(REQUEST)
            return read_all(connection).split(b'\r\n', 1)[0]


def read_all(connection):
    chunks = []
    while chunk := connection.recv(65536):
        chunks.append(chunk)
    return b''.join(chunks)


@pytest.fixture(scope='module')
def server(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp('api-server')
    config, port, log = test_api_cli.write_config(
        tmp_path, threads=THREADS, client_timeout=CLIENT_TIMEOUT)
    with open(tmp_path / 'stderr', 'wb') as stderr:
        process = subprocess.Popen(
            [test_api_cli.BIN / 'cloudkitty-api', '--config-file', config],
            stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        status, _body = test_api_cli._wait_for_port(process, port, log)
        assert status == 200
        yield Server(process, port)
    finally:
        live_server.stop_process(process)
    assert process.returncode == 0, live_server.log_tail(log)


@contextlib.contextmanager
def connections():
    """A list to put client sockets in, closed on exit."""
    opened = []
    try:
        yield opened
    finally:
        for connection in opened:
            connection.close()


def held(server, opened):
    """Both threads held by connections that send nothing, accepted."""
    opened.extend(server.connect() for _ in range(THREADS))
    assert waiting.wait_for(lambda: server.accept_queue() == 0, 5)


def test_a_burst_waits_in_the_backlog_while_every_thread_is_busy(server):
    burst = 300
    with connections() as opened:
        held(server, opened)
        pending = {}
        for _ in range(burst):
            connection = socket.socket()
            connection.setblocking(False)
            connection.connect_ex(('127.0.0.1', server.port))
            pending[connection] = time.monotonic()
            opened.append(connection)
        # Each connection is established by the system at once, none is
        # refused and tried again: the backlog holds them all.
        slowest = 0.0
        deadline = time.monotonic() + 10
        while pending and time.monotonic() < deadline:
            _, writable, _ = select.select([], list(pending), [], 0.1)
            for connection in writable:
                error = connection.getsockopt(socket.SOL_SOCKET,
                                              socket.SO_ERROR)
                assert error == 0, error
                slowest = max(slowest,
                              time.monotonic() - pending.pop(connection))
        assert not pending
        assert slowest < SYN_RETRY
        assert server.accept_queue() == burst
        for connection in opened[THREADS:]:
            connection.setblocking(True)
            connection.settimeout(30)
            connection.sendall(REQUEST)
        # The threads freed, every connection of the burst is served.
        for connection in opened[:THREADS]:
            connection.close()
        statuses = {read_all(connection).split(b'\r\n', 1)[0]
                    for connection in opened[THREADS:]}
    assert statuses == {b'HTTP/1.0 200 OK'}


def test_threads_are_bounded_whatever_the_connections(server):
    threads = server.threads()
    count = 40
    with connections() as opened:
        for _ in range(count):
            connection = server.connect()
            # A request that never ends: each holds a thread, if it has one.
            connection.sendall(b'GET / HTTP/1.0\r\nX-Slow: ')
            opened.append(connection)
        # The server took as many connections as it has threads; the others
        # wait in the backlog, costing it nothing.
        assert waiting.wait_for(
            lambda: server.accept_queue() == count - THREADS, 5), (
            f'{server.accept_queue()} connections waiting, '
            f'{server.threads()} threads (were {threads})')
        assert server.threads() == threads
    assert server.get() == b'HTTP/1.0 200 OK'


def test_a_slow_client_is_cut_at_client_timeout(server):
    with contextlib.closing(server.connect()) as connection:
        connection.sendall(b'GET / HTTP/1.0\r\n')
        started = time.monotonic()
        # It holds one thread; the other serves.
        assert server.get() == b'HTTP/1.0 200 OK'
        closed = None
        # A header byte every 0.1 s: never long without a byte, never done.
        while time.monotonic() - started < CLIENT_TIMEOUT + 3:
            readable, _, _ = select.select([connection], [], [], 0.1)
            if readable:
                try:
                    if connection.recv(1024) == b'':
                        closed = time.monotonic() - started
                        break
                except ConnectionResetError:
                    closed = time.monotonic() - started
                    break
            try:
                connection.sendall(b'x')
            except (BrokenPipeError, ConnectionResetError):
                closed = time.monotonic() - started
                break
        assert closed is not None, 'the slow client is still connected'
        assert CLIENT_TIMEOUT - 0.2 <= closed < CLIENT_TIMEOUT + 1.5
    assert server.get() == b'HTTP/1.0 200 OK'
