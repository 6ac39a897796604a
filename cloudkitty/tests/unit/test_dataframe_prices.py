"""DataFrame price columns: a frame priced by :meth:`DataFrame.with_prices`
reads, for every consumer, exactly as the frame of the priced points built
one by one would, and :meth:`DataFrame.itercolumns` reads its prices
without building them."""

import copy
import decimal
import pickle
import threading

import pytest

from cloudkitty import dataframe
from cloudkitty.dataframe import DataFrame
from cloudkitty.dataframe import DataPoint

D = decimal.Decimal
START, END = '2024-01-01T00:00:00', '2024-01-01T01:00:00'


def _frame():
    frame = DataFrame(START, END)
    frame.add_points([
        DataPoint('GiB', 50, 0, {'id': 'v1'}, {'az': 'nova'}),
        DataPoint('GiB', '2.5', '0.10', {'id': 'v2'}, {}, 'two'),
        DataPoint('GiB', 0, '-0', {}, {'az': 'az1'}),
    ], 'volume')
    frame.add_points([DataPoint('vm', 1, 3, {'id': 'i1'}, {})], 'instance')
    frame.add_points([DataPoint('img', 7, 0, {}, {})], 'image')
    return frame


# What hashmap gives each point: digits, exponents and signs that a value
# comparison would not tell apart from others.
PRICES = {'volume': [D('0.0490'), D('0.10'), D('-0E-3')],
          'instance': [D('1E+1')]}


def _built(frame, prices):
    """The frame of the priced points built one by one."""
    expected = DataFrame(frame.start, frame.end)
    for type_, points in frame.itertypes():
        column = prices.get(type_, [p.price for p in points])
        expected.add_points([p._replace(price=price)
                             for p, price in zip(points, column)], type_)
    return expected


def _digits(frame):
    return [(type_, [(str(p.qty), str(p.price)) for p in points])
            for type_, points in frame.itertypes()]


def test_a_priced_frame_reads_as_the_points_built_one_by_one():
    frame = _frame()
    expected = _built(frame, PRICES)
    priced = frame.with_prices(PRICES)
    assert len(priced) == len(expected) == 5
    assert repr(priced) == repr(expected)
    assert _digits(priced) == _digits(expected)
    assert list(priced.iterpoints()) == list(expected.iterpoints())
    assert priced == expected and expected == priced
    assert priced.as_dict() == expected.as_dict()
    assert priced.as_dict(legacy=True, mutable=True) == expected.as_dict(
        legacy=True, mutable=True)
    assert priced.json() == expected.json()
    assert DataFrame.from_dict(priced.as_dict()) == expected
    assert all(type(p) is DataPoint for _, p in priced.iterpoints())
    # The frame it was made from is unchanged.
    assert _digits(frame) == _digits(_frame())
    assert priced != frame


@pytest.mark.parametrize('reader', [
    lambda f: list(f.itertypes()), lambda f: list(f.iterpoints()),
    lambda f: f.as_dict(), lambda f: f.json(), lambda f: f == _frame(),
    len, repr, lambda f: list(f.itercolumns())])
def test_every_reader_sees_the_new_prices_first(reader):
    # Whichever reader comes first, what it and the next ones read is the
    # priced frame (the points are built on the first reading by point).
    priced = _frame().with_prices(PRICES)
    reader(priced)
    assert _digits(priced) == _digits(_built(_frame(), PRICES))


def test_columns_read_the_prices_without_building_points():
    frame = _frame()
    priced = frame.with_prices(PRICES)
    columns = list(priced.itercolumns())
    assert [t for t, _, _ in columns] == ['image', 'instance', 'volume']
    by_type = {t: (points, prices) for t, points, prices in columns}
    points, prices = by_type['volume']
    assert [str(p) for p in prices] == ['0.0490', '0.10', '-0.000']
    # The points are the frame's own, not built: their price is the old one.
    assert points == dict(frame.itertypes())['volume']
    assert points[0] is dict(frame.itertypes())['volume'][0]
    assert by_type['image'][1] == [D(0)]
    # The same prices once the points are built.
    list(priced.itertypes())
    assert [[str(p) for p in prices] for _, _, prices
            in priced.itercolumns()] == [['0'], ['1E+1'],
                                         ['0.0490', '0.10', '-0.000']]


