"""End-to-end benchmark: file collector -> hashmap (1,000 rules) -> storage.

    python benchmarks/pipeline_bench.py --points 1000000 --backend postgresql
    python benchmarks/pipeline_bench.py --points 100000 --backend sqlite
    python benchmarks/pipeline_bench.py --points 100000 --profile

The usage of ``worker_bench.py`` (its :func:`~worker_bench.write_usage`:
100 scopes, 10 metrics, 100 resources each per hourly period), rated by
the processor's own code path (:func:`cloudkitty.orchestrator.processor.
run_until_caught_up`, one process) with the ``hashmap`` module enabled in
the module state, on ``--rules`` rules (1,000 by default) put in the
database through :class:`cloudkitty.rating.hash.db.HashMapDB`: one service
per metric, fields ``flavor``, ``user_id`` and ``id`` (the usage's
metadata and groupby keys), flat and rate mappings, service thresholds
on the qty, 5 groups (the default one among them), a tenth of the rules
for 5 of the scopes (tenant-specific). Prints points/s of wall and CPU
time (of this process; the database server's is not counted), the time of
indexing the usage file apart (as ``worker_bench.py``), and the total price
stored beside the same points priced once by the module directly: they
must be equal and not zero, or the run fails (hashmap silently off, or
points lost). ``--profile`` prints the top entries of one run by
cumulative time, the collection threads' work merged in.
"""

import argparse
import contextlib
import cProfile
import datetime
import decimal
import os
import pstats
import random
import sys
import tempfile
import threading
import time

import worker_bench  # noqa: I100  (beside this script; puts the checkout
#                      on sys.path for the imports below)

from cloudkitty import collector as ck_collector  # noqa: E402
from cloudkitty import dataframe  # noqa: E402
from cloudkitty import db  # noqa: E402
from cloudkitty.collector import file as file_collector  # noqa: E402
from cloudkitty.db import migration  # noqa: E402
from cloudkitty.orchestrator import processor  # noqa: E402
from cloudkitty.rating.hash import db as hash_db  # noqa: E402
from cloudkitty import storage as ck_storage  # noqa: E402
from cloudkitty import storage_state  # noqa: E402

D = decimal.Decimal
START = worker_bench.START
PERIOD = datetime.timedelta(seconds=worker_bench.PERIOD)
GROUPS = [None, 'compute', 'storage', 'network', 'licence']
FLAVORS = ['m1.tiny', 'm1.small', 'm1.medium', 'm1.large']
USERS = [f'user-{i}' for i in range(7)]
TENANTS = 5
#: What ``--profile-clock`` names: the profiles' timers.
CLOCKS = {'wall': time.perf_counter, 'cpu': time.thread_time}
#: Service thresholds per service, on the qty (0.01 to 100 in the usage).
LEVELS = [D(5), D(20), D(50), D(80)]


def rule_specs(scopes, count=1000, seed=3):
    """``count`` rules as ``(kind, service, field, value, type, cost,
    group, tenant)``, ``kind`` ``"mapping"`` or ``"threshold"`` (``value``
    its level), spread evenly over the metrics' services; a tenth belong
    to the first :data:`TENANTS` scopes. No two clash in the database.
    """
    rng = random.Random(seed)
    services = [f'metric_{m}' for m in range(worker_bench.METRICS)]

    def cost(type_):
        if type_ == 'rate':
            return D(rng.randint(50, 200)).scaleb(-2)
        return D(rng.randint(1, 10 ** 5)).scaleb(-rng.randint(3, 6))

    def rule(kind, service, field, value, group=None, tenant=None):
        type_ = rng.choice(['flat', 'rate'])
        return (kind, service, field, value, type_, cost(type_), group,
                tenant)

    tenant_count = count // 10
    global_rules, tenant_rules = [], []
    for service in services:
        global_rules.extend(rule('threshold', service, None, level)
                            for level in LEVELS)
        global_rules.extend(rule('mapping', service, None, None, group)
                            for group in GROUPS)
        global_rules.extend(rule('mapping', service, 'flavor', flavor, group)
                            for flavor in FLAVORS for group in GROUPS)
        global_rules.extend(rule('mapping', service, 'user_id', user, group)
                            for user in USERS for group in GROUPS[:3])
        for tenant in scopes[:TENANTS]:
            tenant_rules.extend(
                rule('mapping', service, 'flavor', flavor, tenant=tenant)
                for flavor in rng.sample(FLAVORS, 2))
    # The rest, up to count: mappings of single resources ('id').
    ids = [f'{scope}-r{r}' for scope in scopes
           for r in range(worker_bench.RESOURCES)]
    taken = set()
    while len(global_rules) < count - tenant_count:
        service, value = rng.choice(services), rng.choice(ids)
        if (service, value) not in taken:
            taken.add((service, value))
            global_rules.append(rule('mapping', service, 'id', value,
                                     rng.choice(GROUPS)))
    return global_rules[:count - tenant_count] + tenant_rules[:tenant_count]


