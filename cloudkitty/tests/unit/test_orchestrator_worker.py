"""The scope worker, with fakes for every collaborator."""

import datetime
import decimal
import io
import logging
import threading
import time

from oslo_config import cfg
from oslo_log import formatters as oslo_formatters
from oslo_log import log as oslo_log
import pytest

from cloudkitty import collector
from cloudkitty import dataframe
from cloudkitty.orchestrator import health
from cloudkitty.orchestrator import periods
from cloudkitty.orchestrator import skip
from cloudkitty.orchestrator import worker
from cloudkitty import rating
from cloudkitty import testing
from cloudkitty.tests.unit.worker_doubles import constant
from cloudkitty.tests.unit.worker_doubles import FakeCollector
from cloudkitty.tests.unit.worker_doubles import HOUR
from cloudkitty.tests.unit.worker_doubles import make_worker
from cloudkitty.tests.unit.worker_doubles import MONTH
from cloudkitty.tests.unit.worker_doubles import no_data
from cloudkitty.tests.unit.worker_doubles import NOW
from cloudkitty.tests.unit.worker_doubles import point


class PriceModule(rating.RatingProcessorBase):
    """Adds ``step`` to every price and notes the order it ran in."""

    def __init__(self, name, step, log, default_enabled=True):
        super().__init__()
        self.module_name = name
        self.step = decimal.Decimal(step)
        self.log = log
        self.default_enabled = default_enabled
        self.reloads = []
        self.after_process = None

    def reload_config(self, start=None):
        self.reloads.append(start)

    def process(self, data):
        self.log.append(self.module_name)
        out = dataframe.DataFrame(data.start, data.end)
        for type_, p in data.iterpoints():
            out.add_point(p.set_price(p.price * 10 + self.step), type_)
        if self.after_process:
            self.after_process()
        return out


# -- time-state rules -------------------------------------------------------

def test_a_visit_reads_the_scope_state_once_whatever_it_rates():
    four = NOW.replace(hour=4, minute=0)
    scope_worker, _, _, state, _ = make_worker(last={'p1': four},
                                               clock=lambda: NOW)
    rated = scope_worker.rate_scope('p1').rated
    # 05:00 .. 10:00: every period start S with S + 2 h before 12:30.
    assert rated == [four + h * HOUR for h in range(1, 7)]
    assert state.last['p1'] == rated[-1]
    assert state.reads == 1


def test_new_scope_starts_at_the_month_start():
    assert periods.next_period_start(None, 3600, 2, NOW) == MONTH


def test_first_period_of_a_new_scope_waits_like_any_other():
    assert periods.next_period_start(None, 3600, 2, MONTH + 2 * HOUR) is None
    assert periods.next_period_start(
        None, 3600, 2, MONTH + 2 * HOUR + datetime.timedelta(seconds=1)
    ) == MONTH


def test_next_period_due_strictly_after_wait_periods():
    last = MONTH + 5 * HOUR
    nxt = last + HOUR
    # due iff next + wait_periods * period < now
    assert periods.next_period_start(last, 3600, 2, nxt + 2 * HOUR) is None
    assert periods.next_period_start(
        last, 3600, 2, nxt + 2 * HOUR + datetime.timedelta(microseconds=1)
    ) == nxt
    assert periods.next_period_start(last, 3600, 0, nxt) is None
    assert periods.next_period_start(
        last, 3600, 0, nxt + datetime.timedelta(seconds=1)) == nxt


def test_settings_from_conf():
    from oslo_config import cfg

    from cloudkitty import conf as ck_conf
    conf = ck_conf.register_all(cfg.ConfigOpts())
    conf([], project='cloudkitty', default_config_files=[])
    conf.set_override('period', 600, 'collect')
    conf.set_override('max_threads', 3, 'orchestrator')
    settings = worker.Settings.from_conf(conf)
    assert settings == worker.Settings(600, 2, 3, 60, 'project_id')


# -- rating periods ---------------------------------------------------------

