"""``cloudkitty-writer`` as operators run it, and its progress bar."""

import io
import os
import pty
import subprocess
import sys

from alembic import autogenerate
from alembic import migration as alembic_migration

from cloudkitty.cli import writer as writer_cli
from cloudkitty.db import models
from cloudkitty.tests.functional.writer.conftest import FEBRUARY
from cloudkitty.tests.functional.writer.conftest import JANUARY
from cloudkitty.writer import orchestrator


def _config_file(env):
    path = env.basepath.parent / 'cloudkitty.conf'
    path.write_text(
        f'[database]\nconnection = {env.conf.database.connection}\n'
        f'[output]\nbasepath = {env.basepath}\npipeline = csv, osrf\n')
    return str(path)


def test_generate_and_tenants_list_as_a_command(env):
    command = [os.path.join(os.path.dirname(sys.executable),
                            'cloudkitty-writer'), '--config-file',
               _config_file(env)]
    listed = subprocess.run(command + ['tenants_list'], capture_output=True,
                            text=True, timeout=60)
    assert (listed.returncode, listed.stdout.splitlines()) == (
        0, ['p1', 'p2'])

    run = subprocess.run(
        command + ['generate', '--tenant', 'p2', '--end',
                   '2026-02-01T00:30:00Z'],
        capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[-1] == (
        f'2 month(s) of 1 scope(s) written to {env.basepath} (csv, osrf): '
        f'4 period(s) added, 0 file(s) rebuilt')
    # Not a terminal: one log line per scope and month, no bar.
    assert [line.split(' INFO cloudkitty.cli.writer [-] ')[1]
            for line in lines if 'cloudkitty.cli.writer' in line] == [
        'scope p2, 2026-01: 3 period(s) written, up to '
        '2026-02-01T00:00:00+00:00; month total '
        '3.0740740734074074073407407405',
        'scope p2, 2026-02: 1 period(s) written, up to '
        '2026-02-01T00:30:00+00:00; month total '
        '1.0246913578024691357802469135']
    assert '\r' not in run.stderr
    assert sorted(env.files()) == ['p2-2026-01.csv', 'p2-2026-02.csv',
                                   'p2-osrf-2026-01.json',
                                   'p2-osrf-2026-02.json']

    bad = subprocess.run(command + ['generate', '--begin', 'yesterday'],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1
    assert bad.stderr.startswith('cloudkitty-writer: --begin: ')


def test_a_terminal_gets_the_bar_instead_of_log_lines(env):
    main, terminal = pty.openpty()
    try:
        run = subprocess.run(
            [os.path.join(os.path.dirname(sys.executable),
                          'cloudkitty-writer'), '--config-file',
             _config_file(env), 'generate'],
            stdout=subprocess.PIPE, stderr=terminal, text=True, timeout=60,
            env=dict(os.environ, COLUMNS='61'))
        os.close(terminal)
        drawn = b''
        while True:
            try:
                chunk = os.read(main, 4096)
            except OSError:  # EIO: the command's end of the terminal is shut
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(main)
    assert run.returncode == 0
    assert 'cloudkitty.cli.writer' not in run.stdout
    assert drawn.decode().split('\r')[-2:] == [
        '[##############################] 2/2 scopes  done'.ljust(60),
        '\n']


def test_progress_bar_draws_one_line_per_month(monkeypatch):
    monkeypatch.setattr(writer_cli.shutil, 'get_terminal_size',
                        lambda: os.terminal_size((61, 24)))
    stream = io.StringIO()
    bar = writer_cli.ProgressBar(['p1', 'p2'], stream)
    bar(orchestrator.MonthResult('p1', JANUARY, FEBRUARY))
    bar(orchestrator.MonthResult('p2', FEBRUARY, FEBRUARY))
    bar.close()
    assert stream.getvalue().split('\r') == [
        '',
        '[..............................] 0/2 scopes  p1 2026-01'.ljust(60),
        '[###############...............] 1/2 scopes  p2 2026-02'.ljust(60),
        '[##############################] 2/2 scopes  done'.ljust(60) + '\n']


def test_the_state_model_matches_its_migration(env):
    with env.engine.connect() as conn:
        context = alembic_migration.MigrationContext.configure(
            conn, opts={'compare_type': True})
        diffs = autogenerate.compare_metadata(context, models.Base.metadata)
    assert [d for d in diffs if 'writer_file_states' in repr(d)] == []
