"""A WSGI application served over real HTTP on a free loopback port.

For the tests whose client is another process or a real HTTP client (the
``cloudkitty`` CLI, keystonemiddleware's callers): :func:`serve` runs the
standard library's WSGI server in a thread, one thread per connection, and
stops it on exit. :func:`free_port`, :func:`stop_process` and
:func:`log_tail` serve the tests that run a server process of their own.
"""

import contextlib
import signal
import socket
import socketserver
import subprocess
import threading
from wsgiref import simple_server


class _ThreadingServer(socketserver.ThreadingMixIn, simple_server.WSGIServer):
    daemon_threads = True


class _QuietHandler(simple_server.WSGIRequestHandler):
    """Keeps the access log out of the test output."""

    def log_message(self, format, *args):
        pass


@contextlib.contextmanager
def serve(application, host='127.0.0.1'):
    """Serve ``application`` on ``host``; yield its base URL (no slash)."""
    server = simple_server.make_server(host, 0, application,
                                       server_class=_ThreadingServer,
                                       handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever,
                              name='live-wsgi-server', daemon=True)
    thread.start()
    try:
        yield f'http://{host}:{server.server_port}'
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def free_port(host='127.0.0.1'):
    """A TCP port nothing listens on now (for a server started elsewhere)."""
    with contextlib.closing(socket.socket()) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def stop_process(process, sig=signal.SIGTERM, timeout=30):
    """Send ``sig`` to a server's ``subprocess.Popen`` (unless it already
    exited) and wait for its end; past ``timeout`` seconds, kill it."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def log_tail(path, size=2000):
    """The last ``size`` characters of the log file at ``path`` ('' if it
    cannot be read)."""
    try:
        with open(path, errors='replace') as stream:
            return stream.read()[-size:]
    except OSError:
        return ''
