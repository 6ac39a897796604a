"""Each rule of rating.md (hashmap) on the compiled engine, and both worked
examples to the last digit."""

import decimal
import itertools

import pytest

from cloudkitty import dataframe
from cloudkitty.rating.hash import rules

D = decimal.Decimal


def mapping(service, cost, type_='flat', field=None, value=None, group=None,
            tenant=None):
    return rules.MappingRule(service, field, value, type_, D(cost), group,
                             tenant)


def threshold(service, level, cost, type_='flat', field=None, group=None,
              tenant=None):
    return rules.ThresholdRule(service, field, D(level), type_, D(cost),
                               group, tenant)


def point(qty=1, price=0, groupby=None, **metadata):
    return dataframe.DataPoint('unit', qty, price, groupby or {}, metadata)


def price(rule_set, service, *points, scope_id=None):
    """The prices of ``points`` of type ``service`` after the hashmap."""
    frame = dataframe.DataFrame('2024-01-01T00:00:00', '2024-01-01T01:00:00')
    frame.add_points(points, service)
    priced = rule_set.process(frame, scope_id)
    return [p.price for _, p in priced.iterpoints()]


INSTANCE = rules.RuleSet(
    [mapping('instance', '1.00'),
     mapping('instance', '1.337', field='flavor', value='m1.nano',
             group='G')],
    [threshold('instance', 64, '0.15', field='memory', group='G')])

VOLUME = rules.RuleSet(
    [mapping('volume', '0.001')],
    [threshold('volume', 50, '0.98', 'rate'),
     threshold('volume', 200, '0.95', 'rate'),
     threshold('volume', 50, '0.97', 'rate', tenant='tenant-a')])


def test_worked_example_instance():
    got, = price(INSTANCE, 'instance',
                 point(1, flavor='m1.nano', memory=64))
    assert got == D('2.487')
    assert str(got) == '2.487'


def test_worked_example_volume_thresholds():
    assert price(VOLUME, 'volume', point(50), point(250)) == [
        D('0.049'), D('0.2375')]


def test_worked_example_tenant_threshold():
    assert price(VOLUME, 'volume', point(50), point(250),
                 scope_id='tenant-a') == [D('0.0485'), D('0.2375')]
    for other in (None, 'tenant-b'):
        assert price(VOLUME, 'volume', point(50), scope_id=other) == [
            D('0.049')]


def test_field_value_is_compared_as_a_string():
    rule_set = rules.RuleSet([mapping('vm', 2, field='vcpus', value='8')])
    assert price(rule_set, 'vm', point(vcpus=8), point(vcpus='8'),
                 point(vcpus='8.0'), point(vcpus=8.0), point(vcpus=D('8')),
                 point(vcpus=' 8'), point()) == [
        D(2), D(2), D(0), D(0), D(2), D(0), D(0)]


def test_groupby_wins_over_metadata():
    rule_set = rules.RuleSet([mapping('vm', 2, field='zone', value='a'),
                              mapping('vm', 3, field='zone', value='b')])
    assert price(rule_set, 'vm', point(groupby={'zone': 'a'}, zone='b'),
                 point(zone='b')) == [D(2), D(3)]


@pytest.mark.parametrize('order', list(itertools.permutations(range(5))))
def test_groupby_wins_over_metadata_in_a_frame(order):
    """Whatever the order the points come in (which one's plan is memoised
    first), one frame prices each label from its groupby, else from its
    metadata: all rule fields in the groupby, in the metadata, in both,
    split between them, or missing."""
    rule_set = rules.RuleSet([mapping('vm', 2, field='zone', value='a'),
                              mapping('vm', 3, field='zone', value='b'),
                              mapping('vm', 5, 'rate', field='os', value='x'),
                              mapping('vm', 7, 'rate', field='os', value='y')])
    points = [point(groupby={'zone': 'a', 'os': 'x'}, zone='b', os='y'),
              point(groupby={'zone': 'b', 'os': 'y'}),
              point(zone='a', os='x'),
              point(groupby={'zone': 'b'}, zone='a', os='x'),
              point(groupby={'os': 'y'}, zone='b')]
    expected = [D(10), D(21), D(10), D(15), D(21)]
    for _ in range(2):
        assert price(rule_set, 'vm', *[points[i] for i in order]) == [
            expected[i] for i in order]
    assert price(rule_set, 'vm', *points[:2]) == expected[:2]
    assert price(rule_set, 'vm', point(groupby={'os': 'y'})) == [D(0)]


