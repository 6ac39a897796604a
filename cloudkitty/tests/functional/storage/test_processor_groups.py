"""The processor's grouped store on a real database: the periods of a group
are committed together or not at all, and a scope's state is recorded
only once they are; a crash at any step, then a pass again, leaves every
period stored exactly once (row counts and sums to the last digit)."""

import datetime
import decimal

import pytest

from cloudkitty import dataframe
from cloudkitty.orchestrator import lock
from cloudkitty.orchestrator import processor
from cloudkitty.orchestrator import worker
from cloudkitty import testing
from cloudkitty.tests.functional.storage.test_sqlalchemy import count

UTC = datetime.timezone.utc
HOUR = datetime.timedelta(hours=1)
T0 = datetime.datetime(2024, 3, 1, tzinfo=UTC)
#: 4 periods due for each scope (1h to 4h) when rated at NOW.
NOW = T0 + 6 * HOUR + HOUR // 2
PERIODS = [T0 + h * HOUR for h in range(1, 5)]
SCOPES = ['s1', 's2', 's3']
METRICS = ['cpu', 'ram']
RESOURCES = 3
#: Points of a period: 6; a group is stored once 25 points are pending:
#: every 5 periods (30 points), then the last 2 periods at the end of the
#: pass (12 points), of the 12 periods of the pass.
STORE_POINTS = 25


class Crash(BaseException):
    """The process dies here: nothing catches it, nothing after it runs."""


class Collector:
    """Three resources per scope, metric and period; values with 28
    decimals, unique to each point."""

    def retrieve(self, metric, start, end, project_id=None, q_filter=None):
        return metric, points(project_id, metric, start)


def points(scope, metric, start):
    hour = (start - T0) // HOUR
    tag = f'{SCOPES.index(scope)}{METRICS.index(metric)}{hour}'
    return [dataframe.DataPoint(
        'u', decimal.Decimal(f'{r + 1}.{tag}{"7" * 25}'),
        decimal.Decimal(f'0.{tag}{r}{"3" * 24}'),
        {'project_id': scope, 'id': f'{scope}-{r}'}, {'flavor': 'small'})
        for r in range(RESOURCES)]


def expected():
    """``{scope: (points, sum of qty, sum of price)}`` of every period."""
    found = {}
    for scope in SCOPES:
        every = [p for metric in METRICS for start in PERIODS
                 for p in points(scope, metric, start)]
        with decimal.localcontext() as context:
            context.prec = 100
            found[scope] = (len(every), sum(p.qty for p in every),
                            sum(p.price for p in every))
    return found


def stored(storage):
    """What is stored, as :func:`expected` says it, and the row count."""
    rows = storage.total(groupby=['project_id'], begin=T0,
                         end=T0 + 24 * HOUR)['results']
    found = {}
    for row in rows:
        scope = row['project_id']
        found[scope] = (storage.retrieve(
            begin=T0, end=T0 + 24 * HOUR, filters={'project_id': scope},
            limit=1)['total'], row['qty'], row['rate'])
    return found, count(storage, 'rated_points')


def run_pass(storage, state):
    scope_worker = worker.ScopeWorker(
        Collector(), storage, state, METRICS,
        worker.Settings(period=3600, wait_periods=2, max_threads=2,
                        collector_request_timeout=10),
        clock=lambda: NOW)
    return processor.Processor(scope_worker, None, lock.NoLocks(),
                               shuffle=False,
                               store_points=STORE_POINTS).run_pass(SCOPES)


def test_a_pass_stores_and_records_every_period(storage):
    state = testing.ScopeState(last={s: T0 for s in SCOPES})
    summary = run_pass(storage, state)
    assert summary.rated == {s: 4 for s in SCOPES}
    assert state.last == {s: PERIODS[-1] for s in SCOPES}
    assert stored(storage) == (expected(), 72)


def crash_in_the_store(storage, monkeypatch, calls):
    """The ``calls``-th store of the pass dies after its points are
    written, before its commit."""
    real = storage._writer.store_totals
    seen = []

    def dying(conn, totals):
        real(conn, totals)
        seen.append(1)
        if len(seen) == calls:
            raise Crash()
    monkeypatch.setattr(storage._writer, 'store_totals', dying)


def crash_in_the_record(state, monkeypatch, records):
    """The process dies when it records for the ``records``-th time
    (after the periods it records were committed)."""
    real = state.set_last_processed_timestamp
    seen = []

    def dying(scope_id, timestamp, **parts):
        seen.append(1)
        if len(seen) == records:
            raise Crash()
        real(scope_id, timestamp, **parts)
    monkeypatch.setattr(state, 'set_last_processed_timestamp', dying)


@pytest.mark.parametrize('where', ['store 1', 'store 2', 'store 3',
                                   'record 1', 'record 2', 'record 4'])
def test_a_crash_then_a_pass_stores_each_period_exactly_once(
        storage, monkeypatch, where):
    step, nth = where.split()
    state = testing.ScopeState(last={s: T0 for s in SCOPES})
    with monkeypatch.context() as patches:
        if step == 'store':
            crash_in_the_store(storage, patches, int(nth))
        else:
            crash_in_the_record(state, patches, int(nth))
        with pytest.raises(Crash):
            run_pass(storage, state)
    # Stored together or not at all: each group is in the database whole,
    # or absent.
    assert stored(storage)[1] in (0, 30, 60, 72)
    # What a scope's state says was done is stored.
    for scope, last in state.last.items():
        done = sum(1 for start in PERIODS if start <= last)
        assert storage.retrieve(
            begin=T0, end=last + HOUR, filters={'project_id': scope},
            limit=1)['total'] == done * len(METRICS) * RESOURCES
    # The process starts again: a pass.
    summary = run_pass(storage, state)
    assert not summary.failed
    assert state.last == {s: PERIODS[-1] for s in SCOPES}
    assert stored(storage) == (expected(), 72)
