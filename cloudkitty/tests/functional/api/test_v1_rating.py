"""``/v1/rating``: modules, reload, module_config dispatch."""

import decimal

import pecan
import pytest
import webtest

from cloudkitty.api import app as api_app
from cloudkitty.api import hooks
from cloudkitty import dataframe
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
    """Prices 0.5 per unit, 1.5 per unit of flavor m1; rules reloaded."""

    description = 'A module with rules.'
    hot_config = True
    config_controller = RulesController

    def reload_config(self, start=None):
        self.loaded_at = start

    def process(self, data):
        priced = dataframe.DataFrame(data.start, data.end)
        for type_, point in data.iterpoints():
            rate = decimal.Decimal('1.5' if point.desc.get('flavor') == 'm1'
                                   else '0.5')
            priced.add_point(point.set_price(point.price + point.qty * rate),
                             type_)
        return priced


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


def _quote(app, resources, status=200):
    return app.post_json('/v1/rating/quote', {'resources': resources},
                         status=status)


def test_quote_with_only_noop_is_zero(modules_app):
    response = _quote(modules_app, [{'service': 'cpu', 'volume': 2}])
    assert response.text == '0'


def test_quote_is_a_json_number_from_the_enabled_modules(modules_app):
    modules_app.put_json('/v1/rating/modules/rules', {'enabled': True},
                         status=302)
    response = _quote(modules_app, [
        {'service': 'cpu', 'volume': '2',
         'desc': {'groupby': {'id': 'i-1'}, 'metadata': {'flavor': 'm1'}}},
        {'service': 'cpu', 'volume': 0.1},
    ])
    assert response.content_type == 'application/json'
    assert response.text == '3.05'


def test_quote_horizon_desc_is_metadata(modules_app):
    modules_app.put_json('/v1/rating/modules/rules', {'enabled': True},
                         status=302)
    response = _quote(modules_app, [
        {'service': 'cpu', 'volume': 1, 'desc': {'flavor': 'm1'}}])
    assert response.text == '1.5'


def test_quote_by_a_project_reader(conf, scope_reset):
    conf.set_override('auth_strategy', 'keystone')
    backends = hooks.Backends(conf, scope_reset=scope_reset,
                              module_loader=_loader)
    app = webtest.TestApp(api_app.setup_app(conf, backends))
    response = app.post_json('/v1/rating/quote', {'resources': [
        {'service': 'cpu', 'volume': 1}]}, headers={'X-Roles': 'reader',
                                                    'X-Project-Id': 'p1'})
    assert response.text == '0'


@pytest.mark.parametrize('body, words', [
    ({}, "key 'resources' is required"),
    ({'resources': []}, 'at least one resource'),
    ({'resources': [{'volume': 1}]}, "'resources[0].service' is required"),
    ({'resources': [{'service': 'cpu', 'volume': 'lots'}]},
     "'resources[0].volume'"),
    ({'resources': [{'service': 'cpu', 'volume': True}]},
     "'resources[0].volume'"),
    ({'resources': [{'service': 'cpu', 'volume': 1, 'desc': [1]}]},
     "'resources[0].desc'"),
    ({'resources': [{'service': 'cpu', 'volume': 1,
                     'desc': {'groupby': 'x'}}]}, 'resources[0].desc'),
    ({'resources': [{'service': 'cpu', 'volume': 1, 'cost': 3}]},
     "'resources[0].cost'"),
])
def test_quote_bad_bodies(modules_app, body, words):
    response = modules_app.post_json('/v1/rating/quote', body, status=400)
    assert response.json['faultcode'] == 'Client'
    assert words in response.json['faultstring']


def test_quote_malformed_json(modules_app):
    response = modules_app.post('/v1/rating/quote', '{"resources": [',
                                content_type='application/json', status=400)
    assert 'not valid JSON' in response.json['faultstring']


def test_quote_is_post_only(modules_app):
    modules_app.get('/v1/rating/quote', status=405)
