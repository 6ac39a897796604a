"""The real ``cloudkitty-processor`` on SQLite with the file collector.

Each test builds a scenario (:class:`~cloudkitty.tests.functional.harness.
Scenario`) in a temporary directory: usage files, a metrics.yml, a
configuration file and a migrated SQLite database whose scopes start a day
or so in the past. The expected rated data is computed from the generated
usage, independently of the collector and the storage.
"""

import collections
import datetime
import decimal
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from cloudkitty.tests.functional.harness import HOUR
from cloudkitty.tests.functional.harness import modules_loaded_by
from cloudkitty.tests.functional.harness import our_lines
from cloudkitty.tests.functional.harness import ROOT
from cloudkitty.tests.functional.harness import run_cli
from cloudkitty.tests.functional.harness import Scenario
from cloudkitty.tests.functional.harness import stop
from cloudkitty.tests.functional.harness import subprocess_env


@pytest.mark.parametrize('metrics_yml, words', [
    ('metrics:\n  cpu:\n    groupby: [id]\n', ["metric 'cpu'", "'unit'"]),
    ('metrics:\n  cpu:\n    unit: instance\n    mutate: BOGUS\n',
     ["metric 'cpu'", "'mutate'"]),
    (('metrics:\n  cpu:\n    unit: instance\n'
      '    skip_datapoints_expression: "__import__(\'os\')"\n'),
     ["metric 'cpu'", 'skip_datapoints_expression', 'not allowed']),
    ('metrics: [1, 2\n', ['invalid YAML']),
])
def test_invalid_configuration_exits_with_one_clear_line(tmp_path,
                                                         metrics_yml, words):
    result = run_cli(tmp_path, metrics_yml)
    assert result.returncode == 1
    line, = our_lines(result.stderr)
    assert line.startswith('cloudkitty-processor: invalid configuration')
    for word in words:
        assert word in line
    assert 'Traceback' not in result.stderr + result.stdout


def test_invalid_default_skip_expression_is_refused(tmp_path):
    result = run_cli(
        tmp_path, 'metrics:\n  cpu:\n    unit: instance\n',
        extra_conf='\n[orchestrator]\nskip_datapoints_expression = '
                   'datapoint.qty.__class__\n')
    assert result.returncode == 1
    line, = our_lines(result.stderr)
    assert '[orchestrator] skip_datapoints_expression' in line
    assert 'not allowed' in line


def test_unknown_collector_is_refused(tmp_path):
    result = run_cli(tmp_path, 'metrics:\n  cpu:\n    unit: instance\n',
                     collector='nosuchcollector')
    assert result.returncode == 1
    line, = our_lines(result.stderr)
    assert "'nosuchcollector' cannot be loaded" in line


NOISY_LIBRARY = """\
import warnings


class LibraryDeprecationWarning(UserWarning):
    pass


warnings.warn('DSA is deprecated and support will be removed',
              LibraryDeprecationWarning)
warnings.warn('old_call() is deprecated', DeprecationWarning)
warnings.warn('\\nEventlet is deprecated. It is currently being maintained',
              Warning)
warnings.warn('a warning that says something else', UserWarning)
"""


def test_third_party_deprecations_stay_off_a_console_script(tmp_path):
    # A library that warns of its deprecations when imported, as
    # cryptography (through dnspython) and eventlet do: the processor's
    # stderr holds its one line and the library's other warning, nothing of
    # the deprecations.
    (tmp_path / 'noisy_library.py').write_text(NOISY_LIBRARY)
    metrics = tmp_path / 'metrics.yml'
    metrics.write_text('metrics:\n  cpu:\n    groupby: [id]\n')
    config = tmp_path / 'bad.conf'
    config.write_text(f'[collect]\nmetrics_conf = {metrics}\n')
    env = subprocess_env()
    env['PYTHONPATH'] += os.pathsep + str(tmp_path)
    result = subprocess.run(
        [sys.executable, '-c',
         'import sys, cloudkitty, noisy_library\n'
         'from cloudkitty.cli import processor\n'
         'sys.exit(processor.main())\n', '--config-file', str(config)],
        check=False, cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=60)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert [line for line in lines if 'Warning:' in line] == [
        f'{tmp_path}/noisy_library.py:13: UserWarning: a warning that '
        'says something else'], result.stderr
    assert our_lines(result.stderr) == [
        f"cloudkitty-processor: invalid configuration: {metrics}: metric "
        "'cpu': key 'unit': required key not provided"]


