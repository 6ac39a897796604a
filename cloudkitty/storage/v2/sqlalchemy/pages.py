"""Where a page of points starts and ends, found without counting every
matching point: :class:`Walk`.

Points are read in the order ``(period_begin, period_end, type, batch_id,
seq)``. Each ``rated_totals`` row stands for the points of one batch and
type, which are consecutive in that order, and holds their number: walking
those rows in the same order, from the start of the window, finds which
batches hold the points ``[offset, offset + limit)``, after reading about
as many rows as the page needs. With label filters, the number of
matching points of each stretch of rows is counted instead, a stretch at
a time (stretches grow fourfold, up to :data:`LARGEST` rows).
"""

import sqlalchemy as sa

from cloudkitty.storage.v2.sqlalchemy import models

_POINTS = models.RatedPoint.__table__
_TOTALS = models.RatedTotal.__table__
#: The order of the points, without ``seq``: a ``rated_totals`` row's key.
_KEY = ('period_begin', 'period_end', 'type', 'batch_id')
#: ``rated_totals`` rows of the first stretch, and of the largest.
FIRST = 16
LARGEST = 4096


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
    :param points: WHERE clauses on ``rated_points`` selecting the query's
        points, or ``None`` when every point of the ``rated_totals`` rows
        matches (no label filter): their counts are then read, not
        counted.
    """

    def __init__(self, conn, totals, points=None):
        self._conn = conn
        self._totals = totals
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
        pieces = []  # (first row, last row, batch ids, points before, count)
        after = None
        size = FIRST
        while self.counted < needed:
            rows = self._rows(after, size)
            if self._points is None:
                for row in rows:
                    pieces.append((row, row, (row.batch_id,), self.counted,
                                   row.points))
                    self.counted += row.points
            elif rows:
                batches = sorted({row.batch_id for row in rows})
                count = self._conn.execute(sa.select(sa.func.count()).where(
                    *self._stretch(rows[0], rows[-1], batches),
                    *self._points)).scalar()
                pieces.append((rows[0], rows[-1], batches, self.counted,
                               count))
                self.counted += count
            if len(rows) < size:
                self.exhausted = True
                break
            after = rows[-1]
            size = min(size * 4, LARGEST)
        chosen = [piece for piece in pieces
                  if piece[3] + piece[4] > offset and piece[3] < needed]
        if not chosen:
            return None, 0
        batches = sorted({batch for piece in chosen for batch in piece[2]})
        return (self._stretch(chosen[0][0], chosen[-1][1], batches),
                chosen[0][3])

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

    @staticmethod
    def _stretch(first, last, batches):
        """WHERE clauses on ``rated_points`` selecting the points of the
        ``rated_totals`` rows from ``first`` to ``last`` (their keys) of
        ``batches``."""
        return [_POINTS.c.batch_id.in_(batches),
                _POINTS.c.period_begin >= first.period_begin,
                _POINTS.c.period_begin <= last.period_begin,
                _key(_POINTS) >= _key_value(first),
                _key(_POINTS) <= _key_value(last)]
