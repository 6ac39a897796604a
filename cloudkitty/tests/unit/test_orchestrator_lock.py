"""Per-scope tooz locks: non-blocking, and never crashing on a dead backend."""

import logging
import threading
import time

import tooz
from tooz import coordination

from cloudkitty.orchestrator import lock


def file_url(tmp_path):
    return f'file://{tmp_path}/locks'


def test_lock_names_and_member_ids():
    assert lock.lock_name('p1') == b'cloudkitty-scope-p1'
    member = lock.member_id('host', 3)
    assert member.startswith(b'host-3-')


def test_a_held_scope_is_refused_to_another_member(tmp_path):
    first = lock.ScopeLocks(file_url(tmp_path), b'one')
    second = lock.ScopeLocks(file_url(tmp_path), b'two')
    try:
        with first.hold('p1') as held:
            assert held
            with second.hold('p1') as other:
                assert not other
            with second.hold('p2') as other:
                assert other
        with second.hold('p1') as held:
            assert held
    finally:
        first.stop()
        second.stop()


def test_unreachable_backend_is_logged_not_raised(caplog):
    def refuses(url, member):
        raise coordination.ToozConnectionError('Connection refused')

    locks = lock.ScopeLocks('redis://127.0.0.1:1', b'member', refuses)
    with caplog.at_level(logging.WARNING):
        assert not locks.start()
        with locks.hold('p1') as held:
            assert not held
    assert 'unreachable' in caplog.text and 'Connection refused' in caplog.text
    assert not locks.started


def test_a_stop_request_ends_the_wait_for_a_dead_backend():
    # tooz's redis driver retries for about a minute on a refused
    # connection (nothing listens on port 1); stopping must not wait for it.
    stop = threading.Event()
    locks = lock.ScopeLocks('redis://127.0.0.1:1', b'member',
                            stop_event=stop)
    threading.Timer(0.3, stop.set).start()
    began = time.monotonic()
    assert not locks.start()
    assert time.monotonic() - began < 3


class FlakyLock:
    def __init__(self, fail_acquire, fail_release):
        self.fail_acquire = fail_acquire
        self.fail_release = fail_release

    def acquire(self, blocking=True):
        if self.fail_acquire:
            raise coordination.ToozConnectionError('connection lost')
        return True

    def release(self):
        if self.fail_release:
            raise tooz.ToozError('connection lost')
        return True


class FlakyCoordinator:
    instances = None  # a list, set by each test

    def __init__(self, lock_):
        self.lock = lock_
        self.started = self.stopped = False
        self.heart = None
        FlakyCoordinator.instances.append(self)

    def start(self, start_heart=False):
        self.heart = start_heart
        self.started = True

    def stop(self):
        self.stopped = True

    def get_lock(self, name):
        return self.lock


def test_failures_while_locking_restart_the_coordinator(caplog):
    flaky = FlakyLock(fail_acquire=True, fail_release=False)
    FlakyCoordinator.instances = []
    locks = lock.ScopeLocks('fake://', b'm',
                            lambda url, member: FlakyCoordinator(flaky))
    with caplog.at_level(logging.WARNING), locks.hold('p1') as held:
        assert not held
    assert 'Could not take the lock of scope p1' in caplog.text
    first = FlakyCoordinator.instances[0]
    assert first.heart is True and first.stopped
    flaky.fail_acquire = False
    flaky.fail_release = True
    with locks.hold('p1') as held:
        assert held
    assert 'Could not release the lock of scope p1' in caplog.text
    assert len(FlakyCoordinator.instances) == 2
    assert FlakyCoordinator.instances[1].stopped


def test_no_locks_always_holds():
    with lock.NoLocks().hold('anything') as held:
        assert held


def test_urls_are_logged_without_credentials():
    assert lock._safe_url('redis://:secret@host:6379?password=x') == \
        'redis://host:6379'
    assert lock._safe_url('file:///var/lib/x') == 'file:///var/lib/x'
