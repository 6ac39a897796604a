"""What differs between the databases of the ``sqlalchemy`` backend.

One class per database, chosen once per storage by :func:`of`:
:class:`PostgreSQL`, :class:`MySQL` (MariaDB and MySQL) and :class:`SQLite`.
Each holds the engine and answers, for the shared writes and reads of
:mod:`.writes` and :mod:`.reads`:

- ``sum``: the SQL function that sums a NUMERIC column exactly;
- :meth:`~Dialect.insert_points`: the bulk point insert (``COPY ... FROM
  STDIN`` on PostgreSQL, batched multi-row ``INSERT`` elsewhere);
- :meth:`~Dialect.insert_batches`, :meth:`~Dialect.store_totals`,
  :meth:`~Dialect.store_labels`: the other bulk inserts;
- :attr:`~Dialect.upsert_daily`, :attr:`~Dialect.upsert_monthly`: the
  statements adding to the daily and monthly sums;
- :meth:`~Dialect.label_filter`, :meth:`~Dialect.label_lookup`: a label
  filter on ``rated_labels``;
- :meth:`~Dialect.label_value`, :meth:`~Dialect.bytewise`,
  :meth:`~Dialect.day`, :meth:`~Dialect.materialized`,
  :meth:`~Dialect.in_ids`: expressions;
- :meth:`~Dialect.snapshot`, :meth:`~Dialect.aggregating`,
  :meth:`~Dialect.prepare_summing`, :meth:`~Dialect.rolling`: the session
  and read prologues, and the upkeep's transaction.

Nothing outside this module asks which database it talks to.
"""

import contextlib
import datetime
import decimal
import functools
import json
import queue
import re
import threading

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite

from cloudkitty import db
from cloudkitty.db import replica
from cloudkitty.storage import v2
from cloudkitty.storage.v2.sqlalchemy import models

_POINTS = models.RatedPoint.__table__
_LABELS = models.RatedLabel.__table__
_TOTALS = models.RatedTotal.__table__
_DAILY = models.RatedDailyTotal.__table__
_MONTHLY = models.RatedMonthlyTotal.__table__
#: In the order the bulk writers send them: per-run values first.
POINT_COLUMNS = ('period_begin', 'period_end', 'scope_id', 'type',
                 'batch_id', 'seq', 'label_id', 'qty', 'price')
#: Columns of the ``rated_totals`` tuples the writes make.
TOTAL_COLUMNS = ('batch_id', 'type', 'period_begin', 'period_end',
                 'scope_id', 'qty', 'price', 'points')
_LABEL_COLUMNS = ('id', 'unit', 'description', 'groupby', 'metadata')
#: Rows per executemany() call and ids per IN list: bounded statements and
#: memory whatever the size of a push.
CHUNK = 5000
# New labels a PostgreSQL push gathers before handing them to a second
# connection.
_LABEL_SPILL = 10000
# PostgreSQL work_mem of the grouping queries.
_WORK_MEM = '32MB'
# MariaDB in-memory temporary table size of the same queries, in bytes.
_MARIADB_TMP_TABLE_SIZE = 256 * 1024 * 1024


def chunks(items, size=CHUNK):
    """``items`` as lists of at most ``size``."""
    items = list(items)
    for start in range(0, len(items), size):
        yield items[start:start + size]


def check_url(url):
    """Raise :class:`~cloudkitty.storage.v2.StorageError` when the backend
    cannot use ``url`` (a PostgreSQL driver other than psycopg 3, whose
    COPY and binary array parameters the writes use). Checked on the URL,
    before an engine imports a driver that may be absent."""
    if url.get_backend_name() == 'postgresql' and (
            url.get_driver_name() != 'psycopg'):
        raise v2.StorageError(
            f'the sqlalchemy storage needs the psycopg (3) driver on '
            f'PostgreSQL, not {url.get_driver_name()}: use a '
            f'postgresql:// or postgresql+psycopg:// URL')


def of(engine, router=None):
    """The :class:`Dialect` of ``engine`` (checked by :func:`check_url`),
    reading through ``router`` (a :class:`cloudkitty.db.replica.ReadRouter`
    of ``engine``; default: ``engine`` alone)."""
    check_url(engine.url)
    name = engine.dialect.name
    kind = {'postgresql': PostgreSQL, 'sqlite': SQLite, 'mysql': MySQL,
            'mariadb': MySQL}.get(name)
    if kind is None:
        raise v2.StorageError(f'the sqlalchemy storage does not support '
                              f'{name}')
    return kind(engine, router)


