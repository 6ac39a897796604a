"""The Prometheus client against servers of the test's own that stall.

No Prometheus is needed: a loopback socket plays a server that stops
answering part way.
"""

import socket
import threading
import time

import pytest

from cloudkitty import prometheus_client

HEAD = (b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n'
        b'Content-Length: 90\r\n\r\n')


@pytest.fixture
def stalling():
    """``serve(sent)``: the URL of a server that reads a request, sends
    ``sent`` and then nothing, until the test ends."""
    listener = socket.socket()
    listener.bind(('127.0.0.1', 0))
    listener.listen(8)
    done = threading.Event()
    connections = []

    def serve(sent):
        def answer():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            connections.append(connection)
            connection.recv(65536)
            connection.sendall(sent)
            done.wait(30)
        threading.Thread(target=answer, daemon=True).start()
        return f'http://127.0.0.1:{listener.getsockname()[1]}'
    yield serve
    done.set()
    for connection in connections:
        connection.close()
    listener.close()


@pytest.mark.parametrize('sent, words', [
    # Not even the status line.
    (b'', 'no answer within 0.5s'),
    # The status line, the headers and the start of the body: requests
    # reports this read timeout as a ConnectionError (psf/requests#5430),
    # which must not read as "the server is unreachable".
    (HEAD + b'{"status": "succ', 'the answer stalled: nothing more within '
                                 '0.5s'),
], ids=['before-the-status-line', 'in-the-body'])
def test_a_server_that_stops_answering_times_out(stalling, sent, words):
    url = stalling(sent)
    client = prometheus_client.PrometheusClient(url, timeout=0.5)
    began = time.monotonic()
    with pytest.raises(prometheus_client.PrometheusError) as info:
        client.query('up')
    assert time.monotonic() - began < 3
    assert str(info.value) == f'{url}/api/v1/query: {words}'


@pytest.fixture
def trickling():
    """The URL of a server that answers one byte of its body every 0.1 s
    (each read of the client gets something in time), for a minute."""
    listener = socket.socket()
    listener.bind(('127.0.0.1', 0))
    listener.listen(8)
    done = threading.Event()

    def answer():
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(HEAD.replace(b'90', b'600'))
            for _ in range(600):
                if done.wait(0.1):
                    return
                try:
                    connection.sendall(b' ')
                except OSError:
                    return
    threading.Thread(target=answer, daemon=True).start()
    yield f'http://127.0.0.1:{listener.getsockname()[1]}'
    done.set()
    listener.close()


def test_an_answer_that_trickles_is_cut_at_the_timeout(trickling):
    client = prometheus_client.PrometheusClient(trickling, timeout=0.5)
    began = time.monotonic()
    with pytest.raises(prometheus_client.PrometheusError) as info:
        client.query('up')
    assert time.monotonic() - began < 2
    assert str(info.value) == (f'{trickling}/api/v1/query: the answer took '
                               'more than 0.5s')
