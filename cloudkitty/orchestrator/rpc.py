"""Scope resets and quotes: from the API to the processors over oslo.messaging.

The API holds a :class:`ProcessorClient`; every processor host runs one
RPC server (:func:`get_server`, the ``cloudkitty-rpc`` worker of
``cloudkitty-processor``) with a :class:`ProcessorEndpoint`, listening on
the topic ``cloudkitty`` of ``[DEFAULT] transport_url``.

- ``reset_state`` is a *cast* to the topic, one per scope: the broker hands
  each message to exactly one server, which waits (up to
  ``[orchestrator] reset_lock_timeout``) for the scope's tooz lock, so the
  reset never runs beside the rating of that scope, then sets the scope's
  state and deletes its stored data from the new timestamp on. A fanout
  would have every processor try; with a non-blocking lock a scope being
  rated would make them all give up, and with a blocking one they would all
  reset it in turn. One message per scope lets several processors share a
  reset of many scopes, and one busy scope does not hold up the others.
  A reset whose lock stays busy past the timeout, or that fails, is logged
  by the processor and dropped (a cast has nobody to answer to).
  The cast is published *mandatory* (oslo.messaging's ``at_least_once``):
  a broker that has no queue for the topic returns it instead of dropping
  it, and the API answers 503 rather than accepting a reset nobody will
  apply. That is the case when no processor runs, and after a broker
  restart until the processors have declared their queues again (queues
  that were not durable do not survive it).
- ``quote`` is a *call* with a timeout (``[api] quote_timeout``): a server
  prices the frame with the enabled rating modules and their current rules
  and answers the total.

oslo.messaging sends JSON: Decimals travel as strings, dates as ISO 8601
strings, and both are parsed back on arrival (:func:`frame_to_wire`,
:func:`frame_from_wire`); a float never carries a price.
"""

import contextlib
import datetime
import importlib
import logging
import threading
import time

from oslo_config import cfg
import oslo_messaging
from oslo_messaging import opts as messaging_opts

from cloudkitty import dataframe
from cloudkitty import rating

LOG = logging.getLogger(__name__)

TOPIC = 'cloudkitty'
VERSION = '1.0'
# Connection attempts of the API before a send counts as failed; without a
# bound the rabbit driver retries forever and the request never ends.
SEND_RETRY = 2
# Resets are returned by the broker when no queue takes them (see above).
MANDATORY = oslo_messaging.TransportOptions(at_least_once=True)
# Seconds between two attempts at a busy scope's lock.
LOCK_POLL_INTERVAL = 0.25

_SCOPE_PARTS = ('scope_key', 'fetcher', 'collector')

# Option groups oslo.messaging reads from the conf it is given but
# registers on cfg.CONF only (and leaves out of its list_opts()); its own
# ConfFixture registers them from these places, as register_opts() does.
_GLOBAL_ONLY_OPTS = (
    ('oslo_messaging._metrics.client', 'oslo_messaging_metrics'),
    ('oslo_messaging._tracing.client', 'oslo_messaging_tracing'),
)


class ProcessorUnavailable(Exception):
    """No processor could be reached, or none answered in time."""


class QuoteFailed(Exception):
    """The processor that took the quote could not price it."""


def register_opts(conf):
    """Register oslo.messaging's ``[DEFAULT]`` options (``transport_url``,
    ``rpc_response_timeout``...) on ``conf``; harmless if already there."""
    for group, options in messaging_opts.list_opts():
        if group is None:
            conf.register_opts(options)
    for module_name, name in _GLOBAL_ONLY_OPTS:
        try:
            module = importlib.import_module(module_name)
        except ImportError:  # not in this oslo.messaging version
            continue
        conf.register_opts(getattr(module, name), group=name)
    return conf


def is_configured(conf):
    """Whether ``[DEFAULT] transport_url`` is set (in a file, on the command
    line or by an override); oslo.messaging's own default does not count."""
    register_opts(conf)
    location = conf.get_location('transport_url').location
    return location not in (cfg.Locations.opt_default,
                            cfg.Locations.set_default)


