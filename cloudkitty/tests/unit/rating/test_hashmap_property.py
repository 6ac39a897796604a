"""The compiled hashmap engine against a plain reading of rating.md.

:func:`reference_price` is the specification written as loops over lists of
rule dicts, with nothing memoised or precompiled; hypothesis draws rule
sets and points and both must give the same Decimal.
"""

import decimal

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from cloudkitty import dataframe
from cloudkitty.rating.hash import rules

D = decimal.Decimal


def _visible(rule_list, scope_id, same):
    """Global rules not overridden by one of the scope's, then the scope's."""
    own = [r for r in rule_list
           if r['tenant'] is not None and r['tenant'] == scope_id]
    kept = []
    for rule in rule_list:
        if rule['tenant'] is not None:
            continue
        if any(same(rule, mine) for mine in own):
            continue
        kept.append(rule)
    return kept + own


def _same_mapping(a, b):
    return (a['service'] == b['service'] and a['field'] == b['field']
            and a['group'] == b['group'] and a['value'] == b['value'])


def _same_threshold(a, b):
    return (a['service'] == b['service'] and a['field'] == b['field']
            and a['group'] == b['group'] and a['level'] == b['level'])


def reference_price(mappings, thresholds, service, point, scope_id=None):
    """The price of ``point`` (of type ``service``) after the hashmap."""
    with decimal.localcontext(prec=2000):
        mappings = [m for m in _visible(mappings, scope_id, _same_mapping)
                    if m['service'] == service]
        thresholds = [t for t in _visible(thresholds, scope_id,
                                          _same_threshold)
                      if t['service'] == service]
        desc = dict(point.desc)
        qty = point.qty
        groups = []
        for rule in mappings + thresholds:
            if rule['group'] not in groups:
                groups.append(rule['group'])
        price = point.price
        for group in groups:
            flat = D(0)
            rate = D(1)
            for m in mappings:
                if m['group'] != group:
                    continue
                if m['field'] is None:
                    matches = True
                else:
                    matches = (m['field'] in desc
                               and str(desc[m['field']]) == m['value'])
                if not matches:
                    continue
                if m['type'] == 'flat':
                    flat = max(flat, m['cost'])
                else:
                    rate = rate * m['cost']
            reached = []
            for t in thresholds:
                if t['group'] != group:
                    continue
                if t['field'] is None:
                    value = qty
                else:
                    if t['field'] not in desc:
                        continue
                    try:
                        value = dataframe.to_decimal(desc[t['field']])
                    except ValueError:
                        continue
                if value >= t['level']:
                    reached.append(t)
            # Highest level; on a tie the service threshold, then fields
            # by name.
            reached.sort(key=lambda t: (-t['level'], t['field'] is not None,
                                        t['field'] or ''))
            best = reached[0] if reached else None
            if best is not None and best['field'] is not None:
                if best['type'] == 'flat':
                    flat = flat + best['cost']
                else:
                    rate = rate * best['cost']
            res = rate * flat * qty
            if best is not None and best['field'] is None:
                if best['type'] == 'flat':
                    res = res + best['cost']
                else:
                    res = res * best['cost']
            price = price + res
        return price


SERVICES = ['compute', 'volume', 'image']
FIELDS = ['flavor', 'size', 'az']
VALUES = ['a', 'b', '8', '8.0', ' 8', '16', '64', '1e2', 'nan']
GROUPS = [None, 'g1', 'g2']
TENANTS = [None, None, 't1', 't2']
SCOPES = [None, 't1', 't2', 't3']


def _decimal(min_int, max_int, max_places=28):
    return st.builds(lambda i, e: D(i).scaleb(-e),
                     st.integers(min_int, max_int),
                     st.integers(0, max_places))


costs = st.one_of(_decimal(0, 10 ** 6), _decimal(-10 ** 3, 10 ** 3, 3),
                  st.sampled_from([D(0), D(1), D('0.5'), D('2')]))
levels = st.one_of(st.sampled_from([D(0), D(8), D(16), D(50), D(64),
                                    D(100), D(200), D('8.5')]),
                   _decimal(-10, 300, 2))
types = st.sampled_from(['flat', 'rate'])

mapping_dicts = st.builds(
    lambda service, field, value, type_, cost, group, tenant: {
        'service': service, 'field': field,
        'value': None if field is None else value,
        'type': type_, 'cost': cost, 'group': group, 'tenant': tenant},
    st.sampled_from(SERVICES), st.sampled_from([None] + FIELDS),
    st.sampled_from(VALUES), types, costs, st.sampled_from(GROUPS),
    st.sampled_from(TENANTS))

