"""Servers from PyPI in virtualenvs of their own, cached between runs.

Keystone and Gnocchi pin libraries that clash with ours, so each lives in a
virtualenv under ``$XDG_CACHE_HOME/cloudkitty-test`` (``~/.cache`` without
``XDG_CACHE_HOME``), installed on first use and reused afterwards. A file
lock makes parallel test workers install it once; a marker file written
last tells a finished install from an interrupted one.
"""

import contextlib
import fcntl
import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time


def cache_dir():
    base = os.environ.get('XDG_CACHE_HOME') or os.path.expanduser('~/.cache')
    return pathlib.Path(base) / 'cloudkitty-test'


@contextlib.contextmanager
def file_lock(path):
    """Hold an exclusive lock on ``path`` (created if missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, 'a') as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run(argv, timeout, what, error, **kwargs):
    """Run ``argv``; a failure raises ``error`` naming ``what`` and the end
    of its output."""
    try:
        return subprocess.run(argv, check=True, capture_output=True,
                              text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, **kwargs)
    except subprocess.CalledProcessError as exc:
        raise error(
            f'{what} failed ({exc.returncode}): '
            f'{(exc.stderr or exc.stdout or "")[-2000:]}') from None
    except (subprocess.TimeoutExpired, OSError) as exc:
        raise error(f'{what} failed: {exc}') from None


def ensure_venv(venv, requirements, distributions, timeout, error,
                constraints):
    """Install ``requirements`` (pip arguments) into ``venv``, with every
    version pinned by the ``constraints`` file, unless that very install is
    there already.

    :param distributions: the distribution names whose versions to report
    :returns: ``{"venv", "versions": {distribution: version},
        "install_seconds"}`` (0 seconds when it was there)
    :raises error: the install failed
    """
    marker = venv / 'cloudkitty-test.json'
    # What was asked for: another requirement or pin installs anew.
    wanted = hashlib.sha256('\n'.join(
        [*requirements, constraints.read_text()]).encode()).hexdigest()
    with file_lock(venv.parent / (venv.name + '.lock')):
        if marker.exists():
            done = json.loads(marker.read_text())
            if done.get('wanted') == wanted:
                return {'venv': venv, 'install_seconds': 0,
                        'versions': done['versions']}
        # No marker, or another install's: never installed, an install
        # interrupted, or other requirements or pins.
        shutil.rmtree(venv, ignore_errors=True)
        started = time.monotonic()
        run([sys.executable, '-m', 'venv', str(venv)], 120,
            f'creating the virtualenv {venv}', error)
        python = str(venv / 'bin' / 'python')
        run([python, '-m', 'pip', 'install', '--quiet',
             '--disable-pip-version-check', '-c', str(constraints),
             *requirements],
            timeout, f'pip install {" ".join(requirements)}', error)
        versions = json.loads(run(
            [python, '-c', ('import importlib.metadata as m, json, sys; '
                            'print(json.dumps({p: m.version(p) '
                            'for p in sys.argv[1:]}))'),
             *distributions], 60, 'reading versions', error).stdout)
        marker.write_text(json.dumps({'wanted': wanted,
                                      'versions': versions}))
        return {'venv': venv, 'versions': versions,
                'install_seconds': time.monotonic() - started}


def time_start(name, server):
    """Start ``server``, print its versions, URL and the time of each step
    (its ``timings``), then stop it: the ``main`` of the server modules."""
    started = time.monotonic()
    server.start()
    total = time.monotonic() - started
    try:
        print(f'{name} {server.versions} on {server.url}')
        print(', '.join(f'{step} {seconds:.1f} s'
                        for step, seconds in server.timings.items()) +
              f'; ready after {total:.1f} s')
    finally:
        server.stop()