class Dialect:
    """The statements and expressions the databases share; subclasses
    override what their database does otherwise."""

    sum = sa.func.sum

    def __init__(self, engine, router=None):
        self.engine = engine
        self.router = router or replica.ReadRouter(engine)
        mark = '?' if engine.dialect.paramstyle == 'qmark' else '%s'
        self._marks = mark

    def _insert_sql(self, table, columns):
        return (f'INSERT INTO {table} ({", ".join(columns)}) VALUES '
                f'({", ".join([self._marks] * len(columns))})')

    # -- writes -------------------------------------------------------------

    points_as_text = False
    #: How :meth:`.writes.Writer.point_runs` makes a point: its line of
    #: COPY text (``points_as_text``), or a tuple of :data:`POINT_COLUMNS`
    #: that begins with :meth:`row_prefix` and ends with the quantity and
    #: the price, as texts (``values_as_text``, made by ``qty_text`` and
    #: ``price_text`` from a Decimal where ``str`` gives 13 characters or
    #: more, or an exponent) or as Decimals.
    values_as_text = False
    qty_text = price_text = str

    def row_prefix(self, begin, end, scope, type_, batch):
        """The values of :data:`POINT_COLUMNS` a run's rows begin with, as
        the DB-API driver takes them."""
        return begin, end, scope, type_, batch

    def insert_points(self, conn, runs, new_labels, store_labels):
        """Insert the points of ``runs`` (``(begin, end, scope, type,
        batch, rows)``, see :func:`.writes.Writer.point_runs`); return the
        ids of the labels stored on the way by ``store_labels(conn, {id:
        label})`` (none here: ``new_labels`` is left whole to the
        caller)."""
        sql = self._insert_sql('rated_points', POINT_COLUMNS)
        chunk = []
        for *_, rows in runs:
            chunk += rows
            if len(chunk) >= CHUNK:
                conn.exec_driver_sql(sql, chunk)
                chunk = []
        if chunk:
            conn.exec_driver_sql(sql, chunk)
        return []

    def insert_batches(self, conn, rows):
        """Insert ``rows`` (dicts of ``scope_id``, ``period_begin``,
        ``period_end``) into ``rated_batches``; return their ids, in
        order."""
        return conn.execute(
            sa.insert(models.RatedBatch.__table__).returning(
                models.RatedBatch.__table__.c.id,
                sort_by_parameter_order=True), rows).scalars().all()

    def store_totals(self, conn, totals, add_daily):
        """Insert ``totals`` (tuples of :data:`TOTAL_COLUMNS`) into
        ``rated_totals``, and add them to the daily sums (here by
        ``add_daily(conn, totals)``)."""
        sql = self._insert_sql('rated_totals', TOTAL_COLUMNS)
        for chunk in chunks(self._bind_totals(totals)):
            conn.exec_driver_sql(sql, chunk)
        add_daily(conn, totals)

    @staticmethod
    def _bind_totals(totals):
        return totals

    _insert_label_suffix = ''

    def store_labels(self, conn, new_labels, label_ids, check_stored):
        """Store the labels ``new_labels[i]`` of the sorted ``label_ids``
        that are not stored yet; those stored already are compared by
        ``check_stored(conn, new_labels, ids)``, which returns their ids."""
        stored = check_stored(conn, new_labels, label_ids)
        sql = (self._insert_sql('rated_labels', _LABEL_COLUMNS)
               + self._insert_label_suffix)
        rows = [(i, *new_labels[i]) for i in label_ids if i not in stored]
        for chunk in chunks(rows):
            conn.exec_driver_sql(sql, chunk)

    def rows_of_ids(self, conn, select, column, ids):
        """The rows of ``select`` whose ``column`` is one of ``ids``."""
        return (row for chunk in chunks(ids) for row in
                conn.execute(select.where(column.in_(chunk))))

    @functools.cached_property
    def upsert_daily(self):
        """INSERT of ``rated_daily_totals`` rows that adds to a stored
        row of the same key, which it marks not rolled (a new row is not,
        by default)."""
        return self._upsert_sums(_DAILY, rolled=sa.false())

    @functools.cached_property
    def upsert_monthly(self):
        """INSERT of ``rated_monthly_totals`` rows that adds to a stored
        row of the same key."""
        return self._upsert_sums(_MONTHLY)

    def _upsert_sums(self, table, **more):
        """INSERT of rows of the sums ``table`` that adds their ``qty``,
        ``price``, ``totals`` and ``points`` to those of a stored row of
        the same key, and sets the columns of ``more`` there."""
        insert = self._insert_module.insert(table)
        return insert.on_conflict_do_update(
            index_elements=[column.name for column in table.primary_key],
            set_={'qty': self._add(table.c.qty, insert.excluded.qty),
                  'price': self._add(table.c.price, insert.excluded.price),
                  'totals': table.c.totals + insert.excluded.totals,
                  'points': table.c.points + insert.excluded.points,
                  **more})

    @staticmethod
    def _add(augend, addend):
        return augend + addend

    def prepare_summing(self, conn):
        """Settle the session of a write that sums points in the
        database."""

    @contextlib.contextmanager
    def rolling(self):
        """Yield a connection in a write transaction, prepared to sum
        points (:meth:`prepare_summing`), whose every statement reads what
        is committed when it starts (as PostgreSQL's default, and SQLite's
        one writer at a time)."""
        with self.engine.begin() as conn:
            self.prepare_summing(conn)
            yield conn

    # -- reads --------------------------------------------------------------

    def day(self, column):
        """The UTC day (a date) of the naive UTC timestamp ``column``."""
        return sa.cast(column, sa.Date)

    def label_value(self, column, key):
        """The text of label ``key`` in the JSON ``column`` (NULL if
        none)."""
        return column[key].as_string()

    def label_filter(self, key, values):
        """WHERE clause on ``rated_labels``: the text of label ``key``,
        in ``groupby`` or else in ``metadata``, is one of ``values``."""
        return sa.func.coalesce(
            self.label_value(_LABELS.c.groupby, key),
            self.label_value(_LABELS.c.metadata, key)).in_(values)

    def label_lookup(self, key, values):
        """:meth:`label_filter`, for a statement that reads the matching
        labels' ids alone (an index may answer it; in a larger statement,
        the planner would misjudge how many labels match)."""
        return self.label_filter(key, values)

    def bytewise(self, expression):
        """``expression`` compared and sorted by code point."""
        return expression

    def materialized(self, select, name):
        """``select`` as a named subquery, computed once."""
        return select.subquery(name)

    def in_ids(self, column, ids):
        """``column`` is one of the integers ``ids`` (a list)."""
        return column.in_(ids)

    #: Whether the labels matching a filter are read once and named in the
    #: statements that follow (:meth:`in_ids` takes any number of them),
    #: rather than selected again by a subquery in each.
    labels_resolved = False

    @contextlib.contextmanager
    def snapshot(self, settings):
        """Yield a connection in a transaction whose reads see one state.

        On PostgreSQL, ``settings`` (parameter name: value, constants of
        this module, written into the statement) hold for the transaction
        only, set in one round trip with the planner's own; other
        databases ignore them.
        """
        with self.router.connect() as conn:
            conn.execution_options(**{db.READ_ONLY: True})
            with conn.begin():
                yield conn

    @contextlib.contextmanager
    def aggregating(self, settings):
        """A :meth:`snapshot` with the memory that the grouping of a
        ``total`` query needs (``settings`` as there)."""
        # Ten thousand groups of decimal sums, or the partial sums by label
        # id, outgrow PostgreSQL's default 4 MB and would spill to disk.
        # Compiling the plan (PostgreSQL's JIT, past a cost that a million
        # points reach) takes a fifth of a second and saves less.
        with self.snapshot({'work_mem': _WORK_MEM, 'jit': 'off',
                            **settings}) as conn:
            yield conn


