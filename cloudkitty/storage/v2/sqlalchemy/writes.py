"""The writes of the ``sqlalchemy`` backend, on the connection of a write
transaction: batches, labels, point runs, per-batch and daily totals, the
deletion of whole batches, and the upkeep's sums of a day by label.

:class:`Writer` holds them; what differs between databases is asked of its
:class:`~.dialects.Dialect`. A label is stored once, under a 64-bit hash of
its canonical JSON (:class:`Label`, :func:`label_hash`).
"""

import datetime
import decimal
import hashlib
import json
import operator
import typing

import sqlalchemy as sa

from cloudkitty import dataframe
from cloudkitty.db import types as db_types
from cloudkitty.storage import v2
from cloudkitty.storage.v2.sqlalchemy import dialects
from cloudkitty.storage.v2.sqlalchemy import models
from cloudkitty.storage.v2.sqlalchemy import reads
from cloudkitty import timeutils

_POINTS = models.RatedPoint.__table__
_LABELS = models.RatedLabel.__table__
_BATCHES = models.RatedBatch.__table__
_TOTALS = models.RatedTotal.__table__
_DAILY = models.RatedDailyTotal.__table__
_MONTHLY = models.RatedMonthlyTotal.__table__
_LABEL_DAYS = models.RatedLabelDay.__table__
_QUANTUM = decimal.Decimal(1).scaleb(-db_types.SCALE)
_QTY = operator.itemgetter(1)    # of a DataPoint
# What json.JSONEncoder(sort_keys=True, separators=(',', ':')).encode()
# writes, through the C encoder it would build on every call, built once
# (without the check for circular references: labels are JSON values).
_ENCODE = json.encoder.c_make_encoder(
    None, json.JSONEncoder().default, json.encoder.encode_basestring_ascii,
    None, ':', ',', True, False, True)
_STRING = json.encoder.encode_basestring_ascii
# Label ids known to be stored; beyond this many the memory starts over.
_KNOWN_LABELS_MAX = 1_000_000
# Label contents remembered with their ids (a few hundred bytes each): the
# labels of 200,000 resources, a period of a large cloud.
_LABEL_CACHE_MAX = 200_000


def stored(value):
    """``value`` as a NUMERIC column of
    :data:`~cloudkitty.db.types.SCALE` decimals stores it: rounded half
    away from zero (as PostgreSQL and MariaDB round, and
    :class:`~cloudkitty.db.types.SQLiteDecimal`)."""
    if value.as_tuple().exponent >= -db_types.SCALE:
        return value
    return value.quantize(_QUANTUM, decimal.ROUND_HALF_UP,
                          context=v2.DECIMAL_CONTEXT)


def _json(value):
    """Canonical JSON: sorted keys, no spaces (Decimals as numbers)."""
    try:
        return ''.join(_ENCODE(value, 0))
    except TypeError:
        return dataframe.dumps(value, sort_keys=True, separators=(',', ':'))


class Label(tuple):
    """``(unit, description, groupby JSON, metadata JSON)`` of a label."""

    __slots__ = ()

    @classmethod
    def of(cls, unit, description, groupby, metadata):
        return cls((unit, description, _json(dict(groupby)),
                    _json(dict(metadata))))

    @property
    def canonical(self):
        """The text hashed into the label id: JSON of the four values (a
        JSON array)."""
        return f'[{_scalar(self[0])},{_scalar(self[1])},{self[2]},{self[3]}]'


def _scalar(value):
    """:func:`_json` of a unit or a description (a string, or None)."""
    return _STRING(value) if type(value) is str else _json(value)


def label_hash(canonical):
    """The label id of the :attr:`Label.canonical` text: stored, so
    stable from release to release."""
    digest = hashlib.blake2b(canonical.encode('utf-8'), digest_size=8)
    return int.from_bytes(digest.digest(), 'big', signed=True)


