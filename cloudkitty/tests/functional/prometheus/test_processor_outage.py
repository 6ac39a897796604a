"""The real cloudkitty-processor rating from a real Prometheus that goes
down in the middle of the run and comes back.

The Prometheus of this test is its own (it is stopped): three scopes with
a few days of hourly usage. While it is down, every scope's period fails
and is retried on a later pass, nothing is recorded past what is stored,
and the log names the source, the metric and the scope; once it is back,
the stored data is exactly what an uninterrupted run stores.
"""

import collections
import datetime
import decimal
import random
import re
import signal

import pytest

from cloudkitty.tests.functional.prometheus import conftest
from cloudkitty.tests.functional.prometheus import server
from cloudkitty.tests.functional import test_processor as harness

HOUR = datetime.timedelta(hours=1)
HOURS = 96
SCOPES = ['outage-a', 'outage-b', 'outage-c']

METRICS_YML = """\
metrics:
  ck_cpu:
    unit: instance
    groupby: [id]
    metadata: [flavor]
  ck_net:
    unit: MB
    alt_name: traffic
    groupby: [id]
    factor: 1/1000
    extra_args:
      aggregation_method: sum
"""

CONF = """\
[DEFAULT]
log_file = {tmp}/ck.log

[collect]
collector = prometheus
period = 3600
wait_periods = 2
metrics_conf = {tmp}/metrics.yml

[collector_prometheus]
prometheus_url = {url}
prometheus_user = {user}
prometheus_password = {password}
timeout = 5

[fetcher]
backend = source

[fetcher_source]
sources = {scopes}

[orchestrator]
coordination_url = file://{tmp}/locks
max_workers = 1
max_workers_reprocessing = 0
collector_request_timeout = 10
process_interval = 0.2

[database]
connection = sqlite:///{tmp}/ck.sqlite

[storage]
backend = sqlalchemy
"""


def usage(base, rng):
    """``(series, expected)``: the samples, and ``{(scope, type, period,
    id): qty}`` computed from them as the metrics.yml above says."""
    samples = collections.defaultdict(list)
    expected = {}
    for scope in SCOPES:
        for hour in range(HOURS):
            start = base + hour * HOUR
            p = int(start.timestamp())
            for vm in ('vm1', 'vm2'):
                values = [decimal.Decimal(rng.randint(1, 400)) / 4
                          for _ in range(3)]
                samples[('ck_cpu', scope, vm)].extend(
                    (p + 600 + 1200 * i, str(v))
                    for i, v in enumerate(values))
                expected[(scope, 'ck_cpu', start, vm)] = max(values)
            sent = [rng.randint(0, 10**6) for _ in range(2)]
            samples[('ck_net', scope, 'eth0')].extend(
                [(p + 900, sent[0]), (p + 2700, sent[1])])
            expected[(scope, 'traffic', start, 'eth0')] = \
                decimal.Decimal(sum(sent)) / 1000
    series = [(metric, {'project_id': scope, 'id': id_,
                        'flavor': 'm1.small'}, points)
              for (metric, scope, id_), points in samples.items()]
    return series, expected


