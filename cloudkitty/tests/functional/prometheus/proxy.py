"""An HTTP proxy in front of a real Prometheus that can misbehave.

For the processor tests of a source that is slow or answers garbage: the
processor is configured with the proxy's URL, and the test switches
:attr:`FaultyProxy.mode` while the processor runs. Only the instant
queries (``/api/v1/query``) are affected; every other path, and every
query in mode ``forward``, is passed to Prometheus and answered as it
answers (basic authentication included: the client's headers go through).

Modes of the queries:

``forward``
    Prometheus's answer, as it is.
``stall``
    Nothing is sent back while the mode stays ``stall``; then the query
    goes to Prometheus and its answer back (to a client that has usually
    given up).
``stall_body``
    Prometheus's status line, headers and the first half of its body at
    once, then nothing while the mode stays ``stall_body``, then the rest.
``trickle``
    Prometheus's status line and headers at once, then its body one byte
    every :data:`TRICKLE_SECONDS` while the mode stays ``trickle``, then
    the rest: each read of the client gets data in time, only the whole
    answer is late.
``html``
    HTTP 200, an HTML page (not JSON).
``shape``
    HTTP 200, Prometheus's JSON with each sample's ``value`` reduced to its
    text (``"3"`` instead of ``[1700000000, "3"]``).
``value``
    HTTP 200, Prometheus's JSON with every value replaced by
    :data:`NOT_A_NUMBER`.
``truncated``
    Prometheus's status line and headers, half of its body, then the
    connection closed.
``http503``
    HTTP 503 with a plain text body, as a load balancer sends.
"""

import http.client
import http.server
import json
import threading
import time
import urllib.parse

QUERY_PATH = '/api/v1/query'
TRICKLE_SECONDS = 0.2
NOT_A_NUMBER = 'lots'
MODES = ('forward', 'stall', 'stall_body', 'trickle', 'html', 'shape', 'value',
         'truncated', 'http503')
# Not passed on: they describe one connection, not the message.
# Accept-Encoding too, so that the answers come uncompressed, ready to
# be corrupted.
_HOP_BY_HOP = {'connection', 'keep-alive', 'proxy-connection',
               'transfer-encoding', 'te', 'trailer', 'upgrade', 'host',
               'content-length', 'accept-encoding'}


class FaultyProxy:
    """Proxy of ``upstream`` (a base URL) on a free loopback port.

    ``faulted``: how many queries were answered in a mode other than
    ``forward``. A context manager: stopped on exit.
    """

    def __init__(self, upstream):
        parsed = urllib.parse.urlsplit(upstream)
        self._upstream = (parsed.hostname, parsed.port)
        self._changed = threading.Condition()
        self._mode = 'forward'
        self._closed = False
        self.faulted = 0
        self._server = http.server.ThreadingHTTPServer(
            ('127.0.0.1', 0), _handler(self))
        self._server.daemon_threads = True
        self.url = f'http://127.0.0.1:{self._server.server_port}'
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name='faulty-proxy', daemon=True)
        self._thread.start()

    @property
    def mode(self):
        return self._mode

    @mode.setter
    def mode(self, mode):
        if mode not in MODES:
            raise ValueError(f'unknown mode {mode!r}')
        with self._changed:
            self._mode = mode
            self._changed.notify_all()

    def stop(self):
        with self._changed:
            self._closed = True
            self._mode = 'forward'
            self._changed.notify_all()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.stop()

    def _while(self, mode, seconds):
        """Wait up to ``seconds`` while the mode is ``mode``; whether it
        still is."""
        with self._changed:
            self._changed.wait_for(
                lambda: self._mode != mode or self._closed, seconds)
            return self._mode == mode and not self._closed

    def _count_fault(self):
        with self._changed:
            self.faulted += 1

    def upstream(self, method, path, body, headers):
        """``(status, reason, [(header, value)], body)`` of Prometheus."""
        connection = http.client.HTTPConnection(*self._upstream, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return (response.status, response.reason,
                    [(k, v) for k, v in response.getheaders()
                     if k.lower() not in _HOP_BY_HOP], response.read())
        finally:
            connection.close()


def _handler(proxy):

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = 'HTTP/1.1'

        def log_message(self, format, *args):
            pass

        def do_GET(self):
            self._serve()

        def do_POST(self):
            self._serve()

        def _serve(self):
            length = int(self.headers.get('Content-Length') or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items()
                       if k.lower() not in _HOP_BY_HOP}
            mode = proxy.mode
            if urllib.parse.urlsplit(self.path).path != QUERY_PATH:
                mode = 'forward'
            if mode != 'forward':
                proxy._count_fault()
            try:
                self._answer(mode, body, headers)
            except (BrokenPipeError, ConnectionResetError):
                # The client gave up waiting: what a slow source sees.
                self.close_connection = True

        def _forwarded(self, body, headers):
            return proxy.upstream(self.command, self.path, body, headers)

        def _answer(self, mode, body, headers):
            if mode == 'stall':
                while proxy._while('stall', 1):
                    pass
                mode = 'forward'
            if mode in ('html', 'http503'):
                status, text, kind = (
                    (200, b'<html><body><h1>Sign in</h1></body></html>',
                     'text/html') if mode == 'html' else
                    (503, b'Service Unavailable: no healthy upstream',
                     'text/plain'))
                self._send(status, [('Content-Type', kind)], text)
                return
            status, _, answer_headers, answer = self._forwarded(
                body, headers)
            if mode in ('shape', 'value') and status == 200:
                answer = _corrupt(answer, mode)
            if mode in ('forward', 'shape', 'value') or status != 200:
                self._send(status, answer_headers, answer)
            elif mode == 'trickle':
                self._head(status, answer_headers, len(answer))
                sent = 0
                while sent < len(answer) and proxy._while(
                        'trickle', TRICKLE_SECONDS):
                    self.wfile.write(answer[sent:sent + 1])
                    self.wfile.flush()
                    sent += 1
                self.wfile.write(answer[sent:])
            elif mode == 'stall_body':
                self._head(status, answer_headers, len(answer))
                half = len(answer) // 2
                self.wfile.write(answer[:half])
                self.wfile.flush()
                while proxy._while('stall_body', 1):
                    pass
                self.wfile.write(answer[half:])
            elif mode == 'truncated':
                self._head(status, answer_headers, len(answer))
                self.wfile.write(answer[:len(answer) // 2])
                self.wfile.flush()
                self.close_connection = True
            else:  # pragma: no cover - MODES is checked by the setter
                raise AssertionError(mode)

        def _head(self, status, headers, length):
            self.send_response(status)
            for key, value in headers:
                if key.lower() not in ('date', 'server'):
                    self.send_header(key, value)
            self.send_header('Content-Length', str(length))
            self.end_headers()
            self.wfile.flush()

        def _send(self, status, headers, body):
            self._head(status, headers, len(body))
            self.wfile.write(body)

    return Handler


def _corrupt(answer, mode):
    body = json.loads(answer)
    samples = body['data']['result']
    if not samples:
        # Something to corrupt even where the source had nothing.
        samples.append({'metric': {}, 'value': [time.time(), '1']})
    for sample in samples:
        if mode == 'shape':
            sample['value'] = sample['value'][1]
        else:
            sample['value'][1] = NOT_A_NUMBER
    return json.dumps(body).encode()
