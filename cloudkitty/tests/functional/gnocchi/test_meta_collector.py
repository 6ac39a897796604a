"""The meta collector against the real Gnocchi and the real Prometheus.

One metric comes from Prometheus (the session's ``ck_gauge``, see the
prometheus conftest), one from Gnocchi (volumes this module creates in the
Prometheus data's hour); the mappings are made through ``/v1/collector``
of the API on the processor's SQLite database, and the processor's code
path (:func:`~cloudkitty.orchestrator.processor.run_until_caught_up`) rates
both in the same pass. Then Gnocchi is disabled through the API, and the
next period is rated without its metric.

The module sits with the Gnocchi tests to share their session's Gnocchi
(the costly server to start); the Prometheus fixture is imported.
"""

import datetime
import decimal
import json
import uuid

import pytest
import webtest

from cloudkitty.api import app as api_app
from cloudkitty.api import hooks
from cloudkitty import collector
from cloudkitty.collector import gnocchi as gnocchi_collector
from cloudkitty import db
from cloudkitty.orchestrator import processor
from cloudkitty import storage_state
from cloudkitty.tests.functional.api import conftest as api_conftest
from cloudkitty.tests.functional.gnocchi import conftest as gnocchi_conftest
from cloudkitty.tests.functional.prometheus import conftest as prom_conftest
from cloudkitty.tests.functional.prometheus.conftest import prometheus  # noqa: F401,E501
from cloudkitty.tests.functional.prometheus import server as prom_server

D = decimal.Decimal
HOUR = datetime.timedelta(hours=1)
MINUTE = datetime.timedelta(minutes=1)
A, B = prom_conftest.SCOPE_A, prom_conftest.SCOPE_B
SUFFIX = uuid.uuid4().hex[:8]
RESOURCE_TYPE = f'ck_meta_volume_{SUFFIX}'
VOLUME_METRIC = 'ck.meta.size'

METRICS_YML = f"""\
metrics:
  ck_gauge:
    unit: instance
    alt_name: instance
    groupby: [id]
    extra_args:
      aggregation_method: max
  {VOLUME_METRIC}:
    unit: GiB
    alt_name: volume
    groupby: [id]
    metadata: [volume_type]
    factor: 1/8
    extra_args:
      resource_type: {RESOURCE_TYPE}
      use_all_resource_revisions: false
"""

#: {name: (scope, volume_type, [(minutes after t0, size)])}: the second
#: period (t0 + 1h) holds data too, so that its absence once Gnocchi is
#: disabled means something.
VOLUMES = {
    'vol-a1': (A, 'ssd', [(10, 20), (40, 30), (70, 40)]),
    'vol-a2': (A, 'hdd', [(20, '5.5')]),
    'vol-b1': (B, 'ssd', [(30, 100)]),
}


