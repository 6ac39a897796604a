"""The compiled hashmap engine against a plain reading of rating.md.

:func:`reference_price` is the specification written as loops over lists of
rule dicts, with nothing memoised or precompiled; hypothesis draws rule
sets and points and both must give the same Decimal.

Random rule sets seldom hold the two cases where an engine most easily
goes wrong, so each has a strategy of its own that builds it every time:
thresholds of one level that a point reaches together (which one wins),
and a tenant's rule with the key of a global one but in another group
(which must not override it). Their ``@example`` cases are the smallest
such rule sets, checked on every run whatever hypothesis draws.
"""

import decimal

from hypothesis import example
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
import pytest

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


def _decimal(min_int, max_int, max_places=28, min_places=0):
    return st.builds(lambda i, e: D(i).scaleb(-e),
                     st.integers(min_int, max_int),
                     st.integers(min_places, max_places))


# Costs with a positive exponent (1E+1) too: pricing must not let their
# exponent, or a product's, show in a price summed from a zero.
costs = st.one_of(_decimal(0, 10 ** 6), _decimal(-10 ** 3, 10 ** 3, 3, -3),
                  st.sampled_from([D(0), D(1), D('0.5'), D('2')]))
levels = st.one_of(st.sampled_from([D(0), D(8), D(16), D(50), D(64),
                                    D(100), D(200), D('8.5')]),
                   _decimal(-10, 300, 2))
types = st.sampled_from(['flat', 'rate'])


def _mapping_dict(service, field, value, type_, cost, group, tenant):
    return {'service': service, 'field': field,
            'value': None if field is None else value,
            'type': type_, 'cost': cost, 'group': group, 'tenant': tenant}


def _threshold_dict(service, field, level, type_, cost, group, tenant):
    return {'service': service, 'field': field, 'level': level,
            'type': type_, 'cost': cost, 'group': group, 'tenant': tenant}


mapping_dicts = st.builds(
    _mapping_dict, st.sampled_from(SERVICES),
    st.sampled_from([None] + FIELDS), st.sampled_from(VALUES), types, costs,
    st.sampled_from(GROUPS), st.sampled_from(TENANTS))

threshold_dicts = st.builds(
    _threshold_dict, st.sampled_from(SERVICES),
    st.sampled_from([None] + FIELDS), levels, types, costs,
    st.sampled_from(GROUPS), st.sampled_from(TENANTS))


def _mapping_key(m):
    return m['service'], m['field'], m['value'], m['tenant'], m['group']


def _threshold_key(t):
    return t['service'], t['field'], t['level'], t['tenant']


def _threshold_in_group_key(t):
    return _threshold_key(t) + (t['group'],)


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
# A tenant's rule of the same key in a group of its own drawing: it
# overrides the global one only when the group is the same.
_regrouped = st.fixed_dictionaries({
    'tenant': st.sampled_from(['t1', 't2']), 'group': st.sampled_from(GROUPS),
    'type': types, 'cost': costs})
# The database refuses a mapping with the same parent, value, tenant and
# group as a live one, and a threshold with the same level, parent and
# tenant. The engine is given thresholds of one level and parent in
# different groups all the same (as upstream's database, ours refuses
# them, but a rule set built by hand may hold them): each applies in its
# group.
mapping_sets = _with_variants(
    st.lists(mapping_dicts, max_size=20), st.one_of(_retyped, _regrouped)).map(
    lambda ms: _unique(ms, _mapping_key))
threshold_sets = _with_variants(
    st.lists(threshold_dicts, max_size=10),
    st.one_of(_retyped, _regrouped, st.fixed_dictionaries({
        'field': st.sampled_from([None] + FIELDS), 'cost': costs}))).map(
    lambda ts: _unique(ts, _threshold_in_group_key))

label_values = st.one_of(st.sampled_from(VALUES), st.sampled_from(
    [8, 16, 64, 100, D('8.0'), D('64'), 8.0, 0.1, None, True]))
labels = st.dictionaries(st.sampled_from(FIELDS + ['other']), label_values,
                         max_size=4)
