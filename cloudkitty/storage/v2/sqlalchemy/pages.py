"""Where a page of points starts and ends, found without counting every
matching point: :class:`Walk`.

Points are read in the order ``(period_begin, period_end, type, batch_id,
seq)``. Each ``rated_totals`` row stands for the points of one batch and
type, which are consecutive in that order, and holds their number: walking
those rows in the same order, from the start of the window, finds which
batches hold the points ``[offset, offset + limit)``, after reading about
as many rows as the page needs. With label filters, the matching points
of each stretch of rows are counted instead, a stretch at a time
(stretches grow fourfold, up to :data:`LARGEST` rows): the points of the
stretch by label, then which of those labels match, each label checked
once per walk (the points of a resource share their label for a day).
"""

import sqlalchemy as sa

from cloudkitty.storage.v2.sqlalchemy import models

_POINTS = models.RatedPoint.__table__
_TOTALS = models.RatedTotal.__table__
_LABELS = models.RatedLabel.__table__
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
    :param labels: WHERE clauses on ``rated_labels`` of its label filters
        (empty: none; the counts of the ``rated_totals`` rows are then
        read, not counted).
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
        self._matching = {}  # label id: whether it matches
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
        # (first row, last row, batch ids, points before, count, label ids)
        pieces = []
        after = None
        size = FIRST
        while self.counted < needed:
            rows = self._rows(after, size)
            if not self._labels:
                for row in rows:
                    pieces.append((row, row, (row.batch_id,), self.counted,
                                   row.points, None))
                    self.counted += row.points
            elif rows:
                batches = sorted({row.batch_id for row in rows})
                stretch = self._stretch(rows[0], rows[-1], batches)
                counts = dict(self._conn.execute(sa.select(
                    _POINTS.c.label_id, sa.func.count()).where(
                    *stretch, *self._points).group_by(_POINTS.c.label_id)
                ).all())
                matching = self._match(counts)
                count = sum(counts[label] for label in matching)
                pieces.append((rows[0], rows[-1], batches, self.counted,
                               count, matching))
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
        conditions = self._stretch(chosen[0][0], chosen[-1][1], batches)
        if self._labels:
            conditions.append(self._in_ids(_POINTS.c.label_id, sorted(
                {label for piece in chosen for label in piece[5]})))
        return conditions, chosen[0][3]

    def _match(self, label_ids):
        """Those of ``label_ids`` whose labels match the filters."""
        unknown = sorted(set(label_ids).difference(self._matching))
        if unknown:
            found = set(self._conn.execute(sa.select(_LABELS.c.id).where(
                self._in_ids(_LABELS.c.id, unknown), *self._labels)
            ).scalars())
            self._matching.update((label, label in found)
                                  for label in unknown)
        return [label for label in label_ids if self._matching[label]]

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

    def _stretch(self, first, last, batches):
        """WHERE clauses on ``rated_points`` selecting the points of the
        ``rated_totals`` rows from ``first`` to ``last`` (their keys) of
        ``batches``."""
        return [self._in_ids(_POINTS.c.batch_id, batches),
                _POINTS.c.period_begin >= first.period_begin,
                _POINTS.c.period_begin <= last.period_begin,
                _key(_POINTS) >= _key_value(first),
                _key(_POINTS) <= _key_value(last)]
