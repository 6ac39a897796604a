"""``cloudkitty-api``: serve the API with the standard library's WSGI server.

For a quick start or development; in production run
``cloudkitty.wsgi.api:application`` under a WSGI server (uwsgi, mod_wsgi,
gunicorn).
"""

import logging
import signal
import socketserver
import sys
from wsgiref import simple_server

from oslo_config import cfg

from cloudkitty.api import app
from cloudkitty import service

LOG = logging.getLogger(__name__)


class _Server(socketserver.ThreadingMixIn, simple_server.WSGIServer):
    """One thread per connection: a dashboard's parallel requests do not
    wait on each other."""

    daemon_threads = True


def _stop(signum, _frame):
    raise SystemExit(0)


def main(argv=None):
    """Serve on ``[api] host`` and ``port`` until SIGTERM or Ctrl-C;
    returns 0."""
    conf = service.prepare_service(
        sys.argv[1:] if argv is None else argv, cfg.CONF)
    application = app.load_app(conf)
    server = simple_server.make_server(conf.api.host, conf.api.port,
                                       application, server_class=_Server)
    LOG.info('Serving the API on http://%s:%s (auth_strategy: %s)',
             conf.api.host, conf.api.port, conf.auth_strategy)
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
