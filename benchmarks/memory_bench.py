"""Memory benchmark: what the API and the processor hold, as shipped.

    python benchmarks/memory_bench.py
    python benchmarks/memory_bench.py --workers 4 --json

The API: ``cloudkitty.wsgi.api:application`` under gunicorn with the
settings and environment of ``etc/systemd/cloudkitty-api.service``
(``etc/cloudkitty/gunicorn.conf.py``: one worker per CPU unless
``--workers`` says otherwise; the unit's ``Environment=`` lines), noauth,
on a throwaway PostgreSQL database holding ``--points`` rated points.
Printed: the seconds from the server's start to its first 200 (``GET
/``), the resident memory (RSS, and PSS: shared pages split between the
processes sharing them) of each worker once idle, then again after the
warm-up: ``--rounds`` passes of ``--clients`` concurrent clients over
every read route of the API (:func:`routes`), a few hundred requests.

The processor: ``cloudkitty-processor`` with the environment of
``etc/systemd/cloudkitty-processor.service``, ``--processor-workers``
workers, the file collector and ``noop`` over 10 scopes of a day of
usage on SQLite; once it has rated every period and idles, the RSS and
PSS of each of its processes.

:func:`run` returns the figures and :func:`report` formats them, for
``benchmarks/run.py`` and other drivers.
"""

import argparse
import contextlib
import datetime
import http.client
import json
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

import psutil

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

import api_bench  # noqa: E402
import storage_bench  # noqa: E402

from cloudkitty.tests.functional import harness  # noqa: E402

TOP = pathlib.Path(__file__).resolve().parent.parent
PROCESSOR_UNIT = TOP / 'etc' / 'systemd' / 'cloudkitty-processor.service'
#: What an API worker may hold after the warm-up (issue 17), MiB.
TARGET_WORKER_RSS_MIB = 100
MIB = 2 ** 20


def routes(scope_id):
    """``[(method, path, body)]``: every read route of the API (and the
    quote), over the first two hours of the stored data; the rated points
    (``/v1/storage/dataframes``, ``/v2/dataframes``) are those of the
    scope ``scope_id``, as a project reads its own."""
    window = urllib.parse.urlencode({
        'begin': api_bench._iso(api_bench.WINDOW[0]),
        'end': api_bench._iso(api_bench.WINDOW[0] + datetime.timedelta(
            hours=2))})
    hashmap = '/v1/rating/module_config/hashmap'
    gets = [
        '/', '/v1', '/v2', '/v1/info/config', '/v1/info/metrics',
        '/v1/info/metrics/metric_0', '/v1/info/services',
        '/v1/collector/mappings', '/v1/collector/states/gnocchi',
        '/v1/rating/modules', '/v1/rating/modules/hashmap',
        f'{hashmap}/types', f'{hashmap}/services', f'{hashmap}/groups',
        f'{hashmap}/mappings', f'{hashmap}/thresholds',
        '/v1/rating/module_config/pyscripts/scripts',
        f'/v1/report/tenants?{window}', f'/v1/report/total?{window}',
        f'/v1/report/summary?{window}',
        f'/v1/storage/dataframes?tenant_id={scope_id}&{window}',
        f'/v2/summary?groupby=project_id,type&{window}',
        f'/v2/dataframes?filters=project_id:{scope_id}&{window}',
        '/v2/scope',
        '/v2/task/reprocesses', '/v2/rating/modules',
        '/v2/rating/modules/hashmap', '/healthcheck',
    ]
    quote = json.dumps({'resources': [
        {'service': 'metric_0', 'volume': '2',
         'desc': {'groupby': {'id': 'a'}, 'metadata': {}}}]})
    return [('GET', path, None) for path in gets] + \
        [('POST', '/v1/rating/quote', quote)]


def memory(process):
    """``{"rss_mib", "pss_mib"}`` of a process."""
    info = process.memory_full_info()
    return {'rss_mib': info.rss / MIB, 'pss_mib': info.pss / MIB}


def _settled(processes, timeout=60):
    """Wait until the RSS of every process stays within 1 MiB over half a
    second (its start-up done); return their memory."""
    deadline = time.monotonic() + timeout
    before = [p.memory_info().rss for p in processes]
    while True:
        time.sleep(0.5)
        now = [p.memory_info().rss for p in processes]
        if all(abs(a - b) < MIB for a, b in zip(before, now)) or \
                time.monotonic() > deadline:
            return [memory(p) for p in processes]
        before = now


