"""The ``sqlalchemy`` storage backend: SQLite, PostgreSQL, MariaDB.

Every filter, grouping, sort and page is computed by the database. Points
are written in bulk: ``COPY ... FROM STDIN (FORMAT BINARY)`` streamed on
PostgreSQL, multi-row ``INSERT`` (DB-API ``executemany``) elsewhere. The
tables are described in :mod:`.models`.
"""

import datetime
import decimal
import hashlib
import itertools
import json

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy import event

from cloudkitty import dataframe
from cloudkitty import db
from cloudkitty.db import migration
from cloudkitty.storage import v2
from cloudkitty.storage.v2.sqlalchemy import models

_UTC = datetime.timezone.utc
_POINTS = models.RatedPoint.__table__
_LABELS = models.RatedLabel.__table__
_BATCHES = models.RatedBatch.__table__
_POINT_COLUMNS = ('batch_id', 'seq', 'period_begin', 'period_end',
                  'scope_id', 'type', 'label_id', 'qty', 'price')
_COPY_TYPES = ('int8', 'int4', 'timestamp', 'timestamp', 'varchar',
               'varchar', 'int8', 'numeric', 'numeric')
# Rows per executemany() call and ids per IN list: bounded statements and
# memory whatever the size of a push.
_CHUNK = 5000
# Label ids known to be stored; beyond this many the cache starts over.
_KNOWN_LABELS_MAX = 2_000_000


class _SQLiteDecimalSum:
    """``ck_decimal_sum``: exact SUM over the decimal text SQLite stores."""

    def __init__(self):
        self.total = None

    def step(self, value):
        if value is None:
            return
        value = decimal.Decimal(value if isinstance(value, str)
                                else str(value))
        self.total = value if self.total is None else v2.DECIMAL_CONTEXT.add(
            self.total, value)

    def finalize(self):
        return None if self.total is None else str(self.total)


def _sqlite_on_connect(dbapi_connection, _record):
    dbapi_connection.create_aggregate('ck_decimal_sum', 1, _SQLiteDecimalSum)


def _naive_utc(value):
    return value.astimezone(_UTC).replace(tzinfo=None)


def _aware(value):
    return value.replace(tzinfo=_UTC)


def _chunks(items, size=_CHUNK):
    items = list(items)
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _json(value):
    """Canonical JSON: sorted keys, no spaces (Decimals as numbers)."""
    try:
        return json.dumps(value, sort_keys=True, separators=(',', ':'))
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
        """The text hashed into the label id."""
        return (f'[{_json(self[0])},{_json(self[1])},{self[2]},'
                f'{self[3]}]')


def _label_hash(canonical):
    digest = hashlib.blake2b(canonical.encode('utf-8'), digest_size=8)
    return int.from_bytes(digest.digest(), 'big', signed=True)


