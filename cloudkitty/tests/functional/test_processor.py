"""The real ``cloudkitty-processor`` on SQLite with the file collector.

Each test builds a scenario in a temporary directory: usage files, a
metrics.yml, a configuration file and a migrated SQLite database whose
scopes start a day or so in the past. The expected rated data is computed
from the generated usage, independently of the collector and the storage.
"""

import collections
import datetime
import decimal
import fractions
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import uuid

import pytest

UTC = datetime.timezone.utc
HOUR = datetime.timedelta(hours=1)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

METRICS_YML = """\
metrics:
  cpu:
    unit: instance
    groupby: [id]
    metadata: [flavor]
    skip_datapoints_expression: "datapoint.metadata.get('flavor') == 'test'"
  volume.size:
    - unit: GiB
      alt_name: volume
      groupby: [id]
      metadata: [volume_type]
      factor: 1/1024
    - unit: volume
      alt_name: volume_count
      groupby: [id]
      mutate: NUMBOOL
  net.bytes:
    unit: MB
    alt_name: traffic
    groupby: [id]
    factor: 1/1000000
    offset: 0
"""

CONF_TEMPLATE = """\
[DEFAULT]
log_file = {log_file}
debug = {debug}

[collect]
collector = file
period = 3600
wait_periods = 2
metrics_conf = {metrics}
scope_key = project_id

[collector_file]
usage_path = {usage}

[fetcher]
backend = source

[fetcher_source]
sources = {scopes}

[orchestrator]
coordination_url = {coordination_url}
max_workers = {max_workers}
max_workers_reprocessing = 1
max_threads = 4
collector_request_timeout = 30
process_interval = 0.2

[database]
connection = {url}

[storage]
backend = sqlalchemy
"""


def floor_hour(moment):
    return moment.replace(minute=0, second=0, microsecond=0)


