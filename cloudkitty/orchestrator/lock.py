"""Per-scope locks, so that one scope is rated by one worker at a time.

The locks live in a tooz coordination backend (``[orchestrator]
coordination_url``: ``file://`` by default, ``redis://``, ``etcd3+http://``
... for several hosts). They are taken without blocking: a scope whose lock
is held is some other worker's, and this one moves on.

With a backend whose group members expire when they stop heartbeating
(redis, etcd3), the rating workers also share the scopes out rather than
all trying every scope's lock: each joins a tooz group and tries only the
scopes that a consistent hash ring of the group's live members gives it
(:meth:`ScopeLocks.share`). A worker that dies leaves the group once its
heartbeat expires (``[orchestrator] member_timeout``), and its scopes go to
the others on their next pass. The lock still guards each period; the
sharing only spares the workers from contending for it.

A coordination backend that is down must never crash a worker: starting the
coordinator, joining the group, reading its members, taking or releasing a
lock log the failure and report "not acquired", and the coordinator is
restarted on the next attempt. tooz's
drivers retry for a long while before giving up (a minute for redis), so
those calls run in a helper thread that a stop request stops waiting for.
"""

import contextlib
import functools
import logging
import os
import socket
import sys
import threading
import time
import urllib.parse

from tooz import coordination
from tooz import hashring
from tooz import locking
import tooz

LOG = logging.getLogger(__name__)

LOCK_PREFIX = 'cloudkitty-scope-'
#: Seconds :meth:`ScopeLocks.still_held` waits for the backend's answer.
CHECK_TIMEOUT = 5

#: Seconds a stopping worker gives the backend to let it leave its group
#: and release its locks (past them, the backend expires both).
STOP_GRACE = 2.0

#: The tooz groups in which the rating and the reprocessing workers share
#: the scopes out.
RATING_GROUP = b'cloudkitty-processors'
REPROCESSING_GROUP = b'cloudkitty-reprocessing'

# The backends (URL schemes) whose group members expire when they stop
# heartbeating, and that take ``membership_timeout`` and ``lock_timeout``
# options. Elsewhere (file://: members never expire) the scopes are not
# shared out: a dead worker would keep its share for ever.
_EXPIRING_MEMBERS = frozenset(['redis', 'etcd3+http', 'etcd3+https'])


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


def shares_scopes(url):
    """Whether the workers share the scopes out on the backend of ``url``
    (its group members expire when they stop heartbeating)."""
    return _scheme(url) in _EXPIRING_MEMBERS


def with_timeouts(url, seconds):
    """``url`` with ``membership_timeout`` and ``lock_timeout`` of
    ``seconds`` where the backend takes them and ``url`` does not set them
    already (other URLs are returned unchanged)."""
    if not shares_scopes(url):
        return url
    base, _, query = url.partition('?')
    options = urllib.parse.parse_qsl(query, keep_blank_values=True)
    given = {key for key, _ in options}
    options += [(key, str(seconds))
                for key in ('membership_timeout', 'lock_timeout')
                if key not in given]
    return f'{base}?{urllib.parse.urlencode(options)}'


def _scheme(url):
    return url.partition('://')[0].lower()


