"""``/v1/rating``: modules, reload, module_config dispatch."""

import pecan
import pytest
import webtest

from cloudkitty.api import app as api_app
from cloudkitty.api import hooks
from cloudkitty import rating
from cloudkitty.rating import noop


class RulesController:
    """A module's own API, as hashmap's or pyscripts' would be."""

    @pecan.expose('json')
    def index(self):
        return {'rules': [], 'project': pecan.request.context.project_id}

    @pecan.expose('json')
    def types(self):
        return ['flat', 'rate']


class Configurable(rating.RatingProcessorBase):
    description = 'A module with rules.'
    hot_config = True
    config_controller = RulesController

    def process(self, data):
        return data


def _loader(conf, module_state):
    modules = {'noop': noop.Noop(conf, module_state),
               'rules': Configurable(conf, module_state)}
    for name, module in modules.items():
        module.module_name = name
    return modules


@pytest.fixture
def modules_app(conf, scope_reset):
    backends = hooks.Backends(conf, scope_reset=scope_reset,
                              module_loader=_loader)
    return webtest.TestApp(api_app.setup_app(conf, backends))


def test_list_modules_hyphenated(modules_app):
    assert modules_app.get('/v1/rating/modules').json == {'modules': [
        {'module_id': 'noop', 'description': 'Dummy test module.',
         'enabled': True, 'hot-config': False, 'priority': 1},
        {'module_id': 'rules', 'description': 'A module with rules.',
         'enabled': False, 'hot-config': True, 'priority': 1},
    ]}


def test_get_one_and_unknown(modules_app):
    assert modules_app.get('/v1/rating/modules/rules').json['module_id'] \
        == 'rules'
    response = modules_app.get('/v1/rating/modules/nope', status=404)
    assert response.json['faultstring'] == \
        "Rating module 'nope' does not exist."


def test_put_redirects_to_the_module(modules_app):
    response = modules_app.put_json('/v1/rating/modules/rules',
                                    {'enabled': True, 'priority': 5},
                                    status=302)
    assert response.headers['Location'] == \
        'http://localhost/v1/rating/modules/rules'
    assert response.body == b''
    module = modules_app.get('/v1/rating/modules/rules').json
    assert (module['enabled'], module['priority']) == (True, 5)


def test_put_keeps_what_is_not_given(modules_app):
    modules_app.put_json('/v1/rating/modules/rules', {'priority': 3},
                         status=302)
    modules_app.put_json('/v1/rating/modules/rules', {'enabled': True},
                         status=302)
    module = modules_app.get('/v1/rating/modules/rules').json
    assert (module['enabled'], module['priority']) == (True, 3)


@pytest.mark.parametrize('body, words', [
    ({'priority': 0}, 'priority'),
    ({'enabled': 'maybe'}, 'enabled'),
    ({'colour': 'red'}, 'colour'),
])
def test_put_bad_body(modules_app, body, words):
    response = modules_app.put_json('/v1/rating/modules/rules', body,
                                    status=400)
    assert words in response.json['faultstring']


def test_put_malformed_json(modules_app):
    response = modules_app.put('/v1/rating/modules/rules', '{"enabled": ',
                               content_type='application/json', status=400)
    assert response.json['faultcode'] == 'Client'


def test_put_unknown_module(modules_app):
    modules_app.put_json('/v1/rating/modules/nope', {'enabled': True},
                         status=404)


def test_reload_modules(modules_app):
    response = modules_app.get('/v1/rating/reload_modules', status=204)
    assert response.body == b''


def test_module_config_dispatches_to_the_module(modules_app):
    assert modules_app.get('/v1/rating/module_config/rules/types').json == \
        ['flat', 'rate']
    body = modules_app.get('/v1/rating/module_config/rules/',
                           headers={'X-Project-Id': 'p9'}).json
    assert body == {'rules': [], 'project': 'p9'}


def test_module_config_without_api_is_409(modules_app):
    response = modules_app.get('/v1/rating/module_config/noop/anything',
                               status=409)
    assert response.json['faultstring'] == \
        "Rating module 'noop' has no configuration API."


def test_module_config_unknown_module_is_404(modules_app):
    modules_app.get('/v1/rating/module_config/nope/x', status=404)
