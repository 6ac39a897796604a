"""The ``sqlalchemy`` storage backend: SQLite, PostgreSQL, MariaDB.

Every filter, grouping, sort and page is computed by the database. Points
are written in bulk (``COPY ... FROM STDIN`` streamed on PostgreSQL,
multi-row ``INSERT`` elsewhere), each write keeping the per-batch and
daily sums in step, in its own transaction. The tables are described in
:mod:`.models`; the writes are :mod:`.writes`, the reads :mod:`.reads`,
what differs between the databases :mod:`.dialects`, the time partitions
of PostgreSQL :mod:`.partitions` and the upkeep (partitions ahead,
retention, the days summed by label) :mod:`.maintenance`.
"""

import logging

import sqlalchemy as sa

from cloudkitty import db
from cloudkitty.db import migration
from cloudkitty.db import replica
from cloudkitty.storage import v2
from cloudkitty.storage.v2.sqlalchemy import dialects
from cloudkitty.storage.v2.sqlalchemy import maintenance
from cloudkitty.storage.v2.sqlalchemy import models
from cloudkitty.storage.v2.sqlalchemy import reads
from cloudkitty.storage.v2.sqlalchemy import writes

_POINTS = models.RatedPoint.__table__
_BATCHES = models.RatedBatch.__table__
_TOTALS = models.RatedTotal.__table__
# Tries of a write transaction that the database aborts to break a deadlock.
_WRITE_ATTEMPTS = 3
# SQLSTATEs (PostgreSQL) and error numbers (MariaDB) worth a new attempt.
_DEADLOCK_SQLSTATES = ('40P01', '40001')
_DEADLOCK_ERRNOS = (1213, 1205)
LOG = logging.getLogger(__name__)


def _is_deadlock(exc):
    orig = exc.orig
    if getattr(orig, 'sqlstate', None) in _DEADLOCK_SQLSTATES:
        return True
    args = getattr(orig, 'args', ())
    return bool(args) and args[0] in _DEADLOCK_ERRNOS


def _same_url(engine, url):
    """Whether ``engine`` is connected to the database of ``url`` (as
    :func:`cloudkitty.db.normalized_url` makes it)."""
    return (engine.url.render_as_string(hide_password=False)
            == db.normalized_url(url).render_as_string(hide_password=False))


