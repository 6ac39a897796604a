"""``/v1/rating/module_config/hashmap`` through WebTest: every route, its
status codes, Location headers and 4xx answers."""

import datetime
import decimal
import json

import pytest

from cloudkitty.tests.functional.api import conftest

URL = '/v1/rating/module_config/hashmap'
UTC = datetime.UTC


# One "now" for the module, so that a date computed twice reads the same.
_NOW = datetime.datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def later(days):
    """A naive UTC ISO 8601 date ``days`` from the module's now."""
    return (_NOW + datetime.timedelta(days=days)).isoformat()


def post(app, kind, status=201, params='', **body):
    return app.post_json(f'{URL}/{kind}{params}', body, status=status)


def post_raw(app, kind, text, status=201, params=''):
    """POST a JSON text as is (numbers written as the client wrote them)."""
    return app.post(f'{URL}/{kind}{params}', text,
                    content_type='application/json', status=status)


def delete(app, kind, id_name, object_id, how, **kwargs):
    """DELETE with the id in the path, the query or the body (as the CLI
    sends it, to the collection's URL)."""
    if how == 'path':
        return app.delete(f'{URL}/{kind}/{object_id}', **kwargs)
    if how == 'query':
        return app.delete(f'{URL}/{kind}?{id_name}={object_id}', **kwargs)
    return app.delete_json(f'{URL}/{kind}/', {id_name: object_id}, **kwargs)


def put(app, kind, id_name, object_id, body, how, **kwargs):
    """PUT with the id in the path, the query or the body."""
    body = dict(body)
    url = f'{URL}/{kind}/'
    if how == 'path':
        url += object_id
    elif how == 'query':
        url += f'?{id_name}={object_id}'
    else:
        body[id_name] = object_id
    return app.put_json(url, body, **kwargs)


@pytest.fixture
def ids(app):
    """Service ``instance`` with field ``flavor``, service ``volume``,
    group ``G``: their ids."""
    instance = post(app, 'services', name='instance').json['service_id']
    volume = post(app, 'services', name='volume').json['service_id']
    flavor = post(app, 'fields', name='flavor',
                  service_id=instance).json['field_id']
    group = post(app, 'groups', name='G').json['group_id']
    return {'instance': instance, 'volume': volume, 'flavor': flavor,
            'group': group}


def mapping(app, status=201, params='', **body):
    body.setdefault('cost', '1')
    return post(app, 'mappings', status=status, params=params, **body)


def threshold(app, status=201, **body):
    body.setdefault('cost', '1')
    return post(app, 'thresholds', status=status, **body)


def test_types(app):
    assert app.get(f'{URL}/types').json == ['flat', 'rate']


def test_module_is_listed_and_dispatched(app):
    modules = app.get('/v1/rating/modules').json['modules']
    assert 'hashmap' in [module['module_id'] for module in modules]
    # The CLI lists collections with a trailing slash.
    assert app.get(f'{URL}/services/').json == {'services': []}


# -- services ----------------------------------------------------------------

def test_service_create_get_list(app):
    response = post(app, 'services', name='instance')
    service = response.json
    assert set(service) == {'service_id', 'name'}
    assert service['name'] == 'instance'
    assert response.location.endswith(
        f"{URL}/services/{service['service_id']}")
    assert app.get(response.location).json == service
    post(app, 'services/', name='compute')
    assert [s['name'] for s in app.get(f'{URL}/services').json[
        'services']] == ['compute', 'instance']


def test_service_errors(app):
    existing = post(app, 'services', name='instance').json['service_id']
    response = post(app, 'services', status=409, name='instance')
    assert existing in response.json['faultstring']
    assert response.json['faultcode'] == 'Client'
    post(app, 'services', status=400)
    post(app, 'services', status=400, name=None)
    post(app, 'services', status=400, name=42)
    post(app, 'services', status=400, name='x' * 256)
    response = post(app, 'services', status=400, name='a', service_id='b')
    assert 'service_id cannot be set' in response.json['faultstring']
    response = app.get(f'{URL}/services/nope', status=404)
    assert response.json['faultstring'] == 'No such service: nope'
    app.delete(f'{URL}/services/nope', status=404)
    app.delete(f'{URL}/services/a/b', status=404)
    app.put_json(f'{URL}/mappings/a/b', {'cost': 1}, status=404)
    app.delete(f'{URL}/services', status=400)


