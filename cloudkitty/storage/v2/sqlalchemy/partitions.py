"""Time partitions of the rated data on PostgreSQL.

Migration 0009 makes ``rated_batches``, ``rated_points`` and
``rated_totals`` tables partitioned by range of ``period_begin``, and
``rated_daily_totals`` by range of ``day``; migration 0010 makes
``rated_label_days`` partitioned by ``day`` as well. Each interval of
``[storage_sqlalchemy] partition_interval`` (a UTC day, ISO week, month or
year) gets one partition of each table, named after the table and the
interval's first day (``rated_points_p20240301``), with the same bounds in
the five tables: the daily sums of a partition's totals and points are in
the daily partitions of the same interval, so that a whole interval can be
dropped at once and the sums stay right. A ``DEFAULT`` partition (``<table>_default``)
takes the rows of an interval that has no partition yet, so that no write
fails; creating the interval's partition moves them out of it.

:class:`Partitions` creates the partitions ahead of time
(:meth:`~Partitions.create_ahead`, called by the storage's ``maintain``),
drops the partitions wholly older than a date
(:meth:`~Partitions.drop_before`), and splits what the ``DEFAULT``
partition holds into partitions of their own
(:meth:`~Partitions.split_default`): after migration 0009, the rows of a
database that was not partitioned are all in its ``DEFAULT`` partition,
the former table, until ``cloudkitty-storage-partition`` splits them.

Every change runs in its own transaction under one advisory lock, and
reads the catalog once it holds it: several processors (and the command)
may run it at the same time. A row is moved by one statement that deletes
it from the ``DEFAULT`` partition and inserts it in the new one, in the
transaction that attaches the new partition: a transaction that is
interrupted leaves the row where it was, never in both or in neither.
"""

import contextlib
import datetime
import logging
import re

from cloudkitty import timeutils

LOG = logging.getLogger(__name__)

#: ``(table, partition key)`` of the partitioned tables, in the order their
#: partitions are created and dropped.
TABLES = (('rated_batches', 'period_begin'), ('rated_points', 'period_begin'),
          ('rated_totals', 'period_begin'), ('rated_daily_totals', 'day'),
          ('rated_label_days', 'day'))
#: The lengths of a partition that ``partition_interval`` may name.
INTERVALS = ('day', 'week', 'month', 'year')
# Key of the advisory lock of the changes to the partitions (any constant
# of the service's own: "ckpart" in ASCII).
_LOCK_KEY = 0x636b70617274
# Longest wait for a table lock: a change that would wait longer behind a
# long read gives up, and is tried again at the next maintenance.
_LOCK_TIMEOUT = '10s'
_BOUNDS = re.compile(r"^FOR VALUES FROM \('([^']+)'\) TO \('([^']+)'\)$")


def floor(moment, interval):
    """The start (naive UTC) of the ``interval`` holding ``moment`` (naive
    UTC, or aware)."""
    day = datetime.datetime.combine(timeutils.to_db(moment).date(),
                                    datetime.time())
    if interval == 'day':
        return day
    if interval == 'week':  # ISO weeks, as PostgreSQL's date_trunc
        return day - datetime.timedelta(days=day.weekday())
    if interval == 'month':
        return day.replace(day=1)
    if interval == 'year':
        return day.replace(month=1, day=1)
    raise ValueError(f'unknown partition interval {interval!r}')


def following(start, interval):
    """The start of the ``interval`` after the one starting at ``start``."""
    if interval == 'day':
        return start + datetime.timedelta(days=1)
    if interval == 'week':
        return start + datetime.timedelta(days=7)
    if interval == 'month':
        return timeutils.next_month(start)
    if interval == 'year':
        return start.replace(year=start.year + 1)
    raise ValueError(f'unknown partition interval {interval!r}')


def _literal(table_key, bound):
    """SQL literal of ``bound`` for a partition key (DDL takes no
    parameters; the bounds are datetimes of ours)."""
    if table_key == 'day':
        return f"'{bound.date().isoformat()}'"
    return f"'{bound.isoformat(sep=' ')}'"


