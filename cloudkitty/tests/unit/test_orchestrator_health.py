"""Lag, failure kinds, the workers' counters and the lag warnings."""

import contextlib
import datetime
import json
import logging
import threading
import time

import pytest

from cloudkitty import collector
from cloudkitty.orchestrator import health
from cloudkitty.orchestrator import periods
from cloudkitty.orchestrator import processor
from cloudkitty.orchestrator import worker
from cloudkitty import testing
from cloudkitty.tests.unit import worker_doubles as fakes

HOUR = fakes.HOUR
MONTH = fakes.MONTH
SECOND = datetime.timedelta(seconds=1)


# -- lag ------------------------------------------------------------------------

@pytest.mark.parametrize('last, now, due', [
    # Caught up: the next period (5h) is not due before 5h + 2h.
    (MONTH + 4 * HOUR, MONTH + 7 * HOUR, 0),
    (MONTH + 4 * HOUR, MONTH + 7 * HOUR + SECOND, 1),
    (MONTH + 4 * HOUR, MONTH + 8 * HOUR, 1),
    (MONTH + 4 * HOUR, MONTH + 8 * HOUR + SECOND, 2),
    # Periods 5h .. 14h are due at 17h30 (14h + 2h < 17h30, 15h + 2h too).
    (MONTH + 4 * HOUR, MONTH + 17 * HOUR + 30 * 60 * SECOND, 11),
    # A new scope counts from the month start.
    (None, MONTH + 2 * HOUR, 0),
    (None, MONTH + 2 * HOUR + SECOND, 1),
    (None, MONTH + 5 * HOUR, 3),
])
def test_due_periods(last, now, due):
    assert periods.due_periods(last, 3600, 2, now) == due
    # 0 exactly when no period is due.
    assert (due == 0) == (periods.next_period_start(last, 3600, 2, now)
                          is None)


def test_due_periods_counts_the_periods_rate_scope_would_rate():
    now = MONTH + 9 * HOUR + 15 * 60 * SECOND
    scope_worker, *_ = fakes.make_worker(last={'p1': MONTH + HOUR},
                                         clock=lambda: now)
    assert scope_worker.lag('p1') == (MONTH + HOUR, 6)
    assert len(scope_worker.rate_scope('p1').rated) == 6
    assert scope_worker.lag('p1') == (MONTH + 7 * HOUR, 0)


def test_lags_of_many_scopes_are_their_due_periods_now():
    now = MONTH + 9 * HOUR + 15 * 60 * SECOND
    scope_worker, *_ = fakes.make_worker(
        last={'p1': MONTH + HOUR, 'p2': MONTH + 6 * HOUR,
              'off': MONTH}, clock=lambda: now)
    scope_worker._scope_state.inactive.add('off')
    # p3 has no state yet: it counts from the month start.
    assert scope_worker.lags(['p1', 'p2', 'p3', 'off']) == {
        'p1': (MONTH + HOUR, 6), 'p2': (MONTH + 6 * HOUR, 1),
        'p3': (None, 8)}


def test_due_periods_with_other_periods_and_waits():
    assert periods.due_periods(MONTH, 600, 0, MONTH + 3000 * SECOND) == 4
    assert periods.due_periods(MONTH, 600, 1, MONTH + 3001 * SECOND) == 4


# -- failure kinds ----------------------------------------------------------

def test_collection_failure_is_a_collection_failure():
    def down(scope, start):
        raise collector.CollectError('fake', 'cpu', scope, 'down')
    scope_worker, *_ = fakes.make_worker(behaviour={'cpu': down},
                                         last={'p1': MONTH})
    assert scope_worker.rate_scope('p1').failure == health.COLLECTION


def test_storage_failure_is_a_rating_failure():
    journal = []
    storage = testing.Storage(journal)
    storage.fail = ConnectionError('database went away')
    scope_worker, *_ = fakes.make_worker(last={'p1': MONTH}, storage=storage,
                                         journal=journal)
    result = scope_worker.rate_scope('p1')
    assert result.failure == health.RATING
    assert 'database went away' in result.error


