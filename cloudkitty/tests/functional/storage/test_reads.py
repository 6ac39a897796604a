"""The reads of the sqlalchemy backend at scale: the point counts kept
beside the sums, retrieve's total, and totals grouped by labels, identical
on SQLite, PostgreSQL and MariaDB."""

import datetime

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
