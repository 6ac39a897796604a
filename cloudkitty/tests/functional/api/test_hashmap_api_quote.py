"""A hashmap rule created, changed or deleted through the API is in force
for the very next quote, with no pause between the two (rules are in force
by whole seconds, and a quote is priced at the second it is asked: see
doc/source/admin/hashmap.rst)."""

import decimal

URL = '/v1/rating/module_config/hashmap'
D = decimal.Decimal


def _quote(app, service, volume):
    return D(app.post_json('/v1/rating/quote', {'resources': [
        {'service': service, 'volume': volume}]}).text)


def test_each_change_is_in_force_for_the_next_quote(app):
    app.put_json('/v1/rating/modules/hashmap', {'enabled': True},
                 status=302)
    # Several rounds, each in whatever part of a second it falls: before
    # rules were in force by whole seconds, a quote within the second of
    # a rule's creation missed it in most rounds.
    for round_ in range(8):
        service = f'volume{round_}'
        service_id = app.post_json(f'{URL}/services',
                                   {'name': service}).json['service_id']
        mapping = app.post_json(f'{URL}/mappings', {
            'service_id': service_id, 'type': 'flat', 'cost': '0.001'}).json
        assert _quote(app, service, 50) == D('0.050')
        threshold = app.post_json(f'{URL}/thresholds', {
            'service_id': service_id, 'level': 50, 'type': 'rate',
            'cost': '0.98'}).json
        assert _quote(app, service, 50) == D('0.049')
        app.put_json(f'{URL}/thresholds', {
            'threshold_id': threshold['threshold_id'], 'cost': '0.5'})
        assert _quote(app, service, 50) == D('0.025')
        app.delete(f'{URL}/thresholds?threshold_id='
                   f'{threshold["threshold_id"]}')
        assert _quote(app, service, 50) == D('0.050')
        app.delete(f'{URL}/mappings?mapping_id={mapping["mapping_id"]}')
        assert _quote(app, service, 50) == 0
