"""Per-scope tooz locks: non-blocking, and never crashing on a dead backend."""

import logging
import threading
import time
import types

from etcd3gw import exceptions as etcd3gw_exc
from redis import exceptions as redis_exc
import tooz
from tooz import coordination
from tooz.drivers import etcd3gw as tooz_etcd3gw

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
        return not getattr(self, 'lost', False)


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


def test_a_lock_lost_while_held_is_logged(caplog):
    flaky = FlakyLock(fail_acquire=False, fail_release=False)
    flaky.lost = True  # tooz's release says False: no longer ours
    FlakyCoordinator.instances = []
    locks = lock.ScopeLocks('fake://', b'm',
                            lambda url, member: FlakyCoordinator(flaky))
    with caplog.at_level(logging.WARNING), locks.hold('p1') as held:
        assert held
    assert 'The lock of scope p1 was lost while held' in caplog.text
    assert locks.started


def test_no_locks_always_holds():
    with lock.NoLocks().hold('anything') as held:
        assert held


def test_urls_are_logged_without_credentials():
    assert lock._safe_url('redis://:secret@host:6379?password=x') == \
        'redis://host:6379'
    assert lock._safe_url('file:///var/lib/x') == 'file:///var/lib/x'


def test_timeouts_are_added_where_the_backend_takes_them():
    assert lock.with_timeouts('redis://h:6379', 7) == \
        'redis://h:6379?membership_timeout=7&lock_timeout=7'
    assert lock.with_timeouts(
        'etcd3+http://h:2379?lock_timeout=30&api_version=v3', 5) == \
        'etcd3+http://h:2379?lock_timeout=30&api_version=v3&' \
        'membership_timeout=5'
    assert lock.with_timeouts('file:///var/lib/ck', 5) == \
        'file:///var/lib/ck'
    assert lock.shares_scopes('REDIS://h') and lock.shares_scopes(
        'etcd3+https://h')
    assert not lock.shares_scopes('file:///tmp/l')
    assert not lock.shares_scopes('zookeeper://h')


class GroupCoordinator:
    """A backend's group: ``members`` is shared by the coordinators."""

    def __init__(self, member, members, fail=None):
        self.member = member
        self.members = members
        self.fail = fail
        self.exists = True
        self.joins = 0

    def start(self, start_heart=False):
        pass

    def stop(self):
        self.members.discard(self.member)

    def join_group_create(self, group_id):
        self.joins += 1
        self.exists = True
        self.members.add(self.member)

    def get_members(self, group_id):
        if self.fail is not None:
            raise self.fail
        if not self.exists:
            raise coordination.GroupNotCreated(group_id)
        members = set(self.members)

        class Result:
            @staticmethod
            def get():
                return members
        return Result


SCOPES = [f'scope-{i}' for i in range(300)]


def group_of(names, members):
    coordinators = {}

    def factory(url, member):
        coordinators[member] = GroupCoordinator(member, members)
        return coordinators[member]
    locks = [lock.ScopeLocks('redis://x', name, factory, group=b'g')
             for name in names]
    return locks, coordinators


def test_live_members_share_the_scopes_out(caplog):
    members = set()
    (one, two, three), _ = group_of([b'one', b'two', b'three'], members)
    for locks in (one, two, three):
        assert locks.start()
    assert members == {b'one', b'two', b'three'}
    with caplog.at_level(logging.INFO):
        shares = [locks.share(SCOPES) for locks in (one, two, three)]
    assert 'Group g: 3 live members, one among them' in caplog.text
    # Every scope in exactly one share, each share a fair part.
    assert sorted(sum(shares, [])) == sorted(SCOPES)
    assert all(60 <= len(share) <= 140 for share in shares), \
        [len(share) for share in shares]
    assert shares[0] == [s for s in SCOPES if s in set(shares[0])]
    # "three" is gone: its scopes go to the others, theirs stay theirs.
    members.discard(b'three')
    after = [one.share(SCOPES), two.share(SCOPES)]
    assert sorted(sum(after, [])) == sorted(SCOPES)
    assert set(shares[0]) <= set(after[0])
    assert set(shares[1]) <= set(after[1])


