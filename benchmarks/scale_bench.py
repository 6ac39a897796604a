"""Scale benchmark: does the cost stay flat as the stored points grow?

    python benchmarks/scale_bench.py --sizes 1000000,10000000
    python benchmarks/scale_bench.py                  # 1M, 10M and 100M

On PostgreSQL, one database per size of ``--sizes`` is filled through the
storage's own bulk ``push`` to that size: 1,000 scopes, 10 metric types,
frames of one scope and hour spread evenly over the hours of 2024 (10
points each, one per type, up to 8.8M frames; more points per frame
beyond), so that every month holds every scope and type. In each are
measured:

- ``push``: the processor's write pattern, ``--rounds`` rounds of one
  ``replace_many`` of ``--round-scopes`` frames of 1,000 points, one
  scope and hourly period each (10 types x 100 resources), into the hours
  that follow the stored year, as processors push the current period.
  The median round's points/s, wall time and the CPU time of this
  process and of the PostgreSQL server (quote the CPU times on a shared
  machine), and every round's points/s;
- ``summary``: ``storage.total(groupby=['project_id', 'type'])`` over
  June 2024 with ``/v2/summary``'s page of 100 groups, the median of
  ``--runs`` runs, wall and CPU times;
- the disk used by the rated data, per stored point: the sum of
  ``pg_total_relation_size`` over the storage's tables (those named
  ``rated_*`` and every partition under them, indexes and TOAST
  included), after ``VACUUM ANALYZE``.

The partitions of every month are created first, as the processors'
hourly upkeep (``storage.maintain``) would have. The points pushed by the
``push`` measure stay in the database (``--rounds`` x
``--round-scopes`` x 1,000 more), after the hours already stored.

The targets (issue 18), checked between the smallest and the largest
size: push within 20% of the smallest size's, the one-month summary
within twice its latency. The database server is the storage tests'
(``CLOUDKITTY_TEST_POSTGRESQL_URL``). The databases are dropped at the
end, unless ``--keep``: then each is named ``ck_scale_<size>``, kept, and
a later run with ``--keep`` measures it again without filling it (the
100M fill takes about an hour; it records its size and time in the
database once complete, and an incomplete one is filled again).
"""

import argparse
import contextlib
import datetime
import decimal
import functools
import gc
import json
import time
import types

import sqlalchemy
# Beside this script: its folder is first on the path when it runs.
import storage_bench

from cloudkitty import dataframe
from cloudkitty.tests.functional import storage as db_servers
from cloudkitty import timeutils

UTC = datetime.timezone.utc
YEAR = (datetime.datetime(2024, 1, 1, tzinfo=UTC),
        datetime.datetime(2025, 1, 1, tzinfo=UTC))
HOUR = datetime.timedelta(hours=1)
HOURS = (YEAR[1] - YEAR[0]) // HOUR
#: The month the summary is asked for.
MONTH = (datetime.datetime(2024, 6, 1, tzinfo=UTC),
         datetime.datetime(2024, 7, 1, tzinfo=UTC))
SCOPES = 1000
TYPES = 10
#: The points of a processor's frame: one scope and hour, 100 resources
#: of each type.
FRAME_POINTS = 1000
#: Points per ``push`` call while filling.
FILL_CHUNK = 50000
#: The targets between the smallest and the largest size: push rate at
#: least this share of the smallest size's, summary at most this factor.
PUSH_TARGET = 0.8
SUMMARY_TARGET = 2.0
FLAVORS = ('m1.tiny', 'm1.small', 'm1.medium', 'm1.large')


def scope_ids():
    """The :data:`SCOPES` scope ids, as Keystone project ids look."""
    return [f'{index:032x}' for index in range(1, SCOPES + 1)]


@functools.lru_cache(maxsize=64)
def _time_keys(hour):
    """The time keys a collector sets in the groupby of ``hour``'s
    points (they change every day)."""
    return types.MappingProxyType({
        'week_of_the_year': hour.strftime('%U'),
        'day_of_the_year': hour.strftime('%-j'),
        'month': str(hour.month), 'year': str(hour.year)})


@functools.lru_cache(maxsize=None)
def _metadata(kind):
    """The metadata of the resources of ``kind`` (shared, read-only)."""
    return types.MappingProxyType({
        'flavor_name': FLAVORS[kind % len(FLAVORS)],
        'image_id': f'image-{kind % 5}'})


