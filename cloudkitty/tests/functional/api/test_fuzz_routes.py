"""Property-based fuzzing of every route, on SQLite, PostgreSQL and
MariaDB: whatever a client sends (path ids, query parameters, bodies), the
API answers a success or a 4xx, never a 5xx, and no answer shows the
server's internals (driver names, SQL, tracebacks).

Each run draws new inputs (hypothesis' random seed; a failure prints the
input, and the example database replays it on the next local run). The
application is built once per database (module-scoped) and shared by the
examples, as are its rows: what one request created, the next one reads,
updates or trips over. Bounded: :data:`EXAMPLES` requests per database.
"""

import json
import urllib.parse

import hypothesis
from hypothesis import strategies as st
import pytest

from cloudkitty.tests.functional.api import conftest as api_conftest
from cloudkitty.tests.functional.api import server_errors

EXAMPLES = 400

HASHMAP = '/v1/rating/module_config/hashmap'
PYSCRIPTS = '/v1/rating/module_config/pyscripts/scripts'

# (method, path); {id} is replaced by an id, real or hostile.
ROUTES = [
    ('GET', '/'), ('GET', '/v1'), ('GET', '/v2'), ('HEAD', '/'),
    ('GET', '/v1/info/config'), ('GET', '/v1/info/metrics'),
    ('GET', '/v1/info/metrics/{id}'), ('GET', '/v1/info/services'),
    ('GET', '/v1/info/services/{id}'),
    ('GET', '/v1/collector/mappings'), ('GET', '/v1/collector/mappings/{id}'),
    ('POST', '/v1/collector/mappings'),
    ('POST', '/v1/collector/mappings/{id}/{id}'),
    ('DELETE', '/v1/collector/mappings/{id}'),
    ('DELETE', '/v1/collector/mappings'),
    ('GET', '/v1/collector/states'), ('GET', '/v1/collector/states/{id}'),
    ('PUT', '/v1/collector/states/{id}'), ('PUT', '/v1/collector/states'),
    ('GET', '/v1/collector/{id}/states'), ('PUT', '/v1/collector/{id}/states'),
    ('GET', '/v1/rating/modules'), ('GET', '/v1/rating/modules/{id}'),
    ('PUT', '/v1/rating/modules/{id}'), ('GET', '/v1/rating/reload_modules'),
    ('POST', '/v1/rating/quote'),
    ('GET', '/v1/report/tenants'), ('GET', '/v1/report/total'),
    ('GET', '/v1/report/summary'), ('GET', '/v1/storage/dataframes'),
    ('GET', '/v1/rating/module_config/{id}'),
    ('GET', HASHMAP + '/types'),
    *[(method, f'{HASHMAP}/{kind}{suffix}')
      for kind in ('services', 'fields', 'groups', 'mappings', 'thresholds')
      for method, suffix in (('GET', ''), ('POST', ''), ('PUT', ''),
                             ('DELETE', ''), ('GET', '/{id}'),
                             ('PUT', '/{id}'), ('DELETE', '/{id}'))],
    ('GET', HASHMAP + '/groups/mappings'),
    ('GET', HASHMAP + '/groups/thresholds'),
    ('GET', HASHMAP + '/mappings/group'),
    ('GET', HASHMAP + '/thresholds/group'),
    ('GET', PYSCRIPTS), ('POST', PYSCRIPTS), ('GET', PYSCRIPTS + '/{id}'),
    ('PUT', PYSCRIPTS + '/{id}'), ('DELETE', PYSCRIPTS + '/{id}'),
    ('GET', '/v2/summary'), ('GET', '/v2/dataframes'),
    ('POST', '/v2/dataframes'),
    ('GET', '/v2/scope'), ('PUT', '/v2/scope'), ('PATCH', '/v2/scope'),
    ('POST', '/v2/scope'),
    ('GET', '/v2/task/reprocesses'), ('GET', '/v2/task/reprocesses/{id}'),
    ('POST', '/v2/task/reprocesses'),
    ('GET', '/v2/rating/modules'), ('GET', '/v2/rating/modules/{id}'),
    ('PUT', '/v2/rating/modules/{id}'),
]