def get_transport(conf, url=None):
    """The RPC transport of ``url`` (default: ``[DEFAULT] transport_url``).

    Nothing connects before the first message or the server's start.
    """
    register_opts(conf)
    return oslo_messaging.get_rpc_transport(conf, url=url)


# The wire format -----------------------------------------------------------

def frame_to_wire(frame):
    """``frame`` as JSON-native values: Decimals and dates as strings."""
    return {
        'period': {'begin': frame.start.isoformat(),
                   'end': frame.end.isoformat()},
        'usage': {type_: [_point_to_wire(point) for point in points]
                  for type_, points in frame.itertypes()},
    }


def _point_to_wire(point):
    wire = point.as_dict(mutable=True)
    wire['vol']['qty'] = str(point.qty)
    wire['rating']['price'] = str(point.price)
    return wire


def frame_from_wire(wire):
    """The :class:`~cloudkitty.dataframe.DataFrame` of :func:`frame_to_wire`.

    Raises ``ValueError`` for anything else, a float quantity or price
    included (it would not be exact).
    """
    for points in (wire.get('usage') or {}).values():
        for point in points or ():
            numbers = ((point.get('vol') or {}).get('qty'),
                       (point.get('rating') or {}).get('price', '0'))
            if not all(isinstance(number, str) for number in numbers):
                raise ValueError(f'quantities and prices travel as strings, '
                                 f'got {numbers!r}')
    return dataframe.DataFrame.from_dict(wire)


def price_from_wire(value):
    """The Decimal of a price sent as a string; ``ValueError`` otherwise."""
    if not isinstance(value, str):
        raise ValueError(f'a price travels as a string, got {value!r}')
    return dataframe.to_decimal(value)


def total_price(frame):
    """The sum of the prices of ``frame``'s points (a Decimal)."""
    return sum((point.price for _type, point in frame.iterpoints()),
               dataframe.to_decimal(0))


def price_quote(frame, modules, states):
    """Price ``frame`` as a quote and return the total (a Decimal).

    ``modules`` is ``{name: module}``, ``states`` the modules' stored
    states (:meth:`~cloudkitty.storage_state.ModuleStateManager.get_all`).
    The enabled modules run in descending priority, each with the rules
    valid at the frame's start (the time of the request).
    """
    for module in rating.enabled_pipeline(modules, states):
        module.reload_config(frame.start)
        frame = module.quote(frame)
    return total_price(frame)


# The API's side -------------------------------------------------------------

