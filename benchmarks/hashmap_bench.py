"""Hashmap rating throughput: points priced per second.

1,000 rules (10 services with 3 fields each, mappings flat and rate,
service and field thresholds, 5 groups, a tenth of the rules belonging to
5 tenants) price 1,000,000 points, split two ways, and once more after a
change to one service's rules:

- ``frames``: one frame per scope, 10 scopes (half of them tenants with
  rules of their own) of 100,000 points each, each priced with its
  scope's view of the compiled rule set (the fewest calls);
- ``processor``: the processor's pattern, one frame per scope and period
  (``--frame-points``, 1,000 by default, a tenth per service) over 100
  scopes, period after period: each period's frames (a processor round)
  priced as the processor's store group rates them
  (:class:`~cloudkitty.orchestrator.batch.StoreGroup`): a
  :class:`~cloudkitty.rating.Pipeline` built from the modules' states
  read for the round, whose :meth:`~cloudkitty.rating.Pipeline.rate_many`
  prices the frames of each flush (:data:`~cloudkitty.orchestrator.batch.
  MAX_POINTS` points at most) together, the rules read from a stand-in
  of the database;
- ``frame by frame``: the same frames, each priced alone
  (``Pipeline.rate``), as a reprocessing task's periods are (and as
  the processor did before it rated a round's frames together);
- ``one service changed``: the processor's pattern again, by a module
  that has priced the data once, after the costs of one of the 10
  services' rules change (an operator's change of one service): the other
  services' compiled rules and point plans are kept
  (:meth:`~cloudkitty.rating.hash.rules.RuleSet.adopt`).

Each is measured ``cold``, on rules just compiled (for the first three,
a period after every service's rules changed: every point plan is
computed on first use; for the last, the changed service's plans only),
then ``warm``, on the same rules again (what the module does while rules
do not change). Every pass reads and sums every price it made, and must
find the same sum as the others (:class:`Tally`); the figures are of
pricing, that reading left out, and then (CPU time) with it.

``python benchmarks/hashmap_bench.py [--points N] [--rules N] [--profile]``
prints the figures; :func:`run` returns them for ``benchmarks/run.py``
(and :func:`report` words them). Wall-clock figures suffer on a busy
machine; the CPU-time figures less so.
"""

import argparse
import contextlib
import cProfile
import datetime
import decimal
import gc
import pstats
import random
import sys
import time
import types

from cloudkitty import dataframe
from cloudkitty.orchestrator import batch
from cloudkitty import rating
from cloudkitty.rating import hash as hashmap
from cloudkitty.rating.hash import rules

D = decimal.Decimal

SERVICES = [f'service{i}' for i in range(10)]
FIELDS = ['flavor', 'az', 'memory']          # memory carries thresholds
GROUPS = [None, 'compute', 'storage', 'network', 'licence']
SCOPES = [f'project{i}' for i in range(10)]
TENANTS = SCOPES[:5]
FLAVORS = [f'm{i}.size{j}' for i in range(5) for j in range(8)]
ZONES = ['nova', 'az1', 'az2', 'az3']
MEMORY = [str(2 ** i) for i in range(4, 12)]
START = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
PERIOD = datetime.timedelta(hours=1)


def build_rules(count=1000, seed=0):
    """A :class:`rules.RuleSet` of ``count`` rules, a tenth for tenants."""
    rng = random.Random(seed)
    mappings, thresholds = [], []
    seen = set()

    def cost():
        return D(rng.randint(1, 10 ** 6)).scaleb(-rng.randint(2, 6))

    while len(mappings) + len(thresholds) < count:
        service = rng.choice(SERVICES)
        group = rng.choice(GROUPS)
        tenant = rng.choice(TENANTS) if rng.random() < 0.1 else None
        type_ = rng.choice(rules.RULE_TYPES)
        kind = rng.random()
        if kind < 0.05:
            key = ('sm', service, group, tenant)
            rule = rules.MappingRule(service, None, None, type_, cost(),
                                     group, tenant)
        elif kind < 0.75:
            field = rng.choice(FIELDS[:2])
            value = rng.choice(FLAVORS if field == 'flavor' else ZONES)
            key = ('fm', service, field, value, group, tenant)
            rule = rules.MappingRule(service, field, value, type_, cost(),
                                     group, tenant)
        elif kind < 0.9:
            level = D(rng.choice(MEMORY))
            key = ('ft', service, level, tenant)
            rule = rules.ThresholdRule(service, 'memory', level, type_,
                                       cost(), group, tenant)
        else:
            level = D(rng.randint(0, 400))
            key = ('st', service, level, tenant)
            rule = rules.ThresholdRule(service, None, level, type_, cost(),
                                       group, tenant)
        if key in seen:
            continue
        seen.add(key)
        (mappings if isinstance(rule, rules.MappingRule)
         else thresholds).append(rule)
    return rules.RuleSet(mappings, thresholds)


