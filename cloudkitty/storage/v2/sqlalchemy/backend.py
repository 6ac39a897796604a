"""The ``sqlalchemy`` storage backend: SQLite, PostgreSQL, MariaDB.

Every filter, grouping, sort and page is computed by the database. Points
are written in bulk: ``COPY ... FROM STDIN`` streamed on
PostgreSQL, multi-row ``INSERT`` (DB-API ``executemany``) elsewhere; each
write keeps the per-batch sums of ``rated_totals`` in step, in its own
transaction. The tables are described in :mod:`.models`.
"""

import contextlib
import datetime
import decimal
import hashlib
import json
import logging
import operator
import queue
import threading

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite

from cloudkitty import dataframe
from cloudkitty import db
from cloudkitty.db import migration
from cloudkitty.storage import v2
from cloudkitty.storage.v2.sqlalchemy import models

_UTC = datetime.timezone.utc
_POINTS = models.RatedPoint.__table__
_LABELS = models.RatedLabel.__table__
_BATCHES = models.RatedBatch.__table__
_TOTALS = models.RatedTotal.__table__
_DAILY = models.RatedDailyTotal.__table__
_DAY = datetime.timedelta(days=1)
# In the order the bulk writers send them: per-run values first.
_POINT_COLUMNS = ('period_begin', 'period_end', 'scope_id', 'type',
                  'batch_id', 'seq', 'label_id', 'qty', 'price')
_TOTAL_COLUMNS = ('batch_id', 'type', 'period_begin', 'period_end',
                  'scope_id', 'qty', 'price')
# Rows per executemany() call and ids per IN list: bounded statements and
# memory whatever the size of a push.
_CHUNK = 5000
# Label ids known to be stored; beyond this many the cache starts over.
_KNOWN_LABELS_MAX = 1_000_000
# New labels a PostgreSQL push gathers before handing them to a second
# connection.
_LABEL_SPILL = 10000
# Tries of a write transaction that the database aborts to break a deadlock.
_WRITE_ATTEMPTS = 3
# SQLSTATEs (PostgreSQL) and error numbers (MariaDB) worth a new attempt.
_DEADLOCK_SQLSTATES = ('40P01', '40001')
_DEADLOCK_ERRNOS = (1213, 1205)
# PostgreSQL work_mem of the grouping queries.
_WORK_MEM = '32MB'
# MariaDB in-memory temporary table size of the same queries, in bytes.
_MARIADB_TMP_TABLE_SIZE = 256 * 1024 * 1024
LOG = logging.getLogger(__name__)


class _SQLiteDecimalSum:
    """``ck_decimal_sum``: exact SUM over the decimal text SQLite stores.

    Values are summed a block at a time by ``sum()`` in a wide decimal
    context: per value, only an append runs in Python.
    """

    _BLOCK = 4096

    def __init__(self):
        self.values = []
        self.total = None

    def step(self, value):
        if value is not None:
            self.values.append(value)
            if len(self.values) == self._BLOCK:
                self._fold()

    def _fold(self):
        with decimal.localcontext(v2.DECIMAL_CONTEXT):
            block = sum(map(decimal.Decimal, map(str, self.values)))
            self.total = block if self.total is None else self.total + block
        self.values.clear()

    def finalize(self):
        if self.values:
            self._fold()
        return None if self.total is None else str(self.total)


def _sqlite_decimal_add(augend, addend):
    """``ck_decimal_add``: exact sum of two of SQLite's decimal texts."""
    with decimal.localcontext(v2.DECIMAL_CONTEXT):
        return str(decimal.Decimal(str(augend)) + decimal.Decimal(str(addend)))


def _sqlite_functions(dbapi_connection):
    dbapi_connection.create_aggregate('ck_decimal_sum', 1, _SQLiteDecimalSum)
    dbapi_connection.create_function('ck_decimal_add', 2, _sqlite_decimal_add,
                                     deterministic=True)


def _is_deadlock(exc):
    orig = exc.orig
    if getattr(orig, 'sqlstate', None) in _DEADLOCK_SQLSTATES:
        return True
    args = getattr(orig, 'args', ())
    return bool(args) and args[0] in _DEADLOCK_ERRNOS


_QUANTUM = decimal.Decimal(1).scaleb(-models.SCALE)
_QTY = operator.itemgetter(1)    # of a DataPoint
_PRICE = operator.itemgetter(2)


def _stored(value):
    """``value`` as a NUMERIC column of :data:`~.models.SCALE` decimals
    stores it: rounded half away from zero (as PostgreSQL and MariaDB
    round, and :class:`~.models.SQLiteDecimal`)."""
    if value.as_tuple().exponent >= -models.SCALE:
        return value
    return value.quantize(_QUANTUM, decimal.ROUND_HALF_UP,
                          context=v2.DECIMAL_CONTEXT)


def _naive_utc(value):
    return value.astimezone(_UTC).replace(tzinfo=None)


def _aware(value):
    return value.replace(tzinfo=_UTC)


def _chunks(items, size=_CHUNK):
    items = list(items)
    for start in range(0, len(items), size):
        yield items[start:start + size]


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(',', ':'))


def _json(value):
    """Canonical JSON: sorted keys, no spaces (Decimals as numbers)."""
    try:
        return _ENCODER.encode(value)
    except TypeError:
        return dataframe.dumps(value, sort_keys=True, separators=(',', ':'))


class _Label(tuple):
    """``(unit, description, groupby JSON, metadata JSON)`` of a label."""

    __slots__ = ()

    @classmethod
    def of(cls, unit, description, groupby, metadata):
        return cls((unit, description, _json(dict(groupby)),
                    _json(dict(metadata))))

    @property
    def canonical(self):
        """The text hashed into the label id: JSON of the four values."""
        return f'{_json(self[:2])[:-1]},{self[2]},{self[3]}]'


# Labels are read as their JSON text and decoded here, numbers as Decimals:
# a number comes back with the digits it was pushed with (1.10 stays 1.10,
# 12345678901234567890.5 keeps every digit), where a float would round it;
# booleans, nulls, strings, lists and objects keep their JSON types.
# PostgreSQL's jsonb keeps a number's value and scale but writes it in
# positional notation (1E+2 comes back as 100).
_LABEL_DECODER = json.JSONDecoder(parse_float=decimal.Decimal)


