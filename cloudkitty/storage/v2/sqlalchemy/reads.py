"""The reads of the ``sqlalchemy`` backend: the WHERE clauses of a query,
pages of points, grouped totals and the pages of groups.

:class:`Reader` holds them; what differs between databases is asked of its
:class:`~.dialects.Dialect`. A ``total`` reads the fewest rows that hold
the sums it needs: the points, the per-batch sums, the daily sums or the
daily sums by label (see :meth:`Reader.sums`).
"""

import datetime
import decimal
import json

import sqlalchemy as sa

from cloudkitty import dataframe
from cloudkitty.storage import v2
from cloudkitty.storage.v2.sqlalchemy import models
from cloudkitty.storage.v2.sqlalchemy import pages
from cloudkitty import timeutils

_UTC = datetime.timezone.utc
_DAY = datetime.timedelta(days=1)
_POINTS = models.RatedPoint.__table__
_LABELS = models.RatedLabel.__table__
_BATCHES = models.RatedBatch.__table__
_TOTALS = models.RatedTotal.__table__
_DAILY = models.RatedDailyTotal.__table__
_MONTHLY = models.RatedMonthlyTotal.__table__
_LABEL_DAYS = models.RatedLabelDay.__table__
#: The order of the points a ``retrieve`` returns.
_ORDER = ('period_begin', 'period_end', 'type', 'batch_id', 'seq')

# Labels are read as their JSON text and decoded here, numbers as Decimals:
# a number comes back with the digits it was pushed with (1.10 stays 1.10,
# 12345678901234567890.5 keeps every digit), where a float would round it;
# booleans, nulls, strings, lists and objects keep their JSON types.
# PostgreSQL's jsonb keeps a number's value and scale but writes it in
# positional notation (1E+2 comes back as 100).
_LABEL_DECODER = json.JSONDecoder(parse_float=decimal.Decimal)


def label_text(column):
    """``column`` (groupby or metadata) selected as its JSON text."""
    return sa.cast(column, sa.Text).label(column.name)


def decode_labels(text):
    """The labels of JSON ``text`` (``None``: none), numbers as Decimals."""
    return {} if text is None else _LABEL_DECODER.decode(text)


def batch_conditions(query, table=_BATCHES):
    """WHERE clauses on the window and scopes of ``query``; ``table`` is
    ``rated_batches``, ``rated_points`` or ``rated_totals`` (all have the
    columns)."""
    conditions = []
    if query.begin is not None:
        conditions.append(table.c.period_begin >= timeutils.to_db(query.begin))
    if query.end is not None:
        conditions.append(table.c.period_begin < timeutils.to_db(query.end))
    if query.scopes is not None:
        conditions.append(table.c.scope_id.in_(query.scopes))
    return conditions


def _total_conditions(query, table=_TOTALS):
    """WHERE clauses on ``rated_totals`` selecting ``query`` (which has no
    label filter)."""
    conditions = batch_conditions(query, table)
    if query.types is not None:
        conditions.append(table.c.type.in_(query.types))
    return conditions


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


def _day_conditions(query, table=_DAILY):
    """WHERE clauses on ``table`` (``rated_daily_totals`` or
    ``rated_label_days``) selecting the whole UTC days of the window of
    ``query`` (see :func:`_whole_days`), its scopes and types."""
    return _sums_conditions(query, table.c.day, *_whole_days(query))


def _sums_conditions(query, column, first, last):
    """WHERE clauses on the table of sums of ``column`` (its day or
    month) selecting ``first <= column < last`` (``None``: unbounded), and
    the scopes and types of ``query``."""
    table = column.table
    conditions = []
    if first is not None:
        conditions.append(column >= first)
    if last is not None:
        conditions.append(column < last)
    if query.scopes is not None:
        conditions.append(table.c.scope_id.in_(query.scopes))
    if query.types is not None:
        conditions.append(table.c.type.in_(query.types))
    return conditions


