"""Reads served by a streaming replica while it keeps up with its primary.

A :class:`ReadRouter` holds the primary's engine and, optionally, a
replica's. :meth:`ReadRouter.engine_for_read` answers which one serves a
read: the replica when it can be reached and lags its primary by at most
``max_lag`` seconds, as the replica itself reports it; otherwise the
primary, with a warning that says why (the replica is down, lags N
seconds, or cannot tell its lag). The verdict is kept ``check_every``
seconds, so that reads do not each pay a lag query, and nothing is raised
to the caller whatever state the replica is in.

The lag is read on the replica:

- PostgreSQL: ``now() - pg_last_xact_replay_timestamp()``, the age of the
  last transaction replayed; a replica that has replayed all the WAL it
  received (``pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn()``) is
  caught up whatever that age (an idle primary sends no transactions). A
  server that is not in recovery is a primary: never behind.
- MariaDB (10.5.1 and later) and MySQL (8.0.22 and later):
  ``Seconds_Behind_Master`` (``Seconds_Behind_Source``) of ``SHOW REPLICA
  STATUS``; a server with no replication configured is never behind, one
  whose replication is stopped (no figure) cannot tell its lag.

Writes never go through a router: they take the primary's engine.
"""

import collections
import logging
import threading
import time

from sqlalchemy import exc as sa_exc

from cloudkitty import db

LOG = logging.getLogger(__name__)

#: Seconds a verdict on the replica is kept before it is checked again.
CHECK_EVERY = 1.0

# The verdict: the engine that serves reads until ``until`` (on the
# router's clock), and ``state``: 'replica', or why the primary does
# ('down', 'lagging', 'unknown').
_Verdict = collections.namedtuple('_Verdict', 'engine state until')


def _postgresql_lag(connection):
    in_recovery, caught_up, age = connection.exec_driver_sql(
        'SELECT pg_is_in_recovery(), '
        'pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn(), '
        'EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())').one()
    if not in_recovery or caught_up:
        return 0.0
    # No transaction replayed since the replica started: no age to read.
    return None if age is None else max(float(age), 0.0)


def _mysql_lag(connection):
    status = connection.exec_driver_sql(
        'SHOW REPLICA STATUS').mappings().all()
    if not status:
        return 0.0
    row = status[0]
    behind = row.get('Seconds_Behind_Master',
                     row.get('Seconds_Behind_Source'))
    return None if behind is None else float(behind)


#: Dialect name -> ``lag(connection)``: the seconds the replica on the
#: other end of ``connection`` lags behind its primary, ``0.0`` when it is
#: caught up or is no replica, ``None`` when it cannot tell.
LAG_QUERIES = {
    'postgresql': _postgresql_lag,
    'mysql': _mysql_lag,
    'mariadb': _mysql_lag,
}


