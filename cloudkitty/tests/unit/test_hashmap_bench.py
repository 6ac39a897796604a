"""The hashmap benchmark's arithmetic: what its figures leave out.

``benchmarks/hashmap_bench.py`` reads and sums every price a pass made
(its check that every pass prices alike); its pricing figures must leave
that reading out, and its figures with the reading must not.
"""

import datetime
import decimal
import pytest

from cloudkitty import dataframe
from cloudkitty.tests import scripts

START = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)


@pytest.fixture(scope='module')
def bench():
    return scripts.load('benchmarks/hashmap_bench.py')


def _priced_frame(points):
    frame = dataframe.DataFrame(START, START + datetime.timedelta(hours=1))
    frame.add_points([dataframe.DataPoint('u', 1, 0, {}, {})] * points, 'a')
    return frame.with_prices({'a': [decimal.Decimal('0.125')] * points})


def test_a_tally_counts_and_sums_every_price(bench):
    tally = bench.Tally()
    tally.read(_priced_frame(3))
    tally.read(_priced_frame(5))
    assert (tally.count, str(tally.total)) == (8, '1.000')
    assert tally.cpu > 0 and tally.wall > 0


def test_the_pricing_figures_leave_the_reading_out(bench):
    # A "pricing" that is all reading: its pricing figures are far above
    # its figures with the reading, which they would equal if the reading
    # were not left out.
    frame = _priced_frame(200_000)

    def price(_rules, _data):
        tally = bench.Tally()
        tally.read(frame)
        return tally

    figures = bench._cold_and_warm(1, None, price, lambda _data: None)
    for kind in ('cold', 'warm'):
        assert figures[kind]['cpu_points_per_second'] > \
            3 * figures[kind]['read_cpu_points_per_second']


def test_passes_that_price_differently_fail(bench):
    sums = iter([decimal.Decimal(1), decimal.Decimal(2)])

    def price(_rules, _data):
        tally = bench.Tally()
        tally.count, tally.total = 1, next(sums)
        return tally

    with pytest.raises(AssertionError):
        bench._cold_and_warm(1, None, price, lambda _data: None)
