"""The periods of a pass stored together (StoreGroup), through the
processor's passes, with the worker's doubles."""

import contextlib
import decimal
import logging

from cloudkitty import dataframe
from cloudkitty.orchestrator import batch
from cloudkitty.orchestrator import health
from cloudkitty.orchestrator import processor
from cloudkitty import rating
from cloudkitty import testing
from cloudkitty.tests.unit.worker_doubles import HOUR
from cloudkitty.tests.unit.worker_doubles import make_worker
from cloudkitty.tests.unit.worker_doubles import MONTH
from cloudkitty.tests.unit.worker_doubles import point

#: Three periods due for a scope whose state is MONTH: 1h, 2h and 3h.
NOW = MONTH + 5 * HOUR + HOUR // 2
LAST = {'a': MONTH, 'b': MONTH, 'c': MONTH}
STARTS = [MONTH + HOUR, MONTH + 2 * HOUR, MONTH + 3 * HOUR]


class Storage(testing.Storage):
    """Counts the ``replace_many`` calls and the points of each."""

    def __init__(self, journal):
        super().__init__(journal)
        self.calls = []

    def replace_many(self, items):
        self.calls.append(sum(len(frame) for frame, _ in items))
        super().replace_many(items)


class Locks:
    """Every lock free; the lock of a scope of ``lost`` is found lost
    once checked that many times (the worker checks it before handing
    each period over). Acquisitions and releases go to the journal."""

    def __init__(self, journal, lost=None):
        self.journal = journal
        self.lost = dict(lost or {})

    def start(self):
        return True

    def share(self, scope_ids):
        return list(scope_ids)

    def share_changed(self):
        return False

    @contextlib.contextmanager
    def hold(self, scope_id):
        self.journal.append(('lock', scope_id))
        try:
            yield True
        finally:
            self.journal.append(('release', scope_id))

    def still_held(self, scope_id):
        if scope_id not in self.lost:
            return True
        self.lost[scope_id] -= 1
        return self.lost[scope_id] >= 0


def run(store_points=batch.MAX_POINTS, lost=None, fail=None, state_fail=None,
        scopes=('a', 'b', 'c'), modules=None):
    journal = []
    storage = Storage(journal)
    storage.fail = fail
    state = testing.ScopeState(journal, LAST)
    state.fail = state_fail
    scope_worker, *_ = make_worker(storage=storage, scope_state=state,
                                   journal=journal, clock=lambda: NOW,
                                   modules=modules)
    proc = processor.Processor(scope_worker, None, Locks(journal, lost),
                               shuffle=False, store_points=store_points)
    summary = proc.run_pass(list(scopes))
    return summary, storage, state, journal


def test_a_pass_stores_its_periods_in_one_call_then_records_them():
    summary, storage, state, journal = run()
    # Two points a period (cpu and ram), three periods, three scopes.
    assert storage.calls == [18]
    assert summary.rated == {'a': 3, 'b': 3, 'c': 3}
    assert state.last == {s: STARTS[-1] for s in 'abc'}
    assert sorted((p[0], p[1]) for p in storage.points) == sorted(
        (s, start) for s in 'abc' for start in STARTS for _ in range(2))
    # Every replace before the first state; each lock held until then.
    writes = [entry[0] for entry in journal]
    assert writes == ['lock', 'lock', 'lock'] + ['replace'] * 9 + [
        'state', 'state', 'state', 'release', 'release', 'release']


def test_the_pending_points_are_bounded():
    summary, storage, state, journal = run(store_points=4)
    # A flush once 4 points are pending, and the last partial group at
    # the end of the pass.
    assert storage.calls == [4, 4, 4, 4, 2]
    assert summary.rated == {'a': 3, 'b': 3, 'c': 3}
    assert state.last == {s: STARTS[-1] for s in 'abc'}
    # Each scope's state follows its stores; its lock is released once
    # its last period is recorded.
    assert journal.index(('state', 'a', STARTS[1])) < journal.index(
        ('replace', 'a', STARTS[2]))
    assert journal.index(('state', 'a', STARTS[2])) < journal.index(
        ('release', 'a'))


def test_the_last_partial_group_is_stored():
    summary, storage, state, _ = run(store_points=8)
    assert storage.calls == [8, 8, 2]
    assert len(storage.points) == 18
    assert state.last == {s: STARTS[-1] for s in 'abc'}


def test_a_scope_whose_lock_was_lost_is_neither_stored_nor_recorded(caplog):
    caplog.set_level(logging.INFO)
    # Held while its three periods were rated, lost at the store.
    summary, storage, state, journal = run(lost={'b': 3})
    assert {p[0] for p in storage.points} == {'a', 'c'}
    assert state.last == {'a': STARTS[-1], 'b': MONTH, 'c': STARTS[-1]}
    assert summary.rated == {'a': 3, 'c': 3}
    assert 'its lock was lost' in summary.failed['b']
    assert ('release', 'b') in journal
    assert (f'Scope b abandoned for this pass, to be retried: scope b: '
            f'periods {STARTS[0].isoformat()}, {STARTS[1].isoformat()}, '
            f'{STARTS[2].isoformat()} not stored nor recorded, its lock was '
            f'lost') in caplog.text
    assert caplog.text.count('Rated scope a period') == 3


