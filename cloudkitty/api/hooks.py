"""The one place the API's collaborators are built, and the request context.

:class:`Backends` is built once per application from the configuration;
:class:`BackendsHook` hands it to every request as ``pecan.request.backends``
and :class:`ContextHook` sets ``pecan.request.context`` (an
``oslo_context.context.RequestContext`` with ``is_admin`` decided by the
``context_is_admin`` policy). Controllers, including a rating module's
``config_controller``, take what they need from these two attributes.
"""

import functools
import json
import logging
import uuid

from oslo_context import context as oslo_context
from pecan import hooks
from pecan import util as pecan_util
from sqlalchemy import exc as sa_exc
import webob
from webob import exc as webob_exc

from cloudkitty.api import errors
from cloudkitty.api import utils
from cloudkitty import db
from cloudkitty import messaging
from cloudkitty import policies
from cloudkitty.policies import base as base_policies
from cloudkitty import rating
from cloudkitty import storage
from cloudkitty import storage_state
from cloudkitty.storage import v2 as storage_v2
from cloudkitty.storage_state import collector as collector_state
from cloudkitty.storage_state import reprocessing
from cloudkitty.storage_state import scope_admin

LOG = logging.getLogger(__name__)


def refuse_scope_reset(scopes, last_processed_timestamp):
    """The scope reset used when ``[DEFAULT] transport_url`` is not set.

    ``scopes`` is a list of ``{"scope_id", "scope_key", "fetcher",
    "collector"}``; ``last_processed_timestamp`` an aware datetime. Only a
    processor resets a scope (under its lock), and none can be reached:
    raises :class:`ProcessorUnavailable` (503), and logs the request.
    """
    LOG.warning('Reset of %d scope(s) to %s refused: [DEFAULT] '
                'transport_url is not set, so no processor can carry it '
                'out: %s', len(scopes), last_processed_timestamp.isoformat(),
                ', '.join(scope['scope_id'] for scope in scopes))
    raise ProcessorUnavailable(
        'Scope resets are carried out by the processors, reached over '
        '[DEFAULT] transport_url, which is not set on this API.')


class RatingModules:
    """The installed rating modules, loaded at start and on reload.

    ``loader(conf, module_state)`` returns ``{name: module}``; it defaults
    to :func:`cloudkitty.rating.load_modules` (the installed entry points),
    handing ``engine`` to the modules that take one.
    """

    def __init__(self, conf, module_state, loader=None, engine=None):
        self._conf = conf
        self._module_state = module_state
        self._loader = loader or functools.partial(rating.load_modules,
                                                   engine=engine)
        self._modules = {}
        self.reload()

    def reload(self):
        """Load the rating modules installed now."""
        self._modules = self._loader(self._conf, self._module_state)

    def all(self):
        """Every module, sorted by name, with its stored state loaded."""
        states = self._module_state.get_all()
        for name, module in self._modules.items():
            module.load_state(states.get(name))
        return [self._modules[name] for name in sorted(self._modules)]

    def get(self, name):
        """Module ``name`` with its stored state loaded, or ``None``."""
        module = self._modules.get(name)
        if module is not None:
            module.load_state(self._module_state.get_all().get(name))
        return module

    def quote(self, frame):
        """The total price (a Decimal) of ``frame`` with the enabled
        modules and their current rules (:meth:`cloudkitty.rating.Pipeline.
        quote`), computed in this process. While a module that runs
        in the processors only (``processor_only``: pyscripts) is enabled,
        :class:`ProcessorUnavailable` (503): none is reachable from here."""
        pipeline = rating.Pipeline(self._modules,
                                   self._module_state.get_all())
        remote = [module.module_name for module in pipeline.modules
                  if module.processor_only]
        if remote:
            LOG.warning('Quote refused: the %s module(s) run in the '
                        'processors only, and [DEFAULT] transport_url is '
                        'not set', ', '.join(remote))
            raise ProcessorUnavailable(
                f'The rating module(s) {", ".join(remote)} price quotes in '
                f'the processors only, reached over [DEFAULT] '
                f'transport_url, which is not set on this API.')
        return messaging.total_price(pipeline.quote(frame))


class ProcessorUnavailable(errors.APIError):
    """No processor could take the request: 503."""

    code = 503


class QuoteFailed(errors.APIError):
    """The processor could not price the quote: 500, logged."""

    code = 500


class ProcessorRPC:
    """The scope reset and quote of :class:`Backends` over RPC.

    Wraps a :class:`cloudkitty.messaging.ProcessorClient` (``client``)
    and turns its failures into API errors.
    """

    def __init__(self, client):
        self.client = client

    def scope_reset(self, scopes, last_processed_timestamp):
        try:
            self.client.reset_state(scopes, last_processed_timestamp)
        except messaging.ProcessorUnavailable as exc:
            LOG.error('Scope reset not sent: %s', exc)
            raise ProcessorUnavailable(
                f'The processors cannot be reached: {exc}.') from None

    def quote(self, frame):
        try:
            return self.client.quote(frame)
        except messaging.ProcessorUnavailable as exc:
            LOG.error('Quote not answered: %s', exc)
            raise ProcessorUnavailable(
                f'The processors cannot be reached: {exc}.') from None
        except messaging.QuoteFailed as exc:
            LOG.error('Quote failed on the processor: %s', exc)
            raise QuoteFailed('The processor could not price the '
                              'quote.') from None

    def close(self):
        self.client.close()


