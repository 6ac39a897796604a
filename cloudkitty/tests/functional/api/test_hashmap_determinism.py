"""A price is a function of the rules in force and of the point alone.

The same hashmap rule set is built through the API in many random orders,
each rule quoted and rated right after its creation (no pause), and the
finished set must price the same quotes and the same rated periods every
time: whatever the creation order, the row order, what the API and a
long-lived processor-side module priced and cached before. Ambiguous
rules (same parent, value or level, group and tenant, overlapping
validity) are refused with a 409 naming the rule they collide with.
"""

import datetime
import decimal
import random

from cloudkitty import dataframe
from cloudkitty.rating import hash as hashmap

URL = '/v1/rating/module_config/hashmap'
D = decimal.Decimal
ROUNDS = 6

#: The rule set, by names: (kind, attributes). Services and fields are
#: created before the rules that need them, groups before their rules; all
#: else comes in a random order.
SERVICES = ('instance', 'volume')
FIELDS = (('instance', 'flavor'), ('instance', 'memory'))
GROUPS = ('G', 'H')
RULES = (
    ('mapping', {'service': 'instance', 'type': 'flat', 'cost': '1.00'}),
    ('mapping', {'field': 'flavor', 'value': 'm1.nano', 'type': 'flat',
                 'cost': '1.337', 'group': 'G'}),
    # The same value in another group: allowed, applies in its group.
    ('mapping', {'field': 'flavor', 'value': 'm1.nano', 'type': 'flat',
                 'cost': '0.4', 'group': 'H'}),
    ('mapping', {'field': 'flavor', 'value': 'm1.small', 'type': 'rate',
                 'cost': '1.2', 'group': 'H'}),
    ('mapping', {'service': 'instance', 'type': 'flat', 'cost': '0.25',
                 'group': 'H'}),
    # scope-a's own: overrides the G m1.nano mapping for scope-a only.
    ('mapping', {'field': 'flavor', 'value': 'm1.nano', 'type': 'flat',
                 'cost': '2', 'group': 'G', 'tenant_id': 'scope-a'}),
    ('threshold', {'field': 'memory', 'level': '64', 'type': 'flat',
                   'cost': '0.15', 'group': 'G'}),
    ('threshold', {'field': 'memory', 'level': '32', 'type': 'flat',
                   'cost': '0.05', 'group': 'G'}),
    ('mapping', {'service': 'volume', 'type': 'flat', 'cost': '0.001'}),
    ('threshold', {'service': 'volume', 'level': '50', 'type': 'rate',
                   'cost': '0.98'}),
    ('threshold', {'service': 'volume', 'level': '200', 'type': 'rate',
                   'cost': '0.95'}),
    # A flat threshold in another group (at another level: a level is
    # unique per parent and tenant, as upstream has it), and a tenant's
    # at the same level.
    ('threshold', {'service': 'volume', 'level': '49.999', 'type': 'flat',
                   'cost': '0.5', 'group': 'H'}),
    ('threshold', {'service': 'volume', 'level': '50', 'type': 'rate',
                   'cost': '0.97', 'tenant_id': 'scope-b'}),
)

#: (service, volume, metadata): quoted, and rated for every scope.
POINTS = (
    ('instance', '1', {'flavor': 'm1.nano', 'memory': '64'}),
    ('instance', '2', {'flavor': 'm1.nano', 'memory': '32'}),
    ('instance', '3', {'flavor': 'm1.small', 'memory': '16'}),
    ('instance', '1', {'flavor': 'm1.large'}),
    ('instance', '1', {'flavor': 'm1.nano', 'memory': 'lots'}),
    ('volume', '50', {}),
    ('volume', '250', {}),
    ('volume', '49.999', {}),
)
SCOPES = ('scope-a', 'scope-b', 'scope-c')

#: What rating.md makes of them, worked out by hand for the finished set.
QUOTES = [
    # 1 + G(1.337 + 0.15) + H(0.4)
    D('2.887'),
    # 2 * (1 + (1.337 + 0.05) + 0.4)
    D('5.574'),
    # 3 * (1 + 1.2 * 0.25)
    D('3.9'),
    # 1 + H(0.25)
    D('1.25'),
    # memory 'lots' reaches no threshold
    D('2.737'),
    # 50 * 0.001 * 0.98 + 0.5 (H: flat 0 * 50 + 0.5)
    D('0.549'),
    # 250 * 0.001 * 0.95 + 0.5
    D('0.7375'),
    # 49.999 * 0.001 + 0.5: the level is reached in H only
    D('0.549999'),
]


def _ids(app):
    services = {s['name']: s['service_id'] for s in
                app.get(f'{URL}/services').json['services']}
    fields = {}
    for name, service_id in services.items():
        for field in app.get(f'{URL}/fields',
                             params={'service_id': service_id}
                             ).json['fields']:
            fields[field['name']] = field['field_id']
    groups = {g['name']: g['group_id']
              for g in app.get(f'{URL}/groups').json['groups']}
    return services, fields, groups


def _body(attributes, services, fields, groups):
    body = {key: value for key, value in attributes.items()
            if key not in ('service', 'field', 'group')}
    if 'service' in attributes:
        body['service_id'] = services[attributes['service']]
    if 'field' in attributes:
        body['field_id'] = fields[attributes['field']]
    if 'group' in attributes:
        body['group_id'] = groups[attributes['group']]
    return body