def _parse(text):
    return datetime.datetime.fromisoformat(text)


def is_partitioned(conn):
    """Whether the rated data of ``conn``'s database is partitioned
    (always false but on PostgreSQL)."""
    if conn.dialect.name != 'postgresql':
        return False
    return conn.exec_driver_sql(
        "SELECT EXISTS (SELECT FROM pg_partitioned_table WHERE partrelid = "
        "to_regclass('rated_points'))").scalar()


def names(conn):
    """The names of the partitions of the rated data (none but on
    PostgreSQL, partitioned)."""
    if not is_partitioned(conn):
        return set()
    return {name for table, _ in TABLES for name in conn.exec_driver_sql(
        'SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = '
        'i.inhrelid WHERE i.inhparent = %(table)s::regclass',
        {'table': table}).scalars()}


def partitions(conn, table):
    """``(default, [(name, lower, upper)])`` of ``table``: the name of its
    ``DEFAULT`` partition (``None``: none) and its other partitions, by
    lower bound (naive UTC datetimes)."""
    rows = conn.exec_driver_sql(
        'SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM '
        'pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE '
        'i.inhparent = %(table)s::regclass', {'table': table}).all()
    default, ranges = None, []
    for name, bound in rows:
        if bound == 'DEFAULT':
            default = name
            continue
        match = _BOUNDS.match(bound)
        if match is None:  # MINVALUE/MAXVALUE: not made here, left alone
            LOG.warning('Partition %s of %s has bounds of another kind, '
                        'left alone: %s', name, table, bound)
            continue
        ranges.append((name, _parse(match[1]), _parse(match[2])))
    return default, sorted(ranges, key=lambda item: item[1])


def _columns(conn, table):
    return conn.exec_driver_sql(
        'SELECT attname FROM pg_attribute WHERE attrelid = '
        '%(table)s::regclass AND attnum > 0 AND NOT attisdropped '
        'ORDER BY attnum', {'table': table}).scalars().all()


