"""Every aggregation and re-aggregation method of the gnocchi collector
against the real Gnocchi, quantities exact.

The session's dataset keeps only max, min, mean and sum; this module makes
an archive policy of its own with every basic method, a percentile and
their ``rate:`` forms (:data:`METHODS`), a resource type of its own (so
the other modules' searches and scope lists do not see its resources) and
the measures of :data:`MEASURES`, all in the dataset's hour ``H`` and the
hour before it. Their values are multiples of 1/4 chosen so that every
expected quantity (means, medians, standard deviations, variances,
interpolated percentiles) is exact in binary: Gnocchi's floats then print
as the decimal numbers computed by hand below.
"""

import datetime
import decimal
import uuid

import pytest

from cloudkitty import collector
from cloudkitty.collector import gnocchi as gnocchi_collector
from cloudkitty.tests.functional.gnocchi import conftest

D = decimal.Decimal
MINUTE = datetime.timedelta(minutes=1)
HOUR = datetime.timedelta(hours=1)
SUFFIX = uuid.uuid4().hex[:8]
RESOURCE_TYPE = f'ck_agg_{SUFFIX}'
POLICY = f'ck-all-methods-{SUFFIX}'
METRIC = 'ck.load'

_BASIC = ['count', 'first', 'last', 'max', 'mean', 'median', 'min', 'std',
          'sum', '75pct']
#: What the archive policy stores: Gnocchi 4.7's basic methods, one
#: percentile, and the ``rate:`` form of each.
METHODS = _BASIC + [f'rate:{m}' for m in _BASIC]

#: {name: (project, zone, [(minutes after H, value)])}. r1..r4 make the
#: aggregation and re-aggregation cases; r5 the minute-level rates around
#: H (points at H-2min, H-1min, H, H+1min).
MEASURES = {
    'r1': ('proj-agg', 'z', [(-5, 1), (5, 2.5), (10, 3.25), (15, 2.25),
                             (20, 3), (25, 4.75), (30, 4.25), (35, 4.5)]),
    'r2': ('proj-agg', 'z', [(-5, 0), (5, 0.75)]),
    'r3': ('proj-agg', 'z', [(-5, 0.75), (5, 1)]),
    'r4': ('proj-agg', 'z', [(-5, 1.75), (5, 3)]),
    'r5': ('proj-rate', 'y', [(-2, 1), (-1, 2), (0, 4), (1, 7)]),
}


@pytest.fixture(scope='module')
def resources(gnocchi, dataset):
    """The resources of :data:`MEASURES` in Gnocchi, measures processed:
    ``(H, {name: id})``."""
    admin = conftest.client(gnocchi.url)
    admin.archive_policy.create({
        'name': POLICY, 'back_window': 0, 'aggregation_methods': METHODS,
        'definition': [{'granularity': 60, 'points': 3 * 1440},
                       {'granularity': 3600, 'points': 72}]})
    admin.resource_type.create({'name': RESOURCE_TYPE, 'attributes': {
        'zone': {'type': 'string', 'required': False}}})
    ids, measures = {}, {}
    for name, (project, zone, points) in MEASURES.items():
        resource = admin.resource.create(RESOURCE_TYPE, {
            'id': str(uuid.uuid4()), 'project_id': project, 'zone': zone,
            'metrics': {METRIC: {'archive_policy_name': POLICY}}})
        ids[name] = resource['id']
        # One batch per metric: metricd derives the rates of the whole
        # series, the hour before H included.
        measures[resource['metrics'][METRIC]] = [
            (dataset.hour + minutes * MINUTE, value)
            for minutes, value in points]
    conftest.add_measures(admin, measures)
    return dataset.hour, ids


def collect(dataset, resources, scope='proj-agg', start=None, **extra):
    """``{resource name or zone: qty}`` of one retrieve of the hour H (or
    of the hour from ``start``)."""
    hour, ids = resources
    start = start or hour
    extra.setdefault('resource_type', RESOURCE_TYPE)
    instance = collector.get_collector(
        conftest.make_conf(dataset.url),
        {'metrics': {METRIC: {'unit': 'load', 'extra_args': extra}}})
    _, points = instance.retrieve(METRIC, start, start + HOUR, scope)
    names = {v: k for k, v in ids.items()}
    result = {}
    for point in points:
        key = names[point.groupby['id']] if 'id' in point.groupby else \
            point.groupby['zone']
        assert key not in result
        assert isinstance(point.qty, D)
        result[key] = point.qty
    return result


