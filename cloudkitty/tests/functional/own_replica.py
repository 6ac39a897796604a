"""A PostgreSQL primary and a streaming replica of the test's own.

The primary is an :class:`~cloudkitty.tests.functional.own_postgresql.
Cluster`; the replica is copied from it with ``pg_basebackup -R`` (which
writes ``standby.signal`` and the ``primary_conninfo`` of a streaming
replica) into another temporary directory and started on another free
port, as a hot standby that answers reads. Both run under the
``postgres`` account when the tests run as root, and are destroyed after
the test; the machine's own server is never touched.
"""

import contextlib
import os

from cloudkitty.tests.functional import coordination
from cloudkitty.tests.functional import own_postgresql


class Replica(own_postgresql.Cluster):
    """A streaming replica of the running cluster ``primary``:
    :meth:`start`, :meth:`stop`, :attr:`url` as a cluster's."""

    def __init__(self, bin_dir, primary):
        self.primary = primary
        super().__init__(bin_dir)

    def _create(self):
        self._run('pg_basebackup', '-D', self.data, '-h', '127.0.0.1',
                  '-p', str(self.primary.port), '-U', 'postgres', '-R',
                  '-X', 'stream', '-c', 'fast', '--no-sync')


@contextlib.contextmanager
def running():
    """Yield ``(primary, replica)``, both started, destroyed on exit; skip
    the test (fail it under CI) where PostgreSQL's server binaries or
    ``pg_basebackup`` are missing."""
    with own_postgresql.running() as primary:
        bin_dir = own_postgresql.binaries()
        if not os.path.exists(os.path.join(bin_dir, 'pg_basebackup')):
            coordination.missing(f'pg_basebackup is missing from {bin_dir}')
        replica = Replica(bin_dir, primary)
        try:
            replica.start()
            yield primary, replica
        finally:
            replica.destroy()
