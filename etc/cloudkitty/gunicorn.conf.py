"""gunicorn settings of the API (``etc/systemd/cloudkitty-api.service``).

Install to ``/etc/cloudkitty/gunicorn.conf.py``; a command-line option
overrides the value here.

Workers: one per CPU this server may run on (``os.sched_getaffinity``:
the CPUs of the machine, or fewer under a CPU affinity or a container's
cpuset), at least one; ``WEB_CONCURRENCY`` (gunicorn's variable) sets
another count. A worker is a process of about 100 MiB once warm; its
requests spend much of their time waiting for the database, which the
second thread of each worker covers. More workers than CPUs add memory,
not throughput: Python runs one thread at a time per process.
"""

import os

bind = '0.0.0.0:8889'
workers = int(os.environ.get('WEB_CONCURRENCY') or 0) or \
    max(1, len(os.sched_getaffinity(0)))
worker_class = 'gthread'
threads = 2
accesslog = '-'
