"""``/v2/scope``."""

import datetime

import pytest

from cloudkitty.tests.functional.api import conftest

UTC = datetime.timezone.utc
T0 = datetime.datetime(2024, 5, 1, 12, tzinfo=UTC)


@pytest.fixture
def scopes(backends):
    state = backends.scope_state
    state.set_last_processed_timestamp('s1', T0)
    state.set_last_processed_timestamp('s2', T0, collector='prometheus')
    state.create_scope('s3', None, active=False)
    return state


@pytest.mark.usefixtures('scopes')
def test_get_all(app):
    results = app.get('/v2/scope').json['results']
    assert [r['scope_id'] for r in results] == ['s1', 's2', 's3']
    assert results[0] == {
        'scope_id': 's1', 'scope_key': 'project_id', 'fetcher': 'source',
        'collector': 'file',
        'last_processed_timestamp': '2024-05-01T12:00:00+00:00',
        'state': '2024-05-01T12:00:00+00:00', 'active': True,
        'scope_activation_toggle_date': None}


@pytest.mark.usefixtures('scopes')
@pytest.mark.parametrize('params, expected', [
    ({'scope_id': 's1,s3'}, ['s1', 's3']),
    ([('scope_id', 's1'), ('scope_id', 's2')], ['s1', 's2']),
    ({'collector': 'prometheus'}, ['s2']),
    ({'active': 'false'}, ['s3']),
    ({'limit': 1, 'offset': 1}, ['s2']),
])
def test_get_filtered(app, params, expected):
    results = app.get('/v2/scope', params=params).json['results']
    assert [r['scope_id'] for r in results] == expected


def test_get_none_is_404(app):
    app.get('/v2/scope', status=404)


@pytest.mark.parametrize('params', [{'active': 'perhaps'}, {'limit': 0},
                                    {'state': 'x'}])
def test_get_bad_parameters(app, params):
    app.get('/v2/scope', params=params, status=400)


@pytest.mark.usefixtures('scopes')
def test_reset_hands_the_scopes_to_the_processors(app, scope_reset):
    response = app.put_json('/v2/scope', {
        'scope_id': ['s1', 's2'],
        'last_processed_timestamp': '2024-05-01T00:00:00Z'}, status=202)
    assert response.json == {}
    [(scopes, timestamp)] = scope_reset.calls
    assert timestamp == datetime.datetime(2024, 5, 1, tzinfo=UTC)
    assert scopes == [
        {'scope_id': 's1', 'scope_key': 'project_id', 'fetcher': 'source',
         'collector': 'file'},
        {'scope_id': 's2', 'scope_key': 'project_id', 'fetcher': 'source',
         'collector': 'prometheus'}]


@pytest.mark.usefixtures('scopes')
def test_reset_all_scopes_with_the_state_alias(app, scope_reset):
    app.put_json('/v2/scope', {'all_scopes': True,
                               'state': '2024-04-30T00:00:00'}, status=202)
    [(scopes, timestamp)] = scope_reset.calls
    assert len(scopes) == 3
    assert timestamp == datetime.datetime(2024, 4, 30, tzinfo=UTC)


@pytest.mark.usefixtures('scopes')
def test_reset_ids_in_the_query_string(app, scope_reset):
    app.put_json('/v2/scope?scope_id=s3',
                 {'last_processed_timestamp': '2024-04-30T00:00:00'},
                 status=202)
    assert scope_reset.calls[0][0][0]['scope_id'] == 's3'


@pytest.mark.usefixtures('scopes')
@pytest.mark.parametrize('body, status, words', [
    ({'last_processed_timestamp': '2024-01-01'}, 400, 'all_scopes=true'),
    ({'all_scopes': True, 'scope_id': 's1',
      'last_processed_timestamp': '2024-01-01'}, 400, 'not both'),
    ({'scope_id': 's1'}, 400, "'last_processed_timestamp' is required"),
    ({'scope_id': 's1', 'last_processed_timestamp': 'soon'}, 400,
     "'last_processed_timestamp'"),
    ({'scope_id': 's1', 'state': '2024-01-01',
      'last_processed_timestamp': '2024-01-02'}, 400, 'alias'),
    ({'scope_id': 7, 'state': '2024-01-01'}, 400, "'scope_id'"),
    ({'all_scopes': 'yes please', 'state': '2024-01-01'}, 400,
     "'all_scopes'"),
    ({'scope_id': 'nope', 'state': '2024-01-01'}, 404, 'No scope'),
    ({'scope_id': 's1', 'last_processed_timestamp': '2024-01-01T10:30:00'},
     400, 'last_processed_timestamp (2024-01-01T10:30:00+00:00) not aligned '
     'to the collect period of 3600 seconds; the aligned timestamp is '
     'last_processed_timestamp=2024-01-01T10:00:00+00:00.'),
])
def test_reset_bad_requests(app, scope_reset, body, status, words):
    response = app.put_json('/v2/scope', body, status=status)
    assert words in response.json['message']
    assert scope_reset.calls == []