def load_rules(engine, specs):
    """Create ``specs`` (:func:`rule_specs`) through the hashmap DB layer,
    valid from a day before :data:`START`; returns their number."""
    rules_db = hash_db.HashMapDB(engine)
    services, fields, groups = {}, {}, {None: None}
    for group in GROUPS[1:]:
        groups[group] = rules_db.create_group(group)['group_id']
    since = START - datetime.timedelta(days=1)
    for kind, service, field, value, type_, cost, group, tenant in specs:
        if service not in services:
            services[service] = rules_db.create_service(
                service)['service_id']
        parent = {'service_id': services[service]}
        if field is not None:
            if (service, field) not in fields:
                fields[service, field] = rules_db.create_field(
                    services[service], field)['field_id']
            parent = {'field_id': fields[service, field]}
        if kind == 'threshold':
            rules_db.create_threshold(value, cost, type_,
                                      group_id=groups[group],
                                      tenant_id=tenant, **parent)
        else:
            rules_db.create_mapping(cost, type_, value,
                                    group_id=groups[group], tenant_id=tenant,
                                    start=since, force=True, **parent)
    return len(specs)


def prepare(folder, url, n_points, n_scopes, rule_count):
    """Usage, migrated database, scope states, hashmap rules and module
    state; returns ``(conf, n_periods, rules_s)``."""
    scopes, n_periods = worker_bench.write_usage(folder, n_points, n_scopes)
    conf = worker_bench.make_conf(folder, url, scopes)
    engine = db.create_engine(url)
    migration.upgrade(engine)
    states = storage_state.ScopeStateManager(
        engine, 'project_id', 'source', 'file')
    for scope in scopes:
        states.set_last_processed_timestamp(scope, START - PERIOD)
    began = time.perf_counter()
    load_rules(engine, rule_specs(scopes, rule_count))
    rules_s = time.perf_counter() - began
    storage_state.ModuleStateManager(engine).set_state('hashmap', True)
    engine.dispose()
    ck_storage.get_storage(conf).init()
    return conf, n_periods, rules_s


def price_directly(conf, end):
    """The total price of every collected point, priced by the hashmap
    module alone, a frame per scope and period, outside the processor."""
    parts = processor.build(conf, processor.validate(conf))
    module = parts.modules['hashmap']
    total = D(0)
    try:
        for scope in parts.fetcher.get_tenants():
            start = START
            while start < end:
                usage = parts.scope_worker.usage(scope, start,
                                                 start + PERIOD)
                frame = dataframe.DataFrame(start, start + PERIOD)
                for metric in parts.scope_worker.collector.conf:
                    try:
                        type_, points = usage(metric)
                        frame.add_points(points, type_)
                    except ck_collector.NoDataCollected:
                        pass
                module.reload_config(start)
                total += sum(point.price for _, point
                             in module.rate(frame, scope).iterpoints())
                start += PERIOD
    finally:
        parts.engine.dispose()
    return total


@contextlib.contextmanager
def _profiled(profiles, timer):
    """Profile the block into ``profiles`` (a list) with ``timer``: this
    thread's profile, then one per thread started while the block runs
    (the collection pool's)."""
    profiles.append(cProfile.Profile(timer))
    main_profile = profiles[-1]

    def start_profile(*_):
        sys.setprofile(None)
        profile = cProfile.Profile(timer)
        profiles.append(profile)
        profile.enable()

    threading.setprofile(start_profile)
    main_profile.enable()
    try:
        yield
    finally:
        main_profile.disable()
        threading.setprofile(None)


#: The parts of a run, each the time spent in a package of cloudkitty
#: once entered from outside it (what it calls elsewhere included).
PHASES = [('collect', 'collector'), ('rate', 'rating'),
          ('store', 'storage'), ('states', 'storage_state')]


def phase_shares(stats):
    """``[(phase, seconds)]`` of :data:`PHASES` in ``stats`` (pstats),
    then ``('other', seconds)``: the rest of the profile's total."""
    shares = []
    for phase, package in PHASES:
        folder = os.path.join('cloudkitty', package, '')

        def inside(key, folder=folder):
            return folder in key[0]

        seconds = sum(edge[3]
                      for key, (*_, callers) in stats.stats.items()
                      if inside(key)
                      for caller, edge in callers.items()
                      if not inside(caller))
        shares.append((phase, seconds))
    total = sum(entry[2] for entry in stats.stats.values())
    shares.append(('other', total - sum(s for _, s in shares)))
    return shares