class Partitions:
    """The partitions of the rated data of one PostgreSQL database.

    :param engine: the storage's engine (PostgreSQL).
    :param interval: one of :data:`INTERVALS`, the length of the
        partitions it creates.
    :param ahead: how many intervals after the current one
        :meth:`create_ahead` makes sure have their partitions.
    """

    def __init__(self, engine, interval='month', ahead=2):
        if interval not in INTERVALS:
            raise ValueError(f'unknown partition interval {interval!r}')
        self.engine = engine
        self.interval = interval
        self.ahead = ahead

    @contextlib.contextmanager
    def _locked(self):
        """A transaction that first takes the partitions' advisory lock,
        and waits at most :data:`_LOCK_TIMEOUT` for a table lock."""
        with self.engine.begin() as conn:
            conn.exec_driver_sql(
                f"SET LOCAL lock_timeout = '{_LOCK_TIMEOUT}'")
            conn.exec_driver_sql('SELECT pg_advisory_xact_lock(%(key)s)',
                                 {'key': _LOCK_KEY})
            yield conn

    def create_ahead(self, now):
        """Create the partitions of the interval of ``now`` and of the
        :attr:`ahead` following ones that have none; return the names of
        the partitions created."""
        created = []
        start = floor(now, self.interval)
        for _ in range(self.ahead + 1):
            end = following(start, self.interval)
            created.extend(self.create(start, end))
            start = end
        return created

    def create(self, lower, upper):
        """Give ``[lower, upper)`` a partition in each table where no
        partition overlaps it, moving its rows out of the ``DEFAULT``
        partition (one transaction); return the names created."""
        created = []
        with self._locked() as conn:
            for table, key in TABLES:
                default, ranges = partitions(conn, table)
                if any(low < upper and lower < high
                       for _, low, high in ranges):
                    continue
                name = f'{table}_p{lower:%Y%m%d}'
                moved = self._attach(conn, table, key, default, name,
                                     lower, upper)
                LOG.info('Created partition %s of %s for [%s, %s) (%d rows '
                         'moved from %s)', name, table, lower, upper,
                         moved, default)
                created.append(name)
        return created

    @staticmethod
    def _attach(conn, table, key, default, name, lower, upper):
        """Create ``name`` as ``table``'s partition of ``[lower, upper)``
        with the rows ``default`` holds there; return how many."""
        conn.exec_driver_sql(
            f'CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS)')
        moved = 0
        if default is not None:
            columns = ', '.join(_columns(conn, table))
            moved = conn.exec_driver_sql(
                f'WITH moved AS (DELETE FROM {default} WHERE {key} >= '
                f'%(lower)s AND {key} < %(upper)s RETURNING {columns}) '
                f'INSERT INTO {name} ({columns}) SELECT {columns} FROM '
                f'moved', {'lower': lower, 'upper': upper}).rowcount
        conn.exec_driver_sql(
            f'ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES FROM '
            f'({_literal(key, lower)}) TO ({_literal(key, upper)})')
        return moved

    def drop_before(self, cutoff):
        """Detach and drop the partitions whose every row is older than
        ``cutoff`` (their upper bound is at or before it), in every table
        at once (one transaction); return their names."""
        cutoff = timeutils.to_db(cutoff)
        dropped = []
        with self._locked() as conn:
            for table, _ in TABLES:
                for name, lower, upper in partitions(conn, table)[1]:
                    if upper > cutoff:
                        continue
                    conn.exec_driver_sql(
                        f'ALTER TABLE {table} DETACH PARTITION {name}')
                    conn.exec_driver_sql(f'DROP TABLE {name}')
                    LOG.info('Dropped partition %s of %s: [%s, %s) is past '
                             'the retention', name, table, lower, upper)
                    dropped.append(name)
        return dropped

    def split_default(self, report=None):
        """Move the rows of the ``DEFAULT`` partitions into partitions of
        their intervals, one interval at a time (one transaction each);
        then replace a ``DEFAULT`` partition that is a former table (of
        migration 0009) with a new one. Return the names created.

        Interrupted, it leaves every row in one partition, and run again
        it goes on where it stopped. ``report(message)`` is told of each
        step.
        """
        report = report or LOG.info
        with self.engine.connect() as conn:
            starts = set()
            for table, key in TABLES:
                default = partitions(conn, table)[0]
                if default is not None:
                    starts.update(conn.exec_driver_sql(
                        f'SELECT DISTINCT date_trunc(%(interval)s, '
                        f'CAST({key} AS timestamp)) '
                        f'FROM {default}',
                        {'interval': self.interval}).scalars())
        created = []
        for start in sorted(starts):
            names = self.create(start, following(start, self.interval))
            report(f'[{start:%Y-%m-%d}, '
                   f'{following(start, self.interval):%Y-%m-%d}): '
                   f'{", ".join(names) or "partitions existed already"}')
            created.extend(names)
        for table, _ in TABLES:
            self._renew_default(table, report)
        return created

    def _renew_default(self, table, report):
        """Replace the ``DEFAULT`` partition of ``table`` by a new
        ``<table>_default`` unless it is one already; rows that reached
        the former one meanwhile are routed again."""
        with self._locked() as conn:
            default = partitions(conn, table)[0]
            fresh = f'{table}_default'
            if default == fresh:
                return
            if default is not None:
                conn.exec_driver_sql(
                    f'ALTER TABLE {table} DETACH PARTITION {default}')
            conn.exec_driver_sql(
                f'CREATE TABLE {fresh} PARTITION OF {table} DEFAULT')
            if default is not None:
                columns = ', '.join(_columns(conn, table))
                conn.exec_driver_sql(
                    f'INSERT INTO {table} ({columns}) SELECT {columns} FROM '
                    f'{default}')
                conn.exec_driver_sql(f'DROP TABLE {default}')
            report(f'{table}: DEFAULT partition {fresh} (was {default})')
