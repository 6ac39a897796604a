"""Where clients see upstream CloudKitty's contract, over HTTP: HEAD,
content negotiation, the second path of a collector's state, how v1 writes
decimals, v1 frames and label types, what a pushed frame must hold, and
the window of an ``end`` (or a ``begin``) given alone.

The deliberate differences from upstream are in
``doc/source/admin/upstream.rst``; the two the API keeps are pinned at the
end of this module.
"""

import datetime
import decimal
import json

import pytest

from cloudkitty import dataframe
from cloudkitty.tests.functional.api import conftest

UTC = datetime.timezone.utc
HASHMAP = '/v1/rating/module_config/hashmap'
JSON = 'application/json'


# -- HEAD ---------------------------------------------------------------------

# One GET route of each controller, answering 200 or an error.
GET_ROUTES = [
    '/', '/v1', '/v2', '/v1/', '/v2/',
    '/v1/info/config', '/v1/info/metrics', '/v1/info/metrics/cpu',
    '/v1/info/metrics/nothing', '/v1/info/services',
    '/v1/collector/mappings', '/v1/collector/states/gnocchi',
    '/v1/collector/gnocchi/states', '/v1/rating/modules',
    '/v1/rating/modules/noop', '/v1/rating/reload_modules',
    '/v1/report/tenants', '/v1/report/total', '/v1/report/summary',
    '/v1/storage/dataframes', f'{HASHMAP}/types', f'{HASHMAP}/services',
    f'{HASHMAP}/services/nope', f'{HASHMAP}/mappings', f'{HASHMAP}/groups',
    f'{HASHMAP}/thresholds', '/v1/rating/module_config/pyscripts/scripts',
    '/v2/summary', '/v2/summary?groupby=type', '/v2/dataframes',
    '/v2/dataframes?end=2000-01-01', '/v2/scope', '/v2/rating/modules',
    '/v2/rating/modules/noop', '/v2/task/reprocesses',
    '/v2/task/reprocesses/s1', '/v1/nothing', '/v2/nothing',
]


@pytest.mark.usefixtures('rated')
@pytest.mark.parametrize('path', GET_ROUTES)
def test_head_answers_like_get_without_a_body(app, path):
    got = app.get(path, expect_errors=True)
    head = app.head(path, expect_errors=True)
    assert head.status == got.status
    assert head.body == b''
    assert head.headers.get('Content-Type') == got.headers.get(
        'Content-Type')
    assert head.headers.get('Content-Length', '0') == str(len(got.body))


def test_head_of_the_versions_document(app):
    head = app.head('/', status=200)
    assert head.body == b''
    assert head.content_type == JSON
    assert int(head.headers['Content-Length']) == len(app.get('/').body)


def test_head_is_authorised_as_get(keystone_app):
    head = keystone_app.head('/v2/rating/modules',
                             headers=conftest.reader('p1'), status=403)
    assert head.body == b''
    keystone_app.head('/v2/rating/modules', headers=conftest.ADMIN,
                      status=200)


def test_a_405_allows_head_where_get_is_allowed(app):
    response = app.put('/v2/summary', status=405)
    assert response.headers['Allow'] == 'GET, HEAD'
    assert response.json == {
        'message': 'Method PUT is not allowed on /v2/summary.'}


def test_head_of_a_route_without_get_is_405(app):
    head = app.head('/v1/rating/quote', status=405)
    assert head.body == b''


# -- content negotiation -------------------------------------------------------

V2_GET_ROUTES = ['/v2', '/v2/summary', '/v2/summary?response_format=object',
                 '/v2/dataframes', '/v2/scope', '/v2/rating/modules',
                 '/v2/rating/modules/noop', '/v2/task/reprocesses']
JSON_ACCEPTS = ['application/json', 'application/json; charset=utf-8',
                '*/*']
# v2 answers JSON to these too; v1's WSME routes, which also write XML,
# answer XML to them, as upstream's do.
XML_TOO = ['application/*',
           'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8']


