"""Per-scope locks, so that one scope is rated by one worker at a time.

The locks live in a tooz coordination backend (``[orchestrator]
coordination_url``: ``file://`` by default, ``redis://``, ``etcd3+http://``
... for several hosts). They are taken without blocking: a scope whose lock
is held is some other worker's, and this one moves on.

A coordination backend that is down must never crash a worker: starting the
coordinator, taking or releasing a lock log the failure and report "not
acquired", and the coordinator is restarted on the next attempt. tooz's
drivers retry for a long while before giving up (a minute for redis), so
those calls run in a helper thread that a stop request stops waiting for.
"""

import contextlib
import logging
import os
import socket
import threading

from tooz import coordination
import tooz

LOG = logging.getLogger(__name__)

LOCK_PREFIX = 'cloudkitty-scope-'


def lock_name(scope_id):
    """The tooz lock name of a scope (shared with the API's scope reset)."""
    return f'{LOCK_PREFIX}{scope_id}'.encode()


def member_id(host=None, worker_id=None):
    """A coordination member id unique to this process."""
    parts = [host or socket.gethostname()]
    if worker_id is not None:
        parts.append(str(worker_id))
    parts.append(str(os.getpid()))
    return '-'.join(parts).encode('utf-8')


class ScopeLocks:
    """Non-blocking per-scope locks over one tooz coordinator.

    ``ScopeLocks(url, member)`` does not connect; :meth:`start` (called by
    :meth:`hold` when needed) does, with the heartbeat thread tooz drivers
    need to keep their session and their locks alive (``start_heart``).
    Once ``stop_event`` is set, a backend call still retrying is no longer
    waited for and counts as failed.
    """

    def __init__(self, url, member, coordinator_factory=None,
                 stop_event=None):
        self._url = url
        self._member = member
        self._factory = coordinator_factory or coordination.get_coordinator
        self._stop = stop_event or threading.Event()
        self._coordinator = None

    @property
    def started(self):
        return self._coordinator is not None

    def start(self):
        """Connect to the backend; ``True`` on success, ``False`` (logged)
        if it is unreachable."""
        if self._coordinator is not None:
            return True
        try:
            coordinator = self._factory(self._url, self._member)
            self._call(coordinator.start, start_heart=True)
        except (tooz.ToozError, OSError) as exc:
            LOG.warning('Coordination backend %s unreachable, will retry: '
                        '%s', _safe_url(self._url), exc)
            return False
        self._coordinator = coordinator
        return True

    def stop(self):
        """Disconnect (releasing what the backend still holds for us)."""
        coordinator, self._coordinator = self._coordinator, None
        if coordinator is None:
            return
        try:
            coordinator.stop()
        except (tooz.ToozError, OSError) as exc:
            LOG.warning('Stopping the coordinator failed: %s', exc)

    @contextlib.contextmanager
    def hold(self, scope_id):
        """Try the scope's lock without blocking; yield whether we hold it.

        The lock is released on leaving the block. A backend failure is
        logged and yields ``False``; the coordinator is then restarted on
        the next call.
        """
        lock = self._acquire(scope_id)
        try:
            yield lock is not None
        finally:
            if lock is not None:
                self._release(lock, scope_id)

    def _acquire(self, scope_id):
        if not self.start():
            return None
        try:
            lock = self._coordinator.get_lock(lock_name(scope_id))
            if self._call(lock.acquire, blocking=False):
                return lock
        except (tooz.ToozError, OSError) as exc:
            LOG.warning('Could not take the lock of scope %s, skipping it '
                        'for now: %s', scope_id, exc)
            self.stop()
            return None
        LOG.debug('Scope %s is locked by another worker', scope_id)
        return None

    def _release(self, lock, scope_id):
        try:
            self._call(lock.release)
        except (tooz.ToozError, OSError) as exc:
            # The backend expires it (redis, etcd) or the process's end
            # frees it (file); nothing else to do.
            LOG.warning('Could not release the lock of scope %s: %s',
                        scope_id, exc)
            self.stop()

    def _call(self, function, **kwargs):
        """``function(**kwargs)``, given up on (``tooz.ToozError``) once
        stopping."""
        outcome = {}

        def call():
            try:
                outcome['value'] = function(**kwargs)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                outcome['error'] = exc
            finally:
                done.set()

        done = threading.Event()
        threading.Thread(target=call, daemon=True,
                         name='coordination').start()
        while not done.wait(0.1):
            if self._stop.is_set():
                raise tooz.ToozError('stopping: gave up waiting for the '
                                     'coordination backend')
        if 'error' in outcome:
            raise outcome['error']
        return outcome.get('value')


class NoLocks:
    """Stand-in for :class:`ScopeLocks` when locking is not wanted."""

    started = True

    def start(self):
        return True

    def stop(self):
        pass

    @contextlib.contextmanager
    def hold(self, scope_id):
        yield True


def _safe_url(url):
    """``url`` without credentials nor query (it may hold a password)."""
    scheme, sep, rest = url.split('?', 1)[0].partition('://')
    if sep and '@' in rest.split('/', 1)[0]:
        rest = rest.split('@', 1)[1]
    return f'{scheme}{sep}{rest}'
