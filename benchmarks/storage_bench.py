"""Storage benchmark: push throughput and ``total`` latency.

    python benchmarks/storage_bench.py --points 1000000 --backend postgresql
    python benchmarks/storage_bench.py --points 200000 --backend sqlite

Each run stores realistic rated data in a fresh database (a throwaway
database on the PostgreSQL or MariaDB server, a temporary file for SQLite),
then prints the push rate in points/s and the median latency of
``total(groupby=['project_id', 'type'])`` over every stored point (after
refreshing the planner statistics, see :func:`settle`).

Then, unless ``--no-per-frame``, the same number of points is stored the
way the processor stores it, into fresh databases: frames of 1,000 points
(one scope and hourly period; 100 scopes), ``per-frame`` with one
``replace(frame, scope_id)`` per frame, the scope worker's call, and
``per-round`` with one ``replace_many`` of every scope's frame of a period
per call. Each figure: points/s, wall time, and the CPU time of this
process and of the PostgreSQL server (quote the CPU times on a busy
machine).

The data: ``--scopes`` scopes (1,000), ``--types`` metric types (10) and
10 resources per scope and type, over as many hourly periods as the number
of points needs; each point has 6 groupby keys (``project_id``, ``id`` and
the four time keys collectors add) and 3 metadata keys, fresh dicts for
every point as a collector builds them.

The functions (:func:`make_frames`, :func:`make_storage`,
:func:`bench_push`, :func:`bench_per_frame`, :func:`settle`,
:func:`bench_total`, :func:`run`) are meant to be called by other benchmark
drivers too. The database servers are those of the storage tests
(``CLOUDKITTY_TEST_POSTGRESQL_URL``, ``CLOUDKITTY_TEST_MARIADB_URL``).
"""

import argparse
import contextlib
import datetime
import decimal
import gc
import json
import os
import random
import statistics
import tempfile
import time

from cloudkitty import dataframe
from cloudkitty.db import models as db_models
from cloudkitty import storage as ck_storage
from cloudkitty.tests.functional import storage as db_servers

START = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
PERIOD = datetime.timedelta(hours=1)
RESOURCES_PER_TYPE = 10
#: The processor's frames, in the per-frame figures: 1,000 points of one
#: scope and period, for each of 100 scopes.
FRAME_POINTS = 1000
FRAME_SCOPES = 100
BACKENDS = ('sqlite', 'postgresql', 'mariadb')


def make_frames(n_points, n_scopes=1000, n_types=10, seed=42,
                resources=RESOURCES_PER_TYPE):
    """Return ``[(scope_id, DataFrame)]`` holding ``n_points`` points.

    One frame per scope and hourly period from :data:`START`, as the
    processor stores them; each frame holds ``n_types`` types of
    ``resources`` points (the last frame may hold fewer).
    Quantities and prices are Decimals with up to 4 and 6 decimals.
    """
    rng = random.Random(seed)
    scopes = [f'{rng.getrandbits(128):032x}' for _ in range(n_scopes)]
    types = [f'metric_{i}' for i in range(n_types)]
    flavors = ['m1.tiny', 'm1.small', 'm1.medium', 'm1.large']
    zones = ['az1', 'az2', 'az3']
    frames = []
    made = 0
    period = 0
    while made < n_points:
        begin = START + period * PERIOD
        time_keys = {
            'week_of_the_year': begin.strftime('%U'),
            'day_of_the_year': begin.strftime('%-j'),
            'month': str(begin.month),
            'year': str(begin.year),
        }
        for s, scope in enumerate(scopes):
            if made >= n_points:
                break
            frame = dataframe.DataFrame(begin, begin + PERIOD)
            for t, type_ in enumerate(types):
                count = min(resources, n_points - made)
                for r in range(count):
                    frame.add_point(dataframe.DataPoint(
                        'unit',
                        decimal.Decimal(rng.randrange(1, 100000)).scaleb(-4),
                        decimal.Decimal(rng.randrange(1, 1000000)).scaleb(-6),
                        {'project_id': scope, 'id': f'{s}-{t}-{r}',
                         **time_keys},
                        {'flavor_name': flavors[r % len(flavors)],
                         'availability_zone': zones[r % len(zones)],
                         'image_id': f'image-{r % 5}'}), type_)
                made += count
                if made >= n_points:
                    break
            frames.append((scope, frame))
        period += 1
    return frames


@contextlib.contextmanager
def make_storage(backend, url=None):
    """Yield an initialised sqlalchemy storage on an empty database.

    ``backend`` is one of :data:`BACKENDS`; without ``url``, a throwaway
    database (dropped on exit) or a temporary SQLite file is used.
    """
    with contextlib.ExitStack() as stack:
        if url is None and backend == 'sqlite':
            folder = stack.enter_context(tempfile.TemporaryDirectory())
            url = f'sqlite:///{folder}/bench.sqlite'
        elif url is None:
            url = stack.enter_context(
                db_servers.fresh_database(backend, prefix='ck_bench'))
        storage = ck_storage.get_storage(db_servers.make_conf(url))
        storage.init()
        stack.callback(storage.engine.dispose)
        yield storage


