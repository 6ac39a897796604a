"""Database access: engines, the models of the service's tables, migrations.

One alembic environment (``cloudkitty/db/migration``) creates every table:
scope state, reprocessing schedule, module state and the rated data of the
``sqlalchemy`` storage backend.

A service takes its engines from :func:`get_engine`: one per database URL
per process, whoever asks (API backends, rating modules, storage), with
the pool ``[database]`` sizes. :func:`is_unavailable` tells a database
that cannot be reached (refused, dropped or exhausted connections) from
any other failure.

- :mod:`.models`: the service's own tables;
- :mod:`.types`: the column types every model uses;
- :mod:`.replica`: reads served by a streaming replica while it keeps up;
- :mod:`.migration`: the alembic environment and its versions.
"""

import os
import threading
import weakref

import sqlalchemy
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy import pool as sa_pool

from cloudkitty import dataframe

#: Execution option of a connection whose transactions only read
#: (``connection.execution_options(**{READ_ONLY: True})``). On SQLite they
#: begin deferred, a WAL snapshot that neither waits for nor holds back
#: writers and other readers; every other transaction begins IMMEDIATE.
READ_ONLY = 'cloudkitty_read_only'


# (pid, URL, pool settings) -> the engine get_engine() shares.
_SHARED = weakref.WeakValueDictionary()
_SHARED_LOCK = threading.Lock()
# engine -> [setup(dbapi_connection)] of on_every_connection().
_SETUPS = weakref.WeakKeyDictionary()


def normalized_url(url):
    """``url`` (a string or URL) as an engine is built from: MariaDB or
    MySQL through PyMySQL in utf8mb4, and a relative SQLite file made
    absolute against the current directory, so that an engine (and a
    shared engine's key) names one file whatever directory the process
    moves to later."""
    url = sqlalchemy.engine.make_url(url)
    if (url.drivername.startswith('sqlite') and url.database
            and url.database != ':memory:'
            and not url.database.startswith('file:')
            and not os.path.isabs(url.database)):
        url = url.set(database=os.path.abspath(url.database))
    if url.drivername in ('mysql', 'mariadb'):
        url = url.set(drivername='mysql+pymysql')
    if url.drivername.startswith('mysql') and 'charset' not in url.query:
        url = url.update_query_dict({'charset': 'utf8mb4'})
    return url


def create_engine(url, **kwargs):
    """Return a new SQLAlchemy engine for ``url`` with the service's settings.

    SQLite gets WAL journaling and a busy timeout so that several processes
    (processor workers, API, CLI) can share one file, and transactions that
    begin IMMEDIATE unless they are :data:`READ_ONLY`; MariaDB/MySQL URLs
    without a driver use PyMySQL. Other databases check a connection with a
    round trip before handing it out of the pool (``pool_pre_ping``), so
    that the connections left from before a database restart are replaced
    instead of failing the first requests after it. A failure to get a
    working connection (refused, or a failed check) is flagged as a
    disconnection (``connection_invalidated``), which :func:`is_unavailable`
    reads. ``kwargs`` go to :func:`sqlalchemy.create_engine`.

    Long-running services use :func:`get_engine` instead.
    """
    url = normalized_url(url)
    sqlite = url.drivername.startswith('sqlite')
    if sqlite:
        kwargs.setdefault('connect_args', {}).setdefault('timeout', 60)
    else:
        # A round trip per checkout; SQLite has no connection to lose.
        kwargs.setdefault('pool_pre_ping', True)
    engine = sqlalchemy.create_engine(url, **kwargs)
    setups = _SETUPS[engine] = []
    event.listen(engine, 'checkout',
                 lambda dbapi_connection, record, _proxy: _run_setups(
                     setups, dbapi_connection, record))
    event.listen(engine, 'handle_error', _flag_unreachable)
    if sqlite:
        event.listen(engine, 'connect', _sqlite_on_connect)
        event.listen(engine, 'begin', _sqlite_on_begin)
    return engine


def get_engine(conf, url=None):
    """The engine of ``url`` (default: ``[database] connection`` of
    ``conf``), shared by every caller of this process.

    Callers asking for the same URL with the same ``[database]`` pool
    settings get the same engine (built by :func:`create_engine`, with
    :func:`cloudkitty.dataframe.dumps` writing JSON columns), so that the
    process holds at most ``max_pool_size`` + ``max_overflow`` connections
    to that database; a request for a connection waits ``pool_timeout``
    seconds for one to be free, then raises ``sqlalchemy.exc.TimeoutError``.
    Connections are recycled after ``connection_recycle_time`` seconds.
    An engine lives as long as one of its callers keeps it; a forked child
    process builds its own.
    """
    options = conf.database
    url = normalized_url(url or options.connection)
    pool = {}
    if issubclass(url.get_dialect().get_pool_class(url), sa_pool.QueuePool):
        pool = {'pool_size': options.max_pool_size,
                'max_overflow': options.max_overflow,
                'pool_recycle': options.connection_recycle_time}
        if options.pool_timeout is not None:
            pool['pool_timeout'] = options.pool_timeout
    key = (os.getpid(), url.render_as_string(hide_password=False),
           tuple(sorted(pool.items())))
    with _SHARED_LOCK:
        engine = _SHARED.get(key)
        if engine is None:
            engine = _SHARED[key] = create_engine(
                url, json_serializer=dataframe.dumps, **pool)
    return engine


def _forget_shared_engines():
    # In a forked child: the parent's pooled connections are not ours to
    # use nor to close (SQLAlchemy's advice for engines crossing a fork).
    for engine in list(_SHARED.values()):
        engine.dispose(close=False)
    _SHARED.clear()


os.register_at_fork(after_in_child=_forget_shared_engines)


def on_every_connection(engine, setup):
    """Have ``setup(dbapi_connection)`` run once on each connection of
    ``engine`` before its first use, those already pooled included (an
    engine shared by :func:`get_engine` may hold some when a second caller
    comes). Registering the same ``setup`` twice runs it once."""
    setups = _SETUPS[engine]
    if setup not in setups:
        setups.append(setup)


def _run_setups(setups, dbapi_connection, record):
    done = record.info.setdefault('cloudkitty_setups', set())
    for setup in setups:
        if setup not in done:
            setup(dbapi_connection)
            done.add(setup)


def _flag_unreachable(context):
    # Errors raised without a connection are those of getting one: opening
    # it (refused, server starting or stopping, too many clients) or its
    # pre-ping. Either way the database cannot be used now: flag them as
    # disconnections, as a connection lost in a query is.
    if context.connection is None and context.sqlalchemy_exception is not None:
        context.is_disconnect = True


def is_unavailable(error):
    """Whether ``error`` (or an exception it was raised from) says that the
    database cannot be used now, rather than that a statement failed: a
    connection refused, lost, or failing its pre-ping check, or no free
    connection in the pool within ``[database] pool_timeout``.
    """
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, sa_exc.DBAPIError) and \
                error.connection_invalidated:
            return True
        if isinstance(error, sa_exc.TimeoutError):
            return True
        error = error.__cause__ or (
            None if error.__suppress_context__ else error.__context__)
    return False


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