@pytest.fixture(scope='module')
def volumes(gnocchi, prometheus):  # noqa: F811
    """The volumes of :data:`VOLUMES` in Gnocchi: ``{name: id}``."""
    admin = gnocchi_conftest.client(gnocchi.url)
    policy = f'ck-meta-{SUFFIX}'
    admin.archive_policy.create({
        'name': policy, 'back_window': 0, 'aggregation_methods': ['max'],
        'definition': [{'granularity': 3600, 'points': 200}]})
    admin.resource_type.create({'name': RESOURCE_TYPE, 'attributes': {
        'volume_type': {'type': 'string', 'required': False}}})
    t0, ids = prometheus.t0, {}
    for name, (scope, volume_type, points) in VOLUMES.items():
        resource = admin.resource.create(RESOURCE_TYPE, {
            'id': str(uuid.uuid4()), 'project_id': scope,
            'volume_type': volume_type,
            'started_at': (t0 - 24 * HOUR).isoformat(),
            'metrics': {VOLUME_METRIC: {'archive_policy_name': policy}}})
        ids[name] = resource['id']
        metric_id = resource['metrics'][VOLUME_METRIC]
        admin.metric.add_measures(metric_id, [
            {'timestamp': (t0 + minutes * MINUTE).isoformat(),
             'value': float(value)} for minutes, value in points])
        hours = {minutes // 60 for minutes, _ in points}
        gnocchi_conftest.wait_for_measures(admin, metric_id, len(hours),
                                           granularity=3600)
    return ids


@pytest.fixture
def conf(tmp_path, database, gnocchi, prometheus):  # noqa: F811
    metrics = tmp_path / 'meta-metrics.yml'
    metrics.write_text(METRICS_YML)
    conf = api_conftest.make_conf(tmp_path, database)
    for name, value, group in (
            ('metrics_conf', str(metrics), 'collect'),
            ('collector', 'meta', 'collect'),
            ('period', 3600, 'collect'),
            ('sources', [A, B], 'fetcher_source'),
            ('gnocchi_auth_type', 'basic', 'collector_gnocchi'),
            ('gnocchi_endpoint', gnocchi.url, 'collector_gnocchi'),
            ('gnocchi_user', 'admin', 'collector_gnocchi'),
            ('prometheus_url', prometheus.url, 'collector_prometheus'),
            ('prometheus_user', prom_server.USER, 'collector_prometheus'),
            ('prometheus_password', prom_server.PASSWORD,
             'collector_prometheus'),
            ('timeout', 10, 'collector_prometheus')):
        conf.set_override(name, value, group)
    return conf


@pytest.fixture
def app(conf):
    return webtest.TestApp(api_app.setup_app(conf, hooks.Backends(conf)))


def _start_scopes(conf, before):
    engine = db.create_engine(conf.database.connection)
    try:
        states = storage_state.ScopeStateManager(
            engine, conf.collect.scope_key, conf.fetcher.backend,
            conf.collect.collector)
        for scope in (A, B):
            states.create_scope(scope, last_processed_timestamp=before)
    finally:
        engine.dispose()


def _rate_until(conf, period_start):
    """Rate up to the period starting at ``period_start``, included."""
    summary = processor.run_until_caught_up(
        conf, scope_ids=[A, B], use_locks=False,
        clock=lambda: period_start + 3 * HOUR)
    assert summary['failed'] == {}
    return summary


def _stored(app, start):
    """``{(scope, type, id): (qty, metadata)}`` stored for a period."""
    response = app.get('/v2/dataframes', params={
        'begin': start.isoformat(), 'end': (start + HOUR).isoformat()})
    body = json.loads(response.text, parse_float=D)
    stored = {}
    for frame in body['dataframes']:
        assert frame['period']['begin'] == start.isoformat()
        for type_, points in frame['usage'].items():
            for point in points:
                key = (point['groupby']['project_id'], type_,
                       point['groupby']['id'])
                assert key not in stored
                stored[key] = (D(str(point['vol']['qty'])),
                               point['metadata'])
    return stored


def test_metrics_from_prometheus_and_gnocchi_rated_together(
        app, conf, prometheus, volumes):  # noqa: F811
    t0 = prometheus.t0
    assert app.post('/v1/collector/mappings/prometheus/ck_gauge').json == {
        'service': 'ck_gauge', 'collector': 'prometheus'}
    app.post(f'/v1/collector/mappings/gnocchi/{VOLUME_METRIC}')
    _start_scopes(conf, t0 - HOUR)

    queries = prometheus.server.query_count()
    summary = _rate_until(conf, t0)
    assert summary['rated'] == {A: 1, B: 1}
    # Grouped collection goes through: one Prometheus query for both
    # scopes.
    assert prometheus.server.query_count() - queries == 1
    assert _stored(app, t0) == {
        (A, 'instance', 'vm1'): (D(9), {}),
        (A, 'instance', 'vm2'): (D(3), {}),
        (B, 'instance', 'vm3'): (D(1000), {}),
        (A, 'volume', volumes['vol-a1']): (D('3.75'),
                                           {'volume_type': 'ssd'}),
        (A, 'volume', volumes['vol-a2']): (D('0.6875'),
                                           {'volume_type': 'hdd'}),
        (B, 'volume', volumes['vol-b1']): (D('12.5'),
                                           {'volume_type': 'ssd'}),
    }

    # Gnocchi disabled through the API: the next period has no volume,
    # though Gnocchi holds one (collected directly below).
    assert app.put_json('/v1/collector/states/gnocchi', {
        'name': 'gnocchi', 'enabled': False}).json['enabled'] is False
    t1 = t0 + HOUR
    summary = _rate_until(conf, t1)
    assert summary['rated'] == {A: 1, B: 1}
    assert _stored(app, t1) == {
        (A, 'instance', 'vm1'): (D(100), {}),
        (A, 'instance', 'vm2'): (D(100), {}),
    }
    definition = collector.load_metrics_conf(
        conf.collect.metrics_conf)[VOLUME_METRIC]
    direct = gnocchi_collector.GnocchiCollector(
        conf={VOLUME_METRIC: definition}, period=3600, oslo_conf=conf)
    _, points = direct.retrieve(VOLUME_METRIC, t1, t1 + HOUR, A)
    assert [(p.groupby['id'], p.qty) for p in points] == [
        (volumes['vol-a1'], D(5))]