class ProcessorClient:
    """What the API asks of the processors.

    :param transport: an oslo.messaging RPC transport (:func:`get_transport`)
    :param quote_timeout: seconds to wait for a quote's answer
    :param owns_transport: :meth:`close` cleans the transport up
    :param topic: the processors' topic (tests use their own)
    """

    def __init__(self, transport, quote_timeout, owns_transport=False,
                 topic=TOPIC):
        self._transport = transport
        self._owns_transport = owns_transport
        self._client = oslo_messaging.get_rpc_client(
            transport, oslo_messaging.Target(topic=topic, version=VERSION),
            retry=SEND_RETRY)
        self._quote_timeout = quote_timeout

    @classmethod
    def from_conf(cls, conf):
        """A client on ``[DEFAULT] transport_url``, ``[api] quote_timeout``."""
        return cls(get_transport(conf), conf.api.quote_timeout,
                   owns_transport=True)

    def reset_state(self, scopes, last_processed_timestamp):
        """Ask for each scope's reset; returns once the messages are sent.

        ``scopes`` is a list of ``{"scope_id", "scope_key", "fetcher",
        "collector"}``, ``last_processed_timestamp`` an aware datetime.
        Raises :class:`ProcessorUnavailable` if the broker cannot be
        reached or no processor listens (the scopes before the failure
        were sent).
        """
        timestamp = last_processed_timestamp.isoformat()
        cast = self._client.prepare(transport_options=MANDATORY)
        for scope in scopes:
            message = {'scope_id': scope['scope_id'],
                       **{part: scope[part] for part in _SCOPE_PARTS}}
            try:
                cast.cast({}, 'reset_state', scope=message,
                          last_processed_timestamp=timestamp)
            except oslo_messaging.MessageUndeliverable:
                raise ProcessorUnavailable(
                    f'the reset of scope {scope["scope_id"]} was returned '
                    f'by the broker: no processor listens (none runs, or '
                    f'none has reconnected since the broker restarted)'
                ) from None
            except Exception as exc:  # drivers raise their own errors
                raise ProcessorUnavailable(
                    f'the reset of scope {scope["scope_id"]} could not be '
                    f'sent to the processors: {exc.__class__.__name__}: '
                    f'{_first_line(exc)}') from exc

    def quote(self, frame):
        """The total price of ``frame`` (a Decimal), priced by a processor.

        Raises :class:`ProcessorUnavailable` when no processor answers
        within the timeout (or the broker is unreachable, or the processor
        cannot take the message) and :class:`QuoteFailed` when the
        processor failed to price it.
        """
        call = self._client.prepare(timeout=self._quote_timeout)
        wire = frame_to_wire(frame)
        try:
            answer = call.call({}, 'quote', frame=wire)
        except oslo_messaging.MessagingTimeout:
            raise ProcessorUnavailable(
                f'no processor answered the quote within '
                f'{self._quote_timeout:g}s') from None
        except Exception as exc:  # drivers raise their own errors
            raise ProcessorUnavailable(
                f'the quote could not be handed to the processors: '
                f'{exc.__class__.__name__}: {_first_line(exc)}') from exc
        if not isinstance(answer, dict):
            raise QuoteFailed(f'unexpected answer {answer!r}')
        if 'error' in answer:
            raise QuoteFailed(str(answer['error']))
        try:
            return price_from_wire(answer.get('price'))
        except ValueError as exc:
            raise QuoteFailed(str(exc)) from None

    def close(self):
        """Release the transport (its connections and threads) if owned."""
        if self._owns_transport:
            self._transport.cleanup()


def _first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0] if text else ''


# The processors' side -----------------------------------------------------

@contextlib.contextmanager
def hold_waiting(locks, scope_id, timeout, stop_event,
                 interval=LOCK_POLL_INTERVAL):
    """Take the scope's lock, trying again until ``timeout`` seconds passed.

    ``locks`` is a :class:`~cloudkitty.orchestrator.lock.ScopeLocks`, whose
    attempts do not block; polling them (rather than a blocking acquire)
    works the same on every tooz driver and gives up at once when
    ``stop_event`` is set, leaving no acquire pending behind. Yields whether
    the lock is held; it is released on leaving the block.
    """
    deadline = time.monotonic() + timeout
    while True:
        with locks.hold(scope_id) as held:
            if held:
                yield True
                return
        left = deadline - time.monotonic()
        if left <= 0 or stop_event.wait(min(interval, left)):
            break
    yield False


