"""``cloudkitty-api``: serve the API with the standard library's WSGI server.

For a quick start or development; in production run
``cloudkitty.wsgi.api:application`` under a WSGI server (uwsgi, mod_wsgi,
gunicorn).
"""

import logging
import sys
from wsgiref import simple_server

from oslo_config import cfg

from cloudkitty.api import app
from cloudkitty import service

LOG = logging.getLogger(__name__)


def main(argv=None):
    conf = service.prepare_service(
        sys.argv[1:] if argv is None else argv, cfg.CONF)
    application = app.load_app(conf)
    server = simple_server.make_server(conf.api.host, conf.api.port,
                                       application)
    LOG.info('Serving the API on http://%s:%s (auth_strategy: %s)',
             conf.api.host, conf.api.port, conf.auth_strategy)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == '__main__':
    sys.exit(main())
