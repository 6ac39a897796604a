"""The gnocchi collector against a real Gnocchi (see conftest's dataset)."""

import datetime
import decimal
import time

import pytest

from cloudkitty import collector
from cloudkitty.collector import gnocchi as gnocchi_collector
from cloudkitty.collector import quantity
from cloudkitty.tests.functional.gnocchi import conftest

D = decimal.Decimal
TIME_KEYS = set(quantity.TIME_KEYS)


def build(dataset, metric='cpu', user='admin', **definition):
    """The configured collector with one metric definition."""
    conf = conftest.make_conf(dataset.url, user=user)
    definition.setdefault('unit', 'instance')
    extra = definition.setdefault('extra_args', {})
    extra.setdefault('resource_type', 'ck_instance')
    return collector.get_collector(conf, {'metrics': {metric: definition}})


def collect(dataset, scope, start=None, end=None, metric='cpu', **kw):
    """``{groupby without time keys: (qty, metadata)}`` of one retrieve."""
    instance = kw.pop('instance', None) or build(dataset, metric, **kw)
    _, points = instance.retrieve(metric, start or dataset.hour,
                                  end or dataset.end, scope)
    return {tuple(sorted((k, v) for k, v in p.groupby.items()
                         if k not in TIME_KEYS)): (p.qty, dict(p.metadata))
            for p in points}


def by_id(dataset, scope, **kw):
    """``{resource name: qty}`` of a collect grouped by resource id."""
    names = {v: k for k, v in dataset.ids.items()}
    return {names[dict(g)['id']]: qty
            for g, (qty, _) in collect(dataset, scope, **kw).items()}


def test_default_definition_is_the_hourly_max_per_resource(dataset):
    result = collect(dataset, 'proj-a')
    assert result == {
        (('id', dataset.ids['inst1']), ('project_id', 'proj-a')):
            (D('2.25'), {}),
        (('id', dataset.ids['inst2']), ('project_id', 'proj-a')):
            (D('4.125'), {}),
    }
    assert sorted(str(q) for q, _ in result.values()) == ['2.25', '4.125']


def test_time_keys_and_unit_are_set(dataset):
    instance = build(dataset)
    _, points = instance.retrieve('cpu', dataset.hour, dataset.end, 'proj-b')
    assert len(points) == 1
    assert points[0].unit == 'instance'
    assert {k: points[0].groupby[k] for k in TIME_KEYS} == \
        quantity.time_keys(dataset.hour)


@pytest.mark.parametrize('method,expected', [
    ('min', {'inst1': D('0.75'), 'inst2': D('3.5')}),
    ('mean', {'inst1': D('1.5'), 'inst2': D('3.8125')}),
    ('sum', {'inst1': D('4.5'), 'inst2': D('7.625')}),
])
def test_aggregation_method(dataset, method, expected):
    assert by_id(dataset, 'proj-a', extra_args={
        'aggregation_method': method}) == expected


def test_decimal_values_stay_exact(dataset):
    assert [str(q) for q in by_id(dataset, 'proj-b').values()] == ['10.1']


@pytest.mark.parametrize('re_method,expected', [
    ('max', D('4.125')), ('min', D('2.25')), ('sum', D('6.375')),
    ('mean', D('3.1875')),
])
def test_resource_key_groups_resources_and_re_aggregation_merges_them(
        dataset, re_method, expected):
    # Without revisions: Gnocchi 4.7 keeps one resource of each group of
    # resource revisions that start together (see the collector's notes).
    result = collect(dataset, 'proj-a', extra_args={
        'resource_key': 'zone', 're_aggregation_method': re_method,
        'use_all_resource_revisions': False})
    assert result == {(('project_id', 'proj-a'), ('zone', 'z1')):
                      (expected, {})}


@pytest.mark.parametrize('granularity,use_history', [
    (60, True), (60, False), (0, False)])