@pytest.mark.parametrize('how', ['path', 'query', 'body'])
def test_service_delete(app, how):
    service_id = post(app, 'services', name='instance').json['service_id']
    delete(app, 'services', 'service_id', service_id, how, status=204)
    app.get(f'{URL}/services/{service_id}', status=404)


def test_service_delete_cascades(app, ids):
    flat = mapping(app, service_id=ids['instance']).json['mapping_id']
    nano = mapping(app, field_id=ids['flavor'],
                   value='m1.nano').json['mapping_id']
    level = threshold(app, service_id=ids['instance'],
                      level=10).json['threshold_id']
    mapping(app, service_id=ids['volume'])
    app.delete(f"{URL}/services/{ids['instance']}", status=204)
    app.get(f"{URL}/fields/{ids['flavor']}", status=404)
    for kind, rule_id in (('mappings', flat), ('mappings', nano),
                          ('thresholds', level)):
        app.get(f'{URL}/{kind}/{rule_id}', status=404)
    assert [m['service_id'] for m in app.get(
        f'{URL}/mappings', params={'deleted': 'true'}).json[
        'mappings']] == [ids['volume']]


# -- fields ------------------------------------------------------------------

def test_fields(app, ids):
    response = post(app, 'fields', name='memory', service_id=ids['instance'])
    field = response.json
    assert set(field) == {'field_id', 'name', 'service_id'}
    assert response.location.endswith(f"{URL}/fields/{field['field_id']}")
    assert app.get(response.location).json == field
    listed = app.get(f'{URL}/fields', params={
        'service_id': ids['instance']}).json['fields']
    assert [f['name'] for f in listed] == ['flavor', 'memory']
    # The same name on another service is another field.
    post(app, 'fields', name='memory', service_id=ids['volume'])
    assert len(app.get(f'{URL}/fields/').json['fields']) == 3
    assert app.get(f'{URL}/fields', params={
        'service_id': ids['volume']}).json['fields'][0]['name'] == 'memory'


def test_field_errors(app, ids):
    response = post(app, 'fields', status=409, name='flavor',
                    service_id=ids['instance'])
    assert ids['flavor'] in response.json['faultstring']
    response = post(app, 'fields', status=400, name='flavor',
                    service_id='nope')
    assert 'No such service: nope' in response.json['faultstring']
    post(app, 'fields', status=400, name='flavor')
    post(app, 'fields', status=400, service_id=ids['instance'])
    app.get(f'{URL}/fields/nope', status=404)


@pytest.mark.parametrize('how', ['path', 'query', 'body'])
def test_field_delete(app, ids, how):
    rule = mapping(app, field_id=ids['flavor'], value='a').json['mapping_id']
    delete(app, 'fields', 'field_id', ids['flavor'], how, status=204)
    app.get(f"{URL}/fields/{ids['flavor']}", status=404)
    app.get(f'{URL}/mappings/{rule}', status=404)
    app.delete(f"{URL}/fields/{ids['flavor']}", status=404)


# -- groups ------------------------------------------------------------------

def test_groups(app, ids):
    response = post(app, 'groups', name='H')
    group = response.json
    assert set(group) == {'group_id', 'name'}
    assert response.location.endswith(f"{URL}/groups/{group['group_id']}")
    assert app.get(response.location).json == group
    assert [g['name'] for g in app.get(f'{URL}/groups/').json[
        'groups']] == ['G', 'H']
    post(app, 'groups', status=409, name='H')
    post(app, 'groups', status=400)
    app.get(f'{URL}/groups/nope', status=404)


def test_group_rules(app, ids):
    grouped = mapping(app, service_id=ids['instance'],
                      group_id=ids['group']).json
    mapping(app, service_id=ids['volume'])
    level = threshold(app, service_id=ids['instance'], level=5,
                      group_id=ids['group']).json
    threshold(app, service_id=ids['volume'], level=5)
    assert app.get(f'{URL}/groups/mappings', params={
        'group_id': ids['group']}).json == {'mappings': [grouped]}
    assert app.get(f'{URL}/groups/thresholds', params={
        'group_id': ids['group']}).json == {'thresholds': [level]}
    app.get(f'{URL}/groups/mappings', params={'group_id': 'nope'},
            status=404)
    app.get(f'{URL}/groups/thresholds', params={'group_id': 'nope'},
            status=404)
    response = app.get(f'{URL}/groups/mappings', status=400)
    assert "'group_id' is required" in response.json['faultstring']