class Outage(harness.Scenario):
    """The test's Prometheus, database and configuration; the processor
    starts and is waited for as in the file collector's scenarios."""

    def __init__(self, tmp_path):  # pylint: disable=super-init-not-called
        from cloudkitty import db
        from cloudkitty.db import migration
        from cloudkitty import storage_state
        self.tmp = tmp_path
        now = datetime.datetime.now(datetime.timezone.utc)
        self.base = harness.floor_hour(now) - (HOURS + 6) * HOUR
        series, self.expected = usage(self.base, random.Random(5))
        try:
            server.create_blocks(server.openmetrics(series),
                                 tmp_path / 'data')
            self.prometheus = server.Prometheus(tmp_path / 'data').start()
        except server.ServerUnavailable as exc:
            conftest.unavailable(str(exc))
        (tmp_path / 'metrics.yml').write_text(METRICS_YML)
        (tmp_path / 'ck.conf').write_text(CONF.format(
            tmp=tmp_path, url=self.prometheus.url, user=server.USER,
            password=server.PASSWORD, scopes=','.join(SCOPES)))
        engine = db.create_engine(f'sqlite:///{tmp_path}/ck.sqlite')
        migration.upgrade(engine)
        self.states_manager = storage_state.ScopeStateManager(
            engine, 'project_id', 'source', 'prometheus')
        for scope in SCOPES:
            self.states_manager.create_scope(
                scope, last_processed_timestamp=self.base - HOUR)
        self.storage().init()

    def conf(self):
        from oslo_config import cfg

        from cloudkitty import conf as ck_conf
        conf = ck_conf.register_all(cfg.ConfigOpts())
        conf(['--config-file', str(self.tmp / 'ck.conf')],
             project='cloudkitty', default_config_files=[])
        return conf

    def storage(self):
        from cloudkitty import storage
        return storage.get_storage(self.conf())

    def states(self):
        return {scope: self.states_manager.get_last_processed_timestamp(
            scope) for scope in SCOPES}

    def caught_up(self):
        last = self.base + (HOURS - 1) * HOUR
        return all(s >= last for s in self.states().values())

    def stored(self):
        """``{(scope, type, period, id): [qty, ...]}`` as stored."""
        stored = collections.defaultdict(list)
        result = self.storage().retrieve(
            begin=self.base, end=self.base + (HOURS + 6) * HOUR,
            paginate=False)
        for frame in result['dataframes']:
            for type_, point in frame.iterpoints():
                stored[(point.groupby['project_id'], type_, frame.start,
                        point.groupby['id'])].append(point.qty)
        return dict(stored)

    def assert_stored_exactly_once(self, upto=None):
        expected = self.expected
        if upto is not None:
            expected = {k: v for k, v in expected.items()
                        if k[2] <= upto[k[0]]}
        stored = self.stored()
        assert {k: v for k, v in stored.items() if len(v) != 1} == {}
        assert {k: v[0] for k, v in stored.items()} == expected

    def log(self):
        try:
            return (self.tmp / 'ck.log').read_text()
        except FileNotFoundError:
            return ''


FAILURE = re.compile(
    r'Scope (?P<scope>outage-\w) abandoned for this pass, to be retried: '
    r'scope (?P=scope) period \S+ metric (?P<metric>ck_\w+) '
    r'source prometheus: CollectError: .*'
    r"for scope '(?P=scope)': http://127\.0\.0\.1:\d+/api/v1/query: "
    r'ConnectionError')


@pytest.fixture
def outage(tmp_path):
    run = Outage(tmp_path)
    yield run
    run.prometheus.stop()


def test_prometheus_down_in_the_middle_of_a_run(outage):
    process = outage.start()
    try:
        assert outage.wait_until(
            lambda: any(s > outage.base - HOUR
                        for s in outage.states().values()),
            60, process, poll=0.01)
        outage.prometheus.stop(signal.SIGKILL)
        assert not outage.caught_up(), 'the run ended before the outage'

        def failing():
            scopes = {m['scope'] for m in FAILURE.finditer(outage.log())}
            return scopes == set(SCOPES)
        assert outage.wait_until(failing, 30, process), \
            outage.log()[-3000:]
        # Passes go on failing; nothing is recorded meanwhile, and what
        # is recorded is stored, exactly.
        states = outage.states()
        failures = len(FAILURE.findall(outage.log()))
        assert outage.wait_until(
            lambda: len(FAILURE.findall(outage.log())) >= failures + 6,
            30, process)
        assert outage.states() == states
        outage.assert_stored_exactly_once(upto=states)
        outage.prometheus.start()
        assert outage.wait_until(outage.caught_up, 90, process)
    finally:
        code, err = harness.stop(process)
    assert code == 0, err
    outage.assert_stored_exactly_once()
    assert 'Traceback' not in outage.log()