def test_success_and_stop_are_no_failure():
    scope_worker, *_ = fakes.make_worker(last={'p1': MONTH})
    assert scope_worker.rate_scope('p1', max_periods=1).failure is None
    stop = threading.Event()

    def stops(scope, start):
        stop.set()
        time.sleep(0.3)
        return [fakes.point(1)]
    scope_worker, *_ = fakes.make_worker(
        behaviour={'cpu': stops}, last={'p1': MONTH}, stop_event=stop)
    result = scope_worker.rate_scope('p1')
    assert 'stop requested' in result.error and result.failure is None


# -- counters -------------------------------------------------------------------

class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def read(path):
    return json.loads(path.read_text())


def test_counters_are_written_at_most_every_flush_seconds(tmp_path):
    clock = Clock()
    path = tmp_path / 'Processor-0.json'
    counters = health.Counters(str(path), clock=clock)
    counters.add('a', health.PERIODS_RATED, 3)
    assert not path.exists()
    clock.now = health.FLUSH_SECONDS
    counters.add('a', health.COLLECTION_ERRORS)
    assert read(path) == {'a': {'periods_rated': 3, 'periods_reprocessed': 0,
                                'collection_errors': 1, 'rating_errors': 0}}
    counters.add('b', health.RATING_ERRORS)
    assert set(read(path)) == {'a'}
    counters.flush()
    assert read(path)['b'] == {'periods_rated': 0, 'periods_reprocessed': 0,
                               'collection_errors': 0, 'rating_errors': 1}
    assert [p.name for p in tmp_path.iterdir()] == ['Processor-0.json']


def test_a_restarted_worker_counts_on(tmp_path):
    path = str(tmp_path / 'Processor-1.json')
    first = health.Counters(path)
    first.add('a', health.PERIODS_RATED, 5)
    first.flush()
    again = health.Counters(path)
    again.add('a', health.PERIODS_RATED, 2)
    again.flush()
    assert again.snapshot() == {'a': {'periods_rated': 7,
                                      'periods_reprocessed': 0,
                                      'collection_errors': 0,
                                      'rating_errors': 0}}


def test_a_corrupt_file_counts_from_zero(tmp_path, caplog):
    path = tmp_path / 'Processor-0.json'
    path.write_text('{"a": ')
    assert health.Counters(str(path)).snapshot() == {}
    assert 'counting from 0' in caplog.text and str(path) in caplog.text


def test_read_counters_adds_up_every_worker(tmp_path):
    for name, counts in (('Processor-0', {'a': {'periods_rated': 2}}),
                         ('Processor-1', {'a': {'periods_rated': 3,
                                                'rating_errors': 1},
                                          'b': {'collection_errors': 4}}),
                         ('Reprocessing-0', {'a': {'periods_reprocessed': 6}})):
        (tmp_path / f'{name}.json').write_text(json.dumps(counts))
    # Neither a half-written file nor anything else counts.
    (tmp_path / 'Processor-0.json.123.tmp').write_text('{"a": {"periods_')
    (tmp_path / 'notes.txt').write_text('x')
    assert health.read_counters(str(tmp_path)) == {
        'a': {'periods_rated': 5, 'periods_reprocessed': 6,
              'collection_errors': 0, 'rating_errors': 1},
        'b': {'periods_rated': 0, 'periods_reprocessed': 0,
              'collection_errors': 4, 'rating_errors': 0}}
    assert health.read_counters(str(tmp_path / 'gone')) == {}


# -- lag warnings ---------------------------------------------------------------

def messages(caplog):
    return [(r.levelname, r.getMessage()) for r in caplog.records
            if r.name == health.LOG.name]


def test_lag_watch_warns_once_then_when_further_behind_then_recovers(
        caplog):
    watch = health.LagWatch(3)
    caplog.set_level(logging.INFO)
    for due in (2, 3, 4, 4, 4, 5, 4, 5, 1, 0, 2):
        watch.check('p1', MONTH + due * HOUR, due)
    assert messages(caplog) == [
        ('WARNING', 'Scope p1 is 4 periods behind (more than '
                    'lag_warning_periods = 3): last processed period '
                    '2024-03-01T04:00:00+00:00'),
        ('WARNING', 'Scope p1 is 5 periods behind (more than '
                    'lag_warning_periods = 3): last processed period '
                    '2024-03-01T05:00:00+00:00'),
        ('WARNING', 'Scope p1 is 5 periods behind (more than '
                    'lag_warning_periods = 3): last processed period '
                    '2024-03-01T05:00:00+00:00'),
        ('INFO', 'Scope p1 is no longer behind: 1 periods due, last '
                 'processed period 2024-03-01T01:00:00+00:00'),
    ]