def _totals_added_to(table, key, made, more=''):
    """The INSERT (for :meth:`PostgreSQL.store_totals`) adding the sums of
    the rows of its ``totals`` query that have a scope, grouped by ``key``
    (column names), to the rows of ``table`` of the same key, in key order;
    ``made`` is ``(name, SQL)``: the key column made from
    ``period_begin``; ``more``: what else a stored row's update sets."""
    name, expression = made
    keys = ', '.join(key)
    chosen = ', '.join(f'{expression} AS {name}' if column == name
                       else column for column in key)
    added = ', '.join(f'{column} = old.{column} + excluded.{column}'
                      for column in ('qty', 'price', 'totals', 'points'))
    return (f'INSERT INTO {table} AS old ({keys}, qty, price, totals, '
            f'points) SELECT {chosen}, sum(qty), sum(price), count(*), '
            f'sum(points) FROM totals WHERE scope_id IS NOT NULL GROUP BY '
            f'{keys} ORDER BY {keys} ON CONFLICT ({keys}) DO UPDATE SET '
            f'{added}{more}')


_ADD_TO_DAILY = _totals_added_to(
    'rated_daily_totals', ('scope_id', 'type', 'day'),
    ('day', 'CAST(period_begin AS date)'), more=', rolled = false')
_ADD_TO_MONTHLY = _totals_added_to(
    'rated_monthly_totals', ('month', 'scope_id', 'type'),
    ('month', "CAST(date_trunc('month', period_begin) AS date)"))


