"""Unit tests do no I/O beyond their temporary files: no network, no
subprocess, no database server.

A unit test that tries to connect a socket or start a process fails here
at once, with the name of what it tried; such a test belongs in
``tests/functional``. (SQLite in memory or in ``tmp_path`` is a file, and
allowed.)
"""

import socket
import subprocess

import pytest


class UnitTestDidIO(AssertionError):
    """A unit test reached for the network or another process."""


def _refuse(what):
    def refuse(*args, **kwargs):
        raise UnitTestDidIO(f'a unit test may not {what}: move it to '
                            'tests/functional')
    return refuse


@pytest.fixture(autouse=True)
def no_io(monkeypatch):
    monkeypatch.setattr(socket.socket, 'connect', _refuse('connect a socket'))
    monkeypatch.setattr(socket.socket, 'connect_ex',
                        _refuse('connect a socket'))
    monkeypatch.setattr(subprocess.Popen, '__init__',
                        _refuse('start a process'))
