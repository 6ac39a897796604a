"""The API's own WSGI middleware: the request body limit and the check of
the path and query string. The token check is
:class:`cloudkitty.api.authtoken.AuthTokenMiddleware`, still found here by
the name ``api_paste.ini`` files use, and imported only when asked for."""

import importlib
import io
import json
import urllib.parse


def __getattr__(name):
    if name == 'AuthTokenMiddleware':
        return importlib.import_module(
            'cloudkitty.api.authtoken').AuthTokenMiddleware
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


class RequestBodyLimit:
    """Refuses with a 413 a request body over ``[api]
    max_request_body_size`` bytes, before anything reads it.

    A body announced by ``Content-Length`` is judged on that header alone:
    over the limit, not a byte of it is read (within it, WebOb reads no
    more than the announced length). A body without a length
    (chunked, which the WSGI server says with ``wsgi.input_terminated``)
    is read here, up to one byte past the limit at most, and handed on
    whole. Parsing JSON takes about ten times the size of the text in
    memory: the limit bounds what one request can cost.

    The error body is the API's (``{"faultcode", "faultstring",
    "debuginfo"}`` under ``/v1``, ``{"message"}`` elsewhere).
    """

    def __init__(self, app, conf):
        self._app = app
        self._limit = conf.api.max_request_body_size

    def __call__(self, environ, start_response):
        length = environ.get('CONTENT_LENGTH')
        try:
            length = int(length) if length else None
        except ValueError:
            length = None  # WebOb reads no body with an invalid length
        if length is not None and length > self._limit:
            return self._too_large(environ, start_response)
        if length is None and environ.get('wsgi.input_terminated'):
            body = _read_at_most(environ['wsgi.input'], self._limit + 1)
            if len(body) > self._limit:
                return self._too_large(environ, start_response)
            environ['wsgi.input'] = io.BytesIO(body)
            environ['CONTENT_LENGTH'] = str(len(body))
        return self._app(environ, start_response)

    def _too_large(self, environ, start_response):
        return client_error(
            environ, start_response, '413 Request Entity Too Large',
            f'The request body is larger than this API accepts: at most '
            f'{self._limit} bytes ([api] max_request_body_size).')


class RequestText:
    """Refuses with a 400 a path or a query string that is not UTF-8 text,
    or that holds a NUL character (no database stores one), before any
    framework decodes them (Pecan and WebOb fail on the former); a path
    with an empty segment (``a//b``) is a 404."""

    def __init__(self, app):
        self._app = app

    def __call__(self, environ, start_response):
        try:
            # PEP 3333: PATH_INFO holds the bytes as latin-1 characters.
            path = environ.get('PATH_INFO', '').encode('latin-1').decode()
            query = urllib.parse.unquote_to_bytes(
                environ.get('QUERY_STRING', '')).decode()
        except (UnicodeEncodeError, UnicodeDecodeError):
            return client_error(environ, start_response, '400 Bad Request',
                                'The path or the query string is not UTF-8 '
                                'text.')
        if '\x00' in path or '\x00' in query:
            return client_error(environ, start_response, '400 Bad Request',
                                'The path or the query string holds a NUL '
                                'character.')
        if '//' in path:
            # An empty segment names nothing (Pecan would route it to a
            # handler as a missing argument).
            return client_error(environ, start_response, '404 Not Found',
                                'No resource has a path with an empty '
                                'segment.')
        return self._app(environ, start_response)


def client_error(environ, start_response, status, message):
    """Answer ``status`` with ``message`` in the API's error format
    (``{"faultcode", "faultstring", "debuginfo"}`` under ``/v1``,
    ``{"message"}`` elsewhere)."""
    path = environ.get('PATH_INFO', '')
    if path == '/v1' or path.startswith('/v1/'):
        document = {'faultcode': 'Client', 'faultstring': message,
                    'debuginfo': None}
    else:
        document = {'message': message}
    body = json.dumps(document).encode()
    start_response(status, [
        ('Content-Type', 'application/json; charset=UTF-8'),
        ('Content-Length', str(len(body)))])
    return [body]


def _read_at_most(stream, size):
    chunks = []
    while size > 0:
        chunk = stream.read(min(size, 65536))
        if not chunk:
            break
        chunks.append(chunk)
        size -= len(chunk)
    return b''.join(chunks)
