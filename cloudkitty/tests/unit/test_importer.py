"""The arithmetic of cloudkitty-import-upstream: chunks, months, the
tolerance of the verification, sums of frames, progress lines."""

import datetime
import decimal

from cloudkitty import dataframe
from cloudkitty.importer import rated
from cloudkitty.importer import verify

UTC = datetime.timezone.utc
D = decimal.Decimal


def at(*args):
    return datetime.datetime(*args, tzinfo=UTC)


def test_chunks_cut_at_multiples_of_the_step_since_midnight():
    step = datetime.timedelta(hours=6)
    assert list(rated.chunks(at(2026, 1, 1, 5), at(2026, 1, 1, 19), step)) == [
        (at(2026, 1, 1, 5), at(2026, 1, 1, 6)),
        (at(2026, 1, 1, 6), at(2026, 1, 1, 12)),
        (at(2026, 1, 1, 12), at(2026, 1, 1, 18)),
        (at(2026, 1, 1, 18), at(2026, 1, 1, 19))]
    assert list(rated.chunks(at(2026, 1, 1), at(2026, 1, 3),
                             datetime.timedelta(days=1))) == [
        (at(2026, 1, 1), at(2026, 1, 2)), (at(2026, 1, 2), at(2026, 1, 3))]
    assert list(rated.chunks(at(2026, 1, 1), at(2026, 1, 1), step)) == []


def test_months_cut_at_the_first_of_each_month_across_a_year():
    assert list(verify.months(at(2025, 11, 15, 3), at(2026, 2, 1))) == [
        (at(2025, 11, 15, 3), at(2025, 12, 1)),
        (at(2025, 12, 1), at(2026, 1, 1)),
        (at(2026, 1, 1), at(2026, 2, 1))]


def test_totals_agree_within_the_relative_tolerance_only():
    # 0.1 + 0.2 in floats, against the exact decimal sum.
    assert verify.agree(D('0.3'), D(repr(0.1 + 0.2)), 1e-9)
    assert not verify.agree(D('0.3'), D(repr(0.1 + 0.2)), 0)
    assert verify.agree(D('1000000'), D('1000000.000999'), 1e-9)
    assert not verify.agree(D('1000000'), D('1000000.0011'), 1e-9)
    assert verify.agree(D('0'), D('0'), 0)
    assert not verify.agree(None, D('0'), 1e-9)
    assert verify.agree(None, None, 1e-9)


def frame(start, *points):
    result = dataframe.DataFrame(start, start + datetime.timedelta(hours=1))
    for type_, scope, qty, price in points:
        result.add_point(dataframe.DataPoint(
            'u', qty, price, {'project_id': scope} if scope else {}, {}),
            type_)
    return result


def test_sums_per_scope_and_type_in_decimal_from_float_reprs():
    frames = [frame(at(2026, 1, 1), ('cpu', 'a', 1, 0.1), ('cpu', 'a', 1, 0.2),
                    ('cpu', 'b', 2.5, 1e-7), ('disk', None, 3, 0.0485)),
              frame(at(2026, 1, 1, 1), ('cpu', 'a', 1, 0.1))]
    assert rated.sums(frames, 'project_id') == {
        ('a', 'cpu'): (D(3), D('0.4')),
        ('b', 'cpu'): (D('2.5'), D('1E-7')),
        (None, 'disk'): (D(3), D('0.0485'))}


def test_progress_line_says_points_per_second_and_what_is_left():
    progress = rated.Progress(points=10000, handled=2500, stored=2000,
                              seconds=2.0)
    assert progress.line(at(2026, 1, 1), at(2026, 1, 2), '500 points stored') \
        == ('[2026-01-01 00:00 .. 2026-01-02 00:00) 500 points stored; '
            '2,500/10,000 points, 1,250 points/s, 7,500 left, about 6 s')


def test_table_prints_both_sides_and_flags_differences():
    lines = [verify.Line(at(2026, 1, 1), 'a', 'cpu', (D(3), D('0.3')),
                         (D(3), D('0.3')), True),
             verify.Line(at(2026, 2, 1), None, 'disk', (D(1), D(2)),
                         (None, None), False)]
    assert verify.table(lines).splitlines() == [
        'month    scope  type  qty upstream  qty ours  price upstream  '
        'price ours',
        '2026-01  a      cpu   3             3         0.3             '
        '0.3         ok',
        '2026-02  -      disk  1             -         2               '
        '-           DIFFERS']
