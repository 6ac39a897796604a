"""The sums by month (``rated_monthly_totals``): totals over windows made
of whole months, whole days and ragged hours are those of the points, on
SQLite, PostgreSQL and MariaDB, after pushes, replaces and deletes; a
whole month is read from its monthly sums alone."""

import datetime
import decimal

import sqlalchemy as sa

from cloudkitty import dataframe
from cloudkitty.db import migration

UTC = datetime.timezone.utc
HOUR = datetime.timedelta(hours=1)
D = decimal.Decimal


def at(month, day=1, hour=0):
    return datetime.datetime(2024, month, day, hour, tzinfo=UTC)


#: The hours pushed: month and year edges, and inside months.
HOURS = [at(1, 31, 23), at(2), at(2, 10, 5), at(2, 29, 23), at(3),
         at(3, 15, 12), at(3, 31, 23), at(4)]
#: Windows: whole months alone, with whole days, with ragged hours, and
#: across years.
WINDOWS = [(at(2), at(3)), (at(2), at(4)), (at(1, 31), at(3, 2)),
           (at(2, 1, 1), at(3)), (at(1, 15, 7), at(4, 1, 1)),
           (at(2, 2), at(2, 29)), (at(3), at(3, 31, 23)),
           (datetime.datetime(2000, 1, 1, tzinfo=UTC), at(3)),
           (at(2, 10), datetime.datetime(2100, 1, 1, tzinfo=UTC))]


def frame(start, scope, resources, price):
    return dataframe.DataFrame(start, start + HOUR, {type_: [
        dataframe.DataPoint('u', D(f'1.{i}'), D(price) * (i + 1),
                            {'project_id': scope, 'id': r}, {})
        for i, r in enumerate(resources)] for type_ in ('instance', 'volume')})


def expected(points, begin, end):
    """``{(scope, type): (qty, price)}`` of ``points`` (``{(scope, type,
    start): (qty, price)}``) in ``[begin, end)``."""
    sums = {}
    for (scope, type_, start), (qty, price) in points.items():
        if begin <= start < end:
            old = sums.get((scope, type_), (0, 0))
            sums[scope, type_] = (old[0] + qty, old[1] + price)
    return sums


def totals(storage, begin, end):
    result = storage.total(groupby=['project_id', 'type'], begin=begin,
                           end=end)
    rows = {(row['project_id'], row['type']): (row['qty'], row['rate'])
            for row in result['results']}
    assert result['total'] == len(rows)
    return rows


def check(storage, points):
    for begin, end in WINDOWS:
        assert totals(storage, begin, end) == expected(points, begin, end), (
            begin, end)


def push(storage, points, start, scope, resources, price):
    storage.push([frame(start, scope, resources, price)], scope)
    for type_ in ('instance', 'volume'):
        points[scope, type_, start] = (
            sum(D(f'1.{i}') for i in range(len(resources))),
            sum(D(price) * (i + 1) for i in range(len(resources))))


def test_totals_over_months_days_and_hours_follow_every_write(storage):
    points = {}
    for n, start in enumerate(HOURS):
        for scope in ('p1', 'p2'):
            push(storage, points, start, scope, ['a', 'b'], f'0.{n + 1}')
    check(storage, points)
    # A replace inside February, another across the end of March.
    storage.replace(frame(at(2, 10, 5), 'p1', ['c'], '7'), 'p1')
    storage.replace(frame(at(3, 31, 23), 'p2', ['a', 'b', 'c'], '0.3'), 'p2')
    for type_ in ('instance', 'volume'):
        points['p1', type_, at(2, 10, 5)] = (D('1.0'), D('7'))
        points['p2', type_, at(3, 31, 23)] = (D('3.3'), D('1.8'))
    check(storage, points)
    # Deletes: a scope's February, then every point of a whole day.
    storage.delete(begin=at(2), end=at(3), filters={'project_id': 'p2'})
    storage.delete(begin=at(3, 15), end=at(3, 16))
    points = {key: value for key, value in points.items()
              if not (key[0] == 'p2' and at(2) <= key[2] < at(3))
              and not at(3, 15) <= key[2] < at(3, 16)}
    check(storage, points)
    # Everything of p1 gone: its monthly rows too.
    storage.delete(filters={'project_id': 'p1'})
    points = {key: value for key, value in points.items() if key[0] != 'p1'}
    check(storage, points)
    with storage.engine.connect() as conn:
        assert conn.execute(sa.text(
            "SELECT COUNT(*) FROM rated_monthly_totals WHERE scope_id = 'p1'"
        )).scalar() == 0


def test_a_whole_month_reads_its_monthly_sums_alone(storage):
    points = {}
    for n, start in enumerate(HOURS):
        push(storage, points, start, 'p1', ['a'], f'0.{n + 1}')
    sent = []

    def record(conn, cursor, statement, *args):
        sent.append(statement)
    sa.event.listen(storage.engine, 'before_cursor_execute', record)
    try:
        assert totals(storage, at(2), at(3)) == expected(points, at(2), at(3))
    finally:
        sa.event.remove(storage.engine, 'before_cursor_execute', record)
    read = ' '.join(sent)
    assert 'rated_monthly_totals' in read
    assert 'rated_daily_totals' not in read and 'rated_points' not in read


def test_the_migration_sums_the_months_of_the_stored_days(storage):
    points = {}
    for n, start in enumerate(HOURS):
        for scope in ('p1', 'p2'):
            push(storage, points, start, scope, ['a', 'b'], f'0.{n + 1}')
    migration.downgrade(storage.engine, '0011')
    migration.upgrade(storage.engine)
    with storage.engine.connect() as conn:
        rows = conn.execute(sa.text(
            'SELECT COUNT(*) FROM rated_monthly_totals')).scalar()
    assert rows == 2 * 2 * 4  # scopes, types, January to April
    check(storage, points)


def test_monthly_sums_hold_sums_wider_than_a_day(storage):
    """Two days of the largest quantity a day holds, in one month (the
    sum is exact: wider than the default context's 28 digits)."""
    largest = D('99999999999999999999.9999999999999999999999999999')
    for day in (1, 2):
        storage.push([dataframe.DataFrame(at(2, day), at(2, day) + HOUR, {
            'instance': [dataframe.DataPoint('u', largest, 1,
                                             {'project_id': 'p'}, {})]})],
                     'p')
    assert totals(storage, at(2), at(3)) == {('p', 'instance'): (
        D('199999999999999999999.9999999999999999999999999998'), 2)}


def test_the_pages_of_a_month_are_the_slices_of_its_groups(storage):
    points = {}
    for scope in ('p3', 'P1', 'p2', 'p10', 'p1'):
        for start in (at(2), at(2, 20, 5), at(3)):
            push(storage, points, start, scope, ['a'], '0.5')
    groups = sorted(expected(points, at(2), at(3)).items())
    for offset, limit in ((0, 100), (0, 3), (3, 4), (8, 5), (10, 1)):
        page = storage.total(groupby=['project_id', 'type'], begin=at(2),
                             end=at(3), offset=offset, limit=limit)
        assert page['total'] == 10
        assert [((row['project_id'], row['type']), (row['qty'], row['rate']))
                for row in page['results']] == groups[offset:offset + limit]
