"""Where a page of points starts and ends, found without counting every
matching point: :class:`Walk`.

Points are read in the order ``(period_begin, period_end, type, batch_id,
seq)``. Each ``rated_totals`` row stands for the points of one batch and
type, which are consecutive in that order, and holds their number: walking
those rows in the same order, from the start of the window, finds which
batches hold the points ``[offset, offset + limit)``, after reading about
as many rows as the page needs. With label filters, the matching points
of each stretch of rows are counted instead, a stretch at a time, each
four times as long as the one before, up to :data:`LAST` rows; past them,
the rest of the window is counted in one statement. The points read are
those the page needs, or a few times more, up to every point of the
window for a filter that matches few.
"""

import sqlalchemy as sa

from cloudkitty.storage.v2.sqlalchemy import models

_POINTS = models.RatedPoint.__table__
_TOTALS = models.RatedTotal.__table__
#: The order of the points, without ``seq``: a ``rated_totals`` row's key.
_KEY = ('period_begin', 'period_end', 'type', 'batch_id')
#: ``rated_totals`` rows of the first stretch.
FIRST = 16
#: Most batch ids named in a statement.
BATCHES = 5000
#: With label filters, the longest stretch of rows walked: past it, the
#: rest of the window is counted at once.
LAST = 4096


def _key(table):
    return sa.tuple_(*(table.c[name] for name in _KEY))


def _key_value(row):
    return sa.tuple_(*(sa.literal(row[i], _TOTALS.c[name].type)
                       for i, name in enumerate(_KEY)))


class Walk:
    """A walk along the ``rated_totals`` rows of a query, in the points'
    order.

    :param conn: the connection of the read (one snapshot).
    :param totals: WHERE clauses on ``rated_totals`` selecting the window,
        scopes and types of the query.
    :param labels: WHERE clause on ``rated_points`` of the query's label
        filters (``None``: none; the counts of the ``rated_totals`` rows
        are then read, not counted).
    :param points: WHERE clauses on ``rated_points`` selecting the window,
        scopes and types of the query.
    :param in_ids: ``in_ids(column, ids)``, the expression "``column`` is
        one of ``ids``" (:meth:`.dialects.Dialect.in_ids`).
    """

    def __init__(self, conn, totals, labels, points, in_ids):
        self._conn = conn
        self._in_ids = in_ids
        self._totals = totals
        self._labels = labels
        self._points = points
        #: Matching points in the rows walked so far.
        self.counted = 0
        #: Whether the walk reached the last row: ``counted`` is then the
        #: number of every matching point.
        self.exhausted = False

    def find(self, offset, limit):
        """``(WHERE clauses, skip)``: clauses on ``rated_points`` that,
        added to the query's, select a stretch of points in which the
        page ``[offset, offset + limit)`` starts at ``offset - skip``
        (``None``: no point is at ``offset``). Walks until ``offset +
        limit`` points are counted, or to the end."""
        needed = offset + limit
        # (lower bound, upper bound, batch ids, points before, count); a
        # bound is (row, inclusive), None: open.
        pieces = []
        after = None
        size = FIRST
        while self.counted < needed:
            if self._labels is not None and size > LAST:
                # The rest of the window at once: no more rows to read.
                bounds = ((after, False), None, None)
                count = self._count(bounds)
                pieces.append((*bounds, self.counted, count))
                self.counted += count
                self.exhausted = True
                break
            rows = self._rows(after, size)
            if self._labels is None:
                for row in rows:
                    pieces.append(((row, True), (row, True), (row.batch_id,),
                                   self.counted, row.points))
                    self.counted += row.points
            elif rows:
                bounds = ((rows[0], True), (rows[-1], True),
                          sorted({row.batch_id for row in rows}))
                count = self._count(bounds)
                pieces.append((*bounds, self.counted, count))
                self.counted += count
            if len(rows) < size:
                self.exhausted = True
                break
            after = rows[-1]
            size *= 4
        chosen = [piece for piece in pieces
                  if piece[3] + piece[4] > offset and piece[3] < needed]
        if not chosen:
            return None, 0
        batches = None
        if all(piece[2] is not None for piece in chosen):
            batches = sorted({batch for piece in chosen
                              for batch in piece[2]})
        return (self._stretch(chosen[0][0], chosen[-1][1], batches),
                chosen[0][3])

    def _count(self, bounds):
        """The matching points of the stretch ``bounds`` (``(lower, upper,
        batches)``, see :meth:`_stretch`), counted."""
        return self._conn.execute(sa.select(sa.func.count()).where(
            *self._stretch(*bounds), *self._points, self._labels)).scalar()

    def _rows(self, after, size):
        """The next ``size`` rows of ``rated_totals`` after the key of the
        row ``after`` (``None``: from the first)."""
        conditions = list(self._totals)
        if after is not None:
            conditions += [_TOTALS.c.period_begin >= after.period_begin,
                           _key(_TOTALS) > _key_value(after)]
        return self._conn.execute(sa.select(
            *(_TOTALS.c[name] for name in _KEY), _TOTALS.c.points,
        ).where(*conditions).order_by(
            *(_TOTALS.c[name] for name in _KEY)).limit(size)).all()

    def _stretch(self, lower, upper, batches):
        """WHERE clauses on ``rated_points`` selecting the points of the
        ``rated_totals`` rows from the bound ``lower`` to ``upper`` (see
        :meth:`find`) of ``batches`` (``None``, or more than
        :data:`BATCHES`: left out, the bounds alone select the same
        points)."""
        conditions = []
        if batches is not None and len(batches) <= BATCHES:
            conditions.append(self._in_ids(_POINTS.c.batch_id, batches))
        row, inclusive = lower
        conditions += [_POINTS.c.period_begin >= row.period_begin,
                       _key(_POINTS) >= _key_value(row) if inclusive
                       else _key(_POINTS) > _key_value(row)]
        if upper is not None:
            row = upper[0]
            conditions += [_POINTS.c.period_begin <= row.period_begin,
                           _key(_POINTS) <= _key_value(row)]
        return conditions