def _point(scope, resource, kind, hour, number):
    """A point of ``resource`` for ``hour``, its labels as a collector sets
    them: the time keys change every day, the metadata (from ``kind``)
    never; quantity and price vary with ``number``."""
    return dataframe.DataPoint(
        'unit', decimal.Decimal(number % 9973 + 1).scaleb(-2),
        decimal.Decimal(number % 99991 + 1).scaleb(-4),
        {'project_id': scope, 'id': resource, **_time_keys(hour)},
        _metadata(kind))


def frame_points(count):
    """The points of each fill frame (one scope and hour) for a fill of
    ``count`` points: one of each type at least, and more when there are
    more frames to fill than the year has scope-hours."""
    per_type = max(1, -(-count // (HOURS * SCOPES * TYPES)))
    return per_type * TYPES


def fill_frames(first, last, count):
    """Frames ``first`` to ``last - 1`` of a fill of ``count`` points
    (:func:`frame_points` each, the last one fewer): frame ``f`` is scope
    ``f % 1,000``'s for hour ``f * HOURS // frames`` of :data:`YEAR`, with
    the same number of points of each of the 10 types, every type's
    resources always the same (their labels change every day, as
    collectors set them). Every month holds every scope and type once
    there are 12,000 frames. ``[(frame, scope_id)]``."""
    scopes = scope_ids()
    size = frame_points(count)
    frames = -(-count // size)
    per_type = size // TYPES
    items = []
    for f in range(first, last):
        hour = YEAR[0] + (f * HOURS // frames) * HOUR
        s = f % SCOPES
        frame = dataframe.DataFrame(hour, hour + HOUR)
        points = min(size, count - f * size)
        for n in range(points):
            t, r = n % TYPES, n // TYPES % per_type
            frame.add_point(
                _point(scopes[s], f'{s}-{t}-{r}', s + t + r, hour, f + n),
                f'metric_{t}')
        items.append((frame, scopes[s]))
    return items


def fill(storage, count):
    """Push ``count`` points spread over :data:`YEAR`
    (:func:`fill_frames`), about :data:`FILL_CHUNK` per ``push`` call;
    return the seconds taken."""
    size = frame_points(count)
    frames = -(-count // size)
    step = max(1, FILL_CHUNK // size)
    started = time.perf_counter()
    for first in range(0, frames, step):
        storage.push([frame for frame, _scope in fill_frames(
            first, min(first + step, frames), count)])
    return time.perf_counter() - started


def round_frames(hour, round_scopes):
    """One processor round: for each of the first ``round_scopes`` scopes,
    its :data:`FRAME_POINTS`-point frame of ``hour``, ``[(frame,
    scope_id)]`` for ``replace_many``."""
    items = []
    per_type = FRAME_POINTS // TYPES
    for s, scope in enumerate(scope_ids()[:round_scopes]):
        frame = dataframe.DataFrame(hour, hour + HOUR)
        for t in range(TYPES):
            for r in range(per_type):
                frame.add_point(
                    _point(scope, f'p{s}-{t}-{r}', s + t + r, hour, r),
                    f'metric_{t}')
        items.append((frame, scope))
    return items


def bench_push(storage, first_hour, rounds, round_scopes):
    """``rounds`` processor rounds from ``first_hour`` on, one
    ``replace_many`` each, each timed: the figures of the median round by
    rate, ``{"points", "seconds", "points_per_second",
    "client_cpu_seconds", "server_cpu_seconds"}``, with ``"rounds"``, every
    round's points/s, and ``"stored"``, the points of all rounds."""
    figures = []
    for n in range(rounds):
        items = round_frames(first_hour + n * HOUR, round_scopes)
        figures.append(storage_bench._measure(
            storage, [(scope, frame) for frame, scope in items],
            lambda items=items: storage.replace_many(items)))
    figures.sort(key=lambda figure: figure['points_per_second'])
    return dict(figures[len(figures) // 2],
                rounds=[round(f['points_per_second']) for f in figures],
                stored=sum(f['points'] for f in figures))


def bench_summary(storage, runs):
    """``total(groupby=['project_id', 'type'])`` over :data:`MONTH` with
    ``/v2/summary``'s default page (100 groups), ``runs`` times:
    ``{"median_seconds", "client_cpu_seconds", "server_cpu_seconds",
    "groups", "qty"}`` (CPU times: medians per run)."""
    figures, result = storage_bench.timed(
        storage, lambda: storage.total(
            groupby=['project_id', 'type'], begin=MONTH[0], end=MONTH[1],
            limit=100), runs)
    return {'median_seconds': figures['wall'],
            'client_cpu_seconds': figures['cpu'],
            'server_cpu_seconds': figures['server_cpu'],
            'groups': result['total']}


def disk_bytes(storage):
    """Bytes of the storage's tables (``rated_*`` and their partitions,
    with indexes and TOAST)."""
    with storage.engine.connect() as conn:
        return int(conn.execute(sqlalchemy.text(r"""
            WITH roots AS (
                SELECT oid FROM pg_class
                WHERE relname LIKE 'rated\_%' AND relkind IN ('r', 'p')
                AND NOT relispartition
                AND relnamespace = current_schema()::regnamespace)
            SELECT coalesce(sum(pg_total_relation_size(rel)), 0) FROM (
                SELECT oid AS rel FROM roots
                UNION SELECT tree.relid FROM roots,
                    pg_partition_tree(roots.oid) AS tree) AS tables
        """)).scalar())


def run(sizes, rounds=3, round_scopes=100, runs=5, keep=False):
    """Fill a database to each size of ``sizes`` (increasing) and measure;
    return ``[{"size", "stored", "fill_seconds", "push", "summary",
    "disk_bytes", "bytes_per_point"}]``."""
    results = []
    for size in sizes:
        with _database(size, keep) as url, storage_bench.make_storage(
                'postgresql', url) as storage:
            fill_seconds = filled(storage, size)
            if fill_seconds is None:
                month = YEAR[0]
                while month <= YEAR[1]:
                    storage.maintain(month)
                    month = timeutils.month_window(month)[1]
                gc.collect()
                fill_seconds = fill(storage, size)
                mark_filled(storage, size, fill_seconds)
            storage_bench.settle(storage)
            push = bench_push(storage, next_hour(storage), rounds,
                              round_scopes)
            storage_bench.settle(storage)
            summary = bench_summary(storage, runs)
            points = stored_points(storage)
            disk = disk_bytes(storage)
            results.append({'size': size, 'stored': points,
                            'fill_seconds': fill_seconds, 'push': push,
                            'summary': summary, 'disk_bytes': disk,
                            'bytes_per_point': disk / points})
            print(report_line(results[-1]), flush=True)
    return results


@contextlib.contextmanager
def _database(size, keep):
    """The URL of the database of ``size``: a throwaway one, or with
    ``keep`` ``ck_scale_<size>``, created unless it exists."""
    if not keep:
        with db_servers.fresh_database('postgresql',
                                       prefix='ck_scale') as url:
            yield url
        return
    server = sqlalchemy.make_url(db_servers.SERVER_URLS['postgresql'])
    name = f'ck_scale_{size}'
    admin = sqlalchemy.create_engine(server, isolation_level='AUTOCOMMIT',
                                     poolclass=sqlalchemy.pool.NullPool)
    with admin.connect() as conn:
        if not conn.execute(sqlalchemy.text(
                'SELECT EXISTS (SELECT FROM pg_database WHERE datname = '
                ':name)'), {'name': name}).scalar():
            conn.exec_driver_sql(f'CREATE DATABASE {name}')
    admin.dispose()
    yield server.set(database=name).render_as_string(hide_password=False)


def filled(storage, size):
    """The seconds the fill of the storage's database to ``size`` took,
    or ``None`` if it holds no complete fill of that size (then it must
    be empty: a fill interrupted is refused, not added to)."""
    with storage.engine.begin() as conn:
        conn.exec_driver_sql(
            'CREATE TABLE IF NOT EXISTS scale_bench_fill (points bigint '
            'NOT NULL, seconds double precision NOT NULL)')
        row = conn.exec_driver_sql(
            'SELECT points, seconds FROM scale_bench_fill').first()
        if row is None and conn.execute(sqlalchemy.text(
                'SELECT EXISTS (SELECT FROM rated_batches)')).scalar():
            raise SystemExit(f'{storage.engine.url.database}: an incomplete '
                             'fill; drop the database and run again')
    if row is not None and row.points != size:
        raise SystemExit(f'{storage.engine.url.database}: filled to '
                         f'{row.points:,} points, not {size:,}')
    return None if row is None else row.seconds


def mark_filled(storage, size, seconds):
    """Record a complete fill to ``size`` points in ``seconds``."""
    with storage.engine.begin() as conn:
        conn.execute(sqlalchemy.text(
            'INSERT INTO scale_bench_fill VALUES (:points, :seconds)'),
            {'points': size, 'seconds': seconds})


def next_hour(storage):
    """The hour after the last one stored, and after :data:`YEAR`: where
    the ``push`` measure writes."""
    with storage.engine.connect() as conn:
        last = conn.execute(sqlalchemy.text(
            'SELECT max(period_begin) FROM rated_batches WHERE '
            'period_begin >= :end'), {'end': YEAR[1].replace(tzinfo=None)}
        ).scalar()
    return YEAR[1] if last is None else last.replace(tzinfo=UTC) + HOUR


def stored_points(storage):
    """The points stored (all have a scope), from the monthly sums."""
    with storage.engine.connect() as conn:
        return int(conn.execute(sqlalchemy.text(
            'SELECT coalesce(sum(points), 0) FROM rated_monthly_totals'
        )).scalar())


def _server_cpu(seconds, milliseconds=False):
    """A server CPU time as printed: ``"1.72 s"`` (``"10 ms"``), or
    ``"unknown"`` for a server this process cannot read."""
    if seconds is None:
        return 'unknown'
    return f'{seconds * 1000:.0f} ms' if milliseconds else f'{seconds:.2f} s'


def report_line(result):
    push, summary = result['push'], result['summary']
    return (
        f"{result['size']:,} points filled in {result['fill_seconds']:.0f} s "
        f"({result['stored']:,} stored): push {push['points_per_second']:,.0f}"
        f" points/s ({push['points']:,} points in {push['seconds']:.2f} s; "
        f"CPU {push['client_cpu_seconds']:.2f} s here, "
        f"{_server_cpu(push['server_cpu_seconds'])} PostgreSQL; rounds "
        f"{', '.join(f'{rate:,}' for rate in push['rounds'])} points/s); "
        f"one-month summary "
        f"{summary['median_seconds'] * 1000:.0f} ms median of runs (CPU "
        f"{summary['client_cpu_seconds'] * 1000:.0f} ms here, "
        f"{_server_cpu(summary['server_cpu_seconds'], True)} PostgreSQL; "
        f"{summary['groups']:,} groups); disk "
        f"{result['disk_bytes'] / 2 ** 20:,.0f} MiB, "
        f"{result['bytes_per_point']:.0f} bytes per point")


def verdicts(results):
    """The targets' lines, between the smallest and the largest size."""
    if len(results) < 2:
        return []
    low, high = results[0], results[-1]
    push = high['push']['points_per_second'] / \
        low['push']['points_per_second']
    summary = high['summary']['median_seconds'] / \
        low['summary']['median_seconds']
    between = f"at {high['size']:,} against {low['size']:,}"
    return [
        f"push {between}: {push:.2f} of the rate; target at least "
        f"{PUSH_TARGET:.2f}: {'met' if push >= PUSH_TARGET else 'missed'}",
        f"one-month summary {between}: {summary:.2f} times the latency; "
        f"target at most {SUMMARY_TARGET:.0f}: "
        f"{'met' if summary <= SUMMARY_TARGET else 'missed'}",
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sizes', default='1000000,10000000,100000000',
                        help='comma-separated numbers of points to fill '
                        'to, increasing')
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--round-scopes', type=int, default=100)
    parser.add_argument('--runs', type=int, default=5)
    parser.add_argument('--keep', action='store_true',
                        help='keep the databases (ck_scale_<size>) and '
                        'measure those already filled without filling them')
    parser.add_argument('--json', action='store_true')
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(',')]
    if sizes != sorted(sizes):
        parser.error('--sizes must increase')
    results = run(sizes, rounds=args.rounds, round_scopes=args.round_scopes,
                  runs=args.runs, keep=args.keep)
    if args.json:
        print(json.dumps(results))
    for line in verdicts(results):
        print(line)


if __name__ == '__main__':
    main()
