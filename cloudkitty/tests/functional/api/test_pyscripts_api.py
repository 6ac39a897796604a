"""``/v1/rating/module_config/pyscripts/scripts`` through WebTest."""

import datetime
import hashlib

import pytest

from cloudkitty.tests.functional.api import conftest

URL = '/v1/rating/module_config/pyscripts/scripts'
SOURCE = "for points in data['usage'].values():\n    pass\n"
UTC = datetime.timezone.utc


def later(days):
    """A naive UTC ISO 8601 date ``days`` from now, to the second."""
    moment = datetime.datetime.now(UTC) + datetime.timedelta(days=days)
    return moment.replace(tzinfo=None, microsecond=0).isoformat()


def create(app, status=201, params='', **body):
    body.setdefault('name', 'price')
    body.setdefault('data', SOURCE)
    return app.post_json(URL + params, body, status=status)


def test_create_get_list(app):
    start = later(1)
    response = create(app, description='cents', start=start)
    script = response.json
    assert response.location.endswith(f"{URL}/{script['script_id']}")
    assert script['name'] == 'price'
    assert script['data'] == SOURCE
    assert script['checksum'] == hashlib.sha512(SOURCE.encode()).hexdigest()
    assert script['description'] == 'cents'
    assert script['start'] == start
    assert script['end'] is None
    assert script['created_at'] is not None
    assert script['deleted'] is None
    assert app.get(f"{URL}/{script['script_id']}").json == script
    assert app.get(URL).json == {'scripts': [script]}
    no_data = app.get(URL, params={'no_data': 'true'}).json['scripts'][0]
    assert 'data' not in no_data or no_data['data'] is None
    assert no_data['checksum'] == script['checksum']


def test_callers_are_recorded(keystone_app):
    script = keystone_app.post_json(URL, {'name': 'p', 'data': SOURCE},
                                    headers=conftest.ADMIN).json
    assert script['created_by'] == 'admin'
    url = f"{URL}/{script['script_id']}"
    ended = keystone_app.put_json(url, {'end': later(1)},
                                  headers=conftest.ADMIN).json
    assert ended['updated_by'] == 'admin'
    keystone_app.delete(url, headers=conftest.ADMIN, status=204)
    assert keystone_app.get(url, headers=conftest.ADMIN).json[
        'deleted_by'] == 'admin'


def test_readers_are_refused(keystone_app):
    keystone_app.get(URL, headers=conftest.reader('p1'), status=403)
    keystone_app.post_json(URL, {'name': 'p', 'data': SOURCE},
                           headers=conftest.reader('p1'), status=403)


def test_start_in_the_past_needs_force(app):
    response = create(app, status=400, start='2020-01-01T00:00:00')
    assert 'force=true' in response.json['faultstring']
    forced = create(app, params='?force=true', start='2020-01-01T00:00:00')
    assert forced.json['start'] == '2020-01-01T00:00:00'


def test_duplicate_live_name_is_a_conflict(app):
    create(app)
    response = create(app, status=409)
    assert 'named price' in response.json['faultstring']


@pytest.mark.parametrize('body, words', [
    ({'name': 'x'}, "'data' is required"),
    ({'data': SOURCE}, "'name' is required"),
    ({'name': 'x', 'data': 'for'}, 'not valid Python'),
    ({'name': 'x', 'data': ''}, 'non-empty'),
    ({'name': '', 'data': SOURCE}, 'name'),
    ({'name': 'x', 'data': SOURCE, 'start': later(2), 'end': later(1)},
     'not after'),
    ({'name': 'x', 'data': SOURCE, 'deleted_by': 'me'}, 'cannot be set'),
    ({'name': 'x', 'data': SOURCE, 'script_id': 'mine'}, 'cannot be set'),
])
def test_create_refuses_bad_input(app, body, words):
    response = app.post_json(URL, body, status=400)
    assert words in response.json['faultstring']


@pytest.mark.parametrize('body', [
    {'name': 'x', 'data': SOURCE, 'start': 'not a date'},
    {'name': 'x', 'data': 42},
    {'name': 'x', 'data': SOURCE, 'colour': 'red'},
])
def test_create_refuses_malformed_bodies(app, body):
    response = app.post_json(URL, body, status=400)
    assert response.json['faultcode'] == 'Client'


def test_malformed_json_and_non_objects(app):
    app.post(URL, 'not json', content_type='application/json', status=400)
    app.post_json(URL, ['a list'], status=400)
    app.get(URL, params={'no_data': 'maybe'}, status=400)
    app.post_json(URL + '?force=perhaps', {'name': 'x', 'data': SOURCE},
                  status=400)