def test_group_delete_keeps_rules_without_group(app, ids):
    rule = mapping(app, service_id=ids['instance'],
                   group_id=ids['group']).json['mapping_id']
    level = threshold(app, service_id=ids['instance'], level=5,
                      group_id=ids['group']).json['threshold_id']
    app.delete(f"{URL}/groups/{ids['group']}", status=204)
    app.get(f"{URL}/groups/{ids['group']}", status=404)
    assert app.get(f'{URL}/mappings/{rule}').json['group_id'] is None
    assert app.get(f'{URL}/thresholds/{level}').json['group_id'] is None
    app.delete(f"{URL}/groups/{ids['group']}", status=404)


@pytest.mark.parametrize('how', ['query', 'body'])
def test_group_delete_recursive(keystone_app, how):
    app = keystone_app
    headers = conftest.ADMIN
    service = app.post_json(f'{URL}/services', {'name': 'instance'},
                            headers=headers).json['service_id']
    group = app.post_json(f'{URL}/groups', {'name': 'G'},
                          headers=headers).json['group_id']
    rule = app.post_json(f'{URL}/mappings', {
        'cost': 1, 'service_id': service, 'group_id': group},
        headers=headers).json['mapping_id']
    level = app.post_json(f'{URL}/thresholds', {
        'cost': 1, 'level': 1, 'service_id': service, 'group_id': group},
        headers=headers).json['threshold_id']
    if how == 'query':
        app.delete(f'{URL}/groups/{group}?recursive=true', headers=headers,
                   status=204)
    else:
        # What the CLI sends.
        app.delete_json(f'{URL}/groups/', {'group_id': group,
                                           'recursive': True},
                        headers=headers, status=204)
    deleted = app.get(f'{URL}/mappings/{rule}', headers=headers).json
    assert deleted['deleted'] is not None
    assert deleted['deleted_by'] == 'admin'
    app.get(f'{URL}/thresholds/{level}', headers=headers, status=404)


# -- mappings ----------------------------------------------------------------

def test_mapping_create_get(app, ids):
    response = mapping(app, service_id=ids['instance'], cost='1.00',
                       name='base', description='Per instance',
                       start=later(1), end=later(3))
    created = response.json
    assert response.location.endswith(
        f"{URL}/mappings/{created['mapping_id']}")
    assert created == {
        'mapping_id': created['mapping_id'], 'value': None, 'type': 'flat',
        'cost': '1', 'service_id': ids['instance'], 'field_id': None,
        'group_id': None, 'tenant_id': None, 'name': 'base',
        'description': 'Per instance', 'start': later(1), 'end': later(3),
        'created_at': created['created_at'], 'created_by': None,
        'updated_by': None, 'deleted': None, 'deleted_by': None}
    assert datetime.datetime.fromisoformat(created['created_at']).tzinfo \
        is None
    assert app.get(response.location).json == created
    field = mapping(app, field_id=ids['flavor'], value='m1.nano',
                    type='rate', cost='0.5', group_id=ids['group'],
                    tenant_id='p1').json
    assert (field['value'], field['type'], field['cost'], field['group_id'],
            field['tenant_id']) == ('m1.nano', 'rate', '0.5', ids['group'],
                                    'p1')
    # Starts now by default.
    started = datetime.datetime.fromisoformat(field['start'])
    assert abs(started - datetime.datetime.now(UTC).replace(
        tzinfo=None)) < datetime.timedelta(minutes=1)


@pytest.mark.parametrize('text, cost', [
    ('0.1', '0.1'),
    ('1.337', '1.337'),
    ('1.00', '1'),
    ('"0.30000000000000000001"', '0.30000000000000000001'),
    ('0.1234567890123456789012345678', '0.1234567890123456789012345678'),
    ('999999999999.5', '999999999999.5'),
    ('12', '12'),
    ('1e-3', '0.001'),
])
def test_costs_are_read_digit_for_digit(app, ids, text, cost):
    body = f'{{"cost": {text}, "service_id": "{ids["instance"]}"}}'
    created = post_raw(app, 'mappings', body).json
    assert created['cost'] == cost
    raw = app.get(f"{URL}/mappings/{created['mapping_id']}").text
    assert f'"cost": "{cost}"' in raw


