"""Fixtures of the end-to-end tests of the ``cloudkitty`` CLI.

The CLI (python-cloudkittyclient, a test requirement) runs as a
subprocess against the API served over HTTP in noauth mode, on a fresh
SQLite database holding the rated data of the API tests' ``rated``
fixture (scopes p1 and p2) and two scopes with a state, p1 and p2,
processed up to day 1 02:00 of the current month.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

from cloudkitty.api import app as api_app
from cloudkitty.tests.functional.api import conftest as api_conftest
from cloudkitty.tests.functional import live_server

#: When p1 and p2 were processed up to.
PROCESSED = api_conftest.at(1, 2)
CLI_TIMEOUT = 60


def _find_cli():
    beside = os.path.join(os.path.dirname(sys.executable), 'cloudkitty')
    return beside if os.path.exists(beside) else shutil.which('cloudkitty')


@pytest.fixture(scope='session')
def cli_path():
    path = _find_cli()
    if path is None:
        message = ('the cloudkitty CLI (python-cloudkittyclient, in '
                   'test-requirements.txt) is not installed')
        if os.environ.get('CI') == 'true':
            pytest.fail(message)
        pytest.skip(message)
    return path


class CliError(AssertionError):
    """The CLI exited with a non-zero status."""


class Cli:
    """Runs ``cloudkitty`` against one API endpoint, without auth."""

    def __init__(self, path, endpoint):
        self.path = path
        self.endpoint = endpoint

    def run(self, *args, api_version=None, check=True):
        """Run ``cloudkitty <args>``; the CompletedProcess (text)."""
        argv = [self.path, '--os-auth-type', 'cloudkitty-noauth',
                '--os-endpoint', self.endpoint]
        if api_version:
            argv += ['--os-rating-api-version', str(api_version)]
        process = subprocess.run(
            argv + [str(arg) for arg in args], capture_output=True,
            text=True, timeout=CLI_TIMEOUT, stdin=subprocess.DEVNULL,
            # No clouds.yaml or OS_* variable of the machine may interfere.
            env={name: value for name, value in os.environ.items()
                 if not name.startswith('OS_')})
        if check and process.returncode != 0:
            raise CliError(f'cloudkitty {" ".join(map(str, args))} exited '
                           f'{process.returncode}: {process.stderr}')
        return process

    def json(self, *args, api_version=None):
        """Run a listing or showing command with ``-f json``; its output."""
        process = self.run(*args, '-f', 'json', api_version=api_version)
        return json.loads(process.stdout) if process.stdout.strip() else None


@pytest.fixture
def scopes(backends):
    for scope_id in ('p1', 'p2'):
        backends.scope_state.set_last_processed_timestamp(scope_id,
                                                          PROCESSED)
    return backends.scope_state


@pytest.fixture
def endpoint(conf, backends, rated, scopes):
    """The API's URL; the app shares ``backends`` with the test."""
    with live_server.serve(api_app.setup_app(conf, backends)) as url:
        yield url


@pytest.fixture
def cli(cli_path, endpoint):
    return Cli(cli_path, endpoint)
