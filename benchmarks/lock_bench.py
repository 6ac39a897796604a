"""Lock attempts per pass: scopes shared out vs every worker tries every lock.

    python benchmarks/lock_bench.py                 # 3 workers, 10,000 scopes
    python benchmarks/lock_bench.py --scopes 1000 --work-ms 1

Three processor workers, each a process of its own with its own tooz
coordinator (as on three hosts), run the processor's passes
(:class:`cloudkitty.orchestrator.processor.Processor`, real
:class:`~cloudkitty.orchestrator.lock.ScopeLocks`) over the same scopes on a
``redis-server`` the benchmark starts on a free port; then the same with
the scopes shared out among the workers (tooz group and hash ring, what
``cloudkitty-processor`` does on redis and etcd). Each pass has one period
due per scope, which the first worker to lock the scope "rates" (sleeps
``--work-ms``); the scope worker is a stand-in, the collection and the
storage are not measured. The workers start each pass together.

Printed per mode: lock attempts per pass (all workers), of which refused
(held by another worker) and "nothing due" (taken after another worker had
rated the scope), the redis commands per pass, and the pass time (slowest
worker, median over ``--passes``).
"""

import argparse
import multiprocessing
import os
import queue
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

import redis  # noqa: E402

from cloudkitty.orchestrator import lock as ck_lock  # noqa: E402
from cloudkitty.orchestrator import processor  # noqa: E402
from cloudkitty.orchestrator import worker as ck_worker  # noqa: E402
from cloudkitty.tests.functional import coordination  # noqa: E402

WORKERS = 3


class CountingLocks(ck_lock.ScopeLocks):
    """:class:`ScopeLocks` counting its lock attempts."""

    attempts = 0

    def hold(self, scope_id):
        self.attempts += 1
        return super().hold(scope_id)


class StandInWorker:
    """Rates a scope's period when it is due in the current pass: ``rated``
    (shared between the processes) holds each scope's last rated pass."""

    collector = None  # no grouped collection: each scope in turn
    storage = None  # nothing is stored: the store groups stay empty

    def __init__(self, scopes, rated, current, work):
        self._index = {scope: i for i, scope in enumerate(scopes)}
        self._rated = rated
        self._current = current
        self._work = work

    def rate_scope(self, scope_id, max_periods=None, still_held=None,
                   store=None):
        i = self._index[scope_id]
        if self._rated[i] >= self._current.value:
            return ck_worker.ScopeResult(scope_id)
        time.sleep(self._work)
        # As the real worker: the lock checked once before each store.
        if still_held is not None and not still_held():
            return ck_worker.ScopeResult(scope_id, error='lock lost')
        self._rated[i] = self._current.value
        return ck_worker.ScopeResult(scope_id, rated=[self._current.value])


class Fetcher:
    def __init__(self, scopes):
        self._scopes = scopes

    def get_tenants(self):
        return list(self._scopes)


def run_worker(index, url, group, scopes, passes, shared, results):
    """One worker process: join, then ``passes`` passes in step with the
    others; put ``(attempts, refused, rated, seconds)`` per pass."""
    rated, current, barrier, work = shared
    locks = CountingLocks(url, f'bench-{index}'.encode(), group=group)
    proc = processor.Processor(StandInWorker(scopes, rated, current, work),
                               Fetcher(scopes), locks)
    assert locks.start()
    try:
        barrier.wait()  # everyone joined
        for number in range(1, passes + 1):
            if barrier.wait() == 0:
                current.value = number
            barrier.wait()
            before = locks.attempts
            began = time.perf_counter()
            summary = proc.run_pass()
            elapsed = time.perf_counter() - began
            results.put((index, number, locks.attempts - before,
                         len(summary.locked), summary.periods, elapsed))
        # A worker leaving the group would end the others' pass early.
        barrier.wait()
    except BaseException:
        barrier.abort()  # the others stop waiting for this one
        raise
    finally:
        locks.stop()


def measure(url, group, scopes, passes, work):
    """Figures of one mode: a dict of per-pass medians."""
    context = multiprocessing.get_context('fork')
    rated = context.Array('i', len(scopes), lock=False)
    current = context.Value('i', 0, lock=False)
    shared = (rated, current, context.Barrier(WORKERS), work)
    results = context.Queue()
    client = redis.Redis.from_url(url.split('?')[0])
    commands = client.info('stats')['total_commands_processed']
    workers = [context.Process(target=run_worker, args=(
        i, url, group, scopes, passes, shared, results))
        for i in range(WORKERS)]
    for process in workers:
        process.start()
    rows = []
    while len(rows) < WORKERS * passes:
        try:
            rows.append(results.get(timeout=1))
        except queue.Empty:
            if any(process.exitcode for process in workers):
                for process in workers:
                    process.terminate()
                raise SystemExit('a worker failed: '
                                 f'{[p.exitcode for p in workers]}')
    for process in workers:
        process.join()
        if process.exitcode:
            raise SystemExit(f'a worker failed ({process.exitcode})')
    commands = client.info('stats')['total_commands_processed'] - commands
    by_pass = {}
    for _, number, attempts, refused, periods, elapsed in rows:
        figures = by_pass.setdefault(number, [0, 0, 0, 0.0])
        figures[0] += attempts
        figures[1] += refused
        figures[2] += periods
        figures[3] = max(figures[3], elapsed)
    if any(figures[2] != len(scopes) for figures in by_pass.values()):
        raise SystemExit(f'a pass did not rate every scope once: {by_pass}')
    median = [statistics.median(figures[k] for figures in by_pass.values())
              for k in range(4)]
    return {'attempts': median[0], 'refused': median[1],
            'nothing_due': median[0] - median[1] - len(scopes),
            'commands': commands / passes, 'seconds': median[3]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--scopes', type=int, default=10000)
    parser.add_argument('--passes', type=int, default=3)
    parser.add_argument('--work-ms', type=float, default=0.2,
                        help='time the stand-in worker takes per period')
    args = parser.parse_args(argv)
    scopes = [f'scope-{i:05d}' for i in range(args.scopes)]
    with tempfile.TemporaryDirectory() as folder:
        server = coordination.Redis(folder).start()
        try:
            url = ck_lock.with_timeouts(server.url, 30)
            print(f'{WORKERS} worker processes, {args.scopes} scopes, '
                  f'{args.passes} passes, {args.work_ms} ms per period, '
                  f'redis-server {server.url}')
            for label, group in (('every worker tries every lock', None),
                                 ('scopes shared out (group + hash ring)',
                                  ck_lock.RATING_GROUP)):
                figures = measure(url, group, scopes, args.passes,
                                  args.work_ms / 1000)
                print(f'{label}: {figures["attempts"]:,.0f} lock attempts '
                      f'per pass ({figures["refused"]:,.0f} refused, '
                      f'{figures["nothing_due"]:,.0f} nothing due), '
                      f'{figures["commands"]:,.0f} redis commands per '
                      f'pass, pass time {figures["seconds"]:.2f} s')
        finally:
            server.stop()


if __name__ == '__main__':
    main()