def test_what_the_cli_sends(app, ids):
    """The body of ``cloudkitty hashmap mapping create``: a float cost,
    nulls for what is not given, a random name."""
    body = (f'{{"cost": 1.337, "value": "m1.nano", "service_id": null, '
            f'"group_id": "{ids["group"]}", "field_id": "{ids["flavor"]}", '
            f'"tenant_id": null, "type": "flat", '
            f'"name": "0123456789abcdef01234567"}}')
    created = post_raw(app, 'mappings/', body).json
    assert created['cost'] == '1.337'
    # ``cloudkitty hashmap mapping update``: the object read, changed,
    # sent back to the collection's URL.
    body = (f'{{"level": "64", "cost": 0.15, "type": "flat", '
            f'"service_id": null, "field_id": "{ids["flavor"]}", '
            f'"group_id": null, "tenant_id": null}}')
    assert post_raw(app, 'thresholds/', body).json['cost'] == '0.15'


@pytest.mark.parametrize('body, words', [
    ({}, "'cost' is required"),
    ({'cost': None}, "'cost' is required"),
    ({'cost': 'abc'}, "invalid 'cost'"),
    ({'cost': True}, "invalid 'cost'"),
    ({'cost': [1]}, "invalid 'cost'"),
    ({'cost': 'NaN'}, "invalid 'cost'"),
    ({'cost': '0.' + '1' * 29}, 'more than 28 decimal digits'),
    ({'cost': '1' * 13}, 'more than 12 integer digits'),
    ({'cost': 1, 'type': 'fixed'}, 'No such rule type'),
    ({'cost': 1, 'name': 7}, "invalid 'name'"),
    ({'cost': 1, 'start': 'soon'}, "invalid 'start'"),
    ({'cost': 1, 'start': 5}, "invalid 'start'"),
    ({'cost': 1, 'colour': 'red'}, 'unknown attribute(s): colour'),
    ({'cost': 1, 'mapping_id': 'mine'}, 'mapping_id cannot be set'),
    ({'cost': 1, 'created_by': 'me'}, 'created_by cannot be set'),
    ({'cost': 1, 'deleted': later(1)}, 'deleted cannot be set'),
])
def test_mapping_create_refuses_bad_bodies(app, ids, body, words):
    body.setdefault('service_id', ids['instance'])
    response = post(app, 'mappings', status=400, **body)
    assert response.json['faultcode'] == 'Client'
    assert words in response.json['faultstring']


def test_mapping_create_validations(app, ids):
    def refused(words, **body):
        body.setdefault('cost', 1)
        response = post(app, 'mappings', status=400, **body)
        assert words in response.json['faultstring'], response.json
    refused('Exactly one of service_id and field_id')
    refused('Exactly one of service_id and field_id',
            service_id=ids['instance'], field_id=ids['flavor'], value='a')
    refused('A field mapping needs a value', field_id=ids['flavor'])
    refused('A service mapping cannot have a value',
            service_id=ids['instance'], value='a')
    refused('No such service: nope', service_id='nope')
    refused('No such field: nope', field_id='nope', value='a')
    refused('No such group: nope', service_id=ids['instance'],
            group_id='nope')
    refused('not after', service_id=ids['instance'], start=later(2),
            end=later(1))
    response = post(app, 'mappings', status=400, cost=1,
                    service_id=ids['instance'], start='2020-01-01T00:00:00')
    assert 'force=true' in response.json['faultstring']
    forced = post(app, 'mappings', params='?force=true', cost=1,
                  service_id=ids['instance'],
                  start='2020-01-01T00:00:00').json
    assert forced['start'] == '2020-01-01T00:00:00'
    post(app, 'mappings', status=400, params='?force=perhaps', cost=1,
         service_id=ids['instance'])
    post(app, 'mappings', status=400, params='?colour=red', cost=1,
         service_id=ids['instance'])


