"""DataPoint and DataFrame, rule by rule (collect.md section 1)."""

import copy
import datetime
import decimal
import json
import pickle

import pytest

from cloudkitty import dataframe
from cloudkitty.dataframe import DataFrame
from cloudkitty.dataframe import DataPoint

D = decimal.Decimal
UTC = datetime.timezone.utc
START = datetime.datetime(2019, 7, 23, 12, 0, tzinfo=UTC)
END = datetime.datetime(2019, 7, 23, 13, 0, tzinfo=UTC)


def point(**kwargs):
    fields = dict(unit='instance', qty=1, price=0, groupby={'id': 'vm-1'},
                  metadata={'flavor': 'm1.tiny'}, description=None)
    fields.update(kwargs)
    return DataPoint(**fields)


# --- DataPoint: fields and conversions ----------------------------------------

def test_fields_in_order():
    assert DataPoint._fields == ('unit', 'qty', 'price', 'groupby',
                                 'metadata', 'description')
    p = DataPoint('u', 1, 2, {'a': 'b'}, {'c': 'd'}, 'desc')
    assert tuple(p)[:3] == ('u', D(1), D(2))
    assert p.description == 'desc'


def test_description_defaults_to_none():
    assert DataPoint('u', 1, 0, {}, {}).description is None


@pytest.mark.parametrize('unit', ['', None])
def test_empty_unit_becomes_undefined(unit):
    assert point(unit=unit).unit == 'undefined'


@pytest.mark.parametrize('value, expected', [
    (1, D('1')),
    (-3, D('-3')),
    ('2.50', D('2.50')),
    (' 7 ', D('7')),
    (D('0.123456789012345678901234567890123'),
     D('0.123456789012345678901234567890123')),
    # a float through str(), not 0.1000000000000000055...
    (0.1, D('0.1')),
    (1e-7, D('1E-7')),
    (2.675, D('2.675')),
    (1.0, D('1.0')),
])
def test_qty_and_price_are_decimals(value, expected):
    p = point(qty=value, price=value)
    assert type(p.qty) is D and type(p.price) is D
    assert p.qty == expected and p.price == expected
    assert str(p.qty) == str(expected)


def test_float_never_goes_through_binary_expansion():
    assert point(qty=0.1).qty != D(0.1)
    assert point(qty=0.1).qty + point(qty=0.2).qty == D('0.3')


@pytest.mark.parametrize('bad', ['abc', None, True, False, [], {}, 'NaN',
                                 'Infinity', float('nan'), float('inf'),
                                 D('NaN'), D('-Infinity')])
def test_bad_numbers_are_refused(bad):
    with pytest.raises(ValueError):
        point(qty=bad)
    with pytest.raises(ValueError):
        point(price=bad)


def test_to_decimal_returns_the_same_decimal():
    value = D('1.5')
    assert dataframe.to_decimal(value) is value


# --- DataPoint: immutability --------------------------------------------------

def test_point_is_immutable():
    p = point()
    with pytest.raises(AttributeError):
        p.qty = D(2)
    with pytest.raises(TypeError):
        p.groupby['id'] = 'other'
    with pytest.raises(TypeError):
        p.metadata['new'] = 'x'
    with pytest.raises(TypeError):
        p[1] = 3


def test_labels_are_copied_from_the_caller():
    groupby, metadata = {'id': 'vm-1'}, {'flavor': 'a'}
    p = point(groupby=groupby, metadata=metadata)
    groupby['id'] = 'changed'
    metadata['flavor'] = 'changed'
    assert p.groupby == {'id': 'vm-1'} and p.metadata == {'flavor': 'a'}


def test_none_labels_are_empty_mappings():
    p = DataPoint('u', 1, 0, None, None)
    assert dict(p.groupby) == {} and dict(p.metadata) == {}


def test_set_price_returns_a_new_point():
    p = point(price=1)
    q = p.set_price(0.3)
    assert p.price == D(1)
    assert q.price == D('0.3') and type(q.price) is D
    assert q._replace(price=p.price) == p
    assert q.groupby == p.groupby and q.description == p.description


def test_set_price_refuses_a_bad_price():
    with pytest.raises(ValueError):
        point().set_price('free')


def test_point_survives_pickle_and_copy():
    p = point(description='d')
    assert pickle.loads(pickle.dumps(p)) == p
    assert copy.deepcopy(p) == p
    assert copy.copy(p) == p