# --- aggregation_method: what the archive policy stored ---------------------------
#
# Hour H, granularity 3600. r1's measures, in time order:
#     2.5, 3.25, 2.25, 3, 4.75, 4.25, 4.5       (and 1 at H-5min)
# sorted: 2.25, 2.5, 3, 3.25, 4.25, 4.5, 4.75; sum 24.5, mean 24.5/7 = 3.5,
# median 3.25, std (n-1): squared deviations 1.5625 + 1 + 0.25 + 0.0625
# + 0.5625 + 1 + 1.5625 = 6, / 6 = 1, sqrt 1; 75pct: position 6 * 0.75 =
# 4.5 of the sorted values, (4.25 + 4.5) / 2 = 4.375.
# r1's rates (each measure minus the one before, 2.5 - 1 first):
#     1.5, 0.75, -1, 0.75, 1.75, -0.5, 0.25
# sorted: -1, -0.5, 0.25, 0.75, 0.75, 1.5, 1.75; sum 3.5, mean 0.5, median
# 0.75, std: 1 + 0.0625 + 2.25 + 0.0625 + 1.5625 + 1 + 0.0625 = 6, / 6 = 1;
# 75pct (0.75 + 1.5) / 2 = 1.125.
# r2, r3, r4 have one measure in H (0.75, 1, 3) and one before (0, 0.75,
# 1.75): every method gives that measure (count 1) or its rate (0.75, 0.25,
# 1.25), except std, which needs two points: no quantity.

ONE_POINT = {'r2': D('0.75'), 'r3': D('1'), 'r4': D('3')}
ONE_RATE = {'r2': D('0.75'), 'r3': D('0.25'), 'r4': D('1.25')}
ONES = {'r2': D(1), 'r3': D(1), 'r4': D(1)}


@pytest.mark.parametrize('method,expected', [
    ('count', {'r1': D(7), **ONES}),
    ('first', {'r1': D('2.5'), **ONE_POINT}),
    ('last', {'r1': D('4.5'), **ONE_POINT}),
    ('max', {'r1': D('4.75'), **ONE_POINT}),
    ('mean', {'r1': D('3.5'), **ONE_POINT}),
    ('median', {'r1': D('3.25'), **ONE_POINT}),
    ('min', {'r1': D('2.25'), **ONE_POINT}),
    ('std', {'r1': D(1)}),
    ('sum', {'r1': D('24.5'), **ONE_POINT}),
    ('75pct', {'r1': D('4.375'), **ONE_POINT}),
    ('rate:count', {'r1': D(7), **ONES}),
    ('rate:first', {'r1': D('1.5'), **ONE_RATE}),
    ('rate:last', {'r1': D('0.25'), **ONE_RATE}),
    ('rate:max', {'r1': D('1.75'), **ONE_RATE}),
    ('rate:mean', {'r1': D('0.5'), **ONE_RATE}),
    ('rate:median', {'r1': D('0.75'), **ONE_RATE}),
    ('rate:min', {'r1': D(-1), **ONE_RATE}),
    ('rate:std', {'r1': D(1)}),
    ('rate:sum', {'r1': D('3.5'), **ONE_RATE}),
    ('rate:75pct', {'r1': D('1.125'), **ONE_RATE}),
])
def test_aggregation_method(dataset, resources, method, expected):
    assert collect(dataset, resources, aggregation_method=method) == \
        expected


def test_every_stored_method_is_tested():
    tested = {m for m, _ in _params(test_aggregation_method)}
    assert tested == set(METHODS)


def test_method_missing_from_the_archive_policy_is_a_collect_error(
        dataset, resources):
    with pytest.raises(collector.CollectError) as error:
        collect(dataset, resources, aggregation_method='5pct')
    assert str(error.value).startswith(
        "Collector 'gnocchi' failed to collect metric 'ck.load' for scope "
        f"'proj-agg': Gnocchi at {dataset.url}: ")
    assert '5pct' in str(error.value)