def test_mapping_conflicts(app, ids):
    first = mapping(app, field_id=ids['flavor'], value='m1', name='one',
                    start=later(1), end=later(5)).json
    response = mapping(app, status=409, service_id=ids['instance'],
                       name='one')
    assert first['mapping_id'] in response.json['faultstring']
    mapping(app, status=409, field_id=ids['flavor'], value='m1',
            start=later(4))
    # Another value, tenant, group or validity is another rule.
    mapping(app, field_id=ids['flavor'], value='m2', start=later(1))
    mapping(app, field_id=ids['flavor'], value='m1', tenant_id='p1')
    mapping(app, field_id=ids['flavor'], value='m1', group_id=ids['group'])
    mapping(app, field_id=ids['flavor'], value='m1', start=later(5))


def test_mapping_filters(keystone_app):
    app, headers = keystone_app, conftest.ADMIN

    def make(kind, **body):
        return app.post_json(f'{URL}/{kind}', body, headers=headers).json

    instance = make('services', name='instance')['service_id']
    volume = make('services', name='volume')['service_id']
    flavor = make('fields', name='flavor', service_id=instance)['field_id']
    group = make('groups', name='G')['group_id']
    made = {
        'a': make('mappings', cost=1, service_id=instance, name='a',
                  description='Compute base'),
        'b': make('mappings', cost=1, field_id=flavor, value='m1', name='b',
                  group_id=group, start=later(2), end=later(4)),
        'c': make('mappings', cost=1, service_id=volume, name='c',
                  tenant_id='p1', start=later(1)),
        'd': make('mappings', cost=1, service_id=volume, name='d',
                  start=later(10)),
    }
    app.delete(f"{URL}/mappings/{made['d']['mapping_id']}", headers=headers,
               status=204)
    app.put_json(f"{URL}/mappings/{made['c']['mapping_id']}",
                 {'description': 'Per GiB'}, headers=headers, status=302)

    def names(**params):
        return [m['name'] for m in app.get(
            f'{URL}/mappings', params=params, headers=headers).json[
            'mappings']]

    assert names() == ['a', 'b', 'c']
    assert names(service_id=instance) == ['a']
    assert names(service_id=volume) == ['c']
    assert names(field_id=flavor) == ['b']
    assert names(group_id=group) == ['b']
    assert names(no_group='true') == ['a', 'c']
    assert names(tenant_id='p1') == ['c']
    assert names(filter_tenant='true') == ['a', 'b']
    assert names(deleted='true') == ['a', 'b', 'c', 'd']
    assert names(start=later(0.5)) == ['b', 'c']
    assert names(end=later(5)) == ['b']
    assert names(created_by='admin') == ['a', 'b', 'c']
    assert names(updated_by='admin') == ['c']
    assert names(deleted_by='admin', deleted='true') == ['d']
    assert names(description='per gib') == ['c']
    assert names(description='COMPUTE') == ['a']
    assert names(is_active='true') == ['a']
    assert names(is_active='false') == ['a', 'b', 'c']
    assert names(is_active=later(3)) == ['a', 'b', 'c']
    assert names(is_active=later(5)) == ['a', 'c']
    for params in ({'no_group': 'maybe'}, {'start': 'whenever'},
                   {'is_active': 'someday'}, {'colour': 'red'}):
        app.get(f'{URL}/mappings', params=params, headers=headers,
                status=400)


@pytest.mark.parametrize('how', ['path', 'query', 'body'])
def test_update_future_mapping(app, ids, how):
    created = mapping(app, service_id=ids['instance'], start=later(1)).json
    body = {'cost': '2.5', 'description': 'new', 'end': later(4)}
    response = put(app, 'mappings', 'mapping_id', created['mapping_id'],
                   body, how, status=302)
    assert response.location.endswith(
        f"{URL}/mappings/{created['mapping_id']}")
    assert response.body == b''
    updated = app.get(response.location).json
    assert (updated['cost'], updated['description'], updated['end']) == (
        '2.5', 'new', later(4))


def test_update_sending_back_the_whole_object(app, ids):
    """``cloudkitty hashmap mapping update``: the object read, changed,
    sent back to the collection's URL; what it holds unchanged (read-only
    fields included) is no change."""
    created = mapping(app, field_id=ids['flavor'], value='m1',
                      start=later(1)).json
    created['cost'] = '3'
    response = app.put(f'{URL}/mappings/', json.dumps(created),
                       content_type='application/json', status=302)
    assert app.get(response.location).json['cost'] == '3'
    # Sent again (a client following the redirect): nothing changes.
    app.put_json(response.location, created, status=302)


