"""The storage v2 contract, run against every database the sqlalchemy
backend supports (see conftest.py for the fixtures)."""

import datetime
import decimal

import pytest

from cloudkitty import dataframe
from cloudkitty.storage import v2
from cloudkitty import timeutils

D = decimal.Decimal
UTC = datetime.timezone.utc
HOUR = datetime.timedelta(hours=1)
T0 = datetime.datetime(2024, 3, 1, tzinfo=UTC)
T1 = datetime.datetime(2024, 3, 2, tzinfo=UTC)
T2 = datetime.datetime(2024, 4, 1, tzinfo=UTC)
MARCH = {'begin': T0, 'end': T2}
ALL_TIME = {'begin': datetime.datetime(2000, 1, 1, tzinfo=UTC),
            'end': datetime.datetime(2100, 1, 1, tzinfo=UTC)}
# 12 integer and 28 decimal digits: the largest price stored exactly.
BIG_PRICE = D('999999999999.9999999999999999999999999999')
THIRD = D('0.3333333333333333333333333333')
TINY = D('0.0000000000000000000000000001')


def point(start, qty, price, scope, resource=None, unit='unit',
          metadata=None, description=None):
    """A point as a collector builds it: time keys from ``start``."""
    groupby = {'project_id': scope,
               'week_of_the_year': start.strftime('%U'),
               'day_of_the_year': str(start.timetuple().tm_yday),
               'month': str(start.month), 'year': str(start.year)}
    if resource is not None:
        groupby['id'] = resource
    return dataframe.DataPoint(unit, qty, price, groupby, metadata or {},
                               description)


def frame(start, **usage):
    return dataframe.DataFrame(start, start + HOUR, usage)


def dataset():
    """``[(scope, frame)]``: March (two days, three scopes) and April."""
    t = T0 + HOUR
    return [
        ('p1', frame(
            T0,
            instance=[
                point(T0, 1, '0.1', 'p1', 'i1', 'instance',
                      {'flavor': 'm1.small'}, 'Instances'),
                point(T0, 1, '0.2', 'p1', 'i2', 'instance',
                      {'flavor': 'm1.large'}, 'Instances')],
            volume=[point(T0, '10.5', TINY, 'p1', 'v1', 'GiB',
                          {'volume_type': 'ssd'})])),
        ('p1', frame(
            t,
            instance=[point(t, 1, '0.1', 'p1', 'i1', 'instance',
                            {'flavor': 'm1.small'}, 'Instances')],
            volume=[point(t, '10.5', '1.05', 'p1', 'v1', 'GiB',
                          {'volume_type': 'ssd'})])),
        ('p2', frame(
            T0,
            instance=[point(T0, 2, BIG_PRICE, 'p2', 'i3', 'instance',
                            {'flavor': 'm1.large'}, 'Instances')])),
        ('P1', frame(
            T1,
            instance=[point(T1, THIRD, THIRD, 'P1', 'i4', 'instance',
                            {'flavor': 'm1.small'})],
            image=[point(T1, 3, '0.03', 'P1', None, 'image')])),
        ('p1', frame(
            T2,
            volume=[point(T2, 5, 5, 'p1', 'v1', 'GiB',
                          {'volume_type': 'hdd'})])),
    ]


@pytest.fixture
def loaded(storage):
    data = dataset()
    storage.push([f for _, f in data])
    return data


def expected_frames(data):
    """What retrieve returns for ``data``: one frame per period, points of
    a type in push order."""
    merged = {}
    for _, frm in data:
        target = merged.setdefault(
            (frm.start, frm.end), dataframe.DataFrame(frm.start, frm.end))
        for type_, p in frm.iterpoints():
            target.add_point(p, type_)
    return [merged[k] for k in sorted(merged)]


def all_points(storage, **kwargs):
    frames = storage.retrieve(paginate=False, **kwargs)['dataframes']
    return [(f.start, t, p) for f in frames for t, p in f.iterpoints()]


# -- push and retrieve --------------------------------------------------------

def test_retrieve_round_trips_frames(storage, loaded):
    result = storage.retrieve(**ALL_TIME)
    assert result['total'] == 9
    assert result['dataframes'] == expected_frames(loaded)
    first = result['dataframes'][0]
    assert first.start == T0 and first.start.tzinfo is not None
    volume = dict(first.itertypes())['volume'][0]
    assert volume.price == TINY and volume.unit == 'GiB'
    assert dict(volume.metadata) == {'volume_type': 'ssd'}
    instance = dict(first.itertypes())['instance'][2]
    assert instance.price == BIG_PRICE
    assert str(instance.price) == '999999999999.9999999999999999999999999999'
    assert instance.description == 'Instances'
    assert volume.description is None
    # Stored decimals come back without padding zeros.
    assert str(dict(first.itertypes())['instance'][0].price) == '0.1'