def warm_up(address, requests, clients=4, rounds=3):
    """``clients`` threads, each on its own keep-alive connection, send
    every request of ``requests`` (from :func:`routes`) ``rounds`` times;
    returns ``{status: count}``."""
    statuses = {}
    lock = threading.Lock()

    def client(offset):
        connection = http.client.HTTPConnection(*address, timeout=300)
        mine = requests[offset:] + requests[:offset]
        for _ in range(rounds):
            for method, path, body in mine:
                headers = {'Content-Type': 'application/json'} if body \
                    else {}
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                with lock:
                    statuses[response.status] = \
                        statuses.get(response.status, 0) + 1
        connection.close()

    threads = [threading.Thread(target=client, args=(i * 7,))
               for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def bench_api(n_points=10000, workers=None, clients=4, rounds=3, url=None):
    """The API's figures: ``{"workers", "start_to_first_200_s",
    "master": {...}, "idle": [...], "warm": [...], "requests",
    "statuses"}`` (memory in MiB, one entry per worker)."""
    with contextlib.ExitStack() as stack:
        frames = storage_bench.make_frames(n_points, n_scopes=100,
                                           n_types=10)
        scope_id = frames[0][0]
        url, _push = api_bench.stored(stack, frames, url)
        del frames
        directory = pathlib.Path(stack.enter_context(
            tempfile.TemporaryDirectory(prefix='ck-mem-bench.')))
        config = api_bench._write_config(directory, url)
        server = stack.enter_context(api_bench.serve(config, workers))
        master = psutil.Process(server.pid)
        children = master.children()
        idle = _settled(children)
        statuses = warm_up(server.address, routes(scope_id), clients=clients,
                           rounds=rounds)
        warm = _settled(children)
        return {'workers': len(children),
                'start_to_first_200_s': server.first_200_s,
                'master': memory(master), 'idle': idle, 'warm': warm,
                'requests': sum(statuses.values()), 'statuses': statuses}


def bench_processor(workers=2, scopes=10, hours=24, timeout=300):
    """The processor's figures once idle: ``{"workers", "rated_s",
    "processes": [{"role", "rss_mib", "pss_mib"}]}``."""
    with tempfile.TemporaryDirectory(prefix='ck-mem-proc.') as tmp:
        scenario = harness.Scenario(
            pathlib.Path(tmp), scopes=scopes, hours=hours,
            max_workers=workers)
        started = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, '-m', 'cloudkitty.cli.processor',
             '--config-file', str(scenario.config)],
            env=dict(os.environ, **api_bench.unit_environment(PROCESSOR_UNIT)),
            cwd=TOP, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            while not scenario.caught_up():
                if process.poll() is not None or \
                        time.monotonic() - started > timeout:
                    raise RuntimeError('the processor did not rate the '
                                       'scenario\'s periods')
                time.sleep(0.5)
            rated = time.monotonic() - started
            main = psutil.Process(process.pid)
            family = [main] + main.children(recursive=True)
            figures = _settled(family)
            # Each process's title (cotyledon sets the workers'), or
            # "main".
            roles = ['main'] + [
                ' '.join(child.cmdline()).rpartition(': ')[2].strip()
                for child in family[1:]]
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        return {'workers': workers, 'rated_s': rated,
                'processes': [dict(role=role, **figure) for role, figure
                              in zip(roles, figures)]}


def run(n_points=10000, workers=None, clients=4, rounds=3,
        processor_workers=2, url=None):
    """Both benchmarks: ``{"api": bench_api(...), "processor":
    bench_processor(...)}``."""
    return {'points': n_points,
            'api': bench_api(n_points, workers=workers, clients=clients,
                             rounds=rounds, url=url),
            'processor': bench_processor(workers=processor_workers)}


def _each(figures, key='rss_mib'):
    return ', '.join(f'{figure[key]:.1f}' for figure in figures)


def _total(master, workers, key):
    return master[key] + sum(figure[key] for figure in workers)


def report(result):
    """The figures of :func:`run` as text lines."""
    api = result['api']
    warm = max(figure['rss_mib'] for figure in api['warm'])
    verdict = 'within' if warm < TARGET_WORKER_RSS_MIB else 'over'
    statuses = ', '.join(f'{count} x {status}' for status, count
                         in sorted(api['statuses'].items()))
    lines = [
        f"API (gunicorn as etc/systemd/cloudkitty-api.service, "
        f"{api['workers']} workers; {result['points']:,} points on "
        f"PostgreSQL): first 200 after {api['start_to_first_200_s']:.2f} s",
        f"  master RSS {api['master']['rss_mib']:.1f} MiB",
        f"  idle workers RSS {_each(api['idle'])} MiB "
        f"(PSS {_each(api['idle'], 'pss_mib')})",
        f"  after {api['requests']} requests over every read route "
        f"({statuses}): workers RSS {_each(api['warm'])} MiB "
        f"(PSS {_each(api['warm'], 'pss_mib')}); {verdict} the "
        f"{TARGET_WORKER_RSS_MIB} MiB target",
    ]
    for state in ('idle', 'warm'):
        lines.append(
            f"  the whole unit {state}: "
            f"{_total(api['master'], api[state], 'rss_mib'):.0f} MiB RSS, "
            f"{_total(api['master'], api[state], 'pss_mib'):.0f} MiB PSS")
    processor = result['processor']
    lines.append(
        f"processor ({processor['workers']} workers, idle after rating in "
        f"{processor['rated_s']:.1f} s): " + ', '.join(
            f"{p['role']} RSS {p['rss_mib']:.1f} MiB (PSS "
            f"{p['pss_mib']:.1f})" for p in processor['processes']))
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--points', type=int, default=10000)
    parser.add_argument('--workers', type=int,
                        help='gunicorn workers (default: the unit\'s, one '
                        'per CPU)')
    parser.add_argument('--clients', type=int, default=4)
    parser.add_argument('--rounds', type=int, default=3,
                        help='passes of each client over every route')
    parser.add_argument('--processor-workers', type=int, default=2)
    parser.add_argument('--url', help='use this database for the API '
                        'instead of a throwaway one (the data stays)')
    parser.add_argument('--json', action='store_true',
                        help='print the figures as JSON')
    args = parser.parse_args(argv)
    result = run(args.points, workers=args.workers, clients=args.clients,
                 rounds=args.rounds, processor_workers=args.processor_workers,
                 url=args.url)
    print(json.dumps(result) if args.json else report(result))


if __name__ == '__main__':
    main()
