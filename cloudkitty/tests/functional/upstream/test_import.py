"""``cloudkitty-import-upstream`` against a real upstream CloudKitty.

Upstream 25.0.0 (in its own virtualenv) created the rules through its own
REST API, and its own code created the states and rated and stored the
points in InfluxDB; the command copies
them into a PostgreSQL database of ours. The proofs: the rules keep their
ids and values, the states and pending tasks are there, the verification
agrees, our ``/v2/summary`` and ``/v1/report/total`` give what upstream's
own API and storage answer for the same windows, a run killed half-way then resumed
stores everything once, and another run stores nothing.
"""

import datetime
import decimal
import signal
import subprocess
import sys
import urllib.parse

from oslo_config import cfg
import pytest
import sqlalchemy as sa
import webtest

from cloudkitty.api import app as api_app
from cloudkitty.api import hooks
from cloudkitty.cli import import_upstream
from cloudkitty import conf as ck_conf
from cloudkitty import db
from cloudkitty import storage
from cloudkitty.tests.functional.upstream import conftest

D = decimal.Decimal


def write_conf(tmp_path, url):
    path = tmp_path / 'cloudkitty.conf'
    path.write_text(f"""\
[DEFAULT]
auth_strategy = noauth
[database]
connection = {url}
[storage]
backend = sqlalchemy
[collect]
period = 3600
""")
    return path


def argv(path, upstream, *more):
    return ['--config-file', str(path), '--upstream-db',
            upstream.database_url, '--influxdb-url', upstream.influx.url,
            '--influxdb-database', upstream.influx_database, *more]


def rows(url, query):
    engine = db.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(sa.text(query))]
    finally:
        engine.dispose()


RULES = {
    'hashmap_services': 'id, service_id, name',
    'hashmap_fields': 'id, field_id, service_id, name',
    'hashmap_groups': 'id, group_id, name',
    'hashmap_thresholds': 'id, threshold_id, level, cost, service_id, '
                          'field_id, group_id, tenant_id',
    'hashmap_mappings': 'id, mapping_id, value, cost, service_id, field_id, '
                        'group_id, tenant_id, name, description, start, '
                        '"end", created_at, created_by, deleted, deleted_by',
    'pyscripts_scripts': 'id, script_id, name, checksum, start, created_by',
}


def upstream_rows(upstream, table, columns):
    return rows(upstream.database_url,
                f'SELECT {columns.replace(chr(34), "`")} FROM {table} '
                f'ORDER BY id')


def our_conf(url):
    conf = ck_conf.register_all(cfg.ConfigOpts())
    conf([], project='cloudkitty', default_config_files=[])
    conf.set_override('connection', url, 'database')
    conf.set_override('auth_strategy', 'noauth')
    return conf


def our_app(conf):
    return webtest.TestApp(api_app.setup_app(conf, hooks.Backends(
        conf, scope_reset=lambda *args: None)))


def _rates(summary):
    """``{(project_id, type): rate}`` of a /v2/summary answer."""
    columns = summary['columns']
    return {(row[columns.index('project_id')], row[columns.index('type')]):
            decimal.Decimal(str(row[columns.index('rate')]))
            for row in summary['results']}


