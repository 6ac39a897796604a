"""Collection benchmark: one pass over many scopes from a real Prometheus.

    python benchmarks/collect_bench.py --scopes 1000 --metrics 10

Loads one hour of usage of ``--scopes`` scopes and ``--metrics`` metrics
into a real Prometheus (``promtool tsdb create-blocks-from openmetrics``),
then runs the processor's own code path
(:func:`cloudkitty.orchestrator.processor.run_until_caught_up`: file locks,
the ``noop`` rating, the ``sqlalchemy`` storage on a throwaway SQLite
database) over that one period twice: scope by scope (the collector's
grouped collection turned off, as upstream does it) and grouped (one query
per metric for all the scopes due). Prints, for each, the number of queries
Prometheus answered (its own ``prometheus_http_requests_total``), the time
of the pass that rates the period and that of the whole call (building the
processor's parts, and a second pass finding nothing left), and checks
that both stored the same totals.
"""

import argparse
import datetime
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

from oslo_config import cfg  # noqa: E402

from cloudkitty.collector import prometheus as prom  # noqa: E402
from cloudkitty import conf as ck_conf  # noqa: E402
from cloudkitty import db  # noqa: E402
from cloudkitty.db import migration  # noqa: E402
from cloudkitty.orchestrator import processor  # noqa: E402
from cloudkitty import storage as ck_storage  # noqa: E402
from cloudkitty import storage_state  # noqa: E402
from cloudkitty.tests.functional.prometheus import server  # noqa: E402

HOUR = datetime.timedelta(hours=1)

CONF = """\
[collect]
collector = prometheus
period = 3600
wait_periods = 2
metrics_conf = {folder}/metrics.yml

[collector_prometheus]
prometheus_url = {url}
prometheus_user = {user}
prometheus_password = {password}

[fetcher]
backend = source

[fetcher_source]
sources = {scopes}

[orchestrator]
coordination_url = file://{folder}/locks
max_threads = 10

[database]
connection = sqlite:///{folder}/{mode}.sqlite

[storage]
backend = sqlalchemy
"""


def series(t0, scopes, metrics):
    """Three samples of one resource per scope and metric in the hour."""
    p = int(t0.timestamp())
    return [(f'bench_metric_{m}', {'project_id': scope, 'id': f'{scope}-r',
                                   'flavor': 'm1.small'},
             [(p + 600, m + 1), (p + 1800, m + 2), (p + 3000, m + 1.5)])
            for m in range(metrics) for scope in scopes]


def metrics_yml(metrics):
    lines = ['metrics:']
    for m in range(metrics):
        lines += [f'  bench_metric_{m}:', '    unit: u',
                  '    groupby: [id]', '    metadata: [flavor]']
    return '\n'.join(lines) + '\n'


def prepare(folder, mode, url, scopes, t0):
    """Configuration and database of one run; returns the ConfigOpts."""
    path = os.path.join(folder, f'{mode}.conf')
    with open(path, 'w') as stream:
        stream.write(CONF.format(folder=folder, url=url, user=server.USER,
                                 password=server.PASSWORD, mode=mode,
                                 scopes=','.join(scopes)))
    conf = ck_conf.register_all(cfg.ConfigOpts())
    conf(['--config-file', path], project='cloudkitty',
         default_config_files=[])
    engine = db.create_engine(conf.database.connection)
    migration.upgrade(engine)
    states = storage_state.ScopeStateManager(engine, 'project_id', 'source',
                                             'prometheus')
    for scope in scopes:
        states.create_scope(scope, last_processed_timestamp=t0 - HOUR)
    engine.dispose()
    ck_storage.get_storage(conf).init()
    return conf


def timed_passes(durations):
    """Make ``Processor.run_pass`` append its duration to ``durations``."""
    run_pass = processor.Processor.run_pass

    def timed(self, *args, **kwargs):
        began = time.perf_counter()
        try:
            return run_pass(self, *args, **kwargs)
        finally:
            durations.append(time.perf_counter() - began)
    processor.Processor.run_pass = timed


def run(conf, prometheus, t0, grouped, durations):
    """``(queries, seconds of the first pass, seconds in all, totals by
    type)`` of ``run_until_caught_up``: a pass rating the period, then one
    finding nothing left."""
    prom.PrometheusCollector.grouped_collection = grouped
    before = prometheus.query_count()
    del durations[:]
    began = time.perf_counter()
    # Only the period starting at t0 is due at this instant.
    summary = processor.run_until_caught_up(
        conf, clock=lambda: t0 + 2 * HOUR + datetime.timedelta(seconds=1))
    seconds = time.perf_counter() - began
    queries = prometheus.query_count() - before
    assert not summary['failed'], summary['failed']
    assert summary['periods'] == len(summary['scopes'])
    totals = ck_storage.get_storage(conf).total(
        groupby=['type'], begin=t0, end=t0 + HOUR, paginate=False)
    return queries, durations[0], seconds, {
        row['type']: row['qty'] for row in totals['results']}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--scopes', type=int, default=1000)
    parser.add_argument('--metrics', type=int, default=10)
    args = parser.parse_args(argv)
    now = datetime.datetime.now(datetime.timezone.utc)
    t0 = now.replace(minute=0, second=0, microsecond=0) - 72 * HOUR
    scopes = [f'scope-{i:04d}' for i in range(args.scopes)]
    with tempfile.TemporaryDirectory() as folder:
        began = time.perf_counter()
        server.create_blocks(server.openmetrics(
            series(t0, scopes, args.metrics)), os.path.join(folder, 'data'))
        prometheus = server.Prometheus(os.path.join(folder, 'data')).start()
        print(f'{args.scopes} scopes x {args.metrics} metrics loaded into '
              f'Prometheus in {time.perf_counter() - began:.1f} s',
              flush=True)
        with open(os.path.join(folder, 'metrics.yml'), 'w') as stream:
            stream.write(metrics_yml(args.metrics))
        durations = []
        timed_passes(durations)
        try:
            results = {}
            for mode, grouped in (('per-scope', False), ('grouped', True)):
                conf = prepare(folder, mode, prometheus.url, scopes, t0)
                queries, first, seconds, totals = run(
                    conf, prometheus, t0, grouped, durations)
                results[mode] = totals
                print(f'{mode:>9}: {queries:6d} queries to Prometheus '
                      f'({queries / args.metrics:.0f} per metric), pass '
                      f'rating the period {first:.2f} s, run_until_caught_up '
                      f'{seconds:.2f} s', flush=True)
        finally:
            prometheus.stop()
    assert results['per-scope'] == results['grouped'], results
    print('both passes stored the same totals')


if __name__ == '__main__':
    main()
