"""``/v2/summary``."""

import decimal

import pytest

from cloudkitty import collector
from cloudkitty.tests.functional.api import conftest
from cloudkitty import timeutils

pytestmark = pytest.mark.usefixtures('rated')


def test_table_format_ungrouped(app):
    body = app.get('/v2/summary').json
    assert body['format'] == 'table'
    assert body['total'] == 1
    assert body['columns'] == ['begin', 'end', 'qty', 'rate']
    begin, end, qty, rate = body['results'][0]
    assert begin == conftest.at(1).isoformat()
    assert end.endswith('+00:00')
    assert (qty, rate) == (14, 4.5)


def test_numbers_are_json_numbers_digit_for_digit(app):
    body = app.get('/v2/summary', params={'groupby': 'project_id'}).text
    assert '"rate": ' not in body  # table format: rows are lists
    assert ', 1.25, "p2"]' in body and ', 3.25, "p1"]' in body


def test_table_grouped(app):
    body = app.get('/v2/summary', params={'groupby': 'type,project_id'}).json
    assert body['columns'] == ['begin', 'end', 'qty', 'rate', 'type',
                               'project_id']
    rows = {(row[4], row[5]): row[3] for row in body['results']}
    assert rows == {('cpu', 'p1'): 3, ('cpu', 'p2'): 1.25,
                    ('image.size', 'p1'): 0.25}


def test_object_format(app):
    body = app.get('/v2/summary', params={
        'groupby': ['type', 'project_id'], 'response_format': 'object'},
    ).json
    assert body['format'] == 'object'
    assert body['total'] == 3
    row = body['results'][0]
    assert set(row) == {'begin', 'end', 'qty', 'rate', 'type', 'project_id'}


def test_exact_decimals(app, backends):
    backends.storage.push([conftest.frame(conftest.at(2), {'cpu': [
        conftest.point('p3', '0.1', '0.30000000000000000001')]})])
    text = app.get('/v2/summary', params={
        'filters': 'project_id:p3', 'response_format': 'object'}).text
    assert '"rate": 0.30000000000000000001' in text
    assert decimal.Decimal('0.1') == decimal.Decimal(
        text.split('"qty": ')[1].split(',')[0])


def test_groupby_time(app):
    body = app.get('/v2/summary', params={
        'groupby': 'time', 'filters': 'project_id:p1',
        'response_format': 'object'}).json
    assert [(r['begin'], r['rate']) for r in body['results']] == [
        (conftest.at(1, 0).isoformat(), 1.75),
        (conftest.at(1, 1).isoformat(), 1.5)]


@pytest.mark.parametrize('key, label', [
    ('time-d', 'day_of_the_year'), ('time-w', 'week_of_the_year'),
    ('time-m', 'month'), ('time-y', 'year')])
def test_groupby_time_keys(app, backends, key, label):
    """``time-d`` and the like group by the time labels the collector
    gives every point (collector.time_keys), under the label's name; the
    rated fixture's points, without them, come last."""
    usage = []
    for day, qty, price in ((2, 2, '0.5'), (3, 3, '0.25'), (9, 1, '2')):
        start = conftest.at(day)
        point = conftest.point('p9', qty, price)
        point = point._replace(groupby={**point.groupby,
                                        **collector.time_keys(start)})
        backends.storage.push([conftest.frame(start, {'cpu': [point]})])
        usage.append((collector.time_keys(start)[label], qty,
                      decimal.Decimal(price)))
    expected = {}
    for value, qty, price in usage:
        old_qty, old_price = expected.get(value, (0, 0))
        expected[value] = (old_qty + qty, old_price + price)
    body = app.get('/v2/summary', params={
        'groupby': key, 'response_format': 'object'}).json
    assert body['total'] == len(expected) + 1
    rows = body['results']
    assert {row[label]: (row['qty'], row['rate'])
            for row in rows[:-1]} == expected
    # The rated fixture's points (see conftest.rated), without labels.
    assert (rows[-1][label], rows[-1]['qty'], rows[-1]['rate']) == (
        None, 14, 4.5)
    # The query's window: by default, the current month.
    window = tuple(moment.isoformat() for moment in timeutils.month_window())
    assert {(row['begin'], row['end']) for row in rows} == {window}
    # Asking by the label's own name is the same.
    assert app.get('/v2/summary', params={
        'groupby': label, 'response_format': 'object'}).json == body