def test_flat_takes_the_highest_and_rates_multiply():
    rule_set = rules.RuleSet([
        mapping('vm', 2),
        mapping('vm', 5, field='flavor', value='big'),
        mapping('vm', 3, field='zone', value='a'),
        mapping('vm', '1.5', 'rate', field='os', value='win'),
        mapping('vm', 2, 'rate', field='zone', value='eu', group='other'),
        mapping('vm', 10, field='zone', value='eu', group='other2'),
    ])
    assert price(rule_set, 'vm', point(2, flavor='big', zone='a', os='win'),
                 point(2, zone='a'), point(2, os='win')) == [
        D('1.5') * 5 * 2, D(3 * 2), D('1.5') * 2 * 2]


def test_rate_without_flat_contributes_nothing():
    rule_set = rules.RuleSet([mapping('vm', 3, 'rate'),
                              mapping('vm', 2, field='x', value='a',
                                      group='G')])
    assert price(rule_set, 'vm', point(4, x='a'), point(4)) == [D(8), D(0)]


def test_price_before_is_kept_and_added_to():
    rule_set = rules.RuleSet([mapping('vm', 2)])
    assert price(rule_set, 'vm', point(3, price='1.25')) == [D('7.25')]
    assert price(rule_set, 'other', point(3, price='1.25')) == [D('1.25')]


def test_only_the_highest_threshold_reached_applies_per_group():
    rule_set = rules.RuleSet(
        [mapping('vm', 1), mapping('vm', 1, group='G')],
        [threshold('vm', 10, 100), threshold('vm', 20, 200),
         threshold('vm', 30, 300), threshold('vm', 15, 1000, group='G')])
    # qty 25: default group takes level 20 only; G takes level 15.
    assert price(rule_set, 'vm', point(25), point(20), point(5)) == [
        D(25 + 200 + 25 + 1000), D(20 + 200 + 20 + 1000), D(5 + 5)]


def test_service_threshold_flat_is_added_once():
    rule_set = rules.RuleSet([mapping('vm', '0.5')],
                             [threshold('vm', 0, 7)])
    assert price(rule_set, 'vm', point(10), point(0)) == [D(12), D(7)]


def test_service_threshold_alone_in_its_group():
    rule_set = rules.RuleSet([], [threshold('vm', 5, 7, group='G'),
                                  threshold('vm', 5, 3, 'rate')])
    assert price(rule_set, 'vm', point(10), point(1)) == [D(7), D(0)]


def test_field_threshold_compares_the_field_as_a_number():
    rule_set = rules.RuleSet(
        [mapping('vm', 1)],
        [threshold('vm', 64, '0.5', field='memory'),
         threshold('vm', 128, 2, 'rate', field='memory')])
    assert price(rule_set, 'vm', point(3, memory='64'),
                 point(3, memory=100), point(3, memory='1.28e2'),
                 point(3, memory='63.99'), point(3, memory='lots'),
                 point(3, memory=None), point(3)) == [
        D('4.5'), D('4.5'), D(6), D(3), D(3), D(3), D(3)]


def test_field_and_service_thresholds_compete_by_level():
    rule_set = rules.RuleSet(
        [mapping('vm', 1)],
        [threshold('vm', 10, 100), threshold('vm', 20, 5, field='size')])
    # Level 20 (field) beats 10 (service) when the field reaches it.
    assert price(rule_set, 'vm', point(15, size=30), point(15, size=1)) == [
        D(6 * 15), D(15 + 100)]
    # On equal levels the service threshold wins.
    tie = rules.RuleSet(
        [mapping('vm', 1)],
        [threshold('vm', 10, 100), threshold('vm', 10, 5, field='size'),
         threshold('vm', 30, 2, 'rate', field='a'),
         threshold('vm', 30, 3, 'rate', field='b')])
    assert price(tie, 'vm', point(15, size=30)) == [D(115)]
    # Between fields, the first by name.
    assert price(tie, 'vm', point(1, a=30, b=30)) == [D(2)]