# -- rating ---------------------------------------------------------------------

def test_processor_stores_every_period_exactly_once(tmp_path):
    scenario = Scenario(tmp_path, scopes=3, hours=24, max_workers=2)
    process = scenario.start()
    try:
        assert scenario.wait_until(scenario.caught_up, 90, process), \
            scenario.states()
    finally:
        code, err = stop(process)
    assert code == 0, err
    expected = scenario.assert_stored_exactly_once()
    # The storage's own totals agree, digit for digit.
    totals = collections.defaultdict(decimal.Decimal)
    for (_, type_, _, _), qty in expected.items():
        totals[type_] += qty
    result = scenario.storage().total(
        groupby=['type'], begin=scenario.base,
        end=scenario.last_data_period + HOUR, paginate=False)
    assert {row['type']: row['qty'] for row in result['results']} == totals
    assert 'Traceback' not in (tmp_path / 'ck.log').read_text()


def test_sigterm_exits_promptly_and_stores_no_half_period(tmp_path):
    scenario = Scenario(tmp_path, scopes=2, hours=120, seed=3)
    process = scenario.start()

    def started():
        return any(last > scenario.base
                   for last in scenario.states().values())
    assert scenario.wait_until(started, 60, process)
    began = time.monotonic()
    code, err = stop(process, signal.SIGTERM, timeout=30)
    elapsed = time.monotonic() - began
    assert code == 0, err
    assert elapsed < 10
    assert not scenario.caught_up()  # it was stopped in the middle
    # What is recorded is stored, exactly; nothing after it is.
    scenario.assert_stored_exactly_once(upto=scenario.states())
    # Locks were released: a new processor finishes the work.
    process = scenario.start()
    try:
        assert scenario.wait_until(scenario.caught_up, 90, process)
    finally:
        code, err = stop(process)
    assert code == 0, err
    scenario.assert_stored_exactly_once()


def test_processor_survives_a_database_outage(tmp_path):
    # The database is built in "prepared/" while the processor is told to
    # use "live/", which does not exist yet: SQLite cannot open it.
    live = tmp_path / 'live' / 'ck.sqlite'
    (tmp_path / 'prepared').mkdir()
    scenario = Scenario(tmp_path, scopes=2, hours=4,
                        database=tmp_path / 'prepared' / 'ck.sqlite')
    scenario.database = live
    scenario.config = scenario.write_config('ck')
    process = scenario.start(wait=False)
    try:
        log = tmp_path / 'ck.log'

        def scopes_failing():
            # The rating workers' own lines, naming the scope: the
            # reprocessing worker may log the outage first.
            return log.exists() and any(
                scope in line and 'abandoned' in line
                and 'unable to open database file' in line
                for scope in scenario.scopes
                for line in log.read_text().splitlines())
        assert scenario.wait_until(scopes_failing, 60, process)
        os.rename(tmp_path / 'prepared', tmp_path / 'live')
        assert scenario.wait_until(scenario.caught_up, 60, process)
    finally:
        code, err = stop(process)
    assert code == 0, err
    scenario.assert_stored_exactly_once()


# -- run_until_caught_up --------------------------------------------------------

def test_run_until_caught_up_rates_everything_in_process(tmp_path):
    from cloudkitty.orchestrator import processor
    scenario = Scenario(tmp_path, scopes=2, hours=6, seed=1)
    conf = scenario.conf()
    summary = processor.run_until_caught_up(conf)
    assert summary['failed'] == {} and summary['locked'] == []
    assert summary['scopes'] == scenario.scopes
    assert all(summary['rated'][scope] >= 6 for scope in scenario.scopes)
    assert summary['periods'] == sum(summary['rated'].values())
    scenario.assert_stored_exactly_once()
    # Nothing left: a second call rates at most a period that became due
    # in between (an hour boundary).
    assert processor.run_until_caught_up(conf)['periods'] <= 2