# The batches of some scopes whose period begins in [begin, end).
_PERIOD_BATCHES = sa.select(_BATCHES.c.id).where(
    _BATCHES.c.period_begin >= sa.bindparam('begin'),
    _BATCHES.c.period_begin < sa.bindparam('end'),
    _BATCHES.c.scope_id.in_(sa.bindparam('scopes', expanding=True)))


class Stored(typing.NamedTuple):
    """What a write teaches once committed: the ids of the labels it
    stored, and ``{label contents: id}`` of the labels its points use."""

    label_ids: list
    labels: dict


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


class Writer:
    """The writes of one storage, on a connection in a transaction.

    :param dialect: the storage's :class:`~.dialects.Dialect`.
    :param scope_key: the groupby key holding a point's scope when a push
        names none.

    The labels of committed writes are remembered (see :meth:`remember`):
    a point whose labels were stored before costs a dictionary look-up,
    not an encoding and a hash.
    """

    def __init__(self, dialect, scope_key):
        self.dialect = dialect
        self.scope_key = scope_key
        self._known = set()  # label ids known to be stored
        # {label contents, as point_runs reads them: label id} of the
        # labels known to be stored, in the form the dialect writes.
        self._label_ids = {}

    def remember(self, stored):
        """Remember the labels of a committed write (a :class:`Stored`, or
        ``None`` for a write that stored no point): only once committed,
        since a rolled back write stored no label."""
        if stored is None:
            return
        if len(self._known) + len(stored.label_ids) > _KNOWN_LABELS_MAX:
            self._known.clear()
        self._known.update(stored.label_ids)
        if len(self._label_ids) + len(stored.labels) > _LABEL_CACHE_MAX:
            self._label_ids.clear()
        self._label_ids.update(stored.labels)

    def insert(self, conn, frames, scopes):
        """Insert the points of ``frames`` (of the scope ``scopes[i]`` for
        ``frames[i]``, ``None``: each point's ``groupby[scope_key]``),
        their batches, new labels and totals; return the :class:`Stored`
        to :meth:`remember` once committed."""
        batches = self.insert_batches(conn, frames, scopes)
        new_labels = {}
        totals = []
        labels = {}
        runs = self.point_runs(frames, batches, new_labels, totals, labels,
                               as_text=self.dialect.points_as_text)
        spilled = self.dialect.insert_points(conn, runs, new_labels,
                                             self.store_labels)
        self.store_labels(conn, new_labels)
        self.store_totals(conn, totals)
        return Stored([*spilled, *new_labels], labels)

    def insert_batches(self, conn, frames, scopes):
        """Create one batch per frame and scope; return, for each frame,
        ``{groupby scope value: (batch id, scope id)}`` (the key is
        ``None`` when the frame's scope is given)."""
        keys = []
        scope_key = self.scope_key
        for index, (frame, scope_id) in enumerate(zip(frames, scopes)):
            if not len(frame):
                continue
            if scope_id is not None:
                keys.append((index, None, str(scope_id)))
                continue
            found = {}
            for _, points, _ in frame.itercolumns():
                found.update(dict.fromkeys(
                    [point.groupby.get(scope_key) for point in points]))
            keys.extend((index, value, None if value is None else str(value))
                        for value in found)
        rows = [{'scope_id': scope,
                 'period_begin': timeutils.to_db(frames[index].start),
                 'period_end': timeutils.to_db(frames[index].end)}
                for index, _, scope in keys]
        ids = self.dialect.insert_batches(conn, rows) if rows else []
        batches = [{} for _ in frames]
        for (index, value, scope), batch_id in zip(keys, ids):
            batches[index][value] = (batch_id, scope)
        return batches

    def point_runs(self, frames, batches, new_labels, totals, labels,
                   as_text=False):
        """Yield the points of ``frames`` as runs sharing everything but
        ``(seq, label id, qty, price)``: ``(period_begin, period_end,
        scope_id, type, batch_id, rows)``, in push order; with ``as_text``,
        each point is its line of COPY text (the end of the line: the run's
        values come first), else its row of
        :data:`~.dialects.POINT_COLUMNS` (see :meth:`_rows`). Fills
        ``new_labels`` with ``{label id: Label}`` for the labels not known
        to be stored, ``labels`` with ``{label contents: id}`` of the labels
        not remembered yet, and appends to ``totals`` each run's
        ``rated_totals``
        row (a tuple of :data:`~.dialects.TOTAL_COLUMNS`): the sums of its
        values as the database stores them (rounded to
        :data:`~cloudkitty.db.types.SCALE` decimals).

        A run's rows are made by :meth:`_rows` (strings rather than tuples
        also spare the garbage collector), its values summed at C speed.
        """
        scope_key = self.scope_key
        next_seq = {}  # batch id -> the last seq given
        for frame, scopes in zip(frames, batches):
            if not scopes:
                continue
            begin = timeutils.to_db(frame.start)
            end = timeutils.to_db(frame.end)
            scope_of = dict(scopes.values())  # batch id -> scope id
            several = len(scopes) > 1
            # Read as columns: a priced frame's points are not built.
            for type_, points, prices in frame.itercolumns():
                if several:
                    # batch id -> its points of the type, and their prices
                    parts = {}
                    for point, price in zip(points, prices):
                        part = parts.get(batch := scopes[point.groupby.get(
                            scope_key)][0])
                        if part is None:
                            part = parts[batch] = [], []
                        part[0].append(point)
                        part[1].append(price)
                else:
                    parts = dict.fromkeys(scope_of, (points, prices))
                for batch, (part, part_prices) in parts.items():
                    seq = next_seq.get(batch, -1)
                    next_seq[batch] = seq + len(part)
                    scope = scope_of[batch]
                    rows, rounded = self._rows(
                        part, part_prices, seq, new_labels, labels,
                        None if as_text else self.dialect.row_prefix(
                            begin, end, scope, type_, batch))
                    qtys, prices = map(_QTY, part), part_prices
                    if rounded:
                        qtys, prices = map(stored, qtys), map(stored, prices)
                    with decimal.localcontext(v2.DECIMAL_CONTEXT):
                        totals.append((batch, type_, begin, end, scope,
                                       sum(qtys), sum(prices), len(rows)))
                    yield begin, end, scope, type_, batch, rows

    def _rows(self, points, prices, seq, new_labels, labels, prefix):
        """``(rows, rounded)``: the rows of ``points`` (priced by
        ``prices``, one per point) numbered from ``seq + 1``, and whether a
        value was rounded; ``new_labels`` and
        ``labels`` as :meth:`point_runs` fills them. A row is the COPY
        line ``seq, label id, qty, price`` when ``prefix`` is None, else
        the tuple ``prefix + (seq, label id, qty, price)``, the values as
        the dialect takes them (:attr:`~.dialects.Dialect.values_as_text`).

        The loop runs once per point: it is written for speed (``str`` of
        a Decimal is twice as fast as formatting it; a value's rounding and
        conversion are looked into only when its text is long enough to
        need them).
        """
        remembered = self._label_ids.get
        known = self._known
        as_text = prefix is None
        texts = self.dialect.values_as_text
        qty_long, price_long = self.dialect.qty_text, self.dialect.price_text
        rows = []
        append = rows.append
        rounded = False
        for seq, (point, price) in enumerate(zip(points, prices), seq + 1):
            unit, qty, _, groupby, metadata, description = point
            contents = (unit, description, len(groupby), *groupby,
                        *groupby.values(), *metadata, *metadata.values())
            try:
                label = remembered(contents) or labels.get(contents)
                if label is None:
                    label = labels[contents] = _label_of(
                        point, known, new_labels, as_text)
            except TypeError:  # unhashable label values
                label = _label_of(point, known, new_labels, as_text)
            qty_text, price_text = str(qty), str(price)
            # More than SCALE decimals takes more than 30 characters (or an
            # exponent): round as the database will.
            if len(qty_text) > 12 or 'E' in qty_text:
                if len(qty_text) > 30 or 'E' in qty_text:
                    qty = stored(qty)
                    rounded = True
                qty_text = qty_long(qty)
            if len(price_text) > 12 or 'E' in price_text:
                if len(price_text) > 30 or 'E' in price_text:
                    price = stored(price)
                    rounded = True
                price_text = price_long(price)
            if as_text:
                append(f'{seq}\t{label}\t{qty_text}\t{price_text}\n')
            elif texts:
                append((*prefix, seq, label, qty_text, price_text))
            else:
                append((*prefix, seq, label, qty, price))
        return rows, rounded

    # -- labels -------------------------------------------------------------

    def store_labels(self, conn, new_labels):
        """Store the labels of ``new_labels`` that are not stored yet, after
        checking that those stored under the same ids are the same."""
        if new_labels:
            # Sorted: concurrent pushes lock shared labels in the same order.
            self.dialect.store_labels(conn, new_labels, sorted(new_labels),
                                      self._check_stored_labels)

    def _check_stored_labels(self, conn, new_labels, label_ids):
        """Return the ids among ``label_ids`` already stored; raise
        StorageError if one holds other labels than ``new_labels`` says."""
        if not label_ids:
            return set()
        select = sa.select(
            _LABELS.c.id, _LABELS.c.unit, _LABELS.c.description,
            reads.label_text(_LABELS.c.groupby),
            reads.label_text(_LABELS.c.metadata))
        found = set()
        for row in self.dialect.rows_of_ids(conn, select, _LABELS.c.id,
                                            label_ids):
            new = new_labels[row.id]
            label = Label((row.unit, row.description, row.groupby,
                           row.metadata))
            # Compared decoded: a database may write a number back in
            # another form (jsonb writes 1E+2 as 100).
            if label != new and not (
                    label[:2] == new[:2] and all(
                        _same_json(reads.decode_labels(stored_text),
                                   reads.decode_labels(new_text))
                        for stored_text, new_text in zip(label[2:],
                                                         new[2:]))):
                raise v2.StorageError(
                    f'label hash collision: stored {label.canonical}, new '
                    f'{new.canonical}')
            found.add(row.id)
        return found

    # -- totals -------------------------------------------------------------

    def store_totals(self, conn, totals):
        """Insert the ``rated_totals`` rows of ``totals`` (tuples of
        :data:`~.dialects.TOTAL_COLUMNS`, as :meth:`point_runs` makes them)
        in bulk, and add them to the daily sums."""
        if totals:
            self.dialect.store_totals(conn, totals, self._add_to_daily)

    def _add_to_daily(self, conn, totals):
        """Add ``totals`` (as :meth:`store_totals` takes them), summed by
        day, to the daily sums."""
        daily = {}
        with decimal.localcontext(v2.DECIMAL_CONTEXT):
            for _, type_, begin, _, scope, qty, price, points in totals:
                if scope is None:
                    continue
                key = (scope, type_, begin.date())
                day_qty, day_price, count, day_points = daily.get(
                    key, (0, 0, 0, 0))
                daily[key] = (day_qty + qty, day_price + price, count + 1,
                              day_points + points)
        self._apply_daily(conn, [
            {'scope_id': scope, 'type': type_, 'day': day, 'qty': qty,
             'price': price, 'totals': count, 'points': points}
            for (scope, type_, day), (qty, price, count, points) in sorted(
                daily.items())], 1)

    def insert_totals(self, conn, batch_ids, types=None):
        """Sum the stored points of ``batch_ids`` (of ``types``, ``None``:
        every type) into ``rated_totals``, in the database."""
        group = (_POINTS.c.batch_id, _POINTS.c.type, _POINTS.c.period_begin,
                 _POINTS.c.period_end, _POINTS.c.scope_id)
        self.dialect.prepare_summing(conn)
        for chunk in dialects.chunks(batch_ids):
            conditions = [_POINTS.c.batch_id.in_(chunk)]
            if types is not None:
                conditions.append(_POINTS.c.type.in_(types))
            conn.execute(_TOTALS.insert().from_select(
                [column.name for column in group] + ['qty', 'price',
                                                     'points'],
                sa.select(*group, *(
                    self.dialect.sum(column, type_=column.type)
                    for column in (_POINTS.c.qty, _POINTS.c.price)),
                    sa.func.count(),
                ).where(*conditions).group_by(*group)))
            totals = [_TOTALS.c.batch_id.in_(chunk)]
            if types is not None:
                totals.append(_TOTALS.c.type.in_(types))
            self._add_daily(conn, totals, 1)

    def drop_totals(self, conn, conditions):
        """Delete the ``rated_totals`` rows matching ``conditions``, and
        their sums from ``rated_daily_totals``."""
        self._add_daily(conn, conditions, -1)
        conn.execute(sa.delete(_TOTALS).where(*conditions))

    def _add_daily(self, conn, conditions, sign):
        """Add (``sign`` 1) or subtract (-1) the ``rated_totals`` rows
        matching ``conditions`` to or from ``rated_daily_totals``, summed
        by the database."""
        day = self.dialect.day(_TOTALS.c.period_begin).label('day')
        sums = conn.execute(sa.select(
            _TOTALS.c.scope_id, _TOTALS.c.type, day,
            *(self.dialect.sum(column, type_=column.type).label(column.name)
              for column in (_TOTALS.c.qty, _TOTALS.c.price)),
            sa.func.count().label('totals'),
            sa.func.sum(_TOTALS.c.points).label('points'),
        ).where(_TOTALS.c.scope_id.is_not(None), *conditions).group_by(
            _TOTALS.c.scope_id, _TOTALS.c.type, day).order_by(
            _TOTALS.c.scope_id, _TOTALS.c.type, day)).all()
        self._apply_daily(conn, [row._asdict() for row in sums], sign)

    def _apply_daily(self, conn, rows, sign):
        """Add (``sign`` 1) or subtract (-1) ``rows`` (dicts of the
        ``rated_daily_totals`` columns, sorted by key) to or from the
        stored daily sums, then their sums by month to the monthly ones,
        each by an atomic upsert (sorted: concurrent writers lock rows in
        the same order), which marks the daily rows not rolled; a row that
        then adds up no ``rated_totals`` row is deleted, a daily one with
        its sums by label (so that every row of ``rated_label_days`` has
        its daily row)."""
        if not rows:
            return
        if sign < 0:
            # copy_negate(): exact, where the context would round 48 digits.
            rows = [dict(row, qty=row['qty'].copy_negate(),
                         price=row['price'].copy_negate(),
                         totals=-row['totals'], points=-row['points'])
                    for row in rows]
        for chunk in dialects.chunks(rows):
            conn.execute(self.dialect.upsert_daily, chunk)
        months = _by_month(rows)
        for chunk in dialects.chunks(months):
            conn.execute(self.dialect.upsert_monthly, chunk)
        if sign < 0:
            monthly_key = sa.tuple_(_MONTHLY.c.month, _MONTHLY.c.scope_id,
                                    _MONTHLY.c.type)
            for chunk in dialects.chunks([
                    (row['month'], row['scope_id'], row['type'])
                    for row in months]):
                conn.execute(sa.delete(_MONTHLY).where(
                    _MONTHLY.c.totals <= 0, monthly_key.in_(chunk)))
            keys = [(row['day'], row['scope_id'], row['type'])
                    for row in rows]
            daily_key = sa.tuple_(_DAILY.c.day, _DAILY.c.scope_id,
                                  _DAILY.c.type)
            for chunk in dialects.chunks(keys):
                # Found first (most often none), then deleted by key: a
                # DELETE ... IN (SELECT) may read all of rated_label_days
                # on MariaDB.
                emptied = [tuple(row) for row in conn.execute(sa.select(
                    _DAILY.c.day, _DAILY.c.scope_id, _DAILY.c.type).where(
                    _DAILY.c.totals <= 0, daily_key.in_(chunk)))]
                if emptied:
                    conn.execute(sa.delete(_LABEL_DAYS).where(sa.tuple_(
                        _LABEL_DAYS.c.day, _LABEL_DAYS.c.scope_id,
                        _LABEL_DAYS.c.type).in_(emptied)))
                    conn.execute(sa.delete(_DAILY).where(
                        daily_key.in_(emptied)))

    def roll_day(self, conn, day):
        """Sum the points with a scope of the UTC ``day`` (a date) by
        scope, type and label into ``rated_label_days``, in place of the
        day's rows there, and mark the day's daily rows rolled, in the
        database; return the number of rows summed into (a transaction of
        :meth:`.dialects.Dialect.rolling`).

        The daily rows are locked (in key order, as writers lock them) and
        marked first, until the commit: a write that changes the day's
        points also updates their daily row, so it either committed
        before and its points are summed here, or waits and marks the row
        not rolled once this commits (its points, not committed yet, are
        not summed). A daily
        row written meanwhile for the first time is not marked: its day is
        not read from these sums (see :meth:`.reads.Reader.sums`) until
        rolled again.
        """
        conn.execute(sa.select(_DAILY.c.type).where(
            _DAILY.c.day == day).order_by(
            _DAILY.c.scope_id, _DAILY.c.type).with_for_update()).all()
        conn.execute(sa.update(_DAILY).where(_DAILY.c.day == day).values(
            rolled=sa.true()))
        conn.execute(sa.delete(_LABEL_DAYS).where(_LABEL_DAYS.c.day == day))
        begin = datetime.datetime.combine(day, datetime.time())
        group = (_POINTS.c.scope_id, _POINTS.c.type, _POINTS.c.label_id)
        conn.execute(_LABEL_DAYS.insert().from_select(
            ['day', 'scope_id', 'type', 'label_id', 'qty', 'price',
             'points'],
            sa.select(sa.literal(day, sa.Date), *group, *(
                self.dialect.sum(column, type_=column.type)
                for column in (_POINTS.c.qty, _POINTS.c.price)),
                sa.func.count(),
            ).where(_POINTS.c.period_begin >= begin,
                    _POINTS.c.period_begin < begin + datetime.timedelta(
                        days=1),
                    _POINTS.c.scope_id.is_not(None)).group_by(*group)))
        # Counted (SQLAlchemy gives no row count of an INSERT ... SELECT
        # on PostgreSQL).
        return conn.execute(sa.select(sa.func.count()).where(
            _LABEL_DAYS.c.day == day)).scalar()

    def resum_months(self, conn, before):
        """Make the monthly sums those of the daily rows left once the
        partitions of the days before the date ``before`` are dropped:
        delete the months wholly before it and sum the month holding it
        again from its daily rows, in the database (its daily rows locked
        first, in key order, as writers lock them)."""
        month = before.replace(day=1)
        conn.execute(sa.delete(_MONTHLY).where(_MONTHLY.c.month < month))
        if before == month:
            return
        days = (_DAILY.c.day >= month,
                _DAILY.c.day < timeutils.next_month(month))
        conn.execute(sa.select(_DAILY.c.type).where(*days).order_by(
            _DAILY.c.scope_id, _DAILY.c.type, _DAILY.c.day).with_for_update(
        )).all()
        conn.execute(sa.delete(_MONTHLY).where(_MONTHLY.c.month == month))
        conn.execute(_MONTHLY.insert().from_select(
            ['month', 'scope_id', 'type', 'qty', 'price', 'totals',
             'points'],
            sa.select(sa.literal(month, sa.Date), _DAILY.c.scope_id,
                      _DAILY.c.type, *(
                          self.dialect.sum(column, type_=column.type)
                          for column in (_DAILY.c.qty, _DAILY.c.price)),
                      sa.func.sum(_DAILY.c.totals),
                      sa.func.sum(_DAILY.c.points)).where(*days).group_by(
                _DAILY.c.scope_id, _DAILY.c.type)))

    # -- deletes ------------------------------------------------------------

    def delete_batches(self, conn, query):
        """Delete whole batches: the scope and time of ``query`` only."""
        if query.scopes is None:
            conn.execute(sa.delete(_POINTS).where(
                *reads.batch_conditions(query, _POINTS)))
            self.drop_totals(conn, reads.batch_conditions(query, _TOTALS))
            conn.execute(sa.delete(_BATCHES).where(
                *reads.batch_conditions(query)))
            return
        # Ids first, then primary-key ranges: fast on every database
        # (MariaDB does not turn DELETE ... IN (SELECT) into a join).
        if query.begin is not None and query.end is not None:
            # A period's (replace): the statement is built once.
            ids = conn.execute(_PERIOD_BATCHES, {
                'begin': timeutils.to_db(query.begin),
                'end': timeutils.to_db(query.end),
                'scopes': query.scopes}).scalars().all()
        else:
            ids = conn.execute(sa.select(_BATCHES.c.id).where(
                *reads.batch_conditions(query))).scalars().all()
        self.delete_ids(conn, ids, query.begin, query.end)

    def delete_ids(self, conn, ids, begin=None, end=None):
        """Delete the batches ``ids``, their points, their totals and the
        totals' daily sums. ``begin`` and ``end`` (``None``: unbounded)
        bound the batches' ``period_begin`` when known: the statements
        then name them, so that PostgreSQL reads only the partitions of
        that time (see :mod:`.partitions`)."""
        within = v2.Query(begin=begin, end=end)
        for chunk in dialects.chunks(ids):
            conn.execute(sa.delete(_POINTS).where(
                _POINTS.c.batch_id.in_(chunk),
                *reads.batch_conditions(within, _POINTS)))
            self.drop_totals(conn, [
                _TOTALS.c.batch_id.in_(chunk),
                *reads.batch_conditions(within, _TOTALS)])
            conn.execute(sa.delete(_BATCHES).where(
                _BATCHES.c.id.in_(chunk), *reads.batch_conditions(within)))