def test_tenant_rules_override_by_group_and_value():
    rule_set = rules.RuleSet([
        mapping('vm', 1, field='flavor', value='a'),
        mapping('vm', 2, field='flavor', value='a', group='G'),
        mapping('vm', 3, field='flavor', value='b'),
        mapping('vm', 10, field='flavor', value='a', tenant='t'),
        mapping('vm', 20, field='flavor', value='c', tenant='t'),
    ])
    assert price(rule_set, 'vm', point(flavor='a'), point(flavor='b'),
                 point(flavor='c')) == [D(3), D(3), D(0)]
    assert price(rule_set, 'vm', point(flavor='a'), point(flavor='b'),
                 point(flavor='c'), scope_id='t') == [D(12), D(3), D(20)]
    assert rule_set.scopes == {'t'}


def test_tenant_service_mapping_overrides_the_global_one():
    rule_set = rules.RuleSet([mapping('vm', 1), mapping('vm', 2, 'rate'),
                              mapping('vm', 5, tenant='t')])
    # The service mappings of a group share one key: no value.
    assert price(rule_set, 'vm', point(3)) == [D(6)]
    assert price(rule_set, 'vm', point(3), scope_id='t') == [D(15)]


def test_labels_that_are_not_strings_are_priced_one_by_one():
    rule_set = rules.RuleSet(
        [mapping('vm', 2, field='n', value='8'),
         mapping('vm', 3, field='n', value='8.0'),
         mapping('vm', 5, field='n', value='True')],
        [threshold('vm', 8, 1, field='n')])
    # 8, 8.0, True and D('8.0') hash alike; their strings differ.
    points = [point(n=8), point(n=8.0), point(n=True), point(n='8.0'),
              point(n=D('8.0')), point(n='8'), point(n=[8]), point(n=8)]
    expected = [D(3), D(4), D(5), D(4), D(4), D(3), D(0), D(3)]
    assert price(rule_set, 'vm', *points) == expected
    assert price(rule_set, 'vm', *points) == expected


def test_new_and_memoised_values_in_one_list():
    rule_set = rules.RuleSet(
        [mapping('vm', 2, field='n', value='8'),
         mapping('vm', 3, field='n', value='8.0'),
         mapping('vm', 1, 'rate', field='m', value='x')])
    # Column-wise lookups, values first seen in the list, values that are
    # not strings (looked up one by one) and a value no rule names.
    first = [point(n='8', m='x'), point(n=8.0, m='x'), point(n='8', m='x')]
    again = [point(n='8.0', m='x'), point(n='8', m='x'), point(n=8, m='x'),
             point(n='9', m='x'), point(n=True, m='x'), point(n='8.0', m='x')]
    assert price(rule_set, 'vm', *first) == [D(2), D(3), D(2)]
    assert price(rule_set, 'vm', *again) == [D(3), D(2), D(2), D(0), D(0),
                                             D(3)]


def test_points_priced_nothing_are_kept_as_they_are():
    rule_set = rules.RuleSet([mapping('vm', 2, field='flavor', value='a')],
                             [threshold('vm', 10, 0, 'rate')])
    points = [point(1, flavor='b'), point(1, flavor='a'), point(1),
              point(20, flavor='a')]
    frame = dataframe.DataFrame('2024-01-01T00:00:00', '2024-01-01T01:00:00')
    frame.add_points(points, 'vm')
    priced = [p for _, p in rule_set.process(frame).iterpoints()]
    assert priced[0] is points[0] and priced[2] is points[2]
    assert [p.price for p in priced] == [D(0), D(2), D(0), D(0)]


