"""A primary and a replica of the test's own, PostgreSQL or MariaDB.

PostgreSQL (:func:`running`): the primary is an
:class:`~cloudkitty.tests.functional.own_postgresql.Cluster`; the replica
is copied from it with ``pg_basebackup -R`` (which writes
``standby.signal`` and the ``primary_conninfo`` of a streaming replica)
into another temporary directory and started on another free port, as a
hot standby that answers reads. Both run under the
``postgres`` account when the tests run as root, and are destroyed after
the test.

MariaDB (:func:`running_mariadb`): two ``mariadbd`` on free ports, from
one data directory made by ``mariadb-install-db`` and copied, the second
replicating the first's binary log (``CHANGE MASTER TO``, ``START
REPLICA``); ``root`` has no password. As root, they run under the
``mysql`` account.

The machine's own servers are never touched.
"""

import contextlib
import os
import shutil
import subprocess
import tempfile

from cloudkitty import db
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


class MariaDB(coordination.Server):
    """A ``mariadbd`` with a binary log, on the data directory ``data``
    (made by :func:`running_mariadb`), as server ``server_id``."""

    binary = 'mariadbd'
    package = 'mariadb-server'

    def __init__(self, directory, data, server_id):
        super().__init__(directory)
        self.data = data
        self.server_id = server_id

    @property
    def url(self):
        return f'mysql://root@127.0.0.1:{self.port}/ck'

    def argv(self):
        user = ['--user=mysql'] if os.geteuid() == 0 else []
        return [self.path, '--no-defaults', *user, f'--datadir={self.data}',
                f'--port={self.port}', '--bind-address=127.0.0.1',
                f'--socket={self.data}/mariadb.sock',
                f'--pid-file={self.data}/mariadb.pid',
                f'--server-id={self.server_id}', '--log-bin=binlog',
                '--skip-name-resolve', '--innodb-flush-log-at-trx-commit=0']

    def execute(self, *statements):
        """Run ``statements`` as ``root``, outside any database, and
        commit."""
        engine = db.create_engine(self.url.rsplit('/', 1)[0] + '/')
        try:
            with engine.begin() as connection:
                for statement in statements:
                    connection.exec_driver_sql(statement)
        finally:
            engine.dispose()

    def delay(self, seconds):
        """Apply the primary's changes ``seconds`` after it made them
        (``MASTER_DELAY``)."""
        self.execute('STOP REPLICA',
                     f'CHANGE MASTER TO MASTER_DELAY = {int(seconds)}',
                     'START REPLICA')


@contextlib.contextmanager
def running_mariadb():
    """Yield ``(primary, replica)`` (:class:`MariaDB`), started, the
    database ``ck`` made on the primary and replicated; stopped and
    removed on exit. Skip the test (fail it under CI) where MariaDB's
    server is not installed."""
    install = shutil.which('mariadb-install-db')
    if install is None:
        coordination.missing('mariadb-install-db is not installed (Debian '
                             'package "mariadb-server")')
    directory = tempfile.mkdtemp(prefix='ck-mariadb-')
    servers = []
    try:
        user = []
        if os.geteuid() == 0:
            shutil.chown(directory, 'mysql', 'mysql')
            user = ['--user=mysql']
        template = os.path.join(directory, 'template')
        subprocess.run([install, '--no-defaults', f'--datadir={template}',
                        *user, '--auth-root-authentication-method=normal',
                        '--skip-test-db'],
                       check=True, capture_output=True, timeout=120)
        for server_id, name in ((1, 'primary'), (2, 'replica')):
            data = os.path.join(directory, f'{name}-data')
            # cp -a: the copy keeps the owner the server runs as.
            subprocess.run(['cp', '-a', template, data], check=True)
            servers.append(MariaDB(os.path.join(directory, name), data,
                                   server_id).start())
        primary, replica = servers
        replica.execute(
            f"CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = "
            f"{primary.port}, MASTER_USER = 'root', "
            f"MASTER_CONNECT_RETRY = 1", 'START REPLICA')
        primary.execute('CREATE DATABASE ck')
        yield primary, replica
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(directory, ignore_errors=True)
