"""The one place the API reaches into Pecan's internals.

Pecan 1.x reads the signature of the controllers on a request's route
several times per request (``pecan.util.getargspec``, called from
``pecan.core``, ``pecan.rest`` and ``pecan.routing``), building a
namedtuple class each time: about 1.5 ms of CPU per v1 request (WSME
handlers under ``RestController``), more than the handler itself often
takes. A signature never changes: :func:`remember_argspecs` has those
modules call a cached ``getargspec``.

v2 needs no patch (its routes are a table, :mod:`cloudkitty.api.v2`); it
gains too, as Pecan still reads the signature of the endpoint it calls.

:func:`content_types` reads the media types a controller is served in,
which Pecan keeps in a private attribute (``pecan.util._cfg``).

What this relies on, checked by ``cloudkitty/tests/unit/api/
test_pecan_adapter.py`` so that a Pecan release changing it fails a test
rather than the service: each module of :data:`PATCHED_MODULES` has a
module-level ``getargspec`` that it calls by that name, ``pecan.util._cfg``
holds what ``pecan.expose`` says, and ``requirements.txt`` bounds Pecan
to the releases checked.
"""

import functools

from pecan import core
from pecan import rest
from pecan import routing
from pecan import util

#: The modules whose ``getargspec`` is replaced.
PATCHED_MODULES = (core, rest, routing, util)

#: Signatures remembered, at most; bound methods of controllers built per
#: request (none in this API) would otherwise grow the cache.
CACHE_SIZE = 1024


def remember_argspecs():
    """Have Pecan inspect a controller's signature once, not per request.

    A bound method is remembered under its instance and function, which
    our controllers (built once) keep stable. An unhashable callable is
    inspected each time. Idempotent; the cache statistics are
    ``util.getargspec.cache_info()``.
    """
    original = util.getargspec
    if getattr(original, 'remembers_argspecs', False):
        return
    remembered = functools.lru_cache(maxsize=CACHE_SIZE)(original)

    @functools.wraps(original)
    def getargspec(method):
        try:
            return remembered(method)
        except TypeError:  # an unhashable callable
            return original(method)
    getargspec.remembers_argspecs = True
    getargspec.cache_info = remembered.cache_info
    for module in PATCHED_MODULES:
        if getattr(module, 'getargspec', None) is original:
            module.getargspec = getargspec


def content_types(controller):
    """The media types ``controller`` (a handler exposed with
    ``pecan.expose``) is served in, sorted; none for ``None``."""
    if controller is None:
        return []
    return sorted(util._cfg(controller).get('content_types', {}))