def _labels_and_quantities(rng, scopes):
    """500 label pairs ``(groupby, metadata)`` and 400 quantities, for
    points to share (DataPoint keeps read-only mappings as they are)."""
    labels = []
    for _ in range(500):
        metadata = {'flavor': rng.choice(FLAVORS + ['unpriced']),
                    'az': rng.choice(ZONES),
                    'memory': rng.choice(MEMORY),
                    'image': 'cirros'}
        groupby = {'id': f'{rng.getrandbits(64):016x}',
                   'project_id': rng.choice(scopes)}
        labels.append((types.MappingProxyType(groupby),
                       types.MappingProxyType(metadata)))
    quantities = [D(rng.randint(0, 500)) for _ in range(300)] + [
        D(rng.randint(0, 50000)).scaleb(-2) for _ in range(100)]
    return labels, quantities


def _frame(rng, labels, quantities, count, start):
    """A frame of ``count`` points starting at ``start``, a tenth of them
    for each service, priced nothing yet as a collector's are: one
    :data:`~cloudkitty.dataframe.NO_PRICE` object for all."""
    frame = dataframe.DataFrame(start, start + PERIOD)
    for service in SERVICES:
        chosen = [rng.choice(labels) for _ in range(count // len(SERVICES))]
        frame.add_points(
            (dataframe.DataPoint('unit', rng.choice(quantities),
                                 dataframe.NO_PRICE, groupby, metadata)
             for groupby, metadata in chosen), service)
    return frame


def build_frames(count=1_000_000, seed=1):
    """``{scope: DataFrame}``, ``count`` points in all, labels shared."""
    rng = random.Random(seed)
    labels, quantities = _labels_and_quantities(rng, SCOPES)
    return {scope: _frame(rng, labels, quantities, count // len(SCOPES),
                          START)
            for scope in SCOPES}


def build_periods(count=1_000_000, frame_points=1000, seed=1):
    """``[(start, scope, DataFrame)]`` in the order a processor rates
    them: period after period, each scope's frame of ``frame_points``
    points; up to 100 scopes, whose first 5 are the tenants with rules."""
    rng = random.Random(seed)
    frames = max(1, count // frame_points)
    scopes = [f'project{i}' for i in range(min(100, frames))]
    labels, quantities = _labels_and_quantities(rng, scopes)
    periods = []
    for period in range(max(1, frames // len(scopes))):
        start = START + period * PERIOD
        periods.extend(
            (start, scope, _frame(rng, labels, quantities, frame_points,
                                  start))
            for scope in scopes)
    return periods


def price_all(rule_set, frames):
    """Price each scope's frame with its own view; return the
    :class:`Tally` of the priced frames."""
    tally = Tally()
    for scope, frame in frames.items():
        tally.read(rule_set.for_scope(scope).process(frame))
    return tally


class Tally:
    """What a pass priced: the number of points, the exact sum of their
    prices (:data:`rules.CONTEXT`), and the time the reading took.

    Every price of every priced frame is read as the storage reads the
    frame's price columns (:meth:`~cloudkitty.dataframe.DataFrame.
    itercolumns`), so that no pricing work can be left undone, and summed,
    so that every pass must price alike. The sum is the benchmark's check,
    not pricing: :meth:`read` times itself (``wall``, ``cpu``, seconds),
    for the figures to leave it out.
    """

    def __init__(self):
        self.count = 0
        self.total = 0
        self.wall = self.cpu = 0.0

    def read(self, frame):
        """Count and sum the prices of the priced ``frame``."""
        wall, cpu = time.perf_counter(), time.process_time()
        with decimal.localcontext(rules.CONTEXT):
            for _, points, prices in frame.itercolumns():
                self.count += len(points)
                self.total += sum(prices)
        self.wall += time.perf_counter() - wall
        self.cpu += time.process_time() - cpu


class _RulesRead:
    """Stands in for the rules database: the same rules at any start,
    until :meth:`change`."""

    def __init__(self, rule_set):
        self._rule_set = rule_set
        self._revision = 1

    def revision(self):
        return self._revision

    def load_rules(self, start):
        return self._rule_set

    def change(self, rule_set):
        """Serve ``rule_set`` from now on (its revision moves)."""
        self._rule_set = rule_set
        self._revision += 1


def one_service_changed(rule_set, service=SERVICES[0]):
    """``rule_set`` with the costs of ``service``'s rules doubled."""
    def changed(rule):
        return rule._replace(cost=rule.cost * 2) \
            if rule.service == service else rule
    return rules.RuleSet(map(changed, rule_set.mappings),
                         map(changed, rule_set.thresholds))


def _changed_module(rule_count, periods):
    """A hashmap module that priced ``periods`` (warm), whose rules then
    change for one service: what a processor holds after an operator's
    change to one service's rules."""
    rule_set = build_rules(rule_count)
    module = _module(rule_set)
    price_rounds(module, periods)
    module._hash_db().change(one_service_changed(rule_set))
    return module


def _module(rule_set):
    """A hashmap module reading ``rule_set``, as the processor loads it."""
    module = hashmap.HashMap(hash_db=_RulesRead(rule_set))
    module.module_name = 'hashmap'
    return module


#: The modules' states, as the processor reads them for each round.
_STATES = {'hashmap': {'enabled': True, 'priority': 1}}


def price_rounds(module, periods):
    """Price the frames of each period as the processor does: a pipeline
    per round, the round's frames rated together, :data:`batch.
    MAX_POINTS` points at most per call; return the :class:`Tally` of the
    priced frames."""
    tally = Tally()
    rounds = {}
    for start, scope, frame in periods:
        rounds.setdefault(start, []).append((frame, scope))
    for items in rounds.values():
        pipeline = rating.Pipeline({'hashmap': module}, dict(_STATES))
        for flush in _flushes(items):
            for frame in pipeline.rate_many(flush):
                tally.read(frame)
    return tally


def _flushes(items):
    """``items`` (``[(frame, scope)]``) cut where a store group flushes."""
    flush, points = [], 0
    for item in items:
        flush.append(item)
        points += len(item[0])
        if points >= batch.MAX_POINTS:
            yield flush
            flush, points = [], 0
    if flush:
        yield flush


def price_periods(module, periods):
    """Price each frame alone, as a reprocessing task does; return the
    :class:`Tally` of the priced frames."""
    tally = Tally()
    pipeline, round_start = None, None
    for start, scope, frame in periods:
        if start != round_start:
            pipeline = rating.Pipeline({'hashmap': module}, dict(_STATES))
            round_start = start
        tally.read(pipeline.rate(frame, scope))
    return tally


def _timed(function, *args):
    wall, cpu = time.perf_counter(), time.process_time()
    result = function(*args)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def run(points=1_000_000, rule_count=1000, repeat=3, frame_points=1000):
    """Measure; best of ``repeat`` passes of each kind.

    Returns ``{"name", "points", "rules", "compile_ms"}`` and, per
    pattern of :func:`_patterns`, ``{"cold", "warm"}``, each
    ``{"points_per_second", "cpu_points_per_second",
    "read_cpu_points_per_second"}``: pricing, wall clock and CPU time,
    the reading of the prices (:class:`Tally`) left out; then pricing and
    reading, CPU time.
    """
    compile_s = min(_timed(build_rules, rule_count)[1] for _ in range(3))
    result = {'name': 'hashmap', 'points': points, 'rules': rule_count,
              'compile_ms': compile_s * 1000}
    for name, (build, price, fresh) in _patterns(
            points, rule_count, frame_points).items():
        result[name] = _cold_and_warm(repeat, build(), price, fresh)
    return result


def _patterns(points, rule_count, frame_points):
    """``{name: (build the data, price(rules, data), fresh rules for the
    data)}``."""
    return {
        'frames': (lambda: build_frames(points), price_all,
                   lambda _data: build_rules(rule_count)),
        'processor': (lambda: build_periods(points, frame_points),
                      price_rounds,
                      lambda _data: _module(build_rules(rule_count))),
        'frame by frame': (lambda: build_periods(points, frame_points),
                           price_periods,
                           lambda _data: _module(build_rules(rule_count))),
        'one service changed': (
            lambda: build_periods(points, frame_points), price_rounds,
            lambda periods: _changed_module(rule_count, periods)),
    }


def _cold_and_warm(repeat, data, price, fresh):
    """Best of ``repeat`` cold passes (``price(fresh(data), data)``), each
    followed by a warm one on the same rules. Every pass must find the
    same sum of prices, or ``AssertionError``."""
    best = {'cold': {}, 'warm': {}}
    priced = totals = None
    for _ in range(repeat):
        rules_in_force = fresh(data)
        for kind in ('cold', 'warm'):
            tally, wall, cpu = _timed(price, rules_in_force, data)
            assert totals in (None, tally.total), (tally.total, totals)
            totals, priced = tally.total, tally.count
            for name, seconds in (('points_per_second', wall - tally.wall),
                                  ('cpu_points_per_second', cpu - tally.cpu),
                                  ('read_cpu_points_per_second', cpu)):
                best[kind][name] = min(seconds,
                                       best[kind].get(name, seconds))
    return {kind: {name: priced / seconds
                   for name, seconds in figures.items()}
            for kind, figures in best.items()}


def report(result):
    """One line per pattern and pass kind, for people."""
    lines = [(f"hashmap: {result['points']:,} points, {result['rules']} "
              f"rules (compiled in {result['compile_ms']:.1f} ms)")]
    for pattern in ('frames', 'processor', 'frame by frame',
                    'one service changed'):
        for kind in ('cold', 'warm'):
            figures = result[pattern][kind]
            lines.append(
                f"  {pattern} {kind}: {figures['points_per_second']:,.0f} "
                f"points/s ({figures['cpu_points_per_second']:,.0f} "
                f"points/s of CPU time; "
                f"{figures['read_cpu_points_per_second']:,.0f} with the "
                f"reading of every price)")
    return '\n'.join(lines)


@contextlib.contextmanager
def _collections_timed():
    """Yield ``{generation: [collections, seconds]}``, filled while the
    block runs."""
    collections = {}
    started = []

    def callback(phase, info):
        if phase == 'start':
            started.append(time.perf_counter())
            return
        entry = collections.setdefault(info['generation'], [0, 0.0])
        entry[0] += 1
        entry[1] += time.perf_counter() - started.pop()

    gc.callbacks.append(callback)
    try:
        yield collections
    finally:
        gc.callbacks.remove(callback)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--points', type=int, default=1_000_000)
    parser.add_argument('--rules', type=int, default=1000)
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--frame-points', type=int, default=1000,
                        help='points per frame of the processor pattern')
    parser.add_argument('--profile', action='store_true',
                        help='profile one cold pass of each pattern, print '
                             'the top functions and the time the garbage '
                             'collector took')
    args = parser.parse_args(argv)
    if args.profile:
        for name, (build, price, fresh) in _patterns(
                args.points, args.rules, args.frame_points).items():
            print(f'== {name}: one cold pass')
            profiler = cProfile.Profile()
            data = build()
            rules_in_force = fresh(data)
            with _collections_timed() as collections:
                profiler.runcall(price, rules_in_force, data)
            pstats.Stats(profiler).sort_stats('tottime').print_stats(12)
            print('garbage collector (within the figures above, charged '
                  'to whatever ran): '
                  + ', '.join(f'generation {generation}: {count} '
                              f'collections, {seconds:.3f} s'
                              for generation, (count, seconds)
                              in sorted(collections.items())))
        return 0
    print(report(run(args.points, args.rules, args.repeat,
                     args.frame_points)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
