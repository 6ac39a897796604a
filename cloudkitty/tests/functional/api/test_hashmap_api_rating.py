"""Hashmap end to end: rules created through the API, the module enabled
through the API, usage rated by the processor's code path
(:func:`cloudkitty.orchestrator.processor.run_until_caught_up` with the
file collector), prices read back from ``/v2/summary``.

The rules are the worked examples of rating.md; the prices expected are
the ones it states.
"""

import datetime
import decimal
import json

import pytest

from cloudkitty import db
from cloudkitty.orchestrator import processor
from cloudkitty import storage_state
from cloudkitty.tests.functional.api import conftest

URL = '/v1/rating/module_config/hashmap'
D = decimal.Decimal
HOUR = datetime.timedelta(hours=1)
# The period rated: in the past, so its rules are created with force=true.
PERIOD = datetime.datetime(2026, 1, 5, 10, tzinfo=datetime.UTC)
SCOPES = ('scope-a', 'scope-b')

METRICS_YML = """\
metrics:
  cpu:
    unit: instance
    alt_name: instance
    groupby: [id]
    metadata: [flavor, memory]
    extra_args:
      aggregation_method: max
  volume.size:
    unit: GiB
    alt_name: volume
    groupby: [id]
    extra_args:
      aggregation_method: max
"""


def _record(metric, scope, qty, **labels):
    return {'metric': metric, 'scope': scope,
            'time': (PERIOD + datetime.timedelta(minutes=5)).isoformat(),
            'qty': qty, 'labels': labels}


USAGE = [
    _record('cpu', 'scope-a', 1, id='vm-1', flavor='m1.nano', memory=64),
    _record('cpu', 'scope-a', 1, id='vm-2', flavor='m1.small', memory=32),
    _record('volume.size', 'scope-a', 50, id='vol-a50'),
    _record('volume.size', 'scope-a', 250, id='vol-a250'),
    _record('cpu', 'scope-b', 1, id='vm-3', flavor='m1.nano', memory=64),
    _record('volume.size', 'scope-b', 50, id='vol-b50'),
    _record('volume.size', 'scope-b', 250, id='vol-b250'),
]

# rating.md: 1 + (1.337 + 0.15) for m1.nano with 64 of memory; the
# service's flat alone otherwise. Volumes: 0.001 per GiB, times 0.98 from
# 50 GiB, 0.95 from 200 GiB; scope-b's own 0.97 at 50 GiB.
EXPECTED = {
    ('scope-a', 'instance', 'vm-1'): D('2.487'),
    ('scope-a', 'instance', 'vm-2'): D('1'),
    ('scope-a', 'volume', 'vol-a50'): D('0.049'),
    ('scope-a', 'volume', 'vol-a250'): D('0.2375'),
    ('scope-b', 'instance', 'vm-3'): D('2.487'),
    ('scope-b', 'volume', 'vol-b50'): D('0.0485'),
    ('scope-b', 'volume', 'vol-b250'): D('0.2375'),
}


@pytest.fixture
def conf(tmp_path, database):
    metrics = tmp_path / 'rated-metrics.yml'
    metrics.write_text(METRICS_YML)
    usage = tmp_path / 'usage'
    usage.mkdir()
    (usage / 'usage.jsonl').write_text(
        ''.join(json.dumps(record) + '\n' for record in USAGE))
    conf = conftest.make_conf(tmp_path, database)
    for name, value, group in (
            ('metrics_conf', str(metrics), 'collect'),
            ('collector', 'file', 'collect'),
            ('period', 3600, 'collect'),
            ('usage_path', str(usage), 'collector_file'),
            ('sources', list(SCOPES), 'fetcher_source')):
        conf.set_override(name, value, group)
    return conf


def create(app, kind, **body):
    force = '?force=true' if kind == 'mappings' else ''
    return app.post_json(f'{URL}/{kind}{force}', body).json