class PostgreSQL(Dialect):
    """PostgreSQL through psycopg 3: COPY, and arrays sent in binary."""

    _insert_module = postgresql
    points_as_text = True

    def insert_points(self, conn, runs, new_labels, store_labels):
        # Labels are a shared, append-only dictionary: those of a large push
        # are stored on a second connection while the points stream, each
        # chunk committed before the points are.
        spilled = []
        writer = None

        def spilling():
            nonlocal writer
            for run in runs:
                yield run
                if len(new_labels) >= _LABEL_SPILL:
                    writer = writer or _LabelWriter(self.engine, store_labels)
                    writer.put(dict(new_labels))
                    spilled.extend(new_labels)
                    new_labels.clear()

        copied = False
        try:
            self._copy_points(conn, spilling())
            copied = True
        finally:
            if writer is not None:
                # After a failed copy, its error is the one to raise.
                writer.close(raise_error=copied)
        return spilled

    @staticmethod
    def _copy_points(conn, runs):
        # Text COPY formatted here: half the client CPU of binary
        # write_row(), and no slower for the server to parse. The data is
        # sent by a thread of psycopg's (QueuedLibpqWriter, whose queue
        # bounds what waits to be sent): the next rows are formatted while
        # the server parses the last ones, where a write that waits for
        # its data to be sent would have each wait for the other.
        from psycopg import copy as pg_copy  # the driver of this dialect
        raw = conn.connection.driver_connection
        text = CopyText()
        lines = []
        size = 0
        with raw.cursor() as cursor, cursor.copy(
                f'COPY rated_points ({", ".join(POINT_COLUMNS)}) FROM STDIN',
                writer=pg_copy.QueuedLibpqWriter(cursor)) as copy:
            for begin, end, scope, type_, batch, rows in runs:
                prefix = (f'{text[begin]}\t{text[end]}\t{text[scope]}\t'
                          f'{text[type_]}\t{batch}\t')
                # Each row ends with a newline: joining on the prefix
                # starts every following row with it.
                lines.append(prefix + prefix.join(rows))
                size += len(rows)
                if size >= CHUNK:
                    copy.write(''.join(lines))
                    lines.clear()
                    size = 0
            copy.write(''.join(lines))

    def insert_batches(self, conn, rows):
        # One insert of arrays however many batches. Rows are inserted in
        # ORDER BY order and draw increasing ids from the sequence: the
        # sorted ids follow the rows (SQLAlchemy's insertmanyvalues relies
        # on the same).
        return sorted(conn.exec_driver_sql(
            'INSERT INTO rated_batches (scope_id, period_begin, period_end) '
            'SELECT scope_id, period_begin, period_end FROM '
            'unnest(%(scope_id)b::text[], %(period_begin)b::timestamp[], '
            '%(period_end)b::timestamp[]) WITH ORDINALITY AS new '
            '(scope_id, period_begin, period_end, n) ORDER BY n '
            'RETURNING id',
            {column: [row[column] for row in rows]
             for column in rows[0]}).scalars())

    def store_totals(self, conn, totals, add_daily):
        # One statement, arrays sent in binary: the totals, and their sums
        # by month and by day added to the monthly and daily ones, the
        # daily marked not rolled (in key order: concurrent writers lock
        # rows in the same order; the daily rows first, by the main
        # statement, then the monthly, by the WITH statement it does not
        # read, which runs to completion after it, as _apply_daily does).
        conn.exec_driver_sql(
            f'WITH totals AS (INSERT INTO rated_totals '
            f'({", ".join(TOTAL_COLUMNS)}) SELECT * FROM unnest('
            f'%(batch_id)b::int8[], %(type)b::text[], '
            f'%(period_begin)b::timestamp[], %(period_end)b::timestamp[], '
            f'%(scope_id)b::text[], %(qty)b::numeric[], '
            f'%(price)b::numeric[], %(points)b::int8[]) RETURNING scope_id, '
            f'type, period_begin, qty, price, points), '
            f'monthly AS ({_ADD_TO_MONTHLY}) {_ADD_TO_DAILY}',
            dict(zip(TOTAL_COLUMNS, map(list, zip(*totals)))))

    def store_labels(self, conn, new_labels, label_ids, check_stored):
        # One statement whatever the number of labels, their canonical
        # JSON sent as one document {id: [unit, description, groupby,
        # metadata]} that the server parses (Python dumps no array element
        # by element); what it did not insert was stored already, and only
        # that is read back and compared.
        inserted = conn.exec_driver_sql(
            'INSERT INTO rated_labels (id, unit, description, groupby, '
            'metadata) SELECT CAST(key AS int8), value->>0, value->>1, '
            'value->2, value->3 FROM jsonb_each(CAST(%(labels)s AS jsonb)) '
            'ORDER BY 1 ON CONFLICT DO NOTHING RETURNING id',
            {'labels': '{%s}' % ','.join([
                f'"{i}":{new_labels[i].canonical}' for i in label_ids])}
        ).scalars().all()
        if len(inserted) < len(label_ids):
            check_stored(conn, new_labels, sorted(
                set(label_ids).difference(inserted)))

    def rows_of_ids(self, conn, select, column, ids):
        return conn.execute(select.where(column == sa.any_(sa.bindparam(
            'ids', ids, type_=postgresql.ARRAY(sa.BigInteger)))))

    def prepare_summing(self, conn):
        # Hash the groups in memory rather than sort the points on disk.
        conn.exec_driver_sql(f"SET LOCAL work_mem = '{_WORK_MEM}'")

    def bytewise(self, expression):
        return sa.collate(expression, 'C')

    def label_lookup(self, key, values):
        # The exact test, after a containment test the GIN indexes of
        # groupby and metadata answer (migration 0011), true of every label
        # the exact one is (see json_forms()).
        forms = [json_forms(value) for value in values]
        exact = self.label_filter(key, values)
        if None in forms:
            return exact
        documents = [f'{{{json.dumps(key, ensure_ascii=False)}: {form}}}'
                     for value_forms in forms for form in value_forms]
        return sa.and_(sa.or_(*(
            column.op('@>', is_comparison=True)(sa.cast(
                sa.literal(document, sa.Text), postgresql.JSONB))
            for document in documents
            for column in (_LABELS.c.groupby, _LABELS.c.metadata))), exact)

    labels_resolved = True

    def in_ids(self, column, ids):
        # One array parameter, however many ids: neither a statement nor a
        # plan that grows with them.
        return column == sa.any_(sa.bindparam(
            None, ids, type_=postgresql.ARRAY(sa.BigInteger)))

    def materialized(self, select, name):
        # Keeps the planner from sorting a million points to produce the
        # first page of groups in order: aggregate by hash, then sort.
        return select.cte(name).prefix_with('MATERIALIZED')

    @contextlib.contextmanager
    def snapshot(self, settings):
        with self.router.connect() as conn:
            conn.execution_options(**{db.READ_ONLY: True})
            # Read committed takes a new snapshot per statement.
            conn.execution_options(isolation_level='REPEATABLE READ')
            with conn.begin():
                # Plans made for each query's values: the generic plan of a
                # statement psycopg has prepared (from its 5th run) is
                # blind to them, and chose a count of the summary's groups
                # twice as slow.
                settings = {'plan_cache_mode': 'force_custom_plan',
                            **settings}
                conn.exec_driver_sql('SELECT ' + ', '.join(
                    f"set_config('{name}', '{value}', true)"
                    for name, value in settings.items()))
                yield conn


