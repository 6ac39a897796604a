"""The real cloudkitty-processor rating from a real Prometheus that fails
in the middle of the run, for a while, and then answers again.

The Prometheus of these tests is their own (one is stopped): three scopes
with a few days of hourly usage. The faults: Prometheus is down (killed,
then started again); it is slow (behind the :mod:`proxy` of these tests,
which holds the answers, or their second half, past ``[collector_prometheus]
timeout``, or trickles them past ``[orchestrator]
collector_request_timeout``); it answers garbage (through the proxy: HTTP
200 that is not JSON, JSON of the wrong shape, values that are no numbers,
a body cut short, HTTP 503).

While the fault lasts, every scope's period fails and is retried on a
later pass, the worker keeps running, nothing is recorded past what is
stored, and the log names the source, the metric and the scope; once it
is over, every period is rated once and the stored data is exactly what an
uninterrupted run stores.
"""

import collections
import datetime
import decimal
import random
import re
import signal

import pytest

from cloudkitty.tests.functional.prometheus import conftest
from cloudkitty.tests.functional.prometheus import proxy
from cloudkitty.tests.functional.prometheus import server
from cloudkitty.tests.functional import harness

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
timeout = {timeout}

[fetcher]
backend = source

[fetcher_source]
sources = {scopes}

