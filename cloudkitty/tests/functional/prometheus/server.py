"""A real Prometheus server holding historical test data.

For the tests and the benchmarks: :func:`openmetrics` writes samples as
OpenMetrics text, :func:`create_blocks` turns it into TSDB blocks with
``promtool tsdb create-blocks-from openmetrics``, and :class:`Prometheus`
runs ``prometheus`` on those blocks, on a free loopback port, with HTTP
basic authentication (:data:`USER`, :data:`PASSWORD`).

Samples must lie in the past: the server keeps them (retention 100 years)
and queries read them at past instants. ``--query.lookback-delta`` is one
day, so that an instant selector evaluated "now" (the fetcher's query) sees
samples written up to a day before.
"""

import os
import shutil
import signal
import subprocess
import time

import requests

from cloudkitty.tests.functional import live_server

USER = 'cloudkitty'
PASSWORD = 'prometheus-test-secret'
# bcrypt (cost 4, to keep each request cheap) of PASSWORD.
PASSWORD_HASH = '$2b$04$H5234IENh5rOtVQdFPtQ4uvf5fbv7Mx7TEtrC3u5XuJLw3mNx.RJe'


class ServerUnavailable(Exception):
    """Prometheus is not installed or does not start."""


def binaries():
    """``(prometheus, promtool)`` paths; :class:`ServerUnavailable` if
    the Debian package ``prometheus`` is not installed."""
    found = (shutil.which('prometheus'), shutil.which('promtool'))
    if None in found:
        raise ServerUnavailable('prometheus and promtool are not installed '
                                '(Debian package "prometheus")')
    return found


def _number(value):
    return value if isinstance(value, str) else repr(value)


def openmetrics(series):
    """OpenMetrics text of ``series``: ``[(metric, {label: value},
    [(unix seconds, value)])]``; every family is a gauge. Values may be
    numbers or their text (written as given)."""
    families = {}
    for metric, labels, samples in series:
        families.setdefault(metric, []).append((labels, samples))
    lines = []
    for metric, members in families.items():
        lines.append(f'# TYPE {metric} gauge')
        for labels, samples in members:
            text = ','.join(f'{k}="{v}"' for k, v in sorted(labels.items()))
            for moment, value in sorted(samples):
                lines.append(f'{metric}{{{text}}} {_number(value)} {moment}')
    lines.append('# EOF')
    return '\n'.join(lines) + '\n'


def create_blocks(text, datadir):
    """Write ``text`` (OpenMetrics) as TSDB blocks into ``datadir``."""
    _, promtool = binaries()
    os.makedirs(datadir, exist_ok=True)
    source = os.path.join(os.path.dirname(os.path.abspath(datadir)),
                          os.path.basename(datadir) + '.om')
    with open(source, 'w') as stream:
        stream.write(text)
    result = subprocess.run(
        [promtool, 'tsdb', 'create-blocks-from', 'openmetrics', source,
         datadir], capture_output=True, text=True, check=False)
    if result.returncode:
        raise ServerUnavailable(f'promtool failed: {result.stderr[-2000:]}')


class Prometheus:
    """``prometheus`` serving ``datadir`` on ``port`` (default: a free
    one), with basic authentication unless ``auth`` is false."""

    def __init__(self, datadir, port=None, auth=True):
        self.binary, _ = binaries()
        self.datadir = os.path.abspath(datadir)
        self.port = port or live_server.free_port()
        self.auth = (USER, PASSWORD) if auth else None
        self.url = f'http://127.0.0.1:{self.port}'
        self.process = None
        base = self.datadir.rstrip('/')
        self.log_path = base + '.log'
        self._config = base + '.yml'
        with open(self._config, 'w') as stream:
            stream.write('global:\n  scrape_interval: 1h\n')
        self._web_config = None
        if auth:
            self._web_config = base + '.web.yml'
            with open(self._web_config, 'w') as stream:
                stream.write(f'basic_auth_users:\n  {USER}: '
                             f"'{PASSWORD_HASH}'\n")

    def start(self, timeout=30):
        """Start the server; return once it answers queries."""
        argv = [self.binary, f'--storage.tsdb.path={self.datadir}',
                f'--web.listen-address=127.0.0.1:{self.port}',
                f'--config.file={self._config}',
                '--storage.tsdb.retention.time=100y',
                '--query.lookback-delta=1d']
        if self._web_config:
            argv.append(f'--web.config.file={self._web_config}')
        with open(self.log_path, 'ab') as log:
            self.process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerUnavailable(
                    f'prometheus exited {self.process.returncode}: '
                    f'{self.log_tail()}')
            try:
                if requests.get(f'{self.url}/-/ready', auth=self.auth,
                                timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.05)
        self.stop()
        raise ServerUnavailable(f'prometheus not ready after {timeout}s: '
                                f'{self.log_tail()}')

    def stop(self, sig=signal.SIGTERM):
        """Signal the server and wait for it to exit."""
        live_server.stop_process(self.process, sig)

    def log_tail(self):
        return live_server.log_tail(self.log_path)

    def query_count(self):
        """Instant queries the server has answered since it started."""
        text = requests.get(f'{self.url}/metrics', auth=self.auth,
                            timeout=10).text
        total = 0
        for line in text.splitlines():
            if line.startswith('prometheus_http_requests_total{') and \
                    'handler="/api/v1/query"' in line:
                total += int(float(line.rsplit(' ', 1)[1]))
        return total