def _create_rules(app):
    """The worked examples of rating.md, as the CLI would create them."""
    start = '2026-01-01T00:00:00'
    instance = create(app, 'services', name='instance')['service_id']
    create(app, 'mappings', service_id=instance, cost='1.00', start=start)
    group = create(app, 'groups', name='G')['group_id']
    flavor = create(app, 'fields', service_id=instance,
                    name='flavor')['field_id']
    memory = create(app, 'fields', service_id=instance,
                    name='memory')['field_id']
    # JSON numbers, read digit for digit.
    app.post(f'{URL}/mappings?force=true', json.dumps({
        'field_id': flavor, 'value': 'm1.nano', 'cost': 1.337,
        'group_id': group, 'start': start}),
        content_type='application/json', status=201)
    create(app, 'thresholds', field_id=memory, level=64, cost=0.15,
           group_id=group)

    volume = create(app, 'services', name='volume')['service_id']
    create(app, 'mappings', service_id=volume, cost='0.001', start=start)
    create(app, 'thresholds', service_id=volume, level=50, type='rate',
           cost='0.98')
    create(app, 'thresholds', service_id=volume, level=200, type='rate',
           cost='0.95')
    create(app, 'thresholds', service_id=volume, level=50, type='rate',
           cost='0.97', tenant_id='scope-b')


def _start_scopes(conf):
    engine = db.create_engine(conf.database.connection)
    try:
        states = storage_state.ScopeStateManager(
            engine, conf.collect.scope_key, conf.fetcher.backend,
            conf.collect.collector)
        for scope in SCOPES:
            states.create_scope(scope, last_processed_timestamp=PERIOD - HOUR)
    finally:
        engine.dispose()


def test_rules_from_the_api_price_rated_data(app, conf):
    _create_rules(app)
    app.put_json('/v1/rating/modules/hashmap', {'enabled': True},
                 status=302)
    assert app.get('/v1/rating/modules/hashmap').json['enabled'] is True
    _start_scopes(conf)

    # Only PERIOD is due: the clock stands just after its wait periods.
    clock = lambda: PERIOD + 3 * HOUR  # noqa: E731
    summary = processor.run_until_caught_up(
        conf, scope_ids=list(SCOPES), use_locks=False, clock=clock)
    assert summary['failed'] == {}
    assert summary['periods'] == 2

    response = app.get('/v2/summary', params={
        'begin': PERIOD.isoformat(), 'end': (PERIOD + HOUR).isoformat(),
        'groupby': 'project_id,type,id', 'response_format': 'object'})
    results = json.loads(response.text, parse_float=D)['results']
    prices = {(row['project_id'], row['type'], row['id']): D(row['rate'])
              for row in results}
    assert prices == EXPECTED

    per_scope = json.loads(app.get('/v2/summary', params={
        'begin': PERIOD.isoformat(), 'end': (PERIOD + HOUR).isoformat(),
        'groupby': 'project_id', 'response_format': 'object'}).text,
        parse_float=D)['results']
    assert {row['project_id']: D(row['rate']) for row in per_scope} == {
        'scope-a': D('3.7735'), 'scope-b': D('2.773')}


def _run_period(app, conf, usage):
    """Enable the hashmap, rate ``usage`` (records of PERIOD) with the
    processor's code path, and return the per-id summary of PERIOD (the
    rates as Decimals, parsed from the JSON text digit for digit)."""
    usage_file = conf.collector_file.usage_path + '/usage.jsonl'
    with open(usage_file, 'w') as stream:
        stream.write(''.join(json.dumps(record) + '\n' for record in usage))
    app.put_json('/v1/rating/modules/hashmap', {'enabled': True},
                 status=302)
    _start_scopes(conf)
    clock = lambda: PERIOD + 3 * HOUR  # noqa: E731
    summary = processor.run_until_caught_up(
        conf, scope_ids=list(SCOPES), use_locks=False, clock=clock)
    assert summary['failed'] == {}
    response = app.get('/v2/summary', params={
        'begin': PERIOD.isoformat(), 'end': (PERIOD + HOUR).isoformat(),
        'groupby': 'project_id,id', 'response_format': 'object'})
    results = json.loads(response.text, parse_float=D)['results']
    return {(row['project_id'], row['id']): row['rate'] for row in results}