def test_a_change_of_members_is_seen_between_two_shares():
    members = set()
    (one, two), coordinators = group_of([b'one', b'two'], members)
    one._recheck = 0.0
    assert not one.share_changed()  # no share yet
    assert one.start() and two.start()
    one.share(SCOPES)
    assert not one.share_changed()
    two.stop()  # leaves the group
    assert one.share_changed() and one.share_changed()
    assert one.share(SCOPES) == SCOPES
    assert not one.share_changed()
    coordinators[b'one'].fail = coordination.ToozConnectionError('down')
    assert one.share_changed()
    # Asked at most every ``recheck`` seconds.
    one._recheck = 60.0
    coordinators[b'one'].fail = None
    assert one.share(SCOPES) == SCOPES
    assert two.start()
    assert not one.share_changed()


def test_a_member_dropped_from_the_group_joins_again(caplog):
    members = set()
    (one,), coordinators = group_of([b'one'], members)
    assert one.share(['a', 'b']) == ['a', 'b']
    members.clear()  # expired by another member, or the backend restarted
    with caplog.at_level(logging.INFO):
        assert one.share(['a', 'b']) == ['a', 'b']
    assert 'Member one is not in the group g' in caplog.text
    assert members == {b'one'} and coordinators[b'one'].joins == 2
    members.clear()
    coordinators[b'one'].exists = False  # the group itself is gone
    assert one.share(['a']) == ['a']
    assert coordinators[b'one'].joins == 3


def test_an_unreadable_group_is_no_share(caplog):
    members = set()
    (one,), coordinators = group_of([b'one'], members)
    assert one.start()
    coordinators[b'one'].fail = coordination.ToozConnectionError('down')
    with caplog.at_level(logging.WARNING):
        assert one.share(['a']) is None
    assert 'Could not read the members of the group g' in caplog.text
    assert not one.started


def test_without_a_group_every_scope_is_tried():
    assert lock.ScopeLocks('file:///x', b'm').share(['b', 'a']) == ['b', 'a']
    assert lock.NoLocks().share(('a',)) == ['a']


class FakeEtcd:
    """The few etcd v3 gateway calls tooz's etcd3gw lock makes, on a dict
    of ``{base64 key: (base64 value, lease id)}``; ``txns`` records every
    transaction, ``fail`` is raised by the next calls if set."""

    def __init__(self):
        self.keys = {}
        self.txns = []
        self.leases = 0
        self.fail = None

    def lease(self, ttl):
        self.leases += 1
        return types.SimpleNamespace(id=self.leases, refresh=lambda: ttl)

    def transaction(self, txn):
        if self.fail is not None:
            raise self.fail
        self.txns.append(txn)
        ok = all(self._holds(compare) for compare in txn['compare'])
        for request in txn.get('success' if ok else 'failure', []):
            if 'request_put' in request:
                put = request['request_put']
                self.keys[put['key']] = (put['value'], put.get('lease'))
            elif 'request_delete_range' in request:
                self.keys.pop(request['request_delete_range']['key'], None)
        return {'header': {}, 'succeeded': True} if ok else {'header': {}}

    def _holds(self, compare):
        assert compare['result'] == 'EQUAL'
        found = self.keys.get(compare['key'])
        if compare['target'] == 'CREATE':
            return found is None
        assert compare['target'] == 'VALUE'
        # etcd: a value compared on a missing key always fails.
        return found is not None and found[0] == compare['value']


class EtcdCoordinator:
    """Makes tooz's own etcd3gw locks, on a :class:`FakeEtcd`."""

    def __init__(self, client):
        self.client = client
        self._acquired_locks = set()

    def start(self, start_heart=False):
        # tooz's start creates the membership lease outside its error
        # translation: etcd3gw's own errors come through.
        self.client.lease(30)
        if self.client.fail is not None:
            raise self.client.fail

    def stop(self):
        pass

    def get_lock(self, name):
        return tooz_etcd3gw.Etcd3Lock(self, name, 30)


