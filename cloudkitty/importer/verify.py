"""Totals per scope, type and month on both sides, side by side.

Upstream's side is upstream's own sum (InfluxDB's ``SUM()``, the SQL
database's ``SUM``), ours our storage's ``total``. Where upstream keeps
floats, the two differ by rounding: each upstream value is within half an
ulp (2**-53, relative) of the decimal it was written from, which our side
keeps (``Decimal(repr(value))``), and a float sum of n terms is within
(n - 1) ulps of their exact sum, relative to the sum of their magnitudes.
A total agrees when ``|ours - upstream| <= tolerance * max(|ours|,
|upstream|)`` with the source's :attr:`~cloudkitty.importer.RatedSource.
tolerance`; 1e-9 covers up to ~9 million non-negative points per scope,
type and month. Quantities and prices are compared alike.
"""

import dataclasses
import datetime
import decimal

from cloudkitty.importer import rated
from cloudkitty.storage import v2


@dataclasses.dataclass(frozen=True)
class Line:
    """One (month, scope, type) with both sides' totals (``None``: that
    side has no point) and whether they agree."""

    month: datetime.datetime
    scope_id: str
    type: str
    upstream: tuple
    ours: tuple
    agrees: bool


def months(begin, end):
    """``[begin, end)`` cut at the first of each month (UTC)."""
    while begin < end:
        first = begin.astimezone(datetime.timezone.utc).replace(
            day=1, hour=0, minute=0, second=0, microsecond=0)
        following = (first.replace(year=first.year + 1, month=1)
                     if first.month == 12 else
                     first.replace(month=first.month + 1))
        yield begin, min(following, end)
        begin = following


def agree(ours, theirs, tolerance):
    """Whether two totals agree within the relative ``tolerance``."""
    if ours is None or theirs is None:
        return ours == theirs
    return abs(ours - theirs) <= decimal.Decimal(tolerance) * max(
        abs(ours), abs(theirs))


def compare(source, storage, begin, end):
    """The :class:`Line` of every (month, scope, type) either side has in
    ``[begin, end)``, sorted."""
    lines = []
    zero = (None, None)
    for first, last in months(begin, end):
        theirs = source.totals(first, last)
        ours = rated.stored_sums(storage, first, last)
        for scope, type_ in sorted(set(theirs) | set(ours),
                                   key=lambda k: (k[0] or '', k[1])):
            up = theirs.get((scope, type_), zero)
            own = ours.get((scope, type_), zero)
            lines.append(Line(first, scope, type_, up, own, all(
                agree(o, t, source.tolerance) for o, t in zip(own, up))))
    return lines


def table(lines):
    """The text of ``lines``, one per row, a header first."""
    header = ('month', 'scope', 'type', 'qty upstream', 'qty ours',
              'price upstream', 'price ours', '')
    body = [(f'{line.month:%Y-%m}', line.scope_id or '-', line.type,
             *(_text(v) for v in (line.upstream[0], line.ours[0],
                                  line.upstream[1], line.ours[1])),
             'ok' if line.agrees else 'DIFFERS') for line in lines]
    widths = [max(len(row[i]) for row in [header, *body])
              for i in range(len(header))]
    return '\n'.join('  '.join(cell.ljust(width) for cell, width in zip(
        row, widths)).rstrip() for row in [header, *body])


def _text(value):
    # SQL sums come with the column's scale: 1.0000000000 reads 1.
    return '-' if value is None else str(v2.normalize_decimal(value))
