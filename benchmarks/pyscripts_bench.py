"""pyscripts: the cost per period of running a script in its sandbox.

One script (a cent per unit, the documentation's example) prices frames of
``--points`` points (10,000 by default: a large scope's period), through
the module as the scope worker runs it (:meth:`PyScripts.process` on a
:class:`~cloudkitty.dataframe.DataFrame`), in sandbox processes with their
whole boundary (namespaces, private root, Landlock, seccomp). Printed:

- ``start``: a sandbox process started and confined, before any script
  (the cost a changed script, or a failed one, adds to its next period);
- ``cold``: the first period of a script (start, compile, run, both
  transfers);
- ``per period``: the median over ``--runs`` periods of the same script in
  its kept sandbox, the points per second, and the CPU time a period
  costs the processor and the sandbox together (what a busy machine does
  not inflate); the frame's encoding and decoding in the processor are
  part of it (``--split`` prints them apart).

``python benchmarks/pyscripts_bench.py [--points N] [--runs N] [--split]``.
The goal: a script over 10,000 points within one second per period.
"""

import argparse
import datetime
import decimal
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

from cloudkitty import dataframe  # noqa: E402
from cloudkitty.rating import pyscripts  # noqa: E402
from cloudkitty.rating.pyscripts import db as scripts_db  # noqa: E402
from cloudkitty.rating.pyscripts import sandbox  # noqa: E402

SCRIPT = '''\
import decimal
for points in data['usage'].values():
    for point in points:
        qty = point['vol']['qty']
        point['rating']['price'] = qty * decimal.Decimal('0.01')
'''
START = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)


class OneScript:
    """Stands for the data layer: one script, always valid."""

    def __init__(self, script):
        self.script = script

    def revision(self):
        return 1

    def load_scripts(self, start):
        return [self.script]


def make_frame(points, start=START):
    """A period of ``points`` points over 5 types, labels as collected."""
    frame = dataframe.DataFrame(start, start + datetime.timedelta(hours=1))
    for index in range(points):
        frame.add_point(dataframe.DataPoint(
            'instance', decimal.Decimal(index % 97) / 4, 0,
            {'project_id': 'p1', 'id': f'resource-{index}'},
            {'flavor': f'm1.size{index % 8}', 'az': 'nova'}),
            f'type{index % 5}')
    return frame


def _runner(module):
    """The pid of the process that runs the script (the last one below
    the kept sandbox's first process), read from /proc."""
    (pids,) = module._sandboxes().idle().values()
    pid = pids[0]
    while True:
        with open(f'/proc/{pid}/task/{pid}/children') as children:
            found = children.read().split()
        if not found:
            return pid
        pid = int(found[0])


def _cpu_of(pid):
    """CPU seconds used by process ``pid`` so far."""
    with open(f'/proc/{pid}/stat') as stat:
        fields = stat.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def run(points=10000, runs=5, split=False, out=sys.stdout):
    """Measure and print; returns ``{"start", "cold", "period"}`` in
    seconds."""
    frame = make_frame(points)
    script = scripts_db.Script('bench', 'cents', SCRIPT,
                               scripts_db.checksum(SCRIPT))
    limits = sandbox.Limits()

    started = time.perf_counter()
    process = sandbox.Sandbox(limits)
    try:
        process._start(time.monotonic() + limits.timeout)
        start = time.perf_counter() - started
        layers = process.layers
    finally:
        process.close()

    module = pyscripts.PyScripts(scripts_db=OneScript(script),
                                 pool=sandbox.SandboxPool(limits))
    try:
        started = time.perf_counter()
        priced = module.process(frame)
        cold = time.perf_counter() - started
        assert sum(p.price for _t, p in priced.iterpoints()) == sum(
            p.qty for _t, p in frame.iterpoints()) / 100
        runner = _runner(module)
        times, cpu = [], []
        for _ in range(runs):
            started = time.perf_counter()
            used = time.process_time() + _cpu_of(runner)
            module.process(frame)
            times.append(time.perf_counter() - started)
            cpu.append(time.process_time() + _cpu_of(runner) - used)
        if split:
            started = time.perf_counter()
            request = sandbox.encode_request(script.name, script.data, frame)
            encode = time.perf_counter() - started
            reply = module._sandboxes().call(
                request, key=(script.script_id, script.checksum))
            started = time.perf_counter()
            sandbox.decode_frame(reply['data'], frame)
            decode = time.perf_counter() - started
    finally:
        module.close()
    period = statistics.median(times)
    period_cpu = statistics.median(cpu)
    print(f'layers: {", ".join(layers)}', file=out)
    print(f'start: {start * 1000:.1f} ms (a sandbox started and confined)',
          file=out)
    print(f'cold: {cold * 1000:.1f} ms (first period of a script, '
          f'{points} points)', file=out)
    print(f'per period: {period * 1000:.1f} ms for {points} points '
          f'({points / period:,.0f} points/s, median of {runs}); CPU '
          f'time {period_cpu * 1000:.1f} ms (processor and sandbox)',
          file=out)
    if split:
        print(f'  of which encoding {encode * 1000:.1f} ms, decoding '
              f'{decode * 1000:.1f} ms in the processor', file=out)
    return {'start': start, 'cold': cold, 'period': period}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--points', type=int, default=10000)
    parser.add_argument('--runs', type=int, default=5)
    parser.add_argument('--split', action='store_true',
                        help='print the encoding and decoding apart')
    args = parser.parse_args(argv)
    run(args.points, args.runs, args.split)


if __name__ == '__main__':
    main()
