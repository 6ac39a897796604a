"""Scope worker benchmark: collect from the file collector, rate, store.

    python benchmarks/worker_bench.py --points 1000000 --backend postgresql
    python benchmarks/worker_bench.py --points 1000000 --backend sqlite

Writes ``--points`` usage records (JSON lines) for ``--scopes`` scopes and
10 metrics over hourly periods, then runs the processor's own code path
(:func:`cloudkitty.orchestrator.processor.run_until_caught_up`, one process,
the ``noop`` rating module, the ``sqlalchemy`` storage on a throwaway
database) until every scope is caught up, and prints points/s. Indexing the
usage files happens once per process and is timed apart: it is the cost of
reading the files, not of the worker.
"""

import argparse
import contextlib
import datetime
import json
import os
import random
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

from oslo_config import cfg  # noqa: E402

from cloudkitty import conf as ck_conf  # noqa: E402
from cloudkitty import db  # noqa: E402
from cloudkitty.collector import file as file_collector  # noqa: E402
from cloudkitty.db import migration  # noqa: E402
from cloudkitty.orchestrator import processor  # noqa: E402
from cloudkitty import storage as ck_storage  # noqa: E402
from cloudkitty import storage_state  # noqa: E402
from cloudkitty.tests.functional import storage as db_servers  # noqa: E402

START = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
PERIOD = 3600
METRICS = 10
RESOURCES = 100  # per scope, metric and period


def write_usage(folder, n_points, n_scopes, seed=7):
    """Write ``n_points`` records; return (scope ids, number of periods).

    Each scope has :data:`RESOURCES` resources per metric, one record per
    resource, metric and period; the periods are as many as needed.
    """
    rng = random.Random(seed)
    per_period = n_scopes * METRICS * RESOURCES
    n_periods = -(-n_points // per_period)
    scopes = [f'scope-{i:04d}' for i in range(n_scopes)]
    flavors = ['m1.tiny', 'm1.small', 'm1.medium', 'm1.large']
    written = 0
    with open(os.path.join(folder, 'usage.jsonl'), 'w') as out:
        for period in range(n_periods):
            time_ = (START + datetime.timedelta(seconds=PERIOD * period)
                     ).strftime('%Y-%m-%dT%H:%M:%SZ')
            for scope in scopes:
                for metric in range(METRICS):
                    for resource in range(RESOURCES):
                        if written == n_points:
                            return scopes, n_periods
                        out.write(json.dumps({
                            'metric': f'metric_{metric}', 'scope': scope,
                            'time': time_,
                            'qty': rng.randint(1, 10000) / 100,
                            'labels': {
                                'id': f'{scope}-r{resource}',
                                'user_id': f'user-{resource % 7}',
                                'flavor': flavors[resource % 4],
                            }}) + '\n')
                        written += 1
    return scopes, n_periods


def write_metrics(folder):
    """metrics.yml for the benchmark's metrics; returns its path."""
    path = os.path.join(folder, 'metrics.yml')
    with open(path, 'w') as out:
        out.write('metrics:\n')
        for metric in range(METRICS):
            out.write(f'  metric_{metric}:\n    unit: unit\n'
                      '    groupby: [id, user_id]\n    metadata: [flavor]\n')
    return path


def make_conf(folder, url, scopes):
    """The processor's configuration for the benchmark."""
    conf = cfg.ConfigOpts()
    ck_conf.register_all(conf)
    conf([], project='cloudkitty')
    for name, value, group in [
            ('collector', 'file', 'collect'),
            ('metrics_conf', write_metrics(folder), 'collect'),
            ('period', PERIOD, 'collect'),
            ('wait_periods', 0, 'collect'),
            ('usage_path', folder, 'collector_file'),
            ('backend', 'source', 'fetcher'),
            ('sources', scopes, 'fetcher_source'),
            ('connection', url, 'database')]:
        conf.set_override(name, value, group)
    return conf


@contextlib.contextmanager
def database(backend):
    """Yield the URL of an empty database of ``backend``."""
    if backend == 'sqlite':
        with tempfile.TemporaryDirectory() as folder:
            yield f'sqlite:///{folder}/bench.sqlite'
    else:
        with db_servers.fresh_database(backend, prefix='ck_bench') as url:
            yield url


def run(backend, n_points, n_scopes=100):
    """Rate ``n_points`` with the scope worker; return the figures."""
    with tempfile.TemporaryDirectory() as folder, database(backend) as url:
        scopes, n_periods = write_usage(folder, n_points, n_scopes)
        conf = make_conf(folder, url, scopes)
        engine = db.create_engine(url)
        migration.upgrade(engine)
        states = storage_state.ScopeStateManager(
            engine, 'project_id', 'source', 'file')
        for scope in scopes:
            states.set_last_processed_timestamp(
                scope, START - datetime.timedelta(seconds=PERIOD))
        engine.dispose()
        ck_storage.get_storage(conf).init()

        began = time.perf_counter()
        file_collector.load_index(folder)
        indexing = time.perf_counter() - began

        end = START + datetime.timedelta(seconds=PERIOD * n_periods)
        began = time.perf_counter()
        summary = processor.run_until_caught_up(
            conf, use_locks=False, clock=lambda: end)
        elapsed = time.perf_counter() - began

        store = ck_storage.get_storage(conf)
        stored = store.retrieve(begin=START, end=end, limit=1)['total']
        store.engine.dispose()
    if stored != n_points or summary['failed']:
        raise RuntimeError(f'{stored} of {n_points} points stored; '
                           f'failures: {summary["failed"]}')
    return {'backend': backend, 'points': n_points,
            'periods': summary['periods'], 'indexing_s': indexing,
            'elapsed_s': elapsed, 'points_per_s': n_points / elapsed}


def report(result):
    """One line of figures."""
    return (f'scope worker  {result["backend"]:<10} {result["points"]:>9} '
            f'points in {result["periods"]} scope-periods: '
            f'{result["points_per_s"]:>10,.0f} points/s '
            f'({result["elapsed_s"]:.1f} s; indexing the usage file '
            f'{result["indexing_s"]:.1f} s apart)')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--points', type=int, default=1000000)
    parser.add_argument('--scopes', type=int, default=100)
    parser.add_argument('--backend', default='sqlite',
                        choices=['sqlite', 'postgresql', 'mariadb'])
    args = parser.parse_args(argv)
    print(report(run(args.backend, args.points, args.scopes)))


if __name__ == '__main__':
    main()