def etcd_locks(etcd, member=b'm'):
    return lock.ScopeLocks('etcd3+http://x', member,
                           lambda url, member: EtcdCoordinator(etcd))


def test_an_etcd_lock_is_checked_by_one_read_only_transaction():
    etcd = FakeEtcd()
    locks = etcd_locks(etcd)
    with locks.hold('s1') as held:
        assert held
        key, (token, _) = next(iter(etcd.keys.items()))
        del etcd.txns[:]
        assert locks.still_held('s1')
        # One round trip, comparing the key with this lock's token and
        # writing nothing.
        assert etcd.txns == [{
            'compare': [{'key': key, 'result': 'EQUAL', 'target': 'VALUE',
                         'value': token}],
            'success': [], 'failure': []}]
    assert not locks.still_held('s1')
    assert len(etcd.txns) == 2  # the release; none for a lock not held


def test_an_etcd_lock_whose_key_expired_or_was_taken_is_not_held():
    etcd = FakeEtcd()
    locks, other = etcd_locks(etcd), etcd_locks(etcd, b'other')
    with locks.hold('s1') as held:
        assert held
        # The lease expired: etcd deleted the key with it.
        etcd.keys.clear()
        assert not locks.still_held('s1')
        # Taken since by another worker: its token, not ours.
        with other.hold('s1') as taken:
            assert taken and other.still_held('s1')
            assert not locks.still_held('s1')


def test_an_etcd_lock_that_cannot_be_checked_counts_as_lost(
        caplog, monkeypatch):
    etcd = FakeEtcd()
    locks = etcd_locks(etcd)
    with locks.hold('s1') as held:
        assert held
        etcd.fail = etcd3gw_exc.ConnectionFailedError('refused')
        with caplog.at_level(logging.WARNING):
            assert not locks.still_held('s1')
        assert 'Could not check the lock of scope s1, counting it as ' \
            'lost: ConnectionFailedError: refused' in caplog.text
        etcd.fail = None
        assert locks.still_held('s1')
        # No answer within CHECK_TIMEOUT: lost too.
        monkeypatch.setattr(lock, 'CHECK_TIMEOUT', 0.2)
        answer = threading.Event()
        monkeypatch.setattr(etcd, 'transaction',
                            lambda txn: answer.wait(10))
        began = time.monotonic()
        assert not locks.still_held('s1')
        assert time.monotonic() - began < 2
        answer.set()
        monkeypatch.undo()  # the release needs an answer


def test_an_unreachable_etcd_is_logged_not_raised(caplog):
    etcd = FakeEtcd()
    etcd.fail = etcd3gw_exc.ConnectionFailedError('refused')
    locks = etcd_locks(etcd)
    with caplog.at_level(logging.WARNING):
        assert not locks.start()
        with locks.hold('s1') as held:
            assert not held
    assert 'unreachable, will retry: ConnectionFailedError: refused' in \
        caplog.text
    etcd.fail = None
    with locks.hold('s1') as held:
        assert held and locks.still_held('s1')


def test_a_redis_error_tooz_lets_through_is_logged_not_raised(caplog):
    # tooz's redis driver reads a group's members in its executor, whose
    # errors it does not translate: a refused connection comes out as
    # redis' own ConnectionError.
    class Coordinator:
        members_fail = True

        def start(self, start_heart):
            pass

        def join_group_create(self, group_id):
            pass

        def get_members(self, group_id):
            if self.members_fail:
                raise redis_exc.ConnectionError(
                    'Error 111 connecting to 127.0.0.1:1. Connection refused.')
            return types.SimpleNamespace(get=lambda: {b'member'})

        def stop(self):
            pass

    coordinator = Coordinator()
    locks = lock.ScopeLocks('redis://127.0.0.1:1', b'member',
                            lambda url, member: coordinator, group=b'g')
    with caplog.at_level(logging.WARNING):
        assert locks.share(['s1']) is None
    assert 'Could not read the members of the group g, will retry: ' \
        'ConnectionError: Error 111 connecting' in caplog.text
    coordinator.members_fail = False
    assert locks.share(['s1']) == ['s1']