def _whole_months(first, last):
    """``(months, days)``: the whole UTC months among the days ``[first,
    last)`` (``None``: unbounded) as the range ``(first day, first day
    after)`` (``None`` when there is no whole month; ``None`` in it:
    unbounded), and the ranges ``(first, last)`` of the days outside
    them."""
    start = first
    if first is not None and first.day != 1:
        start = timeutils.next_month(first.replace(day=1))
    stop = None if last is None else last.replace(day=1)
    if None not in (start, stop) and start >= stop:
        return None, [(first, last)]
    days = []
    if first is not None and first < start:
        days.append((first, start))
    if last is not None and stop < last:
        days.append((stop, last))
    return (start, stop), days


def _month_conditions(query, months):
    """WHERE clauses on ``rated_monthly_totals`` selecting the range
    ``months`` of :func:`_whole_months` (one month: as equal to it, see
    :func:`_one_month`), and the scopes and types of ``query``."""
    if _one_month(months):
        return [_MONTHLY.c.month == months[0],
                *_sums_conditions(query, _MONTHLY.c.month, None, None)]
    return _sums_conditions(query, _MONTHLY.c.month, *months)


def _in_key_order(query):
    """Whether the sums of the whole days of ``query`` are one range of
    one table's primary key in scope and type order: the daily sums alone
    (no whole month), or one month's sums alone."""
    months, days = _whole_months(*_whole_days(query))
    return months is None or not days and _one_month(months)


def _one_month(months):
    """Whether the range ``(first day, first day after)`` of whole months
    is one month: its sums are read as equal to it, so that they come in
    the primary key's scope and type order."""
    start, stop = months
    return None not in months and stop == timeutils.next_month(start)


def _day_edges(query):
    """``(whole, edges)``: the bounds of the whole UTC days inside the
    window of ``query`` (``None``: unbounded), and the parts of the window
    outside them, as ``(begin, end)`` pairs."""
    first_day, last_day = _whole_days(query)
    whole = list(_aware(first_day, last_day))
    edges = []
    if first_day is not None and query.begin < whole[0]:
        edges.append((query.begin, whole[0]))
    if last_day is not None and whole[1] < query.end:
        edges.append((whole[1], query.end))
    return whole, edges


def _split_days(first, last, unrolled):
    """``(rolled, unrolled)``: the days ``[first, last)`` (``None``:
    unbounded) as ranges ``(begin, end)`` of dates, those of the sorted
    dates ``unrolled`` and the others."""
    rolled, rest = [], []
    start = first
    for day in unrolled:
        if start is None or start < day:
            rolled.append((start, day))
        if rest and rest[-1][1] == day:
            rest[-1] = (rest[-1][0], day + _DAY)
        else:
            rest.append((day, day + _DAY))
        start = day + _DAY
    if start is None or last is None or start < last:
        rolled.append((start, last))
    return rolled, rest


def _midnight(day, tzinfo=None):
    """The midnight starting the date ``day`` (``None`` stays), naive UTC
    or in ``tzinfo``."""
    return None if day is None else datetime.datetime.combine(
        day, datetime.time(), tzinfo)


def _midnights(ranges):
    """``ranges`` of dates as ranges of naive UTC midnights."""
    return [tuple(map(_midnight, pair)) for pair in ranges]


def _aware(*days):
    """The aware UTC midnights of the dates ``days`` (``None`` stays)."""
    return tuple(_midnight(day, _UTC) for day in days)


def _in_ranges(column, ranges):
    """``column`` is in one of ``ranges``, ``(begin, end)`` pairs
    (``None``: unbounded); false if there are none."""
    either = []
    for begin, end in ranges:
        within = []
        if begin is not None:
            within.append(column >= begin)
        if end is not None:
            within.append(column < end)
        either.append(sa.and_(sa.true(), *within))
    return sa.or_(sa.false(), *either)