def _without_idle(stats):
    """``stats`` less the collection pool's loop and its wait for work:
    the threads' idle time, which would top a wall-time profile."""
    for key in list(stats.stats):
        path, _, function = key
        if function == "<method 'get' of '_queue.SimpleQueue' objects>" or (
                path.endswith(os.path.join('concurrent', 'futures',
                                           'thread.py'))
                and function == '_worker'):
            del stats.stats[key]
    return stats


def run(backend, n_points, n_scopes=100, rule_count=1000, profile=None,
        profile_timer=time.perf_counter):
    """Rate ``n_points`` through the processor with hashmap; the figures.

    ``profile``: a list that receives the run's cProfile profiles, timed
    with ``profile_timer``.
    """
    with tempfile.TemporaryDirectory() as folder, \
            worker_bench.database(backend) as url:
        conf, n_periods, rules_s = prepare(folder, url, n_points, n_scopes,
                                           rule_count)
        began = time.perf_counter()
        file_collector.load_index(folder)
        indexing = time.perf_counter() - began

        end = START + PERIOD * n_periods
        with contextlib.ExitStack() as stack:
            if profile is not None:
                stack.enter_context(_profiled(profile, profile_timer))
            wall, cpu = time.perf_counter(), time.process_time()
            summary = processor.run_until_caught_up(
                conf, use_locks=False, clock=lambda: end)
            wall = time.perf_counter() - wall
            cpu = time.process_time() - cpu

        store = ck_storage.get_storage(conf)
        stored = store.retrieve(begin=START, end=end, limit=1)['total']
        price = store.total(begin=START, end=end)['results'][0]['rate']
        store.engine.dispose()
        expected = price_directly(conf, end)
    if stored != n_points or summary['failed']:
        raise RuntimeError(f'{stored} of {n_points} points stored; '
                           f'failures: {summary["failed"]}')
    if not expected or price != expected:
        raise RuntimeError(f'stored price {price}, the module alone prices '
                           f'{expected}: hashmap did not rate these points')
    return {'backend': backend, 'points': n_points, 'rules': rule_count,
            'rules_s': rules_s, 'periods': summary['periods'],
            'indexing_s': indexing, 'wall_s': wall, 'cpu_s': cpu,
            'price': price}


def report(result):
    """The figures, for people."""
    return (
        f'pipeline  {result["backend"]:<10} {result["points"]:>9} points, '
        f'{result["rules"]} hashmap rules, {result["periods"]} '
        f'scope-periods: {result["points"] / result["wall_s"]:>9,.0f} '
        f'points/s ({result["wall_s"]:.1f} s), '
        f'{result["points"] / result["cpu_s"]:,.0f} points per CPU second '
        f'of the process ({result["cpu_s"]:.1f} s); indexing the usage '
        f'file {result["indexing_s"]:.1f} s apart; rules created in '
        f'{result["rules_s"]:.1f} s\n'
        f'  total price stored {result["price"]}, '
        f'equal to the module pricing the points alone')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--points', type=int, default=1000000)
    parser.add_argument('--scopes', type=int, default=100)
    parser.add_argument('--rules', type=int, default=1000)
    parser.add_argument('--backend', default='postgresql',
                        choices=['sqlite', 'postgresql', 'mariadb'])
    parser.add_argument('--profile', action='store_true',
                        help='print the top 25 entries of the run by '
                             'cumulative time')
    parser.add_argument('--profile-clock', choices=sorted(CLOCKS),
                        default='wall',
                        help='what the profile times: wall time (waits on '
                             'the database and for the CPU included) or '
                             'the CPU time of each thread')
    args = parser.parse_args(argv)
    profiles = [] if args.profile else None
    print(report(run(args.backend, args.points, args.scopes, args.rules,
                     profiles, CLOCKS[args.profile_clock])), flush=True)
    if profiles:
        print(f'== profile, {args.profile_clock} time ({len(profiles) - 1} '
              'collection threads merged in, less their idle wait for work; '
              'the run is slower under the profiler)')
        stats = _without_idle(pstats.Stats(*profiles))
        shares = phase_shares(stats)
        total = sum(seconds for _, seconds in shares)
        print('phases: ' + ', '.join(
            f'{phase} {seconds:.1f} s ({seconds / total:.0%})'
            for phase, seconds in shares), flush=True)
        stats.sort_stats('cumulative').print_stats(25)
    return 0


if __name__ == '__main__':
    sys.exit(main())