class MySQL(Dialect):
    """MariaDB (and MySQL) through PyMySQL."""

    _insert_label_suffix = ' ON DUPLICATE KEY UPDATE id = id'

    def _upsert_sums(self, table, **more):
        insert = mysql.insert(table)
        return insert.on_duplicate_key_update({
            **{name: table.c[name] + insert.inserted[name]
               for name in ('qty', 'price', 'totals', 'points')}, **more})

    def bytewise(self, expression):
        return sa.collate(expression, 'utf8mb4_nopad_bin')

    @contextlib.contextmanager
    def rolling(self):
        # InnoDB's INSERT ... SELECT under REPEATABLE READ locks the rows it
        # reads, which a concurrent write holding new points and waiting
        # for a daily row would deadlock with; read committed reads them
        # without locks.
        with self.engine.connect() as conn:
            conn.execution_options(isolation_level='READ COMMITTED')
            with conn.begin():
                yield conn

    @contextlib.contextmanager
    def aggregating(self, settings):
        with super().aggregating(settings) as conn:
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


class SQLite(Dialect):
    """SQLite through pysqlite: decimals are exact text, summed by the
    functions registered on every connection."""

    _insert_module = sqlite
    _insert_label_suffix = ' ON CONFLICT DO NOTHING'
    sum = sa.func.ck_decimal_sum

    def __init__(self, engine, router=None):
        super().__init__(engine, router)
        db.on_every_connection(engine, _sqlite_functions)
        # pysqlite knows neither datetimes nor Decimals: store what the
        # column types would (SQLAlchemy's datetime text, exact decimal
        # text). A text of fewer than 13 characters without exponent needs
        # neither rounding nor a range check (12 digits fit every column):
        # only longer ones are handed to the column type's own conversion.
        dialect = engine.dialect
        self._date = _POINTS.c.period_begin.type.dialect_impl(
            dialect).bind_processor(dialect)
        self.qty_text = _POINTS.c.qty.type.dialect_impl(dialect).to_text
        self.price_text = _POINTS.c.price.type.dialect_impl(dialect).to_text

    values_as_text = True

    def row_prefix(self, begin, end, scope, type_, batch):
        return self._date(begin), self._date(end), scope, type_, batch

    def store_labels(self, conn, new_labels, label_ids, check_stored):
        # Inserted first, those stored already left alone: only when some
        # were are the labels read back and compared (a label new to this
        # process is most often new to the database).
        sql = (self._insert_sql('rated_labels', _LABEL_COLUMNS)
               + self._insert_label_suffix)
        inserted = 0
        for chunk in chunks((i, *new_labels[i]) for i in label_ids):
            inserted += conn.exec_driver_sql(sql, chunk).rowcount
        if inserted < len(label_ids):
            check_stored(conn, new_labels, label_ids)

    def rows_of_ids(self, conn, select, column, ids):
        # The ids as one JSON array: one statement, no parameter per id.
        ids = sa.func.json_each(sa.bindparam(
            'ids', json.dumps(list(ids)))).table_valued('value')
        return conn.execute(select.where(column.in_(sa.select(ids.c.value))))

    labels_resolved = True

    def in_ids(self, column, ids):
        # As rows_of_ids() names them.
        ids = sa.func.json_each(sa.bindparam(
            None, json.dumps(list(ids)))).table_valued('value')
        return column.in_(sa.select(ids.c.value))

    def _bind_totals(self, totals):
        date, text = self._date, self.qty_text
        return [(batch, type_, date(begin), date(end), scope, text(qty),
                 text(price), points)
                for batch, type_, begin, end, scope, qty, price, points
                in totals]

    @staticmethod
    def _add(augend, addend):
        return sa.func.ck_decimal_add(augend, addend)

    def day(self, column):
        return sa.func.date(column, type_=sa.Date)

    def label_value(self, column, key):
        # json_extract() returns numbers as numbers: compare as text like
        # the other databases do.
        return sa.cast(super().label_value(column, key), sa.String)


