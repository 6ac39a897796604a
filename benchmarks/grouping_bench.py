"""Grouping benchmark: ``total`` grouped by labels, and ``retrieve`` pages.

    python benchmarks/grouping_bench.py --points 1000000 --backend postgresql
    python benchmarks/grouping_bench.py --points 100000 --backend sqlite

The data: one month (March 2024, 744 hourly periods) of ``--points``
points spread evenly over the periods; 37 projects (the scopes), 10 users
each and 10 metric types, so that grouping by ``type``, ``project_id`` and
``user_id`` gives 3,700 groups; each point also has its resource ``id``
and a ``flavor`` (4 values) in its groupby, labels that no rollup knows,
and one metadata key. Like the collectors, each point carries the time
keys (``day_of_the_year`` and the like) in its groupby: a resource's
labels change every day. There are as many resources as
points per period, and at least 3,700.

Then, after refreshing the planner statistics, the median latency (wall
and this process's CPU; on PostgreSQL the server's CPU too) over
``--runs`` runs, on the whole month, of:

- ``total`` grouped by ``type``, ``project_id`` and ``user_id`` (page of
  1,000 groups, the storage's default),
- ``total`` grouped by ``flavor``,
- ``total`` grouped by ``type``, filtered by ``flavor``,
- ``retrieve`` of 100 points without filters, with a scope filter and
  with a label filter (``user_id``).

Each is timed on the data as pushed, then again once the upkeep a
processor runs every hour (``storage.maintain``, on April 1st) has summed
the month's days by label (``rated_label_days``, which the totals and the
retrieves with label filters read), the time of which is printed too.

``--url`` names a database to fill once and reuse: when it already holds
the benchmark's number of points, the load is skipped.
"""

import argparse
import contextlib
import datetime
import time

# Beside this script: its folder is first on the path when it runs.
import storage_bench

from cloudkitty import dataframe

UTC = datetime.timezone.utc
MONTH = (datetime.datetime(2024, 3, 1, tzinfo=UTC),
         datetime.datetime(2024, 4, 1, tzinfo=UTC))
PERIOD = datetime.timedelta(hours=1)
PERIODS = 744
PROJECTS = 37
USERS = 10
TYPES = 10
FLAVORS = ('m1.tiny', 'm1.small', 'm1.medium', 'm1.large')


def resources(per_period):
    """The resources' labels: ``[(type, groupby, metadata)]``."""
    count = max(per_period, PROJECTS * USERS * TYPES)
    result = []
    for k in range(count):
        combo = k % (PROJECTS * USERS * TYPES)
        project, rest = divmod(combo, USERS * TYPES)
        user, type_ = divmod(rest, TYPES)
        result.append((f'metric_{type_}', {
            'project_id': f'project-{project:02d}',
            'user_id': f'user-{project:02d}-{user}',
            'id': f'resource-{k:07d}',
            'flavor': FLAVORS[k % len(FLAVORS)],
        }, {'image': 'debian-12'}))
    return result