# --- DataPoint: desc ------------------------------------------------------------

def test_desc_merges_metadata_and_groupby_groupby_wins():
    p = point(groupby={'id': 'vm-1', 'flavor': 'from-groupby'},
              metadata={'flavor': 'from-metadata', 'image': 'cirros'})
    assert dict(p.desc) == {'id': 'vm-1', 'flavor': 'from-groupby',
                            'image': 'cirros'}
    with pytest.raises(TypeError):
        p.desc['id'] = 'x'


# --- DataPoint: as_dict / json --------------------------------------------------

def test_as_dict():
    p = point(qty='1.5', price='0.25')
    assert p.as_dict() == {
        'vol': {'unit': 'instance', 'qty': D('1.5')},
        'rating': {'price': D('0.25')},
        'groupby': {'id': 'vm-1'},
        'metadata': {'flavor': 'm1.tiny'},
    }


def test_as_dict_is_read_only_unless_mutable():
    frozen = point().as_dict()
    with pytest.raises(TypeError):
        frozen['vol'] = {}
    with pytest.raises(TypeError):
        frozen['vol']['qty'] = 3
    with pytest.raises(TypeError):
        frozen['groupby']['id'] = 3
    mutable = point().as_dict(mutable=True)
    for key in ('vol', 'rating', 'groupby', 'metadata'):
        assert type(mutable[key]) is dict
    mutable['groupby']['id'] = 'changed'
    mutable['vol']['qty'] = 5
    assert point().groupby['id'] == 'vm-1'


def test_as_dict_legacy_merges_labels_into_desc():
    p = point(groupby={'id': 'vm-1', 'k': 'g'}, metadata={'k': 'm', 'x': 1})
    legacy = p.as_dict(legacy=True, mutable=True)
    assert set(legacy) == {'vol', 'rating', 'desc'}
    assert legacy['desc'] == {'id': 'vm-1', 'k': 'g', 'x': 1}
    assert type(legacy['desc']) is dict


def test_as_dict_carries_the_description():
    assert point(description='Instances').as_dict()['description'] == \
        'Instances'
    assert 'description' not in point().as_dict()


def test_json_writes_decimals_as_numbers_digit_for_digit():
    p = point(qty=D('0.10000000000000000000000000001'), price='1E+3')
    text = p.json()
    assert '"qty": 0.10000000000000000000000000001' in text
    loaded = json.loads(text, parse_float=D)
    assert loaded['vol']['qty'] == D('0.10000000000000000000000000001')
    assert loaded['rating']['price'] == D('1000')
    assert loaded['groupby'] == {'id': 'vm-1'}


def test_json_legacy():
    loaded = json.loads(point().json(legacy=True))
    assert loaded['desc'] == {'id': 'vm-1', 'flavor': 'm1.tiny'}
    assert 'groupby' not in loaded


def test_json_does_not_turn_lookalike_strings_into_numbers():
    text = dataframe.dumps({'a': '\x00decimal:1', 'b': D('2')})
    assert json.loads(text) == {'a': '\x00decimal:1', 'b': 2}


def test_dumps_datetimes_and_proxies():
    p = point()
    text = dataframe.dumps({'when': START, 'labels': p.groupby})
    assert json.loads(text) == {'when': '2019-07-23T12:00:00+00:00',
                                'labels': {'id': 'vm-1'}}
    with pytest.raises(TypeError):
        dataframe.dumps({'x': object()})


# --- DataPoint: from_dict ----------------------------------------------------------

def test_from_dict_round_trips():
    p = point(qty='2.5', price='0.125', description='d')
    assert DataPoint.from_dict(p.as_dict()) == p
    assert DataPoint.from_dict(p.as_dict(mutable=True)) == p
    assert DataPoint.from_dict(json.loads(p.json())) == p


def test_from_dict_legacy_round_trip():
    p = point(groupby={'id': 'vm-1'}, metadata={'flavor': 'x'})
    back = DataPoint.from_dict(p.as_dict(legacy=True), legacy=True)
    assert back.desc == p.desc
    assert dict(back.groupby) == {'id': 'vm-1', 'flavor': 'x'}