@pytest.mark.parametrize('qty, before', [
    ('2', '1E+1'), ('20', '1E+1'), ('-0', '-0'), ('0', '-0'), ('1.50', '0'),
    ('0.000', '0E+3'), ('1E+3', '0'), ('12.5', '-7.25')])
def test_prices_keep_every_digit_and_sign(qty, before):
    # A flat service threshold: pieces below its level add no constant.
    rule_set = rules.RuleSet([mapping('vm', '0.50'), mapping('vm', 3, 'rate')],
                             [threshold('vm', 10, '0.25')])
    qty, before = D(qty), D(before)
    with decimal.localcontext(rules.CONTEXT):
        added = D('1.50') * qty
        if qty >= 10:
            added = added + D('0.25')
        expected = before + added
    got, = price(rule_set, 'vm', point(qty, before))
    assert str(got) == str(expected)


TIERS = rules.RuleSet(
    [mapping('vm', '0.50'), mapping('vm', 3, 'rate'),
     mapping('vm', '0.001', group='g')],
    [threshold('vm', 10, '0.25'), threshold('vm', 100, '10'),
     threshold('vm', 50, '0.975', 'rate', group='g'),
     threshold('vm', 200, '0.95', 'rate', group='g')])


def _tiers_step_by_step(qty, before):
    """rating.md's definition, group by group, for :data:`TIERS`."""
    with decimal.localcontext(rules.CONTEXT):
        res = D('1.50') * qty
        if qty >= 100:
            res = res + D('10')
        elif qty >= 10:
            res = res + D('0.25')
        other = D('1') * D('0.001') * qty
        if qty >= 200:
            other = other * D('0.95')
        elif qty >= 50:
            other = other * D('0.975')
        return before + res + other


@pytest.mark.parametrize('before', ['0', '0.00', '-0', '0E+2', '1E+1'])
@pytest.mark.parametrize('shared', [True, False])
def test_prices_have_the_digits_of_the_tiers_in_force(before, shared):
    # Tiers whose costs have fewer digits than the tiers below them: a
    # price has the digits of the thresholds in force only, whatever the
    # qty crossed. Collectors give every point one zero object
    # (dataframe.NO_PRICE): such a column is priced in one operation per
    # point, which must give the same digits, whatever that one price is.
    qtys = [D(q) for q in ('2', '20', '-0', '0', '1.50', '0.000', '1E+3',
                           '12.5', '-20', '60', '100', '250')]
    one = D(before)
    befores = [one if shared else D(before) for _ in qtys]
    got = price(TIERS, 'vm', *map(point, qtys, befores))
    assert [str(p) for p in got] == [
        str(_tiers_step_by_step(q, b)) for q, b in zip(qtys, befores)]


@pytest.mark.parametrize('qty, expected', [
    ('1E+3', '60010'), ('50', '1510'), ('0', '10'), ('-1', '-30'),
    ('-1E+3', '-30000')])
def test_a_constant_with_a_positive_exponent_is_added_to_a_zero(qty,
                                                                expected):
    # rating.md: 0 + (0 * qty + 1E+1 from 0 on) + (3E+1 * qty, twice
    # that from 100 on). Starting from the plain zero collectors give
    # (one object for the column), the price has at most the exponent of
    # that zero: neither the constant's exponent nor the product's
    # (6.0E+4 for qty 1E+3, -3.0E+4 below 0 for qty -1E+3) may show.
    rule_set = rules.RuleSet(
        [mapping('vm', '3E+1', group='g')],
        [threshold('vm', 0, '1E+1'),
         threshold('vm', 100, '2', 'rate', group='g')])
    got = price(rule_set, 'vm', *(point(D(qty), dataframe.NO_PRICE)
                                  for _ in range(2)))
    assert [str(p) for p in got] == [expected, expected]


@pytest.mark.parametrize('tier_group, qty, expected', [
    (None, '0.1', '420'), (None, '0.01', '42.0'), (None, '-0.1', '-420'),
    (None, '3', '12600'), ('g2', '0.1', '420'), ('g2', '0.01', '42.0'),
    ('g2', '200', '1680000'), ('', '0.1', '420.0'), ('', '0.01', '42.00'),
    ('', '200', '840000')])
