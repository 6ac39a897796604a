"""Collections shared by the scopes of a pass (grouped collection)."""

import datetime
import logging

from cloudkitty import collector
from cloudkitty import dataframe
from cloudkitty.orchestrator import processor
from cloudkitty.orchestrator import shared as ck_shared
from cloudkitty.orchestrator import worker
from cloudkitty import testing
from cloudkitty.tests.unit import test_orchestrator_processor
from cloudkitty.tests.unit import worker_doubles as fakes

UTC = datetime.timezone.utc
HOUR = datetime.timedelta(hours=1)
MONTH = fakes.MONTH
NOW = MONTH + 5 * HOUR  # the periods starting at 0h, 1h and 2h are due
METRICS = {'metrics': {'cpu': {'unit': 'u', 'groupby': ['id']},
                       'ram': {'unit': 'u', 'factor': 2}}}


class Source(collector.BaseCollector):
    """Usage of every scope: qty = the hour of the period + 1, per metric
    and scope; ``down`` makes every call fail."""

    collector_name = 'fake-source'
    grouped_collection = True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.calls = []
        self.down = False

    def fetch_all(self, metric_name, start, end, project_id=None,
                  q_filter=None):
        scopes = [project_id] if project_id else q_filter['project_id']
        self.calls.append((metric_name, start, tuple(scopes)))
        if self.down:
            raise collector.CollectError(self.collector_name, metric_name,
                                         project_id, 'connection refused')
        hour = (start - MONTH) // HOUR
        return [dataframe.DataPoint('u', hour + 1, 0, {
            'id': f'{scope}-r', 'project_id': scope}, {})
            for scope in scopes if scope != 'empty']


def run(scopes, last=None, grouped=True, down=False, taken=()):
    source = Source(conf=METRICS, period=3600)
    source.grouped_collection = grouped
    source.down = down
    journal = []
    storage = testing.Storage(journal)
    state = testing.ScopeState(journal, last)
    scope_worker = worker.ScopeWorker(
        source, storage, state, list(source.conf),
        worker.Settings(period=3600, wait_periods=2, max_threads=4,
                        collector_request_timeout=5), clock=lambda: NOW)
    locks = test_orchestrator_processor.FakeLocks(taken)
    summary = processor.Processor(scope_worker, None, locks,
                                  shuffle=False).run_pass(scopes)
    stored = sorted((p[0], p[1], p[2], p[3].qty) for p in storage.points)
    return summary, source, stored, state


def test_one_collection_per_metric_and_period_for_every_scope():
    scopes = ['a', 'b', 'c']
    summary, source, stored, state = run(scopes)
    assert summary.rated == {'a': 3, 'b': 3, 'c': 3}
    assert sorted(source.calls) == sorted(
        (metric, MONTH + i * HOUR, ('a', 'b', 'c'))
        for metric in ('cpu', 'ram') for i in range(3))
    # Exactly what collecting scope by scope stores.
    _, alone, stored_alone, _ = run(scopes, grouped=False)
    assert len(alone.calls) == 2 * 3 * 3
    assert stored == stored_alone
    assert len(stored) == 2 * 3 * 3
    assert state.last == {s: MONTH + 2 * HOUR for s in scopes}


def test_scopes_at_different_periods_share_by_period():
    last = {'a': MONTH, 'b': MONTH + HOUR, 'c': MONTH}
    summary, source, stored, _ = run(['a', 'b', 'c'], last)
    assert summary.rated == {'a': 2, 'b': 1, 'c': 2}
    assert sorted(source.calls) == sorted(
        [(m, MONTH + HOUR, ('a', 'c')) for m in ('cpu', 'ram')] +
        [(m, MONTH + 2 * HOUR, ('a', 'b', 'c')) for m in ('cpu', 'ram')])
    assert sorted(stored) == sorted(run(['a', 'b', 'c'], last,
                                        grouped=False)[2])


def test_a_scope_without_data_stores_an_empty_period():
    summary, source, stored, state = run(['a', 'empty'])
    assert summary.rated == {'a': 3, 'empty': 3} and not summary.failed
    assert {row[0] for row in stored} == {'a'}
    assert state.last['empty'] == MONTH + 2 * HOUR


def test_a_source_down_fails_every_scope_once_per_metric(caplog):
    caplog.set_level(logging.WARNING)
    summary, source, stored, state = run(['a', 'b'], down=True)
    # One call for the first metric to fail; every scope gives up on it.
    assert len(source.calls) <= 2
    assert summary.rated == {} and stored == [] and state.last == {}
    for scope in ('a', 'b'):
        error = summary.failed[scope]
        assert f'scope {scope} period {MONTH.isoformat()} metric ' in error
        assert 'source fake-source' in error
        assert "Collector 'fake-source' failed to collect metric" in error
        assert f"for scope '{scope}': connection refused" in error
        assert any(scope in r.getMessage() and 'fake-source' in
                   r.getMessage() for r in caplog.records)