def _by_month(rows):
    """The dicts of ``rated_monthly_totals`` columns summing ``rows``
    (dicts of ``rated_daily_totals`` columns) by month, sorted by key."""
    months = {}
    with decimal.localcontext(v2.DECIMAL_CONTEXT):
        for row in rows:
            key = (row['day'].replace(day=1), row['scope_id'], row['type'])
            found = months.get(key)
            months[key] = row if found is None else dict(
                found, qty=found['qty'] + row['qty'],
                price=found['price'] + row['price'],
                totals=found['totals'] + row['totals'],
                points=found['points'] + row['points'])
    return [{'month': month, 'scope_id': scope_id, 'type': type_,
             'qty': row['qty'], 'price': row['price'],
             'totals': row['totals'], 'points': row['points']}
            for (month, scope_id, type_), row in sorted(months.items())]


def _label_of(point, known, new_labels, as_text=False):
    """Return the label id of ``point`` (as text with ``as_text``),
    adding its labels to ``new_labels`` unless ``known``."""
    label = Label.of(point.unit, point.description, point.groupby,
                     point.metadata)
    label_id = label_hash(label.canonical)
    if label_id not in known:
        seen = new_labels.setdefault(label_id, label)
        if seen != label:
            raise v2.StorageError(
                f'label hash collision: {seen.canonical} and '
                f'{label.canonical}')
    return str(label_id) if as_text else label_id