class Reader:
    """The reads of one storage.

    :param dialect: the storage's :class:`~.dialects.Dialect`, which opens
        the read transactions.
    """

    def __init__(self, dialect):
        self.dialect = dialect

    def label_match(self, query, lookup=False):
        """WHERE clauses on ``rated_labels`` of the label filters of
        ``query`` (empty: it has none); ``lookup``: of a statement that
        reads the labels' ids alone (see
        :meth:`.dialects.Dialect.label_lookup`)."""
        match = (self.dialect.label_lookup if lookup
                 else self.dialect.label_filter)
        return [match(key, values) for key, values in query.labels]

    def conditions(self, query):
        """WHERE clauses on ``rated_points`` selecting ``query``."""
        conditions = _total_conditions(query, _POINTS)
        if query.scopes is not None:
            # The scopes again, through the batches' index: lets the
            # database read only the scope's primary-key ranges.
            conditions.append(_POINTS.c.batch_id.in_(
                sa.select(_BATCHES.c.id).where(*batch_conditions(query))))
        if query.labels:
            conditions.append(_POINTS.c.label_id.in_(sa.select(
                _LABELS.c.id).where(*self.label_match(query))))
        return conditions

    def retrieve(self, query, offset, limit):
        """``(total, points)``: see ``BaseStorage._retrieve``.

        With a ``limit``, no statement counts or sorts every matching
        point. Without label filters, the stretch of points holding the
        page is found by walking ``rated_totals`` in the points' order
        (:class:`.pages.Walk`), and ``total`` is read from the point
        counts of the daily and per-batch sums (see :meth:`sums`).

        With label filters (:meth:`_labelled_page`), the whole UTC days of
        the window that are rolled (see :func:`.maintenance.roll`) are
        counted from ``rated_label_days``, the other parts of the window
        walked as above, counting the matching points of each stretch;
        ``total`` is

        - exact when every part of the window was counted: its days are
          rolled (but for the last parts, walked to their end to fill the
          page), or the page is the last one, or close to it;
        - otherwise an upper bound: the matching points counted, plus
          the number of points, whatever their labels, of the window's
          parts past the page that are not rolled. A page that is not the
          last one has ``limit`` points; one past the last is empty and
          its ``total`` is exact.

        ``total`` is 0 when and only when no point matches.
        """
        with self.dialect.snapshot({}) as conn:
            if limit is None:
                rows = conn.execute(self._page_statement(
                    self.conditions(query))).all()
                total = len(rows)
            elif query.labels:
                total, rows = self._labelled_page(conn, query, offset, limit)
            else:
                walk, rows = self._walked_page(conn, query, None, offset,
                                               limit)
                total = (walk.counted if walk.exhausted
                         else self._point_count(conn, query))
        # Points of one resource share their label row: decoded once.
        labels = {}
        points = []
        for row in rows:
            groupby_metadata = labels.get(row.label_id)
            if groupby_metadata is None:
                groupby_metadata = labels[row.label_id] = (
                    decode_labels(row.groupby), decode_labels(row.metadata))
            points.append((
                timeutils.from_db(row.period_begin), timeutils.from_db(row.period_end), row.type,
                dataframe.DataPoint(
                    row.unit, v2.normalize_decimal(row.qty),
                    v2.normalize_decimal(row.price), *groupby_metadata,
                    row.description)))
        return total, points

    def _walked_page(self, conn, bounds, labels, offset, limit):
        """``(walk, rows)``: the rows of the page ``[offset, offset +
        limit)`` of the points of ``bounds`` (a query without label
        filters) matching ``labels`` (a WHERE clause on ``rated_points``,
        ``None``: all), found by ``walk``, the :class:`.pages.Walk` of
        them that walked as far as the page's end (the window's
        scopes and types; the walk restricts the batches itself)."""
        points = _total_conditions(bounds, _POINTS)
        walk = pages.Walk(conn, _total_conditions(bounds), labels, points,
                          self.dialect.in_ids)
        restriction, skip = walk.find(offset, limit)
        if restriction is None:
            return walk, []
        if labels is not None:
            points.append(labels)
        return walk, conn.execute(self._page_statement(
            [*restriction, *points], offset - skip, limit)).all()

    def _labelled_page(self, conn, query, offset, limit):
        """``(total, rows)`` of :meth:`retrieve` for ``query``, which has
        label filters, and a ``limit``.

        The parts of the window (:meth:`_parts`) are taken in order: a
        rolled day's matching points are counted already, and its page
        read from the batches of the scopes and types its sums by label
        name; another part is walked (:class:`.pages.Walk`). Parts are
        read until the page is full; those after it are counted when
        rolled, bounded by their point count when not.
        """
        ids = self._label_ids(conn, query)
        if ids == []:
            return 0, []
        labels = self._among(_POINTS.c.label_id, ids)
        rows = []
        counted = 0  # the matching points of the parts known
        unknown = []  # the parts past the page not counted
        for begin, end, count, pairs in self._parts(conn, query, ids):
            bounds = v2.Query(begin, end, query.types, query.scopes)
            skip = max(offset - counted, 0)
            need = limit - len(rows)
            if count is not None:
                if need and skip < count:
                    rows += conn.execute(self._page_statement(
                        [*self._day_batches(conn, begin, end, pairs),
                         *_total_conditions(bounds, _POINTS), labels],
                        skip, need)).all()
                counted += count
            elif need:
                walk, page = self._walked_page(conn, bounds, labels, skip,
                                               need)
                rows += page
                if walk.exhausted:
                    counted += walk.counted
                else:
                    # The page is full before the part's end.
                    unknown.append(bounds)
            else:
                unknown.append(bounds)
        return counted + sum(self._point_count(conn, bounds)
                             for bounds in unknown), rows

    def _label_ids(self, conn, query):
        """The ids of the labels matching the label filters of ``query``:
        a list where :meth:`.dialects.Dialect.in_ids` takes any number of
        them, else a subquery."""
        if not self.dialect.labels_resolved:
            return sa.select(_LABELS.c.id).where(*self.label_match(query))
        return conn.execute(sa.select(_LABELS.c.id).where(
            *self.label_match(query, lookup=True))).scalars().all()

    def _among(self, column, ids):
        """``column`` is one of ``ids`` (see :meth:`_label_ids`)."""
        if isinstance(ids, list):
            return self.dialect.in_ids(column, ids)
        return column.in_(ids)

    def _parts(self, conn, query, ids):
        """The parts of the window of ``query`` (which has label filters,
        matched by the labels ``ids``, see :meth:`_label_ids`), in the
        points' order, as ``(begin, end, count, pairs)``: ``begin`` and
        ``end`` aware (``None``: unbounded); for a rolled UTC day holding
        matching points, their ``count`` and the ``(scope, type)`` pairs
        that hold them, from ``rated_label_days``; for a part to walk,
        ``None`` and ``None``. A rolled day without matching points is no
        part.

        Days are rolled as :meth:`_unrolled_days` says, but for those holding
        points without scope (which have no sums by label): walked, with
        the days not rolled and the ragged ends of the window, adjacent
        ones as one part.
        """
        found = self._unrolled_days(conn, query)
        if found is None:
            return [(query.begin, query.end, None, None)]
        first, last, unrolled = found
        rolled = _split_days(first, last, unrolled)[0]
        unrolled = set(unrolled)
        if query.scopes is None:
            unrolled.update(conn.execute(sa.select(
                self.dialect.day(_TOTALS.c.period_begin)).where(
                _TOTALS.c.scope_id.is_(None),
                _in_ranges(_TOTALS.c.period_begin, _midnights(rolled)),
            ).distinct()).scalars())
        rolled, walked = _split_days(first, last, sorted(unrolled))
        counts = {}
        for day, scope, type_, count in conn.execute(sa.select(
                _LABEL_DAYS.c.day, _LABEL_DAYS.c.scope_id,
                _LABEL_DAYS.c.type, sa.func.sum(_LABEL_DAYS.c.points),
        ).where(self._among(_LABEL_DAYS.c.label_id, ids),
                _in_ranges(_LABEL_DAYS.c.day, rolled),
                *_day_conditions(query, _LABEL_DAYS)).group_by(
                _LABEL_DAYS.c.day, _LABEL_DAYS.c.scope_id,
                _LABEL_DAYS.c.type)):
            day_count, pairs = counts.setdefault(day, [0, set()])
            counts[day][0] = day_count + int(count)
            pairs.add((scope, type_))
        parts = [(*_aware(day, day + _DAY), count, pairs)
                 for day, (count, pairs) in counts.items()]
        parts += [(*pair, None, None) for pair in _day_edges(query)[1]]
        parts += [(*_aware(*pair), None, None) for pair in walked]
        parts.sort(key=lambda part: (part[0] is not None, part[0]))
        merged = []
        for part in parts:
            if (merged and part[2] is None and merged[-1][2] is None
                    and merged[-1][1] == part[0]):
                merged[-1] = (merged[-1][0], part[1], None, None)
            else:
                merged.append(part)
        return merged

    def _day_batches(self, conn, begin, end, pairs):
        """WHERE clauses on ``rated_points``: the batches of the period
        ``[begin, end)`` (aware) of the scopes and types of ``pairs``
        (none past :data:`.pages.BATCHES`: the other clauses select the
        same points)."""
        batches = conn.execute(sa.select(_TOTALS.c.batch_id).where(
            *_total_conditions(v2.Query(
                begin, end, sorted({type_ for _, type_ in pairs}),
                sorted({scope for scope, _ in pairs}))),
        ).distinct()).scalars().all()
        if len(batches) > pages.BATCHES:
            return []
        return [self.dialect.in_ids(_POINTS.c.batch_id, sorted(batches))]

    @staticmethod
    def _page_statement(conditions, offset=0, limit=None):
        """The points selected by ``conditions`` in the points' order, from
        ``offset`` (``limit`` of them, ``None``: all), with their labels."""
        order = [_POINTS.c[name] for name in _ORDER]
        page = sa.select(
            *order, _POINTS.c.label_id, _POINTS.c.qty, _POINTS.c.price,
        ).where(*conditions).order_by(*order)
        if limit is not None:
            page = page.offset(offset).limit(limit)
        page = page.subquery('page')
        return sa.select(
            page, _LABELS.c.unit, _LABELS.c.description,
            label_text(_LABELS.c.groupby), label_text(_LABELS.c.metadata),
        ).select_from(page.outerjoin(
            _LABELS, _LABELS.c.id == page.c.label_id)).order_by(
            *(page.c[c.name] for c in order))

    def _point_count(self, conn, bounds):
        """The number of points of the window, scopes and types of
        ``bounds`` (a query without label filters), from the sums'
        counts."""
        table, conditions = self.sums(conn, bounds, self._source(bounds, []))
        return conn.execute(sa.select(sa.func.coalesce(sa.func.sum(
            table.c.points), 0)).where(*conditions)).scalar()

    # -- totals -------------------------------------------------------------

    @staticmethod
    def _source(query, keys):
        """The table that holds the sums of ``query`` grouped by ``keys``:
        ``_POINTS``, ``_LABEL_DAYS``, ``_TOTALS`` or ``_DAILY`` (see
        :meth:`sums`)."""
        kinds = {key.kind for key in keys}
        if query.labels or 'label' in kinds:
            return _POINTS if 'time' in kinds else _LABEL_DAYS
        first_day, last_day = _whole_days(query)
        if 'time' in kinds or (None not in (first_day, last_day)
                               and first_day >= last_day):
            return _TOTALS
        return _DAILY

    def sums(self, conn, query, source):
        """``(table, WHERE clauses)`` of the rows to sum for ``query`` from
        ``source`` (:meth:`_source`): the fewest that hold the points' sums.

        The points themselves when labels are filtered or grouped on with
        periods; without periods, the sums by label of the rolled days
        and the rest from the points (:meth:`_label_sums`); the per-batch
        sums when periods are grouped on; otherwise the whole UTC months
        of the window from ``rated_monthly_totals``, its other whole UTC
        days from ``rated_daily_totals``, and the rest, if any, from
        ``rated_totals``, in a union with the columns ``scope_id``,
        ``type``, ``qty``, ``price`` and ``points``. The monthly (or daily)
        sums alone are read in key order from their primary key, so that
        the first page of groups by scope and type costs no sort of every
        group: a month's summary reads one row per scope and type.
        """
        if source is _POINTS:
            return _POINTS, self.conditions(query)
        if source is _LABEL_DAYS:
            return self._label_sums(conn, query)
        if source is _TOTALS:
            return _TOTALS, _total_conditions(query)
        columns = ('scope_id', 'type', 'qty', 'price', 'points')
        months, days = _whole_months(*_whole_days(query))
        sources = [(_DAILY, _sums_conditions(query, _DAILY.c.day, *pair))
                   for pair in days]
        if months is not None:
            sources.insert(0, (_MONTHLY, _month_conditions(query, months)))
        parts = [sa.select(*(table.c[c] for c in columns)).where(*where)
                 for table, where in sources]

        def outside(begin, end, *more):
            within = v2.Query(begin, end, query.types, query.scopes)
            parts.append(sa.select(*(_TOTALS.c[c] for c in columns)).where(
                *_total_conditions(within), *more))

        whole, edges = _day_edges(query)
        for begin, end in edges:
            outside(begin, end)
        unscoped = [_TOTALS.c.scope_id.is_(None)]
        if query.scopes is None and conn.execute(sa.select(sa.exists().where(
                *unscoped, *batch_conditions(v2.Query(*whole),
                                             _TOTALS)))).scalar():
            # Points stored without a scope have no daily sums.
            outside(*whole, *unscoped)
        if len(parts) == 1:
            return sources[0]
        return sa.union_all(*parts).subquery('sums'), []

    @staticmethod
    def _unrolled_days(conn, query):
        """``(first, last, unrolled)``: the whole UTC days ``[first,
        last)`` of the window of ``query`` (see :func:`_whole_days`) and,
        sorted, those with a daily row of its scopes and types not rolled
        (see :func:`.maintenance.roll`); ``None`` when the window has no
        whole day or none of them is rolled.

        Both read along the index on (rolled, day): a day without daily
        rows has no points with a scope, and counts as rolled.
        """
        first, last = _whole_days(query)
        if None not in (first, last) and first >= last:
            return None
        days = _day_conditions(query)
        if not conn.execute(sa.select(sa.exists().where(
                _DAILY.c.rolled == sa.true(), *days))).scalar():
            return None
        return first, last, conn.execute(sa.select(_DAILY.c.day).where(
            _DAILY.c.rolled == sa.false(), *days).distinct().order_by(
            _DAILY.c.day)).scalars().all()

    def _label_sums(self, conn, query):
        """``(table, WHERE clauses)`` of the rows to sum for ``query``, a
        total by labels (grouped or filtered) without periods: the points
        (``rated_points``), or a union of sums by label id with the
        columns ``scope_id``, ``type``, ``label_id``, ``qty`` and
        ``price``: those of the points by scope, type and label, and the
        rows of ``rated_label_days`` as they are (one per day besides).

        The whole UTC days of the window where every daily row of the
        query's scopes and types is rolled (see
        :func:`.maintenance.roll`) are read from ``rated_label_days``:
        each of their rows there has its daily row, rolled (a write marks
        the daily rows it changes not rolled, and deletes the sums by
        label of those it deletes). The other days, the
        ragged ends of the window and the points without scope of the
        rolled days (which have no daily rows) are read from the points,
        as a few ranges of ``period_begin``. With no rolled day, this is
        the points alone.
        """
        found = self._unrolled_days(conn, query)
        if found is None:
            return _POINTS, self.conditions(query)
        rolled, unrolled = _split_days(*found)
        ranges = [(timeutils.to_db(begin), timeutils.to_db(end))
                  for begin, end in _day_edges(query)[1]]
        ranges += _midnights(unrolled)
        points = _in_ranges(_POINTS.c.period_begin, ranges)
        rolled_times = _midnights(rolled)
        if query.scopes is None and conn.execute(sa.select(
                sa.exists().where(_TOTALS.c.scope_id.is_(None), _in_ranges(
                    _TOTALS.c.period_begin, rolled_times)))).scalar():
            points = sa.or_(points, sa.and_(_POINTS.c.scope_id.is_(None),
                                            _in_ranges(_POINTS.c.period_begin,
                                                       rolled_times)))
        columns = ('scope_id', 'type', 'label_id', 'qty', 'price')
        kept = [_in_ranges(_LABEL_DAYS.c.day, rolled),
                *_day_conditions(query, _LABEL_DAYS)]
        if query.labels:
            # Not along the index on label_id (+ 0 hides it), which the
            # planner, expecting far fewer matching labels than a filter
            # such as a flavor has, would probe once per label: the rows of
            # the days are read and joined whole.
            kept.append((_LABEL_DAYS.c.label_id + 0).in_(sa.select(
                _LABELS.c.id).where(*self.label_match(query))))
        group = [_POINTS.c[c] for c in columns[:3]]
        return sa.union_all(
            sa.select(*group, *(
                self.dialect.sum(column, type_=column.type).label(column.name)
                for column in (_POINTS.c.qty, _POINTS.c.price))).where(
                *self.conditions(query), points).group_by(*group),
            sa.select(*(_LABEL_DAYS.c[c] for c in columns)).where(*kept),
        ).subquery('sums'), []

    def total(self, query, keys, fields, offset, limit):
        """``(number of groups, rows)``: see ``BaseStorage._total``."""
        source = self._source(query, keys)
        settings = {}
        if source is _DAILY and not _day_edges(query)[1] and [
                key.kind for key in keys] in (['scope'], ['scope', 'type']) \
                and _in_key_order(query):
            # Groups on a prefix of the primary key of one table of sums:
            # counted along the index, which the planner, expecting far
            # fewer groups than there are, would trade for a slower hash of
            # every row.
            settings['enable_hashagg'] = 'off'
        with self.dialect.aggregating(settings) as conn:
            return self._grouped_total(conn, query, keys, fields, offset,
                                       limit, source)

    def _grouped_total(self, conn, query, keys, fields, offset, limit,
                       source):
        """:meth:`total` on the connection ``conn``."""
        label_keys = [key.name for key in keys if key.kind == 'label']
        table, conditions = self.sums(conn, query, source)
        total_sum = self.dialect.sum
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
                total_sum(sums[f.source], type_=sums[f.source].type).label(
                    f'v{i}') for i, f in enumerate(fields)),
            ).where(*conditions).group_by(*facts)
        else:
            if table is _POINTS:
                # Sum by label id first, then join the (far fewer) partial
                # sums to their labels and group by the label values.
                partial = sa.select(
                    *facts, table.c.label_id,
                    *(total_sum(column, type_=column.type).label(name)
                      for name, column in sums.items()),
                ).where(*conditions).group_by(*facts, table.c.label_id
                                              ).subquery('partial')
                outer_facts = [partial.c[f.name] for f in facts]
            else:
                # Sums by label id already (:meth:`_label_sums`): joined as
                # they are, which costs less than summing them again.
                partial, outer_facts = table, facts
            values = [self.dialect.bytewise(self.dialect.label_value(
                _LABELS.c.groupby, name)).label(f'l{i}')
                for i, name in enumerate(label_keys)]
            grouped = sa.select(*outer_facts, *values, *(
                total_sum(partial.c[f.source],
                          type_=sums[f.source].type).label(f'v{i}')
                for i, f in enumerate(fields)),
            ).select_from(partial.outerjoin(
                _LABELS, _LABELS.c.id == partial.c.label_id)
            ).group_by(*outer_facts, *values)
        by_points = source in (_POINTS, _LABEL_DAYS)
        if by_points:
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
        if by_points and rows:
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
                values[i] = timeutils.from_db(values[i])
            output.append(tuple(values))
        return total, output

    def _points_page(self, grouped, keys, facts, label_keys, fields):
        """``(page statement, statement of every group)`` of a total over
        the points, ``grouped`` by ``facts`` and ``label_keys``.

        The page carries the number of groups (``n_groups``, a window
        count): counting apart would group a million points twice.
        """
        grouped = self.dialect.materialized(grouped, 'grouped')
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
