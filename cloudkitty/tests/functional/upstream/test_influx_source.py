"""The InfluxDB source against canned InfluxDB 1.x answers over real HTTP:
how rows become points, what upstream's sums become, and the answers it
refuses (an error, an answer cut by ``max-row-limit``)."""

import datetime
import decimal
import json
import urllib.parse

import pytest

from cloudkitty import importer
from cloudkitty.importer import influx
from cloudkitty.tests.functional import live_server

UTC = datetime.timezone.utc
D = decimal.Decimal
JAN = datetime.datetime(2026, 1, 1, tzinfo=UTC)
DAY = datetime.timedelta(days=1)
COLUMNS = ['time', '__ck_collect_period', 'description', 'flavor', 'groupby',
           'metadata', 'price', 'qty', 'unit', 'vcpus']


class FakeInfluxDB:
    """Answers each query with the canned result of the first key found in
    it; records the queries' parameters."""

    def __init__(self, answers):
        self.answers = answers
        self.requests = []

    def __call__(self, environ, start_response):
        params = dict(urllib.parse.parse_qsl(environ['QUERY_STRING']))
        self.requests.append(params)
        result = next(answer for key, answer in self.answers.items()
                      if key in params['q'])
        start_response('200 OK', [('Content-Type', 'application/json')])
        return [json.dumps({'results': [result]}).encode()]


@pytest.fixture
def fake():
    instance = FakeInfluxDB({})
    with live_server.serve(instance) as url:
        instance.url = url
        yield instance


def source(fake, user=''):
    url = fake.url.replace('http://', f'http://{user}')
    return influx.InfluxSource(url, 'ck', period=600)


def test_rows_become_points_of_their_periods(fake):
    epoch = int(JAN.timestamp())
    fake.answers['GROUP BY *'] = {'statement_id': 0, 'series': [
        {'name': 'dataframes', 'tags': {'id': 'vm-1', 'project_id': 'p1',
                                        'type': 'instance'},
         'columns': COLUMNS, 'values': [
             [epoch, 3600, 'a vm', 'm1', 'id|project_id', 'flavor|vcpus',
              0.1, 1, 'instance', 2],
             [epoch + 3600, 3600, None, 'm1', 'id|project_id',
              'flavor|vcpus', 0.30000000000000004, 1, 'instance', 2]]},
        # No project_id tag (a point without scope), no period field.
        {'name': 'dataframes', 'tags': {'id': 'vol-1', 'type': 'volume'},
         'columns': COLUMNS, 'values': [
             [epoch, None, None, None, 'id|project_id', '', 1e-7, 2.5,
              'GiB', None]]}]}
    frames = source(fake).frames(JAN, JAN + DAY)
    assert [(f.start, f.end) for f in frames] == [
        (JAN, JAN + datetime.timedelta(minutes=10)),
        (JAN, JAN + datetime.timedelta(hours=1)),
        (JAN + datetime.timedelta(hours=1), JAN + datetime.timedelta(
            hours=2))]
    points = [(type_, p.unit, p.qty, p.price, dict(p.groupby),
               dict(p.metadata), p.description)
              for f in frames for type_, p in f.iterpoints()]
    assert points == [
        ('volume', 'GiB', D('2.5'), D('1E-7'),
         {'id': 'vol-1', 'project_id': ''}, {}, None),
        ('instance', 'instance', D(1), D('0.1'),
         {'id': 'vm-1', 'project_id': 'p1'}, {'flavor': 'm1', 'vcpus': 2},
         'a vm'),
        ('instance', 'instance', D(1), D('0.30000000000000004'),
         {'id': 'vm-1', 'project_id': 'p1'}, {'flavor': 'm1', 'vcpus': 2},
         None)]
    query, = fake.requests
    assert query['q'] == (
        "SELECT * FROM \"dataframes\" WHERE time >= '2026-01-01T00:00:00Z' "
        "AND time < '2026-01-02T00:00:00Z' GROUP BY *")
    assert (query['db'], query['epoch']) == ('ck', 's')


def test_totals_count_and_bounds_with_credentials(fake):
    fake.answers.update({
        'SUM(qty)': {'statement_id': 0, 'series': [
            {'name': 'dataframes', 'tags': {'type': 'cpu',
                                            'project_id': 'p1'},
             'columns': ['time', 'sum', 'sum_1'],
             'values': [[0, 3, 0.30000000000000004]]},
            {'name': 'dataframes', 'tags': {'type': 'cpu', 'project_id': ''},
             'columns': ['time', 'sum', 'sum_1'], 'values': [[0, 1.5, 2]]}]},
        'COUNT(qty)': {'statement_id': 0, 'series': [
            {'name': 'dataframes', 'columns': ['time', 'count'],
             'values': [[0, 42]]}]},
        'FIRST(qty)': {'statement_id': 0, 'series': [
            {'name': 'dataframes', 'columns': ['time', 'first'],
             'values': [[int(JAN.timestamp()), 1]]}]},
        'LAST(qty)': {'statement_id': 0, 'series': [
            {'name': 'dataframes', 'columns': ['time', 'last'],
             'values': [[int((JAN + DAY).timestamp()), 1]]}]},
    })
    reader = source(fake, user='ck%40admin:s%3Acret@')
    assert reader.totals(JAN, JAN + DAY) == {
        ('p1', 'cpu'): (D(3), D('0.30000000000000004')),
        (None, 'cpu'): (D('1.5'), D(2))}
    assert reader.count(JAN, JAN + DAY) == 42
    assert reader.bounds() == (JAN, JAN + DAY)
    assert {(r['u'], r['p']) for r in fake.requests} == {
        ('ck@admin', 's:cret')}
    assert fake.requests[0]['q'].endswith('GROUP BY "type", "project_id"')


def test_an_error_or_a_cut_answer_is_refused(fake):
    fake.answers['GROUP BY *'] = {'statement_id': 0, 'series': [
        {'name': 'dataframes', 'tags': {}, 'columns': COLUMNS, 'values': [],
         'partial': True}]}
    with pytest.raises(importer.ImportFailed, match=r'cut by \[http\] '
                       r'max-row-limit: lower --chunk-hours'):
        source(fake).frames(JAN, JAN + DAY)
    fake.answers['COUNT(qty)'] = {'statement_id': 0,
                                  'error': 'database not found: ck'}
    with pytest.raises(importer.ImportFailed,
                       match='database not found: ck'):
        source(fake).count(JAN, JAN + DAY)


def test_an_unreachable_influxdb_is_an_import_failure():
    reader = influx.InfluxSource(
        f'http://127.0.0.1:{live_server.free_port()}', 'ck', timeout=5)
    with pytest.raises(importer.ImportFailed, match='InfluxDB http://'):
        reader.count(JAN, JAN + DAY)