class ScopeLocks:
    """Non-blocking per-scope locks over one tooz coordinator.

    ``ScopeLocks(url, member)`` does not connect; :meth:`start` (called by
    :meth:`hold` when needed) does, with the heartbeat thread tooz drivers
    need to keep their session and their locks alive (``start_heart``).
    Once ``stop_event`` is set, a backend call still retrying is no longer
    waited for and counts as failed.

    With a ``group`` (bytes), :meth:`start` also joins that tooz group
    (creating it if needed), :meth:`share` gives this member's share of
    the scopes and :meth:`share_changed` whether the members changed since
    (read again at most every ``recheck`` seconds); without one,
    :meth:`share` gives every scope and the share never changes.
    """

    def __init__(self, url, member, coordinator_factory=None,
                 stop_event=None, group=None, recheck=1.0):
        self._url = url
        self._member = member
        self._factory = coordinator_factory or coordination.get_coordinator
        self._stop = stop_event or threading.Event()
        self._group = group
        self._recheck = recheck
        self._coordinator = None
        self._held = {}  # scope id -> the tooz lock held for it
        self._members = None
        self._ring = None
        self._checked = 0.0
        self._changed = False

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
        if self._group is not None:
            try:
                self._join()
            except (tooz.ToozError, OSError) as exc:
                LOG.warning('Could not join the group %s of %s, will retry: '
                            '%s', self._group.decode(), _safe_url(self._url),
                            exc)
                self.stop()
                return False
        return True

    def _join(self):
        try:
            self._call(self._coordinator.join_group_create,
                       group_id=self._group)
        except coordination.MemberAlreadyExist:
            pass

    def share(self, scope_ids):
        """This member's share of ``scope_ids`` (a list, in their order).

        Without a group: all of them. With one: the scopes that a
        consistent hash ring of the group's live members maps to this one,
        so that each scope is tried by one worker (a member that stopped
        heartbeating leaves the ring once the backend expires it). A member
        that finds itself dropped from the group (heartbeat late, backend
        restarted empty) joins again. ``None`` when the backend failed
        (logged; the coordinator is restarted on the next call).
        """
        scope_ids = list(scope_ids)
        if self._group is None:
            return scope_ids
        if not self.start():
            return None
        try:
            members = self._live_members()
        except (tooz.ToozError, OSError) as exc:
            LOG.warning('Could not read the members of the group %s, will '
                        'retry: %s', self._group.decode(), exc)
            self.stop()
            return None
        if members != self._members:
            LOG.info('Group %s: %d live members, %s among them; each tries '
                     'only its share of the scopes', self._group.decode(),
                     len(members), self._member.decode())
            self._members = members
            self._ring = hashring.HashRing(members)
        self._checked = time.monotonic()
        self._changed = False
        return [scope_id for scope_id in scope_ids
                if self._member in self._ring.get_nodes(
                    scope_id.encode('utf-8'))]

    def share_changed(self):
        """Whether the group's live members differ from those of the last
        :meth:`share`, so that a long pass ends and the next one tries the
        new share (a dead member's scopes are then taken over without
        waiting for the end of the pass). The backend is asked at most
        every ``recheck`` seconds; a failure counts as a change (the next
        :meth:`share` reports it). Always ``False`` without a group."""
        if self._group is None or self._members is None or self._changed:
            return self._changed
        now = time.monotonic()
        if now - self._checked < self._recheck:
            return False
        self._checked = now
        if self._coordinator is None:
            self._changed = True
            return True
        try:
            self._changed = self._live_members() != self._members
        except (tooz.ToozError, OSError) as exc:
            LOG.warning('Could not read the members of the group %s: %s',
                        self._group.decode(), exc)
            self._changed = True
        return self._changed

    def _live_members(self):
        coordinator = self._coordinator
        try:
            members = set(self._call(
                lambda: coordinator.get_members(self._group).get()))
        except coordination.GroupNotCreated:
            members = set()
        if self._member not in members:
            LOG.info('Member %s is not in the group %s (heartbeat missed or '
                     'backend restarted): joining again',
                     self._member.decode(), self._group.decode())
            self._join()
            members.add(self._member)
        return frozenset(members)

    def stop(self):
        """Disconnect (leaving the group, releasing what the backend still
        holds for us); never raises. Once stopping, a backend that does not
        answer is waited for :data:`STOP_GRACE` seconds at most."""
        coordinator, self._coordinator = self._coordinator, None
        if coordinator is None:
            return
        try:
            self._call(coordinator.stop, grace=STOP_GRACE)
        except Exception as exc:  # noqa: BLE001 - drivers raise their own
            LOG.warning('Stopping the coordinator failed: %s: %s',
                        exc.__class__.__name__, exc)

    @contextlib.contextmanager
    def hold(self, scope_id):
        """Try the scope's lock without blocking; yield whether we hold it.

        The lock is released on leaving the block. A backend failure is
        logged and yields ``False``; the coordinator is then restarted on
        the next call.
        """
        lock = self._acquire(scope_id)
        if lock is not None:
            self._held[scope_id] = lock
        try:
            yield lock is not None
        finally:
            if lock is not None:
                self._held.pop(scope_id, None)
                self._release(lock, scope_id)

    def still_held(self, scope_id):
        """Whether the lock taken by :meth:`hold` for ``scope_id`` is still
        ours, as far as the backend can tell (one round trip).

        Redis locks are checked against their owner token, etcd locks by a
        transaction comparing their key with this lock's token: a lock that
        expired (its lease with it, on etcd) or vanished with a restarted
        server is not ours any more, even if another worker has not taken
        it yet. A backend that does not answer within
        :data:`CHECK_TIMEOUT` seconds counts as lost. A file lock lasts as
        long as the process: held until released.
        """
        lock = self._held.get(scope_id)
        if lock is None:
            return False
        is_still_owner = _owner_check(lock)
        if is_still_owner is None:
            return True  # the driver cannot tell (file)
        try:
            return bool(self._call(is_still_owner, timeout=CHECK_TIMEOUT))
        except (tooz.ToozError, OSError) as exc:
            LOG.warning('Could not check the lock of scope %s, counting it '
                        'as lost: %s', scope_id, exc)
            return False

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
            if not self._call(lock.release):
                LOG.warning('The lock of scope %s was lost while held (it '
                            'expired, or the coordination backend restarted '
                            'without it)', scope_id)
        except (tooz.ToozError, OSError) as exc:
            # The backend expires it (redis, etcd) or the process's end
            # frees it (file); nothing else to do.
            LOG.warning('Could not release the lock of scope %s: %s',
                        scope_id, exc)
            self.stop()

    def _call(self, function, grace=0.0, timeout=None, **kwargs):
        """``function(**kwargs)``, given up on (``tooz.ToozError``) once
        stopping, after ``grace`` more seconds, or after ``timeout``
        seconds (``None``: no limit)."""
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
        deadline = None if timeout is None else time.monotonic() + timeout
        while not done.wait(0.1):
            if self._stop.is_set() and not done.wait(grace):
                raise tooz.ToozError('stopping: gave up waiting for the '
                                     'coordination backend')
            if deadline is not None and time.monotonic() > deadline:
                raise tooz.ToozError(f'no answer from the coordination '
                                     f'backend within {timeout}s')
        if 'error' in outcome:
            raise _translated(outcome['error'])
        return outcome.get('value')


