"""A real Gnocchi for the tests: its own virtualenv, PostgreSQL, file storage.

Gnocchi's pins clash with ours, so it lives in a virtualenv of its own,
``$XDG_CACHE_HOME/cloudkitty-test/gnocchi-venv`` (or
``$CLOUDKITTY_TEST_GNOCCHI_VENV``), installed from PyPI on first use (about
half a minute) and reused afterwards (see
:mod:`cloudkitty.tests.functional.cached_venv`).

Each :class:`Gnocchi` is a fresh instance: its indexer in the PostgreSQL
database it is given, its measures in files under its state directory
(``gnocchi-upgrade`` creates both), gunicorn serving ``gnocchi.rest.wsgi``
with basic authentication on a free loopback port, and ``gnocchi-metricd``
turning new measures into aggregates every second. Basic authentication
accepts any user name (``admin`` is the administrator); the access log
records who called (:meth:`Gnocchi.callers`).

Run as a script to install, start and time it::

    python -m cloudkitty.tests.functional.gnocchi.server
"""

import base64
import os
import pathlib
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

from cloudkitty.tests.functional import cached_venv
from cloudkitty.tests.functional import live_server
from cloudkitty.tests.functional import storage as storage_fixtures

GNOCCHI_VERSION = '4.7.1'
REQUIREMENTS = (f'gnocchi[postgresql,file]=={GNOCCHI_VERSION}', 'gunicorn')
DISTRIBUTIONS = ('gnocchi', 'gunicorn', 'psycopg2')
INSTALL_TIMEOUT = 900
START_TIMEOUT = 90
#: Few sacks: metricd scans each of them every second.
SACKS = 4
#: How to stop gunicorn (its quick shutdown) and metricd (which then waits
#: for its workers).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class GnocchiUnavailable(Exception):
    """Gnocchi could not be installed or started here."""


def venv_dir():
    override = os.environ.get('CLOUDKITTY_TEST_GNOCCHI_VENV')
    return pathlib.Path(override) if override else \
        cached_venv.cache_dir() / 'gnocchi-venv'


def ensure_installed():
    """Install Gnocchi and gunicorn into :func:`venv_dir` if missing.

    Returns ``{"venv", "versions": {package: version}, "install_seconds"}``.
    Raises :class:`GnocchiUnavailable`.
    """
    return cached_venv.ensure_venv(venv_dir(), REQUIREMENTS, DISTRIBUTIONS,
                                   INSTALL_TIMEOUT, GnocchiUnavailable)


def _gnocchi_conf(state, indexer_url):
    return f"""\
[DEFAULT]
log_file = {state}/gnocchi.log
[api]
auth_mode = basic
[indexer]
url = {indexer_url}
[storage]
driver = file
file_basepath = {state}/storage
[metricd]
workers = 1
metric_processing_delay = 1
metric_reporting_delay = -1
"""


# gnocchi.rest.wsgi parses sys.argv as its own options: the WSGI module
# gunicorn loads hands it the configuration file instead of gunicorn's.
_WSGI_MODULE = """\
import sys
sys.argv = [sys.argv[0], '--config-file', {config!r}]
from gnocchi.rest.wsgi import application  # noqa: E402,F401
"""


def indexer_url(url):
    """The URL of a database of :mod:`storage_fixtures` as Gnocchi's
    indexer wants it (its psycopg2 driver)."""
    return 'postgresql://' + url.split('://', 1)[1]


