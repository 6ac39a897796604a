"""API benchmark: latency of the two heaviest read routes under load.

    python benchmarks/api_bench.py --points 1000000
    python benchmarks/api_bench.py --points 100000 --requests 20 --json

Stores ``--points`` rated points (:func:`storage_bench.make_frames`: 1,000
scopes, 10 types) in a throwaway PostgreSQL database, serves the API
(noauth) with gunicorn (``cloudkitty.wsgi.api:application``) as the
shipped ``etc/systemd/cloudkitty-api.service`` runs it (one worker per CPU
of two threads, ``etc/cloudkitty/gunicorn.conf.py``; ``--workers`` and
``--threads`` change them) on a free loopback port,
and has
``--clients`` concurrent clients (8), each on its own keep-alive
connection, send ``--requests`` requests in a row to

- ``GET /v2/summary?groupby=project_id,type`` (every scope and type: one
  row per group, the first page of 100 and the total count of groups), and
- ``GET /v1/report/total`` (the price of every stored point),

both over the window of the stored data. Each route is warmed up first,
then its p50, p95 and mean latency and its throughput are printed, with
the median latency of a request alone (one client) for comparison. The
answers are checked against the stored data (the total to the last digit,
the number of groups).

:func:`run` returns the figures and :func:`report` formats them, for
``benchmarks/run.py`` and other drivers.
"""

import argparse
import collections
import contextlib
import datetime
import decimal
import http.client
import json
import os
import pathlib
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

import psutil

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

import storage_bench  # noqa: E402

from cloudkitty import db  # noqa: E402
from cloudkitty.db import migration  # noqa: E402
from cloudkitty import storage as ck_storage  # noqa: E402
from cloudkitty.tests.functional import live_server  # noqa: E402
from cloudkitty.tests.functional import storage as db_servers  # noqa: E402

TOP = pathlib.Path(__file__).resolve().parent.parent
PASTE_CONFIG = TOP / 'etc' / 'cloudkitty' / 'api_paste.ini'
API_UNIT = TOP / 'etc' / 'systemd' / 'cloudkitty-api.service'
GUNICORN_CONFIG = TOP / 'etc' / 'cloudkitty' / 'gunicorn.conf.py'
WINDOW = (storage_bench.START,
          storage_bench.START + datetime.timedelta(days=366))
START_TIMEOUT = 120
#: Latency target of the routes, p50 with 8 clients (README).
TARGET_P50_MS = 100


def _iso(moment):
    return moment.strftime('%Y-%m-%dT%H:%M:%S')


def routes():
    """``{name: path and query}`` of the benchmarked requests."""
    window = {'begin': _iso(WINDOW[0]), 'end': _iso(WINDOW[1])}
    return {
        'v2_summary': '/v2/summary?' + urllib.parse.urlencode(
            {'groupby': 'project_id,type', **window}),
        'v1_total': '/v1/report/total?' + urllib.parse.urlencode(window),
    }


def _write_config(directory, url):
    metrics = directory / 'metrics.yml'
    metrics.write_text(
        'metrics:\n' + ''.join(
            f'  metric_{i}:\n    unit: unit\n    groupby: [id]\n'
            for i in range(10)))
    path = directory / 'cloudkitty.conf'
    path.write_text(f"""\
[DEFAULT]
auth_strategy = noauth
log_file = {directory}/api.log
[api]
paste_config = {PASTE_CONFIG}
[collect]
metrics_conf = {metrics}
[database]
connection = {url}
[storage]
backend = sqlalchemy
[storage_sqlalchemy]
connection = {url}
""")
    return path


def unit_environment(unit=API_UNIT):
    """The ``Environment=`` variables of a systemd unit file, but the
    configuration file's path (the benchmark has its own)."""
    env = {}
    for line in unit.read_text().splitlines():
        if line.startswith('Environment='):
            for assignment in line[len('Environment='):].split():
                name, _, value = assignment.partition('=')
                env[name] = value
    env.pop('CLOUDKITTY_CONFIG_FILE', None)
    return env


#: A running server: its address, process id and the seconds from its
#: start to its first 200.
Server = collections.namedtuple('Server', 'address pid first_200_s')


