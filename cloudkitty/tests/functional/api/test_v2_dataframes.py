"""``/v2/dataframes``."""

import pytest

from cloudkitty.tests.functional.api import conftest


def _frame_dict(start, scope='p5', qty='2', price='0.5'):
    return {
        'period': {'begin': start.isoformat(),
                   'end': start.replace(hour=start.hour + 1).isoformat()},
        'usage': {'cpu': [{
            'vol': {'unit': 'instance', 'qty': qty},
            'rating': {'price': price},
            'groupby': {'project_id': scope, 'id': 'i-5'},
            'metadata': {'flavor': 'm5'},
        }]},
    }


@pytest.mark.usefixtures('rated')
def test_get_frames(app):
    body = app.get('/v2/dataframes').json
    assert body['total'] == 4
    first = body['dataframes'][0]
    assert first['period'] == {'begin': conftest.at(1, 0).isoformat(),
                               'end': conftest.at(1, 1).isoformat()}
    cpu = first['usage']['cpu']
    assert cpu[0] == {'vol': {'unit': 'instance', 'qty': 1},
                      'rating': {'price': 1.5},
                      'groupby': {'project_id': 'p1', 'id': 'i-1'},
                      'metadata': {'flavor': 'm1'}}


@pytest.mark.usefixtures('rated')
def test_filters_and_pagination(app):
    body = app.get('/v2/dataframes', params={
        'filters': 'type:cpu,project_id:p1', 'limit': 1, 'offset': 1}).json
    assert body['total'] == 2
    [frame] = body['dataframes']
    assert frame['period']['begin'] == conftest.at(1, 1).isoformat()


def test_nothing_is_404(app):
    response = app.get('/v2/dataframes', status=404)
    assert response.json == {
        'message': 'No rated data found for these filters.'}


@pytest.mark.usefixtures('rated')
def test_reader_only_sees_own(keystone_app):
    body = keystone_app.get('/v2/dataframes', params={
        'filters': 'project_id:p1'}, headers=conftest.reader('p2')).json
    assert body['total'] == 1
    scopes = {point['groupby']['project_id']
              for frame in body['dataframes']
              for points in frame['usage'].values() for point in points}
    assert scopes == {'p2'}


def test_post_then_read(app):
    app.post_json('/v2/dataframes', {'dataframes': [
        _frame_dict(conftest.at(3, 4), qty='0.1', price='1.000000000001')]},
        status=204)
    body = app.get('/v2/dataframes', params={'filters': 'project_id:p5'})
    assert body.json['total'] == 1
    assert '"price": 1.000000000001' in body.text
    assert '"qty": 0.1' in body.text


def test_post_json_numbers_are_exact(app):
    raw = ('{"dataframes": [{"period": {"begin": "%s", "end": "%s"}, '
           '"usage": {"cpu": [{"vol": {"unit": "u", "qty": 0.1}, '
           '"rating": {"price": 0.30000000000000000001}, '
           '"groupby": {"project_id": "p6"}, "metadata": {}}]}}]}' % (
               conftest.at(2).isoformat(), conftest.at(2, 1).isoformat()))
    app.post('/v2/dataframes', raw, content_type='application/json',
             status=204)
    text = app.get('/v2/dataframes', params={'filters': 'project_id:p6'}).text
    assert '"price": 0.30000000000000000001' in text


@pytest.mark.parametrize('body, words', [
    ({}, "parameter 'dataframes' is required"),
    ({'dataframes': []}, 'non-empty list'),
    ({'dataframes': 'x'}, 'non-empty list'),
    ({'dataframes': [1]}, 'data frame 0 is not an object'),
    ({'dataframes': [{'usage': {}}]}, 'data frame 0'),
    ({'dataframes': [{'period': {'begin': 'x', 'end': 'y'}, 'usage': {}}]},
     "'x' is not an ISO 8601 date"),
    ({'dataframes': [{'period': {'begin': '2020-01-01T01:00:00',
                                 'end': '2020-01-01T00:00:00'},
                      'usage': {}}]},
     'before its start'),
    ({'dataframes': [{'period': {'begin': '2020-01-01', 'end': '2020-01-02'},
                      'usage': {'cpu': [{'vol': {'qty': 'lots'}, 'rating': {},
                                         'groupby': {}, 'metadata': {}}]}}]},
     'data frame 0'),
    ({'dataframes': [], 'extra': 1}, "unknown parameter 'extra'"),
])
def test_post_bad_body(app, body, words):
    response = app.post_json('/v2/dataframes', body, status=400)
    assert words in response.json['message']


def test_post_unstorable_value(app):
    response = app.post_json('/v2/dataframes', {'dataframes': [
        _frame_dict(conftest.at(3), qty='1e60')]}, status=400)
    assert response.json['message']


def test_post_malformed_json(app):
    response = app.post('/v2/dataframes', '{"dataframes": [',
                        content_type='application/json', status=400)
    assert response.json['message'].startswith('The body is not valid JSON')


def test_post_is_admin_only(keystone_app):
    keystone_app.post_json('/v2/dataframes', {
        'dataframes': [_frame_dict(conftest.at(3))]},
        headers=conftest.reader('p5'), status=403)


@pytest.mark.parametrize('params', [{'begin': 'x'}, {'limit': '-3'},
                                    {'filters': ':v'}])
def test_get_bad_parameters(app, params):
    app.get('/v2/dataframes', params=params, status=400)