class ProcessorEndpoint:
    """The RPC methods a processor serves.

    :param storage: a v2 storage (``delete``)
    :param scope_state: a :class:`~cloudkitty.storage_state.ScopeStateManager`
    :param modules: ``{name: RatingProcessorBase}``
    :param module_state: a
        :class:`~cloudkitty.storage_state.ModuleStateManager`
    :param locks: a :class:`~cloudkitty.orchestrator.lock.ScopeLocks` (the
        locks the rating workers take)
    :param lock_timeout: seconds a reset waits for a scope's lock
    :param period: the collect period, in seconds
    :param stop_event: once set, waiting resets give up
    """

    target = oslo_messaging.Target(version=VERSION)

    def __init__(self, storage, scope_state, modules, module_state, locks,
                 lock_timeout, period, stop_event=None):
        self._storage = storage
        self._period = datetime.timedelta(seconds=period)
        self._scope_state = scope_state
        self._modules = modules
        self._module_state = module_state
        self._locks = locks
        self._lock_timeout = lock_timeout
        self._stop = stop_event or threading.Event()
        # Modules keep the rules they loaded last: one quote at a time.
        self._quote_lock = threading.Lock()
        # Resets run in several executor threads; the coordinator they share
        # is connected by one of them.
        self._locks_start = threading.Lock()

    def reset_state(self, ctxt, scope, last_processed_timestamp):
        """Reset one scope (a cast) so that it is rated again from
        ``last_processed_timestamp`` on: under its lock, set its state to
        the period before (the last one kept), then delete its stored data
        from that time on. Returns whether it was done; failures are
        logged.

        The state is the start of the last period processed: set to the
        timestamp itself, the period beginning then would be deleted and
        never rated again.
        """
        scope_id = scope['scope_id']
        parts = {part: scope[part] for part in _SCOPE_PARTS}
        try:
            timestamp = dataframe.parse_datetime(last_processed_timestamp)
        except ValueError as exc:
            LOG.error('Reset of scope %s refused: %s', scope_id, exc)
            return False
        with self._locks_start:
            self._locks.start()
        with hold_waiting(self._locks, scope_id, self._lock_timeout,
                          self._stop) as held:
            if not held:
                LOG.error('Reset of scope %s to %s abandoned: its lock was '
                          'not free within %gs%s; ask for it again',
                          scope_id, timestamp.isoformat(), self._lock_timeout,
                          ' (processor stopping)' if self._stop.is_set()
                          else '')
                return False
            return self._reset(scope_id, parts, timestamp)

    def _reset(self, scope_id, parts, timestamp):
        # The state first: if the delete fails after it, every period rated
        # again replaces its stored data, so nothing is counted twice; the
        # other order would leave deleted periods marked as processed.
        try:
            self._scope_state.set_last_processed_timestamp(
                scope_id, timestamp - self._period, **parts)
        except Exception as exc:  # noqa: BLE001 - database down, logged
            LOG.error('Reset of scope %s to %s failed, nothing changed: '
                      '%s: %s', scope_id, timestamp.isoformat(),
                      exc.__class__.__name__, exc)
            return False
        try:
            self._storage.delete(begin=timestamp, end=None,
                                 filters={parts['scope_key']: scope_id})
        except Exception as exc:  # noqa: BLE001 - storage down, logged
            LOG.error('Reset of scope %s to %s: state set, but deleting its '
                      'stored data from then on failed (the periods rated '
                      'again replace theirs): %s: %s', scope_id,
                      timestamp.isoformat(), exc.__class__.__name__, exc)
            return False
        LOG.info('Scope %s (%s=%s, fetcher %s, collector %s) reset to %s: '
                 'stored data from that time on deleted, to be rated again '
                 '(state set to %s, the last period kept)',
                 scope_id, parts['scope_key'], scope_id, parts['fetcher'],
                 parts['collector'], timestamp.isoformat(),
                 (timestamp - self._period).isoformat())
        return True

    def quote(self, ctxt, frame):
        """Price a quote frame (a call): ``{"price": "<total>"}``, or
        ``{"error": "<why>"}`` (logged here with its traceback)."""
        try:
            frame = frame_from_wire(frame)
            with self._quote_lock:
                total = price_quote(frame, self._modules,
                                    self._module_state.get_all())
        except Exception as exc:  # answered to the API, and logged
            LOG.exception('Quote failed')
            return {'error': f'{exc.__class__.__name__}: {_first_line(exc)}'}
        return {'price': str(total)}


def get_server(transport, server, endpoint, topic=TOPIC):
    """The RPC server of ``endpoint`` on ``topic``, named ``server`` (the
    host: a stable name, so that no queue is left behind per process).
    Not started."""
    return oslo_messaging.get_rpc_server(
        transport, oslo_messaging.Target(topic=topic, server=server),
        [endpoint], access_policy=oslo_messaging.DefaultRPCAccessPolicy)