@pytest.mark.usefixtures('rated')
@pytest.mark.parametrize('accept', [*JSON_ACCEPTS, *XML_TOO])
@pytest.mark.parametrize('path', V2_GET_ROUTES)
def test_v2_answers_json_to_whoever_accepts_it(app, path, accept):
    expected = app.get(path, expect_errors=True)
    response = app.get(path, headers={'Accept': accept}, expect_errors=True)
    assert (response.status, response.content_type, response.body) == (
        expected.status, JSON, expected.body)


@pytest.mark.parametrize('path', ['/', '/v1/collector/states/x',
                                  f'{HASHMAP}/types', f'{HASHMAP}/groups'])
def test_v1_answers_json_to_application_json(app, path):
    expected = app.get(path)
    for accept in JSON_ACCEPTS:
        response = app.get(path, headers={'Accept': accept}, status=200)
        assert (response.content_type, response.body) == (
            JSON, expected.body)


def test_hashmap_objects_and_quotes_answer_application_json(app):
    """Routes answering JSON of their own, not through WSME."""
    created = app.post_json(f'{HASHMAP}/services', {'name': 'cpu'},
                            headers={'Accept': JSON}, status=201)
    service_id = created.json['service_id']
    response = app.get(f'{HASHMAP}/services/{service_id}',
                       headers={'Accept': JSON}, status=200)
    assert response.json == {'service_id': service_id, 'name': 'cpu'}
    response = app.post_json('/v1/rating/quote', {'resources': [
        {'service': 'cpu', 'volume': '1', 'desc': {}}]},
        headers={'Accept': JSON}, status=200)
    assert response.body == b'0'


def test_a_type_we_cannot_produce_is_406(app):
    response = app.get('/v2/summary', headers={'Accept': 'text/html'},
                       status=406)
    assert response.json == {'message': (
        'This resource cannot be served in a media type the Accept header '
        '(text/html) allows: it is served as application/json.')}
    response = app.get('/v1/report/total', headers={'Accept': 'image/png'},
                       status=406)
    assert response.json == {
        'faultcode': 'Client', 'debuginfo': None, 'faultstring': (
            'This resource cannot be served in a media type the Accept '
            'header (image/png) allows: it is served as application/json, '
            'application/xml, text/xml.')}


# -- collector states ----------------------------------------------------------

def test_collector_states_second_form(app):
    """Upstream's ``/v1/collector/{collector}/states``, beside
    ``/v1/collector/states/{collector}``: one state, two paths."""
    response = app.get('/v1/collector/fake1/states', status=200)
    assert response.json == {'name': 'fake1', 'enabled': False}
    response = app.put_json('/v1/collector/fake1/states',
                            {'name': 'fake1', 'enabled': True}, status=200)
    assert response.json == {'name': 'fake1', 'enabled': True}
    assert app.get('/v1/collector/fake1/states').json == {
        'name': 'fake1', 'enabled': True}
    assert app.get('/v1/collector/states/fake1').json == {
        'name': 'fake1', 'enabled': True}
    assert app.get('/v1/collector/fake2/states').json == {
        'name': 'fake2', 'enabled': False}
    response = app.put_json('/v1/collector/fake1/states', {'enabled': False},
                            status=200)
    assert response.json == {'name': 'fake1', 'enabled': False}
    assert app.get('/v1/collector/states/fake1').json == {
        'name': 'fake1', 'enabled': False}


def test_collector_states_second_form_errors(app):
    response = app.put_json('/v1/collector/fake1/states',
                            {'name': 'fake2', 'enabled': True}, status=400)
    assert response.json == {
        'faultcode': 'Client', 'debuginfo': None,
        'faultstring': "'name' is given several times with different "
                       'values.'}
    response = app.put_json('/v1/collector/fake1/states', {'name': 'fake1'},
                            status=400)
    assert response.json['faultstring'] == \
        "'enabled' is required in the body."
    response = app.post_json('/v1/collector/fake1/states', {}, status=405)
    assert response.headers['Allow'] == 'GET, HEAD, PUT'


def test_a_collector_never_set_reads_disabled(app):
    response = app.get('/v1/collector/states/never', status=200)
    assert response.json == {'name': 'never', 'enabled': False}
    response = app.get('/v1/collector/states', params={'name': 'never'},
                       status=200)
    assert response.json == {'name': 'never', 'enabled': False}


# -- decimals on v1 ------------------------------------------------------------

