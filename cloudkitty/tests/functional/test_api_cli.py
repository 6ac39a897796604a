"""``cloudkitty-api --config-file FILE``: the quick-start server, as a
process of its own, on ``[api] host`` and ``port``."""

import decimal
import http.client
import json
import pathlib
import subprocess
import sys
import time

from cloudkitty import db
from cloudkitty.db import migration
from cloudkitty.tests.functional import live_server
from cloudkitty.tests.scripts import TOP

BIN = pathlib.Path(sys.executable).parent
FRAME = {'period': {'begin': '2024-05-01T00:00:00+00:00',
                    'end': '2024-05-01T01:00:00+00:00'},
         'usage': {'cpu': [{
             'vol': {'unit': 'instance', 'qty': '2'},
             'rating': {'price': '0.123456789012345678'},
             'groupby': {'project_id': 'p1', 'id': 'vm-1'},
             'metadata': {}}]}}


def _request(port, method, path, body=None):
    connection = http.client.HTTPConnection('127.0.0.1', port, timeout=10)
    try:
        headers = {'Content-Type': 'application/json'} if body else {}
        connection.request(method, path, body=body and json.dumps(body),
                           headers=headers)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def _wait_for_port(process, port, log, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, live_server.log_tail(log)
        try:
            return _request(port, 'GET', '/')
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f'cloudkitty-api did not listen on {port} within '
                         f'{timeout}s: {live_server.log_tail(log)}')


def write_config(tmp_path, **api_options):
    """A migrated SQLite database and a configuration of ``cloudkitty-api``
    on a free port of 127.0.0.1 in ``tmp_path``, with ``api_options`` in
    ``[api]``; returns ``(config path, port, log path)``."""
    url = f'sqlite:///{tmp_path}/ck.sqlite'
    engine = db.create_engine(url)
    migration.upgrade(engine)
    engine.dispose()
    (tmp_path / 'metrics.yml').write_text(
        'metrics:\n  cpu:\n    unit: instance\n    groupby: [id]\n')
    port = live_server.free_port()
    log = tmp_path / 'api.log'
    config = tmp_path / 'cloudkitty.conf'
    options = ''.join(f'{name} = {value}\n'
                      for name, value in api_options.items())
    config.write_text(f"""\
[DEFAULT]
auth_strategy = noauth
log_file = {log}
[api]
host = 127.0.0.1
port = {port}
paste_config = {TOP}/etc/cloudkitty/api_paste.ini
{options}[collect]
metrics_conf = {tmp_path}/metrics.yml
[database]
connection = {url}
[storage]
backend = sqlalchemy
""")
    return config, port, log


def test_serves_the_api_on_the_configured_address(tmp_path):
    config, port, log = write_config(tmp_path)
    subprocess.run([BIN / 'cloudkitty-storage-init', '--config-file',
                    config], check=True, capture_output=True, timeout=60)
    process = subprocess.Popen(
        [BIN / 'cloudkitty-api', '--config-file', config],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        status, body = _wait_for_port(process, port, log)
        assert status == 200
        versions = json.loads(body)['versions']
        assert [v['id'] for v in versions] == ['v1', 'v2']
        assert _request(port, 'GET', '/healthcheck')[0] == 200
        # The whole stack, down to the configured database.
        assert _request(port, 'POST', '/v2/dataframes',
                        {'dataframes': [FRAME]})[0] == 204
        status, body = _request(
            port, 'GET', '/v1/report/total?begin=2024-05-01&end=2024-05-02')
        assert (status, json.loads(body)) == (200, '0.123456789012345678')
        status, body = _request(port, 'GET', (
            '/v2/summary?begin=2024-05-01&end=2024-05-02&groupby=project_id'
            '&response_format=object'))
        rows = json.loads(body, parse_float=decimal.Decimal)['results']
        assert [(r['project_id'], r['qty'], r['rate']) for r in rows] == [
            ('p1', 2, decimal.Decimal('0.123456789012345678'))]
    finally:
        process.terminate()
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err.decode()
    text = log.read_text()
    assert f'Serving the API on http://127.0.0.1:{port}' in text
    assert 'API stopped' in text