def test_from_dict_defaults():
    p = DataPoint.from_dict({'vol': {'unit': 'GiB', 'qty': 3}})
    assert p.price == D(0) and type(p.price) is D
    assert p.groupby == {} and p.metadata == {}
    assert p.description is None
    assert DataPoint.from_dict({'vol': {'unit': 'u', 'qty': 1},
                                'rating': {}}).price == D(0)


@pytest.mark.parametrize('qty, expected', [
    (3, D('3')), ('4.20', D('4.20')), (0.1, D('0.1')), (D('5'), D('5')),
])
def test_from_dict_coerces_qty_through_str(qty, expected):
    got = DataPoint.from_dict({'vol': {'unit': 'u', 'qty': qty}}).qty
    assert got == expected and str(got) == str(expected)


def test_from_dict_empty_unit():
    assert DataPoint.from_dict({'vol': {'unit': '', 'qty': 1}}).unit == \
        'undefined'
    assert DataPoint.from_dict({'vol': {'unit': None, 'qty': 1}}).unit == \
        'undefined'


@pytest.mark.parametrize('bad, key', [
    ({}, "['vol']"),
    ({'vol': {'unit': 'u'}}, "['qty']"),
    ({'vol': {'qty': 1}}, "['unit']"),
    ({'vol': {'unit': 'u', 'qty': 'lots'}}, "['qty']"),
    ({'vol': {'unit': 'u', 'qty': True}}, "['qty']"),
    ({'vol': {'unit': 'u', 'qty': None}}, "['qty']"),
    ({'vol': {'unit': 3, 'qty': 1}}, "['unit']"),
    ({'vol': {'unit': 'u', 'qty': 1}, 'rating': {'price': 'x'}}, "['price']"),
    ({'vol': {'unit': 'u', 'qty': 1}, 'groupby': {1: 'a'}}, "['groupby']"),
    ({'vol': {'unit': 'u', 'qty': 1}, 'metadata': []}, "['metadata']"),
    ({'vol': {'unit': 'u', 'qty': 1}, 'other': 1}, "['other']"),
    ('not a dict', ''),
    (None, ''),
])
def test_from_dict_validation_errors_name_the_key(bad, key):
    with pytest.raises(ValueError) as info:
        DataPoint.from_dict(bad)
    assert 'invalid data point' in str(info.value)
    assert key in str(info.value)


def test_from_dict_legacy_refuses_groupby():
    with pytest.raises(ValueError):
        DataPoint.from_dict({'vol': {'unit': 'u', 'qty': 1},
                             'groupby': {}}, legacy=True)


# --- DataFrame --------------------------------------------------------------------------

def frame():
    f = DataFrame(START, END)
    f.add_point(point(qty=1), 'volume')
    f.add_points([point(qty=2), point(qty=3)], 'instance')
    f.add_point(point(qty=4), 'image')
    return f