def test_prices_past_28_decimals_are_stored_rounded_half_up(app, conf):
    """Rating is exact; rated data keeps 28 decimals (NUMERIC(40, 28)) and
    rounds the 29th half away from zero, as PostgreSQL and MariaDB do. The
    prices here end in ...25 at the 29th decimal: an even 28th digit, so
    half-up and half-even differ (...3 against ...2), and so do half-up
    and half-ceiling for the negative one."""
    start = '2026-01-01T00:00:00'
    instance = create(app, 'services', name='instance')['service_id']
    # 28 decimals, the most a cost has.
    create(app, 'mappings', service_id=instance, type='flat',
           cost='1.0000000000000000000000000005', start=start)
    flavor = create(app, 'fields', service_id=instance,
                    name='flavor')['field_id']
    create(app, 'mappings', field_id=flavor, value='credit', type='rate',
           cost='-1', start=start)
    create(app, 'thresholds', service_id=instance, level=0, type='rate',
           cost='0.5')
    prices = _run_period(app, conf, [
        _record('cpu', 'scope-a', 1, id='vm-1', flavor='m1.nano'),
        _record('cpu', 'scope-a', 1, id='vm-2', flavor='credit'),
    ])
    # Exact: +-1.0000000000000000000000000005 * 0.5
    #      = +-0.50000000000000000000000000025.
    assert prices == {
        ('scope-a', 'vm-1'): D('0.5000000000000000000000000003'),
        ('scope-a', 'vm-2'): D('-0.5000000000000000000000000003')}
    frames = app.get('/v1/storage/dataframes', params={
        'begin': PERIOD.replace(tzinfo=None).isoformat(),
        'end': (PERIOD + HOUR).replace(tzinfo=None).isoformat()}).json
    assert sorted(resource['rating'] for frame in frames['dataframes']
                  for resource in frame['resources']) == [
        '-0.5000000000000000000000000003', '0.5000000000000000000000000003']


def test_a_tenant_rule_of_another_group_adds_to_the_global_one(app, conf):
    """rating.md: a tenant's rule overrides a global rule of the same group
    and value/level; in another group it is one more group's price."""
    start = '2026-01-01T00:00:00'
    volume = create(app, 'services', name='volume')['service_id']
    base = create(app, 'groups', name='base')['group_id']
    extra = create(app, 'groups', name='extra')['group_id']
    create(app, 'mappings', service_id=volume, cost='0.001', group_id=base,
           start=start)
    create(app, 'thresholds', service_id=volume, level=50, type='rate',
           cost='0.98', group_id=base)
    # scope-b: its own threshold at 50, in the other group (which has no
    # flat: it adds 0), and its own flat in the other group.
    create(app, 'thresholds', service_id=volume, level=50, type='rate',
           cost='0.5', group_id=extra, tenant_id='scope-b')
    create(app, 'mappings', service_id=volume, cost='0.002', group_id=extra,
           tenant_id='scope-b', start=start)
    # And one that does override: same group, same level.
    create(app, 'thresholds', service_id=volume, level=200, type='rate',
           cost='0.95', group_id=base)
    create(app, 'thresholds', service_id=volume, level=200, type='rate',
           cost='0.9', group_id=base, tenant_id='scope-b')
    prices = _run_period(app, conf, [
        _record('volume.size', scope, qty, id=f'{scope}-{qty}')
        for scope in SCOPES for qty in (50, 250)])
    assert prices == {
        # 50 * 0.001 * 0.98; 250 * 0.001 * 0.95
        ('scope-a', 'scope-a-50'): D('0.049'),
        ('scope-a', 'scope-a-250'): D('0.2375'),
        # base: 0.049 as scope-a; extra: 50 * 0.002 * 0.5
        ('scope-b', 'scope-b-50'): D('0.099'),
        # base: 250 * 0.001 * 0.9 (its own 0.9 overrides 0.95); extra:
        # 250 * 0.002 * 0.5
        ('scope-b', 'scope-b-250'): D('0.475')}
