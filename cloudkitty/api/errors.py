"""Errors a controller raises to answer with a 4xx or 503 status.

Each carries its HTTP ``code`` and ``faultstring``: WSME renders them as the
v1 error ``{"faultcode": "Client", "faultstring", "debuginfo"}``, the v2
layer as ``{"message"}`` (a 503, :class:`ServiceUnavailable`, is answered
by :class:`cloudkitty.api.hooks.ErrorHook` in the same formats, with
``faultcode`` ``Server`` and a ``Retry-After`` header). Nothing below
``cloudkitty.api`` raises them.
"""


class APIError(Exception):
    """An error the caller can fix; ``code`` is the HTTP status."""

    code = 400

    def __init__(self, message):
        super().__init__(message)
        self.faultstring = message


class BadRequest(APIError):
    code = 400


class Forbidden(APIError):
    code = 403


class NotFound(APIError):
    code = 404


class Conflict(APIError):
    code = 409


class TooLarge(APIError):
    """The request asks for more than the API takes at once: 413."""

    code = 413


class ServiceUnavailable(APIError):
    """Something the API needs is out of reach for now: 503, answered with
    ``Retry-After: retry_after`` (seconds)."""

    code = 503
    retry_after = 5


class DatabaseUnavailable(ServiceUnavailable):
    """The database cannot be used now (see
    :func:`cloudkitty.db.is_unavailable`); the message names no internals."""

    def __init__(self):
        super().__init__('The database is unavailable. Try again later.')