points = st.builds(
    lambda qty, price, groupby, metadata: dataframe.DataPoint(
        'unit', qty, price, groupby, metadata),
    st.one_of(_decimal(0, 300, 2), st.sampled_from(
        [D(0), D(50), D(200), D('1E+3'), D('-2E+2'), D('0E+2')])),
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


def _assert_engine_equals_reference(mapping_list, threshold_list,
                                    typed_points, scope_ids):
    frame = dataframe.DataFrame('2024-01-01T00:00:00', '2024-01-01T01:00:00')
    for service, point in typed_points:
        frame.add_point(point, service)
    rule_set = _engine_rules(mapping_list, threshold_list)
    for scope_id in scope_ids:
        priced = rule_set.process(frame, scope_id)
        expected = [(service, reference_price(mapping_list, threshold_list,
                                              service, point, scope_id))
                    for service, point in frame.iterpoints()]
        got = [(service, point.price)
               for service, point in priced.iterpoints()]
        assert got == expected, scope_id
        # Digit for digit where the rules change the price.
        for (_, before), (_, want), (_, have) in zip(
                frame.iterpoints(), expected, got):
            if want != before.price:
                assert str(have) == str(want), scope_id
        # Nothing but the price changes.
        for (_, before), (_, after) in zip(frame.iterpoints(),
                                           priced.iterpoints()):
            assert after._replace(price=before.price) == before
            assert type(after) is dataframe.DataPoint


@settings(max_examples=400, deadline=None)
@given(mapping_sets, threshold_sets, frames, st.sampled_from(SCOPES))
def test_engine_equals_reference(mapping_list, threshold_list, typed_points,
                                 scope_id):
    _assert_engine_equals_reference(mapping_list, threshold_list,
                                    typed_points, [scope_id])


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


@settings(max_examples=100, deadline=None)
@given(mapping_sets, threshold_sets,
       st.lists(st.tuples(st.sampled_from(SCOPES), frames), max_size=6))
def test_frames_priced_together_equal_frames_priced_alone(
        mapping_list, threshold_list, scoped_frames):
    """A processor's round (process_many: each service's points of the
    frames of one view in one column) prices every frame digit for digit
    as it is priced alone."""
    items = []
    for scope_id, typed_points in scoped_frames:
        frame = dataframe.DataFrame('2024-01-01T00:00:00',
                                    '2024-01-01T01:00:00')
        for service, point in typed_points:
            frame.add_point(point, service)
        items.append((frame, scope_id))
    together = _engine_rules(mapping_list, threshold_list).process_many(items)
    assert len(together) == len(items)
    for (frame, scope_id), priced in zip(items, together):
        alone = _engine_rules(mapping_list, threshold_list).process(
            frame, scope_id)
        assert priced == alone
        assert ([str(point.price) for _, point in priced.iterpoints()]
                == [str(point.price) for _, point in alone.iterpoints()])


# -- exponents, built on purpose -----------------------------------------------

# A price's exponent is the smallest of the terms rating.md adds, and
# which terms it adds depends on which groups matched (1 * 0 * qty for a
# group with a rule where nothing matched): few rules of one service in
# two groups, with costs of every exponent and quantities with decimals,
# so that a frame holds points where every group matched and points where
# some did not, which random rule sets seldom give.
exponent_costs = st.sampled_from([D('1E+1'), D('4.20E+3'), D('3E+1'),
                                  D('0E+2'), D('0.5'), D(2), D(0),
                                  D('1.0'), D('0.00')])
exponent_mappings = st.lists(st.builds(
    _mapping_dict, st.just('compute'), st.sampled_from([None, 'flavor']),
    st.just('a'), types, exponent_costs, st.sampled_from([None, 'g1']),
    st.just(None)), max_size=4).map(lambda ms: _unique(ms, _mapping_key))
exponent_thresholds = st.lists(st.builds(
    _threshold_dict, st.just('compute'), st.sampled_from([None, 'size']),
    st.sampled_from([D(0), D(100)]), types, exponent_costs,
    st.sampled_from([None, 'g1']), st.just(None)), max_size=3).map(
    lambda ts: _unique(ts, _threshold_in_group_key))
exponent_points = st.lists(st.builds(
    lambda qty, price, metadata: ('compute', dataframe.DataPoint(
        'unit', qty, price, {}, metadata)),
    st.sampled_from([D('0.1'), D('0.01'), D('-0.1'), D(2), D('1E+3'),
                     D(150)]),
    st.sampled_from([dataframe.NO_PRICE, D('0.00'), D(5)]),
    st.sampled_from([{}, {'flavor': 'a'}, {'size': '150'},
                     {'flavor': 'a', 'size': '150'}])),
    min_size=1, max_size=8)


@settings(max_examples=200, deadline=None)
@given(exponent_mappings, exponent_thresholds, exponent_points)
def test_digits_with_costs_of_every_exponent(mapping_list, threshold_list,
                                             typed_points):
    _assert_engine_equals_reference(mapping_list, threshold_list,
                                    typed_points, [None])


# -- ties and overrides, built on purpose -------------------------------------

# Costs that always change a price: neither 0 (a flat adding nothing) nor
# 1 (a rate multiplying by one).
telling_costs = st.one_of(
    _decimal(1, 10 ** 6, 6), st.sampled_from([D('0.5'), D(2), D(3)])).filter(
    lambda cost: cost not in (0, 1))


def _mapping(service, field, value, type_, cost, group=None, tenant=None):
    return {'service': service, 'field': field, 'value': value,
            'type': type_, 'cost': cost, 'group': group, 'tenant': tenant}


def _threshold(service, field, level, type_, cost, group=None, tenant=None):
    return {'service': service, 'field': field, 'level': level,
            'type': type_, 'cost': cost, 'group': group, 'tenant': tenant}


def _point(service, qty, labels, in_groupby):
    """A point of ``service`` with ``labels`` split between its groupby
    (the names in ``in_groupby``) and its metadata."""
    groupby = {k: v for k, v in labels.items() if k in in_groupby}
    metadata = {k: v for k, v in labels.items() if k not in in_groupby}
    return service, dataframe.DataPoint('unit', qty, D(0), groupby, metadata)


def _some_of(draw, names):
    return [name for name in names if draw(st.booleans())]


def _at_least(draw, level):
    """A label value a field threshold of ``level`` reads as >= level, in
    the forms a collector gives (the level itself, as text, an int, a
    float, or above it)."""
    above = level + draw(_decimal(1, 10 ** 4, 2))
    forms = [level, str(level), above, str(above)]
    if level == level.to_integral_value():
        forms.append(int(level))
    if D(str(float(level))) == level:
        forms.append(float(level))
    return draw(st.sampled_from(forms))


def _noise(draw, keep):
    """Random rules (as the general test draws) for which ``keep`` holds."""
    return ([m for m in draw(mapping_sets) if keep(m)],
            [t for t in draw(threshold_sets) if keep(t)])


@st.composite
def tie_cases(draw):
    """Thresholds of one level, in one group, on two to four parents (the
    service, fields), that every point reaches together; a flat mapping
    prices the group, so whichever threshold wins shows in the price. Some
    are the scope's own, some lower thresholds and rules of other groups
    and services come along.

    rating.md: only the highest level reached applies in a group; on a tie
    the service threshold, then the fields by name, the first winning.
    """
    service = draw(st.sampled_from(SERVICES))
    group = draw(st.sampled_from(GROUPS))
    level = draw(st.one_of(st.sampled_from([D(1), D(8), D(50), D('8.5')]),
                           _decimal(1, 300, 2)))
    # With the service's threshold in the tie, it wins; without it, one
    # of two or three fields does: half the cases each.
    with_service = draw(st.booleans())
    parents = ([None] if with_service else []) + draw(st.lists(
        st.sampled_from(FIELDS), min_size=1 if with_service else 2,
        max_size=3, unique=True))
    tied_costs = draw(st.lists(telling_costs, min_size=len(parents),
                               max_size=len(parents), unique=True))
    thresholds = [
        _threshold(service, field, level, draw(types), cost, group,
                   draw(st.sampled_from([None, 't1'])))
        for field, cost in zip(parents, tied_costs)]
    mappings = [_mapping(service, None, None, 'flat', draw(telling_costs),
                         group, draw(st.sampled_from([None, 't1'])))]
    # Lower levels in the group: reached too, never the one that applies.
    for field in draw(st.lists(st.sampled_from([None] + FIELDS),
                               max_size=2)):
        lower = level - draw(_decimal(1, 100, 2))
        thresholds.append(_threshold(service, field, lower, draw(types),
                                     draw(costs), group))
    noise_m, noise_t = _noise(draw, lambda r: (r['service'], r['group'])
                              != (service, group))
    mappings = _unique(mappings + noise_m, _mapping_key)
    thresholds = _unique(thresholds + noise_t, _threshold_key)
    fields = [f for f in parents if f is not None]
    typed_points = []
    for _ in range(draw(st.integers(1, 3))):
        qty = level + draw(st.one_of(st.just(D(0)), _decimal(0, 10 ** 4, 2)))
        labels = {field: _at_least(draw, level) for field in fields}
        typed_points.append(_point(service, qty, labels,
                                   _some_of(draw, fields)))
    return mappings, thresholds, typed_points


# The smallest cases, with their prices worked out by hand.
WORKED_TIES = {
    # The service threshold wins over a field's: 1 * 8 + 5, not 1 * 2 * 8.
    'service first': (([_mapping('volume', None, None, 'flat', D(1))],
                       [_threshold('volume', 'size', D(8), 'rate', D(2)),
                        _threshold('volume', None, D(8), 'flat', D(5))],
                       [_point('volume', D(8), {'size': 8}, ())]), D(13)),
    # Fields by name, the first winning: az's (1 + 1) * 1, not flavor's
    # (1 + 2) * 1.
    'fields by name': (([_mapping('compute', None, None, 'flat', D(1),
                                  'g1')],
                        [_threshold('compute', 'flavor', D(8), 'flat', D(2),
                                    'g1'),
                         _threshold('compute', 'az', D(8), 'flat', D(1),
                                    'g1', 't1')],
                        [_point('compute', D(1), {'az': '8', 'flavor': D(8)},
                                ('flavor',))]), D(2)),
}


@settings(max_examples=100, deadline=None)
@given(tie_cases())
@example(WORKED_TIES['service first'][0]).via('service first')
@example(WORKED_TIES['fields by name'][0]).via('fields by name')
def test_thresholds_of_equal_level(case):
    mapping_list, threshold_list, typed_points = case
    _assert_engine_equals_reference(mapping_list, threshold_list,
                                    typed_points, ['t1'])


@st.composite
def override_cases(draw):
    """A global rule (mapping or threshold) of group ``G`` that the point
    matches and that changes its price, and a tenant's rule of the same
    parent and value or level in another group: the tenant's rule is added
    beside it, it does not replace it (rating.md: a tenant's rule overrides
    a global one of the same group). Rules of other groups and services,
    global and the tenants', come along.
    """
    service = draw(st.sampled_from(SERVICES))
    tenant = draw(st.sampled_from(['t1', 't2']))
    own_group, tenant_group = draw(st.lists(st.sampled_from(GROUPS),
                                            min_size=2, max_size=2,
                                            unique=True))
    field = draw(st.sampled_from([None] + FIELDS))
    type_ = draw(types)
    labels = {}
    qty = draw(_decimal(1, 10 ** 4, 2))
    mappings, thresholds = [], []
    if draw(st.booleans()):
        value = None
        if field is not None:
            value = draw(st.sampled_from(VALUES))
            labels[field] = value
        mappings.append(_mapping(service, field, value, type_,
                                 draw(telling_costs), own_group))
        mappings.append(_mapping(service, field, value, draw(types),
                                 draw(costs), tenant_group, tenant))
        helped = type_ == 'rate'
    else:
        level = draw(st.one_of(st.sampled_from([D(0), D(8), D(50)]),
                               _decimal(0, 300, 2)))
        if field is None:
            qty = level + draw(_decimal(1, 10 ** 4, 2))
        else:
            labels[field] = _at_least(draw, level)
        thresholds.append(_threshold(service, field, level, type_,
                                     draw(telling_costs), own_group))
        thresholds.append(_threshold(service, field, level, draw(types),
                                     draw(costs), tenant_group, tenant))
        helped = True
    if helped:
        # A flat for the group, so that a rate or a threshold shows: on
        # a field no other rule names, so that nothing can override it.
        mappings.append(_mapping(service, 'zone', 'z', 'flat',
                                 draw(telling_costs), own_group))
        labels['zone'] = 'z'
    noise_m, noise_t = _noise(draw, lambda r: (r['service'], r['group'])
                              != (service, own_group))
    mappings = _unique(mappings + noise_m, _mapping_key)
    thresholds = _unique(thresholds + noise_t, _threshold_key)
    point = _point(service, qty, labels, _some_of(draw, sorted(labels)))
    return mappings, thresholds, [point], tenant


WORKED_OVERRIDES = {
    # t1's flat of g2 is added to the global one of g1: 2 + 3.
    'mapping': (([_mapping('compute', None, None, 'flat', D(2), 'g1'),
                  _mapping('compute', None, None, 'flat', D(3), 'g2', 't1')],
                 [], [_point('compute', D(1), {}, ())], 't1'), D(5)),
    # rating.md's volumes, with t1's threshold in another group: g1 keeps
    # its 0.98 (1 * 50 * 0.98), g2 has no flat (0).
    'threshold': (([_mapping('volume', None, None, 'flat', D(1), 'g1')],
                   [_threshold('volume', None, D(50), 'rate', D('0.98'),
                               'g1'),
                    _threshold('volume', None, D(50), 'rate', D('0.97'),
                               'g2', 't1')],
                   [_point('volume', D(50), {}, ())], 't1'), D(49)),
}


@settings(max_examples=100, deadline=None)
@given(override_cases())
@example(WORKED_OVERRIDES['mapping'][0]).via('mapping')
@example(WORKED_OVERRIDES['threshold'][0]).via('threshold')
def test_tenant_rules_override_within_their_group(case):
    mapping_list, threshold_list, typed_points, tenant = case
    _assert_engine_equals_reference(mapping_list, threshold_list,
                                    typed_points, [tenant, None, 't3'])


@pytest.mark.parametrize('case, price', [
    pytest.param((*case, 't1'), price, id=name)
    for name, (case, price) in WORKED_TIES.items()] + [
    pytest.param(case, price, id=name)
    for name, (case, price) in WORKED_OVERRIDES.items()])
def test_worked_cases(case, price):
    """The engine and the reference give the price worked out by hand."""
    mapping_list, threshold_list, [(service, point)], scope_id = case
    frame = dataframe.DataFrame('2024-01-01T00:00:00', '2024-01-01T01:00:00')
    frame.add_point(point, service)
    [(_, priced)] = _engine_rules(mapping_list, threshold_list).process(
        frame, scope_id).iterpoints()
    assert priced.price == price
    assert reference_price(mapping_list, threshold_list, service, point,
                           scope_id) == price


# -- a whole frame at once against each point alone ----------------------------

# Values equal as dict keys, different to rules (``str`` tells them apart).
twins = st.sampled_from(['8', 8, 8.0, D('8.0'), D(8), '1', 1, True, D(1)])
# Labels with every field a rule may look at in the metadata, mostly as
# text: the case a column prices from its memo alone, in one lookup per
# point (8, 8.0 and "8" are one dict key, but different values to rules).
every_field = st.tuples(
    st.dictionaries(st.just('other'), label_values),
    st.fixed_dictionaries({field: st.one_of(st.sampled_from(VALUES),
                                            label_values, twins)
                           for field in FIELDS}))


@st.composite
def split_fields(draw):
    """(groupby, metadata): each field a rule may look at in the groupby
    (as the file collector puts them), in the metadata, in both with
    different values (the groupby's counts), or missing; mostly text, of
    a few values, so that what one point has in its metadata another has in
    its groupby."""
    value = st.sampled_from(draw(st.lists(
        st.one_of(st.sampled_from(VALUES), label_values, twins),
        min_size=1, max_size=3)))
    everywhere = draw(st.sampled_from(['groupby', 'metadata', None]))
    groupby, metadata = draw(st.dictionaries(st.just('other'), value)), {}
    for field in FIELDS:
        place = everywhere or draw(st.sampled_from(
            ['groupby', 'metadata', 'both', 'missing']))
        if place in ('groupby', 'both'):
            groupby[field] = draw(value)
        if place in ('metadata', 'both'):
            metadata[field] = draw(value)
    return groupby, metadata


@st.composite
def frames_sharing_labels(draw):
    """Points of a few label sets only, so that many share (or nearly
    share) the values the rules look at: what a column prices with one plan
    each must still be priced as each point alone."""
    pool = draw(st.lists(st.one_of(st.tuples(labels, labels), every_field,
                                   split_fields()),
                         min_size=1, max_size=5))
    return [(service, dataframe.DataPoint('unit', qty, price, *pool[index]))
            for service, qty, price, index in draw(st.lists(st.tuples(
                st.sampled_from(SERVICES + ['other']),
                st.one_of(_decimal(0, 300, 2), st.sampled_from(
                    [D(0), D(8), D(50), D(200)])),
                st.one_of(st.just(D(0)), _decimal(-10 ** 4, 10 ** 4, 4)),
                st.integers(0, len(pool) - 1)), max_size=40))]


def _priced_alone(mapping_list, threshold_list, service, point, scope_id):
    """``point`` priced by itself, with rules compiled for it alone."""
    frame = dataframe.DataFrame('2024-01-01T00:00:00', '2024-01-01T01:00:00')
    frame.add_point(point, service)
    [(_, priced)] = _engine_rules(mapping_list, threshold_list).process(
        frame, scope_id).iterpoints()
    return priced.price


def _flavor(cost, value):
    return {'service': 'compute', 'field': 'flavor', 'value': value,
            'type': 'flat', 'cost': D(cost), 'group': None, 'tenant': None}


def _labelled(groupby, metadata):
    return 'compute', dataframe.DataPoint('unit', D(1), D(0), groupby,
                                          metadata)


# A field in a point's groupby, in another's groupby and metadata with
# different values, in a third's metadata: the groupby's value counts.
WORKED_SPLIT = ([_flavor(2, 'a'), _flavor(3, 'b')], [],
                [_labelled({'flavor': 'b'}, {}),
                 _labelled({'flavor': 'a'}, {'flavor': 'b'}),
                 _labelled({}, {'flavor': 'a'})], None)


@settings(max_examples=300, deadline=None)
@given(mapping_sets, threshold_sets,
       st.one_of(frames, frames_sharing_labels()), st.sampled_from(SCOPES))
@example(*WORKED_SPLIT).via('groupby and metadata split')
def test_a_frame_at_once_prices_as_each_point_alone(
        mapping_list, threshold_list, typed_points, scope_id):
    """Digit for digit (value, exponent, sign of zero): the price columns
    of a frame priced at once, twice with one rule set (plans computed,
    then memoised), are the prices of each point priced alone; and these
    are the reference's values."""
    frame = dataframe.DataFrame('2024-01-01T00:00:00', '2024-01-01T01:00:00')
    for service, point in typed_points:
        frame.add_point(point, service)
    alone = []
    for service, points in frame.itertypes():
        prices = [_priced_alone(mapping_list, threshold_list, service, point,
                                scope_id) for point in points]
        assert prices == [
            reference_price(mapping_list, threshold_list, service, point,
                            scope_id) for point in points]
        alone.append((service, [str(price) for price in prices]))
    rule_set = _engine_rules(mapping_list, threshold_list)
    for _ in range(2):
        priced = rule_set.process(frame, scope_id)
        assert [(service, [str(price) for price in prices])
                for service, _, prices in priced.itercolumns()] == alone
        assert [(service, [str(point.price) for point in points])
                for service, points in priced.itertypes()] == alone
