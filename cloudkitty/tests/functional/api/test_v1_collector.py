"""``/v1/collector``: service mappings and collector states."""

import pytest

from cloudkitty.tests.functional.api import conftest


@pytest.fixture
def mapped(app):
    app.post_json('/v1/collector/mappings/gnocchi/cpu', None)
    app.post_json('/v1/collector/mappings/prometheus/image.size', None)


@pytest.mark.usefixtures('mapped')
def test_list_and_filter(app):
    assert app.get('/v1/collector/mappings').json == {'mappings': [
        {'service': 'cpu', 'collector': 'gnocchi'},
        {'service': 'image.size', 'collector': 'prometheus'}]}
    assert app.get('/v1/collector/mappings',
                   params={'collector': 'gnocchi'}).json == {
        'mappings': [{'service': 'cpu', 'collector': 'gnocchi'}]}


@pytest.mark.usefixtures('mapped')
def test_get_one(app):
    assert app.get('/v1/collector/mappings/image.size').json == {
        'service': 'image.size', 'collector': 'prometheus'}
    response = app.get('/v1/collector/mappings/ram', status=404)
    assert response.json['faultstring'] == \
        "Service 'ram' is not mapped to a collector."


@pytest.mark.parametrize('path, kwargs', [
    ('/v1/collector/mappings/gnocchi/ram', {}),
    ('/v1/collector/mappings?collector=gnocchi&service=ram', {}),
    ('/v1/collector/mappings/', {'body': {'collector': 'gnocchi',
                                          'service': 'ram'}}),
    ('/v1/collector/mappings/gnocchi', {'body': {'service': 'ram'}}),
])
def test_create_with_ids_in_path_query_or_body(app, path, kwargs):
    if 'body' in kwargs:
        response = app.post_json(path, kwargs['body'])
    else:
        response = app.post(path)
    assert response.json == {'service': 'ram', 'collector': 'gnocchi'}
    assert app.get('/v1/collector/mappings/ram').json['collector'] == \
        'gnocchi'


@pytest.mark.usefixtures('mapped')
def test_create_replaces(app):
    app.post_json('/v1/collector/mappings/', {'collector': 'file',
                                              'service': 'cpu'})
    assert app.get('/v1/collector/mappings/cpu').json['collector'] == 'file'


@pytest.mark.parametrize('path, body, words', [
    ('/v1/collector/mappings/', {'service': 'ram'}, "'collector' is required"),
    ('/v1/collector/mappings/gnocchi', {}, "'service' is required"),
    ('/v1/collector/mappings/gnocchi/ram', {'service': 'cpu'},
     'different values'),
    ('/v1/collector/mappings/', {'service': 'ram', 'collector': 3},
     'collector'),
    ('/v1/collector/mappings/', {'service': 'ram', 'colour': 'red'},
     'colour'),
])
def test_create_bad_requests(app, path, body, words):
    response = app.post_json(path, body, status=400)
    assert words in response.json['faultstring']


@pytest.mark.usefixtures('mapped')
@pytest.mark.parametrize('path, kwargs', [
    ('/v1/collector/mappings/cpu', {}),
    ('/v1/collector/mappings?service=cpu', {}),
    ('/v1/collector/mappings', {'body': {'service': 'cpu'}}),
])
def test_delete_with_id_in_path_query_or_body(app, path, kwargs):
    if 'body' in kwargs:
        app.delete_json(path, kwargs['body'], status=204)
    else:
        app.delete(path, status=204)
    app.get('/v1/collector/mappings/cpu', status=404)


def test_delete_unknown(app):
    app.delete('/v1/collector/mappings/ram', status=404)
    app.delete('/v1/collector/mappings', status=400)


def test_states_never_set_read_disabled(app):
    """As upstream: the API reports a collector whose state was never set
    as disabled (the meta collector still collects from it)."""
    assert app.get('/v1/collector/states/gnocchi').json == {
        'name': 'gnocchi', 'enabled': False}
    assert app.get('/v1/collector/states', params={'name': 'gnocchi'}).json \
        == {'name': 'gnocchi', 'enabled': False}


def test_states_put(app):
    assert app.put_json('/v1/collector/states/gnocchi',
                        {'name': 'gnocchi', 'enabled': False}).json == {
        'name': 'gnocchi', 'enabled': False}
    assert app.get('/v1/collector/states/gnocchi').json['enabled'] is False
    assert app.get('/v1/collector/states/prometheus').json['enabled'] \
        is False
    app.put_json('/v1/collector/states', {'name': 'gnocchi',
                                          'enabled': True})
    assert app.get('/v1/collector/states?name=gnocchi').json['enabled'] \
        is True


@pytest.mark.parametrize('path, body, words', [
    ('/v1/collector/states/gnocchi', {'name': 'gnocchi'},
     "'enabled' is required"),
    ('/v1/collector/states/gnocchi', {'name': 'other', 'enabled': True},
     'different values'),
    ('/v1/collector/states', {'enabled': True}, "'name' is required"),
    ('/v1/collector/states/gnocchi', {'enabled': 'yes please'}, 'enabled'),
])
def test_states_bad_requests(app, path, body, words):
    response = app.put_json(path, body, status=400)
    assert words in response.json['faultstring']


def test_states_get_needs_a_name(app):
    app.get('/v1/collector/states', status=400)


def test_admin_only(keystone_app):
    headers = conftest.reader('p1')
    keystone_app.get('/v1/collector/mappings', headers=headers, status=403)
    keystone_app.get('/v1/collector/states/x', headers=headers, status=403)
    keystone_app.put_json('/v1/collector/states/x', {'enabled': True},
                          headers=headers, status=403)