def test_a_failed_store_records_nothing_and_stops_the_scope(caplog):
    summary, storage, state, journal = run(
        store_points=4, fail=ConnectionError('database went away'))
    # The first group (scope a's first two periods) failed: a rates no
    # more; b and c each fail their first group in turn.
    assert storage.calls == [4, 4, 4]
    assert state.last == LAST
    assert summary.rated == {}
    assert set(summary.failed) == {'a', 'b', 'c'}
    assert 'database went away' in summary.failed['a']
    assert [e for e in journal if e[0] == 'release'] == [
        ('release', s) for s in 'abc']
    assert not [e for e in journal if e[0] == 'state']
    # Said once per scope: by the group, or by the worker whose store
    # found its periods not stored.
    for scope in 'abc':
        assert caplog.text.count(f'Scope {scope} abandoned') == 1


def test_a_state_that_cannot_be_written_stops_the_scope():
    summary, storage, state, journal = run(
        store_points=4, state_fail=ConnectionError('state db down'))
    assert state.last == LAST
    assert summary.rated == {}
    assert 'recording its state failed' in summary.failed['a']
    # Stored, not recorded: rated again, replaced, on a later pass.
    replaced = [e for e in journal if e[0] == 'replace']
    assert replaced[:2] == [('replace', 'a', STARTS[0]),
                            ('replace', 'a', STARTS[1])]
    assert ('replace', 'a', STARTS[2]) not in replaced


def test_a_failure_is_told_to_the_health():
    journal = []
    storage = Storage(journal)
    storage.fail = ConnectionError('down')
    scope_worker, *_ = make_worker(storage=storage, journal=journal,
                                   scope_state=testing.ScopeState(
                                       journal, LAST), clock=lambda: NOW)
    told = health.Health()
    processor.Processor(scope_worker, None, Locks(journal), shuffle=False,
                        health=told).run_pass(['a'])
    assert told.counters.snapshot()['a'][health.RATING_ERRORS] == 1


def test_a_group_left_on_an_error_stores_nothing_and_releases():
    storage = Storage([])
    released = []
    finished = []
    frame = dataframe.DataFrame(STARTS[0], STARTS[1])
    frame.add_point(point(1), 'cpu')
    try:
        with batch.StoreGroup(storage) as group:
            group.store('a', frame, STARTS[0],
                        record=lambda: finished.append('recorded'))
            group.done('a', None, finished.append,
                       lambda: released.append('a'))
            raise RuntimeError('bug')
    except RuntimeError:
        pass
    assert storage.calls == [] and finished == [] and released == ['a']


class BulkModule(rating.RatingProcessorBase):
    """Prices every point 1 per unit of qty, the frames of a call at once;
    fails on scope ``failing``'s frame of period ``at``, and notes the
    scopes and starts of each call."""

    default_enabled = True

    def __init__(self, failing=None, at=None):
        super().__init__()
        self.module_name = 'bulk'
        self.failing, self.at = failing, at
        self.calls = []

    def process(self, data):
        raise AssertionError('rate is called with the scope')

    def rate(self, frame, scope_id):
        if (scope_id, frame.start) == (self.failing, self.at):
            raise ValueError(f'no rule for {scope_id}')
        return frame.with_prices({
            type_: [point.qty for point in points]
            for type_, points, _ in frame.itercolumns()})

    def rate_many(self, items):
        self.calls.append(([scope for _, scope in items],
                           {frame.start for frame, _ in items}))
        return [self.rate(frame, scope) for frame, scope in items]


def test_the_periods_of_a_flush_are_rated_together():
    module = BulkModule()
    summary, storage, state, _ = run(modules={'bulk': module})
    assert summary.rated == {'a': 3, 'b': 3, 'c': 3}
    # One call per period start, with the three scopes' frames of it.
    assert module.calls == [(['a', 'b', 'c'], {start}) for start in STARTS]
    # cpu 1, ram 2: priced their qty.
    assert sorted(point.price for *_, point in storage.points) == [
        decimal.Decimal(1)] * 9 + [decimal.Decimal(2)] * 9


def test_a_period_the_rating_fails_on_fails_its_scope_alone(caplog):
    module = BulkModule(failing='b', at=STARTS[1])
    summary, storage, state, journal = run(modules={'bulk': module})
    assert summary.rated == {'a': 3, 'c': 3}
    assert state.last == {'a': STARTS[-1], 'b': MONTH, 'c': STARTS[-1]}
    assert {p[0] for p in storage.points} == {'a', 'c'}
    assert summary.failed['b'] == (
        f'scope b: periods {STARTS[0].isoformat()}, {STARTS[1].isoformat()}'
        f', {STARTS[2].isoformat()} not stored nor recorded, rating failed: '
        'ValueError: no rule for b')
    assert ('release', 'b') in journal
    assert caplog.text.count('Scope b abandoned for this pass') == 1