def _price_frame(start, scope, *prices, type_='cpu'):
    return conftest.frame(start, {type_: [
        conftest.point(scope, 1, price, type_id=f'{scope}-{i}')
        for i, price in enumerate(prices)]})


def test_v1_summary_rates_are_normalized(app, backends):
    backends.storage.push([
        _price_frame(conftest.at(1), 'p1', '40.824', '40.824'),
        _price_frame(conftest.at(1), 'p2', '0.1', '0.2', type_='image'),
        _price_frame(conftest.at(2), 'p2', '3', '7')])
    response = app.get('/v1/report/summary', params={
        'groupby': 'tenant_id,res_type'}, status=200)
    begin = conftest.at(1).replace(day=1, tzinfo=None)
    month = {'begin': begin.isoformat(),
             'end': (begin + datetime.timedelta(days=40)).replace(
                 day=1).isoformat()}
    assert response.json == {'summary': [
        {**month, 'tenant_id': 'p1', 'res_type': 'cpu', 'rate': '81.648'},
        {**month, 'tenant_id': 'p2', 'res_type': 'cpu', 'rate': '10'},
        {**month, 'tenant_id': 'p2', 'res_type': 'image', 'rate': '0.3'}]}
    assert app.get('/v1/report/total', params={'tenant_id': 'p1'},
                   status=200).body == b'"81.648"'
    assert app.get('/v1/report/total', params={'all_tenants': 'true'},
                   status=200).body == b'"91.948"'


def test_v1_summary_rate_of_a_tiny_price_is_positional(app, backends):
    backends.storage.push([_price_frame(conftest.at(1), 'p1',
                                        '0.0000000000000000000000000001')])
    rates = [row['rate'] for row in app.get('/v1/report/summary').json[
        'summary']]
    assert rates == ['0.0000000000000000000000000001']


def test_threshold_levels_have_eight_decimals(app):
    service_id = app.post_json(f'{HASHMAP}/services',
                               {'name': 'cpu'}).json['service_id']
    response = app.post_json(f'{HASHMAP}/thresholds', {
        'service_id': service_id, 'level': 2, 'type': 'flat', 'cost': '0.2',
        'tenant_id': 't1'}, status=201)
    created = response.json
    assert created == {
        'threshold_id': created['threshold_id'], 'level': '2.00000000',
        'type': 'flat', 'cost': '0.2', 'service_id': service_id,
        'field_id': None, 'group_id': None, 'tenant_id': 't1'}
    # A level with more decimals keeps them all; a float is read as
    # written, never through its binary expansion.
    response = app.post(f'{HASHMAP}/thresholds',
                        '{"service_id": "%s", "level": 0.123456789, '
                        '"cost": 0.1}' % service_id,
                        content_type=JSON, status=201)
    assert (response.json['level'], response.json['cost']) == (
        '0.123456789', '0.1')
    levels = [t['level'] for t in app.get(f'{HASHMAP}/thresholds').json[
        'thresholds']]
    assert levels == ['2.00000000', '0.123456789']
    # Sending back what was read changes nothing.
    app.put_json(f'{HASHMAP}/thresholds/{created["threshold_id"]}',
                 created, status=302)
    assert app.get(f'{HASHMAP}/thresholds/{created["threshold_id"]}',
                   status=200).json == created


# -- v1 frames and label types -------------------------------------------------

UPSTREAM_FRAME = {
    'period': {'begin': '2015-01-04T13:00:00', 'end': '2015-01-04T14:00:00'},
    'usage': {
        'cpu': [{'vol': {'unit': 'instance', 'qty': 1},
                 'rating': {'price': 1.337},
                 'groupby': {'project_id': 'p8', 'id': 'vm-1'},
                 'metadata': {'dummy': True, 'fake_meta': 1.0}}],
        'image.size': [{'vol': {'unit': 'MiB', 'qty': 1},
                        'rating': {'price': 0.121},
                        'groupby': {'project_id': 'p8', 'id': 'img-1'},
                        'metadata': {'dummy': True, 'fake_meta': 1.0}}]}}
IN_2015 = {'begin': '2015-01-04T13:00:00', 'end': '2015-01-04T14:00:00'}


