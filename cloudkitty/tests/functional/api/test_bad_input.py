"""No input makes a route answer 5xx: every route gets malformed bodies and
garbage parameters, and must answer with a 4xx (or a success).

The pyscripts routes get, besides, the inputs a client gets wrong (types,
sizes, ids): each answered with its 4xx and a message that names what is
wrong, and nothing stored.
"""

import json

import pytest

SCRIPTS = '/v1/rating/module_config/pyscripts/scripts'

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
    ('GET', SCRIPTS), ('POST', SCRIPTS), ('PUT', SCRIPTS),
    ('DELETE', SCRIPTS), ('GET', f'{SCRIPTS}/nope'),
    ('PUT', f'{SCRIPTS}/nope'), ('DELETE', f'{SCRIPTS}/nope'),
    ('POST', f'{SCRIPTS}/nope'),
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


# -- pyscripts ----------------------------------------------------------------

SOURCE = 'pass\n'
LIVE = '{live}'  # stands for the id of the fixture's script


@pytest.fixture
def live_script(app):
    """A script starting in the future (so that a PUT may change it all)."""
    return app.post_json(SCRIPTS, {
        'name': 'live', 'data': SOURCE, 'description': 'kept',
        'start': '2999-01-01T00:00:00'}, status=201).json


def _wrong_type(attribute, given):
    return (f'Invalid input for field/attribute {attribute}. Value: '
            f"'{given}'. Wrong type.")