# Every parameter name a route reads, from the query string or the body.
NAMES = [
    'begin', 'end', 'groupby', 'filters', 'custom_fields', 'response_format',
    'offset', 'limit', 'scope_id', 'scope_key', 'fetcher', 'collector',
    'active', 'all_scopes', 'last_processed_timestamp', 'state',
    'scope_ids', 'order', 'start_reprocess_time', 'end_reprocess_time',
    'reason', 'enabled', 'priority', 'dataframes', 'tenant_id', 'service',
    'all_tenants', 'resource_type', 'name', 'module_id', 'resources',
    'volume', 'desc', 'service_id', 'field_id', 'group_id', 'mapping_id',
    'threshold_id', 'value', 'type', 'cost', 'level', 'no_group',
    'filter_tenant', 'deleted', 'start', 'is_active', 'description',
    'created_by', 'updated_by', 'deleted_by', 'force', 'recursive', 'data',
    'no_data', 'script_id', 'usage', 'period', 'rating', 'vol', 'price',
    'qty', 'unit', 'metadata', 'period_begin', 'period_end', 'infos',
]

# Values that look like what the routes parse, and values that broke them.
HOSTILE = [
    '', 'x', 'ALL', 'type', 'time', 'time-d', 'time-x', 'project_id',
    'id', 'project_id:p1', 'id:i-1', ':', 'a:b:c', ',', '%', '\x00',
    'a\x00b', '\ud800', 'x\udfff', '\u00e9\u4e2d\U0001f600', 'k' * 41,
    'c' * 256, 'n' * 5000, '-1', '0', '1', '3600', '2' * 19,
    str(2 ** 63), str(2 ** 64), str(10 ** 30), '1e400', '1e999999999',
    '-1e999999999', '1e-999999999', 'NaN', 'Infinity', '0.1', 'true',
    'false', 'yes', 'asc', 'DESC', 'table', 'object', 'flat', 'rate',
    'cpu', 'image.size', 'hashmap', 'noop', 'pyscripts',
    '2024-01-01', '2024-01-01T00:00:00Z', '2024-01-01T00:00:00+02:00',
    '20190723T122810Z', '2024-13-45', '0001-01-01T00:00:00Z',
    '9999-12-31T23:59:59-14:00', '9999-12-31T23:59:59Z',
    '2024-01-01T00:00:00+25:00', '1899-12-31T23:00:00Z',
    'SUM(qty) AS qty', "'; --", '../..', '{}', '[]', 'null',
]
_TEXT = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=12))
_NUMBER = st.one_of(
    st.integers(), st.sampled_from([2 ** 63, 2 ** 64, -2 ** 63 - 1,
                                    10 ** 30, 0, 1, -1]),
    st.floats(allow_nan=False, allow_infinity=False))
_JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), _NUMBER, _TEXT),
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.one_of(st.sampled_from(NAMES), _TEXT), children,
                        max_size=4)),
    max_leaves=10)
_BODY = st.dictionaries(st.one_of(st.sampled_from(NAMES), _TEXT), _JSON,
                        max_size=6)
# Bodies that are not a JSON object of text, some of which broke routes.
RAW_BODIES = [
    b'', b'null', b'[]', b'"text"', b'12', b'{', b'\xff\xfe{}',
    b'[' * 100_000, b'{"a":' * 5_000 + b'1' + b'}' * 5_000,
    b'{"name": "\\ud800"}', b'{"scope_id": "\\udfff", "active": true}',
    b'{"level": 1e999999999, "cost": 1e999999999, "volume": 1e999999999}',
    b'{"priority": 1000000000000000000000000000000, "enabled": true}',
    b'{"name": "a\\u0000b", "scope_id": "\\u0000"}',
]
# Path segments sent as they are: not UTF-8, NUL, a slash, up.
RAW_SEGMENTS = ['%ff', '%80', '%00', '%ED%A0%80', '..', '%2F', '%2F%2F']