@contextlib.contextmanager
def serve(config, workers=None, threads=None):
    """Run gunicorn on ``config`` as ``etc/systemd/cloudkitty-api.service``
    does (its environment, ``etc/cloudkitty/gunicorn.conf.py``), on a free
    loopback port, with ``workers`` and ``threads`` instead of the
    configuration's when given; yield a :data:`Server`."""
    port = live_server.free_port()
    argv = [sys.executable, '-m', 'gunicorn', '--config',
            str(GUNICORN_CONFIG), '--bind', f'127.0.0.1:{port}',
            '--access-logfile', '/dev/null', '--keep-alive', '30',
            '--timeout', '300']
    if workers:
        argv += ['--workers', str(workers)]
    if threads:
        argv += ['--threads', str(threads)]
    log = open(config.parent / 'gunicorn.log', 'ab')  # noqa: SIM115
    started = time.monotonic()
    process = subprocess.Popen(
        argv + ['cloudkitty.wsgi.api:application'],
        env=dict(os.environ, **unit_environment(),
                 CLOUDKITTY_CONFIG_FILE=str(config)),
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        cwd=TOP, start_new_session=True)
    try:
        _wait_until_up(process, port, config.parent / 'gunicorn.log')
        yield Server(('127.0.0.1', port), process.pid,
                     time.monotonic() - started)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        log.close()


def _wait_until_up(process, port, log_path):
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and process.poll() is None:
        try:
            status, _ = _get(http.client.HTTPConnection(
                '127.0.0.1', port, timeout=5), '/')
            if status == 200:
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f'the API did not start: '
                       f'{log_path.read_text(errors="replace")[-3000:]}')


def _get(connection, path):
    connection.request('GET', path)
    response = connection.getresponse()
    return response.status, response.read()


def load(address, path, clients=8, requests=20, max_seconds=300):
    """``clients`` threads each GET ``path`` ``requests`` times in a row.

    Every client has its own keep-alive connection. A client stops early
    once ``max_seconds`` have passed. Returns the figures (milliseconds)
    and one response body.
    """
    latencies, errors, bodies = [], [], []
    lock = threading.Lock()
    barrier = threading.Barrier(clients)
    deadline = time.monotonic() + max_seconds

    def client():
        connection = http.client.HTTPConnection(*address, timeout=600)
        mine = []
        barrier.wait()
        try:
            for _ in range(requests):
                if time.monotonic() > deadline:
                    break
                started = time.perf_counter()
                status, body = _get(connection, path)
                mine.append(time.perf_counter() - started)
                if status != 200:
                    with lock:
                        errors.append((status, body[:200]))
                    break
        except OSError as exc:
            with lock:
                errors.append((None, str(exc)))
        finally:
            connection.close()
        with lock:
            latencies.extend(mine)
            if mine and not bodies:
                bodies.append(body)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    if errors or not latencies:
        raise RuntimeError(f'{path}: {errors[:3] or "no answer"}')
    ms = sorted(latency * 1000 for latency in latencies)
    return {
        'requests': len(ms), 'clients': clients,
        'p50_ms': statistics.median(ms),
        'p95_ms': statistics.quantiles(ms, n=20, method='inclusive')[-1]
        if len(ms) > 1 else ms[0],
        'mean_ms': statistics.fmean(ms), 'max_ms': ms[-1],
        'requests_per_second': len(ms) / wall,
    }, bodies[0]


def _check(name, body, expected):
    answer = json.loads(body, parse_float=decimal.Decimal)
    if name == 'v1_total':
        got = decimal.Decimal(answer)
        if got != expected['total']:
            raise RuntimeError(f'v1 total {got} != {expected["total"]}')
    elif answer['total'] != expected['groups']:
        raise RuntimeError(f'v2 summary: {answer["total"]} groups, '
                           f'{expected["groups"]} expected')


def stored(stack, frames, url=None):
    """Store ``frames`` (from :func:`storage_bench.make_frames`) in ``url``,
    by default a throwaway database on the PostgreSQL server, dropped when
    ``stack`` (a ``contextlib.ExitStack``) closes; its tables are created
    first and its planner statistics refreshed after. Returns ``(url, the
    push figures)``."""
    if url is None:
        url = stack.enter_context(
            db_servers.fresh_database('postgresql', prefix='ck_bench'))
    engine = db.create_engine(url)
    migration.upgrade(engine)
    engine.dispose()
    storage = ck_storage.get_storage(db_servers.make_conf(url))
    storage.init()
    push = storage_bench.bench_push(storage, frames)
    storage_bench.settle(storage)
    storage.engine.dispose()
    return url, push