class ReadRouter:
    """Which engine serves a read: ``primary`` or ``replica``.

    :param primary: the engine of the primary, which serves every read
        when there is no replica or the replica is bypassed.
    :param replica: the engine of a streaming replica of ``primary``, or
        ``None``. It must use the primary's dialect and driver, one of
        :data:`LAG_QUERIES` (``ValueError`` otherwise).
    :param max_lag: the most seconds the replica may lag and still serve
        (kept as ``max_lag``).
    :param clock: ``clock()`` -> seconds, a monotonic clock (tests give
        theirs).
    :param check_every: seconds a verdict is kept.
    :param lag_query: ``lag(connection)``, as the values of
        :data:`LAG_QUERIES`; default: the one of the replica's dialect.

    Safe to share between threads: one thread checks the replica when the
    verdict is due; the others keep the last verdict meanwhile (only the
    very first reads wait for a check).
    """

    def __init__(self, primary, replica=None, max_lag=30.0,
                 clock=time.monotonic, check_every=CHECK_EVERY,
                 lag_query=None):
        if replica is not None:
            dialect, driver = replica.dialect.name, replica.dialect.driver
            if (dialect, driver) != (primary.dialect.name,
                                     primary.dialect.driver):
                raise ValueError(
                    f'the replica ({dialect}+{driver}) must be reached as '
                    f'its primary is ({primary.dialect.name}+'
                    f'{primary.dialect.driver})')
            if lag_query is None:
                if dialect not in LAG_QUERIES:
                    raise ValueError(f'{dialect} has no replica whose lag '
                                     f'the service can read')
                lag_query = LAG_QUERIES[dialect]
        self.primary = primary
        self.replica = replica
        self.max_lag = max_lag
        self._clock = clock
        self._check_every = check_every
        self._lag_query = lag_query
        self._verdict = None
        self._checking = threading.Lock()

    def engine_for_read(self):
        """The engine that serves a read now: the replica when it is up
        and lags at most ``max_lag`` seconds (as of a check at most
        ``check_every`` seconds old), else the primary. Never raises."""
        if self.replica is None:
            return self.primary
        verdict = self._verdict
        if verdict is None or self._clock() >= verdict.until:
            # Blocking only when there is no verdict yet to fall back on.
            if self._checking.acquire(blocking=verdict is None):
                try:
                    verdict = self._verdict
                    if verdict is None or self._clock() >= verdict.until:
                        verdict = self._check()
                finally:
                    self._checking.release()
        return verdict.engine

    def connect(self):
        """A new connection (``sqlalchemy.engine.Connection``) of
        :meth:`engine_for_read`; of the primary if the replica refuses it
        (the replica is then bypassed, with a warning, until its next
        check). Errors of connecting to the primary are raised."""
        engine = self.engine_for_read()
        if engine is self.primary:
            return engine.connect()
        try:
            return engine.connect()
        except sa_exc.SQLAlchemyError as exc:
            self._decide(self.primary, 'down', f'it is down ({exc})')
            return self.primary.connect()

    def _check(self):
        """Ask the replica its lag; return the new verdict."""
        try:
            with self.replica.connect() as connection:
                lag = self._lag_query(connection)
        except sa_exc.SQLAlchemyError as exc:
            if db.is_unavailable(exc):
                return self._decide(self.primary, 'down',
                                    f'it is down ({exc})')
            return self._decide(self.primary, 'unknown',
                                f'its lag cannot be read ({exc})')
        if lag is None:
            return self._decide(self.primary, 'unknown',
                                'it cannot tell its lag (replication '
                                'stopped, or nothing replayed yet)')
        if lag > self.max_lag:
            return self._decide(
                self.primary, 'lagging',
                f'it lags {lag:.1f} s (more than [api] max_replica_lag, '
                f'{self.max_lag:g} s)')
        return self._decide(self.replica, 'replica', f'lag {lag:.1f} s')

    def _decide(self, engine, state, why):
        """Keep ``engine`` for ``check_every`` seconds; log a change of
        ``state``."""
        previous = self._verdict
        verdict = self._verdict = _Verdict(
            engine, state, self._clock() + self._check_every)
        if previous is None or previous.state != state:
            if engine is self.primary:
                LOG.warning('Reads of %s go to the primary: its replica '
                            '%s is bypassed, %s',
                            self.primary.url.render_as_string(),
                            self.replica.url.render_as_string(), why)
            elif previous is not None:
                LOG.info('Reads of %s go to its replica %s again (%s)',
                         self.primary.url.render_as_string(),
                         self.replica.url.render_as_string(), why)
        return verdict


def for_storage(conf, primary, clock=time.monotonic):
    """The :class:`ReadRouter` of the rated data of ``conf`` kept in
    ``primary`` (the storage's engine).

    The replica is ``[storage_sqlalchemy] slave_connection``, else, when
    the rated data is in ``[database]`` (``[storage_sqlalchemy]
    connection`` is not set), ``[database] slave_connection``; its engine
    is the one the process shares (:func:`cloudkitty.db.get_engine`). The
    lag allowed is ``[api] max_replica_lag``; ``clock`` as for
    :class:`ReadRouter`.
    """
    options = conf.storage_sqlalchemy
    url = options.slave_connection
    if url is None and options.connection is None:
        url = conf.database.slave_connection
    replica = db.get_engine(conf, url) if url else None
    return ReadRouter(primary, replica, conf.api.max_replica_lag, clock)