def test_prices_of_prices():
    # A priced frame priced again (as the next rating module does): the
    # second column wins, the first is not lost for the other types.
    once = _frame().with_prices({'volume': [D(1), D(2), D(3)]})
    twice = once.with_prices({'instance': [D('0.5')]})
    expected = _built(_built(_frame(), {'volume': [D(1), D(2), D(3)]}),
                      {'instance': [D('0.5')]})
    assert _digits(twice) == _digits(expected)
    assert [str(p) for p in dict(
        (t, c) for t, _, c in once.itercolumns())['volume']] == ['1', '2', '3']


def test_points_added_to_a_priced_type_keep_every_price():
    priced = _frame().with_prices(PRICES)
    extra = DataPoint('GiB', 1, 5, {}, {})
    priced.add_point(extra, 'volume')
    priced.add_points([extra], 'volume')
    volume = dict(priced.itertypes())['volume']
    assert [str(p.price) for p in volume] == [
        '0.0490', '0.10', '-0.000', '5', '5']


def test_a_point_keeping_its_price_is_kept_itself():
    frame = _frame()
    points = dict(frame.itertypes())['volume']
    priced = frame.with_prices({'volume': [points[0].price, D(1), D(2)]})
    built = dict(priced.itertypes())['volume']
    assert built[0] is points[0] and built[1] is not points[1]


def test_a_priced_frame_survives_pickle_and_copy():
    priced = _frame().with_prices(PRICES)
    expected = _built(_frame(), PRICES)
    assert _digits(pickle.loads(pickle.dumps(priced))) == _digits(expected)
    assert _digits(copy.deepcopy(priced)) == _digits(expected)


def test_threads_reading_at_once_all_see_the_prices():
    for _ in range(20):
        priced = _frame().with_prices(PRICES)
        seen = []
        threads = [threading.Thread(target=lambda: seen.append(
            _digits(priced))) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert seen == [_digits(_built(_frame(), PRICES))] * 4


@pytest.mark.parametrize('prices, error', [
    ({'volume': [D(1), D(2)]}, ValueError),
    ({'volume': [D(1), D(2), D(3), D(4)]}, ValueError),
    ({'network': [D(1)]}, KeyError),
    ({'instance': [1]}, TypeError),
    ({'instance': [0.5]}, TypeError),
    ({'instance': ['1']}, TypeError),
    ({'instance': [D('NaN')]}, ValueError),
    ({'instance': [D('-Infinity')]}, ValueError),
])
def test_bad_columns_are_refused(prices, error):
    frame = _frame()
    with pytest.raises(error):
        frame.with_prices(prices)
    assert _digits(frame) == _digits(_frame())


@pytest.mark.parametrize('prices, error', [
    ({'volume': [D(1), D(2)]}, ValueError),
    ({'network': [D(1)]}, KeyError),
])
def test_columns_vouched_finite_are_still_counted(prices, error):
    # finite=True spares the look at each price, not the lengths.
    with pytest.raises(error):
        _frame().with_prices(prices, finite=True)


def test_columns_vouched_finite_price_as_checked_ones():
    assert _digits(_frame().with_prices(PRICES, finite=True)) == \
        _digits(_frame().with_prices(PRICES))


def test_an_empty_frame_and_no_column():
    empty = DataFrame(START, END)
    assert list(empty.with_prices({}).itercolumns()) == []
    assert empty.with_prices({}) == empty
    frame = _frame()
    assert frame.with_prices({}) == frame
    assert dataframe.DataFrame(START, END).with_prices({}).start == \
        empty.start