def test_retrieve_defaults_to_the_current_month(storage):
    month_start, next_month = timeutils.month_window()
    last_month = month_start - 2 * HOUR
    storage.push([frame(month_start, a=[point(month_start, 1, 1, 'p')]),
                  frame(last_month, a=[point(last_month, 2, 2, 'p')])])
    frames = storage.retrieve()['dataframes']
    assert [f.start for f in frames] == [month_start]
    assert storage.total()['results'] == [
        {'begin': month_start, 'end': next_month, 'qty': 1, 'rate': 1}]


def test_retrieve_metric_types_and_filters(storage, loaded):
    def ids(**kwargs):
        return [(t, p.groupby.get('id'))
                for _, t, p in all_points(storage, **ALL_TIME, **kwargs)]

    assert ids(metric_types='volume') == [
        ('volume', 'v1'), ('volume', 'v1'), ('volume', 'v1')]
    assert ids(metric_types=['image', 'volume'], filters={
        'project_id': 'P1'}) == [('image', None)]
    # A list is an OR; keys are ANDed; metadata keys filter too.
    assert ids(filters={'flavor': ['m1.small', 'm1.large'],
                        'project_id': ['p1', 'p2']}) == [
        ('instance', 'i1'), ('instance', 'i2'), ('instance', 'i3'),
        ('instance', 'i1')]
    assert ids(filters={'flavor': 'm1.small', 'month': '3'}) == [
        ('instance', 'i1'), ('instance', 'i1'), ('instance', 'i4')]
    assert ids(filters={'type': 'image'}) == [('image', None)]
    assert ids(filters={'type': 'image'}, metric_types='volume') == []
    assert ids(filters={'id': 'nothing'}) == []


def test_retrieve_pagination(storage, loaded):
    everything = all_points(storage, **ALL_TIME)
    assert len(everything) == 9
    pages = []
    for offset in range(0, 10, 4):
        result = storage.retrieve(offset=offset, limit=4, **ALL_TIME)
        assert result['total'] == 9
        pages += [(f.start, t, p) for f in result['dataframes']
                  for t, p in f.iterpoints()]
    assert pages == everything
    beyond = storage.retrieve(offset=20, limit=4, **ALL_TIME)
    assert beyond == {'total': 9, 'dataframes': []}
    assert storage.retrieve(offset=0, limit=1, **MARCH,
                            metric_types='image')['total'] == 1


def test_push_takes_the_scope_from_the_argument_or_the_groupby(storage):
    # The pushed scope id wins over the groupby value, and the scope key
    # filters and groups on it.
    storage.push([frame(T0, a=[point(T0, 1, 1, 'p1')])], 'other')
    storage.push([frame(T0, a=[point(T0, 2, 2, 'p1'),
                               point(T0, 4, 4, 'p2')])])
    rows = storage.total(groupby=['project_id'], **MARCH)['results']
    assert [(r['project_id'], r['qty']) for r in rows] == [
        ('other', 1), ('p1', 2), ('p2', 4)]
    found = all_points(storage, filters={'project_id': 'other'}, **MARCH)
    assert [p.qty for _, _, p in found] == [1]
    assert found[0][2].groupby['project_id'] == 'p1'