def test_rates_every_due_period_in_order_then_stops():
    now = MONTH + 5 * HOUR
    scope_worker, _, storage, state, _ = make_worker(clock=lambda: now)
    result = scope_worker.rate_scope('p1')
    # Periods starting at 0h, 1h, 2h are due (2h + 2h < 5h); 3h is not
    # (3h + 2h == 5h).
    assert result.rated == [MONTH, MONTH + HOUR, MONTH + 2 * HOUR]
    assert result.error is None
    assert state.last['p1'] == MONTH + 2 * HOUR
    assert sorted((p[1], p[2], p[3].qty) for p in storage.points) == sorted(
        (MONTH + i * HOUR, t, q) for i in range(3)
        for t, q in (('cpu_type', 1), ('ram_type', 2)))
    assert scope_worker.rate_scope('p1').rated == []


def test_max_periods_bounds_the_work():
    scope_worker, *_ = make_worker(last={'p1': MONTH})
    assert len(scope_worker.rate_scope('p1', max_periods=2).rated) == 2


def test_a_lost_lock_stores_nothing_more():
    """Fenced by a lock check, a worker stores periods while the lock is
    its own, and abandons the scope, storing nothing, once it is not."""
    scope_worker, _, storage, state, _ = make_worker(last={'p1': MONTH})
    checks = iter([True, True, False])
    result = scope_worker.rate_scope('p1', still_held=lambda: next(checks))
    start = MONTH + HOUR
    assert result.rated == [start, start + HOUR]
    assert 'its lock was lost' in result.error
    assert result.failure == health.RATING
    assert state.last['p1'] == start + HOUR
    assert {p[1] for p in storage.points} == {start, start + HOUR}
    # Without a check, nothing is checked.
    assert len(scope_worker.rate_scope('p1', max_periods=1).rated) == 1


def test_store_order_is_replace_then_state():
    scope_worker, _, _, _, journal = make_worker(last={'p1': MONTH})
    scope_worker.rate_scope('p1', max_periods=2)
    start = MONTH + HOUR
    assert journal == [
        ('replace', 'p1', start), ('state', 'p1', start),
        ('replace', 'p1', start + HOUR), ('state', 'p1', start + HOUR)]


def test_a_period_is_recorded_as_the_caller_says():
    scope_worker, _, storage, state, journal = make_worker(last={'p1': MONTH})
    start = MONTH + HOUR
    frame = scope_worker.rate_period(
        'p1', start, usage=scope_worker.usage('p1', start, start + HOUR),
        record=lambda: journal.append(('recorded', start)))
    assert journal == [('replace', 'p1', start), ('recorded', start)]
    assert state.last['p1'] == MONTH and len(frame) == 2


def test_a_period_attempted_twice_is_stored_once():
    # The push succeeds but the process "dies" before the state is written:
    # the period is still due and its second store replaces the first.
    scope_worker, _, storage, state, _ = make_worker(last={'p1': MONTH})
    storage.fail = ConnectionError('database went away')
    result = scope_worker.rate_scope('p1')
    assert 'database went away' in result.error
    assert state.last['p1'] == MONTH
    assert len(storage.points) == 2
    storage.fail = None
    scope_worker.rate_scope('p1', max_periods=1)
    assert state.last['p1'] == MONTH + HOUR
    assert len(storage.points) == 2


def test_no_data_skips_only_that_metric():
    scope_worker, _, storage, state, _ = make_worker(
        behaviour={'cpu': no_data, 'ram': constant(point(2))},
        last={'p1': MONTH})
    result = scope_worker.rate_scope('p1', max_periods=1)
    assert result.error is None
    assert [(p[2], p[3].qty) for p in storage.points] == [('ram_type', 2)]
    assert state.last['p1'] == MONTH + HOUR


def test_no_data_at_all_still_records_the_period():
    scope_worker, _, storage, state, journal = make_worker(
        behaviour={'cpu': no_data}, last={'p1': MONTH})
    scope_worker.rate_scope('p1', max_periods=1)
    assert storage.points == []
    assert state.last['p1'] == MONTH + HOUR
    assert [j[0] for j in journal] == ['replace', 'state']