threshold_dicts = st.builds(
    lambda service, field, level, type_, cost, group, tenant: {
        'service': service, 'field': field, 'level': level,
        'type': type_, 'cost': cost, 'group': group, 'tenant': tenant},
    st.sampled_from(SERVICES), st.sampled_from([None] + FIELDS),
    levels, types, costs, st.sampled_from(GROUPS), st.sampled_from(TENANTS))


def _unique(rule_list, key):
    """Drop what the database refuses: a second live rule with the key."""
    seen, kept = set(), []
    for rule in rule_list:
        k = key(rule)
        if k not in seen:
            seen.add(k)
            kept.append(rule)
    return kept


@st.composite
def _with_variants(draw, base, vary):
    """``base`` rules plus copies of some of them changed by ``vary``.

    Random rules seldom share a key, so the cases that matter most (a
    tenant rule overriding a global one, thresholds of equal level) are
    built on purpose from rules already drawn.
    """
    rule_list = draw(base)
    if rule_list:
        for index in draw(st.lists(st.integers(0, len(rule_list) - 1),
                                   max_size=6)):
            rule_list.append(dict(rule_list[index], **draw(vary)))
    return rule_list


_retyped = st.fixed_dictionaries({
    'tenant': st.sampled_from(['t1', 't2']), 'type': types, 'cost': costs})
# The database refuses a mapping with the same parent, value, tenant and
# group as a live one, and a threshold with the same level, parent and
# tenant.
mapping_sets = _with_variants(
    st.lists(mapping_dicts, max_size=20), _retyped).map(
    lambda ms: _unique(ms, lambda m: (m['service'], m['field'], m['value'],
                                      m['tenant'], m['group'])))
threshold_sets = _with_variants(
    st.lists(threshold_dicts, max_size=10),
    st.one_of(_retyped, st.fixed_dictionaries({
        'field': st.sampled_from([None] + FIELDS), 'cost': costs}))).map(
    lambda ts: _unique(ts, lambda t: (t['service'], t['field'],
                                      t['level'], t['tenant'])))

label_values = st.one_of(st.sampled_from(VALUES), st.sampled_from(
    [8, 16, 64, 100, D('8.0'), D('64'), 8.0, 0.1, None, True]))
labels = st.dictionaries(st.sampled_from(FIELDS + ['other']), label_values,
                         max_size=4)
points = st.builds(
    lambda qty, price, groupby, metadata: dataframe.DataPoint(
        'unit', qty, price, groupby, metadata),
    st.one_of(_decimal(0, 300, 2), st.sampled_from([D(0), D(50), D(200)])),
    st.one_of(st.just(D(0)), _decimal(0, 10 ** 4, 4)),
    labels, labels)
frames = st.lists(st.tuples(st.sampled_from(SERVICES + ['other']), points),
                  max_size=30)


def _engine_rules(mapping_list, threshold_list):
    return rules.RuleSet(
        [rules.MappingRule(m['service'], m['field'], m['value'], m['type'],
                           m['cost'], m['group'], m['tenant'])
         for m in mapping_list],
        [rules.ThresholdRule(t['service'], t['field'], t['level'],
                             t['type'], t['cost'], t['group'], t['tenant'])
         for t in threshold_list])


@settings(max_examples=400, deadline=None)
@given(mapping_sets, threshold_sets, frames, st.sampled_from(SCOPES))
def test_engine_equals_reference(mapping_list, threshold_list, typed_points,
                                 scope_id):
    frame = dataframe.DataFrame('2024-01-01T00:00:00', '2024-01-01T01:00:00')
    for service, point in typed_points:
        frame.add_point(point, service)
    rule_set = _engine_rules(mapping_list, threshold_list)
    priced = rule_set.process(frame, scope_id)
    expected = [(service, reference_price(mapping_list, threshold_list,
                                          service, point, scope_id))
                for service, point in frame.iterpoints()]
    got = [(service, point.price) for service, point in priced.iterpoints()]
    assert got == expected
    # Nothing but the price changes.
    for (_, before), (_, after) in zip(frame.iterpoints(),
                                       priced.iterpoints()):
        assert after._replace(price=before.price) == before
        assert type(after) is dataframe.DataPoint


@settings(max_examples=100, deadline=None)
@given(mapping_sets, threshold_sets, frames)
def test_scopes_share_one_rule_set(mapping_list, threshold_list,
                                   typed_points):
    """One RuleSet prices every scope as a fresh one per scope would."""
    frame = dataframe.DataFrame('2024-01-01T00:00:00', '2024-01-01T01:00:00')
    for service, point in typed_points:
        frame.add_point(point, service)
    shared = _engine_rules(mapping_list, threshold_list)
    for scope_id in SCOPES * 2:
        fresh = _engine_rules(mapping_list, threshold_list)
        assert (shared.process(frame, scope_id)
                == fresh.process(frame, scope_id))
