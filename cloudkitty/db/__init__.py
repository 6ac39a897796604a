"""Database access: engines, the models of the service's tables, migrations.

One alembic environment (``cloudkitty/db/migration``) creates every table:
scope state, reprocessing schedule, module state and the rated data of the
``sqlalchemy`` storage backend.
"""

import sqlalchemy
from sqlalchemy import event

from cloudkitty.db import migration  # noqa: F401  (alembic env location)

#: Execution option of a connection whose transactions only read
#: (``connection.execution_options(**{READ_ONLY: True})``). On SQLite they
#: begin deferred, a WAL snapshot that neither waits for nor holds back
#: writers and other readers; every other transaction begins IMMEDIATE.
READ_ONLY = 'cloudkitty_read_only'


def create_engine(url, **kwargs):
    """Return an SQLAlchemy engine for ``url`` with the service's settings.

    SQLite gets WAL journaling and a busy timeout so that several processes
    (processor workers, API, CLI) can share one file, and transactions that
    begin IMMEDIATE unless they are :data:`READ_ONLY`; MariaDB/MySQL URLs
    without a driver use PyMySQL.
    """
    # No pool_pre_ping: it costs a round trip per checkout on the hot path,
    # and a dropped connection already fails the scope's period, which is
    # retried on a later pass with a fresh connection.
    url = sqlalchemy.engine.make_url(url)
    if url.drivername in ('mysql', 'mariadb'):
        url = url.set(drivername='mysql+pymysql')
    if url.drivername.startswith('mysql') and 'charset' not in url.query:
        url = url.update_query_dict({'charset': 'utf8mb4'})
    if url.drivername.startswith('sqlite'):
        kwargs.setdefault('connect_args', {}).setdefault('timeout', 60)
    engine = sqlalchemy.create_engine(url, **kwargs)
    if url.drivername.startswith('sqlite'):
        event.listen(engine, 'connect', _sqlite_on_connect)
        event.listen(engine, 'begin', _sqlite_on_begin)
    return engine


def _sqlite_on_connect(dbapi_connection, _record):
    # pysqlite's own transaction handling defers BEGIN; take over so that
    # a write transaction starts with BEGIN IMMEDIATE (no upgrade deadlock).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute('PRAGMA journal_mode=WAL')
    cursor.execute('PRAGMA synchronous=NORMAL')
    cursor.execute('PRAGMA foreign_keys=ON')
    cursor.close()


def _sqlite_on_begin(connection):
    connection.exec_driver_sql(
        'BEGIN' if connection.get_execution_options().get(READ_ONLY)
        else 'BEGIN IMMEDIATE')