def test_lag_watch_of_a_scope_never_rated(caplog):
    health.LagWatch(0).check('p2', None, 1)
    assert messages(caplog) == [
        ('WARNING', 'Scope p2 is 1 periods behind (more than '
                    'lag_warning_periods = 0): last processed period none')]


def test_a_sweep_warns_of_the_scopes_that_stay_behind_unmoved(caplog):
    watch = health.LagWatch(3)
    caplog.set_level(logging.INFO)
    stuck, moving = MONTH + HOUR, MONTH + 2 * HOUR
    # First seen: behind, but maybe moving; not warned yet.
    watch.sweep({'stuck': (stuck, 5), 'moving': (moving, 6), 'ok': (None, 0)})
    assert messages(caplog) == []
    # Catching up (moved since) is no stall; not moved is.
    watch.sweep({'stuck': (stuck, 5), 'moving': (moving + HOUR, 5)})
    warning = ('Scope stuck is {} periods behind (more than '
               'lag_warning_periods = 3) and has not moved since the '
               'previous check: last processed period '
               '2024-03-01T01:00:00+00:00; the worker that has it may be '
               'stuck')
    assert messages(caplog) == [('WARNING', warning.format(5))]
    # Once per stall, again when it falls further behind.
    caplog.clear()
    watch.sweep({'stuck': (stuck, 5)})
    watch.sweep({'stuck': (stuck, 6)})
    assert messages(caplog) == [('WARNING', warning.format(6))]
    # Rated again (by whoever has it now): back within the limit.
    caplog.clear()
    watch.sweep({'stuck': (MONTH + 8 * HOUR, 0)})
    assert messages(caplog) == [
        ('INFO', 'Scope stuck is no longer behind: 0 periods due, last '
                 'processed period 2024-03-01T08:00:00+00:00')]
    # A scope that left the sweep (now visited by this worker) starts
    # afresh when it comes back.
    caplog.clear()
    watch.sweep({})
    watch.sweep({'moving': (moving + HOUR, 5)})
    assert messages(caplog) == []


class PartLocks(processor.ck_lock.NoLocks):
    """This worker's share is ``mine``; ``held`` are locked elsewhere."""

    def __init__(self, mine, held=()):
        self.mine = mine
        self.held = set(held)

    def share(self, scope_ids):
        return [s for s in scope_ids if s in self.mine]

    @contextlib.contextmanager
    def hold(self, scope_id):
        yield scope_id not in self.held


@pytest.mark.parametrize('sweep', [True, False])
def test_the_sweeper_checks_the_scopes_its_pass_did_not_visit(
        sweep, caplog):
    fake = FakeWorker({'a': {'rated': [MONTH]}, 'b': {}}, {})
    locks = PartLocks(mine={'a', 'b'}, held={'b'})
    watch = health.LagWatch(3)
    watched = health.Health(health.Counters(), health.PERIODS_RATED, watch)
    for _ in range(2):
        OnePass(fake, FakeFetcher(['a', 'b', 'c', 'd']), locks,
                shuffle=False, health=watched, sweep=sweep).run_forever(0)
    # 'b' is locked elsewhere, 'c' and 'd' are other workers' share.
    assert fake.sweeps == ([['c', 'd', 'b']] * 2 if sweep else [])
    assert [m for _, m in messages(caplog)] == (
        ['Scope d is 9 periods behind (more than lag_warning_periods = 3) '
         'and has not moved since the previous check: last processed '
         'period 2024-03-01T00:00:00+00:00; the worker that has it may be '
         'stuck'] if sweep else [])


def test_a_sweep_that_cannot_read_the_lags_checks_nothing(caplog):
    def down(scope_ids):
        raise ConnectionError('no database')
    watched = health.Health(lag_watch=health.LagWatch(0))
    watched.sweep(['a'], down)
    watched.sweep(['a'], down)
    assert messages(caplog) == []


