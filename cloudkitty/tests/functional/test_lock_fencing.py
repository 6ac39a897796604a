"""A scope lock that vanishes while held is noticed before the next store:
a redis-server of the test's own is restarted empty under a held lock, and
the lease of an etcd lock expires while an etcd of the test's own is up.
A backend nobody answers for does not hold up a worker asked to stop."""

import threading
import time

from tooz import coordination as tooz_coordination

from cloudkitty.orchestrator import lock as ck_lock
from cloudkitty.tests.functional import coordination

#: The etcd locks' lease, in seconds (etcd's shortest is about 2).
ETCD_TTL = 2


def test_a_lock_lost_with_a_restarted_redis_is_not_held(tmp_path):
    redis = coordination.Redis(str(tmp_path / 'redis')).start()
    locks = ck_lock.ScopeLocks(redis.url, b'fenced-worker')
    other = ck_lock.ScopeLocks(redis.url, b'other-worker')
    try:
        with locks.hold('s1') as held:
            assert held and locks.still_held('s1')
            # Down: the lock cannot be vouched for.
            redis.stop()
            assert not locks.still_held('s1')
            # Back, empty: the lock is another worker's to take.
            redis.start()
            with other.hold('s1') as taken:
                assert taken
                assert not locks.still_held('s1')
        assert not locks.still_held('s1')
        with locks.hold('s2') as held:
            assert held and locks.still_held('s2')
    finally:
        locks.stop()
        other.stop()
        redis.stop()


def heartless(url, member):
    """A tooz coordinator that never refreshes its leases: a worker frozen
    (or cut off from etcd) for longer than they last."""
    coordinator = tooz_coordination.get_coordinator(url, member)
    start = coordinator.start
    coordinator.start = lambda start_heart=False: start(start_heart=False)
    return coordinator


def test_an_etcd_lock_whose_lease_expired_is_not_held(tmp_path):
    etcd = coordination.Etcd(str(tmp_path / 'etcd')).start()
    url = ck_lock.with_timeouts(etcd.url, ETCD_TTL)
    locks = ck_lock.ScopeLocks(url, b'fenced-worker')
    frozen = ck_lock.ScopeLocks(url, b'frozen-worker', heartless)
    other = ck_lock.ScopeLocks(url, b'other-worker')
    try:
        with locks.hold('s1') as held:
            assert held and locks.still_held('s1')
            # Down: the lock cannot be vouched for.
            etcd.stop()
            assert not locks.still_held('s1')
            # Back with its data: etcd renews the leases it restores, and
            # nobody could take the lock in between: still ours.
            etcd.start()
            assert locks.still_held('s1')
            with other.hold('s1') as taken:
                assert not taken
        assert not locks.still_held('s1')
        with frozen.hold('s2') as held:
            assert held and frozen.still_held('s2')
            # Its lease expires (nothing refreshes it): etcd deletes the
            # key, the lock is lost before anyone takes it...
            deadline = time.monotonic() + ETCD_TTL + 10
            while frozen.still_held('s2') and time.monotonic() < deadline:
                time.sleep(0.2)
            assert not frozen.still_held('s2')
            # ... and another worker may take it.
            with other.hold('s2') as taken:
                assert taken and other.still_held('s2')
                assert not frozen.still_held('s2')
        with locks.hold('s3') as held:
            assert held and locks.still_held('s3')
    finally:
        for each in (locks, frozen, other):
            each.stop()
        etcd.stop()


def test_file_locks_are_held_until_released(tmp_path):
    locks = ck_lock.ScopeLocks(f'file://{tmp_path}/locks', b'worker')
    try:
        with locks.hold('s1') as held:
            assert held and locks.still_held('s1')
        assert not locks.still_held('s1')
    finally:
        locks.stop()


def test_a_stop_request_ends_the_wait_for_a_dead_backend():
    # tooz's redis driver retries for about a minute on a refused
    # connection (nothing listens on port 1); stopping must not wait for it.
    stop = threading.Event()
    locks = ck_lock.ScopeLocks('redis://127.0.0.1:1', b'member',
                               stop_event=stop)
    threading.Timer(0.3, stop.set).start()
    began = time.monotonic()
    assert not locks.start()
    assert time.monotonic() - began < 3