def test_frame_period_is_timezone_aware():
    f = DataFrame(datetime.datetime(2019, 1, 1), '2019-01-01T01:00:00')
    assert f.start == datetime.datetime(2019, 1, 1, tzinfo=UTC)
    assert f.end == datetime.datetime(2019, 1, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize('text, expected', [
    ('20190723T122810Z', datetime.datetime(2019, 7, 23, 12, 28, 10,
                                           tzinfo=UTC)),
    ('2019-07-23T12:28:10Z', datetime.datetime(2019, 7, 23, 12, 28, 10,
                                               tzinfo=UTC)),
    ('2019-07-23T14:28:10+02:00', datetime.datetime(2019, 7, 23, 12, 28, 10,
                                                    tzinfo=UTC)),
    ('2019-07-23', datetime.datetime(2019, 7, 23, tzinfo=UTC)),
])
def test_frame_accepts_iso_strings(text, expected):
    f = DataFrame(text, '2030-01-01')
    assert f.start == expected
    assert f.start.utcoffset() is not None


@pytest.mark.parametrize('bad', ['yesterday', '', None, 12, '2019-13-45'])
def test_frame_refuses_bad_dates(bad):
    with pytest.raises(ValueError):
        DataFrame(bad, END)


def test_frame_refuses_end_before_start():
    with pytest.raises(ValueError):
        DataFrame(END, START)


def test_itertypes_sorted_points_in_insertion_order():
    f = frame()
    types_ = [(t, [p.qty for p in points]) for t, points in f.itertypes()]
    assert types_ == [('image', [D(4)]), ('instance', [D(2), D(3)]),
                      ('volume', [D(1)])]


def test_iterpoints_follows_itertypes():
    assert [(t, p.qty) for t, p in frame().iterpoints()] == [
        ('image', D(4)), ('instance', D(2)), ('instance', D(3)),
        ('volume', D(1))]


def test_add_point_refuses_non_points():
    f = DataFrame(START, END)
    with pytest.raises(TypeError):
        f.add_point({'vol': {}}, 'x')
    with pytest.raises(TypeError):
        f.add_points([point(), 'nope'], 'x')
    assert len(f) == 0


def test_add_points_accepts_an_iterator():
    f = DataFrame(START, END)
    f.add_points((point(qty=i) for i in range(3)), 'gen')
    assert len(f) == 3
    assert [p.qty for _, p in f.iterpoints()] == [D(0), D(1), D(2)]


def test_empty_types_are_not_listed():
    f = DataFrame(START, END)
    f.add_points([], 'nothing')
    assert list(f.itertypes()) == [] and list(f.iterpoints()) == []


def test_frame_as_dict():
    f = frame()
    d = f.as_dict()
    assert d['period'] == {'begin': START, 'end': END}
    assert list(d['usage']) == ['image', 'instance', 'volume']
    assert d['usage']['instance'][1] == point(qty=3).as_dict()
    with pytest.raises(TypeError):
        d['period']['begin'] = END
    mutable = f.as_dict(mutable=True)
    assert type(mutable) is dict and type(mutable['usage']) is dict
    assert type(mutable['usage']['image'][0]['vol']) is dict


def test_frame_as_dict_legacy():
    legacy = frame().as_dict(legacy=True, mutable=True)
    assert legacy['usage']['volume'][0]['desc'] == {'id': 'vm-1',
                                                    'flavor': 'm1.tiny'}


def test_frame_json_round_trip():
    f = frame()
    loaded = json.loads(f.json())
    assert loaded['period'] == {'begin': '2019-07-23T12:00:00+00:00',
                                'end': '2019-07-23T13:00:00+00:00'}
    assert loaded['usage']['image'][0]['vol'] == {'unit': 'instance',
                                                  'qty': 4}
    assert DataFrame.from_dict(loaded) == f
    assert DataFrame.from_dict(f.as_dict()) == f
    assert DataFrame.from_dict(f.as_dict(mutable=True)) == f


def test_frame_legacy_round_trip():
    f = frame()
    back = DataFrame.from_dict(json.loads(f.json(legacy=True)), legacy=True)
    assert [p.desc for _, p in back.iterpoints()] == \
        [p.desc for _, p in f.iterpoints()]


def test_frame_from_dict_with_compact_dates_and_no_usage():
    f = DataFrame.from_dict({'period': {'begin': '20190723T122810Z',
                                        'end': '20190723T132810Z'}})
    assert f.start == datetime.datetime(2019, 7, 23, 12, 28, 10, tzinfo=UTC)
    assert len(f) == 0


@pytest.mark.parametrize('bad', [
    None,
    [],
    {},
    {'usage': {}},
    {'period': {'begin': '2019-01-01'}},
    {'period': {'begin': 'x', 'end': '2019-01-01'}},
    {'period': {'begin': '2019-01-01', 'end': '2019-01-02'}, 'usage': ['a']},
    {'period': {'begin': '2019-01-01', 'end': '2019-01-02'},
     'usage': {'a': {'vol': {}}}},
    {'period': {'begin': '2019-01-01', 'end': '2019-01-02'},
     'usage': {'a': [{'vol': {'unit': 'u'}}]}},
])
def test_frame_from_dict_errors(bad):
    with pytest.raises(ValueError):
        DataFrame.from_dict(bad)


def test_frame_equality():
    assert frame() == frame()
    other = frame()
    other.add_point(point(), 'extra')
    assert other != frame()
    assert frame() != 'frame'
    assert DataFrame(START, END) != DataFrame(START, END +
                                              datetime.timedelta(1))


def test_frame_built_with_usage():
    f = DataFrame(START, END, usage={'b': [point()], 'a': [point(qty=2)]})
    assert [t for t, _ in f.itertypes()] == ['a', 'b']
    assert 'a' in repr(f)