class FakeWorker:
    """Rates scopes as told: ``{scope: ScopeResult fields}``."""

    def __init__(self, outcomes, lags):
        self.outcomes = outcomes
        self.lag_values = lags
        self.lag_reads = []
        self.sweeps = []

    storage = None
    collector = None  # no grouped collection

    def rate_scope(self, scope_id, max_periods=None, still_held=None,
                   store=None):
        return worker.ScopeResult(scope_id, **self.outcomes[scope_id])

    sweep_lags = {'b': (MONTH + HOUR, 1), 'c': (MONTH, 2), 'd': (MONTH, 9)}

    def lags(self, scope_ids):
        self.sweeps.append(list(scope_ids))
        return {s: self.sweep_lags[s] for s in scope_ids}

    def lag(self, scope_id):
        self.lag_reads.append(scope_id)
        lag = self.lag_values[scope_id]
        if isinstance(lag, Exception):
            raise lag
        return lag


class OnePass(processor.Processor):
    """run_forever for one pass."""

    def run_pass(self, scope_ids=None):
        summary = super().run_pass(scope_ids)
        self._stop.set()
        return summary


class FakeFetcher:
    def __init__(self, scopes):
        self.scopes = scopes

    def get_tenants(self):
        return list(self.scopes)


def test_a_pass_counts_each_scope_and_checks_the_lag_of_the_failed(caplog):
    caplog.set_level(logging.INFO)
    fake = FakeWorker(
        {'ok': {'rated': [MONTH, MONTH + HOUR]},
         'coll': {'error': 'x', 'failure': health.COLLECTION},
         'rate': {'rated': [MONTH], 'error': 'y', 'failure': health.RATING},
         'down': {'error': 'z', 'failure': health.RATING},
         'off': {'inactive': True}},
        {'coll': (MONTH, 9), 'rate': (MONTH, 2),
         'down': ConnectionError('no database')})
    counters = health.Counters()
    locks = processor.ck_lock.NoLocks()
    watched = health.Health(counters, health.PERIODS_RATED,
                            health.LagWatch(3))
    OnePass(fake, FakeFetcher(fake.outcomes), locks, shuffle=False,
            health=watched).run_forever(0)
    assert counters.snapshot() == {
        'ok': {'periods_rated': 2, 'periods_reprocessed': 0,
               'collection_errors': 0, 'rating_errors': 0},
        'coll': {'periods_rated': 0, 'periods_reprocessed': 0,
                 'collection_errors': 1, 'rating_errors': 0},
        'rate': {'periods_rated': 1, 'periods_reprocessed': 0,
                 'collection_errors': 0, 'rating_errors': 1},
        'down': {'periods_rated': 0, 'periods_reprocessed': 0,
                 'collection_errors': 0, 'rating_errors': 1}}
    # Only the failed scopes' lag is read; 'down' cannot be, no check.
    assert fake.lag_reads == ['coll', 'down', 'rate']
    assert messages(caplog) == [
        ('WARNING', 'Scope coll is 9 periods behind (more than '
                    'lag_warning_periods = 3): last processed period '
                    '2024-03-01T00:00:00+00:00')]

    # The next pass rates it: its lag is read again, and it recovered.
    caplog.clear()
    fake.outcomes['coll'] = {'rated': [MONTH + HOUR] * 9}
    fake.lag_values['coll'] = (MONTH + 9 * HOUR, 0)
    fake.lag_reads.clear()
    OnePass(fake, FakeFetcher(['coll', 'ok']), locks, shuffle=False,
            health=watched).run_forever(0)
    assert fake.lag_reads == ['coll']
    assert counters.snapshot()['coll']['periods_rated'] == 9
    assert messages(caplog) == [
        ('INFO', 'Scope coll is no longer behind: 0 periods due, last '
                 'processed period 2024-03-01T09:00:00+00:00')]


def test_reprocessing_counts_in_its_own_counter():
    counters = health.Counters()
    record = health.Health(counters, health.PERIODS_REPROCESSED)
    record.record('a', worker.ScopeResult('a', rated=[MONTH, MONTH + HOUR]))
    record.pass_done(lambda scope_id: pytest.fail('no lag check'))
    assert counters.snapshot()['a']['periods_reprocessed'] == 2
    assert counters.snapshot()['a']['periods_rated'] == 0
