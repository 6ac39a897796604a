"""WSGI entry point of the API: ``cloudkitty.wsgi.api:application``.

The configuration file is ``$CLOUDKITTY_CONFIG_FILE``, by default
``/etc/cloudkitty/cloudkitty.conf``; the pipeline is the one of
``[api] paste_config`` matching ``[DEFAULT] auth_strategy``.
"""

import os

from oslo_config import cfg

from cloudkitty.api import app
from cloudkitty import service

CONFIG_FILE_ENV = 'CLOUDKITTY_CONFIG_FILE'
DEFAULT_CONFIG_FILE = '/etc/cloudkitty/cloudkitty.conf'


def init_application(conf=None, environ=None):
    """Prepare ``conf`` (default: ``cfg.CONF``, which third-party rating
    modules read) from the configuration file and build the pipeline."""
    environ = os.environ if environ is None else environ
    config_file = environ.get(CONFIG_FILE_ENV, DEFAULT_CONFIG_FILE)
    conf = service.prepare_service(['--config-file', config_file],
                                   cfg.CONF if conf is None else conf)
    return app.load_app(conf)


def __getattr__(name):
    # ``application`` is built when the WSGI server first asks for it, so
    # that importing this module (docs, tests) reads no configuration.
    if name == 'application':
        application = init_application()
        globals()['application'] = application
        return application
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
