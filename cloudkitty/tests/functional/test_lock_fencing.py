"""A scope lock that vanishes while held is noticed before the next store:
a redis-server of the test's own is restarted empty under a held lock."""

from cloudkitty.orchestrator import lock as ck_lock
from cloudkitty.tests.functional import coordination


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


def test_file_locks_are_held_until_released(tmp_path):
    locks = ck_lock.ScopeLocks(f'file://{tmp_path}/locks', b'worker')
    try:
        with locks.hold('s1') as held:
            assert held and locks.still_held('s1')
        assert not locks.still_held('s1')
    finally:
        locks.stop()