class Gnocchi:
    """One running Gnocchi; :meth:`start` and :meth:`stop` it.

    ``url`` is its endpoint (``http://127.0.0.1:<port>``); basic
    authentication, where user ``admin`` is the administrator.
    """

    def __init__(self, state_dir, database_url):
        self.state = pathlib.Path(state_dir)
        self.database_url = database_url
        self.port = None
        self.url = None
        self.timings = {}
        self.versions = None
        self._processes = []
        self._log = None

    def start(self):
        """Install if needed, prepare the state and serve; return self."""
        installed = ensure_installed()
        venv = installed['venv']
        self.versions = installed['versions']
        self.timings['install'] = installed['install_seconds']

        started = time.monotonic()
        self.state.mkdir(parents=True, exist_ok=True)
        config = self.state / 'gnocchi.conf'
        config.write_text(_gnocchi_conf(self.state,
                                        indexer_url(self.database_url)))
        cached_venv.run([str(venv / 'bin' / 'gnocchi-upgrade'),
                         '--config-file', str(config),
                         f'--sacks-number={SACKS}'],
                        300, 'gnocchi-upgrade', GnocchiUnavailable)
        self.timings['upgrade'] = time.monotonic() - started

        started = time.monotonic()
        self.port = live_server.free_port()
        self.url = f'http://127.0.0.1:{self.port}'
        (self.state / 'gnocchi_test_wsgi.py').write_text(
            _WSGI_MODULE.format(config=str(config)))
        (self.state / 'gunicorn.conf.py').write_text(
            f"bind = '127.0.0.1:{self.port}'\n"
            "workers = 1\n"
            "threads = 4\n"
            "wsgi_app = 'gnocchi_test_wsgi:application'\n"
            f"control_socket = {str(self.state / 'gunicorn.ctl')!r}\n"
            f"accesslog = {str(self.state / 'access.log')!r}\n"
            "access_log_format = '%(m)s %(U)s %({authorization}i)s'\n"
            "graceful_timeout = 2\n")
        env = dict(os.environ)
        env.pop('PYTHONPATH', None)
        # Open for the servers' lifetime; closed by stop().
        self._log = open(self.state / 'processes.log', 'ab')  # noqa: SIM115
        for argv in ([str(venv / 'bin' / 'gunicorn')],
                     [str(venv / 'bin' / 'gnocchi-metricd'),
                      '--config-file', str(config)]):
            try:
                self._processes.append(subprocess.Popen(
                    argv, cwd=self.state, env=env, stdin=subprocess.DEVNULL,
                    stdout=self._log, stderr=subprocess.STDOUT,
                    start_new_session=True))
            except OSError as exc:
                self.stop()
                raise GnocchiUnavailable(
                    f'cannot run {argv[0]}: {exc}') from None
        self._wait_until_up()
        self.timings['start'] = time.monotonic() - started
        return self

    def callers(self):
        """``[(method, path, user)]`` of the requests served so far, user
        from the basic authentication header (None without one)."""
        calls = []
        path = self.state / 'access.log'
        for line in path.read_text().splitlines() if path.exists() else ():
            method, url, authorization = line.split(' ', 2)
            user = None
            if authorization.lower().startswith('basic '):
                user = base64.b64decode(authorization[6:]).decode().split(
                    ':', 1)[0]
            calls.append((method, url, user))
        return calls

    def _wait_until_up(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self._processes):
                break
            try:
                with urllib.request.urlopen(self.url, timeout=2) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        self.stop()
        logs = [self.state / 'processes.log', self.state / 'gnocchi.log']
        tail = ''.join(p.read_text(errors='replace')[-2000:]
                       for p in logs if p.exists())
        raise GnocchiUnavailable(
            f'gnocchi did not answer on {self.url}: {tail}')

    def stop(self):
        """Stop the API and metricd (idempotent)."""
        for process, stop_signal in zip(self._processes, STOP_SIGNALS):
            if process.poll() is None:
                process.send_signal(stop_signal)
        for process in self._processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(15)
        self._processes = []
        if self._log is not None:
            self._log.close()
            self._log = None


def main():
    with tempfile.TemporaryDirectory() as state, \
            storage_fixtures.fresh_database('postgresql',
                                            prefix='ck_gnocchi') as url:
        cached_venv.time_start('gnocchi', Gnocchi(state, url))


if __name__ == '__main__':
    main()