def test_failing_collector_abandons_only_that_scope(caplog):
    def flaky(scope, start):
        if scope == 'bad':
            raise collector.CollectError('fake', 'ram', scope,
                                         'source unreachable')
        return [point(3)]

    scope_worker, _, _, state, journal = make_worker(
        behaviour={'cpu': constant(point(1)), 'ram': flaky},
        last={'bad': MONTH, 'good': MONTH})
    with caplog.at_level(logging.WARNING):
        bad = scope_worker.rate_scope('bad')
        good = scope_worker.rate_scope('good', max_periods=1)
    assert bad.rated == [] and 'source unreachable' in bad.error
    assert state.last['bad'] == MONTH
    assert not [j for j in journal if j[1] == 'bad']
    assert good.rated == [MONTH + HOUR] and good.error is None
    line = next(r.getMessage() for r in caplog.records
                if r.levelno == logging.WARNING)
    assert 'bad' in line and 'metric ram' in line
    assert 'source unreachable' in line


def test_any_exception_of_the_collector_abandons_the_scope():
    def broken(scope, start):
        raise KeyError('boom')

    scope_worker, _, storage, state, _ = make_worker(
        behaviour={'cpu': broken}, last={'p1': MONTH})
    result = scope_worker.rate_scope('p1')
    assert 'metric cpu' in result.error and 'boom' in result.error
    assert storage.points == [] and state.last['p1'] == MONTH


def test_a_metric_that_times_out_fails_the_period():
    release = threading.Event()

    def hangs(scope, start):
        release.wait(10)
        return [point(1)]

    settings = worker.Settings(period=3600, wait_periods=2, max_threads=4,
                               collector_request_timeout=0.3)
    scope_worker, _, storage, state, _ = make_worker(
        behaviour={'cpu': constant(point(1)), 'slow': hangs},
        last={'p1': MONTH}, settings=settings)
    began = time.monotonic()
    result = scope_worker.rate_scope('p1')
    elapsed = time.monotonic() - began
    release.set()
    assert 'metric slow' in result.error and 'timed out' in result.error
    assert 0.3 <= elapsed < 2
    assert storage.points == [] and state.last['p1'] == MONTH


def test_collection_is_concurrent_and_bounded_by_max_threads():
    def slow(scope, start):
        time.sleep(0.15)
        return [point(1)]

    behaviour = {f'm{i}': slow for i in range(6)}
    # Queued calls do not count against the timeout, only running ones.
    settings = worker.Settings(period=3600, wait_periods=2, max_threads=2,
                               collector_request_timeout=0.6)
    scope_worker, fake_collector, storage, _, _ = make_worker(
        behaviour=behaviour, last={'p1': MONTH}, settings=settings)
    began = time.monotonic()
    result = scope_worker.rate_scope('p1', max_periods=1)
    elapsed = time.monotonic() - began
    assert result.error is None
    assert fake_collector.most_running == 2
    assert len(storage.points) == 6
    assert elapsed < 0.15 * 6 * 0.8


def test_inactive_scope_is_skipped():
    journal = []
    scope_worker, fake_collector, *_ = make_worker(
        journal=journal, scope_state=testing.ScopeState(journal, inactive=['p1']))
    result = scope_worker.rate_scope('p1')
    assert result.inactive and result.rated == []
    assert fake_collector.calls == [] and journal == []


def test_stop_during_collection_stores_nothing():
    stop = threading.Event()

    def stops(scope, start):
        stop.set()
        time.sleep(0.3)
        return [point(1)]

    scope_worker, _, _, state, journal = make_worker(
        behaviour={'cpu': stops}, last={'p1': MONTH}, stop_event=stop)
    result = scope_worker.rate_scope('p1')
    assert result.rated == [] and 'stop requested' in result.error
    assert journal == [] and state.last['p1'] == MONTH


def test_stop_between_periods_finishes_the_current_one():
    stop = threading.Event()
    order = []
    module = PriceModule('m', 0, order)
    module.after_process = stop.set
    scope_worker, _, _, state, _ = make_worker(
        last={'p1': MONTH}, stop_event=stop, modules={'m': module})
    result = scope_worker.rate_scope('p1')
    # The stop came during rating, before storage: that period is dropped.
    assert result.rated == [] and state.last['p1'] == MONTH
    stop.clear()
    module.after_process = None
    assert len(scope_worker.rate_scope('p1', max_periods=1).rated) == 1


# -- rating pipeline --------------------------------------------------------