def periods(n_points):
    """Yield one frame per hourly period of :data:`MONTH` (mixing scopes:
    each point's scope is its ``project_id``)."""
    per_period = -(-n_points // PERIODS)
    labels = resources(per_period)
    made = 0
    for hour in range(PERIODS):
        begin = MONTH[0] + hour * PERIOD
        frame = dataframe.DataFrame(begin, begin + PERIOD)
        # The time keys collectors add: a resource's labels change daily.
        time_keys = {'week_of_the_year': begin.strftime('%U'),
                     'day_of_the_year': begin.strftime('%-j'),
                     'month': begin.strftime('%-m'),
                     'year': begin.strftime('%Y')}
        for j in range(min(per_period, n_points - made)):
            index = (hour * per_period + j) % len(labels)
            type_, groupby, metadata = labels[index]
            frame.add_point(dataframe.DataPoint(
                'unit', (index % 7) + 1, f'0.{index % 1000:03d}1',
                {**groupby, **time_keys}, metadata), type_)
        made += len(frame)
        yield frame


def load(storage, n_points, chunk=24):
    """Push the data unless the storage holds ``n_points`` already;
    return the push's seconds (``None``: skipped)."""
    held = storage.retrieve(begin=MONTH[0], end=MONTH[1], limit=1)['total']
    if held == n_points:
        return None
    if held:
        raise SystemExit(f'the database holds {held} points, not '
                         f'{n_points}: use another --url')
    started = time.perf_counter()
    frames = []
    for frame in periods(n_points):
        frames.append(frame)
        if len(frames) == chunk:
            storage.push(frames)
            frames = []
    if frames:
        storage.push(frames)
    storage_bench.settle(storage)
    return time.perf_counter() - started


def measures(storage, runs):
    """``{name: (figures, what the last call returned)}``."""
    window = {'begin': MONTH[0], 'end': MONTH[1]}
    one_user = {'user_id': 'user-03-4'}

    def groups(result):
        return f"{result['total']} groups"

    def points(result):
        return (f"total {result['total']}, "
                f"{sum(len(f) for f in result['dataframes'])} points")
    calls = {
        'total by type, project_id, user_id': (lambda: storage.total(
            groupby=['type', 'project_id', 'user_id'], **window), groups),
        'total by flavor': (lambda: storage.total(
            groupby=['flavor'], **window), groups),
        'total by type, one flavor': (lambda: storage.total(
            groupby=['type'], filters={'flavor': 'm1.small'}, **window),
            groups),
        'retrieve limit 100': (lambda: storage.retrieve(
            limit=100, **window), points),
        'retrieve limit 100, one project': (lambda: storage.retrieve(
            limit=100, filters={'project_id': 'project-07'}, **window),
            points),
        'retrieve limit 100, one user': (lambda: storage.retrieve(
            limit=100, filters=one_user, **window), points),
        'retrieve limit 100 at offset 10,000, one user': (
            lambda: storage.retrieve(offset=10000, limit=100,
                                     filters=one_user, **window), points),
    }
    output = {}
    for name, (call, describe) in calls.items():
        figures, result = storage_bench.timed(storage, call, runs)
        output[name] = figures, describe(result)
    return output


def roll(storage):
    """Run the upkeep of the day after the month (which sums its days by
    label), then refresh the statistics of the tables it wrote, as
    autovacuum would; return ``(figures, days rolled, rows)``."""
    figures, upkeep = storage_bench.timed(
        storage, lambda: storage.maintain(MONTH[1]), 1)
    statement = {
        'postgresql': 'VACUUM ANALYZE rated_label_days, rated_daily_totals',
        'sqlite': 'ANALYZE'}.get(
        storage.engine.dialect.name,
        'ANALYZE TABLE rated_label_days, rated_daily_totals')
    with storage.engine.connect().execution_options(
            isolation_level='AUTOCOMMIT') as conn:
        conn.exec_driver_sql(statement)
    return figures, len(upkeep.rolled), upkeep.label_rows


def report(name, figures, what, runs):
    """Print one timed call."""
    server = ('' if figures['server_cpu'] is None
              else f", server CPU {figures['server_cpu'] * 1000:.0f} ms")
    print(f"{name}: {figures['wall'] * 1000:.1f} ms median of {runs} "
          f"(client CPU {figures['cpu'] * 1000:.0f} ms{server}); {what}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--points', type=int, default=100000)
    parser.add_argument('--backend', choices=storage_bench.BACKENDS,
                        default='sqlite')
    parser.add_argument('--url', help='a database to fill once and reuse '
                        '(default: a throwaway one)')
    parser.add_argument('--runs', type=int, default=5,
                        help='runs of each call, the median is reported')
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack:
        storage = stack.enter_context(storage_bench.make_storage(
            args.backend, args.url))
        seconds = load(storage, args.points)
        loaded = ('reused' if seconds is None
                  else f'loaded in {seconds:.1f} s')
        print(f'{args.backend}: {args.points} points over one month '
              f'({loaded})')
        for name, (figures, what) in measures(storage, args.runs).items():
            report(name, figures, what, args.runs)
        figures, days, rows = roll(storage)
        report('upkeep summing the month by label', figures,
               f'{days} days, {rows} rows', 1)
        for name, (figures, what) in measures(storage, args.runs).items():
            report(f'{name}, rolled', figures, what, args.runs)


if __name__ == '__main__':
    main()
