"""The API as ``etc/systemd/cloudkitty-api.service`` runs it: gunicorn with
``etc/cloudkitty/gunicorn.conf.py`` starts one worker per CPU the service
may run on, or ``WEB_CONCURRENCY`` of them, and serves the API."""

import json
import os
import subprocess
import sys

import psutil
import pytest

from cloudkitty.tests.functional import live_server
from cloudkitty.tests.functional import test_api_cli

GUNICORN_CONFIG = test_api_cli.TOP / 'etc' / 'cloudkitty' / 'gunicorn.conf.py'


@pytest.mark.parametrize('env, workers', [
    ({}, len(os.sched_getaffinity(0))),
    ({'WEB_CONCURRENCY': '1'}, 1),
], ids=['one per CPU', 'WEB_CONCURRENCY'])
def test_the_unit_starts_its_workers_and_serves(tmp_path, env, workers):
    config, port, log = test_api_cli.write_config(tmp_path)
    environ = {name: value for name, value in os.environ.items()
               if name != 'WEB_CONCURRENCY'}
    process = subprocess.Popen(
        [sys.executable, '-m', 'gunicorn', '--config', str(GUNICORN_CONFIG),
         '--bind', f'127.0.0.1:{port}', 'cloudkitty.wsgi.api:application'],
        env=dict(environ, CLOUDKITTY_CONFIG_FILE=str(config), **env),
        cwd=test_api_cli.TOP, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        status, body = test_api_cli._wait_for_port(
            process, port, log, timeout=120)
        assert status == 200
        assert [v['id'] for v in json.loads(body)['versions']] == \
            ['v1', 'v2']
        assert len(psutil.Process(process.pid).children()) == workers
    finally:
        live_server.stop_process(process)