# --- re_aggregation_method: Gnocchi's aggregate over a group's resources ----------
#
# Grouped by zone (resource_key zone, without revisions: see the collector's
# notes), r1..r4 of zone z, each by its hourly max:
#     H:     4.75, 0.75, 1, 3     count 4, sum 9.5, mean 2.375, median
#            (1 + 3) / 2 = 2, min 0.75, max 4.75; variance (population):
#            (5.640625 + 2.640625 + 1.890625 + 0.390625) / 4 = 2.640625,
#            std 1.625
#     H-1:   1, 0, 0.75, 1.75     count 4, sum 3.5, mean 0.875, median
#            (0.75 + 1) / 2 = 0.875, min 0, max 1.75; variance (0.015625
#            + 0.765625 + 0.015625 + 0.765625) / 4 = 0.390625, std 0.625
# rate:X is X(H) - X(H-1).

@pytest.mark.parametrize('method,expected', [
    ('count', D(4)), ('max', D('4.75')), ('mean', D('2.375')),
    ('median', D(2)), ('min', D('0.75')), ('std', D('1.625')),
    ('sum', D('9.5')), ('var', D('2.640625')),
    ('rate:count', D(0)), ('rate:max', D(3)), ('rate:mean', D('1.5')),
    ('rate:median', D('1.125')), ('rate:min', D('0.75')),
    ('rate:std', D(1)), ('rate:sum', D(6)), ('rate:var', D('2.25')),
])
def test_re_aggregation_method(dataset, resources, method, expected):
    assert collect(dataset, resources, resource_key='zone',
                   re_aggregation_method=method,
                   use_all_resource_revisions=False) == {'z': expected}


def test_every_re_aggregation_method_is_tested():
    accepted = set(gnocchi_collector.RE_AGGREGATION_METHODS)
    accepted |= {f'rate:{m}' for m in accepted}
    tested = {m for m, _ in _params(test_re_aggregation_method)}
    assert tested == accepted


@pytest.mark.parametrize('method,expected', [
    # One resource a group: the rate is the resource's, H's max minus
    # H-1's; a count is 1, its rate 0.
    ('rate:max', {'r1': D('3.75'), 'r2': D('0.75'), 'r3': D('0.25'),
                  'r4': D('1.25')}),
    ('rate:sum', {'r1': D('3.75'), 'r2': D('0.75'), 'r3': D('0.25'),
                  'r4': D('1.25')}),
    ('count', {'r1': D(1), 'r2': D(1), 'r3': D(1), 'r4': D(1)}),
    ('rate:count', {'r1': D(0), 'r2': D(0), 'r3': D(0), 'r4': D(0)}),
])
def test_re_aggregation_per_resource_with_revisions(
        dataset, resources, method, expected):
    assert collect(dataset, resources, re_aggregation_method=method) == \
        expected


# --- the rate: query starts before the period -------------------------------------
#
# r5: 1 at H-2min, 2 at H-1min, 4 at H, 7 at H+1min. The first rate of the
# period is the one at H: the point at H minus the point before it, at the
# granularity read.

@pytest.mark.parametrize('granularity,use_history,expected', [
    # Hourly maxima 2 (H-1) and 7 (H).
    (3600, True, D(5)), (3600, False, D(5)),
    # Minutes: 4 - 2.
    (60, True, D(2)), (60, False, D(2)),
    # Every granularity, the finest read: the minutes' 4 - 2 too (Gnocchi
    # mixes granularities with revisions, see the collector's notes).
    (0, False, D(2)),
])
def test_rate_is_the_first_difference_at_the_start(
        dataset, resources, granularity, use_history, expected):
    assert collect(dataset, resources, scope='proj-rate',
                   re_aggregation_method='rate:max',
                   force_granularity=granularity,
                   use_all_resource_revisions=use_history) == \
        {'r5': expected}


def test_resource_without_a_point_before_the_period_has_no_rate(
        dataset, resources):
    # r1..r4 have no point before H-5min: the hour before H has no rate.
    hour, _ = resources
    with pytest.raises(collector.NoDataCollected):
        collect(dataset, resources, start=hour - HOUR,
                re_aggregation_method='rate:max')
    # ... while its plain maximum is there.
    assert collect(dataset, resources, start=hour - HOUR) == {
        'r1': D(1), 'r2': D(0), 'r3': D('0.75'), 'r4': D('1.75')}


def _params(test):
    """The ``(method, expected)`` parameters of a parametrized test."""
    mark = next(m for m in test.pytestmark if m.name == 'parametrize')
    return mark.args[1]
