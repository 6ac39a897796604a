"""A real upstream CloudKitty 25.0.0 for the import tests.

Upstream lives in a virtualenv of its own,
``$XDG_CACHE_HOME/cloudkitty-test/upstream-venv`` (or
``$CLOUDKITTY_TEST_UPSTREAM_VENV``; see :mod:`cached_venv`), pinned by
``constraints.txt`` (SQLAlchemy below 2 among them): it is a peer system
the tests talk to, never a dependency. Its database on MariaDB (its ``cloudkitty-dbsync`` fails on
SQLite, and on PostgreSQL under SQLAlchemy 2), its rated data in an
InfluxDB 1.x (Debian's ``influxdb``) that :class:`InfluxDB` starts on free
ports in a temporary directory, never the system service.

:class:`Upstream` writes upstream's configuration, runs its
``cloudkitty-dbsync upgrade`` and ``cloudkitty-storage-init``, and runs
:mod:`upstream_side` (upstream's own code) in its virtualenv; its API
server is :class:`upstream_api.UpstreamAPI`.

Run as a script to install and time it::

    python -m cloudkitty.tests.functional.upstream.server
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from cloudkitty.tests.functional import cached_venv
from cloudkitty.tests.functional import live_server

VERSION = '25.0.0'
REQUIREMENTS = (f'cloudkitty=={VERSION}', 'PyMySQL', 'SQLAlchemy<2')
DISTRIBUTIONS = ('cloudkitty', 'SQLAlchemy', 'influxdb', 'PyMySQL')
INSTALL_TIMEOUT = 900
CONSTRAINTS = pathlib.Path(__file__).with_name('constraints.txt')
SIDE = pathlib.Path(__file__).with_name('upstream_side.py')
START_TIMEOUT = 60
SIDE_TIMEOUT = 600


class UpstreamUnavailable(Exception):
    """Upstream CloudKitty or InfluxDB cannot be installed or started."""


def venv_dir():
    # ensure_venv installs anew when REQUIREMENTS or the pins change.
    override = os.environ.get('CLOUDKITTY_TEST_UPSTREAM_VENV')
    return pathlib.Path(override or cached_venv.cache_dir() /
                        'upstream-venv')


def ensure_installed():
    """Install upstream into :func:`venv_dir` if missing (see
    :func:`cached_venv.ensure_venv`)."""
    return cached_venv.ensure_venv(venv_dir(), REQUIREMENTS, DISTRIBUTIONS,
                                   INSTALL_TIMEOUT, UpstreamUnavailable,
                                   CONSTRAINTS)


def answers(url, process):
    """Whether ``url`` answers within :data:`START_TIMEOUT` seconds while
    ``process`` (the server) runs."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    return False


class InfluxDB:
    """``influxd`` on free loopback ports, its data under ``state``."""

    def __init__(self, state):
        self.state = pathlib.Path(state)
        self.process = None
        self.port = None

    @property
    def url(self):
        return f'http://127.0.0.1:{self.port}'

    def start(self):
        binary = shutil.which('influxd')
        if binary is None:
            raise UpstreamUnavailable('no influxd (Debian package influxdb)')
        self.port = live_server.free_port()
        rpc = live_server.free_port()
        config = self.state / 'influxdb.conf'
        config.write_text(f"""\
reporting-disabled = true
bind-address = "127.0.0.1:{rpc}"
[meta]
  dir = "{self.state}/meta"
[data]
  dir = "{self.state}/data"
  wal-dir = "{self.state}/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:{self.port}"
  log-enabled = false
[monitor]
  store-enabled = false
""")
        log = open(self.state / 'influxd.log', 'w')
        self.process = subprocess.Popen(
            [binary, '-config', str(config)], stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        if not answers(f'{self.url}/ping', self.process):
            self.stop()
            raise UpstreamUnavailable(
                'influxd did not start: ' +
                live_server.log_tail(self.state / 'influxd.log'))

    def query(self, statement):
        """Run an InfluxQL statement (POST: it may write)."""
        data = urllib.parse.urlencode({'q': statement}).encode()
        with urllib.request.urlopen(f'{self.url}/query', data=data,
                                    timeout=60) as answer:
            return json.load(answer)

    def stop(self):
        if self.process is not None:
            live_server.stop_process(self.process)
            self.process = None


class Upstream:
    """Upstream CloudKitty's configuration and commands.

    :param state: a directory of its own.
    :param database_url: its (MariaDB) database, empty.
    :param influx: the running :class:`InfluxDB` for its storage.
    """

    def __init__(self, state, database_url, influx, database='cloudkitty'):
        self.state = pathlib.Path(state)
        self.venv = None
        self.database_url = database_url
        self.influx = influx
        self.influx_database = database
        self.config = self.state / 'cloudkitty.conf'

    def setup(self):
        """Install if needed, write the configuration, create upstream's
        tables and its InfluxDB database."""
        self.venv = ensure_installed()['venv']
        self.influx.query(f'CREATE DATABASE "{self.influx_database}"')
        self.config.write_text(f"""\
[DEFAULT]
auth_strategy = noauth
use_stderr = true
[database]
connection = {self.database_url}
[collect]
period = 3600
[storage]
backend = influxdb
version = 2
[storage_influxdb]
host = 127.0.0.1
port = {self.influx.port}
database = {self.influx_database}
""")
        for command in ('cloudkitty-dbsync', 'cloudkitty-storage-init'):
            argv = [str(self.venv / 'bin' / command), '--config-file',
                    str(self.config)]
            if command == 'cloudkitty-dbsync':
                argv.append('upgrade')
            cached_venv.run(argv, 300, command, UpstreamUnavailable,
                            cwd=self.state, env=self.env())

    def env(self):
        """The environment of upstream's processes."""
        env = dict(os.environ)
        env.pop('PYTHONPATH', None)
        # Upstream's dependencies warn at import; errors must show.
        env['PYTHONWARNINGS'] = 'ignore'
        return env

    def side_argv(self, command):
        """The command line running ``command`` of :mod:`upstream_side`."""
        return [str(self.venv / 'bin' / 'python'), str(SIDE),
                str(self.config), command]

    def side(self, command, argument):
        """Run ``command`` of :mod:`upstream_side` with its JSON argument;
        return its JSON answer."""
        try:
            done = subprocess.run(
                self.side_argv(command), input=json.dumps(argument),
                capture_output=True, text=True, timeout=SIDE_TIMEOUT,
                cwd=self.state, env=self.env(), check=True)
        except subprocess.CalledProcessError as exc:
            raise AssertionError(f'upstream {command} failed: '
                                 f'{exc.stderr[-3000:]}') from None
        return json.loads(done.stdout)


def main():
    started = time.monotonic()
    installed = ensure_installed()
    print(f'upstream {installed["versions"]} in {installed["venv"]}, '
          f'{time.monotonic() - started:.1f} s')


if __name__ == '__main__':
    sys.exit(main())