def test_modules_run_in_descending_priority_each_on_the_previous_output():
    order = []
    first = PriceModule('first', 1, order)
    second = PriceModule('second', 2, order)
    module_state = testing.ModuleState({
        'first': {'enabled': True, 'priority': 5},
        'second': {'enabled': True, 'priority': 1}})
    scope_worker, _, storage, _, _ = make_worker(
        behaviour={'cpu': constant(point(1))}, last={'p1': MONTH},
        modules={'second': second, 'first': first},
        module_state=module_state)
    scope_worker.rate_scope('p1', max_periods=1)
    assert order == ['first', 'second']
    # first: 0 * 10 + 1 = 1; second: 1 * 10 + 2 = 12
    assert [p[3].price for p in storage.points] == [12]


class ScopePriceModule(PriceModule):
    """Prices through rate(frame, scope_id): scope p2 has a rule of its
    own."""

    def rate(self, frame, scope_id):
        return PriceModule(self.module_name,
                           100 if scope_id == 'p2' else 1,
                           self.log).process(frame)


def test_modules_rate_with_the_scope_being_rated():
    module = ScopePriceModule('hashmap', 0, [])
    scope_worker, _, storage, _, _ = make_worker(
        behaviour={'cpu': constant(point(1))},
        last={'p1': MONTH, 'p2': MONTH}, modules={'hashmap': module},
        module_state=testing.ModuleState(
            {'hashmap': {'enabled': True, 'priority': 1}}))
    scope_worker.rate_scope('p1', max_periods=1)
    scope_worker.rate_scope('p2', max_periods=1)
    assert [p[3].price for p in storage.points] == [1, 100]


def test_module_changes_apply_from_the_next_period():
    order = []
    module = PriceModule('hashmap', 7, order, default_enabled=False)
    module_state = testing.ModuleState(
        {'hashmap': {'enabled': True, 'priority': 1}})

    def disable_after_first_period():
        module_state.states['hashmap']['enabled'] = False
    module.after_process = disable_after_first_period
    scope_worker, _, storage, _, _ = make_worker(
        behaviour={'cpu': constant(point(1))}, last={'p1': MONTH},
        modules={'hashmap': module}, module_state=module_state)
    scope_worker.rate_scope('p1', max_periods=3)
    prices = {p[1]: p[3].price for p in storage.points}
    assert prices == {MONTH + HOUR: 7, MONTH + 2 * HOUR: 0,
                      MONTH + 3 * HOUR: 0}
    assert module_state.reads == 3
    # Enabled again: applies to the next period.
    module_state.states['hashmap']['enabled'] = True
    module.after_process = None
    scope_worker.rate_scope('p1', max_periods=1)
    assert {p[1]: p[3].price for p in storage.points}[MONTH + 4 * HOUR] == 7


def test_reload_config_is_called_with_each_period_start():
    module = PriceModule('m', 0, [])
    scope_worker, *_ = make_worker(last={'p1': MONTH}, modules={'m': module})
    scope_worker.rate_scope('p1', max_periods=2)
    assert module.reloads == [MONTH + HOUR, MONTH + 2 * HOUR]


def test_the_scopes_of_a_round_load_the_rules_once():
    # A round hands each scope's period the same module states object:
    # the modules load their rules (read their revision) once for all, and
    # again for the next round's states, or for a period of another start.
    module = PriceModule('m', 0, [])
    scope_worker, *_ = make_worker(
        last={'p1': MONTH, 'p2': MONTH, 'p3': MONTH}, modules={'m': module})
    round_states, next_round = {}, {}
    for scope_id in ('p1', 'p2', 'p3'):
        scope_worker.rate_scope(scope_id, max_periods=1,
                                states=lambda start: round_states)
    assert module.reloads == [MONTH + HOUR]
    scope_worker.rate_scope('p1', max_periods=1,
                            states=lambda start: round_states)
    assert module.reloads == [MONTH + HOUR, MONTH + 2 * HOUR]
    scope_worker.rate_scope('p2', max_periods=1,
                            states=lambda start: next_round)
    assert module.reloads == [MONTH + HOUR, MONTH + 2 * HOUR,
                              MONTH + 2 * HOUR]


def test_module_state_failure_abandons_the_scope():
    class Down:
        def get_all(self):
            raise ConnectionError('no database')

    scope_worker, _, storage, state, _ = make_worker(
        last={'p1': MONTH}, module_state=Down(),
        modules={'m': PriceModule('m', 0, [])})
    result = scope_worker.rate_scope('p1')
    assert 'no database' in result.error
    assert storage.points == [] and state.last['p1'] == MONTH


