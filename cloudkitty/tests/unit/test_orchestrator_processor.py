"""Passes over the scopes, with a fake worker, fetcher and locks."""

import contextlib
import threading

from cloudkitty.orchestrator import processor
from cloudkitty.orchestrator import worker


class FakeWorker:
    """Rates each scope as ``outcomes`` says: ``(periods, error,
    inactive)``; its collector groups no collections."""

    storage = None
    collector = None

    def __init__(self, outcomes=None, on_rate=None):
        self.outcomes = outcomes or {}
        self.calls = []
        self.checks = []
        self.on_rate = on_rate

    def rate_scope(self, scope_id, max_periods=None, still_held=None,
                   store=None):
        self.calls.append(scope_id)
        if still_held is not None:
            self.checks.append((scope_id, still_held()))
        if self.on_rate:
            self.on_rate(scope_id)
        rated, error, inactive = self.outcomes.get(scope_id, (1, None, False))
        return worker.ScopeResult(scope_id, rated=list(range(rated)),
                                  error=error, inactive=inactive)


class FakeFetcher:
    def __init__(self, scopes, error=None):
        self.scopes = scopes
        self.error = error

    def get_tenants(self):
        if self.error:
            raise self.error
        return list(self.scopes)


class FakeLocks:
    """``others``: scopes left to other workers; ``share`` fails (``None``)
    when ``shared`` is false."""

    def __init__(self, taken=(), up=True, others=(), shared=True):
        self.taken = set(taken)
        self.up = up
        self.others = set(others)
        self.shared = shared
        self.held = []
        self.released = []

    def start(self):
        return self.up

    def share(self, scope_ids):
        if not self.shared:
            return None
        return [s for s in scope_ids if s not in self.others]

    def share_changed(self):
        # A member joins once this worker held ``changes_after`` locks.
        return len(self.held) >= getattr(self, 'changes_after', 1 << 30)

    @contextlib.contextmanager
    def hold(self, scope_id):
        if scope_id in self.taken:
            yield False
            return
        self.held.append(scope_id)
        try:
            yield True
        finally:
            self.released.append(scope_id)


def make(scopes=('a', 'b', 'c'), outcomes=None, taken=(), up=True,
         fetch_error=None, stop=None, on_rate=None):
    fake_worker = FakeWorker(outcomes, on_rate)
    locks = FakeLocks(taken, up)
    proc = processor.Processor(fake_worker, FakeFetcher(scopes, fetch_error),
                               locks, stop, shuffle=False)
    return proc, fake_worker, locks


def test_a_pass_rates_every_scope_it_can_lock():
    proc, fake_worker, locks = make(taken=['b'])
    summary = proc.run_pass()
    assert fake_worker.calls == ['a', 'c']
    assert summary.locked == ['b']
    assert summary.rated == {'a': 1, 'c': 1} and summary.periods == 2
    assert locks.released == ['a', 'c']


def test_a_failing_scope_does_not_stop_the_others():
    proc, fake_worker, locks = make(
        outcomes={'a': (0, 'scope a metric cpu: boom', False),
                  'b': (2, None, False), 'c': (0, None, True)})
    summary = proc.run_pass()
    assert fake_worker.calls == ['a', 'b', 'c']
    assert summary.failed == {'a': 'scope a metric cpu: boom'}
    assert summary.rated == {'b': 2}
    assert summary.inactive == ['c']
    assert locks.released == ['a', 'b', 'c']


def test_a_pass_leaves_the_other_workers_share_alone():
    fake_worker = FakeWorker()
    locks = FakeLocks(taken=['c'], others=['b', 'd'])
    proc = processor.Processor(fake_worker, FakeFetcher(list('abcd')),
                               locks, shuffle=False)
    summary = proc.run_pass()
    assert fake_worker.calls == ['a']
    assert summary.scopes == ['a', 'c'] and summary.others == ['b', 'd']
    assert summary.locked == ['c'] and locks.held == ['a']


def test_a_pass_ends_once_the_share_changed():
    fake_worker = FakeWorker()
    locks = FakeLocks()
    locks.changes_after = 2
    proc = processor.Processor(fake_worker, FakeFetcher(list('abcd')),
                               locks, shuffle=False)
    summary = proc.run_pass()
    assert fake_worker.calls == ['a', 'b'] and summary.periods == 2


def test_membership_unreadable_skips_the_pass():
    fake_worker = FakeWorker()
    proc = processor.Processor(fake_worker, FakeFetcher(['a']),
                               FakeLocks(shared=False))
    summary = proc.run_pass()
    assert summary.unavailable == 'coordination backend unreachable'
    assert fake_worker.calls == []


def test_coordination_down_skips_the_pass():
    proc, fake_worker, _ = make(up=False)
    summary = proc.run_pass()
    assert summary.unavailable == 'coordination backend unreachable'
    assert fake_worker.calls == []


def test_fetcher_failure_skips_the_pass(caplog):
    proc, fake_worker, _ = make(fetch_error=ConnectionError('keystone down'))
    summary = proc.run_pass()
    assert 'keystone down' in summary.unavailable
    assert 'Could not list the scopes' in caplog.text
    assert fake_worker.calls == []


def test_scopes_can_be_given():
    proc, fake_worker, _ = make()
    proc.run_pass(['z'])
    assert fake_worker.calls == ['z']