def test_reset_id_in_query_and_body(app):
    response = app.put_json('/v2/scope?scope_id=s1', {
        'scope_id': 's1', 'state': '2024-01-01'}, status=400)
    assert 'both in the query string and in the body' in \
        response.json['message']


@pytest.mark.usefixtures('scopes')
def test_patch_deactivates_and_stamps(app):
    scope = app.patch_json('/v2/scope', {'scope_id': 's1',
                                         'active': False}).json
    assert scope['active'] is False
    toggled = datetime.datetime.fromisoformat(
        scope['scope_activation_toggle_date'])
    assert abs(datetime.datetime.now(UTC) - toggled) < \
        datetime.timedelta(minutes=1)
    again = app.patch_json('/v2/scope', {'scope_id': 's1',
                                         'active': False}).json
    assert again['scope_activation_toggle_date'] == \
        scope['scope_activation_toggle_date']


@pytest.mark.usefixtures('scopes')
def test_patch_changes_keys(app):
    scope = app.patch_json('/v2/scope', {'scope_id': 's1',
                                         'collector': 'gnocchi'}).json
    assert (scope['collector'], scope['active']) == ('gnocchi', True)
    assert app.get('/v2/scope', params={'collector': 'gnocchi'}).json[
        'results'][0]['scope_id'] == 's1'


@pytest.mark.usefixtures('scopes')
def test_patch_ambiguous_id(app, backends):
    backends.scope_state.create_scope('s1', None, collector='gnocchi')
    app.patch_json('/v2/scope', {'scope_id': 's2', 'collector': 'file'},
                   status=200)
    response = app.patch_json('/v2/scope', {'scope_id': 's1',
                                            'active': False}, status=400)
    assert 'ambiguous' in response.json['message']


@pytest.mark.usefixtures('scopes')
@pytest.mark.parametrize('body, status', [
    ({}, 400), ({'scope_id': ''}, 400), ({'scope_id': 'nope'}, 404),
    ({'scope_id': 's1', 'active': 'sometimes'}, 400),
    ({'scope_id': ['s1', 's2']}, 400),
])
def test_patch_bad_requests(app, body, status):
    app.patch_json('/v2/scope', body, status=status)


def test_post_creates(app):
    scope = app.post_json('/v2/scope', {
        'scope_id': 'new', 'last_processed_timestamp': '2024-05-01T00:00:00',
        'fetcher': 'keystone'}).json
    assert scope == {
        'scope_id': 'new', 'scope_key': 'project_id', 'fetcher': 'keystone',
        'collector': 'file',
        'last_processed_timestamp': '2024-05-01T00:00:00+00:00',
        'state': '2024-05-01T00:00:00+00:00', 'active': True,
        'scope_activation_toggle_date': None}


@pytest.mark.usefixtures('scopes')
def test_post_existing_active_is_404(app):
    response = app.post_json('/v2/scope', {
        'scope_id': 's1', 'last_processed_timestamp': '2024-05-01'},
        status=404)
    assert 'already exists' in response.json['message']


@pytest.mark.usefixtures('scopes')
def test_post_existing_inactive_is_409(app):
    app.post_json('/v2/scope', {'scope_id': 's3',
                                'last_processed_timestamp': '2024-05-01'},
                  status=409)
    # Other keys make another scope.
    app.post_json('/v2/scope', {'scope_id': 's3', 'collector': 'gnocchi',
                                'last_processed_timestamp': '2024-05-01'},
                  status=200)


@pytest.mark.parametrize('body', [
    {'last_processed_timestamp': '2024-05-01'},
    {'scope_id': 'x'},
    {'scope_id': 'x', 'last_processed_timestamp': 'May'},
    {'scope_id': 'x', 'last_processed_timestamp': '2024-05-01',
     'active': 3},
])
def test_post_bad_requests(app, body):
    app.post_json('/v2/scope', body, status=400)


def test_timestamps_are_aligned_to_the_period(app, conf, scope_reset):
    body = {'scope_id': 'x', 'last_processed_timestamp': '2024-05-01T00:20Z'}
    message = app.post_json('/v2/scope', body, status=400).json['message']
    assert 'the aligned timestamp is last_processed_timestamp=' \
        '2024-05-01T00:00:00+00:00.' in message
    app.get('/v2/scope', params={'scope_id': 'x'}, status=404)
    conf.set_override('period', 600, 'collect')
    app.post_json('/v2/scope', body, status=200)
    app.put_json('/v2/scope', body, status=202)
    assert len(scope_reset.calls) == 1


@pytest.mark.parametrize('method', ['get', 'put_json', 'patch_json',
                                    'post_json'])
def test_admin_only(keystone_app, method):
    call = getattr(keystone_app, method)
    kwargs = {} if method == 'get' else {'params': {}}
    call('/v2/scope', headers=conftest.reader('s1'), status=403, **kwargs)