# -- skip expressions -------------------------------------------------------

def test_skip_expressions_drop_points_after_rating():
    behaviour = {
        'cpu': constant(point(0, flavor='a'), point(1, flavor='b')),
        'ram': constant(point(0), point(5)),
    }
    predicates = skip.compile_metric_predicates(
        {'cpu': {'alt_name': 'cpu_type', 'skip_datapoints_expression':
                 "datapoint.groupby.get('flavor') == 'a'"}},
        'datapoint.price == 1')
    module = PriceModule('m', 0, [])
    module.step = decimal.Decimal(1)  # every price becomes 1 ...
    scope_worker, _, storage, _, _ = make_worker(
        behaviour=behaviour, last={'p1': MONTH}, skip_predicates=predicates,
        modules={'m': module})
    scope_worker.rate_scope('p1', max_periods=1)
    # cpu_type: its own expression drops flavor a only; ram_type: the
    # default expression sees the rated price (1) and drops both.
    assert [(p[2], p[3].qty) for p in storage.points] == [('cpu_type', 1)]


def test_a_failing_skip_expression_keeps_the_point(caplog):
    predicates = skip.compile_metric_predicates(
        {}, "datapoint.groupby['missing'] == 1")
    scope_worker, _, storage, _, _ = make_worker(
        behaviour={'cpu': constant(point(1), point(2))}, last={'p1': MONTH},
        skip_predicates=predicates)
    with caplog.at_level(logging.WARNING):
        scope_worker.rate_scope('p1', max_periods=1)
    assert len(storage.points) == 2
    assert 'failed on 2 points' in caplog.text


class ColumnPriceModule(PriceModule):
    """Prices every point ``step`` through price columns, as the hashmap
    does, and keeps the frame it returns in ``priced``."""

    def process(self, data):
        self.priced = data.with_prices({
            type_: [self.step] * len(points)
            for type_, points, _ in data.itercolumns()})
        return self.priced


@pytest.mark.parametrize('expression', [None, 'datapoint.price == 0'])
def test_without_skip_expression_the_rated_frame_is_stored_as_is(
        expression):
    """No predicate: the rated frame itself goes to the storage, its price
    columns unread (no point rebuilt); with one, a filtered copy."""
    frames = []

    class Storage(testing.Storage):
        def replace_many(self, items):
            frames.extend(frame for frame, _ in items)
            super().replace_many(items)

    module = ColumnPriceModule('m', '0.5', [])
    scope_worker, _, storage, _, _ = make_worker(
        last={'p1': MONTH}, modules={'m': module}, storage=Storage(),
        skip_predicates=skip.compile_metric_predicates({}, expression))
    scope_worker.rate_scope('p1', max_periods=1)
    assert (frames[0] is module.priced) is (expression is None)
    assert [p[3].price for p in storage.points] == [decimal.Decimal('0.5')] * 2


def test_scope_abandoned_message_names_scope_metric_and_period():
    exc = worker.ScopeAbandoned('p1', 'boom', metric='cpu',
                                period_start=MONTH)
    assert str(exc) == 'scope p1 period 2024-03-01T00:00:00+00:00 ' \
        'metric cpu: boom'


@pytest.mark.parametrize('error', [
    worker.ScopeAbandoned('p1', 'boom', metric='cpu', period_start=MONTH),
    ConnectionError('boom'),
])
def test_an_abandoned_scope_is_said_once_in_an_oslo_log_line(error):
    # oslo.log appends the exception being handled to a warning logged
    # inside an except clause.
    conf = cfg.ConfigOpts()
    oslo_log.register_options(conf)
    conf([], default_config_files=[])
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(oslo_formatters.ContextFormatter(
        config=conf, project='cloudkitty', version='test'))
    worker.LOG.addHandler(handler)

    def work():
        raise error
    try:
        result = worker.ScopeWorker._guarded(worker.ScopeResult('p1'),
                                             'Scope', work)
    finally:
        worker.LOG.removeHandler(handler)
    assert result.error.count('boom') == 1
    lines = [line for line in stream.getvalue().splitlines()
             if 'abandoned' in line]
    assert len(lines) == 1 and lines[0].count('boom') == 1, lines
    assert lines[0].endswith(f'Scope p1 abandoned for this pass, to be '
                             f'retried: {result.error}')


