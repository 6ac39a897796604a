"""The harness of the real ``cloudkitty-processor`` tests.

A :class:`Scenario` builds, in a temporary directory, usage files, a
metrics.yml, a configuration file and a migrated SQLite database whose
scopes start a day or so in the past, runs the processor on them
(``cloudkitty-processor`` in a process group of its own, or
:func:`~cloudkitty.orchestrator.processor.run_until_caught_up` in this
process) and computes the expected rated data from the generated usage,
independently of the collector and the storage. :func:`stop` ends a
processor; :data:`STARTED` and :data:`RATED` match its log lines;
:func:`run_cli` runs it on a configuration meant to be refused.
:class:`Steered` adds RPC on a broker and an API on the scenario's
database, :class:`Watched` the ``/metrics`` endpoint; :func:`lines` reads
a log.
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
import sqlite3
import subprocess
import sys
import time
import urllib.request
import uuid

import pytest
import webtest

from cloudkitty.api import app as api_app
from cloudkitty.api import hooks
from cloudkitty import messaging
from cloudkitty.tests.functional import live_server

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


def modules_loaded_by(code, prefixes):
    """The modules under ``prefixes`` (names or dotted prefixes) in
    ``sys.modules`` once ``code`` has run in a fresh interpreter."""
    probe = (f'{code}\nimport sys\n'
             f'print(sorted(name for name in sys.modules if any(\n'
             f'    name == p or name.startswith(p + ".") for p in {prefixes!r})))\n')
    out = subprocess.run([sys.executable, '-c', probe], capture_output=True,
                         text=True, check=True).stdout
    return out.splitlines()[-1]


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
            cwd=ROOT, env=subprocess_env(), stdout=subprocess.PIPE,
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


def subprocess_env():
    """This environment, with the checkout first on ``PYTHONPATH``."""
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
         str(config)], check=False, cwd=ROOT, env=subprocess_env(), capture_output=True,
        text=True,
        timeout=60)


def our_lines(stderr):
    """The lines of ``stderr`` the processor wrote itself (a library's
    warning is not ours to count: see test_third_party_warnings_...)."""
    return [line for line in stderr.splitlines()
            if line.startswith('cloudkitty-processor:')]


#: Queues deleted with their last consumer: a processor cut off from the
#: broker leaves no queue behind it, and a reset sent before it is back is
#: refused rather than queued (as after a broker restart).
RABBIT_CONF = """
[DEFAULT]
transport_url = {url}
[oslo_messaging_rabbit]
amqp_auto_delete = true
rabbit_transient_queues_ttl = 1
"""


class Steered(Scenario):
    """A scenario whose processor talks RPC on ``transport_url``, with an
    API on its database."""

    def __init__(self, tmp_path, transport_url, unstarted=0, **kwargs):
        self.transport_url = transport_url
        self.unstarted = unstarted
        super().__init__(tmp_path, **kwargs)

    def _setup_database(self):
        """The first ``unstarted`` scopes have no state yet."""
        super()._setup_database()
        with sqlite3.connect(self.database) as connection:
            connection.executemany(
                'DELETE FROM cloudkitty_storage_states WHERE identifier = ?',
                [(scope,) for scope in self.scopes[:self.unstarted]])

    def write_config(self, name, max_workers=1, debug=False):
        path = super().write_config(name, max_workers, debug)
        path.write_text(path.read_text() + RABBIT_CONF.format(
            url=self.transport_url))
        return path

    def api(self):
        conf = self.conf()
        conf.set_override('auth_strategy', 'noauth')
        messaging.register_opts(conf)
        backends = hooks.Backends(conf)
        return webtest.TestApp(api_app.setup_app(conf, backends)), backends

    def cpu_hours(self, scope):
        """``{period start: instance hours}`` of ``scope`` (skip applied)."""
        hours = {}
        for (scope_id, type_, period, _), qty in self.expected().items():
            if scope_id == scope and type_ == 'cpu':
                hours[period] = hours.get(period, 0) + qty
        return hours


SAMPLE = re.compile(r'^(cloudkitty_\w+)(?:\{scope="([^"]*)"\})? (\S+)$')


class Watched(Scenario):
    """A scenario whose processor serves /metrics on a port of its own."""

    def __init__(self, tmp_path, **kwargs):
        self.metrics_port = live_server.free_port()
        super().__init__(tmp_path, **kwargs)

    def write_config(self, name, max_workers=1, debug=False):
        path = super().write_config(name, max_workers, debug)
        path.write_text(path.read_text().replace(
            'process_interval = 0.2\n',
            'process_interval = 0.2\nlag_warning_periods = 3\n'
            f'metrics_port = {self.metrics_port}\n'))
        return path

    def scrape(self, path='/metrics'):
        """``(content type, text)`` of the endpoint."""
        with urllib.request.urlopen(
                f'http://127.0.0.1:{self.metrics_port}{path}',
                timeout=10) as response:
            return (response.headers['Content-Type'],
                    response.read().decode('utf-8'))

    def samples(self):
        """``{(metric, scope or None): value}`` of one scrape."""
        _, text = self.scrape()
        found = {}
        for line in text.splitlines():
            if line.startswith('#'):
                continue
            name, scope, value = SAMPLE.match(line).groups()
            found[(name, scope)] = int(value)
        return found


def lines(log, *words):
    """The lines of the file ``log`` holding every one of ``words``."""
    return [line for line in log.read_text().splitlines()
            if all(word in line for word in words)]
