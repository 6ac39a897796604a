"""A PostgreSQL cluster of the test's own, which the test may stop.

The machine's shared server serves other tests at the same time and must
never be stopped; a test that takes the database away starts this one
instead: ``initdb`` in a temporary directory, ``pg_ctl`` on a free port
of 127.0.0.1 (its socket in the same directory), trust authentication
for ``postgres``. PostgreSQL refuses to run as root: as root, the
directory is handed to the ``postgres`` account and the commands run
under it.
"""

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile

from cloudkitty.tests.functional import coordination
from cloudkitty.tests.functional import live_server


def binaries():
    """The newest installed PostgreSQL's bin directory, or ``None``."""
    found = sorted(glob.glob('/usr/lib/postgresql/*/bin/initdb'),
                   key=lambda path: int(path.split('/')[4]))
    return os.path.dirname(found[-1]) if found else None


@contextlib.contextmanager
def running():
    """Yield a started :class:`Cluster`, destroyed on exit; skip the test
    (fail it under CI) where PostgreSQL's server binaries are missing."""
    bin_dir = binaries()
    if bin_dir is None:
        coordination.missing(
            'PostgreSQL (/usr/lib/postgresql/*/bin/initdb) is missing')
    cluster = Cluster(bin_dir)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


class Cluster:
    """A throw-away cluster: :meth:`start`, :meth:`stop`, :attr:`url`."""

    def __init__(self, bin_dir):
        self._bin = bin_dir
        self.directory = tempfile.mkdtemp(prefix='ck-postgresql-')
        self.data = os.path.join(self.directory, 'data')
        self.port = live_server.free_port()
        self._account = None
        if os.geteuid() == 0:
            self._account = pwd.getpwnam('postgres')
            os.chown(self.directory, self._account.pw_uid,
                     self._account.pw_gid)
        self._create()

    def _create(self):
        """Make :attr:`data`: a new, empty cluster (subclasses copy one
        instead)."""
        self._run('initdb', '-D', self.data, '-A', 'trust', '-U',
                  'postgres', '-E', 'UTF8', '--no-sync')

    @property
    def url(self):
        return f'postgresql://postgres@127.0.0.1:{self.port}/postgres'

    def start(self):
        self._run('pg_ctl', '-D', self.data, '-l',
                  os.path.join(self.directory, 'server.log'), '-w', '-o',
                  f'-p {self.port} -k {self.directory} '
                  '-c listen_addresses=127.0.0.1 -c fsync=off', 'start')

    def stop(self, mode='immediate'):
        """Stop the server; ``immediate`` as in a crash (connections
        dropped, recovery at the next start)."""
        self._run('pg_ctl', '-D', self.data, '-m', mode, '-w', 'stop')

    def destroy(self):
        if os.path.exists(os.path.join(self.data, 'postmaster.pid')):
            self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def _run(self, command, *args):
        account = self._account

        def as_postgres():
            os.setgid(account.pw_gid)
            os.setuid(account.pw_uid)
        subprocess.run([os.path.join(self._bin, command), *args], check=True,
                       capture_output=True, cwd=self.directory, timeout=120,
                       preexec_fn=as_postgres if account else None)