class Backends:
    """Everything the controllers use, built from ``conf``.

    ``storage_backend``, ``scope_reset``, ``quote`` and ``module_loader``
    (see :class:`RatingModules`) may be handed in (tests, or a service
    embedding the API); otherwise the storage comes from
    ``[storage] backend`` and the rating modules from their entry points.
    ``engine`` is the process's one engine of ``[database] connection``
    (:func:`cloudkitty.db.get_engine`, with the ``[database]`` pool
    settings), handed to the state managers and to the rating modules
    that take one.
    Scope resets and quotes go to the processors over RPC
    (:class:`ProcessorRPC`, kept as ``processor_rpc``) when ``[DEFAULT]
    transport_url`` is set; without it quotes are priced in this process
    (:meth:`RatingModules.quote`) and scope resets are refused with a 503
    (:func:`refuse_scope_reset`).

    ``scope_reset(scopes, last_processed_timestamp)`` returns once the
    reset is handed over; ``quote(frame)`` returns the frame's total price
    (a Decimal). Both raise :class:`~cloudkitty.api.errors.APIError`.
    """

    def __init__(self, conf, storage_backend=None, scope_reset=None,
                 quote=None, module_loader=None):
        self.conf = conf
        self.engine = db.get_engine(conf)
        self.storage = storage_backend or storage.get_storage(
            conf, engine=self.engine, replica_reads=True)
        self.scope_state = scope_admin.ScopeAdmin(
            self.engine, conf.collect.scope_key, conf.fetcher.backend,
            conf.collect.collector)
        self.module_state = storage_state.ModuleStateManager(self.engine)
        self.rating_modules = RatingModules(conf, self.module_state,
                                            module_loader, self.engine)
        self.reprocessing = reprocessing.ReprocessingScheduleManager(
            self.engine)
        self.collector_mappings = collector_state.CollectorMappingManager(
            self.engine)
        self.collector_states = collector_state.CollectorStateManager(
            self.engine)
        self.processor_rpc = None
        if (scope_reset is None or quote is None) and \
                messaging.is_configured(conf):
            # Only then: registering the options imports oslo.messaging.
            messaging.register_opts(conf)
            self.processor_rpc = ProcessorRPC(
                messaging.ProcessorClient.from_conf(conf))
            scope_reset = scope_reset or self.processor_rpc.scope_reset
            quote = quote or self.processor_rpc.quote
        self.scope_reset = scope_reset or refuse_scope_reset
        self.quote = quote or self.rating_modules.quote
        self.enforcer = policies.make_enforcer(conf)


class BackendsHook(hooks.PecanHook):
    """Hands the application's :class:`Backends` to each request."""

    def __init__(self, backends):
        self._backends = backends

    def on_route(self, state):
        state.request.backends = self._backends


class ContextHook(hooks.PecanHook):
    """Sets ``request.context``: who calls, for which project, as admin or not.

    With ``auth_strategy = noauth`` every caller is an administrator and
    the project comes from the ``X-Project-Id`` header; with ``keystone``
    the identity headers are those keystonemiddleware set from the token.
    """

    def __init__(self, auth_strategy, enforcer):
        self._noauth = auth_strategy == 'noauth'
        self._enforcer = enforcer

    def on_route(self, state):
        environ = state.request.environ
        if self._noauth:
            context = oslo_context.RequestContext.from_environ(
                environ, roles=['admin'], is_admin=True)
        else:
            context = oslo_context.RequestContext.from_environ(environ)
            context.is_admin = self._enforcer.authorize(
                base_policies.CONTEXT_IS_ADMIN, {}, context, do_raise=False)
        state.request.context = context


# Marks, in the WSGI environ, a HEAD request handled as a GET.
_HEAD = 'cloudkitty.head'


class HeadHook(hooks.PecanHook):
    """Answers ``HEAD`` on every route that answers ``GET``, as ``GET`` does.

    The request is routed, authorised and handled as a ``GET``; its method
    is set back to ``HEAD`` before the response is sent, and WebOb then
    sends the status and headers (``Content-Length`` included) without the
    body. An ``Allow`` header that lists ``GET`` lists ``HEAD`` too.
    """

    # First to route, last to finish: every other hook sees a GET.
    priority = 1

    def on_route(self, state):
        if state.request.method == 'HEAD':
            state.request.environ[_HEAD] = True
            state.request.method = 'GET'

    def after(self, state):
        if state.request.environ.pop(_HEAD, False):
            state.request.method = 'HEAD'
        allow = state.response.allow
        if allow and 'GET' in allow and 'HEAD' not in allow:
            state.response.allow = sorted([*allow, 'HEAD'])


