"""The one place the API reaches into WSME's internals.

WSME answers every exception of a v1 handler (``wsmeext.pecan.wsexpose``)
itself: a 500 with the exception's text (a driver's error holds the SQL
statement), or the status of its ``code``, never with the ``Retry-After``
of a 503. It builds that answer with ``wsme.api.format_exception``, which
``wsexpose`` looks up on the module at each error, inside its ``except``
clause. :func:`pass_server_errors` replaces that function so that every
error that is not the caller's (a 4xx) is raised again and reaches
:class:`cloudkitty.api.hooks.ErrorHook`, as the errors of the other
routes do.

``cloudkitty/tests/unit/api/test_wsme_adapter.py`` checks what this
relies on (``wsexpose`` calling ``wsme.api.format_exception`` by that
name, with the ``sys.exc_info()`` triple first), so that a WSME release
changing it fails a test rather than the service.
"""

import functools

import wsme.api


def _server_side(error):
    code = getattr(error, 'code', None)
    return not (isinstance(code, int) and 400 <= code < 500)


def pass_server_errors():
    """Have the v1 handlers let every error that is not the caller's (a
    4xx) reach the hooks: they answer a value the database refuses with a
    400, a database out of reach with a 503, anything else with a 500
    naming no internals. Idempotent."""
    original = wsme.api.format_exception
    if getattr(original, 'passes_server_errors', False):
        return

    @functools.wraps(original)
    def format_exception(excinfo, *args, **kwargs):
        if _server_side(excinfo[1]):
            raise excinfo[1]
        return original(excinfo, *args, **kwargs)
    format_exception.passes_server_errors = True
    wsme.api.format_exception = format_exception
