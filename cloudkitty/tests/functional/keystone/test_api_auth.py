"""The API in keystone mode against a real Keystone.

Tokens come from Keystone and keystonemiddleware validates them: 401
without a valid token, admins see every project, a reader of project A
never sees project B's rated data (one test per route) and gets 403 on the
administrative routes.
"""

import decimal

import pytest

from cloudkitty.tests.functional.keystone import conftest

ROUTES_OF_RATED_DATA = ['/v1/report/total', '/v1/report/summary',
                        '/v1/storage/dataframes', '/v2/summary',
                        '/v2/dataframes']


@pytest.mark.parametrize('path', ROUTES_OF_RATED_DATA +
                         ['/v1/rating/modules', '/v2/scope'])
def test_no_token_is_401(as_user, path):
    assert as_user().get(path).status_code == 401


@pytest.mark.parametrize('path', ['/v1/report/total', '/v2/summary'])
def test_bad_token_is_401(as_user, path):
    caller = as_user()
    caller.headers['X-Auth-Token'] = 'gAAAAAB-not-a-token'
    assert caller.get(path).status_code == 401


def test_token_of_another_user_tampered_is_401(as_user):
    caller = as_user('reader_a')
    caller.headers['X-Auth-Token'] = caller.headers['X-Auth-Token'][:-4] + \
        'AAAA'
    assert caller.get('/v2/summary').status_code == 401


@pytest.mark.parametrize('path', ['/', '/v1', '/v2', '/healthcheck'])
def test_versions_and_healthcheck_need_no_token(as_user, path):
    assert as_user().get(path).status_code == 200


def _v2_summary_by_project(caller, **params):
    response = caller.get('/v2/summary', groupby='project_id',
                          response_format='object', **params)
    assert response.status_code == 200, response.text
    return {row['project_id']: str(row['rate'])
            for row in response.json()['results']}


def test_admin_sees_every_project(as_user, ids):
    admin = as_user('admin')
    assert _v2_summary_by_project(admin) == {
        ids['A']: conftest.TOTALS['A'], ids['B']: conftest.TOTALS['B']}
    assert decimal.Decimal(admin.get(
        '/v1/report/total', all_tenants='true').json()) == decimal.Decimal(
        '9.5')
    assert admin.get('/v1/report/total', tenant_id=ids['B']).json() == \
        conftest.TOTALS['B']
    assert sorted(admin.get('/v1/report/tenants').json()) == \
        sorted([ids['A'], ids['B']])
    summary = admin.get('/v1/report/summary', all_tenants='true',
                        groupby='tenant_id').json()['summary']
    assert {row['tenant_id']: row['rate'] for row in summary} == {
        ids['A']: '1.75', ids['B']: '7.75'}
    frames = admin.get('/v1/storage/dataframes').json()['dataframes']
    assert {frame['tenant_id'] for frame in frames} == {ids['A'], ids['B']}
    assert admin.get('/v2/dataframes').json()['total'] == 3


# A reader of project A, route by route: their own data only, whatever
# they ask for; project B's id never appears in an answer.

def _no_trace_of_b(response, ids):
    assert ids['B'] not in response.text
    assert conftest.TOTALS['B'] not in response.text


def _all_refused(reader, path, ids, *param_sets):
    for params in param_sets:
        response = reader.get(path, **params)
        assert response.status_code == 403, params
        _no_trace_of_b(response, ids)


def test_reader_v1_report_total(as_user, ids):
    reader = as_user('reader_a')
    response = reader.get('/v1/report/total')
    assert response.json() == conftest.TOTALS['A']
    assert reader.get('/v1/report/total',
                      tenant_id=ids['A']).json() == conftest.TOTALS['A']
    _all_refused(reader, '/v1/report/total', ids,
                 {'tenant_id': ids['B']}, {'all_tenants': 'true'})
    assert as_user('reader_b').get('/v1/report/total').json() == \
        conftest.TOTALS['B']