def test_force_granularity_reads_the_first_point_of_the_period(
        dataset, granularity, use_history):
    # The first minute: inst1's 1.5 at :00, inst2's 4.125 at :00:30.
    assert by_id(dataset, 'proj-a', extra_args={
        'force_granularity': granularity,
        'use_all_resource_revisions': use_history}) == {
            'inst1': D('1.5'), 'inst2': D('4.125')}


def test_period_later_in_the_hour_at_one_minute(dataset):
    start = dataset.hour + datetime.timedelta(minutes=1)
    assert by_id(dataset, 'proj-a', start=start,
                 end=start + datetime.timedelta(minutes=1),
                 extra_args={'force_granularity': 60}) == {
        'inst1': D('2.25'), 'inst2': D('3.5')}


def test_groupby_and_metadata(dataset):
    result = collect(dataset, 'proj-a', groupby=['user_id'],
                     metadata=['flavor', 'zone'])
    inst1 = (('id', dataset.ids['inst1']), ('project_id', 'proj-a'),
             ('user_id', 'alice'))
    inst2 = (('id', dataset.ids['inst2']), ('project_id', 'proj-a'),
             ('user_id', ''))
    assert result == {
        inst1: (D('2.25'), {'flavor': 'm1.small', 'zone': 'z1'}),
        inst2: (D('4.125'), {'flavor': 'm1.large', 'zone': 'z1'}),
    }


def test_custom_query(dataset):
    query = ('(* (aggregate RE_AGGREGATION_METHOD '
             '(metric METRIC_NAME AGGREGATION_METHOD)) 4)')
    assert by_id(dataset, 'proj-a', extra_args={
        'custom_query': query, 'aggregation_method': 'min'}) == {
            'inst1': D('3'), 'inst2': D('14')}


def test_other_resource_type_and_metric(dataset):
    result = collect(dataset, 'proj-b', metric='volume.size',
                     unit='GiB', metadata=['volume_type'],
                     extra_args={'resource_type': 'ck_volume'})
    assert result == {(('id', dataset.ids['vol1']),
                       ('project_id', 'proj-b')):
                      (D('20'), {'volume_type': 'ssd'})}


def test_factor_and_offset_apply_to_the_exact_value(dataset):
    assert by_id(dataset, 'proj-b', factor='1/3', offset=1) == {
        'inst3': D('10.1') / 3 + 1}


@pytest.mark.parametrize('scope', ['proj-c', 'nobody'])
def test_scope_without_the_metric_has_no_data(dataset, scope):
    with pytest.raises(collector.NoDataCollected):
        collect(dataset, scope)


def test_period_without_measures_has_no_data(dataset):
    with pytest.raises(collector.NoDataCollected):
        collect(dataset, 'proj-a', start=dataset.end,
                end=dataset.end + datetime.timedelta(hours=1))


def test_q_filter_narrows_the_resources(dataset):
    instance = build(dataset, groupby=['flavor'])
    _, points = instance.retrieve('cpu', dataset.hour, dataset.end, None,
                                  q_filter={'flavor': 'm1.small'})
    assert sorted((p.groupby['project_id'], p.qty) for p in points) == [
        ('proj-a', D('2.25')), ('proj-b', D('10.1'))]


def test_several_scopes_in_one_query(dataset):
    instance = build(dataset)
    result = instance.retrieve_many('cpu', dataset.hour, dataset.end,
                                    ['proj-b', 'proj-a', 'nobody'])
    assert {scope: sorted(p.qty for p in points)
            for scope, (_, points) in result.items()} == {
        'proj-a': [D('2.25'), D('4.125')], 'proj-b': [D('10.1')]}