def _json_types(value):
    """``value`` with each number as ``('number', its value)``: what JSON
    says of it, whether Python holds it as an int, a float or a Decimal."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float, D)):
        return ('number', D(str(value)))
    if isinstance(value, dict):
        return {k: _json_types(v) for k, v in value.items()}
    return [_json_types(v) for v in value]


def test_labels_keep_their_json_types_and_digits(storage):
    groupby = {'project_id': 'p1', 'flag': True, 'off': False, 'none': None,
               'count': 3, 'one': D('1.0'), 'padded': D('1.10'),
               'float': 0.1,
               'long': D('12345678901234567890.123456789012345678901234'),
               'list': [1, 'a', D('2.50'), None], 'nested': {'k': D('0.5')}}
    metadata = {'dummy': True, 'fake_meta': D('1.0'), 'text': '1.0',
                'hundred': D('1E+2')}
    storage.push([frame(T0, a=[dataframe.DataPoint(
        'u', 1, 1, groupby, metadata)])])
    p, = [p for _, _, p in all_points(storage, **MARCH)]
    assert _json_types(dict(p.groupby)) == _json_types(groupby)
    assert _json_types(dict(p.metadata)) == _json_types(metadata)
    # Digit for digit, as far as JSON can tell (no float on the way).
    labels = dataframe.dumps({'groupby': dict(p.groupby),
                              'metadata': dict(p.metadata)}, sort_keys=True)
    assert '"padded": 1.10' in labels and '"one": 1.0' in labels
    assert '"long": 12345678901234567890.123456789012345678901234' in labels
    assert '"fake_meta": 1.0' in labels and '"text": "1.0"' in labels
    assert '"list": [1, "a", 2.50, null]' in labels
    assert '"flag": true' in labels and '"none": null' in labels


def test_push_keeps_instants_and_stores_utc(storage):
    paris = datetime.timezone(datetime.timedelta(hours=2))
    start = datetime.datetime(2024, 3, 1, 2, tzinfo=paris)
    storage.push([frame(start, a=[point(start, 1, 1, 'p')])])
    got, = storage.retrieve(**MARCH)['dataframes']
    assert got.start == T0 and got.start.utcoffset() == datetime.timedelta(0)
    assert got.end == T0 + HOUR


def test_push_rounds_beyond_28_decimals_and_refuses_overflow(storage):
    storage.push([frame(T0, a=[point(
        T0, D('99999999999999999999.9999999999999999999999999999'),
        D('0.00000000000000000000000000015'), 'p')])])
    p, = [p for _, _, p in all_points(storage, **MARCH)]
    assert p.qty == D('99999999999999999999.9999999999999999999999999999')
    assert p.price == D('0.0000000000000000000000000002')
    for qty, price in ((D(10) ** 20, 1), (1, D(10) ** 12)):
        with pytest.raises(v2.InvalidData):
            storage.push([frame(T1, a=[point(T1, 1, 1, 'p'),
                                       point(T1, qty, price, 'p')])])
    # All or nothing.
    assert storage.total(**MARCH)['total'] == 1
    assert len(all_points(storage, **MARCH)) == 1


def test_push_accepts_nothing_and_refuses_non_frames(storage):
    storage.push([])
    storage.push([dataframe.DataFrame(T0, T0 + HOUR)])
    assert storage.retrieve(**MARCH) == {'total': 0, 'dataframes': []}
    with pytest.raises(v2.InvalidData):
        storage.push([{'period': {}}])


# -- total --------------------------------------------------------------------

def _rows(result, *keys):
    return [tuple(row[k] for k in keys) for row in result['results']]


def test_total_without_groupby(storage, loaded):
    result = storage.total(**MARCH)
    assert result == {'total': 1, 'results': [{
        'begin': T0, 'end': T2,
        'qty': D('29.3333333333333333333333333333'),
        'rate': D('1000000000001.8133333333333333333333333333')}]}
    assert str(result['results'][0]['rate']) == (
        '1000000000001.8133333333333333333333333333')
    empty = storage.total(begin=T2 + HOUR, end=T2 + 2 * HOUR)
    assert empty == {'total': 0, 'results': []}


def test_total_sums_decimals_exactly(storage):
    storage.push([frame(T0, a=[point(T0, THIRD, '0.1', 'p')] * 3 + [
        point(T0, 0, '0.1', 'p')] * 7)])
    row, = storage.total(**MARCH)['results']
    assert row['qty'] == D('0.9999999999999999999999999999')
    assert row['rate'] == 1 and str(row['rate']) == '1'


def test_total_groupby_scope_and_type_sorted_bytewise(storage, loaded):
    result = storage.total(groupby=['project_id', 'type'], **MARCH)
    assert result['total'] == 5
    assert _rows(result, 'begin', 'end') == [(T0, T2)] * 5
    assert _rows(result, 'project_id', 'type', 'qty', 'rate') == [
        ('P1', 'image', 3, D('0.03')),
        ('P1', 'instance', THIRD, THIRD),
        ('p1', 'instance', 3, D('0.4')),
        ('p1', 'volume', 21, D('1.0500000000000000000000000001')),
        ('p2', 'instance', 2, BIG_PRICE)]
    assert list(result['results'][0]) == [
        'begin', 'end', 'qty', 'rate', 'project_id', 'type']


def test_total_groupby_time_follows_the_key_order(storage, loaded):
    by_time = storage.total(groupby=['time'], **MARCH)
    assert _rows(by_time, 'begin', 'end', 'qty', 'rate') == [
        (T0, T0 + HOUR, D('14.5'), D('1000000000000.3')),
        (T0 + HOUR, T0 + 2 * HOUR, D('11.5'), D('1.15')),
        (T1, T1 + HOUR, D('3.3333333333333333333333333333'),
         D('0.3633333333333333333333333333'))]
    by_type = storage.total(groupby=['type', 'time'], **MARCH)
    assert by_type['total'] == 6
    assert _rows(by_type, 'type', 'begin', 'qty', 'rate') == [
        ('image', T1, 3, D('0.03')),
        ('instance', T0, 4, D('1000000000000.2999999999999999999999999999')),
        ('instance', T0 + HOUR, 1, D('0.1')),
        ('instance', T1, THIRD, THIRD),
        ('volume', T0, D('10.5'), TINY),
        ('volume', T0 + HOUR, D('10.5'), D('1.05'))]


@pytest.mark.parametrize('groupby, key, expected', [
    ('time-d', 'day_of_the_year', [
        ('61', D('26'), D('1000000000001.45')),
        ('62', D('3.3333333333333333333333333333'),
         D('0.3633333333333333333333333333')),
        ('92', 5, 5)]),
    ('time-w', 'week_of_the_year', [
        ('08', D('29.3333333333333333333333333333'),
         D('1000000000001.8133333333333333333333333333')),
        ('13', 5, 5)]),
    ('time-m', 'month', [
        ('3', D('29.3333333333333333333333333333'),
         D('1000000000001.8133333333333333333333333333')),
        ('4', 5, 5)]),
    ('time-y', 'year', [
        ('2024', D('34.3333333333333333333333333333'),
         D('1000000000006.8133333333333333333333333333'))]),
])
def test_total_groupby_time_keys(storage, loaded, groupby, key, expected):
    result = storage.total(groupby=[groupby], **ALL_TIME)
    assert result['total'] == len(expected)
    assert _rows(result, key, 'qty', 'rate') == expected
    assert _rows(result, 'begin', 'end') == [
        (ALL_TIME['begin'], ALL_TIME['end'])] * len(expected)
    assert storage.total(groupby=[key], **ALL_TIME) == result


def test_total_groupby_label_missing_values_last(storage, loaded):
    result = storage.total(groupby=['id'], **MARCH)
    assert _rows(result, 'id', 'qty', 'rate') == [
        ('i1', 2, D('0.2')), ('i2', 1, D('0.2')), ('i3', 2, BIG_PRICE),
        ('i4', THIRD, THIRD), ('v1', 21, D('1.0500000000000000000000000001')),
        (None, 3, D('0.03'))]
    mixed = storage.total(groupby=['project_id', 'id'], metric_types=[
        'image', 'volume'], **ALL_TIME)
    assert _rows(mixed, 'project_id', 'id', 'qty') == [
        ('P1', None, 3), ('p1', 'v1', 26)]


def test_total_filters_and_metric_types(storage, loaded):
    def total(**kwargs):
        return _rows(storage.total(**MARCH, **kwargs), 'qty', 'rate')

    assert total(metric_types='volume') == [
        (21, D('1.0500000000000000000000000001'))]
    assert total(metric_types=['volume', 'image']) == [
        (24, D('1.0800000000000000000000000001'))]
    assert total(filters={'flavor': ['m1.large', 'm1.small'],
                          'project_id': 'p1'}) == [(3, D('0.4'))]
    assert total(filters={'type': ['image', 'instance'], 'id': 'i4'}) == [
        (THIRD, THIRD)]
    assert total(filters={'volume_type': 'ssd'},
                 metric_types='instance') == []
    assert total(filters={'project_id': []}) == []


def test_total_pagination(storage, loaded):
    everything = storage.total(groupby=['project_id', 'type'], **MARCH)
    page = storage.total(groupby=['project_id', 'type'], offset=2, limit=2,
                         **MARCH)
    assert page == {'total': 5, 'results': everything['results'][2:4]}
    last = storage.total(groupby=['project_id', 'type'], offset=4, limit=2,
                         **MARCH)
    assert last == {'total': 5, 'results': everything['results'][4:]}
    beyond = storage.total(groupby=['project_id', 'type'], offset=9,
                           limit=2, **MARCH)
    assert beyond == {'total': 5, 'results': []}
    unpaginated = storage.total(groupby=['project_id', 'type'], offset=3,
                                limit=1, paginate=False, **MARCH)
    assert unpaginated == everything


def test_total_custom_fields(storage, loaded):
    result = storage.total(groupby=['type'], metric_types='volume',
                           custom_fields='SUM(price) AS cost, sum(qty)',
                           **MARCH)
    assert result['results'] == [{
        'begin': T0, 'end': T2, 'cost': D('1.0500000000000000000000000001'),
        'qty': 21, 'type': 'volume'}]
    default = storage.total(custom_fields='SUM(qty) AS qty, SUM(price) AS '
                            'rate', **MARCH)
    assert default == storage.total(**MARCH)


@pytest.mark.parametrize('kwargs', [
    {'groupby': ['time-h']},
    {'groupby': ['bad key']},
    {'groupby': ['qty']},
    {'filters': {'a"b': 'x'}},
    {'filters': {'id': None}},
    {'filters': ['id']},
    {'custom_fields': 'AVG(qty) AS qty'},
    {'custom_fields': 'SUM(qty); DROP TABLE rated_points'},
    {'begin': T2, 'end': T0},
    {'begin': 'not a date'},
    {'offset': -1},
    {'limit': 0},
])
def test_total_refuses_invalid_queries(storage, kwargs):
    with pytest.raises(v2.InvalidQuery) as caught:
        storage.total(**kwargs)
    assert isinstance(caught.value, ValueError)


# -- delete and replace -------------------------------------------------------

def _remaining(storage):
    return [(start, t, p.groupby.get('project_id'), p.groupby.get('id'))
            for start, t, p in all_points(storage, **ALL_TIME)]


def test_delete_one_scope_period(storage, loaded):
    storage.delete(begin=T0, end=T0 + HOUR, filters={'project_id': 'p1'})
    assert _remaining(storage) == [
        (T0, 'instance', 'p2', 'i3'),
        (T0 + HOUR, 'instance', 'p1', 'i1'),
        (T0 + HOUR, 'volume', 'p1', 'v1'),
        (T1, 'image', 'P1', None), (T1, 'instance', 'P1', 'i4'),
        (T2, 'volume', 'p1', 'v1')]


@pytest.mark.parametrize('kwargs, left', [
    ({'end': T1}, 3),
    ({'begin': T1}, 6),
    ({'begin': T0 + HOUR, 'end': T2}, 5),
    ({}, 0),
    ({'filters': {'project_id': ['p1', 'P1']}}, 1),
])
def test_delete_windows_open_or_closed(storage, loaded, kwargs, left):
    storage.delete(**kwargs)
    begin, end = kwargs.get('begin'), kwargs.get('end')
    scopes = kwargs.get('filters', {}).get('project_id')
    expected = [
        (f.start, t, p.groupby['project_id'], p.groupby.get('id'))
        for f in expected_frames(loaded) for t, p in f.iterpoints()
        if not ((begin is None or f.start >= begin)
                and (end is None or f.start < end)
                and (scopes is None or p.groupby['project_id'] in scopes))]
    assert len(expected) == left
    assert _remaining(storage) == expected


def test_delete_by_type_and_label(storage, loaded):
    storage.delete(filters={'type': 'volume'}, end=T2)
    storage.delete(begin=T0, filters={'flavor': 'm1.small', 'id': 'i1'})
    assert _remaining(storage) == [
        (T0, 'instance', 'p1', 'i2'), (T0, 'instance', 'p2', 'i3'),
        (T1, 'image', 'P1', None), (T1, 'instance', 'P1', 'i4'),
        (T2, 'volume', 'p1', 'v1')]


def test_replace_is_idempotent(storage, loaded):
    scope, first = loaded[0]
    before = storage.total(groupby=['project_id', 'type', 'time'],
                           **ALL_TIME)
    storage.replace(first, scope)
    storage.replace(first, scope)
    assert storage.total(groupby=['project_id', 'type', 'time'],
                         **ALL_TIME) == before
    assert storage.retrieve(**ALL_TIME)['dataframes'] != expected_frames(
        loaded)  # the replaced points now come after p2's in push order
    smaller = frame(T0, instance=[first.itertypes().__next__()[1][0]])
    storage.replace(smaller, scope)
    rows = storage.total(groupby=['project_id', 'type'], begin=T0,
                         end=T0 + HOUR)
    assert _rows(rows, 'project_id', 'type', 'qty') == [
        ('p1', 'instance', 1), ('p2', 'instance', 2)]
    storage.replace(dataframe.DataFrame(T0, T0 + HOUR), scope)
    rows = storage.total(groupby=['project_id'], begin=T0, end=T0 + HOUR)
    assert _rows(rows, 'project_id', 'qty') == [('p2', 2)]
    with pytest.raises(v2.InvalidQuery):
        storage.replace(smaller, None)


def test_replace_many_replaces_each_scope_period_all_or_none(
        storage, loaded):
    before = storage.total(groupby=['project_id', 'type', 'time'],
                           **ALL_TIME)
    # Every scope-period of the data again, in one call: nothing doubles.
    storage.replace_many([(f, scope) for scope, f in loaded])
    assert storage.total(groupby=['project_id', 'type', 'time'],
                         **ALL_TIME) == before
    # Two scopes of one period and another period: each replaced alone.
    storage.replace_many([
        (frame(T0, instance=[point(T0, 7, 1, 'p1', 'i1')]), 'p1'),
        (dataframe.DataFrame(T0, T0 + HOUR), 'p2'),
        (frame(T1, image=[point(T1, 5, 1, 'P1')]), 'P1')])
    rows = storage.total(groupby=['project_id', 'time'], **MARCH)
    assert _rows(rows, 'project_id', 'begin', 'qty') == [
        ('P1', T1, 5), ('p1', T0, 7), ('p1', T0 + HOUR, D('11.5'))]
    # A value the database refuses: none of the frames is stored.
    with pytest.raises(v2.InvalidData):
        storage.replace_many([
            (frame(T0, instance=[point(T0, 1, 1, 'p1', 'i1')]), 'p1'),
            (frame(T1, image=[point(T1, D(10) ** 20, 1, 'P1')]), 'P1')])
    assert storage.total(groupby=['project_id', 'time'], **MARCH) == rows
    with pytest.raises(v2.InvalidQuery, match='overlap'):
        storage.replace_many([
            (frame(T0, a=[point(T0, 1, 1, 'p1')]), 'p1'),
            (dataframe.DataFrame(T0, T0 + 2 * HOUR), 'p1')])
    with pytest.raises(v2.InvalidQuery):
        storage.replace_many([(frame(T0), None)])
    storage.replace_many([])
    assert storage.total(groupby=['project_id', 'time'], **MARCH) == rows


def test_keys_compare_byte_for_byte(storage):
    # Case, trailing spaces and accents make distinct groups, sorted by
    # code point on every database.
    names = ['é', 'a ', 'A', 'a', 'z', 'tab\tand\\']
    storage.push([frame(T0, **{'type ' + n: [
        point(T0, 1, 1, n, resource=n, metadata={'m': n})]}) for n in names])
    expected = sorted(names)
    for groupby, key in (['project_id', 'project_id'], ['id', 'id'],
                         ['type', 'type']):
        rows = storage.total(groupby=[groupby], **MARCH)['results']
        prefix = 'type ' if key == 'type' else ''
        assert [r[key] for r in rows] == [prefix + n for n in expected]
    for n in names:
        found = all_points(storage, filters={'m': n, 'project_id': n},
                           **MARCH)
        assert [p.groupby['id'] for _, _, p in found] == [n]


def test_frames_mixing_scopes(storage):
    mixed = frame(T0, a=[point(T0, 1, 1, 'p2', 'x'),
                         point(T0, 2, 2, 'p1', 'y'),
                         point(T0, 3, 3, 'p2', 'z')],
                  b=[point(T0, 4, 4, 'p1', 'w')])
    storage.push([mixed])
    got, = storage.retrieve(**MARCH)['dataframes']
    # Scope by scope, in the order the scopes first appear.
    assert [(t, p.groupby['id']) for t, p in got.iterpoints()] == [
        ('a', 'x'), ('a', 'z'), ('a', 'y'), ('b', 'w')]
    rows = storage.total(groupby=['project_id'], **MARCH)['results']
    assert _rows({'results': rows}, 'project_id', 'qty') == [
        ('p1', 6), ('p2', 4)]
    storage.delete(filters={'project_id': 'p2'})
    assert [p.qty for _, _, p in all_points(storage, **MARCH)] == [2, 4]