def test_shuffled_passes_visit_every_scope_once():
    fake_worker = FakeWorker()
    proc = processor.Processor(fake_worker, FakeFetcher(list('abcdef')),
                               FakeLocks())
    proc.run_pass()
    assert sorted(fake_worker.calls) == list('abcdef')


def test_stop_ends_the_pass_after_the_current_scope():
    stop = threading.Event()
    proc, fake_worker, locks = make(stop=stop,
                                    on_rate=lambda scope: stop.set())
    proc.run_pass()
    assert fake_worker.calls == ['a'] and locks.released == ['a']


def test_run_forever_sleeps_only_after_an_idle_pass_and_survives_bugs():
    stop = threading.Event()
    passes = []

    class Scripted(processor.Processor):
        def run_pass(self, scope_ids=None):
            passes.append(len(passes))
            if len(passes) == 1:
                return processor.PassSummary(rated={'a': 1})
            if len(passes) == 2:
                raise RuntimeError('bug')
            stop.set()
            return processor.PassSummary()

    waits = []

    class RecordingEvent(threading.Event):
        def wait(self, timeout=None):
            waits.append(timeout)
            return super().wait(0)

    stop = RecordingEvent()
    Scripted(None, None, None, stop).run_forever(7.5)
    assert passes == [0, 1, 2]
    # No sleep after the pass that rated; one after the failing pass and
    # one after the idle pass.
    assert waits == [7.5, 7.5]


class FakeSchedule:
    def __init__(self, tasks):
        self.tasks = tasks
        self.reads = []

    def get_all(self, scope_ids=None, order='desc'):
        assert order == 'asc'
        self.reads.append(scope_ids)
        return [dict(t) for t in self.tasks
                if not scope_ids or t['identifier'] in scope_ids]


class ReprocessingWorker:
    def __init__(self):
        self.calls = []

    def reprocess(self, task, schedule, still_held=None):
        self.calls.append(task['id'])
        return worker.ScopeResult(task['identifier'], rated=[1, 2])


def make_task(id_, scope, current=None, end=10):
    return {'id': id_, 'identifier': scope, 'start_reprocess_time': 0,
            'end_reprocess_time': end, 'current_reprocess_time': current}


def test_reprocessing_pass_works_on_unfinished_tasks_under_the_lock():
    schedule = FakeSchedule([make_task(1, 'a'), make_task(2, 'b', current=10),
                             make_task(3, 'c', current=4),
                             make_task(4, 'd')])
    fake_worker = ReprocessingWorker()
    proc = processor.ReprocessingProcessor(fake_worker, schedule,
                                           FakeLocks(taken=['d']))
    summary = proc.run_pass()
    assert fake_worker.calls == [1, 3]
    assert summary.scopes == ['a', 'c', 'd'] and summary.locked == ['d']
    assert summary.rated == {'a': 2, 'c': 2}
    # Each task is read again once its scope is locked.
    assert schedule.reads == [None, ['a'], ['c']]


def test_a_task_finished_meanwhile_is_left_alone():
    schedule = FakeSchedule([make_task(1, 'a')])
    fake_worker = ReprocessingWorker()

    class Racing(FakeLocks):
        @contextlib.contextmanager
        def hold(self, scope_id):
            schedule.tasks[0]['current_reprocess_time'] = 10
            yield True

    processor.ReprocessingProcessor(fake_worker, schedule,
                                    Racing()).run_pass()
    assert fake_worker.calls == []


def make_conf(url):
    from oslo_config import cfg

    from cloudkitty import conf as ck_conf
    conf = ck_conf.register_all(cfg.ConfigOpts())
    conf([], project='cloudkitty', default_config_files=[])
    conf.set_override('coordination_url', url, 'orchestrator')
    conf.set_override('member_timeout', 4, 'orchestrator')
    conf.set_override('host', 'h1')
    return conf


def test_make_locks_shares_out_where_members_expire(caplog):
    from cloudkitty.orchestrator import lock
    locks = processor.make_locks(make_conf('redis://r:6379?db=2'), 'P-0',
                                 group=lock.RATING_GROUP)
    assert locks._url == ('redis://r:6379?db=2&membership_timeout=4&'
                          'lock_timeout=4')
    assert locks._group == lock.RATING_GROUP
    assert locks._member.startswith(b'h1-P-0-')
    assert 'every scope' not in caplog.text


def test_make_locks_on_files_tries_every_scope_and_says_so(caplog):
    from cloudkitty.orchestrator import lock
    with caplog.at_level('INFO'):
        locks = processor.make_locks(make_conf('file:///var/lib/ck'), 'P-0',
                                     group=lock.RATING_GROUP)
    assert locks._url == 'file:///var/lib/ck' and locks._group is None
    assert ('Worker P-0 tries the lock of every scope: the coordination '
            'backend file:// keeps no live group membership') in caplog.text


class CheckedLocks(FakeLocks):
    def still_held(self, scope_id):
        return scope_id in self.held and scope_id not in self.released


def test_each_scope_is_rated_fenced_by_its_own_lock():
    fenced = FakeWorker()
    proc = processor.Processor(fenced, FakeFetcher(['a', 'b']),
                               CheckedLocks(), shuffle=False)
    proc.run_pass()
    assert fenced.checks == [('a', True), ('b', True)]
    # Locks that cannot tell: no check.
    unfenced, unfenced_worker, _ = make(scopes=['a'])
    unfenced.run_pass()
    assert unfenced_worker.calls == ['a'] and unfenced_worker.checks == []