def test_import_resumed_repeated_and_compared(upstream, ours, tmp_path,
                                              capsys):
    path = write_conf(tmp_path, ours)
    # A run killed half-way (SIGKILL: no cleanup at all).
    killed = subprocess.Popen(
        [sys.executable, '-m', 'cloudkitty.cli.import_upstream',
         *argv(path, upstream)], stdout=subprocess.PIPE, text=True)
    stored = 0
    for line in killed.stdout:
        stored += ' points stored;' in line
        if stored == 30:
            killed.send_signal(signal.SIGKILL)
            break
    killed.wait(60)
    assert stored == 30

    assert import_upstream.main(argv(path, upstream)) == 0
    resumed = capsys.readouterr().out
    assert resumed.count(' points already stored;') >= 29
    assert f'/{conftest.POINTS:,} points' in resumed
    totals = len(conftest.MONTHS) * len(conftest.SCOPES) * len(
        conftest.TYPES)
    assert f'all {totals} totals agree' in resumed

    # Rules and states: upstream's ids and values.
    for table, columns in RULES.items():
        theirs = upstream_rows(upstream, table, columns)
        assert theirs and rows(
            ours, f'SELECT {columns} FROM {table} ORDER BY id') == theirs
    assert rows(ours, 'SELECT mapping_id FROM hashmap_mappings WHERE '
                      'deleted IS NOT NULL') == [(
                          upstream.ids['mappings'][-1],)]
    # Created through upstream's API: noauth's user is 'unknown' there.
    assert rows(ours, 'SELECT DISTINCT created_by FROM hashmap_mappings '
                      'UNION SELECT deleted_by FROM hashmap_mappings WHERE '
                      'deleted IS NOT NULL') == [('unknown',)]
    assert rows(ours, 'SELECT data FROM pyscripts_scripts') == [(
        '# priced by hashmap\nfor period in data:\n    pass\n',)]
    assert rows(ours, 'SELECT name, enabled, priority FROM '
                      'rated_data_modules ORDER BY name') == [
        ('hashmap', True, 100), ('pyscripts', False, 2)]
    assert rows(ours, 'SELECT service, collector FROM '
                      'service_to_collector_mappings') == [
        ('instance', 'gnocchi')]
    assert rows(ours, 'SELECT identifier, current_reprocess_time FROM '
                      'storage_states_reprocessing_scheduler') == [
        ('scope-1', None)]
    assert sorted(rows(ours, 'SELECT identifier, scope_key, fetcher, '
                             'collector, active FROM '
                             'cloudkitty_storage_states')) == [
        (f'scope-{n}', 'project_id', 'keystone', 'gnocchi', True)
        for n in range(3)]

    # Our API answers what upstream's API and storage answer, month by
    # month: /v2/summary grouped by type and project, /v1/report/total.
    windows = [[b.isoformat(), e.isoformat()] for b, e in conftest.MONTHS]
    theirs = upstream.side('totals', {'windows': windows})
    app = our_app(our_conf(ours))
    summary_query = {'groupby': ['type', 'project_id'], 'limit': 1000}
    for (begin, end), their_rows in zip(windows, theirs):
        window = {'begin': begin, 'end': end}
        ours_by_key = _rates(app.get('/v2/summary', params={
            **window, **summary_query}).json)
        their_api = _rates(upstream.api.call(
            'GET', '/v2/summary?' + urllib.parse.urlencode(
                {**window, **summary_query}, doseq=True), status=200))
        assert len(ours_by_key) == len(their_rows) == len(their_api) == len(
            conftest.SCOPES) * len(conftest.TYPES)
        for row in their_rows:
            key = (row['scope'], row['type'])
            for their_rate in (decimal.Decimal(row['rate']), their_api[key]):
                assert ours_by_key[key] == pytest.approx(
                    their_rate, rel=decimal.Decimal('1e-9'))
            report = {**window, 'tenant_id': row['scope'],
                      'service': row['type']}
            total = decimal.Decimal(str(app.get(
                '/v1/report/total', params=report).json))
            their_total = decimal.Decimal(str(upstream.api.call(
                'GET', '/v1/report/total?' + urllib.parse.urlencode(report),
                status=200)))
            assert total == pytest.approx(their_total,
                                          rel=decimal.Decimal('1e-9'))
            assert total == pytest.approx(decimal.Decimal(row['rate']),
                                          rel=decimal.Decimal('1e-9'))

    # Point by point, a day of each month: upstream's own retrieve and
    # ours give the same points, labels and Decimal(repr(float)) prices.
    backend = storage.get_storage(our_conf(ours))
    for begin, _ in conftest.MONTHS:
        window = {'begin': begin.isoformat(),
                  'end': (begin + datetime.timedelta(days=1)).isoformat()}
        theirs = sorted(
            (type_, unit, D(qty), D(price), sorted(groupby.items()),
             sorted(metadata.items()))
            for type_, unit, qty, price, groupby, metadata in
            upstream.side('retrieve', window))
        assert len(theirs) == 24 * len(conftest.SCOPES) * len(
            conftest.TYPES) * conftest.RESOURCES
        assert sorted(
            (type_, point.unit, point.qty, point.price,
             sorted(point.groupby.items()), sorted(point.metadata.items()))
            for frame in backend.retrieve(paginate=False, **window)[
                'dataframes'] for type_, point in frame.iterpoints()) == theirs

    # Our quotes are upstream's, with the rules imported.
    resources = [
        {'service': 'instance', 'volume': '1', 'desc': {
            'groupby': {'id': 'vm'}, 'metadata': {'flavor_name': flavor}}}
        for flavor in ('m1.small', 'm1.large', 'm1.xlarge', 'm1.tiny')] + [
        {'service': 'volume', 'volume': size, 'desc': {
            'groupby': {'id': 'vol'}, 'metadata': {}}}
        for size in ('10', '49.5', '50', '250')]
    upstream_quotes = upstream.side('quote', {'resources': resources})
    assert [D(q) for q in upstream_quotes] == [
        D('0.0123'), D('0.0471'), D('0.1337'), 0,
        D('0.009'), D('0.04455'), D('0.0441'), D('0.2205')]
    assert [D(app.post_json('/v1/rating/quote', {
        'resources': [resource]}).text) for resource in resources] == [
        D(q) for q in upstream_quotes]

    # New rules get ids after upstream's (PostgreSQL's sequences moved).
    url = '/v1/rating/module_config/hashmap'
    service = app.post_json(f'{url}/services', {'name': 'network'},
                            status=201).json['service_id']
    app.post_json(f'{url}/mappings', {'service_id': service, 'type': 'flat',
                                      'cost': '0.01'}, status=201)
    assert rows(ours, "SELECT s.id, m.id FROM hashmap_services s JOIN "
                      "hashmap_mappings m ON m.service_id = s.id WHERE "
                      "s.name = 'network'") == [(4, 7)]

    # Another run stores nothing.
    assert import_upstream.main(argv(path, upstream)) == 0
    again = capsys.readouterr().out
    assert ' points stored;' not in again
    for table in (*RULES, 'modules_state', 'cloudkitty_storage_states',
                  'service_to_collector_mappings'):
        assert f'{table}: 0 inserted, 0 updated,' in again