def _label_text(column):
    """``column`` (groupby or metadata) selected as its JSON text."""
    return sa.cast(column, sa.Text).label(column.name)


def _decode_labels(text):
    return {} if text is None else _LABEL_DECODER.decode(text)


def _same_json(first, second):
    """Whether two decoded JSON values are the same: of the same JSON
    types, numbers equal in value (``1.10`` and ``1.1``, ``100`` and
    ``1E+2``, however a database writes them back)."""
    if isinstance(first, bool) or isinstance(second, bool):
        return first is second
    if isinstance(first, (int, decimal.Decimal)):
        return isinstance(second, (int, decimal.Decimal)) and first == second
    if isinstance(first, dict):
        return isinstance(second, dict) and first.keys() == second.keys() \
            and all(_same_json(value, second[key])
                    for key, value in first.items())
    if isinstance(first, list):
        return isinstance(second, list) and len(first) == len(second) \
            and all(map(_same_json, first, second))
    return type(first) is type(second) and first == second


def _label_hash(canonical):
    digest = hashlib.blake2b(canonical.encode('utf-8'), digest_size=8)
    return int.from_bytes(digest.digest(), 'big', signed=True)


class SQLAlchemyStorage(v2.BaseStorage):
    """Rated data in an SQL database reached through SQLAlchemy.

    The URL is ``[storage_sqlalchemy] connection``, else ``[database]
    connection``, reached through the engine the process shares for it
    (:func:`cloudkitty.db.get_engine`). :meth:`init` runs the service's migrations, which create
    the tables (``rated_points``, ``rated_labels``, ``rated_batches``).
    """

    def __init__(self, conf):
        super().__init__(conf)
        url = sa.engine.make_url(conf.storage_sqlalchemy.connection
                                 or conf.database.connection)
        if url.get_backend_name() == 'postgresql' and (
                url.get_driver_name() != 'psycopg'):
            # COPY and binary array parameters are psycopg 3's. Checked on
            # the URL, before the engine imports a driver that may be absent.
            raise v2.StorageError(
                f'the sqlalchemy storage needs the psycopg (3) driver on '
                f'PostgreSQL, not {url.get_driver_name()}: use a '
                f'postgresql:// or postgresql+psycopg:// URL')
        self.engine = db.get_engine(conf, url)
        self._dialect = self.engine.dialect.name
        if self._dialect == 'sqlite':
            db.on_every_connection(self.engine, _sqlite_functions)
            self._sum = sa.func.ck_decimal_sum
        else:
            self._sum = sa.func.sum
        self._known_labels = set()

    def init(self):
        """Run the migrations (every table of the service) on the engine."""
        migration.upgrade(self.engine)

    # -- writes -------------------------------------------------------------

    def _push(self, frames, scope_id):
        self._write(lambda conn: self._insert(conn, frames, scope_id))

    def _replace(self, frame, scope_id):
        def replace(conn):
            self._delete_batches(conn, v2.Query(
                begin=frame.start, end=frame.end, scopes=(scope_id,)))
            return self._insert(conn, [frame], scope_id) if len(frame) else ()
        self._write(replace)

    def _write(self, work):
        """Run ``work(conn)`` in a transaction, again if the database chose
        it as a deadlock victim; remember the label ids it returns (once
        committed)."""
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
        self._remember(stored)

    def _remember(self, label_ids):
        # Only after the commit: a rolled back push stored no label.
        if len(self._known_labels) + len(label_ids) > _KNOWN_LABELS_MAX:
            self._known_labels = set()
        self._known_labels.update(label_ids)

    def _translate_errors(self):
        return _ErrorTranslator(self.engine.dialect.loaded_dbapi.DataError)

    def _insert(self, conn, frames, scope_id):
        """Insert the points of ``frames``; return the new label ids."""
        batches = self._insert_batches(conn, frames, scope_id)
        new_labels = {}
        totals = []
        if self._dialect != 'postgresql':
            self._insert_points(conn, self._point_runs(
                frames, batches, new_labels, totals))
            self._insert_labels(conn, new_labels)
            self._store_totals(conn, totals)
            return new_labels.keys()
        # Labels are a shared, append-only dictionary: those of a large push
        # are stored on a second connection while the points stream, each
        # chunk committed before the points are.
        spilled = []
        writer = None

        def runs():
            nonlocal writer
            for run in self._point_runs(frames, batches, new_labels, totals,
                                        as_text=True):
                yield run
                if len(new_labels) >= _LABEL_SPILL:
                    writer = writer or _LabelWriter(self)
                    writer.put(dict(new_labels))
                    spilled.extend(new_labels)
                    new_labels.clear()

        copied = False
        try:
            self._copy_points(conn, runs())
            copied = True
        finally:
            if writer is not None:
                # After a failed copy, its error is the one to raise.
                writer.close(raise_error=copied)
        self._insert_labels(conn, new_labels)
        self._store_totals(conn, totals)
        return spilled + list(new_labels)

    def _store_totals(self, conn, totals):
        """Insert the ``rated_totals`` rows of ``totals`` (tuples of
        :data:`_TOTAL_COLUMNS`, as :meth:`_point_runs` makes them) in bulk,
        and add them to the daily sums."""
        if not totals:
            return
        if self._dialect == 'postgresql':
            # One insert of arrays, sent in binary.
            conn.exec_driver_sql(
                f'INSERT INTO rated_totals ({", ".join(_TOTAL_COLUMNS)}) '
                f'SELECT * FROM unnest(%(batch_id)b::int8[], '
                f'%(type)b::text[], %(period_begin)b::timestamp[], '
                f'%(period_end)b::timestamp[], %(scope_id)b::text[], '
                f'%(qty)b::numeric[], %(price)b::numeric[])',
                dict(zip(_TOTAL_COLUMNS, map(list, zip(*totals)))))
        else:
            rows = totals
            if self._dialect == 'sqlite':
                # As _insert_points: the texts the column types store.
                dialect = self.engine.dialect
                date = _TOTALS.c.period_begin.type.dialect_impl(
                    dialect).bind_processor(dialect)
                text = _TOTALS.c.qty.type.dialect_impl(dialect).to_text
                rows = [(batch, type_, date(begin), date(end), scope,
                         text(qty), text(price))
                        for batch, type_, begin, end, scope, qty, price
                        in totals]
            mark = '?' if self.engine.dialect.paramstyle == 'qmark' else '%s'
            sql = (f'INSERT INTO rated_totals ({", ".join(_TOTAL_COLUMNS)}) '
                   f'VALUES ({", ".join([mark] * len(_TOTAL_COLUMNS))})')
            for chunk in _chunks(rows):
                conn.exec_driver_sql(sql, chunk)
        daily = {}
        with decimal.localcontext(v2.DECIMAL_CONTEXT):
            for _, type_, begin, _, scope, qty, price in totals:
                if scope is None:
                    continue
                key = (scope, type_, begin.date())
                day_qty, day_price, count = daily.get(key, (0, 0, 0))
                daily[key] = (day_qty + qty, day_price + price, count + 1)
        self._apply_daily(conn, [
            {'scope_id': scope, 'type': type_, 'day': day, 'qty': qty,
             'price': price, 'totals': count}
            for (scope, type_, day), (qty, price, count) in sorted(
                daily.items())], 1)

    def _insert_totals(self, conn, batch_ids, types=None):
        """Sum the stored points of ``batch_ids`` (of ``types``, ``None``:
        every type) into ``rated_totals``, in the database."""
        group = (_POINTS.c.batch_id, _POINTS.c.type, _POINTS.c.period_begin,
                 _POINTS.c.period_end, _POINTS.c.scope_id)
        if self._dialect == 'postgresql':
            # Hash the groups in memory rather than sort the points on disk.
            conn.exec_driver_sql(f"SET LOCAL work_mem = '{_WORK_MEM}'")
        for chunk in _chunks(batch_ids):
            conditions = [_POINTS.c.batch_id.in_(chunk)]
            if types is not None:
                conditions.append(_POINTS.c.type.in_(types))
            conn.execute(_TOTALS.insert().from_select(
                [column.name for column in group] + ['qty', 'price'],
                sa.select(*group, *(
                    self._sum(column, type_=column.type)
                    for column in (_POINTS.c.qty, _POINTS.c.price))
                ).where(*conditions).group_by(*group)))
            totals = [_TOTALS.c.batch_id.in_(chunk)]
            if types is not None:
                totals.append(_TOTALS.c.type.in_(types))
            self._add_daily(conn, totals, 1)

    def _drop_totals(self, conn, conditions):
        """Delete the ``rated_totals`` rows matching ``conditions``, and
        their sums from ``rated_daily_totals``."""
        self._add_daily(conn, conditions, -1)
        conn.execute(sa.delete(_TOTALS).where(*conditions))

    def _day(self, column):
        """The UTC day (a date) of the naive UTC timestamp ``column``."""
        if self._dialect == 'sqlite':
            return sa.func.date(column, type_=sa.Date)
        return sa.cast(column, sa.Date)

    def _add_daily(self, conn, conditions, sign):
        """Add (``sign`` 1) or subtract (-1) the ``rated_totals`` rows
        matching ``conditions`` to or from ``rated_daily_totals``.

        The sums are computed by the database; each day's row is updated
        by one atomic upsert (sorted: concurrent writers lock rows in the
        same order), and deleted once it adds up no row.
        """
        day = self._day(_TOTALS.c.period_begin).label('day')
        sums = conn.execute(sa.select(
            _TOTALS.c.scope_id, _TOTALS.c.type, day,
            *(self._sum(column, type_=column.type).label(column.name)
              for column in (_TOTALS.c.qty, _TOTALS.c.price)),
            sa.func.count().label('totals'),
        ).where(_TOTALS.c.scope_id.is_not(None), *conditions).group_by(
            _TOTALS.c.scope_id, _TOTALS.c.type, day).order_by(
            _TOTALS.c.scope_id, _TOTALS.c.type, day)).all()
        self._apply_daily(conn, [row._asdict() for row in sums], sign)

    def _apply_daily(self, conn, rows, sign):
        """Add (``sign`` 1) or subtract (-1) ``rows`` (dicts of the
        ``rated_daily_totals`` columns, sorted by key) to or from the
        stored daily sums, each by an atomic upsert (sorted: concurrent
        writers lock rows in the same order); a row that then adds up no
        ``rated_totals`` row is deleted."""
        if not rows:
            return
        if sign < 0:
            # copy_negate(): exact, where the context would round 48 digits.
            rows = [dict(row, qty=row['qty'].copy_negate(),
                         price=row['price'].copy_negate(),
                         totals=-row['totals']) for row in rows]
        for chunk in _chunks(rows):
            conn.execute(self._upsert_daily(), chunk)
        if sign < 0:
            keys = [(row['scope_id'], row['type'], row['day'])
                    for row in rows]
            for chunk in _chunks(keys):
                conn.execute(sa.delete(_DAILY).where(
                    _DAILY.c.totals <= 0, sa.tuple_(
                        _DAILY.c.scope_id, _DAILY.c.type,
                        _DAILY.c.day).in_(chunk)))

    def _upsert_daily(self):
        """INSERT of ``rated_daily_totals`` rows that adds to a stored
        row of the same key."""
        if self._dialect in ('mysql', 'mariadb'):
            insert = mysql.insert(_DAILY)
            return insert.on_duplicate_key_update({
                name: _DAILY.c[name] + insert.inserted[name]
                for name in ('qty', 'price', 'totals')})
        insert = (postgresql if self._dialect == 'postgresql'
                  else sqlite).insert(_DAILY)
        add = (sa.func.ck_decimal_add if self._dialect == 'sqlite'
               else (lambda a, b: a + b))
        return insert.on_conflict_do_update(
            index_elements=['scope_id', 'type', 'day'], set_={
                'qty': add(_DAILY.c.qty, insert.excluded.qty),
                'price': add(_DAILY.c.price, insert.excluded.price),
                'totals': _DAILY.c.totals + insert.excluded.totals})

    def _insert_batches(self, conn, frames, scope_id):
        """Create one batch per frame and scope; return, for each frame,
        ``{groupby scope value: (batch id, scope id)}`` (the key is
        ``None`` when ``scope_id`` is given)."""
        keys = []
        scope_key = self.scope_key
        for index, frame in enumerate(frames):
            if not len(frame):
                continue
            if scope_id is not None:
                keys.append((index, None, str(scope_id)))
                continue
            found = {}
            for _, points in frame.itertypes():
                found.update(dict.fromkeys(
                    [point.groupby.get(scope_key) for point in points]))
            keys.extend((index, value, None if value is None else str(value))
                        for value in found)
        rows = [{'scope_id': scope,
                 'period_begin': _naive_utc(frames[index].start),
                 'period_end': _naive_utc(frames[index].end)}
                for index, _, scope in keys]
        if not rows:
            ids = []
        elif self._dialect == 'postgresql':
            # One insert of arrays however many batches. Rows are inserted
            # in ORDER BY order and draw increasing ids from the sequence:
            # the sorted ids follow the rows (SQLAlchemy's insertmanyvalues
            # relies on the same).
            ids = sorted(conn.exec_driver_sql(
                'INSERT INTO rated_batches (scope_id, period_begin, '
                'period_end) SELECT scope_id, period_begin, period_end FROM '
                'unnest(%(scope_id)b::text[], %(period_begin)b::timestamp[], '
                '%(period_end)b::timestamp[]) WITH ORDINALITY AS new '
                '(scope_id, period_begin, period_end, n) ORDER BY n '
                'RETURNING id',
                {column: [row[column] for row in rows]
                 for column in rows[0]}).scalars())
        else:
            ids = conn.execute(
                sa.insert(_BATCHES).returning(_BATCHES.c.id,
                                              sort_by_parameter_order=True),
                rows).scalars().all()
        batches = [{} for _ in frames]
        for (index, value, scope), batch_id in zip(keys, ids):
            batches[index][value] = (batch_id, scope)
        return batches

    def _point_runs(self, frames, batches, new_labels, totals,
                    as_text=False):
        """Yield the points of ``frames`` as runs sharing everything but
        ``(seq, label id, qty, price)``: ``(period_begin, period_end,
        scope_id, type, batch_id, [(seq, label id, qty, price)])``, in push
        order; with ``as_text``, each point is its line of COPY text
        instead (the end of the line: the run's values come first). Fills
        ``new_labels`` with ``{label id: _Label}`` for the labels not known
        to be stored, and appends to ``totals`` each run's ``rated_totals``
        row (a tuple of :data:`_TOTAL_COLUMNS`): the sums of its values as
        the database stores them (rounded to :data:`~.models.SCALE`
        decimals).

        The inner loop runs once per point: it is written for speed (strings
        rather than tuples also spare the garbage collector; a value's
        rounding is looked into only when its text is long enough to need
        it; a frame of one scope is summed type by type at C speed).
        """
        label_ids = {}  # label contents -> id, for this push
        known = self._known_labels
        scope_key = self.scope_key
        next_seq = {}
        for frame, scopes in zip(frames, batches):
            if not scopes:
                continue
            begin, end = _naive_utc(frame.start), _naive_utc(frame.end)
            scope_of = dict(scopes.values())  # batch id -> scope id
            several = len(scopes) > 1
            if not several:
                batch, = scope_of
                seq = -1
            for type_, points in frame.itertypes():
                # batch -> (rows, quantities, prices); the values are kept
                # only for frames of several scopes.
                runs = {}
                rounded = False
                if not several:
                    rows = []
                    runs[batch] = rows, None, None
                for point in points:
                    unit, qty, price, groupby, metadata, description = point
                    if several:
                        batch = scopes[groupby.get(scope_key)][0]
                        seq = next_seq[batch] = next_seq.get(batch, -1) + 1
                        run = runs.get(batch)
                        if run is None:
                            run = runs[batch] = [], [], []
                        rows, qtys, prices = run
                    else:
                        seq += 1
                    contents = (unit, description, len(groupby), *groupby,
                                *groupby.values(), *metadata,
                                *metadata.values())
                    try:
                        label = label_ids[contents]
                    except KeyError:
                        label = label_ids[contents] = self._label_of(
                            point, known, new_labels, as_text)
                    except TypeError:  # unhashable label values
                        label = self._label_of(point, known, new_labels,
                                               as_text)
                    qty_text, price_text = f'{qty}', f'{price}'
                    # More than SCALE decimals takes more than 30 characters
                    # (or an exponent): round as the database will.
                    if len(qty_text) > 30 or 'E' in qty_text:
                        qty = _stored(qty)
                        qty_text = f'{qty}'
                        rounded = True
                    if len(price_text) > 30 or 'E' in price_text:
                        price = _stored(price)
                        price_text = f'{price}'
                        rounded = True
                    if several:
                        qtys.append(qty)
                        prices.append(price)
                    rows.append(f'{seq}\t{label}\t{qty_text}\t{price_text}\n'
                                if as_text else (seq, label, qty, price))
                for run_batch, (rows, qtys, prices) in runs.items():
                    scope = scope_of[run_batch]
                    if qtys is None:  # the type's points, all of them
                        qtys, prices = map(_QTY, points), map(_PRICE, points)
                        if rounded:
                            qtys, prices = map(_stored, qtys), map(
                                _stored, prices)
                    with decimal.localcontext(v2.DECIMAL_CONTEXT):
                        totals.append((run_batch, type_, begin, end, scope,
                                       sum(qtys), sum(prices)))
                    yield begin, end, scope, type_, run_batch, rows

    @staticmethod
    def _label_of(point, known, new_labels, as_text=False):
        """Return the label id of ``point`` (as text with ``as_text``),
        adding its labels to ``new_labels`` unless ``known``."""
        label = _Label.of(point.unit, point.description, point.groupby,
                          point.metadata)
        label_id = _label_hash(label.canonical)
        if label_id not in known:
            seen = new_labels.setdefault(label_id, label)
            if seen != label:
                raise v2.StorageError(
                    f'label hash collision: {seen.canonical} and '
                    f'{label.canonical}')
        return str(label_id) if as_text else label_id

    @staticmethod
    def _copy_points(conn, runs):
        # Text COPY formatted here: half the client CPU of binary
        # write_row(), and no slower for the server to parse.
        raw = conn.connection.driver_connection
        text = _CopyText()
        lines = []
        size = 0
        with raw.cursor() as cursor, cursor.copy(
                f'COPY rated_points ({", ".join(_POINT_COLUMNS)}) FROM STDIN'
        ) as copy:
            for begin, end, scope, type_, batch, rows in runs:
                prefix = (f'{text[begin]}\t{text[end]}\t{text[scope]}\t'
                          f'{text[type_]}\t{batch}\t')
                # Each row ends with a newline: joining on the prefix
                # starts every following row with it.
                lines.append(prefix + prefix.join(rows))
                size += len(rows)
                if size >= _CHUNK:
                    copy.write(''.join(lines))
                    lines.clear()
                    size = 0
            copy.write(''.join(lines))

    def _insert_points(self, conn, runs):
        marks = ', '.join(['?' if self.engine.dialect.paramstyle == 'qmark'
                           else '%s'] * len(_POINT_COLUMNS))
        sql = (f'INSERT INTO rated_points ({", ".join(_POINT_COLUMNS)}) '
               f'VALUES ({marks})')
        if self._dialect == 'sqlite':
            dialect = self.engine.dialect
            date = _POINTS.c.period_begin.type.dialect_impl(
                dialect).bind_processor(dialect)
            qty_text = _POINTS.c.qty.type.dialect_impl(dialect).to_text
            price_text = _POINTS.c.price.type.dialect_impl(dialect).to_text
        chunk = []
        for begin, end, scope, type_, batch, rows in runs:
            if self._dialect == 'sqlite':
                # pysqlite knows neither datetimes nor Decimals: store what
                # the column types would (SQLAlchemy's datetime text, exact
                # decimal text).
                begin, end = date(begin), date(end)
                rows = [(seq, label, qty_text(qty), price_text(price))
                        for seq, label, qty, price in rows]
            chunk += [(begin, end, scope, type_, batch, *row) for row in rows]
            if len(chunk) >= _CHUNK:
                conn.exec_driver_sql(sql, chunk)
                chunk = []
        if chunk:
            conn.exec_driver_sql(sql, chunk)

    def _insert_labels(self, conn, new_labels):
        """Store the labels of ``new_labels`` that are not stored yet, after
        checking that those stored under the same ids are the same."""
        if not new_labels:
            return
        # Sorted: concurrent pushes lock shared labels in the same order.
        label_ids = sorted(new_labels)
        if self._dialect == 'postgresql':
            # One statement whatever the number of labels (arrays sent in
            # binary: nothing to quote); what it did not insert was stored
            # already, and only that is read back and compared.
            columns = ('id', 'unit', 'description', 'groupby', 'metadata')
            inserted = conn.exec_driver_sql(
                'INSERT INTO rated_labels (id, unit, description, groupby, '
                'metadata) SELECT id, unit, description, groupby::jsonb, '
                'metadata::jsonb FROM unnest(%(id)b::int8[], %(unit)b::text[],'
                ' %(description)b::text[], %(groupby)b::text[], '
                '%(metadata)b::text[]) AS new (id, unit, description, '
                'groupby, metadata) ORDER BY id ON CONFLICT DO NOTHING '
                'RETURNING id',
                dict(zip(columns, map(list, zip(*(
                    (i, *new_labels[i]) for i in label_ids)))))
            ).scalars().all()
            if len(inserted) < len(label_ids):
                self._check_stored_labels(conn, new_labels, sorted(
                    set(label_ids).difference(inserted)))
            return
        stored = self._check_stored_labels(conn, new_labels, label_ids)
        rows = [(i, *new_labels[i]) for i in label_ids if i not in stored]
        if self._dialect == 'sqlite':
            sql = ('INSERT INTO rated_labels (id, unit, description, groupby, '
                   'metadata) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING')
        else:
            sql = ('INSERT INTO rated_labels (id, unit, description, groupby, '
                   'metadata) VALUES (%s, %s, %s, %s, %s) '
                   'ON DUPLICATE KEY UPDATE id = id')
        for chunk in _chunks(rows):
            conn.exec_driver_sql(sql, chunk)

    def _check_stored_labels(self, conn, new_labels, label_ids):
        """Return the ids among ``label_ids`` already stored; raise
        StorageError if one holds other labels than ``new_labels`` says."""
        if not label_ids:
            return set()
        select = sa.select(
            _LABELS.c.id, _LABELS.c.unit, _LABELS.c.description,
            _label_text(_LABELS.c.groupby), _label_text(_LABELS.c.metadata))
        if self._dialect == 'postgresql':
            rows = conn.execute(select.where(
                _LABELS.c.id == sa.any_(sa.bindparam(
                    'ids', label_ids, type_=postgresql.ARRAY(
                        sa.BigInteger)))))
        else:
            rows = (row for chunk in _chunks(label_ids) for row in
                    conn.execute(select.where(_LABELS.c.id.in_(chunk))))
        stored = set()
        for row in rows:
            new = new_labels[row.id]
            label = _Label((row.unit, row.description, row.groupby,
                            row.metadata))
            # Compared decoded: a database may write a number back in
            # another form (jsonb writes 1E+2 as 100).
            if label != new and not (
                    label[:2] == new[:2] and all(
                        _same_json(_decode_labels(stored_text),
                                   _decode_labels(new_text))
                        for stored_text, new_text in zip(label[2:],
                                                         new[2:]))):
                raise v2.StorageError(
                    f'label hash collision: stored {label.canonical}, new '
                    f'{new.canonical}')
            stored.add(row.id)
        return stored

    def _delete(self, query):
        def delete(conn):
            if query.types is None and not query.labels:
                self._delete_batches(conn, query)
                return ()
            conn.execute(sa.delete(_POINTS).where(*self._conditions(query)))
            # Sum again what is left of the types touched, then drop the
            # batches this emptied.
            batch_ids = conn.execute(sa.select(_BATCHES.c.id).where(
                *self._batch_conditions(query))).scalars().all()
            for chunk in _chunks(batch_ids):
                stale = [_TOTALS.c.batch_id.in_(chunk)]
                if query.types is not None:
                    stale.append(_TOTALS.c.type.in_(query.types))
                self._drop_totals(conn, stale)
            self._insert_totals(conn, batch_ids, query.types)
            emptied = self._batch_conditions(query) + [~sa.exists().where(
                _POINTS.c.batch_id == _BATCHES.c.id)]
            conn.execute(sa.delete(_BATCHES).where(*emptied))
            return ()
        self._write(delete)

    def _delete_batches(self, conn, query):
        """Delete whole batches: the scope and time of ``query`` only."""
        conditions = self._batch_conditions(query)
        if query.scopes is None:
            conn.execute(sa.delete(_POINTS).where(
                *self._batch_conditions(query, _POINTS)))
            self._drop_totals(conn, self._batch_conditions(query, _TOTALS))
            conn.execute(sa.delete(_BATCHES).where(*conditions))
            return
        # Ids first, then primary-key ranges: fast on every database
        # (MariaDB does not turn DELETE ... IN (SELECT) into a join).
        ids = conn.execute(sa.select(_BATCHES.c.id).where(
            *conditions)).scalars().all()
        for chunk in _chunks(ids):
            conn.execute(sa.delete(_POINTS).where(
                _POINTS.c.batch_id.in_(chunk)))
            self._drop_totals(conn, [_TOTALS.c.batch_id.in_(chunk)])
            conn.execute(sa.delete(_BATCHES).where(_BATCHES.c.id.in_(chunk)))

    # -- reads --------------------------------------------------------------

    @staticmethod
    def _batch_conditions(query, table=_BATCHES):
        """WHERE clauses on the window and scopes of ``query``; ``table``
        is ``rated_batches``, ``rated_points`` or ``rated_totals`` (all
        have the columns)."""
        conditions = []
        if query.begin is not None:
            conditions.append(table.c.period_begin >= _naive_utc(query.begin))
        if query.end is not None:
            conditions.append(table.c.period_begin < _naive_utc(query.end))
        if query.scopes is not None:
            conditions.append(table.c.scope_id.in_(query.scopes))
        return conditions

    def _label_value(self, column, key):
        """The text of label ``key`` in the JSON ``column`` (NULL if none)."""
        value = column[key].as_string()
        if self._dialect == 'sqlite':
            # json_extract() returns numbers as numbers: compare as text
            # like the other databases do.
            value = sa.cast(value, sa.String)
        return value

    def _bytewise(self, expression):
        """``expression`` compared and sorted by code point."""
        if self._dialect == 'postgresql':
            return sa.collate(expression, 'C')
        if self._dialect in ('mysql', 'mariadb'):
            return sa.collate(expression, 'utf8mb4_nopad_bin')
        return expression

    def _conditions(self, query):
        """WHERE clauses on ``rated_points`` selecting ``query``."""
        conditions = self._batch_conditions(query, _POINTS)
        if query.types is not None:
            conditions.append(_POINTS.c.type.in_(query.types))
        if query.scopes is not None:
            # The scopes again, through the batches' index: lets the
            # database read only the scope's primary-key ranges.
            conditions.append(_POINTS.c.batch_id.in_(
                sa.select(_BATCHES.c.id).where(
                    *self._batch_conditions(query))))
        if query.labels:
            conditions.append(_POINTS.c.label_id.in_(
                sa.select(_LABELS.c.id).where(*(
                    sa.func.coalesce(
                        self._label_value(_LABELS.c.groupby, key),
                        self._label_value(_LABELS.c.metadata, key)
                    ).in_(values)
                    for key, values in query.labels))))
        return conditions

    def _retrieve(self, query, offset, limit):
        # Count, then fetch the page: a window count over the page query
        # would make the database sort every matching point, where ORDER
        # BY ... LIMIT alone keeps only the best ``offset + limit``.
        conditions = self._conditions(query)
        order = (_POINTS.c.period_begin, _POINTS.c.period_end,
                 _POINTS.c.type, _POINTS.c.batch_id, _POINTS.c.seq)
        page = sa.select(
            *order, _POINTS.c.label_id, _POINTS.c.qty, _POINTS.c.price,
        ).where(*conditions).order_by(*order)
        if limit is not None:
            page = page.offset(offset).limit(limit)
        page = page.subquery('page')
        statement = sa.select(
            page, _LABELS.c.unit, _LABELS.c.description,
            _label_text(_LABELS.c.groupby), _label_text(_LABELS.c.metadata),
        ).select_from(page.outerjoin(
            _LABELS, _LABELS.c.id == page.c.label_id)).order_by(
            *(page.c[c.name] for c in order))
        with self._snapshot() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(
                _POINTS).where(*conditions)).scalar()
            rows = conn.execute(statement).all() if total > offset else []
        # Points of one resource share their label row: decoded once.
        labels = {}
        points = []
        for row in rows:
            groupby_metadata = labels.get(row.label_id)
            if groupby_metadata is None:
                groupby_metadata = labels[row.label_id] = (
                    _decode_labels(row.groupby),
                    _decode_labels(row.metadata))
            points.append((
                _aware(row.period_begin), _aware(row.period_end), row.type,
                dataframe.DataPoint(
                    row.unit, v2.normalize_decimal(row.qty),
                    v2.normalize_decimal(row.price), *groupby_metadata,
                    row.description)))
        return total, points

    @contextlib.contextmanager
    def _snapshot(self, **settings):
        """Yield a connection in a transaction whose reads see one state.

        On PostgreSQL, ``settings`` (parameter name: value, constants of
        this module, written into the statement) hold for the transaction
        only, set in one round trip with the planner's own.
        """
        with self.engine.connect() as conn:
            conn.execution_options(**{db.READ_ONLY: True})
            if self._dialect == 'postgresql':
                # Read committed takes a new snapshot per statement.
                conn.execution_options(isolation_level='REPEATABLE READ')
            with conn.begin():
                if self._dialect == 'postgresql':
                    # Plans made for each query's values: the generic plan
                    # of a statement psycopg has prepared (from its 5th
                    # run) is blind to them, and chose a count of the
                    # summary's groups twice as slow.
                    settings = {'plan_cache_mode': 'force_custom_plan',
                                **settings}
                    conn.exec_driver_sql('SELECT ' + ', '.join(
                        f"set_config('{name}', '{value}', true)"
                        for name, value in settings.items()))
                yield conn

    @contextlib.contextmanager
    def _aggregating(self, **settings):
        """A :meth:`_snapshot` with the memory that the grouping of a
        ``total`` query needs (``settings`` as there)."""
        # Ten thousand groups of decimal sums, or the partial sums by label
        # id, outgrow PostgreSQL's default 4 MB and would spill to disk.
        with self._snapshot(work_mem=_WORK_MEM, **settings) as conn:
            if self._dialect not in ('mysql', 'mariadb'):
                yield conn
                return
            # MariaDB groups in an in-memory table of fixed-width rows
            # (1 KB per VARCHAR(255) key); past 16 MB it moves to disk and
            # is several times slower.
            variables = ('max_heap_table_size', 'tmp_memory_table_size')
            conn.exec_driver_sql('SET ' + ', '.join(
                f'SESSION {v} = {_MARIADB_TMP_TABLE_SIZE}' for v in variables))
            try:
                yield conn
            finally:
                conn.exec_driver_sql('SET ' + ', '.join(
                    f'SESSION {v} = DEFAULT' for v in variables))

    def _total_conditions(self, query, table=_TOTALS):
        """WHERE clauses on ``rated_totals`` selecting ``query`` (which
        has no label filter)."""
        conditions = self._batch_conditions(query, table)
        if query.types is not None:
            conditions.append(table.c.type.in_(query.types))
        return conditions

    @staticmethod
    def _whole_days(query):
        """``(first, last)``: the UTC days wholly inside the window of
        ``query`` are ``[first, last)`` (``None``: unbounded)."""
        first = last = None
        if query.begin is not None:
            first = (query.begin - datetime.timedelta(microseconds=1)
                     ).astimezone(_UTC).date() + _DAY
        if query.end is not None:
            last = query.end.astimezone(_UTC).date()
        return first, last

    def _day_edges(self, query):
        """``(whole, edges)``: the bounds of the whole UTC days inside the
        window of ``query`` (``None``: unbounded), and the parts of the
        window outside them, as ``(begin, end)`` pairs."""
        first_day, last_day = self._whole_days(query)
        whole = [datetime.datetime.combine(day, datetime.time(), _UTC)
                 if day is not None else None
                 for day in (first_day, last_day)]
        edges = []
        if first_day is not None and query.begin < whole[0]:
            edges.append((query.begin, whole[0]))
        if last_day is not None and whole[1] < query.end:
            edges.append((whole[1], query.end))
        return whole, edges

    def _source(self, query, keys):
        """The table that holds the sums of ``query`` grouped by ``keys``:
        ``_POINTS``, ``_TOTALS`` or ``_DAILY`` (see :meth:`_sums`)."""
        kinds = {key.kind for key in keys}
        if query.labels or 'label' in kinds:
            return _POINTS
        first_day, last_day = self._whole_days(query)
        if 'time' in kinds or (None not in (first_day, last_day)
                               and first_day >= last_day):
            return _TOTALS
        return _DAILY

    def _sums(self, conn, query, source):
        """``(table, WHERE clauses)`` of the rows to sum for ``query`` from
        ``source`` (:meth:`_source`): the fewest that hold the points' sums.

        The points themselves when labels are filtered or grouped on; the
        per-batch sums when periods are grouped on; otherwise the whole UTC
        days of the window from ``rated_daily_totals``, and the rest, if
        any, from ``rated_totals``, in a union with the columns
        ``scope_id``, ``type``, ``qty`` and ``price``. The daily sums alone
        are read in key order from their primary key, so that the first
        page of groups by scope and type costs no sort of every group.
        """
        if source is _POINTS:
            return _POINTS, self._conditions(query)
        if source is _TOTALS:
            return _TOTALS, self._total_conditions(query)
        first_day, last_day = self._whole_days(query)
        columns = ('scope_id', 'type', 'qty', 'price')
        days = []
        if first_day is not None:
            days.append(_DAILY.c.day >= first_day)
        if last_day is not None:
            days.append(_DAILY.c.day < last_day)
        if query.scopes is not None:
            days.append(_DAILY.c.scope_id.in_(query.scopes))
        if query.types is not None:
            days.append(_DAILY.c.type.in_(query.types))
        parts = [sa.select(*(_DAILY.c[c] for c in columns)).where(*days)]

        def outside(begin, end, *more):
            within = v2.Query(begin, end, query.types, query.scopes)
            parts.append(sa.select(*(_TOTALS.c[c] for c in columns)).where(
                *self._total_conditions(within), *more))

        whole, edges = self._day_edges(query)
        for begin, end in edges:
            outside(begin, end)
        unscoped = [_TOTALS.c.scope_id.is_(None)]
        if query.scopes is None and conn.execute(sa.select(sa.exists().where(
                *unscoped, *self._batch_conditions(v2.Query(*whole),
                                                   _TOTALS)))).scalar():
            # Points stored without a scope have no daily sums.
            outside(*whole, *unscoped)
        if len(parts) == 1:
            return _DAILY, days
        return sa.union_all(*parts).subquery('sums'), []

    def _total(self, query, keys, fields, offset, limit):
        source = self._source(query, keys)
        settings = {}
        if source is _DAILY and not self._day_edges(query)[1] and [
                key.kind for key in keys] in (['scope'], ['scope', 'type']):
            # Groups on a prefix of the primary key of the daily sums alone:
            # counted along the index, which the planner, expecting far
            # fewer groups than there are, would trade for a slower hash of
            # every row.
            settings['enable_hashagg'] = 'off'
        with self._aggregating(**settings) as conn:
            return self._grouped_total(conn, query, keys, fields, offset,
                                       limit, source)

    def _grouped_total(self, conn, query, keys, fields, offset, limit,
                       source):
        """:meth:`_total` on the connection ``conn``."""
        label_keys = [key.name for key in keys if key.kind == 'label']
        table, conditions = self._sums(conn, query, source)
        facts = []  # columns grouped on, in key order
        for key in keys:
            if key.kind == 'type':
                facts.append(table.c.type)
            elif key.kind == 'scope':
                facts.append(table.c.scope_id)
            elif key.kind == 'time':
                facts.extend((table.c.period_begin, table.c.period_end))
        facts = [column.label(f'f{i}') for i, column in enumerate(facts)]
        sums = {'qty': table.c.qty, 'price': table.c.price}
        if not label_keys:
            grouped = sa.select(*facts, *(
                self._sum(sums[f.source], type_=sums[f.source].type).label(
                    f'v{i}') for i, f in enumerate(fields)),
            ).where(*conditions).group_by(*facts)
        else:
            # Sum by label id first, then join the (far fewer) partial sums
            # to their labels and group by the label values.
            partial = sa.select(
                *facts, _POINTS.c.label_id,
                *(self._sum(column, type_=column.type).label(name)
                  for name, column in sums.items()),
            ).where(*conditions).group_by(*facts, _POINTS.c.label_id
                                          ).subquery('partial')
            values = [self._bytewise(self._label_value(
                _LABELS.c.groupby, name)).label(f'l{i}')
                for i, name in enumerate(label_keys)]
            outer_facts = [partial.c[f.name] for f in facts]
            grouped = sa.select(*outer_facts, *values, *(
                self._sum(partial.c[f.source],
                          type_=sums[f.source].type).label(f'v{i}')
                for i, f in enumerate(fields)),
            ).select_from(partial.outerjoin(
                _LABELS, _LABELS.c.id == partial.c.label_id)
            ).group_by(*outer_facts, *values)
        if table is _POINTS:
            statement, every_group = self._points_page(
                grouped, keys, facts, label_keys, fields)
        else:
            # The sums are few: the groups are counted apart, without
            # summing them, which costs less than a window over every
            # group, and the page is read in key order (from an index where
            # one fits), not sorted whole.
            statement = grouped.order_by(*facts)
            every_group = sa.select(*facts or [sa.literal(1)]).where(
                *conditions).group_by(*facts)
            if not keys:
                # One group of nothing is no group; there is one group when
                # a row is selected (a HAVING on a query without aggregate,
                # as counting it needs, SQLite refuses).
                statement = grouped.having(sa.func.count() > 0)
                every_group = sa.select(sa.literal(1)).where(
                    *conditions).limit(1)
        if limit is not None:
            statement = statement.offset(offset).limit(limit)
        rows = conn.execute(statement).all()
        if table is _POINTS and rows:
            total = rows[0].n_groups
        elif rows and (limit is None or len(rows) < limit):
            # The last page: the groups before it and on it are all.
            total = len(rows) if limit is None else offset + len(rows)
        elif rows or offset:
            total = conn.execute(sa.select(sa.func.count()).select_from(
                every_group.order_by(None).subquery())).scalar()
        else:
            total = 0
        times = []  # positions of datetimes in the rows
        position = 0
        for key in keys:
            if key.kind == 'time':
                times.extend((position, position + 1))
                position += 1
            position += 1
        output = []
        width = len(facts) + len(label_keys) + len(fields)
        for row in rows:
            values = list(row[:width])
            for i in times:
                values[i] = _aware(values[i])
            output.append(tuple(values))
        return total, output

    def _points_page(self, grouped, keys, facts, label_keys, fields):
        """``(page statement, statement of every group)`` of a total over
        the points, ``grouped`` by ``facts`` and ``label_keys``.

        The page carries the number of groups (``n_groups``, a window
        count): counting apart would group a million points twice.
        """
        if self._dialect == 'postgresql':
            # Keep the planner from sorting a million points to produce the
            # first page of groups in order: aggregate by hash, then sort.
            grouped = grouped.cte('grouped').prefix_with('MATERIALIZED')
        else:
            grouped = grouped.subquery('grouped')
        order = []
        result = []
        facts_left = iter(grouped.c[f.name] for f in facts)
        labels_left = iter(grouped.c[f'l{i}'] for i in range(
            len(label_keys)))
        for key in keys:
            if key.kind == 'time':
                columns = [next(facts_left), next(facts_left)]
            elif key.kind == 'label':
                column = next(labels_left)
                order.append(column.is_(None))
                columns = [column]
            else:
                columns = [next(facts_left)]
            order.extend(columns)
            result.extend(columns)
        every_group = sa.select(
            *result, *(grouped.c[f'v{i}'] for i in range(len(fields))),
        ).order_by(*order)
        if not keys:
            every_group = every_group.where(grouped.c.v0.is_not(None))
        return every_group.add_columns(
            sa.func.count().over().label('n_groups')), every_group