def test_reader_v1_report_summary(as_user, ids):
    reader = as_user('reader_a')
    response = reader.get('/v1/report/summary',
                          groupby='tenant_id,res_type')
    assert response.status_code == 200
    assert {(row['tenant_id'], row['res_type'], row['rate'])
            for row in response.json()['summary']} == {
        (ids['A'], 'cpu', '1.5'), (ids['A'], 'image.size', '0.25')}
    _no_trace_of_b(response, ids)
    _all_refused(reader, '/v1/report/summary', ids,
                 {'tenant_id': ids['B']}, {'all_tenants': 'true'},
                 {'tenant_id': ids['B'], 'groupby': 'tenant_id'})


def test_reader_v1_storage_dataframes(as_user, ids):
    reader = as_user('reader_a')
    response = reader.get('/v1/storage/dataframes')
    frames = response.json()['dataframes']
    assert {frame['tenant_id'] for frame in frames} == {ids['A']}
    assert sorted(resource['rating'] for frame in frames
                  for resource in frame['resources']) == ['0.25', '1.5']
    _no_trace_of_b(response, ids)
    _all_refused(reader, '/v1/storage/dataframes', ids,
                 {'tenant_id': ids['B']},
                 {'tenant_id': ids['B'], 'resource_type': 'cpu'})


def test_reader_v2_summary(as_user, ids):
    reader = as_user('reader_a')
    assert _v2_summary_by_project(reader) == {ids['A']: conftest.TOTALS['A']}
    # Asking for B's scope still answers with A's own data only.
    assert _v2_summary_by_project(
        reader, filters=f'project_id:{ids["B"]}') == {
        ids['A']: conftest.TOTALS['A']}
    for params in ({'filters': f'project_id:{ids["B"]}'},
                   {'groupby': 'type,project_id'},
                   {'filters': f'project_id:{ids["B"]},type:cpu',
                    'groupby': 'project_id'}):
        response = reader.get('/v2/summary', **params)
        assert response.status_code == 200
        _no_trace_of_b(response, ids)
    assert _v2_summary_by_project(as_user('reader_b')) == {
        ids['B']: conftest.TOTALS['B']}


def test_reader_v2_dataframes(as_user, ids):
    reader = as_user('reader_a')
    for params in ({}, {'filters': f'project_id:{ids["B"]}'}):
        response = reader.get('/v2/dataframes', **params)
        body = response.json()
        assert body['total'] == 2
        assert {point['groupby']['project_id']
                for frame in body['dataframes']
                for points in frame['usage'].values()
                for point in points} == {ids['A']}
        _no_trace_of_b(response, ids)
    # Only B's metric type: nothing of A's matches, and B's stays hidden.
    response = reader.get('/v2/dataframes',
                          filters=f'project_id:{ids["B"]},type:cpu')
    assert ids['B'] not in response.text


@pytest.mark.parametrize('method, path, body', [
    ('GET', '/v1/report/tenants', None),
    ('GET', '/v1/rating/modules', None),
    ('PUT', '/v1/rating/modules/noop', {'enabled': False}),
    ('GET', '/v1/rating/reload_modules', None),
    ('GET', '/v1/collector/mappings', None),
    ('GET', '/v2/rating/modules', None),
    ('GET', '/v2/scope', None),
    ('PUT', '/v2/scope', {'all_scopes': True,
                          'last_processed_timestamp': '2024-01-01T00:00:00'}),
    ('PATCH', '/v2/scope', {'scope_id': 'x', 'active': False}),
    ('POST', '/v2/dataframes', {'dataframes': []}),
    ('GET', '/v2/task/reprocesses', None),
    ('POST', '/v2/task/reprocesses', {
        'scope_ids': 'ALL', 'reason': 'r',
        'start_reprocess_time': '2024-01-01T00:00:00',
        'end_reprocess_time': '2024-01-01T01:00:00'}),
])
def test_reader_gets_403_on_admin_routes(as_user, method, path, body):
    response = as_user('reader_a').request(method, path, json=body)
    assert response.status_code == 403, response.text