def test_v1_storage_one_frame_per_point_with_typed_desc(app):
    app.post_json('/v2/dataframes', {'dataframes': [UPSTREAM_FRAME] * 2},
                  status=204)
    response = app.get('/v1/storage/dataframes', params=IN_2015, status=200)
    frame = ('{"begin": "2015-01-04T13:00:00", "end": "2015-01-04T14:00:00", '
             '"tenant_id": "p8", "resources": [{"service": "%s", "desc": '
             '{"dummy": true, "fake_meta": 1.0, "id": "%s", '
             '"project_id": "p8"}, "volume": "1", "rating": "%s"}]}')
    cpu = frame % ('cpu', 'vm-1', '1.337')
    image = frame % ('image.size', 'img-1', '0.121')
    assert response.text == (
        '{"dataframes": [%s, %s, %s, %s]}' % (cpu, cpu, image, image))


LABELS = ('{"project_id": "p9", "flag": true, "off": false, "none": null, '
          '"count": 3, "one": 1.0, "padded": 1.10, '
          '"long": 12345678901234567890.123456789, "list": [1, "a", 2.50], '
          '"nested": {"k": 0.5}}')


def test_v2_dataframes_round_trip_label_types(app):
    frame = ('{"period": {"begin": "2015-02-01T00:00:00+00:00", '
             '"end": "2015-02-01T01:00:00+00:00"}, "usage": {"cpu": '
             '[{"vol": {"unit": "instance", "qty": 2}, '
             '"rating": {"price": 0.5}, "groupby": %s, "metadata": %s}]}}'
             % (LABELS, '{"text": "1.0", "zero": 0.0}'))
    app.post('/v2/dataframes', '{"dataframes": [%s]}' % frame,
             content_type=JSON, status=204)
    response = app.get('/v2/dataframes', params={
        'begin': '2015-02-01', 'end': '2015-03-01'}, status=200)
    read = json.loads(response.text, parse_float=decimal.Decimal)
    sent = json.loads(frame, parse_float=decimal.Decimal)
    assert read['total'] == 1
    point, = read['dataframes'][0]['usage']['cpu']
    sent_point, = sent['usage']['cpu']
    assert point == sent_point
    # Same JSON types and digits, text for text.
    assert dataframe.dumps(point['groupby'], sort_keys=True) == \
        dataframe.dumps(sent_point['groupby'], sort_keys=True)
    assert '"padded": 1.10' in response.text
    assert '"long": 12345678901234567890.123456789' in response.text
    assert '"flag": true' in response.text and '"none": null' in response.text
    assert '"text": "1.0", "zero": 0.0' in response.text


# -- what a pushed frame must hold ---------------------------------------------

POINT = {'vol': {'unit': 'GiB', 'qty': 1.2}, 'rating': {'price': 0.04},
         'groupby': {'project_id': 'p7'}, 'metadata': {'a': 'b'}}
PERIOD = {'begin': '2019-07-23T12:28:10Z', 'end': '2019-07-23T13:28:10Z'}


@pytest.mark.parametrize('key', ['vol', 'rating', 'groupby', 'metadata'])
def test_a_point_without_a_key_is_refused(app, key):
    lacking = {k: v for k, v in POINT.items() if k != key}
    usage = {'cpu': [POINT], 'ram': [POINT, lacking]}
    response = app.post_json('/v2/dataframes', {'dataframes': [
        {'period': PERIOD, 'usage': {'cpu': [POINT]}},
        {'period': PERIOD, 'usage': usage}]}, status=400)
    assert response.json == {'message': (
        f"invalid parameter 'dataframes': data frame 1, point 1 of 'ram': "
        f"'{key}' is missing")}
    app.get('/v2/dataframes', params={'begin': '2019-07-01'}, status=404)


def test_a_point_without_several_keys_names_them(app):
    response = app.post_json('/v2/dataframes', {'dataframes': [
        {'period': PERIOD, 'usage': {'cpu': [{'vol': POINT['vol']}]}}]},
        status=400)
    assert response.json == {'message': (
        "invalid parameter 'dataframes': data frame 0, point 0 of 'cpu': "
        "'rating', 'groupby' and 'metadata' are missing")}


