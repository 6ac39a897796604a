"""The processors' side of the RPC protocol (:mod:`cloudkitty.messaging`).

Every processor host runs one RPC server (:func:`get_server`, the
``cloudkitty-rpc`` worker of ``cloudkitty-processor``) with a
:class:`ProcessorEndpoint`: it applies the scope resets the API casts, each
under the scope's tooz lock (:func:`hold_waiting`), and prices the quotes
the API calls for (:func:`price_quote`).
"""

import contextlib
import datetime
import logging
import threading
import time

import oslo_messaging

from cloudkitty import messaging
from cloudkitty import rating
from cloudkitty import timeutils

LOG = logging.getLogger(__name__)

# Seconds between two attempts at a busy scope's lock.
LOCK_POLL_INTERVAL = 0.25


def price_quote(frame, modules, states):
    """Price ``frame`` as a quote and return the total (a Decimal).

    ``modules`` is ``{name: module}``, ``states`` the modules' stored
    states (:meth:`~cloudkitty.storage_state.ModuleStateManager.get_all`).
    The enabled modules run in descending priority, each with the rules
    valid at the frame's start (the time of the request)
    (:meth:`cloudkitty.rating.Pipeline.quote`).
    """
    return messaging.total_price(rating.Pipeline(modules, states).quote(frame))


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

    target = oslo_messaging.Target(version=messaging.VERSION)

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
        parts = {part: scope[part] for part in messaging.SCOPE_PARTS}
        try:
            timestamp = timeutils.parse(last_processed_timestamp)
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
            frame = messaging.frame_from_wire(frame)
            with self._quote_lock:
                total = price_quote(frame, self._modules,
                                    self._module_state.get_all())
        except Exception as exc:  # answered to the API, and logged
            LOG.exception('Quote failed')
            return {'error': f'{exc.__class__.__name__}: {messaging.first_line(exc)}'}
        return {'price': str(total)}


def get_server(transport, server, endpoint,
               topic=messaging.TOPIC):
    """The RPC server of ``endpoint`` on ``topic``, named ``server`` (the
    host: a stable name, so that no queue is left behind per process).
    Not started."""
    return oslo_messaging.get_rpc_server(
        transport, oslo_messaging.Target(topic=topic, server=server),
        [endpoint], access_policy=oslo_messaging.DefaultRPCAccessPolicy)