[orchestrator]
coordination_url = file://{tmp}/locks
max_workers = 1
max_workers_reprocessing = 0
collector_request_timeout = {request_timeout}
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
        self.configure(self.prometheus.url)
        engine = db.create_engine(f'sqlite:///{tmp_path}/ck.sqlite')
        migration.upgrade(engine)
        self.states_manager = storage_state.ScopeStateManager(
            engine, 'project_id', 'source', 'prometheus')
        for scope in SCOPES:
            self.states_manager.create_scope(
                scope, last_processed_timestamp=self.base - HOUR)
        self.storage().init()

    def configure(self, url, timeout=5, request_timeout=10):
        """Write the processor's configuration: Prometheus at ``url``,
        ``[collector_prometheus] timeout`` and ``[orchestrator]
        collector_request_timeout``."""
        (self.tmp / 'ck.conf').write_text(CONF.format(
            tmp=self.tmp, url=url, user=server.USER,
            password=server.PASSWORD, scopes=','.join(SCOPES),
            timeout=timeout, request_timeout=request_timeout))

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

    def assert_rated_once(self):
        """The log says every period of every scope was rated once, up
        to the one last recorded."""
        rated = collections.Counter(harness.RATED.findall(self.log()))
        last = self.states()
        periods = {(scope, (self.base + hour * HOUR).isoformat())
                   for scope in SCOPES
                   for hour in range((last[scope] - self.base) // HOUR + 1)}
        assert {k: n for k, n in rated.items() if n != 1} == {}
        assert set(rated) == periods

    def log(self):
        try:
            return (self.tmp / 'ck.log').read_text()
        except FileNotFoundError:
            return ''


def failure(reason):
    """The log line of a scope abandoned because its collection failed:
    the scope, the metric and the source, then ``reason`` (a regular
    expression, which may refer to the groups ``scope`` and ``metric``)."""
    return re.compile(
        r'Scope (?P<scope>outage-\w) abandoned for this pass, to be retried: '
        r'scope (?P=scope) period \S+ metric (?P<metric>ck_\w+) '
        r'source prometheus: ' + reason)


def collect_error(url, detail):
    """``reason`` of :func:`failure` for a ``CollectError`` of the
    collector's client: the metric, the scope, the URL queried, then
    ``detail`` (a regular expression)."""
    return (r"CollectError: Collector 'prometheus' failed to collect metric "
            r"'(?P=metric)' for scope '(?P=scope)': " + re.escape(url) +
            r'/api/v1/query: ' + detail)


@pytest.fixture
def outage(tmp_path):
    run = Outage(tmp_path)
    yield run
    run.prometheus.stop()


@pytest.fixture
def proxied(outage):
    """The outage's processor queries Prometheus through a
    :class:`proxy.FaultyProxy` (``outage.proxy``)."""
    with proxy.FaultyProxy(outage.prometheus.url) as front:
        outage.proxy = front
        outage.configure(front.url)
        yield outage


def through_fault(outage, begin, end, pattern):
    """Run the processor, call ``begin()`` once it has rated a period and
    ``end()`` once the fault has failed every scope on several passes,
    each failure logged as ``pattern`` says; check what is recorded and
    stored during the fault and after it."""
    def count():
        return len(pattern.findall(outage.log()))
    process = outage.start()
    try:
        assert outage.wait_until(
            lambda: any(s > outage.base - HOUR
                        for s in outage.states().values()),
            60, process, poll=0.01)
        begin()
        assert not outage.caught_up(), 'the run ended before the fault'

        def failing():
            scopes = {m['scope'] for m in pattern.finditer(outage.log())}
            return scopes == set(SCOPES)
        assert outage.wait_until(failing, 30, process), \
            outage.log()[-3000:]
        # Passes go on failing; nothing is recorded meanwhile, and what
        # is recorded is stored, exactly.
        states = outage.states()
        failures = count()
        assert outage.wait_until(lambda: count() >= failures + 6, 30,
                                 process), outage.log()[-3000:]
        assert outage.states() == states
        outage.assert_stored_exactly_once(upto=states)
        end()
        assert outage.wait_until(outage.caught_up, 90, process)
    finally:
        code, err = harness.stop(process)
    assert code == 0, err
    outage.assert_stored_exactly_once()
    outage.assert_rated_once()
    # The worker kept running: it never started again.
    assert len(harness.STARTED.findall(outage.log())) == 1
    assert 'Traceback' not in outage.log()


def test_prometheus_down_in_the_middle_of_a_run(outage):
    through_fault(
        outage, lambda: outage.prometheus.stop(signal.SIGKILL),
        outage.prometheus.start,
        failure(collect_error(outage.prometheus.url, 'ConnectionError')))


def _faulty(outage, mode, timeout=5, request_timeout=10):
    """Through the proxy in ``mode`` during the fault."""
    outage.configure(outage.proxy.url, timeout, request_timeout)

    def begin():
        outage.proxy.mode = mode

    def end():
        outage.proxy.mode = 'forward'
    return begin, end


@pytest.mark.parametrize('mode, timeouts, reason', [
    # No answer: the client's [collector_prometheus] timeout (2 s) ends
    # the wait.
    ('stall', (2, 10), lambda url: collect_error(
        url, r'no answer within 2(\.0)?s')),
    # Half an answer, then nothing: the same timeout.
    ('stall_body', (2, 10), lambda url: collect_error(
        url, r'the answer stalled: nothing more within 2(\.0)?s')),
    # An answer too slow to finish, each part in time for the client:
    # [orchestrator] collector_request_timeout (1 s) ends the wait.
    ('trickle', (30, 1), lambda url: r'collection timed out after 1s'),
], ids=['stall', 'stall_body', 'trickle'])
def test_prometheus_slow_in_the_middle_of_a_run(proxied, mode, timeouts,
                                                reason):
    begin, end = _faulty(proxied, mode, *timeouts)
    through_fault(proxied, begin, end,
                  failure(reason(proxied.proxy.url)))
    assert proxied.proxy.faulted


@pytest.mark.parametrize('mode, detail', [
    ('html', r"not a successful Prometheus answer: '<html>"),
    ('shape', r"malformed vector in the answer: "),
    ('value', r"value 'lots' of \{.*\} is not a number"),
    ('truncated', r'the connection broke before the end of the answer: '
                  r'Connection broken: IncompleteRead'),
    ('http503', r'HTTP 503: Service Unavailable: no healthy upstream'),
], ids=['html', 'shape', 'value', 'truncated', 'http503'])
def test_prometheus_answers_garbage_in_the_middle_of_a_run(proxied, mode,
                                                           detail):
    begin, end = _faulty(proxied, mode)
    through_fault(proxied, begin, end,
                  failure(collect_error(proxied.proxy.url, detail)))
    assert proxied.proxy.faulted