class SQLAlchemyStorage(v2.BaseStorage):
    """Rated data in an SQL database reached through SQLAlchemy.

    The URL is ``[storage_sqlalchemy] connection``, else ``[database]
    connection``. :meth:`init` runs the service's migrations, which create
    the tables (``rated_points``, ``rated_labels``, ``rated_batches``).
    """

    def __init__(self, conf):
        super().__init__(conf)
        url = conf.storage_sqlalchemy.connection or conf.database.connection
        self.engine = db.create_engine(url, json_serializer=dataframe.dumps)
        self._dialect = self.engine.dialect.name
        if self._dialect == 'sqlite':
            event.listen(self.engine, 'connect', _sqlite_on_connect)
            self._sum = sa.func.ck_decimal_sum
        else:
            self._sum = sa.func.sum
        self._known_labels = set()

    def init(self):
        """Run the migrations (every table of the service) on the engine."""
        migration.upgrade(self.engine)

    # -- writes -------------------------------------------------------------

    def _push(self, frames, scope_id):
        with self._translate_errors(), self.engine.begin() as conn:
            stored = self._insert(conn, frames, scope_id)
        self._remember(stored)

    def _replace(self, frame, scope_id):
        with self._translate_errors(), self.engine.begin() as conn:
            self._delete_batches(conn, v2.Query(
                begin=frame.start, end=frame.end, scopes=(scope_id,)))
            stored = self._insert(conn, [frame], scope_id) if len(
                frame) else ()
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
        rows = self._point_rows(frames, batches, new_labels)
        if self._dialect == 'postgresql':
            self._copy_points(conn, rows)
        else:
            self._insert_points(conn, rows)
        self._insert_labels(conn, new_labels)
        return new_labels.keys()

    def _scope_of(self, point):
        scope = point.groupby.get(self.scope_key)
        return scope if scope is None or isinstance(scope, str) else str(
            scope)

    def _insert_batches(self, conn, frames, scope_id):
        """Create one batch per frame and scope; return, for each frame,
        ``{scope: batch id}``."""
        keys = []
        for index, frame in enumerate(frames):
            if scope_id is not None:
                scopes = [str(scope_id)] if len(frame) else []
            else:
                scopes = dict.fromkeys(self._scope_of(point)
                                       for _, point in frame.iterpoints())
            keys.extend((index, scope) for scope in scopes)
        rows = [{'scope_id': scope,
                 'period_begin': _naive_utc(frames[index].start),
                 'period_end': _naive_utc(frames[index].end)}
                for index, scope in keys]
        ids = conn.execute(
            sa.insert(_BATCHES).returning(_BATCHES.c.id,
                                          sort_by_parameter_order=True),
            rows).scalars().all()
        batches = [{} for _ in frames]
        for (index, scope), batch_id in zip(keys, ids):
            batches[index][scope] = batch_id
        return batches

    def _point_rows(self, frames, batches, new_labels):
        """Yield the ``rated_points`` rows of ``frames`` (in push order),
        filling ``new_labels`` with ``{label id: _Label}`` for the labels
        not known to be stored.

        This loop runs once per point: it is written for speed.
        """
        label_ids = {}  # label contents -> id, for this push
        known = self._known_labels
        next_seq = {}
        seq = -1
        for frame, scopes in zip(frames, batches):
            begin, end = _naive_utc(frame.start), _naive_utc(frame.end)
            several = len(scopes) > 1
            if not several:
                for scope, batch in scopes.items():
                    seq = -1
            for type_, points in frame.itertypes():
                for point in points:
                    unit, qty, price, groupby, metadata, description = point
                    if several:
                        scope = self._scope_of(point)
                        batch = scopes[scope]
                        seq = next_seq[batch] = next_seq.get(batch, -1) + 1
                    else:
                        seq += 1
                    contents = (unit, description, len(groupby), *groupby,
                                *groupby.values(), *metadata,
                                *metadata.values())
                    try:
                        label = label_ids[contents]
                    except KeyError:
                        label = label_ids[contents] = self._label_of(
                            point, known, new_labels)
                    except TypeError:  # unhashable label values
                        label = self._label_of(point, known, new_labels)
                    yield (batch, seq, begin, end, scope, type_, label, qty,
                           price)

    @staticmethod
    def _label_of(point, known, new_labels):
        label = _Label.of(point.unit, point.description, point.groupby,
                          point.metadata)
        label_id = _label_hash(label.canonical)
        if label_id not in known:
            seen = new_labels.setdefault(label_id, label)
            if seen != label:
                raise v2.StorageError(
                    f'label hash collision: {seen.canonical} and '
                    f'{label.canonical}')
        return label_id

    def _copy_points(self, conn, rows):
        raw = conn.connection.driver_connection
        columns = ', '.join(_POINT_COLUMNS)
        with raw.cursor() as cursor:
            with cursor.copy(f'COPY rated_points ({columns}) FROM STDIN '
                             f'(FORMAT BINARY)') as copy:
                copy.set_types(_COPY_TYPES)
                write_row = copy.write_row
                for row in rows:
                    write_row(row)

    def _insert_points(self, conn, rows):
        marks = ', '.join(['?' if self.engine.dialect.paramstyle == 'qmark'
                           else '%s'] * len(_POINT_COLUMNS))
        sql = (f'INSERT INTO rated_points ({", ".join(_POINT_COLUMNS)}) '
               f'VALUES ({marks})')
        if self._dialect == 'sqlite':
            rows = self._sqlite_rows(rows)
        while True:
            chunk = list(itertools.islice(rows, _CHUNK))
            if not chunk:
                break
            conn.exec_driver_sql(sql, chunk)

    def _sqlite_rows(self, rows):
        # pysqlite knows neither datetimes nor Decimals: store what the
        # column types would (SQLAlchemy's datetime text, exact decimals).
        dates = _POINTS.c.period_begin.type.dialect_impl(
            self.engine.dialect).bind_processor(self.engine.dialect)
        qty = _POINTS.c.qty.type.dialect_impl(self.engine.dialect).to_text
        price = _POINTS.c.price.type.dialect_impl(self.engine.dialect).to_text
        cache = {}
        for batch, seq, begin, end, scope, type_, label, q, p in rows:
            if begin not in cache:
                cache[begin] = dates(begin)
            if end not in cache:
                cache[end] = dates(end)
            yield (batch, seq, cache[begin], cache[end], scope, type_, label,
                   qty(q), price(p))

    def _insert_labels(self, conn, new_labels):
        """Store the labels of ``new_labels`` that are not stored yet."""
        if not new_labels:
            return
        missing = dict(new_labels)
        for row in self._stored_labels(conn, sorted(new_labels)):
            stored = _Label.of(row.unit, row.description, row.groupby,
                               row.metadata)
            if stored != new_labels[row.id]:
                raise v2.StorageError(
                    f'label hash collision: stored {stored.canonical}, new '
                    f'{new_labels[row.id].canonical}')
            del missing[row.id]
        # Sorted: concurrent pushes lock shared labels in the same order.
        rows = [(label_id, *missing[label_id]) for label_id in sorted(missing)]
        if not rows:
            return
        if self._dialect == 'postgresql':
            self._copy_labels(conn, rows)
            return
        if self._dialect == 'sqlite':
            sql = ('INSERT INTO rated_labels (id, unit, description, groupby, '
                   'metadata) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING')
        else:
            sql = ('INSERT INTO rated_labels (id, unit, description, groupby, '
                   'metadata) VALUES (%s, %s, %s, %s, %s) '
                   'ON DUPLICATE KEY UPDATE id = id')
        for chunk in _chunks(rows):
            conn.exec_driver_sql(sql, chunk)

    def _stored_labels(self, conn, label_ids):
        """Yield the stored ``rated_labels`` rows among ``label_ids``."""
        if self._dialect == 'postgresql':
            yield from conn.execute(sa.select(_LABELS).where(
                _LABELS.c.id == sa.any_(sa.bindparam(
                    'ids', label_ids, type_=postgresql.ARRAY(
                        sa.BigInteger)))))
            return
        for chunk in _chunks(label_ids):
            yield from conn.execute(
                sa.select(_LABELS).where(_LABELS.c.id.in_(chunk)))

    @staticmethod
    def _copy_labels(conn, rows):
        raw = conn.connection.driver_connection
        with raw.cursor() as cursor:
            cursor.execute(
                'CREATE TEMPORARY TABLE ck_new_labels (id int8, unit text, '
                'description text, groupby text, metadata text) '
                'ON COMMIT DROP')
            with cursor.copy('COPY ck_new_labels FROM STDIN '
                             '(FORMAT BINARY)') as copy:
                copy.set_types(('int8', 'text', 'text', 'text', 'text'))
                for row in rows:
                    copy.write_row(row)
            cursor.execute(
                'INSERT INTO rated_labels (id, unit, description, groupby, '
                'metadata) SELECT id, unit, description, groupby::jsonb, '
                'metadata::jsonb FROM ck_new_labels ORDER BY id '
                'ON CONFLICT DO NOTHING')

    def _delete(self, query):
        with self.engine.begin() as conn:
            if query.types is None and not query.labels:
                self._delete_batches(conn, query)
                return
            conn.execute(sa.delete(_POINTS).where(*self._conditions(query)))
            # Drop the batches this emptied.
            emptied = self._batch_conditions(query) + [~sa.exists().where(
                _POINTS.c.batch_id == _BATCHES.c.id)]
            conn.execute(sa.delete(_BATCHES).where(*emptied))

    def _delete_batches(self, conn, query):
        """Delete whole batches: the scope and time of ``query`` only."""
        conditions = self._batch_conditions(query)
        if query.scopes is None:
            conn.execute(sa.delete(_POINTS).where(
                *self._batch_conditions(query, _POINTS)))
            conn.execute(sa.delete(_BATCHES).where(*conditions))
            return
        # Ids first, then primary-key ranges: fast on every database
        # (MariaDB does not turn DELETE ... IN (SELECT) into a join).
        ids = conn.execute(sa.select(_BATCHES.c.id).where(
            *conditions)).scalars().all()
        for chunk in _chunks(ids):
            conn.execute(sa.delete(_POINTS).where(
                _POINTS.c.batch_id.in_(chunk)))
            conn.execute(sa.delete(_BATCHES).where(_BATCHES.c.id.in_(chunk)))

    # -- reads --------------------------------------------------------------

    @staticmethod
    def _batch_conditions(query, table=_BATCHES):
        """WHERE clauses on the window and scopes of ``query``; ``table``
        is ``rated_batches`` or ``rated_points`` (both have the columns)."""
        conditions = []
        if query.begin is not None:
            conditions.append(table.c.period_begin >= _naive_utc(query.begin))
        if query.end is not None:
            conditions.append(table.c.period_begin < _naive_utc(query.end))
        if query.scopes is not None:
            conditions.append(table.c.scope_id.in_(query.scopes))
        return conditions

    def _label_value(self, column, key):
        value = column[key].as_string()
        if self._dialect == 'sqlite':
            # json_extract() returns numbers as numbers: compare as text
            # like the other databases do.
            value = sa.cast(value, sa.String)
        return value

    def _bytewise(self, expression):
        if self._dialect == 'postgresql':
            return sa.collate(expression, 'C')
        if self._dialect in ('mysql', 'mariadb'):
            return sa.collate(expression, 'utf8mb4_bin')
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
        order = (_POINTS.c.period_begin, _POINTS.c.period_end,
                 _POINTS.c.type, _POINTS.c.batch_id, _POINTS.c.seq)
        page = sa.select(
            *order, _POINTS.c.label_id, _POINTS.c.qty, _POINTS.c.price,
            sa.func.count().over().label('n_points'),
        ).where(*self._conditions(query)).order_by(*order)
        if limit is not None:
            page = page.offset(offset).limit(limit)
        page = page.subquery('page')
        statement = sa.select(
            page, _LABELS.c.unit, _LABELS.c.description, _LABELS.c.groupby,
            _LABELS.c.metadata,
        ).select_from(page.outerjoin(
            _LABELS, _LABELS.c.id == page.c.label_id)).order_by(
            *(page.c[c.name] for c in order))
        with self.engine.connect() as conn:
            rows = conn.execute(statement).all()
            if rows:
                total = rows[0].n_points
            else:
                total = conn.execute(sa.select(sa.func.count()).select_from(
                    _POINTS).where(*self._conditions(query))).scalar()
        points = [
            (_aware(row.period_begin), _aware(row.period_end), row.type,
             dataframe.DataPoint(
                 row.unit, v2.normalize_decimal(row.qty),
                 v2.normalize_decimal(row.price), row.groupby or {},
                 row.metadata or {}, row.description))
            for row in rows]
        return total, points

    def _total(self, query, keys, fields, offset, limit):
        facts = []  # rated_points columns grouped on, in key order
        for key in keys:
            if key.kind == 'type':
                facts.append(_POINTS.c.type)
            elif key.kind == 'scope':
                facts.append(_POINTS.c.scope_id)
            elif key.kind == 'time':
                facts.extend((_POINTS.c.period_begin, _POINTS.c.period_end))
        facts = [column.label(f'f{i}') for i, column in enumerate(facts)]
        sums = {'qty': _POINTS.c.qty, 'price': _POINTS.c.price}
        conditions = self._conditions(query)
        label_keys = [key.name for key in keys if key.kind == 'label']
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
        if self._dialect == 'postgresql':
            # Keep the planner from sorting a million points to produce the
            # first page of groups in order: aggregate by hash, then sort.
            grouped = grouped.cte('grouped').prefix_with('MATERIALIZED')
        else:
            grouped = grouped.subquery('grouped')
        order = []
        result = []
        times = []  # positions of datetimes in result
        facts_left = iter(grouped.c[f.name] for f in facts)
        labels_left = iter(grouped.c[f'l{i}'] for i in range(
            len(label_keys)))
        for key in keys:
            if key.kind == 'time':
                times.extend((len(result), len(result) + 1))
                columns = [next(facts_left), next(facts_left)]
            elif key.kind == 'label':
                column = next(labels_left)
                order.append(column.is_(None))
                columns = [column]
            else:
                columns = [next(facts_left)]
            order.extend(columns)
            result.extend(columns)
        statement = sa.select(
            *result, *(grouped.c[f'v{i}'] for i in range(len(fields))),
            sa.func.count().over().label('n_groups'),
        ).order_by(*order)
        if not keys:
            # One group of nothing is no group.
            statement = statement.where(grouped.c.v0.is_not(None))
        if limit is not None:
            statement = statement.offset(offset).limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(statement).all()
            if rows:
                total = rows[0].n_groups
            elif offset:
                total = conn.execute(sa.select(sa.func.count()).select_from(
                    statement.limit(None).offset(None).subquery())).scalar()
            else:
                total = 0
        output = []
        for row in rows:
            values = list(row[:-1])
            for i in times:
                values[i] = _aware(values[i])
            output.append(tuple(values))
        return total, output


class _ErrorTranslator:
    """Turn the database's refusal of a value into :class:`InvalidData`."""

    def __init__(self, dbapi_data_error):
        self._errors = (sa.exc.DataError, dbapi_data_error, ValueError)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, _tb):
        if exc is not None and isinstance(exc, self._errors) and not (
                isinstance(exc, v2.StorageError)):
            raise v2.InvalidData(f'cannot store these points: {exc}') from exc
        return False
