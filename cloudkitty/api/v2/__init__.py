"""API v2: one module per resource, voluptuous validation (see :mod:`.base`).

Every v2 route is a line of :data:`ROUTES`: ``(method, path)`` to the
:class:`~cloudkitty.api.v2.base.Endpoint` serving it. A path is relative to
``/v2``; a ``{name}`` segment matches any one segment, handed to the
handler positionally. :meth:`V2Controller._lookup` is the one place Pecan
enters v2 below ``/v2`` itself: the handlers are plain functions, and
neither a controller tree nor a signature tells Pecan what to call.
"""

import pecan
import webob.exc

from cloudkitty.api.v2 import dataframes
from cloudkitty.api.v2 import rating
from cloudkitty.api.v2 import scope
from cloudkitty.api.v2 import summary
from cloudkitty.api.v2 import task
from cloudkitty.api import versions

#: ``{(method, path): endpoint}``: every v2 route.
ROUTES = {
    ('GET', 'dataframes'): dataframes.get_dataframes,
    ('POST', 'dataframes'): dataframes.add_dataframes,
    ('GET', 'rating/modules'): rating.list_modules,
    ('GET', 'rating/modules/{module_id}'): rating.get_module,
    ('PUT', 'rating/modules/{module_id}'): rating.update_module,
    ('GET', 'scope'): scope.list_scopes,
    ('PUT', 'scope'): scope.reset_scopes,
    ('PATCH', 'scope'): scope.update_scope,
    ('POST', 'scope'): scope.create_scope,
    ('GET', 'summary'): summary.get_summary,
    ('GET', 'task/reprocesses'): task.list_reprocesses,
    ('POST', 'task/reprocesses'): task.schedule_reprocessing,
    ('GET', 'task/reprocesses/{scope_id}'): task.list_scope_reprocesses,
}


class RouteTable:
    """``(method, path)`` of a request to its endpoint and path arguments.

    ``routes`` is a mapping like :data:`ROUTES`. A path matches a route's
    when both have as many segments and every segment is the same or the
    route's is a ``{name}``; a route without ``{name}`` that matches wins.
    """

    def __init__(self, routes):
        # {segments of the path: {method: endpoint}}
        self._paths = {}
        for (method, path), endpoint in routes.items():
            segments = tuple(None if part.startswith('{') else part
                             for part in path.split('/'))
            self._paths.setdefault(segments, {})[method] = endpoint

    def _methods(self, segments):
        """``({method: endpoint}, path arguments)`` of the route matching
        ``segments``, or ``(None, None)``."""
        methods = self._paths.get(segments)
        if methods is not None:
            return methods, ()
        for route, methods in self._paths.items():
            if len(route) == len(segments) and all(
                    part is None or part == segment
                    for part, segment in zip(route, segments)):
                return methods, tuple(
                    segment for part, segment in zip(route, segments)
                    if part is None)
        return None, None

    def find(self, method, segments):
        """``(endpoint, path arguments)`` serving ``method`` on the path
        of ``segments`` (one trailing empty segment, a trailing slash, is
        ignored).

        Raises ``webob.exc.HTTPNotFound`` for a path no route has, and
        ``webob.exc.HTTPMethodNotAllowed``, with ``allow`` set to the
        path's methods, for a method it does not serve.
        """
        segments = tuple(segments)
        if segments[-1:] == ('',):
            segments = segments[:-1]
        methods, arguments = self._methods(segments) if all(segments) \
            else (None, None)
        if methods is None:
            raise webob.exc.HTTPNotFound()
        endpoint = methods.get(method)
        if endpoint is None:
            error = webob.exc.HTTPMethodNotAllowed()
            error.allow = sorted(methods)
            raise error
        return endpoint, arguments


class V2Controller(versions.VersionIndex):
    """``/v2``, and every route of :data:`ROUTES` below it."""

    version_id = 'v2'

    def __init__(self, routes=None):
        self._routes = RouteTable(ROUTES if routes is None else routes)

    @pecan.expose()
    def _lookup(self, *remainder):
        endpoint, arguments = self._routes.find(pecan.request.method,
                                                remainder)
        return endpoint.respond, list(arguments)