def test_update_rules(app, ids):
    started = mapping(app, service_id=ids['instance']).json
    url = f"{URL}/mappings/{started['mapping_id']}"
    response = app.put_json(url, {'cost': '2'}, status=400)
    assert 'only its end' in response.json['faultstring']
    response = app.put_json(url, {'end': '2020-01-01T00:00:00'}, status=400)
    assert 'future' in response.json['faultstring']
    end = later(3)
    app.put_json(url, {'end': end}, status=302)
    assert app.get(url).json['end'] == end
    response = app.put_json(url, {'end': later(4)}, status=400)
    assert 'has an end' in response.json['faultstring']

    future = mapping(app, field_id=ids['flavor'], value='m1',
                     start=later(1)).json
    url = f"{URL}/mappings/{future['mapping_id']}"
    for body in ({'value': 'm2'}, {'type': 'rate'}, {'tenant_id': 'p1'},
                 {'service_id': ids['instance']}):
        response = app.put_json(url, body, status=400)
        assert 'Only cost, start, end and description' in \
            response.json['faultstring'], body
    response = app.put_json(url, {'start': '2020-01-01T00:00:00'},
                            status=400)
    assert 'force=true' in response.json['faultstring']
    app.put_json(f'{url}?force=true', {'start': '2020-01-01T00:00:00'},
                 status=302)
    assert app.get(url).json['start'] == '2020-01-01T00:00:00'


def test_update_errors(app, ids):
    app.put_json(f'{URL}/mappings/nope', {'cost': 1}, status=404)
    response = app.put_json(f'{URL}/mappings', {'cost': 1}, status=400)
    assert "'mapping_id' is required" in response.json['faultstring']
    future = mapping(app, service_id=ids['instance'], start=later(1),
                     end=later(5)).json
    url = f"{URL}/mappings/{future['mapping_id']}"
    response = app.put_json(url, {'mapping_id': 'other'}, status=400)
    assert 'several times' in response.json['faultstring']
    for body in ({'cost': None}, {'type': None}, {'cost': 'abc'},
                 {'colour': 'red'}, {'end': 'soon'}):
        app.put_json(url, body, status=400)
    app.put(url, 'not json', content_type='application/json', status=400)
    app.put_json(f'{url}?force=perhaps', {'cost': 1}, status=400)
    conflicting = mapping(app, service_id=ids['instance'],
                          start=later(10)).json
    response = app.put_json(f"{URL}/mappings/{conflicting['mapping_id']}",
                            {'start': later(2)}, status=409)
    assert future['mapping_id'] in response.json['faultstring']


@pytest.mark.parametrize('how', ['path', 'query', 'body'])
def test_mapping_delete_is_soft(app, ids, how):
    created = mapping(app, service_id=ids['instance'], name='gone').json
    mapping_id = created['mapping_id']
    delete(app, 'mappings', 'mapping_id', mapping_id, how, status=204)
    assert app.get(f'{URL}/mappings').json == {'mappings': []}
    deleted = app.get(f'{URL}/mappings/{mapping_id}').json
    assert deleted['deleted'] is not None
    assert app.get(f'{URL}/mappings', params={'deleted': 'true'}).json[
        'mappings'] == [deleted]
    app.delete(f'{URL}/mappings/{mapping_id}', status=404)
    response = app.put_json(f'{URL}/mappings/{mapping_id}',
                            {'end': later(1)}, status=400)
    assert 'deleted' in response.json['faultstring']
    # The name is free again.
    mapping(app, service_id=ids['instance'], name='gone')


def test_mapping_group(app, ids):
    grouped = mapping(app, service_id=ids['instance'],
                      group_id=ids['group']).json['mapping_id']
    alone = mapping(app, service_id=ids['volume']).json['mapping_id']
    assert app.get(f'{URL}/mappings/group', params={
        'mapping_id': grouped}).json == {'group_id': ids['group'],
                                         'name': 'G'}
    response = app.get(f'{URL}/mappings/group',
                       params={'mapping_id': alone}, status=404)
    assert 'group for mapping' in response.json['faultstring']
    app.get(f'{URL}/mappings/group', params={'mapping_id': 'nope'},
            status=404)
    app.get(f'{URL}/mappings/group', status=400)


# -- thresholds --------------------------------------------------------------