class SQLAlchemyStorage(v2.BaseStorage):
    """Rated data in an SQL database reached through SQLAlchemy.

    :param conf: the service's ``ConfigOpts``.
    :param engine: the process's engine (of ``[database] connection``),
        handed in by the service that builds the storage. The rated data
        is kept there unless ``[storage_sqlalchemy] connection`` names
        another database, whose engine the process shares
        (:func:`cloudkitty.db.get_engine`); so it is without ``engine``.
    :param replica_reads: whether :meth:`retrieve` and :meth:`total` read
        from the replica of :func:`cloudkitty.db.replica.for_storage` while
        it keeps up (the API's reads); otherwise every read is on the
        primary.
    :raises StorageError: on a database or driver the backend cannot use
        (PostgreSQL needs psycopg 3).

    :meth:`init` runs the service's migrations, which create the tables
    (``rated_points``, ``rated_labels``, ``rated_batches``,
    ``rated_totals``, ``rated_daily_totals`` and ``rated_label_days``).
    """

    def __init__(self, conf, engine=None, replica_reads=False):
        super().__init__(conf)
        apart = conf.storage_sqlalchemy.connection
        if engine is None or apart and not _same_url(engine, apart):
            url = sa.engine.make_url(apart or conf.database.connection)
            dialects.check_url(url)
            engine = db.get_engine(conf, url)
        self.engine = engine
        router = replica.for_storage(conf, engine) if replica_reads else None
        self._dialect = dialects.of(engine, router)
        self._writer = writes.Writer(self._dialect, self.scope_key)
        self._reader = reads.Reader(self._dialect)

    def init(self):
        """Run the migrations (every table of the service) on the engine."""
        migration.upgrade(self.engine)

    def maintain(self, now):
        """Create the time partitions ahead of ``now``, delete what is
        past ``[storage] retention`` and sum the days before today by
        label: see :func:`.maintenance.maintain`, whose
        :class:`~.maintenance.Upkeep` is returned."""
        return maintenance.maintain(self.engine, self._writer, self.conf,
                                    now)

    # -- writes -------------------------------------------------------------

    def _push(self, frames, scope_id):
        self._write(lambda conn: self._writer.insert(
            conn, frames, [scope_id] * len(frames)))

    def _replace_many(self, pairs):
        windows = {}  # (begin, end) -> scopes
        for frame, scope_id in pairs:
            windows.setdefault((frame.start, frame.end), []).append(scope_id)
        stored = [(frame, scope_id) for frame, scope_id in pairs
                  if len(frame)]

        def replace(conn):
            for (begin, end), scopes in windows.items():
                self._writer.delete_batches(conn, v2.Query(
                    begin=begin, end=end, scopes=tuple(scopes)))
            return self._writer.insert(conn, *zip(*stored)) if stored \
                else None
        self._write(replace)

    def _write(self, work):
        """Run ``work(conn)`` in a transaction, again if the database chose
        it as a deadlock victim; once committed, remember the labels of the
        :class:`~.writes.Stored` it returns (or ``None``)."""
        for attempt in range(_WRITE_ATTEMPTS):
            try:
                with self._translate_errors(), self.engine.begin() as conn:
                    stored = work(conn)
                break
            except sa.exc.DBAPIError as exc:
                if attempt + 1 == _WRITE_ATTEMPTS or not _is_deadlock(exc):
                    raise
                LOG.info('Storage write chosen as deadlock victim, retrying: '
                         '%s', exc.orig)
        self._writer.remember(stored)

    def _translate_errors(self):
        return _ErrorTranslator(self.engine.dialect.loaded_dbapi.DataError)

    def _delete(self, query):
        writer = self._writer

        def delete(conn):
            if query.types is None and not query.labels:
                writer.delete_batches(conn, query)
                return None
            conn.execute(sa.delete(_POINTS).where(
                *self._reader.conditions(query)))
            # Sum again what is left of the types touched, then drop the
            # batches this emptied.
            batch_ids = conn.execute(sa.select(_BATCHES.c.id).where(
                *reads.batch_conditions(query))).scalars().all()
            for chunk in dialects.chunks(batch_ids):
                stale = [_TOTALS.c.batch_id.in_(chunk)]
                if query.types is not None:
                    stale.append(_TOTALS.c.type.in_(query.types))
                writer.drop_totals(conn, stale)
            writer.insert_totals(conn, batch_ids, query.types)
            emptied = reads.batch_conditions(query) + [~sa.exists().where(
                _POINTS.c.batch_id == _BATCHES.c.id)]
            conn.execute(sa.delete(_BATCHES).where(*emptied))
            return None
        self._write(delete)

    # -- reads --------------------------------------------------------------

    def _retrieve(self, query, offset, limit):
        return self._reader.retrieve(query, offset, limit)

    def _total(self, query, keys, fields, offset, limit):
        return self._reader.total(query, keys, fields, offset, limit)


class _ErrorTranslator:
    """Turn the database's refusal of a value into :class:`InvalidData`."""

    def __init__(self, dbapi_data_error):
        self._errors = (sa.exc.DataError, dbapi_data_error, ValueError)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, _tb):
        if exc is not None and isinstance(exc, self._errors) and not (
                isinstance(exc, v2.StorageError)):
            if isinstance(exc, sa.exc.DataError) or not isinstance(
                    exc, ValueError):
                # The driver's words (and the statement) are for the log.
                LOG.info('Points refused by the database: %s', exc)
                raise v2.InvalidData(
                    'cannot store these points: a value is too long, too '
                    'large or not valid for the database') from exc
            raise v2.InvalidData(f'cannot store these points: {exc}') from exc
        return False