def test_basic_auth_sends_the_configured_user(gnocchi, dataset):
    expected = [('POST', '/aggregates'),
                ('POST', '/search/resource/ck_instance')]
    before = len(gnocchi.callers())
    by_id(dataset, 'proj-a', user='cloudkitty-rating', metadata=['flavor'])

    def ours():
        # Paths as the access log has them, below Gnocchi's /v1 mount; the
        # log may still be receiving lines of an earlier test's calls.
        return sorted((method, path) for method, path, user
                      in gnocchi.callers()[before:]
                      if user == 'cloudkitty-rating')

    deadline = time.monotonic() + 10
    while ours() != expected and time.monotonic() < deadline:
        time.sleep(0.1)
    assert ours() == expected


def test_unknown_resource_type_is_a_collect_error(dataset):
    with pytest.raises(collector.CollectError) as error:
        collect(dataset, 'proj-a', extra_args={'resource_type': 'nope'})
    assert str(error.value).startswith(
        "Collector 'gnocchi' failed to collect metric 'cpu' for scope "
        f"'proj-a': Gnocchi at {dataset.url}: ")
    assert 'nope' in str(error.value)


# --- resource revisions ---------------------------------------------------------

@pytest.fixture(scope='module')
def revised(gnocchi, dataset):
    """A resource whose flavor changed between two measured minutes.

    Revisions start when they are made, so this one is measured around
    now: ``(start, end, resource id)`` of a period whose first minute was
    measured under flavor ``a`` (5.5) and whose last under ``b`` (8.25).
    """
    admin = conftest.client(gnocchi.url)
    resource = admin.resource.create('ck_instance', {
        'id': 'revised-instance', 'project_id': 'proj-rev',
        'flavor': 'a', 'metrics': {
            'cpu': {'archive_policy_name': conftest.ARCHIVE_POLICY}}})
    updated = admin.resource.update('ck_instance', resource['id'],
                                    {'flavor': 'b'})
    changed = datetime.datetime.fromisoformat(updated['revision_start'])
    minute = changed.replace(second=0, microsecond=0)
    before = minute - datetime.timedelta(minutes=1)
    after = minute + datetime.timedelta(minutes=2)
    conftest.add_measures(admin, {resource['metrics']['cpu']:
                                  [(before, 5.5), (after, 8.25)]})
    return before, after + datetime.timedelta(minutes=1), resource['id']


def test_all_resource_revisions_give_a_point_per_revision(dataset, revised):
    start, end, resource_id = revised
    assert collect(dataset, 'proj-rev', start, end, groupby=['flavor'],
                   extra_args={'force_granularity': 60}) == {
        (('flavor', 'a'), ('id', resource_id), ('project_id', 'proj-rev')):
            (D('5.5'), {}),
        (('flavor', 'b'), ('id', resource_id), ('project_id', 'proj-rev')):
            (D('8.25'), {}),
    }


def test_without_revisions_the_current_attributes_group(dataset, revised):
    start, end, resource_id = revised
    assert collect(dataset, 'proj-rev', start, end, groupby=['flavor'],
                   extra_args={'force_granularity': 60,
                               'use_all_resource_revisions': False}) == {
        (('flavor', 'b'), ('id', resource_id), ('project_id', 'proj-rev')):
            (D('5.5'), {}),
    }


# --- Gnocchi down ---------------------------------------------------------------

def test_gnocchi_down_is_a_collect_error_naming_it(dataset, gnocchi):
    down = 'http://127.0.0.1:9'
    instance = collector.get_collector(
        conftest.make_conf(down),
        {'metrics': {'cpu': {'unit': 'instance', 'extra_args': {
            'resource_type': 'ck_instance'}}}})
    with pytest.raises(collector.CollectError) as error:
        instance.retrieve('cpu', dataset.hour, dataset.end, 'proj-a')
    message = str(error.value)
    assert message.startswith(
        "Collector 'gnocchi' failed to collect metric 'cpu' for scope "
        f"'proj-a': Gnocchi at {down}: Unable to establish connection to "
        f"{down}/v1/aggregates")
    assert isinstance(instance, gnocchi_collector.GnocchiCollector)