def test_thresholds(app, ids):
    response = threshold(app, service_id=ids['volume'], level='50',
                         type='rate', cost=0.98)
    created = response.json
    assert response.location.endswith(
        f"{URL}/thresholds/{created['threshold_id']}")
    assert created == {
        'threshold_id': created['threshold_id'], 'level': '50.00000000',
        'type': 'rate', 'cost': '0.98', 'service_id': ids['volume'],
        'field_id': None, 'group_id': None, 'tenant_id': None}
    assert app.get(response.location).json == created
    field = threshold(app, field_id=ids['flavor'], level=2,
                      group_id=ids['group'], tenant_id='p1').json
    assert field['type'] == 'flat'

    def levels(**params):
        return [t['level'] for t in app.get(
            f'{URL}/thresholds', params=params).json['thresholds']]

    # Eight decimals at least, as upstream's column writes them.
    assert levels() == ['50.00000000', '2.00000000']
    assert levels(service_id=ids['volume']) == ['50.00000000']
    assert levels(field_id=ids['flavor']) == ['2.00000000']
    assert levels(group_id=ids['group']) == ['2.00000000']
    assert levels(no_group='1') == ['50.00000000']
    assert levels(tenant_id='p1') == ['2.00000000']
    assert levels(filter_tenant='yes') == ['50.00000000']
    app.get(f'{URL}/thresholds', params={'colour': 'red'}, status=400)


def test_threshold_errors(app, ids):
    first = threshold(app, service_id=ids['volume'], level=50).json
    response = threshold(app, status=409, service_id=ids['volume'],
                         level='50.0')
    assert first['threshold_id'] in response.json['faultstring']
    threshold(app, service_id=ids['volume'], level=50, tenant_id='p1')
    for body, words in (
            ({'service_id': ids['volume']}, "'level' is required"),
            ({'service_id': ids['volume'], 'level': 1, 'cost': None},
             "'cost' is required"),
            ({'level': 1}, 'Exactly one of'),
            ({'service_id': 'nope', 'level': 1}, 'No such service'),
            ({'service_id': ids['volume'], 'level': 'x'}, "invalid 'level'"),
            ({'service_id': ids['volume'], 'level': 2, 'type': 'x'},
             'No such rule type'),
            ({'service_id': ids['volume'], 'level': 2, 'threshold_id': 'a'},
             'threshold_id cannot be set')):
        response = threshold(app, status=400, **body)
        assert words in response.json['faultstring'], body
    app.get(f'{URL}/thresholds/nope', status=404)


@pytest.mark.parametrize('how', ['path', 'query', 'body'])
def test_threshold_update(app, ids, how):
    created = threshold(app, service_id=ids['volume'], level=50).json
    # The whole object sent back, changed (what the CLI does).
    body = dict(created, cost='0.97', tenant_id='p1')
    threshold_id = body.pop('threshold_id')
    response = put(app, 'thresholds', 'threshold_id', threshold_id, body,
                   how, status=302)
    assert response.location.endswith(
        f"{URL}/thresholds/{created['threshold_id']}")
    updated = app.get(response.location).json
    assert (updated['cost'], updated['tenant_id']) == ('0.97', 'p1')


def test_threshold_update_errors(app, ids):
    created = threshold(app, service_id=ids['volume'], level=50).json
    other = threshold(app, service_id=ids['volume'], level=60).json
    url = f"{URL}/thresholds/{created['threshold_id']}"
    app.put_json(url, {'level': '60'}, status=409)
    response = app.put_json(url, {'service_id': ids['instance']},
                            status=400)
    assert 'cannot change service_id' in response.json['faultstring']
    for body in ({'level': None}, {'cost': None}, {'type': 'x'},
                 {'group_id': 'nope'}, {'threshold_id': 'x'}):
        app.put_json(url, body, status=400)
    app.put_json(f'{URL}/thresholds/nope', {'cost': 1}, status=404)
    app.put_json(f'{URL}/thresholds', {'cost': 1}, status=400)
    app.put_json(url, {'group_id': ids['group']}, status=302)
    assert app.get(f'{URL}/thresholds/group', params={
        'threshold_id': created['threshold_id']}).json['name'] == 'G'
    response = app.get(f'{URL}/thresholds/group', params={
        'threshold_id': other['threshold_id']}, status=404)
    assert 'group for threshold' in response.json['faultstring']