def test_a_slope_with_a_positive_exponent_keeps_it(tier_group, qty,
                                                   expected):
    # rating.md: group g2's res is 1 * 4.20E+3 * qty (420 for qty 0.1),
    # added to the plain zero collectors give: 420. Summing the groups'
    # slopes from a plain 0 gave 4200 * 0.1 = 420.0, with or without a
    # service threshold (rate 2 from 100 on) in g2. With that threshold
    # in group None instead (''), that group's res is 0 * qty (0.0 for
    # qty 0.1), whose exponent shows: 420.0.
    rule_set = rules.RuleSet(
        [mapping('vm', '4.20E+3', group='g2')],
        [] if tier_group is None else
        [threshold('vm', 100, '2', 'rate', group=tier_group or None)])
    got = price(rule_set, 'vm', *(point(D(qty), dataframe.NO_PRICE)
                                  for _ in range(2)))
    assert [str(p) for p in got] == [expected, expected]


@pytest.mark.parametrize('labels, expected', [
    ({}, '1.0'), ({'flavor': '64'}, '4.0'), ({'memory': '8'}, '1.0'),
    ({'memory': '128'}, '1.5'), ({'flavor': '64', 'memory': '128'}, '4.5')])
def test_a_group_where_nothing_matched_adds_its_zero(labels, expected):
    # rating.md adds the res of every group with a rule of the service.
    # Group None: 1 * 1E+1 * 0.1 = 1. Group g1: 3E+1 * 0.1 = 3 where its
    # flavor mapping matches. Group g2: (0 + 5) * 0.1 = 0.5 from memory
    # 100 on. A group where nothing matched adds 1 * 0 * 0.1 = 0.0, whose
    # exponent shows: 1.0, not 1; 4.0, not 4.
    rule_set = rules.RuleSet(
        [mapping('vm', '1E+1'),
         mapping('vm', '3E+1', field='flavor', value='64', group='g1')],
        [threshold('vm', 100, '5', field='memory', group='g2')])
    got = price(rule_set, 'vm', *(point(D('0.1'), dataframe.NO_PRICE,
                                        **labels) for _ in range(2)))
    assert [str(p) for p in got] == [expected, expected]


@pytest.mark.parametrize('before, expected', [
    ('0', '1.00'), ('5', '6.00'), ('0.000', '1.000')])
@pytest.mark.parametrize('shared', [True, False])
def test_a_zero_constant_in_force_gives_its_digits(before, expected, shared):
    # Group None: flat 2, then the service threshold rates it 0.5: 1.0.
    # Group g1 has nothing matched (0 * qty = 0) and a flat service
    # threshold of 0.00, which rating.md adds: 0.00. The sum is 1.00; a
    # constant of zero is still the constant in force (it was dropped as
    # "no constant", giving 1.0).
    rule_set = rules.RuleSet(
        [mapping('compute', '2', field='zone', value='z')],
        [threshold('compute', 0, '0.5', 'rate'),
         threshold('compute', 0, '0.00', group='g1')])
    one = D(before)
    befores = [one if shared else D(before) for _ in range(2)]
    got = price(rule_set, 'compute', *(point(1, b, zone='z')
                                       for b in befores))
    assert [str(p) for p in got] == [expected, expected]


def test_only_the_price_changes():
    before = point(2, '0.5', {'project_id': 'p'}, flavor='m1.nano',
                   memory=64)
    frame = dataframe.DataFrame('2024-01-01T00:00:00', '2024-01-01T01:00:00')
    frame.add_point(before, 'instance')
    frame.add_point(point(), 'unrated')
    priced = INSTANCE.process(frame)
    (_, after), (_, untouched) = priced.iterpoints()
    assert type(after) is dataframe.DataPoint
    assert after == before._replace(price=D('0.5') + 2 * D('2.487'))
    assert untouched.price == 0
    assert (priced.start, priced.end) == (frame.start, frame.end)
    assert frame.iterpoints().__next__()[1] is before


