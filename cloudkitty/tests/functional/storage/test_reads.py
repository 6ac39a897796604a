"""The reads of the sqlalchemy backend at scale: the point counts kept
beside the sums, retrieve's total, and totals grouped by labels, identical
on SQLite, PostgreSQL and MariaDB."""

import datetime
import decimal

import pytest
import sqlalchemy as sa

from cloudkitty import dataframe
from cloudkitty.db import migration

UTC = datetime.timezone.utc
HOUR = datetime.timedelta(hours=1)
T0 = datetime.datetime(2024, 3, 1, tzinfo=UTC)
WINDOW = {'begin': T0, 'end': T0 + 72 * HOUR}


def frame(start, scope, resources, types=('instance', 'volume')):
    """Points of ``resources`` in each of ``types``; ``scope`` None leaves
    project_id out."""
    groupby = {} if scope is None else {'project_id': scope}
    return dataframe.DataFrame(start, start + HOUR, {type_: [
        dataframe.DataPoint('u', 1, '0.5', {**groupby, 'id': r}, {})
        for r in resources] for type_ in types})


def stored_counts(storage):
    """``(rated_totals counts, counted points)`` by (batch, type), after
    checking that each daily count is the sum of its ``rated_totals``."""
    with storage.engine.connect() as conn:
        def rows(sql):
            return conn.execute(sa.text(sql)).all()
        daily = {(r[0], r[1], str(r[2])[:10]): r[3] for r in rows(
            'SELECT scope_id, type, day, points FROM rated_daily_totals')}
        expected = {}
        for scope, type_, begin, points in rows(
                'SELECT scope_id, type, period_begin, points FROM '
                'rated_totals WHERE scope_id IS NOT NULL'):
            key = (scope, type_, str(begin)[:10])
            expected[key] = expected.get(key, 0) + points
        assert daily == expected
        totals = {(r[0], r[1]): r[2] for r in rows(
            'SELECT batch_id, type, points FROM rated_totals')}
        counted = {(r[0], r[1]): r[2] for r in rows(
            'SELECT batch_id, type, COUNT(*) FROM rated_points '
            'GROUP BY batch_id, type')}
    return totals, counted


def test_point_counts_follow_every_write(storage):
    """Pushes (one scope, several, none), replaces and deletes by window,
    scope, type and label keep ``points`` equal to the points stored."""
    storage.push([frame(T0 + h * 5 * HOUR, 'p1', ['a', 'b', 'c'])
                  for h in range(10)], 'p1')
    mixed = frame(T0, 'p2', ['a', 'b'])
    for _, point in list(mixed.iterpoints()):
        mixed.add_point(point._replace(groupby={'project_id': 'p3'}),
                        'instance')
    storage.push([mixed, frame(T0 + HOUR, None, ['x'])])
    totals, counted = stored_counts(storage)
    assert totals == counted and sum(totals.values()) == 60 + 6 + 2 + 2
    storage.replace(frame(T0, 'p1', ['d']), 'p1')
    storage.delete(filters={'id': 'a'}, begin=T0 + 20 * HOUR)
    storage.delete(begin=T0 + 30 * HOUR,
                   filters={'type': 'volume', 'project_id': 'p1'})
    totals, counted = stored_counts(storage)
    assert totals == counted and sum(totals.values()) == 46


def test_point_counts_are_computed_by_the_migration(storage):
    storage.push([frame(T0 + h * 12 * HOUR, 'p1', ['a', 'b'])
                  for h in range(4)] + [frame(T0, None, ['c'])])
    migration.downgrade(storage.engine, '0007')
    assert 'points' not in {c['name'] for c in sa.inspect(
        storage.engine).get_columns('rated_totals')}
    storage.init()
    totals, counted = stored_counts(storage)
    assert totals == counted and sum(totals.values()) == 18
    assert storage.retrieve(**WINDOW, limit=1)['total'] == 18


def varied(storage):
    """Points of 3 scopes and none, 3 types, periods of 1 and 2 hours
    starting at the same time, a label ``user`` of 3 values; returns the
    number stored."""
    frames = []
    for h in range(0, 30, 3):
        for length in (1, 2):
            begin = T0 + h * HOUR
            frame = dataframe.DataFrame(begin, begin + length * HOUR)
            for i in range(h % 7 + length):
                for scope in ('p1', 'p2', 'p3', None):
                    groupby = {'id': f'r{i}', 'user': f'u{(i + h) % 3}'}
                    if scope is not None:
                        groupby['project_id'] = scope
                    frame.add_point(dataframe.DataPoint(
                        'u', i + 1, f'0.{h}{i}', groupby, {}),
                        ('instance', 'volume', 'image')[(i + h) % 3])
            frames.append(frame)
    storage.push(frames)
    return sum(len(f) for f in frames)


def points_of(result):
    return [(f.start, f.end, t, p) for f in result['dataframes']
            for t, p in f.iterpoints()]


QUERIES = [
    {},
    {'filters': {'project_id': 'p2'}},
    {'metric_types': ['volume', 'image']},
    {'filters': {'user': 'u1'}},
    {'filters': {'user': ['u0', 'u2'], 'project_id': ['p1', 'p3']},
     'metric_types': 'instance'},
    {'filters': {'user': 'nobody'}},
    {'begin': T0 + 7 * HOUR, 'end': T0 + 19 * HOUR},
]


