"""Import throughput of ``cloudkitty-import-upstream``: InfluxDB 1.x into
PostgreSQL.

Starts an InfluxDB of its own (Debian's ``influxd``, on free ports in a
temporary directory), writes ``--points`` points (default 1,000,000) into
measurement ``dataframes`` exactly as upstream CloudKitty's InfluxDB
storage lays them out (tags: ``type`` and the groupby keys; fields:
``qty``, ``price``, ``unit``, ``description``, the metadata, the lists of
groupby and metadata keys, ``__ck_collect_period``), written through
InfluxDB's line protocol rather than upstream's code for speed: 100
scopes, 5 types, 2 resources of each per scope, hourly periods. Then
copies them with :func:`cloudkitty.importer.rated.copy_rated` into a
throwaway PostgreSQL database of ours (the ``sqlalchemy`` storage), runs
the verification, and copies again (every chunk already there).

Prints points/s of each step with its wall time, and the CPU time of this
process, of ``influxd`` and of the PostgreSQL backends, with points per
CPU second of the three: on a shared machine, quote those and repeat.
``--read-only`` also times reading every chunk from InfluxDB without
storing it.
"""

import argparse
import datetime
import os
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

import storage_bench  # noqa: E402

from cloudkitty.importer import influx  # noqa: E402
from cloudkitty.importer import rated  # noqa: E402
from cloudkitty.importer import verify  # noqa: E402
from cloudkitty.tests.functional.upstream import server  # noqa: E402

START = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
SCOPES = 100
TYPES = (('instance', 'instance', '0.0471'), ('volume', 'GiB', '0.0009'),
         ('image', 'MiB', '0.00001'), ('ip', 'ip', '0.005'),
         ('network', 'MB', '0.0000125'))
RESOURCES = 2
WRITE_BATCH = 20000


def lines(n_points):
    """Upstream's InfluxDB points, as line protocol, ``n_points`` of them
    (a whole number of periods: rounded down)."""
    per_period = SCOPES * len(TYPES) * RESOURCES
    for period in range(n_points // per_period):
        epoch = int(START.timestamp()) + 3600 * period
        for scope in range(SCOPES):
            for type_, unit, cost in TYPES:
                for resource in range(RESOURCES):
                    qty = 1 + (period + scope + resource) % 40
                    price = float(cost) * qty
                    yield (f'dataframes,id={type_}-{scope}-{resource},'
                           f'project_id=scope-{scope},type={type_} '
                           f'__ck_collect_period=3600i,description="",'
                           f'flavor="m1.{resource}",groupby="id|project_id",'
                           f'metadata="flavor",price={price!r},qty={qty}.0,'
                           f'unit="{unit}" {epoch}')


def load(influxdb, n_points):
    """Write the points; return how many."""
    influxdb.query('CREATE DATABASE "cloudkitty"')
    batch, written = [], 0
    for line in lines(n_points):
        batch.append(line)
        if len(batch) == WRITE_BATCH:
            written += _write(influxdb, batch)
            batch = []
    return written + (_write(influxdb, batch) if batch else 0)


def _write(influxdb, batch):
    request = urllib.request.Request(
        f'{influxdb.url}/write?db=cloudkitty&precision=s',
        data='\n'.join(batch).encode(), method='POST')
    with urllib.request.urlopen(request, timeout=300):
        pass
    return len(batch)


def influxd_cpu(influxdb):
    """CPU seconds ``influxd`` used so far (user and system)."""
    with open(f'/proc/{influxdb.process.pid}/stat') as stat:
        user, system = stat.read().rsplit(')', 1)[1].split()[11:13]
    return (int(user) + int(system)) / os.sysconf('SC_CLK_TCK')


def timed(what, points, storage, influxdb, work):
    """Run ``work()``; print and return its figures."""
    before = (time.process_time(), influxd_cpu(influxdb),
              storage_bench.server_cpu(storage) or 0)
    started = time.perf_counter()
    result = work()
    wall = time.perf_counter() - started
    cpu = [after - first for after, first in zip(
        (time.process_time(), influxd_cpu(influxdb),
         storage_bench.server_cpu(storage) or 0), before)]
    print(f'{what}: {points:,} points in {wall:.1f} s, '
          f'{points / wall:,.0f} points/s; CPU: import {cpu[0]:.1f} s, '
          f'influxd {cpu[1]:.1f} s, PostgreSQL {cpu[2]:.1f} s, '
          f'{points / max(sum(cpu), 0.01):,.0f} points per CPU second',
          flush=True)
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--points', type=int, default=1000000)
    parser.add_argument('--chunk-hours', type=int, default=24)
    parser.add_argument('--read-only', action='store_true',
                        help='also time reading every chunk without '
                             'storing it')
    args = parser.parse_args(argv)
    step = datetime.timedelta(hours=args.chunk_hours)
    with tempfile.TemporaryDirectory() as state:
        influxdb = server.InfluxDB(state)
        influxdb.start()
        try:
            started = time.perf_counter()
            points = load(influxdb, args.points)
            print(f'InfluxDB loaded with {points:,} points in '
                  f'{time.perf_counter() - started:.1f} s', flush=True)
            source = influx.InfluxSource(influxdb.url, 'cloudkitty')
            begin, end = rated.default_window(source)
            with storage_bench.make_storage('postgresql') as storage:
                if args.read_only:
                    timed('read and parse, nothing stored', points, storage,
                          influxdb,
                          lambda: [source.frames(*chunk) for chunk in
                                   rated.chunks(begin, end, step)])
                progress = timed(
                    'import', points, storage, influxdb,
                    lambda: rated.copy_rated(
                        source, storage, begin, end, step, out=_quiet))
                assert progress.stored == points, progress
                lines_ = timed('verification', points, storage, influxdb,
                               lambda: verify.compare(source, storage, begin,
                                                      end))
                assert lines_ and all(line.agrees for line in lines_)
                again = timed('second run, nothing to store', points,
                              storage, influxdb, lambda: rated.copy_rated(
                                  source, storage, begin, end, step,
                                  out=_quiet))
                assert again.stored == 0, again
        finally:
            influxdb.stop()
    return 0


def _quiet(_line):
    pass


if __name__ == '__main__':
    sys.exit(main())