def test_get_unknown_is_404(app):
    response = app.get(f'{URL}/nope', status=404)
    assert response.json['faultstring'] == 'No such script: nope'


@pytest.mark.parametrize('how', ['path', 'query', 'body'])
def test_update_future_script(app, how):
    script = create(app, start=later(1)).json
    body = {'data': 'pass\n', 'description': 'new'}
    url = URL
    if how == 'path':
        url = f"{URL}/{script['script_id']}"
    elif how == 'query':
        url = f"{URL}?script_id={script['script_id']}"
    else:
        body['script_id'] = script['script_id']
    response = app.put_json(url, body, status=201)
    updated = response.json
    assert (updated['data'], updated['description']) == ('pass\n', 'new')
    assert updated['checksum'] == hashlib.sha512(b'pass\n').hexdigest()
    assert app.get(f"{URL}/{script['script_id']}").json == updated


def test_update_sending_back_the_whole_object(app):
    script = create(app, start=later(1)).json
    script['description'] = 'changed'
    updated = app.put_json(f"{URL}/{script['script_id']}", script).json
    assert updated['description'] == 'changed'


def test_update_rules(app):
    started = create(app).json
    url = f"{URL}/{started['script_id']}"
    response = app.put_json(url, {'data': 'pass\n'}, status=400)
    assert 'only its end' in response.json['faultstring']
    response = app.put_json(url, {'end': '2020-01-01T00:00:00'}, status=400)
    assert 'future' in response.json['faultstring']
    end = later(3)
    ended = app.put_json(url, {'end': end}).json
    assert ended['end'] == end
    response = app.put_json(url, {'end': later(4)}, status=400)
    assert 'has an end' in response.json['faultstring']
    future = create(app, name='future', start=later(1)).json
    response = app.put_json(f"{URL}/{future['script_id']}",
                            {'name': 'renamed'}, status=400)
    assert 'Only data, start, end and description' in \
        response.json['faultstring']
    response = app.put_json(f"{URL}/{future['script_id']}",
                            {'start': '2020-01-01T00:00:00'}, status=400)
    assert 'force=true' in response.json['faultstring']
    forced = app.put_json(f"{URL}/{future['script_id']}?force=true",
                          {'start': '2020-01-01T00:00:00'}).json
    assert forced['start'] == '2020-01-01T00:00:00'


def test_update_errors(app):
    app.put_json(f'{URL}/nope', {'description': 'x'}, status=404)
    response = app.put_json(URL, {'description': 'x'}, status=400)
    assert "'script_id' is required" in response.json['faultstring']
    script = create(app, start=later(1)).json
    response = app.put_json(f"{URL}/{script['script_id']}",
                            {'script_id': 'other'}, status=400)
    assert 'several times' in response.json['faultstring']
    app.put_json(f"{URL}/{script['script_id']}", {'data': 'for'}, status=400)


@pytest.mark.parametrize('how', ['path', 'query', 'body'])
def test_delete_is_soft(app, how):
    script = create(app).json
    if how == 'path':
        app.delete(f"{URL}/{script['script_id']}", status=204)
    elif how == 'query':
        app.delete(f"{URL}?script_id={script['script_id']}", status=204)
    else:
        app.delete_json(URL, {'script_id': script['script_id']}, status=204)
    assert app.get(URL).json == {'scripts': []}
    deleted = app.get(f"{URL}/{script['script_id']}").json
    assert deleted['deleted'] is not None
    assert app.get(URL, params={'deleted': 'true'}).json['scripts'] == [
        deleted]
    app.delete(f"{URL}/{script['script_id']}", status=404)
    app.put_json(f"{URL}/{script['script_id']}", {'description': 'x'},
                 status=400)
    # The name is free again.
    create(app)


def test_list_filters(app):
    create(app, name='a', description='Compute')
    create(app, name='b', start=later(2), end=later(4))
    names = lambda **params: [s['name'] for s in  # noqa: E731
                              app.get(URL, params=params).json['scripts']]
    assert names() == ['a', 'b']
    assert names(is_active='true') == ['a']
    assert names(is_active=later(3)) == ['a', 'b']
    assert names(is_active='false') == ['a', 'b']
    assert names(description='comp') == ['a']
    assert names(start=later(1)) == ['b']
    assert names(end=later(5)) == ['b']
    app.get(URL, params={'start': 'whenever'}, status=400)


def test_module_is_listed(app):
    modules = app.get('/v1/rating/modules').json['modules']
    assert 'pyscripts' in [m['module_id'] for m in modules]