def test_retrieve_pages_are_the_slices_of_every_point(storage):
    """Every page of every size is the slice of the whole answer, in
    order; the total is exact without label filters and on the last page,
    an upper bound otherwise, and 0 only when nothing matches."""
    stored = varied(storage)
    for query in QUERIES:
        kwargs = {**WINDOW, **query}
        everything = points_of(storage.retrieve(paginate=False, **kwargs))
        exact = len(everything)
        for limit in (1, 10, 17, 1000):
            # Every page (of 1 point: one in 7), the first past the end and
            # one far beyond.
            step = limit if limit > 1 else 7
            for offset in [*range(0, exact + limit + 1, step),
                           exact + 3 * limit]:
                result = storage.retrieve(offset=offset, limit=limit,
                                          **kwargs)
                page = points_of(result)
                assert page == everything[offset:offset + limit], (
                    query, offset, limit)
                total = result['total']
                if 'filters' not in query or set(query['filters']) == {
                        'project_id'} or offset + limit > exact:
                    assert total == exact, (query, offset, limit)
                else:
                    assert exact <= total <= stored, (query, offset, limit)
                assert (total == 0) == (exact == 0)
        assert (exact == 0) == (query == QUERIES[5]), query


def test_a_page_of_points_reads_no_count_of_every_point(storage):
    """Retrieve with a limit reads the points once, for the page (with a
    LIMIT), in as many statements for 40 points as for 4,000; its total,
    exact without label filters, comes from the sums' counts."""
    def statements(**kwargs):
        seen = []

        def record(conn, cursor, statement, *args):
            seen.append(' '.join(statement.split()))
        sa.event.listen(storage.engine, 'before_cursor_execute', record)
        try:
            result = storage.retrieve(**WINDOW, limit=10, **kwargs)
        finally:
            sa.event.remove(storage.engine, 'before_cursor_execute', record)
        return result['total'], seen

    storage.push([frame(T0 + h * HOUR, 'p1', ['a', 'b']) for h in range(10)])
    total, small = statements()
    assert total == 40
    storage.push([frame(T0 + h * HOUR, 'p2', [str(i) for i in range(20)])
                  for h in range(10, 60)])
    total, large = statements()
    assert total == 40 + 2000
    assert len(large) == len(small)
    reading_points = [s for s in large if 'FROM rated_points' in s]
    assert len(reading_points) == 1 and 'LIMIT' in reading_points[0]
    assert not any('count(' in s.lower() and 'rated_points' in s
                   for s in large)
    total, filtered = statements(filters={'project_id': 'p2'})
    assert total == 2000 and len(filtered) <= len(large)


def labelled(storage):
    """Points whose labels vary by day and resource, some without ``user``
    or with a number as its value, long decimals; returns them as
    ``(begin, end, type, point)`` from retrieve."""
    frames = []
    for h in range(0, 72, 5):
        begin = T0 + h * HOUR
        day = {'day_of_the_year': str(begin.timetuple().tm_yday)}
        frame = dataframe.DataFrame(begin, begin + HOUR)
        for i in range(9):
            groupby = {**day, 'project_id': f'p{i % 3}', 'id': f'r{i}',
                       'flavor': ('small', 'large', 'Small')[i % 3]}
            if i % 4:
                groupby['user'] = (f'u{i % 2}', 7, 'u0')[i % 3]
            frame.add_point(dataframe.DataPoint(
                'u', decimal.Decimal(f'{i}.{h}000000000000000001'),
                decimal.Decimal(f'0.{h + i}7'), groupby, {}),
                ('instance', 'volume')[i % 2])
        frames.append(frame)
    storage.push(frames)
    return [(b, e, t, p) for b, e, t, p in points_of(storage.retrieve(
        paginate=False, **WINDOW))]


def reference(points, keys):
    """``{group tuple: (qty, price)}`` summed in Python."""
    sums = {}
    for begin, end, type_, point in points:
        group = []
        for key in keys:
            if key == 'type':
                group.append(type_)
            elif key == 'time':
                group.append(begin)
            else:
                value = point.groupby.get(key)
                group.append(None if value is None else str(value))
        qty, price = sums.get(tuple(group), (0, 0))
        sums[tuple(group)] = (qty + point.qty, price + point.price)
    return sums


@pytest.mark.parametrize('keys', [
    ['user'], ['flavor'], ['type', 'project_id', 'user'],
    ['user', 'flavor'], ['time', 'user'], ['project_id', 'id'],
])
def test_totals_grouped_by_labels_every_page(storage, keys):
    """Grouped by labels (alone, after type and scope, with time): every
    group's sums to the last digit, groups sorted (missing values last,
    strings by code point), pages that are slices of the whole and the
    same number of groups on every page, on the three databases."""
    points = labelled(storage)
    expected = reference(points, keys)

    def group_of(row):
        return tuple(row['begin'] if key == 'time' else row[key]
                     for key in keys)
    whole = storage.total(groupby=keys, paginate=False, **WINDOW)
    assert whole['total'] == len(expected)
    got = {group_of(r): (r['qty'], r['rate']) for r in whole['results']}
    assert got == expected
    order = [group_of(r) for r in whole['results']]
    assert order == sorted(order, key=lambda g: [
        (v is None, '' if v is None else v) for v in g])
    for limit in (1, 4, 7):
        for offset in range(0, len(expected) + limit, limit):
            page = storage.total(groupby=keys, offset=offset, limit=limit,
                                 **WINDOW)
            assert page['results'] == whole['results'][
                offset:offset + limit]
            assert page['total'] == len(expected), (offset, limit)