def _quotes(app):
    return [D(app.post_json('/v1/rating/quote', {'resources': [
        {'service': service, 'volume': volume, 'desc': metadata}]}).text)
        for service, volume, metadata in POINTS]


def _rated(module):
    """Each scope's prices for a period starting now, through the
    processor's calls (reload_config, then process)."""
    start = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    frame = dataframe.DataFrame(start, start + datetime.timedelta(hours=1))
    for index, (service, volume, metadata) in enumerate(POINTS):
        frame.add_point(dataframe.DataPoint(
            'unit', volume, 0, {'id': str(index)}, metadata), service)
    module.reload_config(start)
    return {scope: [point.price for _, point in
                    module.process(frame, scope_id=scope).iterpoints()]
            for scope in SCOPES}


def _build(app, module, rng):
    """Create the rule set in a random order, quoting and rating after
    each creation."""
    for name in SERVICES:
        app.post_json(f'{URL}/services', {'name': name})
    services, _, _ = _ids(app)
    for service, name in FIELDS:
        app.post_json(f'{URL}/fields', {'service_id': services[service],
                                        'name': name})
    for name in GROUPS:
        app.post_json(f'{URL}/groups', {'name': name})
    ids = _ids(app)
    for kind, attributes in rng.sample(RULES, len(RULES)):
        app.post_json(f'{URL}/{kind}s', _body(attributes, *ids))
        _quotes(app)
        _rated(module)


def _clear(app):
    services, _, groups = _ids(app)
    for service_id in services.values():
        app.delete(f'{URL}/services?service_id={service_id}')
    for group_id in groups.values():
        app.delete(f'{URL}/groups?group_id={group_id}')


def test_the_same_rules_in_any_order_price_the_same(app, conf):
    app.put_json('/v1/rating/modules/hashmap', {'enabled': True},
                 status=302)
    # A processor's module: long-lived, on the same database.
    module = hashmap.HashMap(conf)
    rng = random.Random()
    results = []
    for _ in range(ROUNDS):
        _build(app, module, rng)
        results.append((_quotes(app), _rated(module)))
        _clear(app)
    quotes, rated = results[0]
    assert quotes == QUOTES
    # Tenant rules price their scope's periods only.
    assert rated['scope-c'] == QUOTES
    # 1 + (2 + 0.15) + 0.4; 2 * (1 + (2 + 0.05) + 0.4); 1 + 2 + 0.4
    assert rated['scope-a'] == [D('3.55'), D('6.9')] + QUOTES[2:4] + [
        D('3.4')] + QUOTES[5:]
    assert rated['scope-b'] == QUOTES[:5] + [
        D('0.5485'), D('0.7375'), D('0.549999')]
    assert all(result == results[0] for result in results), results


def _conflict(app, kind, body):
    return app.post_json(f'{URL}/{kind}s', body, status=409).json[
        'faultstring']


def test_ambiguous_rules_are_refused_naming_the_rule(app):
    service_id = app.post_json(f'{URL}/services',
                               {'name': 'volume'}).json['service_id']
    field_id = app.post_json(f'{URL}/fields', {
        'service_id': service_id, 'name': 'type'}).json['field_id']
    g, h = (app.post_json(f'{URL}/groups', {'name': name}).json['group_id']
            for name in ('G', 'H'))
    mapping = app.post_json(f'{URL}/mappings', {
        'field_id': field_id, 'value': 'ssd', 'cost': '1',
        'group_id': g}).json
    message = _conflict(app, 'mapping', {
        'field_id': field_id, 'value': 'ssd', 'cost': '2', 'group_id': g})
    assert mapping['mapping_id'] in message
    # Another group, or a tenant's own rule: not ambiguous.
    app.post_json(f'{URL}/mappings', {'field_id': field_id, 'value': 'ssd',
                                      'cost': '2', 'group_id': h})
    tenant = app.post_json(f'{URL}/mappings', {
        'field_id': field_id, 'value': 'ssd', 'cost': '3', 'group_id': g,
        'tenant_id': 'scope-a'}).json
    assert tenant['mapping_id'] in _conflict(app, 'mapping', {
        'field_id': field_id, 'value': 'ssd', 'cost': '4', 'group_id': g,
        'tenant_id': 'scope-a'})
    threshold = app.post_json(f'{URL}/thresholds', {
        'service_id': service_id, 'level': '50', 'cost': '0.98',
        'type': 'rate'}).json
    # 50.0 is the level 50: ambiguous too.
    assert threshold['threshold_id'] in _conflict(app, 'threshold', {
        'service_id': service_id, 'level': '50.0', 'cost': '0.9',
        'type': 'rate'})
    # A level is unique per parent and tenant, whatever the group (api.md,
    # as upstream's unique constraint has it).
    assert threshold['threshold_id'] in _conflict(app, 'threshold', {
        'service_id': service_id, 'level': '50', 'cost': '0.9',
        'type': 'rate', 'group_id': h})
    app.post_json(f'{URL}/thresholds', {
        'service_id': service_id, 'level': '50', 'cost': '0.9',
        'type': 'rate', 'tenant_id': 'scope-a'})
    # Nothing refused was stored.
    assert len(app.get(f'{URL}/mappings',
                       params={'field_id': field_id}).json['mappings']) == 3
    assert len(app.get(f'{URL}/thresholds',
                       params={'service_id': service_id}
                       ).json['thresholds']) == 2
