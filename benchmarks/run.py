"""Every benchmark of the project, one after the other, with their figures.

    python benchmarks/run.py                  # 1,000,000 points everywhere
    python benchmarks/run.py --points 100000  # a quicker look
    python benchmarks/run.py --only storage worker

What operators run is measured, not only the best case: the processor's
push of one 1,000-point frame per scope and period (``storage``), the
file collector through hashmap's 1,000 rules into the storage
(``pipeline``), totals grouped by three labels and retrieve at 100,000,
1,000,000 and 5,000,000 points (``grouping``, ``--grouping-points``),
push and one-month summary as the stored points grow tenfold (``scale``)
and the services' memory (``memory``).

Each benchmark runs in a process of its own (so that one's memory and
garbage do not weigh on the next) against throwaway databases on the
PostgreSQL server of the machine (``CK_TEST_POSTGRESQL_URL``, default
``postgresql://postgres@127.0.0.1:5432/test``) and temporary SQLite files.
See ``benchmarks/README.rst`` for what each one measures.
"""

import argparse
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


#: The sizes of the grouping benchmark (``--grouping-points``).
GROUPING_POINTS = (100000, 1000000, 5000000)


def benchmarks(points, grouping_points=GROUPING_POINTS):
    """``{name: [argv, ...]}``: the runs that make up each benchmark."""
    scale_sizes = f'{points},{points * 10}'
    points = str(points)
    return {
        'storage': [['storage_bench.py', '--points', points,
                     '--backend', backend]
                    for backend in ('sqlite', 'postgresql')],
        'worker': [['worker_bench.py', '--points', points,
                    '--backend', backend]
                   for backend in ('sqlite', 'postgresql')],
        'hashmap': [['hashmap_bench.py', '--points', points]],
        # File collector -> hashmap (1,000 rules) -> storage, end to end.
        'pipeline': [['pipeline_bench.py', '--points', points,
                      '--backend', backend]
                     for backend in ('sqlite', 'postgresql')],
        # A script over 10,000 points a period, whatever --points says.
        'pyscripts': [['pyscripts_bench.py']],
        # total grouped by type, project_id and user_id, and retrieve, at
        # each size of --grouping-points.
        'grouping': [['grouping_bench.py', '--points', str(size),
                      '--backend', backend]
                     for size in grouping_points
                     for backend in ('sqlite', 'postgresql')],
        # PostgreSQL with --points then ten times as many points stored.
        'scale': [['scale_bench.py', '--sizes', scale_sizes]],
        'api': [['api_bench.py', '--points', points]],
        # The API's workers and the processor's processes, idle and warm;
        # 10,000 points whatever --points says.
        'memory': [['memory_bench.py']],
        # 1,000 scopes x 10 metrics, whatever --points says.
        'collect': [['collect_bench.py']],
        # 3 workers x 10,000 scopes, whatever --points says.
        'lock': [['lock_bench.py']],
        # From an InfluxDB of its own into PostgreSQL.
        'import': [['import_bench.py', '--points', points]],
    }


def main(argv=None):
    all_runs = benchmarks(0)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--points', type=int, default=1000000)
    parser.add_argument('--grouping-points', type=int, nargs='+',
                        default=list(GROUPING_POINTS),
                        help='the sizes of the grouping benchmark')
    parser.add_argument('--only', nargs='+', choices=sorted(all_runs),
                        help='run only these benchmarks')
    args = parser.parse_args(argv)
    failed = []
    for name, runs in benchmarks(args.points,
                                 args.grouping_points).items():
        if args.only and name not in args.only:
            continue
        for run in runs:
            script = os.path.join(HERE, run[0])
            if not os.path.exists(script):
                print(f'== {name}: {run[0]} is not there yet', flush=True)
                continue
            print(f'== {name}: {" ".join(run)}', flush=True)
            if subprocess.run([sys.executable, script] + run[1:]).returncode:
                failed.append(' '.join(run))
    for run in failed:
        print(f'FAILED: {run}')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