@pytest.mark.parametrize('metrics', [[]])
def test_no_metrics_stores_empty_periods(metrics):
    journal = []
    storage = testing.Storage(journal)
    state = testing.ScopeState(journal, {'p1': MONTH})
    scope_worker = worker.ScopeWorker(
        FakeCollector({}), storage, state, metrics, worker.Settings(),
        clock=lambda: NOW)
    assert len(scope_worker.rate_scope('p1', max_periods=1).rated) == 1


# -- reprocessing -------------------------------------------------------------

class FakeSchedule:
    def __init__(self, journal):
        self.journal = journal

    def set_current_reprocess_time(self, task_id, timestamp):
        self.journal.append(('current', task_id, timestamp))


def task(start, end, current=None):
    return {'id': 7, 'identifier': 'p1', 'start_reprocess_time': start,
            'end_reprocess_time': end, 'current_reprocess_time': current}


def test_next_reprocess_start():
    end = MONTH + 2 * HOUR
    assert periods.next_reprocess_start(MONTH, end, None, 3600) == MONTH
    assert periods.next_reprocess_start(MONTH, end, MONTH, 3600) == \
        MONTH + HOUR
    assert periods.next_reprocess_start(MONTH, end, end - HOUR, 3600) == end
    assert periods.next_reprocess_start(MONTH, end, end, 3600) is None
    assert periods.next_reprocess_start(MONTH, MONTH, None, 3600) == MONTH


def test_reprocessing_clears_the_window_then_rates_each_period():
    scope_worker, _, storage, state, journal = make_worker(
        behaviour={'cpu': constant(point(1))},
        last={'p1': MONTH + 9 * HOUR})
    storage.points = [('p1', MONTH + i * HOUR, 'cpu_type', point(5))
                      for i in range(10)]
    result = scope_worker.reprocess(task(MONTH + HOUR, MONTH + 3 * HOUR),
                                    FakeSchedule(journal))
    assert result.rated == [MONTH + HOUR, MONTH + 2 * HOUR, MONTH + 3 * HOUR]
    assert journal[0] == ('delete', 'p1', MONTH + HOUR, MONTH + 4 * HOUR)
    assert [j for j in journal if j[0] == 'current'] == [
        ('current', 7, MONTH + HOUR), ('current', 7, MONTH + 2 * HOUR),
        ('current', 7, MONTH + 3 * HOUR)]
    # The scope state is the regular processor's, untouched.
    assert state.last['p1'] == MONTH + 9 * HOUR
    assert not [j for j in journal if j[0] == 'state']
    assert sorted((p[1], p[3].qty) for p in storage.points) == sorted(
        [(MONTH + i * HOUR, 5) for i in (0, 4, 5, 6, 7, 8, 9)]
        + [(MONTH + i * HOUR, 1) for i in (1, 2, 3)])


def test_reprocessing_resumes_without_clearing_again():
    scope_worker, _, _, _, journal = make_worker(
        behaviour={'cpu': constant(point(1))})
    result = scope_worker.reprocess(
        task(MONTH, MONTH + 3 * HOUR, current=MONTH + HOUR),
        FakeSchedule(journal))
    assert result.rated == [MONTH + 2 * HOUR, MONTH + 3 * HOUR]
    assert [j for j in journal if j[0] != 'current'] == [
        ('replace', 'p1', MONTH + 2 * HOUR),
        ('replace', 'p1', MONTH + 3 * HOUR)]


def test_reprocessing_failure_keeps_the_task_where_it_was(caplog):
    def broken(scope, start):
        if start == MONTH + HOUR:
            raise collector.CollectError('fake', 'cpu', scope, 'down')
        return [point(1)]

    scope_worker, _, _, _, journal = make_worker(behaviour={'cpu': broken})
    result = scope_worker.reprocess(task(MONTH, MONTH + 3 * HOUR),
                                    FakeSchedule(journal))
    assert result.rated == [MONTH] and 'down' in result.error
    assert [j for j in journal if j[0] == 'current'] == [
        ('current', 7, MONTH)]
    assert 'Reprocessing of scope p1 abandoned' in caplog.text
