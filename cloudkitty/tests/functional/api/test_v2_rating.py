"""``/v2/rating/modules``."""

import pytest


def test_list_modules_underscored(app):
    modules = app.get('/v2/rating/modules').json['modules']
    assert {'module_id': 'noop', 'description': 'Dummy test module.',
            'enabled': True, 'hot_config': False, 'priority': 1} in modules


def test_get_one(app):
    assert app.get('/v2/rating/modules/noop').json['hot_config'] is False
    response = app.get('/v2/rating/modules/nope', status=404)
    assert response.json == {'message': "Rating module 'nope' does not exist."}


def test_put_changes_priority(app):
    response = app.put_json('/v2/rating/modules/noop', {'priority': 4},
                            status=204)
    assert response.body == b''
    assert app.get('/v2/rating/modules/noop').json['priority'] == 4


@pytest.mark.parametrize('body, message', [
    ({'priority': 0}, "invalid parameter 'priority': must be at least 1"),
    ({'priority': 'high'},
     "invalid parameter 'priority': 'high' is not an integer"),
    ({'enabled': 'perhaps'}, "invalid parameter 'enabled'"),
    ({'colour': 1}, "unknown parameter 'colour'"),
])
def test_put_bad_body(app, body, message):
    response = app.put_json('/v2/rating/modules/noop', body, status=400)
    assert response.json['message'].startswith(message)


@pytest.mark.parametrize('raw', ['{"priority": ', '[1, 2]', '"x"'])
def test_put_not_a_json_object(app, raw):
    response = app.put('/v2/rating/modules/noop', raw,
                       content_type='application/json', status=400)
    assert response.json['message'].startswith('The body ')


def test_put_unknown_module(app):
    app.put_json('/v2/rating/modules/nope', {'priority': 2}, status=404)