@pytest.mark.parametrize('how', ['path', 'query', 'body'])
def test_threshold_delete(app, ids, how):
    threshold_id = threshold(app, service_id=ids['volume'],
                             level=50).json['threshold_id']
    delete(app, 'thresholds', 'threshold_id', threshold_id, how, status=204)
    app.get(f'{URL}/thresholds/{threshold_id}', status=404)
    app.delete(f'{URL}/thresholds/{threshold_id}', status=404)


# -- who calls, and what goes wrong ------------------------------------------

def test_callers_are_recorded(keystone_app):
    app, headers = keystone_app, conftest.ADMIN
    service = app.post_json(f'{URL}/services', {'name': 'instance'},
                            headers=headers).json['service_id']
    created = app.post_json(f'{URL}/mappings', {
        'cost': 1, 'service_id': service}, headers=headers).json
    assert created['created_by'] == 'admin'
    url = f"{URL}/mappings/{created['mapping_id']}"
    app.put_json(url, {'end': later(1)}, headers=headers, status=302)
    assert app.get(url, headers=headers).json['updated_by'] == 'admin'
    app.delete(url, headers=headers, status=204)
    assert app.get(url, headers=headers).json['deleted_by'] == 'admin'


def test_readers_are_refused(keystone_app):
    reader = conftest.reader('p1')
    keystone_app.get(f'{URL}/services', headers=reader, status=403)
    keystone_app.post_json(f'{URL}/services', {'name': 'x'}, headers=reader,
                           status=403)
    keystone_app.get(f'{URL}/types', headers=reader, status=403)


ROUTES = [
    ('GET', 'types'), ('GET', 'services'), ('POST', 'services'),
    ('GET', 'services/x'), ('DELETE', 'services/x'), ('DELETE', 'services'),
    ('GET', 'fields'), ('POST', 'fields'), ('DELETE', 'fields'),
    ('GET', 'groups'), ('POST', 'groups'), ('DELETE', 'groups/x'),
    ('DELETE', 'groups'), ('GET', 'groups/mappings'),
    ('GET', 'groups/thresholds'), ('GET', 'mappings'), ('POST', 'mappings'),
    ('GET', 'mappings/x'), ('PUT', 'mappings/x'), ('PUT', 'mappings'),
    ('DELETE', 'mappings'), ('GET', 'mappings/group'), ('GET', 'thresholds'),
    ('POST', 'thresholds'), ('PUT', 'thresholds'), ('PUT', 'thresholds/x'),
    ('DELETE', 'thresholds/x'), ('GET', 'thresholds/group'),
    ('GET', 'services/a/b'), ('DELETE', 'mappings/a/b'),
]

BODIES = [b'{', b'[]', b'"text"', b'12', b'null', b'\xff\xfe',
          b'{"name": 1, "service_id": [], "cost": {}, "level": [1]}',
          b'{"cost": "1", "level": "1", "service_id": {"a": 1}}',
          b'{"start": 12, "end": [], "recursive": "sometimes"}',
          b'{"mapping_id": 1, "threshold_id": null, "group_id": 5}']

QUERIES = ['force=maybe', 'recursive=2', 'is_active=x&start=y&end=z',
           'service_id=&field_id=&group_id=', 'colour=red',
           'mapping_id=a&threshold_id=b&group_id=c&service_id=d']


@pytest.mark.parametrize('method, path', ROUTES)
def test_garbage_never_breaks_a_route(app, ids, method, path):
    for query in QUERIES:
        response = app.request(f'{URL}/{path}?{query}', method=method,
                               expect_errors=True)
        assert response.status_int < 500, (query, response.text)
    if method in ('PUT', 'POST', 'DELETE'):
        for body in BODIES:
            response = app.request(f'{URL}/{path}', method=method,
                                   body=body,
                                   content_type='application/json',
                                   expect_errors=True)
            assert 400 <= response.status_int < 500, (body, response.text)
            assert response.json['faultcode'] == 'Client'


def test_decimals_are_json_strings(app, ids):
    mapping(app, service_id=ids['instance'], cost='0.001')
    text = app.get(f'{URL}/mappings').text
    assert '"cost": "0.001"' in text
    parsed = json.loads(text, parse_float=decimal.Decimal)
    assert parsed['mappings'][0]['cost'] == '0.001'
