"""Every script of ``benchmarks/`` still runs, on a tiny scale.

The figures are not judged here (speed is measured by the benchmarks, not
asserted by tests); what is, is that each script runs the project's
current code to its end and prints its figures: a benchmark that no longer
fits the code it measures fails here, not on the day someone needs its
numbers.
"""

import os
import shutil
import subprocess
import sys

import pytest

from cloudkitty.tests.functional import storage as db_servers
from cloudkitty.tests.scripts import TOP


RUNS = {
    'storage': (['storage_bench.py', '--points', '2000', '--backend',
                 'postgresql', '--runs', '1'], 'push:'),
    'scale': (['scale_bench.py', '--sizes', '2000,4000', '--rounds', '1',
               '--round-scopes', '2', '--runs', '1'],
              'one-month summary at 4,000 against 2,000'),
    'worker': (['worker_bench.py', '--points', '2000', '--backend',
                'sqlite'], 'points/s'),
    'hashmap': (['hashmap_bench.py', '--points', '2000', '--rules', '50'],
                'warm:'),
    'pipeline': (['pipeline_bench.py', '--points', '2000', '--rules', '50',
                  '--backend', 'sqlite'],
                 'equal to the module pricing the points alone'),
    'api': (['api_bench.py', '--points', '2000', '--requests', '2'],
            'v1_total'),
    'pyscripts': (['pyscripts_bench.py', '--points', '200', '--runs', '1'],
                  'per period:'),
    'collect': (['collect_bench.py', '--scopes', '5', '--metrics', '2'],
                'both passes stored the same totals'),
    'lock': (['lock_bench.py', '--scopes', '30', '--passes', '1'],
             'scopes shared out'),
    'import': (['import_bench.py', '--points', '2000'], 'second run'),
}
#: What a benchmark needs beyond Python: a command on the PATH.
NEEDS = {'collect': 'promtool', 'lock': 'redis-server', 'import': 'influxd'}


@pytest.mark.parametrize('name', sorted(RUNS))
def test_benchmark_runs(name):
    missing = None
    if name in NEEDS and shutil.which(NEEDS[name]) is None:
        missing = f'{NEEDS[name]} is not installed'
    elif name in ('storage', 'api', 'scale'):
        try:
            with db_servers.fresh_database('postgresql'):
                pass
        except db_servers.ServerUnavailable as exc:
            missing = str(exc)
    if missing:
        if os.environ.get('CI') == 'true':
            pytest.fail(missing)
        pytest.skip(missing)
    argv, expected = RUNS[name]
    process = subprocess.run(
        [sys.executable, str(TOP / 'benchmarks' / argv[0]), *argv[1:]],
        cwd=TOP, capture_output=True, text=True, timeout=300)
    assert process.returncode == 0, process.stderr[-3000:]
    assert expected in process.stdout, process.stdout