@pytest.mark.parametrize('key', ['time-h', 'time-x', 'timely'])
def test_groupby_other_time_keys_refused(app, key):
    response = app.get('/v2/summary', params={'groupby': key}, status=400)
    assert key in response.json['message']


def test_groupby_malformed_key(app):
    response = app.get('/v2/summary', params={'groupby': 'a b'}, status=400)
    assert 'a b' in response.json['message']


def test_filters_repeated_are_or(app):
    body = app.get('/v2/summary', params=[
        ('filters', 'project_id:p1'), ('filters', 'project_id:p2'),
        ('groupby', 'project_id')]).json
    assert body['total'] == 2


def test_filters_comma_separated(app):
    body = app.get('/v2/summary', params={
        'filters': 'project_id:p1,type:cpu'}).json
    assert body['results'][0][3] == 3


def test_type_filter_is_metric_types(app):
    body = app.get('/v2/summary', params=[
        ('filters', 'type:image.size'), ('filters', 'type:nothing')]).json
    assert body['results'][0][3] == 0.25


def test_pagination(app):
    params = {'groupby': 'type,project_id', 'limit': 2}
    first = app.get('/v2/summary', params=params).json
    second = app.get('/v2/summary', params={**params, 'offset': 2}).json
    assert first['total'] == second['total'] == 3
    assert len(first['results']) == 2 and len(second['results']) == 1


@pytest.mark.parametrize('params, words', [
    ({'limit': 0}, "'limit': must be at least 1"),
    ({'offset': -1}, "'offset': must be at least 0"),
    ({'limit': 'ten'}, "'limit'"),
    ({'begin': 'monday'}, "'begin'"),
    ({'end': '2020-13-01'}, "'end'"),
    ({'filters': 'project_id'}, 'not a key:value pair'),
    ({'response_format': 'csv'}, 'not a response format'),
    ({'colour': 'red'}, "unknown query parameter 'colour'"),
    ({'begin': '2020-02-01', 'end': '2020-01-01'}, 'before begin'),
    ({'custom_fields': 'DROP TABLE x'}, 'custom'),
])
def test_bad_parameters(app, params, words):
    response = app.get('/v2/summary', params=params, status=400)
    assert words in response.json['message']


def test_repeated_single_parameter(app):
    response = app.get('/v2/summary', params=[('limit', 1), ('limit', 2)],
                       status=400)
    assert 'expected one value' in response.json['message']


def test_dates_with_offsets(app):
    body = app.get('/v2/summary', params={
        'begin': conftest.at(1).isoformat().replace('+00:00', '+02:00'),
        'end': conftest.at(1, 1).isoformat()}).json
    # [day 1 00:00+02:00, day 1 01:00Z) = [day 0 22:00Z, day 1 01:00Z)
    assert body['results'][0][3] == 3


def test_reader_only_sees_own_project(keystone_app):
    body = keystone_app.get('/v2/summary', params={
        'groupby': 'project_id', 'filters': 'project_id:p1'},
        headers=conftest.reader('p2')).json
    assert [row[4] for row in body['results']] == ['p2']


def test_reader_without_project_sees_nothing(keystone_app):
    body = keystone_app.get('/v2/summary', params={'groupby': 'project_id'},
                            headers={'X-Roles': 'reader'}).json
    assert (body['total'], body['results']) == (0, [])


def test_admin_sees_all(keystone_app):
    body = keystone_app.get('/v2/summary', params={'groupby': 'project_id'},
                            headers=conftest.ADMIN).json
    assert body['total'] == 2
