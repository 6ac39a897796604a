"""Throwaway databases on the PostgreSQL and MariaDB servers.

Used by the storage contract suite and ``benchmarks/storage_bench.py``
(with :func:`make_conf`, the configuration of a storage on a URL).
Each caller gets a database of its own (``ck_test_<random>``), so parallel
test runs never share tables; it is dropped afterwards.

Server URLs come from ``CLOUDKITTY_TEST_POSTGRESQL_URL`` and
``CLOUDKITTY_TEST_MARIADB_URL`` (also read without the ``CLOUDKITTY_``
prefix, as ``CK_TEST_...``; defaults: the local servers of the development
and CI machines). The database named in the URL is only used to connect and
create the others.
"""

import contextlib
import os
import uuid

from oslo_config import cfg
import sqlalchemy as sa

from cloudkitty import conf as ck_conf
from cloudkitty import db


def _server_url(kind, default):
    name = f'TEST_{kind.upper()}_URL'
    return (os.environ.get(f'CLOUDKITTY_{name}')
            or os.environ.get(f'CK_{name}') or default)


SERVER_URLS = {
    'postgresql': _server_url('postgresql',
                              'postgresql://postgres@127.0.0.1:5432/test'),
    'mariadb': _server_url('mariadb', 'mysql://root@127.0.0.1:3306/test'),
}


def make_conf(url):
    """A fresh ``ConfigOpts`` whose sqlalchemy storage points at ``url``."""
    conf = cfg.ConfigOpts()
    ck_conf.register_all(conf)
    conf([], project='cloudkitty')
    conf.set_override('connection', url, 'storage_sqlalchemy')
    return conf


class ServerUnavailable(Exception):
    """The database server cannot be reached."""


def _admin_engine(kind):
    return db.create_engine(SERVER_URLS[kind], isolation_level='AUTOCOMMIT',
                            poolclass=sa.pool.NullPool)


@contextlib.contextmanager
def fresh_database(kind, prefix='ck_test'):
    """Yield the URL of a new, empty database on the ``kind`` server.

    ``kind`` is ``'postgresql'`` or ``'mariadb'``. Raises
    :class:`ServerUnavailable` when the server cannot be reached. The
    database is dropped on exit.
    """
    admin = _admin_engine(kind)
    name = f'{prefix}_{uuid.uuid4().hex[:12]}'
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE {name}')
    except sa.exc.OperationalError as exc:
        admin.dispose()
        raise ServerUnavailable(f'{kind} server at {SERVER_URLS[kind]}: '
                                f'{exc.orig}') from exc
    try:
        yield admin.url.set(database=name).render_as_string(
            hide_password=False)
    finally:
        with admin.connect() as conn:
            if kind == 'postgresql':
                conn.exec_driver_sql(
                    f'DROP DATABASE IF EXISTS {name} WITH (FORCE)')
            else:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS {name}')
        admin.dispose()
