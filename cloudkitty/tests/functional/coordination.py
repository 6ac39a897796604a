"""Coordination backends of the tests, started by the tests themselves.

:class:`Etcd` runs ``etcd`` (Debian package ``etcd-server``) and
:class:`Redis` a ``redis-server`` of its own (never the machine's shared
one, which other tests use), each on free loopback ports, with its data in
a temporary directory (the tests that only share a redis use the
machine's, in a namespace of their own: :mod:`shared_servers`). A missing
binary or server skips the test, except under ``CI=true`` where it fails.
"""

import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

from cloudkitty.tests.functional import live_server


def missing(what):
    """Skip the test (fail it under CI) because ``what`` is missing."""
    if os.environ.get('CI') == 'true':
        pytest.fail(f'{what} (required under CI)')
    pytest.skip(what)


def _listening(port):
    try:
        socket.create_connection(('127.0.0.1', port), timeout=1).close()
    except OSError:
        return False
    return True


class Server:
    """A server process on free loopback ports; ``argv()`` says how to run
    it, ``ready()`` whether it serves."""

    binary = None
    package = None

    def __init__(self, directory):
        self.directory = directory
        os.makedirs(directory, exist_ok=True)
        self.port = live_server.free_port()
        self.process = None
        self.log_path = os.path.join(directory, f'{self.binary}.log')
        self.path = shutil.which(self.binary)
        if self.path is None:
            missing(f'{self.binary} is not installed (Debian package '
                    f'"{self.package}")')

    def start(self, timeout=30):
        """Start the server; return ``self`` once it serves."""
        with open(self.log_path, 'ab') as log:
            self.process = subprocess.Popen(
                self.argv(), stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, cwd=self.directory,
                start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f'{self.binary} exited '
                            f'{self.process.returncode}: {self.log_tail()}')
            if self.ready():
                return self
            time.sleep(0.05)
        self.stop()
        pytest.fail(f'{self.binary} not ready after {timeout}s: '
                    f'{self.log_tail()}')

    def stop(self, sig=signal.SIGTERM):
        """Signal the server and wait until it has exited."""
        live_server.stop_process(self.process, sig)

    def log_tail(self):
        return live_server.log_tail(self.log_path)

    def argv(self):
        raise NotImplementedError

    def ready(self):
        return _listening(self.port)


class Redis(Server):
    """A ``redis-server`` of the test's own, keeping nothing on disk."""

    binary = 'redis-server'
    package = 'redis-server'

    @property
    def url(self):
        return f'redis://127.0.0.1:{self.port}'

    def argv(self):
        return [self.path, '--port', str(self.port), '--bind', '127.0.0.1',
                '--save', '', '--appendonly', 'no', '--daemonize', 'no',
                '--dir', self.directory]

    def ready(self):
        try:
            with socket.create_connection(('127.0.0.1', self.port),
                                          timeout=1) as sock:
                sock.sendall(b'PING\r\n')
                return sock.recv(16).startswith(b'+PONG')
        except OSError:
            return False


class Etcd(Server):
    """A one-member ``etcd`` cluster."""

    binary = 'etcd'
    package = 'etcd-server'

    def __init__(self, directory):
        super().__init__(directory)
        self.peer_port = live_server.free_port()

    @property
    def url(self):
        return f'etcd3+http://127.0.0.1:{self.port}'

    def argv(self):
        client = f'http://127.0.0.1:{self.port}'
        peer = f'http://127.0.0.1:{self.peer_port}'
        return [self.path, '--name', 'ck',
                '--data-dir', os.path.join(self.directory, 'data'),
                '--listen-client-urls', client,
                '--advertise-client-urls', client,
                '--listen-peer-urls', peer,
                '--initial-advertise-peer-urls', peer,
                '--initial-cluster', f'ck={peer}',
                '--log-level', 'warn']

    def ready(self):
        try:
            with socket.create_connection(('127.0.0.1', self.port),
                                          timeout=1) as sock:
                sock.sendall(b'GET /health HTTP/1.0\r\n\r\n')
                return b'"health":"true"' in sock.recv(4096)
        except OSError:
            return False
