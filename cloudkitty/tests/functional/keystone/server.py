"""A real Keystone for the tests: its own virtualenv, SQLite, gunicorn.

Keystone's pins clash with ours, so it lives in a virtualenv of its own,
``$XDG_CACHE_HOME/cloudkitty-test/keystone-venv`` (``~/.cache`` without
``XDG_CACHE_HOME``, or ``$CLOUDKITTY_TEST_KEYSTONE_VENV``), installed from
PyPI on first use (about a minute) and reused afterwards. A file lock makes
parallel test workers install it once.

Each :class:`Keystone` is a fresh instance on a free loopback port: a copy
of a template holding the schema (``keystone-manage db_sync``) and the
fernet and credential keys (``fernet_setup``, ``credential_setup``), made
once per installed version; then ``keystone-manage bootstrap`` (the admin
user, project and role, the catalog entry of this instance's URL) and
gunicorn serving ``keystone.wsgi.api:application``.

Run as a script to install, start and time it::

    python -m cloudkitty.tests.functional.keystone.server
"""

import grp
import os
import pathlib
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

from cloudkitty.tests.functional import cached_venv
from cloudkitty.tests.functional import live_server

PACKAGES = ('keystone', 'gunicorn')
ADMIN_PASSWORD = 'admin-secret'
INSTALL_TIMEOUT = 900
#: The versions of everything in the virtualenv, as the suite was tested.
CONSTRAINTS = pathlib.Path(__file__).with_name('constraints.txt')
START_TIMEOUT = 90


class KeystoneUnavailable(Exception):
    """Keystone could not be installed or started here."""


cache_dir = cached_venv.cache_dir


def venv_dir():
    override = os.environ.get('CLOUDKITTY_TEST_KEYSTONE_VENV')
    return pathlib.Path(override) if override else \
        cache_dir() / 'keystone-venv'


def _run(argv, timeout, what, **kwargs):
    return cached_venv.run(argv, timeout, what, KeystoneUnavailable,
                           **kwargs)


def ensure_installed():
    """Install Keystone and gunicorn into :func:`venv_dir` if missing.

    Returns ``{"venv", "versions": {package: version}, "install_seconds"}``
    (0 seconds when it was there). Raises :class:`KeystoneUnavailable`.
    """
    return cached_venv.ensure_venv(venv_dir(), PACKAGES, PACKAGES,
                                   INSTALL_TIMEOUT, KeystoneUnavailable,
                                   CONSTRAINTS)


def _keystone_conf(state):
    return f"""\
[DEFAULT]
log_file = {state}/keystone.log
[database]
connection = sqlite:///{state}/keystone.db
[fernet_tokens]
key_repository = {state}/fernet-keys
[fernet_receipts]
key_repository = {state}/fernet-keys
[credential]
key_repository = {state}/credential-keys
[identity]
# The minimum bcrypt cost: tests issue many tokens.
password_hash_rounds = 4
"""


def _manage(venv, config, *args):
    return _run([str(venv / 'bin' / 'keystone-manage'), '--config-file',
                 str(config), *args], 300, f'keystone-manage {args[0]}')


def _owner_args():
    return ['--keystone-user', pwd.getpwuid(os.getuid()).pw_name,
            '--keystone-group', grp.getgrgid(os.getgid()).gr_name]


def ensure_template(venv, versions):
    """A migrated database and key repositories for this Keystone version.

    Made once under a lock, in the cache directory; instances copy it.
    """
    template = cache_dir() / f"keystone-template-{versions['keystone']}"
    with cached_venv.file_lock(cache_dir() / 'keystone-template.lock'):
        if (template / 'keystone.db').exists():
            return template
        work = pathlib.Path(tempfile.mkdtemp(dir=cache_dir(),
                                             prefix='keystone-template.'))
        try:
            config = work / 'keystone.conf'
            config.write_text(_keystone_conf(work))
            _manage(venv, config, 'db_sync')
            _manage(venv, config, 'fernet_setup', *_owner_args())
            _manage(venv, config, 'credential_setup', *_owner_args())
            config.unlink()
            (work / 'keystone.log').unlink(missing_ok=True)
            work.rename(template)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return template


def _get(url, timeout=2):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status


class Keystone:
    """One running Keystone; :meth:`start` and :meth:`stop` it.

    ``url`` is the identity endpoint (``http://127.0.0.1:<port>/v3``), with
    an ``admin`` user (password :data:`ADMIN_PASSWORD`), project and role.
    """

    def __init__(self, state_dir):
        self.state = pathlib.Path(state_dir)
        self.port = None
        self.url = None
        self.timings = {}
        self._process = None
        self._log = None

    def start(self):
        """Install if needed, prepare the state and serve; return self."""
        installed = ensure_installed()
        venv = installed['venv']
        self.versions = installed['versions']
        self.timings['install'] = installed['install_seconds']
        started = time.monotonic()
        template = ensure_template(venv, self.versions)
        self.timings['template'] = time.monotonic() - started

        started = time.monotonic()
        if self.state.exists():
            shutil.rmtree(self.state)
        shutil.copytree(template, self.state)
        config = self.state / 'keystone.conf'
        config.write_text(_keystone_conf(self.state))
        self.port = live_server.free_port()
        self.url = f'http://127.0.0.1:{self.port}/v3'
        _manage(venv, config, 'bootstrap',
                '--bootstrap-password', ADMIN_PASSWORD,
                '--bootstrap-username', 'admin',
                '--bootstrap-project-name', 'admin',
                '--bootstrap-role-name', 'admin',
                '--bootstrap-region-id', 'RegionOne',
                '--bootstrap-public-url', self.url,
                '--bootstrap-internal-url', self.url,
                '--bootstrap-admin-url', self.url)
        self.timings['bootstrap'] = time.monotonic() - started

        started = time.monotonic()
        # keystone parses sys.argv as its own options, so gunicorn runs
        # without arguments and reads gunicorn.conf.py from its cwd.
        (self.state / 'gunicorn.conf.py').write_text(
            f"bind = '127.0.0.1:{self.port}'\n"
            "workers = 1\n"
            "threads = 4\n"
            "wsgi_app = 'keystone.wsgi.api:application'\n"
            "graceful_timeout = 2\n")
        env = dict(os.environ, OS_KEYSTONE_CONFIG_FILES=str(config))
        env.pop('PYTHONPATH', None)
        # Open for the server's lifetime; closed by stop().
        self._log = open(self.state / 'gunicorn.log', 'ab')  # noqa: SIM115
        try:
            self._process = subprocess.Popen(
                [str(venv / 'bin' / 'gunicorn')], cwd=self.state, env=env,
                stdin=subprocess.DEVNULL, stdout=self._log,
                stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as exc:
            raise KeystoneUnavailable(f'cannot run gunicorn: {exc}') from None
        self._wait_until_up()
        self.timings['start'] = time.monotonic() - started
        return self

    def _wait_until_up(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            try:
                if _get(self.url) == 200:
                    return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        self.stop()
        tail = (self.state / 'gunicorn.log').read_text(errors='replace')
        raise KeystoneUnavailable(
            f'keystone did not answer on {self.url}: {tail[-2000:]}')

    def stop(self):
        """Stop the server (idempotent)."""
        if self._process is not None and self._process.poll() is None:
            # SIGINT: gunicorn's quick shutdown.
            self._process.send_signal(signal.SIGINT)
            try:
                self._process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait(15)
        self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None


def main():
    with tempfile.TemporaryDirectory() as state:
        cached_venv.time_start('keystone', Keystone(state))


if __name__ == '__main__':
    main()
