"""``cloudkitty-api``: serve the API with the standard library's WSGI server.

For a quick start or development; in production run
``cloudkitty.wsgi.api:application`` under a WSGI server (uwsgi, mod_wsgi,
gunicorn).

The server is bounded by ``[api]`` options: ``threads`` requests are served
at once, one thread each; further connections wait, unaccepted, in the
listen queue of ``backlog`` connections; a client has ``client_timeout``
seconds to send its request line and headers (in all), then as long for
each read of its body or write of the answer.
"""

import io
import logging
import queue
import signal
import sys
import threading
import time
from wsgiref import simple_server

from oslo_config import cfg

from cloudkitty.api import app
from cloudkitty import service

LOG = logging.getLogger(__name__)


class _DeadlineReader(io.RawIOBase):
    """Reads a socket with a timeout: until :attr:`deadline` (a
    ``time.monotonic()`` instant) when it is set, else ``timeout`` seconds
    for each read. Past the deadline, reads raise ``TimeoutError``."""

    def __init__(self, sock, timeout):
        super().__init__()
        self._sock = sock
        self._timeout = timeout
        self.deadline = None

    def readable(self):
        return True

    def readinto(self, buffer):
        timeout = self._timeout
        if self.deadline is not None:
            timeout = self.deadline - time.monotonic()
            if timeout <= 0:
                raise TimeoutError('client too slow')
        self._sock.settimeout(timeout)
        return self._sock.recv_into(buffer)


class _Handler(simple_server.WSGIRequestHandler):
    """wsgiref's request handler, with the server's ``client_timeout`` as
    the deadline of the request line and headers, and as the timeout of
    each later read or write."""

    def setup(self):
        self.timeout = self.server.client_timeout
        super().setup()
        self.rfile.close()  # the socket's own file, replaced:
        self._reader = _DeadlineReader(self.connection, self.timeout)
        self.rfile = io.BufferedReader(self._reader)

    def handle(self):
        self._reader.deadline = time.monotonic() + self.timeout
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if len(self.raw_requestline) > 65536:
                self.requestline = self.request_version = self.command = ''
                self.send_error(414)
                return
            if not self.parse_request():  # answered with an error
                return
        except TimeoutError:
            LOG.info('Connection from %s closed: no complete request '
                     'within %ss ([api] client_timeout)',
                     self.client_address[0], self.timeout)
            return
        except OSError as exc:  # the client went away
            LOG.debug('Connection from %s lost before its request: %s',
                      self.client_address[0], exc)
            return
        finally:
            self._reader.deadline = None
            self.connection.settimeout(self.timeout)
        handler = simple_server.ServerHandler(
            self.rfile, self.wfile, self.get_stderr(), self.get_environ(),
            multithread=True)
        handler.request_handler = self
        handler.run(self.server.get_app())


class Server(simple_server.WSGIServer):
    """wsgiref's WSGI server with ``threads`` worker threads.

    A connection is accepted only when a worker is free to serve it: the
    others wait in the listen queue (``backlog`` long), costing neither a
    thread nor memory here. ``client_timeout`` is the handler's (see
    :class:`_Handler`).
    """

    def __init__(self, address, application, backlog, threads,
                 client_timeout):
        self.request_queue_size = backlog  # listen(), in the constructor
        self.client_timeout = client_timeout
        self._free = threading.Semaphore(threads)
        self._connections = queue.SimpleQueue()
        super().__init__(address, _Handler)
        self.set_app(application)
        for number in range(threads):
            threading.Thread(target=self._work, daemon=True,
                             name=f'cloudkitty-api-{number}').start()

    def get_request(self):
        # Called when a connection is waiting: take it once a worker is
        # free (a signal still interrupts the wait).
        self._free.acquire()
        try:
            return super().get_request()
        except BaseException:
            self._free.release()
            raise

    def process_request(self, request, client_address):
        self._connections.put((request, client_address))

    def handle_error(self, request, client_address):
        LOG.exception('Error serving the connection from %s',
                      client_address[0])

    def _work(self):
        while True:
            request, client_address = self._connections.get()
            try:
                self.finish_request(request, client_address)
            except Exception:  # noqa: BLE001 - one connection, not the server
                self.handle_error(request, client_address)
            finally:
                self.shutdown_request(request)
                self._free.release()


def _stop(signum, _frame):
    raise SystemExit(0)


def main(argv=None):
    """Serve on ``[api] host`` and ``port`` until SIGTERM or Ctrl-C;
    returns 0."""
    conf = service.prepare_service(
        sys.argv[1:] if argv is None else argv, cfg.CONF)
    application = app.load_app(conf)
    options = conf.api
    server = Server((options.host, options.port), application,
                    options.backlog, options.threads, options.client_timeout)
    LOG.info('Serving the API on http://%s:%s (auth_strategy: %s; %d '
             'threads, backlog %d, client timeout %ss)', options.host,
             options.port, conf.auth_strategy, options.threads,
             options.backlog, options.client_timeout)
    signal.signal(signal.SIGTERM, _stop)
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.server_close()
    LOG.info('API stopped')
    return 0


if __name__ == '__main__':
    sys.exit(main())
