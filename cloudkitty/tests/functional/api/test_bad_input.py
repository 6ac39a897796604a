"""No input makes a route answer 5xx: every route gets malformed bodies and
garbage parameters, and must answer with a 4xx (or a success)."""

import pytest

ROUTES = [
    ('GET', '/v1/info/config'), ('GET', '/v1/info/metrics'),
    ('GET', '/v1/info/metrics/cpu'), ('GET', '/v1/info/services'),
    ('GET', '/v1/rating/modules'), ('GET', '/v1/rating/modules/noop'),
    ('PUT', '/v1/rating/modules/noop'), ('GET', '/v1/rating/reload_modules'),
    ('POST', '/v1/rating/quote'),
    ('GET', '/v1/rating/module_config/noop/x'),
    ('GET', '/v1/collector/mappings'), ('GET', '/v1/collector/mappings/cpu'),
    ('POST', '/v1/collector/mappings/gnocchi/cpu'),
    ('POST', '/v1/collector/mappings'),
    ('DELETE', '/v1/collector/mappings/cpu'),
    ('GET', '/v1/collector/states/file'), ('PUT', '/v1/collector/states/x'),
    ('GET', '/v1/report/tenants'), ('GET', '/v1/report/total'),
    ('GET', '/v1/report/summary'), ('GET', '/v1/storage/dataframes'),
    ('GET', '/v2/summary'), ('GET', '/v2/dataframes'),
    ('POST', '/v2/dataframes'), ('GET', '/v2/scope'), ('PUT', '/v2/scope'),
    ('PATCH', '/v2/scope'), ('POST', '/v2/scope'),
    ('GET', '/v2/task/reprocesses'), ('GET', '/v2/task/reprocesses/s1'),
    ('POST', '/v2/task/reprocesses'), ('GET', '/v2/rating/modules'),
    ('GET', '/v2/rating/modules/noop'), ('PUT', '/v2/rating/modules/noop'),
]

BODIES = [b'{', b'[]', b'"text"', b'12', b'{"dataframes": {"a": 1}}',
          b'{"scope_id": {"a": 1}, "resources": 5, "enabled": [],'
          b' "priority": {}, "last_processed_timestamp": 12}',
          b'{"name": 1, "service": [], "collector": {}}', b'\xff\xfe']

QUERIES = [
    'begin=x&end=y', 'limit=-1&offset=x', 'groupby=time-q&filters=a',
    'tenant_id=&all_tenants=maybe', 'scope_ids=&order=sideways',
    'active=2', 'begin=2024-01-01&end=2023-01-01', 'filters=::,:',
    'groupby=%00', 'response_format=', 'custom_fields=(((',
    'resource_type=cpu&service=cpu&groupby=res_type,x',
]


@pytest.mark.usefixtures('rated')
@pytest.mark.parametrize('method, path', ROUTES)
def test_garbage_never_breaks_a_route(app, method, path):
    for query in QUERIES:
        response = app.request(f'{path}?{query}', method=method,
                               expect_errors=True)
        assert response.status_int < 500, (query, response.text)
    if method in ('PUT', 'POST', 'PATCH', 'DELETE'):
        for body in BODIES:
            response = app.request(path, method=method, body=body,
                                   content_type='application/json',
                                   expect_errors=True)
            assert 400 <= response.status_int < 500, (body, response.text)
            assert response.json