def test_run_until_caught_up_reports_a_failing_collector(tmp_path, caplog):
    from cloudkitty.orchestrator import processor
    scenario = Scenario(tmp_path, scopes=2, hours=2)
    with open(scenario.usage / 'broken.jsonl', 'w') as stream:
        stream.write('{"metric": "cpu", "scope": "x", "qty": "NaN?"}\n')
    summary = processor.run_until_caught_up(scenario.conf(), use_locks=False)
    assert set(summary['failed']) == set(scenario.scopes)
    assert summary['periods'] == 0
    for scope, error in summary['failed'].items():
        assert scope in error and 'metric' in error
    assert 'abandoned for this pass' in caplog.text
    assert scenario.stored() == {}


def test_run_until_caught_up_with_a_clock_stops_earlier(tmp_path):
    from cloudkitty.orchestrator import processor
    scenario = Scenario(tmp_path, scopes=1, hours=6, seed=2)
    # Under this clock only the first three data periods are due.
    now = scenario.base + 3 * HOUR + 2 * HOUR + datetime.timedelta(seconds=1)
    summary = processor.run_until_caught_up(scenario.conf(),
                                            clock=lambda: now)
    assert summary['periods'] == 3
    assert scenario.states() == {scenario.scopes[0]: scenario.base + 3 * HOUR}


# -- reprocessing -----------------------------------------------------------------

def test_a_reprocessing_task_rates_its_window_again(tmp_path):
    from cloudkitty import db
    from cloudkitty.orchestrator import processor
    from cloudkitty.storage_state import reprocessing
    scenario = Scenario(tmp_path, scopes=2, hours=8, seed=4)
    assert not processor.run_until_caught_up(scenario.conf(),
                                             use_locks=False)['failed']
    states = scenario.states()
    # Late usage arrives for periods already rated: a new instance in the
    # window [base + 2h, base + 4h] of the first scope.
    scope = scenario.scopes[0]
    first, last = scenario.base + 2 * HOUR, scenario.base + 4 * HOUR
    extra = [{'metric': 'cpu', 'scope': scope,
              'time': (first + i * HOUR + 10 * HOUR / 60).isoformat(),
              'qty': 1, 'labels': {'id': 'vm-late', 'flavor': 'm1.late'}}
             for i in range(3)]
    with open(scenario.usage / 'late.jsonl', 'w') as stream:
        stream.writelines(json.dumps(record) + '\n' for record in extra)
    scenario.records.extend(extra)
    engine = db.create_engine(f'sqlite:///{scenario.database}')
    schedule = reprocessing.ReprocessingScheduleManager(engine)
    task, = schedule.create([scope], 'late usage', first, last)

    def finished():
        current = next(t for t in schedule.get_all()
                       if t['id'] == task['id'])['current_reprocess_time']
        return current is not None and current >= last

    process = scenario.start()
    try:
        assert scenario.wait_until(finished, 60, process)
    finally:
        code, err = stop(process)
        engine.dispose()
    assert code == 0, err
    scenario.assert_stored_exactly_once()
    stored = scenario.stored()
    assert all(stored[(scope, 'cpu', first + i * HOUR, 'vm-late')] == [1]
               for i in range(3))
    # The scope state is not moved back to the window (an hour boundary
    # passed meanwhile may have made one more period due).
    for scope_id, before in scenario.states().items():
        assert states[scope_id] <= before <= states[scope_id] + HOUR


def test_the_processor_and_its_rating_modules_import_no_web_framework():
    """Rating modules name their API controllers by dotted path: loading
    them in the processor leaves Pecan and WSME to the API process."""
    code = ('from cloudkitty.orchestrator import processor\n'
            'from cloudkitty import rating\n'
            'modules = rating.load_modules()\n'
            'assert {"hashmap", "noop", "pyscripts"} <= set(modules)\n')
    assert modules_loaded_by(code, ('pecan', 'wsme')) == '[]'