class InputHook(hooks.PecanHook):
    """Refuses, with a 400, a request body no route takes: one that is not
    a JSON object, nests deeper than :data:`cloudkitty.api.utils.
    MAX_BODY_DEPTH` levels or holds a lone surrogate (the path and query
    string are checked before, by :class:`cloudkitty.api.middleware.
    RequestText`).

    Every route taking a body takes an object; checking all input here
    spares the handlers, WSME (which fails on some non-objects) and the
    databases (none stores a lone surrogate) from the rest. It
    checks on routing, before Pecan reads a JSON body for the routing
    arguments (and fails on deep nesting).
    """

    def on_route(self, state):
        if state.request.body:
            utils.json_body()
            if state.request.body.strip() == b'null':
                # No body, to WSME too (which hands a v1 handler None for
                # its object, not a 400 for a missing one).
                state.request.body = b''


class ErrorHook(hooks.PecanHook):
    """Answers in the API version's error format what the controllers did not.

    Routing errors (unknown path, method not allowed), the
    :class:`~cloudkitty.api.errors.APIError` raised outside a handler (by a
    ``_lookup``, for instance) and unexpected
    exceptions become ``{"faultcode", "faultstring", "debuginfo"}`` under
    ``/v1`` and ``{"message"}`` elsewhere; the latter are logged with their
    traceback and answered with a generic 500. A database that cannot be
    used (:func:`cloudkitty.db.is_unavailable`) is a 503,
    :class:`~cloudkitty.api.errors.DatabaseUnavailable`, logged in one line;
    every 503 says when to try again (``Retry-After``).
    """

    def on_error(self, state, e):
        if not isinstance(e, errors.APIError) and db.is_unavailable(e):
            LOG.error('The database is unavailable (%s %s): %s',
                      state.request.method, state.request.path, e)
            e = errors.DatabaseUnavailable()
        elif _refused_value(e):
            # A value the database cannot hold (too long for its column,
            # out of its type's range): the caller's to change. The
            # database's own words stay in the log.
            LOG.info('A value refused by the database (%s %s): %s',
                     state.request.method, state.request.path, e)
            e = errors.BadRequest('A value is too long, too large or not '
                                  'valid for the database.')
        if isinstance(e, errors.APIError):
            status, message = e.code, e.faultstring
        elif isinstance(e, webob_exc.HTTPMethodNotAllowed):
            status = e.code
            message = (f'Method {state.request.method} is not allowed on '
                       f'{state.request.path}.')
        elif isinstance(e, webob_exc.HTTPNotAcceptable):
            status = e.code
            served = sorted(pecan_util._cfg(state.controller).get(
                'content_types', {})) if state.controller else []
            message = (f'This resource cannot be served in a media type the '
                       f'Accept header ({state.request.accept}) allows')
            message += f": it is served as {', '.join(served)}." if served \
                else '.'
        elif isinstance(e, webob_exc.HTTPException):
            status, message = e.code, e.explanation
            if e.detail:
                message = f'{message} {e.detail}'
        else:
            request_id = _request_id(state.request)
            LOG.exception('Unexpected error on %s %s (request %s)',
                          state.request.method, state.request.path,
                          request_id)
            status = 500
            message = (f'The server failed to answer this request '
                       f'(request {request_id}); its log tells why.')
        if state.request.path.startswith('/v1/') or \
                state.request.path == '/v1':
            faultcode = 'Client' if status < 500 else 'Server'
            body = {'faultcode': faultcode, 'faultstring': message,
                    'debuginfo': None}
        else:
            body = {'message': message}
        response = webob.Response(status=status,
                                  content_type='application/json',
                                  charset='utf-8')
        response.text = json.dumps(body)
        if isinstance(e, webob_exc.HTTPMethodNotAllowed) and e.allow:
            response.allow = e.allow
        if status == 503:
            response.headers['Retry-After'] = str(getattr(
                e, 'retry_after', errors.ServiceUnavailable.retry_after))
        return response


def _refused_value(error):
    """Whether ``error`` is a database refusing a value: too long for its
    column, out of its type's range, or a character its driver does not
    send (psycopg refuses NUL characters before sending the statement)."""
    if isinstance(error, (sa_exc.DataError, storage_v2.InvalidData)):
        return True
    return isinstance(error, sa_exc.StatementError) and isinstance(
        error.orig, ValueError)


def _request_id(request):
    """The request's id: oslo.middleware's, else the request context's."""
    request_id = request.environ.get('openstack.request_id')
    if not request_id:
        context = getattr(request, 'context', None)
        request_id = getattr(context, 'request_id', None)
    if not request_id:
        request_id = request.environ.setdefault(
            'openstack.request_id', f'req-{uuid.uuid4()}')
    return request_id


def make_hooks(conf, backends):
    """The hooks of the application, in order."""
    return [HeadHook(), ContextHook(conf.auth_strategy, backends.enforcer),
            BackendsHook(backends), InputHook(), ErrorHook()]
