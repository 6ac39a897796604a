"""Errors a controller raises to answer with a 4xx status.

Each carries its HTTP ``code`` and ``faultstring``: WSME renders them as the
v1 error ``{"faultcode": "Client", "faultstring", "debuginfo"}``, the v2
layer as ``{"message"}``. Nothing below ``cloudkitty.api`` raises them.
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