def _quote(text):
    return urllib.parse.quote(text.encode('utf-8', 'surrogatepass'),
                              safe='')


@st.composite
def requests(draw, ids):
    method, path = draw(st.sampled_from(ROUTES))
    while '{id}' in path:
        segment = draw(st.one_of(
            st.one_of(st.sampled_from(ids), _TEXT).map(_quote),
            st.sampled_from(RAW_SEGMENTS)))
        path = path.replace('{id}', segment or 'x', 1)
    query = draw(st.lists(st.tuples(st.sampled_from(NAMES), st.one_of(
        _TEXT, st.sampled_from(ids))), max_size=5))
    query_string = '&'.join(f'{_quote(name)}={_quote(value)}'
                            for name, value in query)
    if draw(st.integers(0, 9)) == 0:
        query_string += draw(st.sampled_from(['&begin=%ff', '&service=%00',
                                              '&groupby=' + ','.join(
                                                  f'k{i}' for i in
                                                  range(3000))]))
    body = None
    if method in ('POST', 'PUT', 'PATCH', 'DELETE'):
        choice = draw(st.integers(0, 9))
        if choice == 0:
            body = draw(st.sampled_from(RAW_BODIES))
        elif choice > 2:
            body = json.dumps(draw(_BODY)).encode()
    elif draw(st.integers(0, 19)) == 0:
        body = draw(st.sampled_from(RAW_BODIES))
    return method, f'{path}?{query_string}' if query_string else path, body


def _seed(app, backends):
    """Rows for the fuzz to find: ids of each kind."""
    backends.storage.push([api_conftest.frame(api_conftest.at(1, 0), {
        'cpu': [api_conftest.point('p1', 1, '1.5', flavor='m1')]})])
    ids = ['hashmap', 'pyscripts', 'noop', 'cpu', 'image.size', 'p1']
    service = app.post_json(HASHMAP + '/services', {'name': 'cpu'}).json
    ids.append(service['service_id'])
    field = app.post_json(HASHMAP + '/fields', {
        'name': 'flavor', 'service_id': service['service_id']}).json
    ids.append(field['field_id'])
    group = app.post_json(HASHMAP + '/groups', {'name': 'g'}).json
    ids.append(group['group_id'])
    ids.append(app.post_json(HASHMAP + '/mappings', {
        'field_id': field['field_id'], 'value': 'm1', 'cost': '1',
        'group_id': group['group_id']}).json['mapping_id'])
    ids.append(app.post_json(HASHMAP + '/thresholds', {
        'service_id': service['service_id'], 'level': '2',
        'cost': '1'}).json['threshold_id'])
    ids.append(app.post_json(PYSCRIPTS, {
        'name': 's', 'data': 'x = 1'}).json['script_id'])
    app.post_json('/v2/scope', {'scope_id': 'p1', 'last_processed_timestamp':
                                '2024-01-01T00:00:00Z'})
    return ids


@pytest.fixture(scope='module', params=server_errors.DATABASES)
def seeded(request, tmp_path_factory):
    directory = tmp_path_factory.mktemp(f'fuzz-{request.param}')
    with server_errors.database_app(request.param, directory) as (
            app, backends):
        yield app, _seed(app, backends)


def test_no_route_answers_5xx_or_internals(seeded):
    app, ids = seeded
    statuses = []

    @hypothesis.settings(max_examples=EXAMPLES, deadline=None,
                         suppress_health_check=list(hypothesis.HealthCheck))
    @hypothesis.given(requests(ids))
    def run(sent):
        statuses.append(None)
        method, path, body = sent
        response = app.request(path, method=method, body=body,
                               content_type='application/json',
                               expect_errors=True)
        statuses[-1] = response.status_int
        server_errors.check_answer(response)
    run()
    assert len(statuses) >= EXAMPLES
    print(f'{len(statuses)} requests: ' + ', '.join(
        f'{status}: {statuses.count(status)}'
        for status in sorted(set(statuses))))