#: A JSON number as jsonb writes it (positional notation), or a boolean.
_JSON_SCALAR = re.compile(r'-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?|true|false')


def json_forms(value):
    """The JSON texts of the values whose text (as ``->>`` gives it) may
    be the filter value ``value``: the string, and the number or boolean
    it writes (``None``: it writes a JSON array or object, whose text
    containment cannot narrow)."""
    forms = [json.dumps(value, ensure_ascii=False)]
    if _JSON_SCALAR.fullmatch(value):
        forms.append(value)
    elif value[:1] in ('[', '{'):
        return None
    return forms


class SQLiteDecimalSum:
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
    dbapi_connection.create_aggregate('ck_decimal_sum', 1, SQLiteDecimalSum)
    dbapi_connection.create_function('ck_decimal_add', 2, _sqlite_decimal_add,
                                     deterministic=True)


class _LabelWriter:
    """Stores chunks of new labels from a thread and a connection of its
    own, one transaction per chunk (see :meth:`PostgreSQL.insert_points`)."""

    def __init__(self, engine, store_labels):
        self._engine = engine
        self._store_labels = store_labels
        self._chunks = queue.Queue(maxsize=2)
        self._error = None
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name='cloudkitty-label-writer')
        self._thread.start()

    def put(self, new_labels):
        """Queue ``{label id: label}`` for storage."""
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
                with self._engine.begin() as conn:
                    self._store_labels(conn, chunk)
            except Exception as exc:  # handed to the pushing thread
                self._error = exc


class CopyText(dict):
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