class NoLocks:
    """Stand-in for :class:`ScopeLocks` when locking is not wanted."""

    started = True

    def start(self):
        return True

    def stop(self):
        pass

    @staticmethod
    def share(scope_ids):
        return list(scope_ids)

    @staticmethod
    def share_changed():
        return False

    @contextlib.contextmanager
    def hold(self, scope_id):
        yield True


def _owner_check(lock):
    """A function without arguments telling whether the tooz ``lock`` is
    still ours on the backend (one round trip), or ``None`` if the driver
    cannot tell."""
    if type(lock).is_still_owner is not locking.Lock.is_still_owner:
        return lock.is_still_owner  # redis
    if _is_etcd3gw_lock(lock):
        return functools.partial(_etcd3gw_still_owner, lock)
    return None


def _is_etcd3gw_lock(lock):
    # The driver module is loaded by the coordinator that made an etcd
    # lock; not loaded, ``lock`` is none (and etcd3gw may be missing).
    driver = sys.modules.get('tooz.drivers.etcd3gw')
    return driver is not None and isinstance(lock, driver.Etcd3Lock)


def _etcd3gw_still_owner(lock):
    """Whether the etcd key of a tooz ``etcd3gw`` lock still holds the
    token it was put with, by one read-only transaction (linearizable).

    tooz's lock does not say (its ``is_still_owner`` is the base's, which
    raises ``NotImplemented``), so this uses what it keeps: its key, its
    token and its coordinator's client. The key is put with the lock's
    lease: an expired or revoked lease has deleted it, and a lock taken
    since by another worker holds that worker's token.
    """
    txn = {'compare': [{'key': lock._key_b64, 'result': 'EQUAL',
                        'target': 'VALUE', 'value': lock._uuid}],
           'success': [], 'failure': []}
    result = lock._coord.client.transaction(txn)
    # Protobuf's JSON leaves ``succeeded`` out when it is false.
    return result.get('succeeded', False) is True


def _translated(exc):
    """``exc``, or a ``tooz.ToozError`` for an etcd3gw or a redis error:
    tooz's etcd3gw driver lets some through (``start`` creates its lease
    unguarded), and :func:`_etcd3gw_still_owner` calls the client itself;
    tooz's redis driver lets the client's errors through where it runs a
    call in its executor (``get_members``, on a refused connection)."""
    etcd3gw_errors = sys.modules.get('etcd3gw.exceptions')
    redis_errors = sys.modules.get('redis.exceptions')
    if etcd3gw_errors is not None and isinstance(
            exc, etcd3gw_errors.Etcd3Exception):
        # etcd3gw keeps the message in ``detail_text``, not in the args.
        message = exc.detail_text or exc
    elif redis_errors is not None and isinstance(exc,
                                                 redis_errors.RedisError):
        message = exc
    else:
        return exc
    error = tooz.ToozError(f'{exc.__class__.__name__}: {message}')
    error.__cause__ = exc
    return error


def _safe_url(url):
    """``url`` without credentials nor query (it may hold a password)."""
    scheme, sep, rest = url.split('?', 1)[0].partition('://')
    if sep and '@' in rest.split('/', 1)[0]:
        rest = rest.split('@', 1)[1]
    return f'{scheme}{sep}{rest}'
