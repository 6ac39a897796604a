"""A real Gnocchi for the tests: its own virtualenv, PostgreSQL, file storage.

Gnocchi's pins clash with ours, so it lives in a virtualenv of its own,
``$XDG_CACHE_HOME/cloudkitty-test/gnocchi-venv-<digest of REQUIREMENTS>``
(or ``$CLOUDKITTY_TEST_GNOCCHI_VENV``), installed from PyPI on first use
(about half a minute) and reused afterwards (see
:mod:`cloudkitty.tests.functional.cached_venv`); a change of
:data:`REQUIREMENTS` makes a new one.

Each :class:`Gnocchi` is a fresh instance: its indexer in the PostgreSQL
database it is given, its measures in files under its state directory
(``gnocchi-upgrade`` creates both), gunicorn serving ``gnocchi.rest.wsgi``
with basic authentication on a free loopback port, and ``gnocchi-metricd``
turning new measures into aggregates every second. Basic authentication
accepts any user name (``admin`` is the administrator); the access log
records who called (:meth:`Gnocchi.callers`). :meth:`Gnocchi.keystone_api`
adds a second API over the same indexer and storage whose
``[api] auth_mode`` is keystone (keystonemiddleware, from Gnocchi's
``keystone`` extra, validating tokens against a Keystone).

Run as a script to install, start and time it::

    python -m cloudkitty.tests.functional.gnocchi.server
"""

import base64
import configparser
import hashlib
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
#: The ``keystone`` extra: keystonemiddleware, for ``auth_mode = keystone``.
REQUIREMENTS = (f'gnocchi[postgresql,file,keystone]=={GNOCCHI_VERSION}',
                'gunicorn')
DISTRIBUTIONS = ('gnocchi', 'gunicorn', 'psycopg2', 'keystonemiddleware')
INSTALL_TIMEOUT = 900
#: The versions of everything in the virtualenv, as the suite was tested.
CONSTRAINTS = pathlib.Path(__file__).with_name('constraints.txt')
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
    if override:
        return pathlib.Path(override)
    digest = hashlib.sha256('\n'.join(REQUIREMENTS).encode()).hexdigest()
    return cached_venv.cache_dir() / f'gnocchi-venv-{digest[:12]}'


def ensure_installed():
    """Install Gnocchi and gunicorn into :func:`venv_dir` if missing.

    Returns ``{"venv", "versions": {package: version}, "install_seconds"}``.
    Raises :class:`GnocchiUnavailable`.
    """
    return cached_venv.ensure_venv(venv_dir(), REQUIREMENTS, DISTRIBUTIONS,
                                   INSTALL_TIMEOUT, GnocchiUnavailable,
                                   CONSTRAINTS)


def _gnocchi_conf(state, storage, indexer_url, keystone_authtoken=None):
    api = 'auth_mode = basic'
    if keystone_authtoken is not None:
        api = (f'auth_mode = keystone\npaste_config = {state}/api-paste.ini'
               '\n[keystone_authtoken]\n' + ''.join(
                   f'{name} = {value}\n'
                   for name, value in keystone_authtoken.items()))
    return f"""\
[DEFAULT]
log_file = {state}/gnocchi.log
[api]
{api}
[indexer]
url = {indexer_url}
[storage]
driver = file
file_basepath = {storage}
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


def _keystone_paste_config(venv, config, path):
    """Gnocchi's paste configuration, its keystonemiddleware reading the
    ``[keystone_authtoken]`` of ``config`` (by default it would look for
    ``/etc/gnocchi/gnocchi.conf``)."""
    installed = next((venv / 'lib').glob(
        'python*/site-packages/gnocchi/rest/api-paste.ini'), None)
    if installed is None:
        raise GnocchiUnavailable(f'no gnocchi/rest/api-paste.ini in {venv}')
    paste = configparser.ConfigParser(interpolation=None)
    paste.optionxform = str
    paste.read(installed)
    paste['filter:keystone_authtoken']['oslo_config_file'] = str(config)
    with open(path, 'w') as handle:
        paste.write(handle)


def indexer_url(url):
    """The URL of a database of :mod:`storage_fixtures` as Gnocchi's
    indexer wants it (its psycopg2 driver)."""
    return 'postgresql://' + url.split('://', 1)[1]


def _spawn(argv, state, log, processes):
    """Start ``argv`` in ``state``, output to ``log``; append it to
    ``processes``."""
    env = dict(os.environ)
    env.pop('PYTHONPATH', None)
    try:
        processes.append(subprocess.Popen(
            argv, cwd=state, env=env, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True))
    except OSError as exc:
        raise GnocchiUnavailable(f'cannot run {argv[0]}: {exc}') from None


def _serve_api(venv, state, config, log, processes):
    """Start gunicorn serving Gnocchi's API of ``config`` on a free port;
    return its URL. The access log (``state/access.log``) records method,
    path and authorization header."""
    port = live_server.free_port()
    (state / 'gnocchi_test_wsgi.py').write_text(
        _WSGI_MODULE.format(config=str(config)))
    (state / 'gunicorn.conf.py').write_text(
        f"bind = '127.0.0.1:{port}'\n"
        "workers = 1\n"
        "threads = 4\n"
        "wsgi_app = 'gnocchi_test_wsgi:application'\n"
        f"control_socket = {str(state / 'gunicorn.ctl')!r}\n"
        f"accesslog = {str(state / 'access.log')!r}\n"
        "access_log_format = '%(m)s %(U)s %({authorization}i)s'\n"
        "graceful_timeout = 2\n")
    _spawn([str(venv / 'bin' / 'gunicorn')], state, log, processes)
    return f'http://127.0.0.1:{port}'


def _wait_until_up(url, processes, state):
    """Wait until ``url`` answers 200; else raise, with the logs' end."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in processes):
            break
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    logs = [state / 'processes.log', state / 'gnocchi.log']
    tail = ''.join(p.read_text(errors='replace')[-2000:]
                   for p in logs if p.exists())
    raise GnocchiUnavailable(f'gnocchi did not answer on {url}: {tail}')