def run(n_points=1000000, clients=8, requests=20, workers=None, threads=None,
        n_scopes=1000, n_types=10, url=None, max_seconds=300,
        single_requests=5):
    """Store the data, serve the API, load each route; return the figures.

    ``url`` is a database to use instead of a throwaway one on the
    PostgreSQL server (its tables are created; the data stays). After the
    load, ``single_requests`` requests from one client give the latency of
    a request alone (``alone_p50_ms``).

    Returns ``{"points", "clients", "requests_per_client", "server",
    "push": {...}, "routes": {name: {"p50_ms", "p95_ms", "mean_ms",
    "max_ms", "requests", "requests_per_second", "alone_p50_ms",
    "path"}}}``.
    """
    frames = storage_bench.make_frames(n_points, n_scopes=n_scopes,
                                       n_types=n_types)
    expected = {
        'total': sum((point.price for _, frame in frames
                      for _, point in frame.iterpoints()), decimal.Decimal()),
        'groups': len({(scope, type_) for scope, frame in frames
                       for type_, _ in frame.iterpoints()}),
    }
    result = {'points': n_points, 'clients': clients,
              'requests_per_client': requests}
    with contextlib.ExitStack() as stack:
        url, result['push'] = stored(stack, frames, url)
        del frames
        directory = pathlib.Path(stack.enter_context(
            tempfile.TemporaryDirectory(prefix='ck-api-bench.')))
        server = stack.enter_context(serve(
            _write_config(directory, url), workers=workers, threads=threads))
        address = server.address
        threads_text = threads or "the unit's"
        result['server'] = (
            f'gunicorn, {len(psutil.Process(server.pid).children())} '
            f'workers x {threads_text} threads')
        result['routes'] = {}
        for name, path in routes().items():
            # Warm-up: every worker thread builds its backends and caches.
            load(address, path, clients=clients, requests=2,
                 max_seconds=max_seconds)
            figures, body = load(address, path, clients=clients,
                                 requests=requests, max_seconds=max_seconds)
            _check(name, body, expected)
            # The latency of one request alone: what the load adds to it.
            alone, _ = load(address, path, clients=1,
                            requests=single_requests, max_seconds=max_seconds)
            figures['alone_p50_ms'] = alone['p50_ms']
            figures['path'] = path
            result['routes'][name] = figures
    return result


def report(result):
    """The figures of :func:`run` as text lines."""
    lines = [(f"{result['points']:,} points on PostgreSQL, "
              f"{result['clients']} clients, {result['server']}; "
              f"push {result['push']['points_per_second']:,.0f} points/s")]
    for name, figures in result['routes'].items():
        verdict = 'within' if figures['p50_ms'] <= TARGET_P50_MS else \
            'over'
        lines.append(
            f"{name:<11} p50 {figures['p50_ms']:7.1f} ms  "
            f"p95 {figures['p95_ms']:7.1f} ms  "
            f"mean {figures['mean_ms']:7.1f} ms  "
            f"alone {figures['alone_p50_ms']:7.1f} ms  "
            f"{figures['requests_per_second']:6.1f} req/s  "
            f"({figures['requests']} requests; {verdict} the "
            f"{TARGET_P50_MS} ms p50 target)  GET {figures['path']}")
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--points', type=int, default=1000000)
    parser.add_argument('--clients', type=int, default=8)
    parser.add_argument('--requests', type=int, default=20,
                        help='requests per client and route')
    parser.add_argument('--workers', type=int,
                        help='gunicorn worker processes (default: the '
                        "unit's, one per CPU)")
    parser.add_argument('--threads', type=int,
                        help="threads per gunicorn worker (default: the "
                        "unit's, 2)")
    parser.add_argument('--url', help='use this database instead of a '
                        'throwaway one (the data stays)')
    parser.add_argument('--json', action='store_true',
                        help='print the figures as JSON')
    args = parser.parse_args(argv)
    result = run(args.points, clients=args.clients, requests=args.requests,
                 workers=args.workers, threads=args.threads, url=args.url)
    print(json.dumps(result) if args.json else report(result))


if __name__ == '__main__':
    main()