class Scenario:
    """Usage, configuration and database of one processor test.

    ``scopes`` scopes each start with ``last_processed_timestamp`` at
    ``base``; usage covers the ``hours`` periods after it. Every one of
    those periods is due when the scenario is built (the last one starts
    six hours before the current hour).
    """

    def __init__(self, tmp_path, scopes=3, hours=24, seed=0, max_workers=1,
                 coordination_url=None, metrics_yml=METRICS_YML, name='ck',
                 database=None, url=None):
        self.tmp = tmp_path
        self.rng = random.Random(seed)
        tag = uuid.uuid4().hex[:8]
        self.scopes = [f'scope{i}-{tag}' for i in range(scopes)]
        self.hours = hours
        self.base = floor_hour(datetime.datetime.now(UTC)) - (hours + 6) * HOUR
        self.last_data_period = self.base + hours * HOUR
        self.database = database or tmp_path / f'{name}.sqlite'
        self._url = url
        self.usage = tmp_path / 'usage'
        self.usage.mkdir(exist_ok=True)
        self.metrics = tmp_path / 'metrics.yml'
        self.metrics.write_text(metrics_yml)
        self.coordination_url = coordination_url or f'file://{tmp_path}/locks'
        self.records = self._write_usage()
        self.config = self.write_config(name, max_workers)
        self._setup_database()

    @property
    def url(self):
        """The database's SQLAlchemy URL (``url``, else the SQLite file
        ``database``)."""
        return self._url or f'sqlite:///{self.database}'

    def write_config(self, name, max_workers=1, debug=False):
        path = self.tmp / f'{name}.conf'
        path.write_text(CONF_TEMPLATE.format(
            log_file=self.tmp / f'{name}.log', debug=debug,
            metrics=self.metrics, usage=self.usage,
            scopes=','.join(self.scopes),
            coordination_url=self.coordination_url, max_workers=max_workers,
            url=self.url))
        return path

    def _write_usage(self):
        records = []
        rng = self.rng
        for scope in self.scopes:
            for hour in range(1, self.hours + 1):
                start = self.base + hour * HOUR
                for vm in range(rng.randint(0, 3)):
                    flavor = 'test' if vm == 2 else f'm1.{vm}'
                    for minute in (5, 35):
                        records.append({
                            'metric': 'cpu', 'scope': scope,
                            'time': (start + minute * HOUR / 60).isoformat(),
                            'qty': 1, 'labels': {'id': f'vm-{vm}',
                                                 'flavor': flavor}})
                for vol in range(rng.randint(0, 2)):
                    size = rng.choice([0, 1, 512, 10240, 1536, 7])
                    records.append({
                        'metric': 'volume.size', 'scope': scope,
                        'begin': start.isoformat(),
                        'end': (start + HOUR).isoformat(),
                        'qty': size, 'labels': {
                            'id': f'vol-{vol}', 'volume_type': 'ssd'}})
                if rng.random() < 0.7:
                    for _ in range(rng.randint(1, 3)):
                        records.append({
                            'metric': 'net.bytes', 'scope': scope,
                            'time': (start + rng.randint(0, 3599) *
                                     datetime.timedelta(seconds=1)
                                     ).isoformat(),
                            'qty': str(decimal.Decimal(rng.randint(1, 10**9))
                                       / 1000),
                            'labels': {'id': 'eth0'}})
        with open(self.usage / 'usage.jsonl', 'w') as stream:
            stream.writelines(json.dumps(record) + '\n'
                              for record in records)
        return records

    def _setup_database(self):
        from cloudkitty import db
        from cloudkitty.db import migration
        from cloudkitty import storage_state
        engine = db.create_engine(self.url)
        migration.upgrade(engine)
        states = storage_state.ScopeStateManager(engine, 'project_id',
                                                 'source', 'file')
        for scope in self.scopes:
            states.create_scope(scope, last_processed_timestamp=self.base)
        engine.dispose()
        storage = self.storage()
        storage.init()

    def conf(self):
        """The scenario's configuration (logging left to pytest)."""
        from oslo_config import cfg

        from cloudkitty import conf as ck_conf
        conf = ck_conf.register_all(cfg.ConfigOpts())
        conf(['--config-file', str(self.config)], project='cloudkitty',
             default_config_files=[])
        return conf

    def storage(self):
        from cloudkitty import storage
        return storage.get_storage(self.conf())

    # -- expected and stored data ------------------------------------------

    def expected(self):
        """``{(scope, type, period start, id): qty}``, from the records."""
        sums = collections.defaultdict(fractions.Fraction)
        flavors = {}
        for record in self.records:
            if 'time' in record:
                moment = datetime.datetime.fromisoformat(record['time'])
            else:
                moment = datetime.datetime.fromisoformat(record['begin'])
            period = floor_hour(moment)
            key = (record['scope'], record['metric'], period,
                   record['labels']['id'])
            sums[key] += fractions.Fraction(str(record['qty']))
            if record['metric'] == 'cpu':
                flavors[key] = record['labels']['flavor']
        expected = {}
        for (scope, metric, period, id_), total in sums.items():
            if metric == 'cpu':
                if flavors[(scope, metric, period, id_)] == 'test':
                    continue  # the skip expression drops it
                expected[(scope, 'cpu', period, id_)] = total
            elif metric == 'volume.size':
                expected[(scope, 'volume', period, id_)] = total / 1024
                expected[(scope, 'volume_count', period, id_)] = \
                    fractions.Fraction(int(total != 0))
            else:
                expected[(scope, 'traffic', period, id_)] = total / 10**6
        return {key: _exact_decimal(value) for key, value in expected.items()}

    def stored(self):
        """``{(scope, type, period start, id): [qty, ...]}`` as stored."""
        storage = self.storage()
        stored = collections.defaultdict(list)
        self.prices = prices = []
        result = storage.retrieve(begin=self.base,
                                  end=self.last_data_period + 10 * HOUR,
                                  paginate=False)
        for frame in result['dataframes']:
            for type_, point in frame.iterpoints():
                stored[(point.groupby['project_id'], type_, frame.start,
                        point.groupby['id'])].append(point.qty)
                prices.append(point.price)
        return dict(stored)

    def states(self):
        from cloudkitty import db
        from cloudkitty import storage_state
        engine = db.create_engine(self.url)
        try:
            manager = storage_state.ScopeStateManager(
                engine, 'project_id', 'source', 'file')
            return {scope: manager.get_last_processed_timestamp(scope)
                    for scope in self.scopes}
        finally:
            engine.dispose()

    def caught_up(self):
        return all(last is not None and last >= self.last_data_period
                   for last in self.states().values())

    def assert_stored_exactly_once(self, upto=None, since=None,
                                   priced=False):
        """Every expected point of a period from ``since`` and up to
        ``upto`` (``{scope: period start}``, default: all) stored exactly
        once with its exact quantity, nothing else; unless ``priced``,
        every price 0 (no rating module enabled)."""
        expected = self.expected()
        if upto is not None:
            expected = {k: v for k, v in expected.items()
                        if k[2] <= upto[k[0]]}
        if since is not None:
            expected = {k: v for k, v in expected.items()
                        if k[0] not in since or k[2] >= since[k[0]]}
        stored = self.stored()
        doubled = {k: v for k, v in stored.items() if len(v) != 1}
        assert not doubled, f'stored more than once: {doubled}'
        assert {k: v[0] for k, v in stored.items()} == expected
        assert priced or not any(self.prices)
        return expected

    # -- the processor ---------------------------------------------------------

    def start(self, name='ck', wait=True):
        """Start ``cloudkitty-processor`` with ``<name>.conf``; with
        ``wait``, return once a worker process logged that it started."""
        log = self.tmp / f'{name}.log'
        before = _count(log, STARTED)
        process = subprocess.Popen(
            [sys.executable, '-m', 'cloudkitty.cli.processor',
             '--config-file', str(self.tmp / f'{name}.conf')],
            cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, start_new_session=True)
        if wait:
            assert self.wait_until(lambda: _count(log, STARTED) > before, 60,
                                   process, poll=0.02)
        return process

    def wait_until(self, condition, timeout, process=None, poll=0.1):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            if process is not None and process.poll() is not None:
                _, err = process.communicate()
                pytest.fail(f'processor exited {process.returncode}: '
                            f'{err.decode()[-3000:]}')
            time.sleep(poll)
        return False