class _LabelWriter:
    """Stores chunks of new labels from a thread and a connection of its
    own, one transaction per chunk (see ``_insert``)."""

    def __init__(self, storage):
        self._storage = storage
        self._chunks = queue.Queue(maxsize=2)
        self._error = None
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name='cloudkitty-label-writer')
        self._thread.start()

    def put(self, new_labels):
        """Queue ``{label id: _Label}`` for storage."""
        self._chunks.put(new_labels)

    def close(self, raise_error=True):
        """Wait for every queued chunk; raise the writer's error if any."""
        self._chunks.put(None)
        self._thread.join()
        if raise_error and self._error is not None:
            raise self._error

    def _run(self):
        while (chunk := self._chunks.get()) is not None:
            if self._error is not None:
                continue  # keep the queue moving until close()
            try:
                with self._storage.engine.begin() as conn:
                    self._storage._insert_labels(conn, chunk)
            except Exception as exc:  # handed to the pushing thread
                self._error = exc


class _CopyText(dict):
    """Memo of values in PostgreSQL's COPY text format: ``\\N`` for NULL,
    ISO timestamps, strings with backslash, tab and newlines escaped."""

    __slots__ = ()
    _ESCAPES = str.maketrans({'\\': '\\\\', '\t': '\\t', '\n': '\\n',
                              '\r': '\\r'})

    def __missing__(self, value):
        if value is None:
            text = '\\N'
        elif isinstance(value, datetime.datetime):
            text = value.isoformat(' ')
        else:
            text = value.translate(self._ESCAPES)
        self[value] = text
        return text


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