def _stop(processes):
    """Stop gunicorn, then metricd if there (see :data:`STOP_SIGNALS`)."""
    for process, stop_signal in zip(processes, STOP_SIGNALS):
        if process.poll() is None:
            process.send_signal(stop_signal)
    for process in processes:
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(15)
    processes.clear()


class Gnocchi:
    """One running Gnocchi; :meth:`start` and :meth:`stop` it.

    ``url`` is its endpoint (``http://127.0.0.1:<port>``); basic
    authentication, where user ``admin`` is the administrator.
    :meth:`keystone_api` serves the same Gnocchi through Keystone too.
    """

    def __init__(self, state_dir, database_url):
        self.state = pathlib.Path(state_dir)
        self.database_url = database_url
        self.port = None
        self.url = None
        self.timings = {}
        self.versions = None
        self._venv = None
        self._processes = []
        self._log = None

    def start(self):
        """Install if needed, prepare the state and serve; return self."""
        installed = ensure_installed()
        self._venv = venv = installed['venv']
        self.versions = installed['versions']
        self.timings['install'] = installed['install_seconds']

        started = time.monotonic()
        self.state.mkdir(parents=True, exist_ok=True)
        config = self.state / 'gnocchi.conf'
        config.write_text(self._conf(self.state))
        cached_venv.run([str(venv / 'bin' / 'gnocchi-upgrade'),
                         '--config-file', str(config),
                         f'--sacks-number={SACKS}'],
                        300, 'gnocchi-upgrade', GnocchiUnavailable)
        self.timings['upgrade'] = time.monotonic() - started

        started = time.monotonic()
        # Open for the servers' lifetime; closed by stop().
        self._log = open(self.state / 'processes.log', 'ab')  # noqa: SIM115
        try:
            self.url = _serve_api(venv, self.state, config, self._log,
                                  self._processes)
            self.port = int(self.url.rsplit(':', 1)[1])
            _spawn([str(venv / 'bin' / 'gnocchi-metricd'),
                    '--config-file', str(config)], self.state, self._log,
                   self._processes)
            _wait_until_up(self.url, self._processes, self.state)
        except GnocchiUnavailable:
            self.stop()
            raise
        self.timings['start'] = time.monotonic() - started
        return self

    def _conf(self, state, keystone_authtoken=None):
        return _gnocchi_conf(state, self.state / 'storage',
                             indexer_url(self.database_url),
                             keystone_authtoken)

    def keystone_api(self, state_dir, keystone_authtoken):
        """Serve this Gnocchi (its indexer, storage and metricd) through a
        second API whose ``[api] auth_mode`` is keystone.

        :param keystone_authtoken: the options of Gnocchi's section of that
            name: the Keystone, the service user validating tokens
        :returns: the started :class:`KeystoneAPI`; stop it
        """
        api = KeystoneAPI(pathlib.Path(state_dir))
        api.start(self._venv, self._conf(api.state, keystone_authtoken))
        return api

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

    def stop(self):
        """Stop the API and metricd (idempotent)."""
        _stop(self._processes)
        if self._log is not None:
            self._log.close()
            self._log = None


class KeystoneAPI:
    """A second API of a :class:`Gnocchi`, taking Keystone tokens
    (keystonemiddleware's ``auth_token`` in front, the ``admin`` role is
    the administrator); made by :meth:`Gnocchi.keystone_api`. ``url`` is
    its endpoint."""

    def __init__(self, state):
        self.state = state
        self.url = None
        self._processes = []
        self._log = None

    def start(self, venv, conf_text):
        self.state.mkdir(parents=True, exist_ok=True)
        config = self.state / 'gnocchi.conf'
        config.write_text(conf_text)
        _keystone_paste_config(venv, config, self.state / 'api-paste.ini')
        # Open for the server's lifetime; closed by stop().
        self._log = open(self.state / 'processes.log', 'ab')  # noqa: SIM115
        try:
            self.url = _serve_api(venv, self.state, config, self._log,
                                  self._processes)
            _wait_until_up(self.url, self._processes, self.state)
        except GnocchiUnavailable:
            self.stop()
            raise
        return self

    def stop(self):
        """Stop the API (idempotent)."""
        _stop(self._processes)
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