def bench_push(storage, frames, frames_per_push=None):
    """Push ``frames`` (from :func:`make_frames`); return the figures.

    With ``frames_per_push`` None every frame goes in one ``push`` call;
    otherwise ``frames_per_push`` frames per call (1: one call per frame
    and scope, like the processor). Returns ``{"points", "seconds",
    "points_per_second", "client_cpu_seconds", "server_cpu_seconds"}``:
    the CPU time this process and the PostgreSQL backend spent (None where
    it cannot be read), on a busy machine a measure that other loads
    disturb less than the wall time.
    """
    def push():
        if frames_per_push is None:
            storage.push([frame for _, frame in frames])
        elif frames_per_push == 1:
            for scope, frame in frames:
                storage.push([frame], scope)
        else:
            for start in range(0, len(frames), frames_per_push):
                storage.push([frame for _, frame in
                              frames[start:start + frames_per_push]])
    return _measure(storage, frames, push)


def bench_per_frame(storage, frames, per_round=False):
    """Store ``frames`` as the processor does; return the figures of
    :func:`bench_push`.

    One ``storage.replace(frame, scope_id)`` per scope and period, the
    scope worker's own call (``rate_period``); with ``per_round``, one
    ``storage.replace_many`` of the frames of each period (a processor
    round: every scope's frame of that period) instead.
    """
    def replace():
        if not per_round:
            for scope, frame in frames:
                storage.replace(frame, scope)
            return
        rounds = {}
        for scope, frame in frames:
            rounds.setdefault(frame.start, []).append((frame, scope))
        for start in sorted(rounds):
            storage.replace_many(rounds[start])
    return _measure(storage, frames, replace)


def _measure(storage, frames, store):
    """Time ``store()``, which stores ``frames``; the figures of
    :func:`bench_push`."""
    points = sum(len(frame) for _, frame in frames)
    # Start from a settled heap: the collection that building millions of
    # points calls for is not the store's to pay.
    gc.collect()
    server_started = server_cpu(storage)
    cpu_started = time.process_time()
    started = time.perf_counter()
    store()
    seconds = time.perf_counter() - started
    client = time.process_time() - cpu_started
    server = server_cpu(storage)
    return {'points': points, 'seconds': seconds,
            'points_per_second': points / seconds,
            'client_cpu_seconds': client,
            'server_cpu_seconds': None if None in (server, server_started)
            else server - server_started}


