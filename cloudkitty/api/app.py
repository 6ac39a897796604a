"""Building the API: the Pecan application and the paste pipeline around it.

:func:`setup_app` builds the application (what tests and embedders use):
Pecan behind the request body limit
(:class:`cloudkitty.api.middleware.RequestBodyLimit`) and the check of
the path and query string (:class:`~cloudkitty.api.middleware.
RequestText`); :func:`load_app`
wraps it in the pipeline of ``[api] paste_config`` named
``cloudkitty+<auth_strategy>``. The paste factories below receive the
service's ``ConfigOpts`` through the ``configkey`` global option, so that
every middleware reads the configuration the service was started with.

What the application changes in Pecan and WSME is in
:mod:`cloudkitty.api.pecan_adapter` and :mod:`cloudkitty.api.wsme_adapter`.
"""

import os
import uuid

from oslo_config import cfg
from oslo_utils import importutils
from paste import deploy
import pecan

from cloudkitty.api import hooks
from cloudkitty.api import middleware
from cloudkitty.api import pecan_adapter
from cloudkitty.api import root
from cloudkitty.api import wsme_adapter

# ConfigOpts handed to the paste factories while load_app() runs.
_CONFS = {}


def setup_app(conf, backends=None):
    """Return the WSGI application serving ``/``, ``/v1`` and ``/v2``.

    ``backends`` replaces the :class:`cloudkitty.api.hooks.Backends` built
    from ``conf`` (tests hand in one with fakes). A request body over
    ``[api] max_request_body_size`` is refused before Pecan reads it.
    """
    backends = backends or hooks.Backends(conf)
    pecan_adapter.remember_argspecs()
    wsme_adapter.pass_server_errors()
    application = pecan.make_app(
        root.RootController(),
        hooks=hooks.make_hooks(conf, backends),
        debug=conf.api.pecan_debug,
        # Ids may hold dots (metric "image.size") and no slash.
        guess_content_type_from_ext=False,
        force_canonical=False,
    )
    return middleware.RequestBodyLimit(
        middleware.RequestText(application), conf)


def _paste_config(conf):
    path = conf.api.paste_config
    if not os.path.isabs(path):
        path = conf.find_file(path) or path
    if not os.path.exists(path):
        raise cfg.ConfigFilesNotFoundError([conf.api.paste_config])
    return os.path.abspath(path)


def load_app(conf):
    """Return the WSGI pipeline ``cloudkitty+<[DEFAULT] auth_strategy>``."""
    key = str(uuid.uuid4())
    _CONFS[key] = conf
    try:
        return deploy.loadapp(f'config:{_paste_config(conf)}',
                              name=f'cloudkitty+{conf.auth_strategy}',
                              global_conf={'configkey': key})
    finally:
        del _CONFS[key]


def app_factory(global_config, **local_conf):
    """Paste factory of the application."""
    return setup_app(_CONFS[global_config['configkey']])


def filter_factory(global_config, middleware, **local_conf):
    """Paste factory of a middleware built as ``middleware(app, conf)``.

    ``middleware`` is the ``module:Class`` path of an oslo.middleware-style
    class taking the service's ``ConfigOpts``.
    """
    conf = _CONFS[global_config['configkey']]
    middleware_class = importutils.import_class(middleware.replace(':', '.'))

    def wrap(app):
        return middleware_class(app, conf)
    return wrap


def urlmap_factory(loader, global_conf, **local_conf):
    """Paste composite: each ``<path prefix> = <app>`` of the section.

    A request goes to the app of the longest prefix its path starts with
    (at a ``/`` boundary); the path is handed on unchanged.
    """
    routes = sorted(
        ((prefix.rstrip('/'), loader.get_app(name, global_conf=global_conf))
         for prefix, name in local_conf.items()),
        key=lambda route: len(route[0]), reverse=True)

    def dispatch(environ, start_response):
        path = environ.get('PATH_INFO', '')
        for prefix, app in routes:
            if path == prefix or path.startswith(prefix + '/'):
                return app(environ, start_response)
        start_response('404 Not Found', [('Content-Type', 'text/plain')])
        return [b'Not Found']
    return dispatch
