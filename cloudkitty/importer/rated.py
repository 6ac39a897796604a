"""Copy upstream's rated data into our storage backend, chunk by chunk.

The window ``[begin, end)`` is cut into chunks (a day by default, aligned
on UTC midnight). Each chunk is read from the :class:`RatedSource` and
made the only data our storage holds for that chunk: its points are
deleted, then the chunk's frames are pushed (each point's scope is its
``groupby`` value of the scope key). A chunk whose sums per scope and type
are already ours, to the last digit, is skipped: a second run stores
nothing, and a run resumed after a kill redoes only the chunks it had not
finished (a kill between the delete and the push leaves the chunk empty:
its sums differ, so the next run stores it again; the final verification
catches a run never resumed).

Prices and quantities read as floats become ``Decimal(repr(value))``
(:func:`cloudkitty.dataframe.to_decimal`).
"""

import collections
import dataclasses
import datetime
import time

from cloudkitty import importer
from cloudkitty.importer import influx
from cloudkitty.importer import v1sql
from cloudkitty.storage import v2

#: The rated-data sources ``--source`` names: the extension point for
#: upstream's other storage backends (see ``doc/source/admin/migrating.rst``).
SOURCES = {
    'influxdb': influx.InfluxSource,
    'v1sql': v1sql.V1SQLSource,
}

_DAY = datetime.timedelta(days=1)


def day_floor(moment):
    """``moment`` (aware) at 00:00 UTC of its day."""
    return moment.astimezone(datetime.timezone.utc).replace(
        hour=0, minute=0, second=0, microsecond=0)


def default_window(source):
    """``[first day, day after the last)`` of the source's points, or
    ``None`` when it has none."""
    bounds = source.bounds()
    if bounds is None:
        return None
    first, last = bounds
    return day_floor(first), day_floor(last) + _DAY


def chunks(begin, end, step):
    """Cut ``[begin, end)`` at the multiples of ``step`` since ``begin``'s
    UTC midnight."""
    cut = day_floor(begin)
    while cut <= begin:
        cut += step
    while begin < end:
        yield begin, min(cut, end)
        begin, cut = cut, cut + step


def sums(frames, scope_key):
    """``{(scope_id, type): (qty, price)}`` of the points of ``frames``."""
    result = collections.defaultdict(lambda: [0, 0])
    for frame in frames:
        for type_, point in frame.iterpoints():
            cell = result[(point.groupby.get(scope_key) or None, type_)]
            cell[0] += point.qty
            cell[1] += point.price
    return {key: (v2.normalize_decimal(qty), v2.normalize_decimal(price))
            for key, (qty, price) in result.items()}


def stored_sums(storage, begin, end):
    """:func:`sums` of what our ``storage`` holds in ``[begin, end)``."""
    key = storage.scope_key
    return {(row[key], row['type']): (row['qty'], row['rate'])
            for row in storage.total(groupby=['type', key], begin=begin,
                                     end=end, paginate=False)['results']}


@dataclasses.dataclass
class Progress:
    """Counts of one :func:`copy_rated` run."""

    points: int = 0        # points of the window, upstream
    handled: int = 0       # read so far
    stored: int = 0        # pushed to our storage
    chunks_stored: int = 0
    chunks_skipped: int = 0
    seconds: float = 0.0

    @property
    def rate(self):
        return self.handled / self.seconds if self.seconds else 0.0

    def line(self, begin, end, what):
        left = self.points - self.handled
        eta = f', about {left / self.rate:,.0f} s' if self.rate else ''
        return (f'[{begin:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M}) {what}; '
                f'{self.handled:,}/{self.points:,} points, '
                f'{self.rate:,.0f} points/s, {left:,} left{eta}')


def copy_rated(source, storage, begin, end, step=_DAY, out=print,
               clock=time.monotonic):
    """Copy ``source``'s points of ``[begin, end)`` into ``storage`` (a
    :class:`~cloudkitty.storage.v2.BaseStorage`), one chunk of ``step``
    at a time, printing a progress line per chunk through ``out``.

    :returns: the :class:`Progress` of the run.
    """
    started = clock()
    progress = Progress(points=source.count(begin, end))
    for first, last in chunks(begin, end, step):
        frames = source.frames(first, last)
        stray = [f.start for f in frames if not first <= f.start < last]
        if stray:
            # Stored, they would escape the chunk's replace.
            raise importer.ImportFailed(
                f'{source} gave a period starting {stray[0].isoformat()} '
                f'for [{first.isoformat()}, {last.isoformat()})')
        count = sum(len(frame) for frame in frames)
        if sums(frames, storage.scope_key) == stored_sums(storage, first,
                                                          last):
            progress.chunks_skipped += 1
            what = f'{count:,} points already stored'
        else:
            storage.delete(begin=first, end=last)
            storage.push(frames)
            progress.chunks_stored += 1
            progress.stored += count
            what = f'{count:,} points stored'
        progress.handled += count
        progress.seconds = clock() - started
        out(progress.line(first, last, what))
    return progress