PYSCRIPTS_CASES = [
    # Wrong types.
    ('POST', SCRIPTS, {'name': 1, 'data': SOURCE}, 400,
     _wrong_type('name', 1)),
    ('POST', SCRIPTS, {'name': True, 'data': SOURCE}, 400,
     _wrong_type('name', True)),
    ('POST', SCRIPTS, {'name': 'x', 'data': ['pass']}, 400,
     _wrong_type('data', ['pass'])),
    ('POST', SCRIPTS, {'name': 'x', 'data': 12}, 400, _wrong_type('data', 12)),
    ('POST', SCRIPTS, {'name': 'x', 'data': SOURCE, 'description': []}, 400,
     _wrong_type('description', [])),
    ('POST', SCRIPTS, {'name': 'x', 'data': SOURCE, 'start': 12}, 400,
     'field/attribute start. Value: \'12\'. expected an ISO 8601 date'),
    ('POST', SCRIPTS, {'name': 'x', 'data': SOURCE, 'end': 'tomorrow'}, 400,
     "'tomorrow' is not an ISO 8601 date"),
    ('POST', SCRIPTS, {'name': 'x', 'data': SOURCE,
                       'start': '2999-01-01T00:00:00+25:00'}, 400,
     "'2999-01-01T00:00:00+25:00' is not an ISO 8601 date"),
    ('POST', SCRIPTS, {'name': None, 'data': SOURCE}, 400,
     "'name' is required in the body."),
    ('POST', SCRIPTS, {'name': 'x', 'data': SOURCE, 'colour': 'red'}, 400,
     'colour'),
    ('PUT', f'{SCRIPTS}/{LIVE}', {'data': 5}, 400, _wrong_type('data', 5)),
    ('PUT', f'{SCRIPTS}/{LIVE}', {'end': 'x'}, 400,
     "'x' is not an ISO 8601 date"),
    ('PUT', f'{SCRIPTS}/{LIVE}', {'script_id': 5}, 400,
     _wrong_type('script_id', 5)),
    ('PUT', SCRIPTS, {'script_id': ['nope']}, 400,
     _wrong_type('script_id', ['nope'])),
    ('DELETE', SCRIPTS, {'script_id': 12}, 400, _wrong_type('script_id', 12)),
    # Sources that are not Python, or too deep for the compiler.
    ('POST', SCRIPTS, {'name': 'x', 'data': 'x = "\x00"'}, 400, ('nul',)),
    ('POST', SCRIPTS, {'name': 'x', 'data': '(' * 500 + ')' * 500}, 400,
     'data is not valid Python: too many nested parentheses'),
    ('POST', SCRIPTS, {'name': 'x', 'data': '-' * 100_000 + '1'}, 400,
     'data is not valid Python'),
    ('PUT', f'{SCRIPTS}/{LIVE}', {'data': 'for'}, 400,
     'data is not valid Python: invalid syntax (line 1)'),
    # Oversize.
    ('POST', SCRIPTS, {'name': 'x' * 256, 'data': SOURCE}, 400,
     'name is longer than 255 characters'),
    ('GET', f'{SCRIPTS}/{"x" * 5000}', None, 404,
     f'No such script: {"x" * 5000}'),
    ('PUT', f'{SCRIPTS}/{"x" * 5000}', {'description': 'd'}, 404,
     f'No such script: {"x" * 5000}'),
    ('DELETE', f'{SCRIPTS}/{"x" * 5000}', None, 404,
     f'No such script: {"x" * 5000}'),
    # Unknown, missing and contradictory ids.
    ('GET', f'{SCRIPTS}/nope', None, 404, 'No such script: nope'),
    ('GET', f'{SCRIPTS}/%C3%A9', None, 404, 'No such script: \u00e9'),
    ('PUT', f'{SCRIPTS}/nope', {'description': 'd'}, 404,
     'No such script: nope'),
    ('PUT', f'{SCRIPTS}?script_id=nope', {'description': 'd'}, 404,
     'No such script: nope'),
    ('PUT', SCRIPTS, {'script_id': 'nope', 'description': 'd'}, 404,
     'No such script: nope'),
    ('DELETE', f'{SCRIPTS}/nope', None, 404, 'No such script: nope'),
    ('DELETE', SCRIPTS, {'script_id': 'nope'}, 404, 'No such script: nope'),
    ('PUT', SCRIPTS, {'description': 'd'}, 400,
     "'script_id' is required (in the path, the query string or the body)."),
    ('DELETE', SCRIPTS, None, 400,
     "'script_id' is required (in the path, the query string or the body)."),
    ('PUT', f'{SCRIPTS}/{LIVE}', {'script_id': 'other'}, 400,
     "'script_id' is given several times with different values."),
    # Query parameters.
    ('GET', f'{SCRIPTS}?no_data=maybe', None, 400,
     "invalid query parameter 'no_data': expected a boolean, got 'maybe'"),
    ('GET', f'{SCRIPTS}?deleted=2', None, 400,
     "invalid query parameter 'deleted': expected a boolean, got '2'"),
    ('GET', f'{SCRIPTS}?is_active=whenever', None, 400,
     ('is_active', "'whenever'", 'date')),
    ('GET', f'{SCRIPTS}?start=x', None, 400, ('start', "'x'", 'date')),
    ('GET', f'{SCRIPTS}?end=2024-13-45', None, 400,
     ('end', "'2024-13-45'", 'date')),
    ('GET', f'{SCRIPTS}?limit=1', None, 400, 'Unknown argument: "limit"'),
    ('POST', f'{SCRIPTS}?force=perhaps', {'name': 'x', 'data': SOURCE}, 400,
     "invalid query parameter 'force': expected a boolean, got 'perhaps'"),
    # Methods a script does not have.
    ('PATCH', f'{SCRIPTS}/{LIVE}', {'description': 'd'}, 405,
     'Method PATCH is not allowed'),
]


@pytest.mark.parametrize('method, path, body, status, words', [
    pytest.param(*case, id=f'{case[0]}-{index}')
    for index, case in enumerate(PYSCRIPTS_CASES)])
def test_pyscripts_refuse_bad_input_and_say_why(app, live_script, method,
                                                path, body, status, words):
    path = path.replace(LIVE, live_script['script_id'])
    kwargs = {}
    if body is not None:
        kwargs = {'body': json.dumps(body).encode(),
                  'content_type': 'application/json'}
    response = app.request(path, method=method, expect_errors=True,
                           **kwargs)
    assert response.status_int == status, response.text[:500]
    assert response.json['faultcode'] == 'Client'
    message = response.json['faultstring']
    # The words that say what is wrong, or the fragments (a tuple) that
    # must all be there, in any case: the wording is ours to change.
    if isinstance(words, tuple):
        assert all(w.lower() in message.lower() for w in words), message
    else:
        assert words in message, message
    # Nothing was stored, changed or deleted.
    for deleted in ('false', 'true'):
        assert app.get(SCRIPTS, params={'deleted': deleted}).json == {
            'scripts': [live_script]}