def test_unknown_rule_type_is_refused():
    with pytest.raises(ValueError):
        rules.RuleSet([mapping('vm', 1, 'free')])


def test_precision_is_never_lost():
    cost = D('999999999999.9999999999999999999999999999')
    rule_set = rules.RuleSet([mapping('vm', cost),
                              mapping('vm', cost, 'rate')])
    qty = D('12345678901234567890.123456789')
    with decimal.localcontext(prec=1000):
        exact = cost * cost * qty
    assert len(exact.as_tuple().digits) > 28 * 2
    assert price(rule_set, 'vm', point(qty)) == [exact]


def test_rule_sets_compare_by_content():
    assert rules.RuleSet([mapping('vm', 1)]) == rules.RuleSet(
        [mapping('vm', 1)])
    assert rules.RuleSet([mapping('vm', 1)]) != rules.RuleSet(
        [mapping('vm', 2)])


@pytest.mark.parametrize('enabled', [True, False])
def test_garbage_collector_state_is_restored(enabled):
    import gc
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        price(INSTANCE, 'instance', point(1, flavor='m1.nano'))
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()


def test_memo_limit_only_costs_time(monkeypatch):
    monkeypatch.setattr(rules, '_MEMO_LIMIT', 3)
    rule_set = rules.RuleSet(
        [mapping('vm', 1, field='a', value=str(i)) for i in range(10)]
        + [mapping('vm', 1, 'rate', field='b', value='x')],
        [threshold('vm', 5, 2, 'rate', field='c'),
         threshold('vm', 2, 1, group='G')])
    # More values than the limit on each field: the plans, the fast memo
    # and what each threshold field value reaches are all dropped on the
    # way.
    points = [point(q, a=str(i), b=b, c=str(c))
              for i in range(12) for b in ('x', 'y') for c in (4, 5, 6, 7)
              for q in (1, 3)]

    def expected(p):
        flat = D(1) if int(p.metadata['a']) < 10 else D(0)
        rate = 2 if int(p.metadata['c']) >= 5 else 1
        return flat * rate * p.qty + (1 if p.qty >= 2 else 0)
    for _ in range(2):
        assert price(rule_set, 'vm', *points) == [expected(p)
                                                  for p in points]


def test_a_new_set_adopts_the_services_whose_rules_are_the_same():
    def rule_set(instance_cost, volume_cost):
        return rules.RuleSet(
            [mapping('instance', instance_cost),
             mapping('volume', volume_cost)],
            [threshold('volume', 50, '0.98', 'rate', tenant='t')])

    def plan(rule_set, service, scope=None):
        return rule_set.for_scope(scope)._services[service]

    old = rule_set('1.00', '2')
    assert price(old, 'instance', point(1)) == [D('1.00')]
    assert price(old, 'volume', point(50), scope_id='t') == [D('98.00')]
    # Volume's global rules change: instance keeps its plan and memo.
    new = rule_set('1.00', '3')
    new.adopt([old])
    assert plan(new, 'instance') is plan(old, 'instance')
    assert plan(new, 'volume') is not plan(old, 'volume')
    assert plan(new, 'volume', 't') is not plan(old, 'volume', 't')
    assert price(new, 'volume', point(50), scope_id='t') == [D('147.00')]
    # Instance's rules change: the tenant's view of volume, the same
    # rules as in the first set, is that set's.
    other = rule_set('1.5', '2')
    other.adopt([new, old])
    assert plan(other, 'volume', 't') is plan(old, 'volume', 't')
    assert plan(other, 'instance') is not plan(old, 'instance')
    assert price(other, 'instance', point(2)) == [D('3.0')]
    # The same value with other digits is another rule: 1.0 prices 1.0.
    digits = rule_set('1.0', '2')
    digits.adopt([old])
    assert plan(digits, 'instance') is not plan(old, 'instance')
    assert [str(p) for p in price(digits, 'instance', point(1))] == ['1.0']
