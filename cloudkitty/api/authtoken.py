"""keystonemiddleware's token check, except for the version documents.

A module of its own so that keystonemiddleware (and what it brings) is
imported only by the ``cloudkitty+keystone`` pipeline: a ``noauth`` API
worker does not carry it. ``cloudkitty.api.middleware:AuthTokenMiddleware``,
the name ``api_paste.ini`` files use, still finds it.
"""

from keystonemiddleware import auth_token

#: Paths served without a token (the versions documents).
PUBLIC_PATHS = ('/', '/v1', '/v2')


class AuthTokenMiddleware(auth_token.AuthProtocol):
    """``auth_token.AuthProtocol`` reading ``[keystone_authtoken]`` from
    the service's ``ConfigOpts``, letting :data:`PUBLIC_PATHS` through."""

    def __init__(self, app, conf):
        super().__init__(app, {'oslo_config_config': conf})

    def __call__(self, environ, start_response):
        if (environ.get('PATH_INFO', '').rstrip('/') or '/') in PUBLIC_PATHS:
            return self._app(environ, start_response)
        return super().__call__(environ, start_response)