STARTED = re.compile(r'Processor worker \d+ started')
#: The log line of a period stored: (scope, period start).
RATED = re.compile(r'Rated scope (\S+) period (\S+):')


def _count(path, pattern):
    try:
        return len(pattern.findall(path.read_text()))
    except FileNotFoundError:
        return 0


def _exact_decimal(value):
    """The exact decimal form of a fraction whose denominator is 2^a 5^b."""
    digits = 0
    while (value * 10**digits).denominator != 1:
        digits += 1
        assert digits < 60, f'{value} has no exact decimal form'
    return decimal.Decimal((value * 10**digits).numerator).scaleb(-digits)


def _env():
    env = dict(os.environ)
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
    return env


def stop(process, sig=signal.SIGTERM, timeout=20):
    """Signal the processor's process group; return (code, stderr)."""
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass
    try:
        _, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        _, err = process.communicate()
        pytest.fail(f'processor did not exit within {timeout}s after {sig}')
    return process.returncode, err.decode()


# -- start-up validation ------------------------------------------------------

def run_cli(tmp_path, metrics_yml, extra_conf='', collector='file'):
    metrics = tmp_path / 'metrics.yml'
    metrics.write_text(metrics_yml)
    config = tmp_path / 'bad.conf'
    config.write_text(CONF_TEMPLATE.format(
        log_file=tmp_path / 'bad.log', debug=False, metrics=metrics,
        usage=tmp_path, scopes='a', coordination_url=f'file://{tmp_path}/l',
        max_workers=1, url=f'sqlite:///{tmp_path}/bad.sqlite').replace(
            'collector = file', f'collector = {collector}') + extra_conf)
    return subprocess.run(
        [sys.executable, '-m', 'cloudkitty.cli.processor', '--config-file',
         str(config)], check=False, cwd=ROOT, env=_env(), capture_output=True,
        text=True,
        timeout=60)


def our_lines(stderr):
    """The lines of ``stderr`` the processor wrote itself (a library's
    warning is not ours to count: see test_third_party_warnings_...)."""
    return [line for line in stderr.splitlines()
            if line.startswith('cloudkitty-processor:')]


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
    env = _env()
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