def test_a_frame_without_usage_is_refused(app):
    response = app.post_json('/v2/dataframes', {'dataframes': [
        {'period': PERIOD, 'usage': {'cpu': [POINT]}}, {'period': PERIOD}]},
        status=400)
    assert response.json == {'message': (
        "invalid parameter 'dataframes': data frame 1: 'usage' is missing")}
    app.get('/v2/dataframes', params={'begin': '2019-07-01'}, status=404)


def test_a_frame_with_empty_usage_is_accepted(app):
    app.post_json('/v2/dataframes', {'dataframes': [
        {'period': PERIOD, 'usage': {}}]}, status=204)


# -- an end (or a begin) given alone -------------------------------------------

@pytest.fixture
def in_2015(backends):
    """Rated data before and after 2015-01-04 (and of this month)."""
    start = datetime.datetime(2015, 1, 3, tzinfo=UTC)
    backends.storage.push([
        _price_frame(start, 'p1', '1'),
        _price_frame(start + datetime.timedelta(days=2), 'p1', '2'),
        _price_frame(conftest.at(1), 'p1', '4')])


EARLY_END = {'end': '2015-01-04T00:00:00'}


@pytest.mark.usefixtures('in_2015')
def test_an_end_alone_before_this_month_is_an_empty_window_v1(app):
    assert app.get('/v1/storage/dataframes', params=EARLY_END,
                   status=200).json == {'dataframes': []}
    assert app.get('/v1/report/total', params=EARLY_END,
                   status=200).body == b'"0"'
    assert app.get('/v1/report/summary', params=EARLY_END,
                   status=200).json == {'summary': []}
    assert app.get('/v1/report/tenants', params=EARLY_END,
                   status=200).json == []


@pytest.mark.usefixtures('in_2015')
def test_an_end_alone_before_this_month_is_an_empty_window_v2(app):
    response = app.get('/v2/dataframes', params=EARLY_END, status=404)
    assert response.json == {
        'message': 'No rated data found for these filters.'}
    response = app.get('/v2/summary', params=EARLY_END, status=200)
    assert response.json == {'total': 0, 'columns': [
        'begin', 'end', 'qty', 'rate'], 'results': [], 'format': 'table'}


@pytest.mark.usefixtures('in_2015')
def test_a_begin_alone_after_this_month_is_an_empty_window(app):
    late = {'begin': (conftest.at(1) + datetime.timedelta(days=62)).replace(
        tzinfo=None).isoformat()}
    assert app.get('/v1/report/total', params=late, status=200).body == \
        b'"0"'
    app.get('/v2/dataframes', params=late, status=404)
    assert app.get('/v2/summary', params=late, status=200).json[
        'total'] == 0


@pytest.mark.usefixtures('in_2015')
def test_an_end_alone_in_this_month_counts_from_its_start(app):
    end = {'end': conftest.at(2).replace(tzinfo=None).isoformat()}
    assert app.get('/v1/report/total', params=end, status=200).body == \
        b'"4"'
    assert app.get('/v2/dataframes', params=end, status=200).json[
        'total'] == 1


# -- deliberate differences the API keeps ---------------------------------------

@pytest.mark.usefixtures('in_2015')
def test_an_explicit_end_before_an_explicit_begin_is_refused(app):
    """Upstream answers an empty window; we say the window is reversed
    (doc/source/admin/upstream.rst)."""
    window = {'begin': '2015-01-05T00:00:00', 'end': '2015-01-04T00:00:00'}
    message = ('end (2015-01-04T00:00:00+00:00) is before begin '
               '(2015-01-05T00:00:00+00:00)')
    response = app.get('/v1/report/total', params=window, status=400)
    assert response.json == {'faultcode': 'Client', 'faultstring': message,
                             'debuginfo': None}
    response = app.get('/v2/dataframes', params=window, status=400)
    assert response.json == {'message': message}


def test_scope_timestamps_must_be_period_starts(app):
    response = app.post_json('/v2/scope', {
        'scope_id': 's1', 'last_processed_timestamp': '2024-01-01T10:30:00'},
        status=400)
    assert response.json == {'message': (
        'last_processed_timestamp (2024-01-01T10:30:00+00:00) not aligned '
        'to the collect period of 3600 seconds; the aligned timestamp is '
        'last_processed_timestamp=2024-01-01T10:00:00+00:00.')}