def server_cpu(storage):
    """CPU seconds used so far by the PostgreSQL backends serving the
    storage's database, or None (not PostgreSQL, or not on this host)."""
    if storage.engine.dialect.name != 'postgresql':
        return None
    with storage.engine.connect() as conn:
        pids = conn.exec_driver_sql(
            "SELECT pid FROM pg_stat_activity WHERE datname = "
            "current_database() AND backend_type = 'client backend'"
        ).scalars().all()
    total = 0
    try:
        for pid in pids:
            with open(f'/proc/{pid}/stat') as stat:
                fields = stat.read().rsplit(')', 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    except OSError:
        return None
    return total / os.sysconf('SC_CLK_TCK')


def settle(storage):
    """Refresh the planner statistics of the rated-data tables.

    What autovacuum (PostgreSQL: VACUUM ANALYZE) or InnoDB's persistent
    statistics do within a minute of a bulk load; without it, the first
    queries after loading a million points into an empty table are planned
    for an empty table.
    """
    tables = [name for name in db_models.Base.metadata.tables
              if name.startswith('rated_')]
    if storage.engine.dialect.name == 'postgresql':
        # Autovacuum vacuums a table after many inserts too (PostgreSQL
        # 13 and newer), which lets index-only scans skip the heap.
        with storage.engine.connect().execution_options(
                isolation_level='AUTOCOMMIT') as conn:
            conn.exec_driver_sql(f'VACUUM ANALYZE {", ".join(tables)}')
        return
    with storage.engine.begin() as conn:
        if storage.engine.dialect.name == 'sqlite':
            conn.exec_driver_sql('ANALYZE')
        else:
            conn.exec_driver_sql(f'ANALYZE TABLE {", ".join(tables)}')


def timed(storage, call, runs):
    """``(figures, last result)`` of ``runs`` calls of ``call()``:
    ``{"wall", "cpu", "server_cpu"}``, the medians of the wall time, this
    process's CPU time and the database server's (``None`` where
    :func:`server_cpu` cannot read it)."""
    walls, cpus, servers = [], [], []
    result = None
    for _ in range(runs):
        server = server_cpu(storage)
        cpu = time.process_time()
        wall = time.perf_counter()
        result = call()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        if server is not None:
            servers.append(server_cpu(storage) - server)
    figures = {'wall': statistics.median(walls), 'cpu': statistics.median(
        cpus), 'server_cpu': statistics.median(servers) if servers else None}
    return figures, result


def bench_total(storage, groupby=('project_id', 'type'), runs=5,
                begin=START, end=None):
    """Time ``total(groupby=...)`` over the stored points ``runs`` times.

    The window defaults to the whole benchmark data (from :data:`START`,
    one year). Returns ``{"median_seconds", "runs", "groups"}``.
    """
    end = end or START + datetime.timedelta(days=366)
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        result = storage.total(groupby=list(groupby), begin=begin, end=end)
        timings.append(time.perf_counter() - started)
    return {'median_seconds': statistics.median(timings),
            'runs': [round(t, 4) for t in timings],
            'groups': result['total']}


def _check_stored(storage, frames):
    stored = storage.total(begin=START, end=START + datetime.timedelta(
        days=366))['results']
    qty = sum(point.qty for _, frame in frames
              for _, point in frame.iterpoints())
    if not stored or stored[0]['qty'] != qty:
        raise RuntimeError('the benchmark data was not stored')


def run(backend, n_points, url=None, frames_per_push=None, runs=5,
        n_scopes=1000, n_types=10, per_frame=True, push=True):
    """Make the data, push it and time ``total`` (unless not ``push``);
    then, with ``per_frame``, store :data:`FRAME_POINTS`-point frames into
    fresh databases one scope-period per call and one round per call
    (:func:`bench_per_frame`). Return every figure."""
    result = {'backend': backend, 'points': n_points}
    if push:
        frames = make_frames(n_points, n_scopes=n_scopes, n_types=n_types)
        with make_storage(backend, url) as storage:
            pushed = bench_push(storage, frames, frames_per_push)
            settle(storage)
            total = bench_total(storage, runs=runs)
            _check_stored(storage, frames)
        result.update(frames=len(frames), push=pushed, total=total)
        del frames
    if not per_frame:
        return result
    frames = make_frames(n_points, n_scopes=FRAME_SCOPES, n_types=n_types,
                         resources=FRAME_POINTS // n_types)
    for name, per_round in (('per_frame', False), ('per_round', True)):
        with make_storage(backend) as storage:
            result[name] = bench_per_frame(storage, frames, per_round)
            _check_stored(storage, frames)
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--points', type=int, default=100000)
    parser.add_argument('--backend', choices=BACKENDS, default='sqlite')
    parser.add_argument('--url', help='use this database (its tables are '
                        'created; the data stays) instead of a fresh one')
    parser.add_argument('--frames-per-push', type=int, default=None,
                        help='frames per push call (default: all in one)')
    parser.add_argument('--runs', type=int, default=5,
                        help='total() runs, the median is reported')
    parser.add_argument('--scopes', type=int, default=1000)
    parser.add_argument('--types', type=int, default=10)
    parser.add_argument('--no-per-frame', action='store_true',
                        help='skip the per-frame and per-round figures')
    parser.add_argument('--no-push', action='store_true',
                        help='skip the push of every frame in one call '
                        'and the total() latency')
    parser.add_argument('--json', action='store_true',
                        help='print the figures as JSON')
    args = parser.parse_args(argv)
    result = run(args.backend, args.points, url=args.url,
                 frames_per_push=args.frames_per_push, runs=args.runs,
                 n_scopes=args.scopes, n_types=args.types,
                 per_frame=not args.no_per_frame, push=not args.no_push)
    if args.json:
        print(json.dumps(result))
        return
    print(f"{result['backend']}: {result['points']} points")
    if 'push' in result:
        print(f"push:  {_rate(result['push'])}, {result['frames']} "
              f"frames in one call")
        print(f"total(groupby=['project_id', 'type']): "
              f"{result['total']['median_seconds'] * 1000:.0f} ms median "
              f"of {len(result['total']['runs'])} runs "
              f"({result['total']['groups']} groups)")
    if 'per_frame' in result:
        print(f"per-frame ({FRAME_POINTS}-point frames, replace() per scope "
              f"and period): {_rate(result['per_frame'])}")
        print(f"per-round (replace_many() of {FRAME_SCOPES} scopes' frames "
              f"per period): {_rate(result['per_round'])}")


def _rate(figures):
    server = ('' if figures['server_cpu_seconds'] is None else
              f", server CPU {figures['server_cpu_seconds']:.2f} s")
    return (f"{figures['points_per_second']:,.0f} points/s "
            f"({figures['seconds']:.2f} s, client CPU "
            f"{figures['client_cpu_seconds']:.2f} s{server})")


if __name__ == '__main__':
    main()
