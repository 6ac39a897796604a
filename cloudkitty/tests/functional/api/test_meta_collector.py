"""The meta collector and the database: mappings and states made through
``/v1/collector`` drive validation at start-up and each period's routes
(with the file collector, which needs no server; see
``tests/functional/gnocchi/test_meta_collector.py`` for Prometheus and
Gnocchi)."""

import datetime
import decimal
import json

import pytest

from cloudkitty import collector
from cloudkitty.orchestrator import processor

D = decimal.Decimal
UTC = datetime.timezone.utc
HOUR = datetime.timedelta(hours=1)
P1 = datetime.datetime(2026, 1, 5, 10, tzinfo=UTC)
P2 = P1 + HOUR

# Prometheus' extra_args for cpu: refused by the file collector.
METRICS_YML = """\
metrics:
  cpu:
    unit: instance
    groupby: [id]
    extra_args:
      query_function: ceil
  volume.size:
    unit: GiB
    groupby: [id]
    extra_args:
      aggregation_method: max
"""


@pytest.fixture
def conf(conf, tmp_path):
    metrics = tmp_path / 'meta-metrics.yml'
    metrics.write_text(METRICS_YML)
    usage = tmp_path / 'usage.jsonl'
    usage.write_text(''.join(json.dumps({
        'metric': metric, 'scope': 'p1', 'qty': qty,
        'time': (start + datetime.timedelta(minutes=5)).isoformat(),
        'labels': {'id': id_}}) + '\n' for metric, id_, qty, start in (
            ('cpu', 'vm1', 2, P1), ('volume.size', 'vol1', 20, P1),
            ('cpu', 'vm1', 3, P2), ('volume.size', 'vol1', 30, P2))))
    for name, value, group in (('metrics_conf', str(metrics), 'collect'),
                               ('collector', 'meta', 'collect'),
                               ('usage_path', str(usage), 'collector_file'),
                               # Nothing listens there: it fails at once.
                               ('prometheus_url', 'http://127.0.0.1:9',
                                'collector_prometheus')):
        conf.set_override(name, value, group)
    return conf


def _refusal(conf):
    with pytest.raises(processor.ConfigurationError) as caught:
        processor.validate(conf)
    prefix = f'{conf.collect.metrics_conf}: '
    assert str(caught.value).startswith(prefix)
    return str(caught.value)[len(prefix):]


def test_start_up_validates_each_metric_with_its_collector(app, conf):
    assert _refusal(conf) == (
        "metric 'cpu': no collector: service 'cpu' is not mapped through "
        '/v1/collector/mappings and [collector_meta] default_collector is '
        'not set')
    conf.set_override('default_collector', 'file', 'collector_meta')
    assert _refusal(conf) == (
        "metric 'cpu': key 'extra_args.query_function': extra keys not "
        "allowed (collector 'file', the default collector, [collector_meta] "
        'default_collector)')
    app.post('/v1/collector/mappings/gnochi/cpu')
    assert _refusal(conf) == (
        "metric 'cpu': collector 'gnochi' (mapped through "
        '/v1/collector/mappings) cannot be loaded: NoMatches: No '
        "'cloudkitty.collector.backends' driver found, looking for 'gnochi'")
    app.post('/v1/collector/mappings/prometheus/cpu')
    plan = processor.validate(conf)
    # Each definition as its collector normalises it.
    assert plan.metrics['cpu']['extra_args'] == {
        'aggregation_method': 'max', 'query_function': 'ceil',
        'query_prefix': '', 'query_suffix': ''}
    assert plan.metrics['volume.size']['extra_args'] == {
        'aggregation_method': 'max'}


def test_routes_come_from_the_database_each_period(app, conf):
    conf.set_override('default_collector', 'file', 'collector_meta')
    app.post('/v1/collector/mappings/prometheus/cpu')
    meta = collector.get_collector(conf, processor.validate(conf).metrics)
    # cpu's Prometheus is not reachable: collections fail, naming it.
    with pytest.raises(collector.CollectError, match="'prometheus'"):
        meta.retrieve('cpu', P1, P2, 'p1')
    _, points = meta.retrieve('volume.size', P1, P2, 'p1')
    assert [(p.groupby['id'], p.qty) for p in points] == [('vol1', D(20))]

    app.put_json('/v1/collector/states/file', {'enabled': False})
    with pytest.raises(collector.NoDataCollected):  # the next period
        meta.retrieve('volume.size', P2, P2 + HOUR, 'p1')
    with pytest.raises(collector.NoDataCollected):  # the retried one
        meta.retrieve('volume.size', P1, P2, 'p1')
    # The cpu mapping removed: the default collector from the next period
    # on, refusing cpu's extra_args.
    app.put_json('/v1/collector/states/file', {'enabled': True})
    app.delete('/v1/collector/mappings/cpu', status=204)
    with pytest.raises(collector.CollectError) as caught:
        meta.retrieve('cpu', P2 + HOUR, P2 + 2 * HOUR, 'p1')
    assert "(collector 'file', the default collector" in str(caught.value)