def test_a_scope_locked_elsewhere_is_left_alone():
    summary, source, stored, state = run(['a', 'b'], taken=['b'])
    assert summary.locked == ['b'] and summary.rated == {'a': 3}
    assert 'b' not in state.last
    assert {row[0] for row in stored} == {'a'}


def test_outside_the_group_a_scope_is_collected_alone():
    source = Source(conf=METRICS, period=3600)
    shared = ck_shared.SharedCollection(
        source, {'a': MONTH, 'b': MONTH, 'c': MONTH + HOUR, 'd': None},
        lambda last: last + HOUR)
    assert shared.next_round(['a', 'b', 'c', 'd']) == MONTH
    assert [s for s in 'abcd' if shared.in_round(s)] == ['a', 'b']
    type_, points = shared.retrieve('cpu', MONTH, MONTH + HOUR, 'a')
    assert source.calls == [('cpu', MONTH, ('a', 'b'))]
    assert (type_, [p.qty for p in points]) == ('cpu', [1])
    # Another period of "a", a scope not in the group, a part taken twice.
    shared.retrieve('cpu', MONTH + HOUR, MONTH + 2 * HOUR, 'a')
    shared.retrieve('cpu', MONTH, MONTH + HOUR, 'z')
    shared.retrieve('cpu', MONTH, MONTH + HOUR, 'a')
    assert source.calls[1:] == [('cpu', MONTH + HOUR, ('a',)),
                                ('cpu', MONTH, ('z',)),
                                ('cpu', MONTH, ('a',))]
    # "b" still gets its part of the first answer.
    shared.retrieve('cpu', MONTH, MONTH + HOUR, 'b')
    assert len(source.calls) == 4
    # Once they recorded their period, "a" and "b" join "c".
    shared.advance('a', MONTH)
    shared.advance('b', MONTH)
    assert shared.next_round(['a', 'b', 'c']) == MONTH + HOUR
    shared.retrieve('ram', MONTH + HOUR, MONTH + 2 * HOUR, 'b')
    assert source.calls[-1] == ('ram', MONTH + HOUR, ('a', 'b', 'c'))
    assert shared.next_round(['d']) is None


def test_without_grouped_collection_nothing_is_shared():
    summary, source, _, state = run(['a', 'b'], grouped=False)
    assert summary.rated == {'a': 3, 'b': 3}
    # Scope after scope, each period of each metric collected alone.
    assert sorted(source.calls) == sorted(
        (metric, MONTH + i * HOUR, (scope,))
        for scope in 'ab' for i in range(3) for metric in ('cpu', 'ram'))
    assert state.reads == 2


def test_the_modules_state_is_read_once_per_round():
    shared = ck_shared.SharedCollection(
        Source(conf=METRICS, period=3600), {'a': MONTH, 'b': MONTH},
        lambda last: last + HOUR)
    reads = []

    def read():
        reads.append(len(reads))
        return {'hashmap': {'enabled': len(reads) > 1, 'priority': 1}}
    shared.next_round(['a', 'b'])
    first = [shared.round_modules(MONTH, read) for _ in 'ab']
    assert reads == [0] and first[0] is first[1]
    # Another period than the round's is read each time.
    shared.round_modules(MONTH + HOUR, read)
    assert reads == [0, 1]
    # The next round reads again: a module enabled meanwhile applies.
    shared.advance('a', MONTH)
    shared.advance('b', MONTH)
    shared.next_round(['a', 'b'])
    assert shared.round_modules(MONTH + HOUR, read)['hashmap']['enabled']
    assert reads == [0, 1, 2]


def test_a_pass_reads_the_modules_state_once_per_period():
    module_state = testing.ModuleState()
    source = Source(conf=METRICS, period=3600)
    journal = []
    scope_worker = worker.ScopeWorker(
        source, testing.Storage(journal), testing.ScopeState(journal),
        list(source.conf), worker.Settings(
            period=3600, wait_periods=2, max_threads=4,
            collector_request_timeout=5),
        module_state=module_state, clock=lambda: NOW)
    summary = processor.Processor(
        scope_worker, None, test_orchestrator_processor.FakeLocks(()),
        shuffle=False).run_pass(['a', 'b', 'c'])
    assert summary.rated == {'a': 3, 'b': 3, 'c': 3}
    # Three periods (rounds) of three scopes each.
    assert module_state.reads == 3


def test_a_part_is_answered_once_its_group_answer_is_there():
    source = Source(conf=METRICS, period=3600)
    shared = ck_shared.SharedCollection(
        source, {'a': MONTH, 'b': MONTH, 'c': MONTH + HOUR},
        lambda last: last + HOUR)
    shared.next_round(['a', 'b', 'c'])
    assert not shared.answered('cpu', MONTH, 'b')  # nobody asked yet
    shared.retrieve('cpu', MONTH, MONTH + HOUR, 'a')
    assert shared.answered('cpu', MONTH, 'b')
    assert not shared.answered('cpu', MONTH, 'a')  # its part is taken
    assert not shared.answered('ram', MONTH, 'b')  # another metric
    assert not shared.answered('cpu', MONTH + HOUR, 'c')  # not in round
    assert len(source.calls) == 1
