"""The upkeep of the rated data the processors run (:func:`maintain`):
time partitions created ahead, the data older than ``[storage]
retention`` deleted, and the days before today summed by label
(:func:`roll`).

On PostgreSQL, partitioned, whole partitions are dropped (see
:mod:`.partitions`), and the monthly sums follow
(:meth:`.writes.Writer.resum_months`); the rows left before the partitions kept (in the
``DEFAULT`` partition, or in a database not partitioned yet) and, on
MariaDB and SQLite, all the rows past the retention, are deleted as whole
batches, a bounded number per transaction (:func:`delete_before`).

:func:`roll` sums the points of a day by scope, type and label into
``rated_label_days`` once the day is over, and again after a write
changed it (its daily rows are no longer ``rolled``), oldest days first, a
bounded number per call: the first upkeep of a large database spreads
over several hours.
"""

import dataclasses
import datetime
import logging
import time

import sqlalchemy as sa

from cloudkitty.storage.v2.sqlalchemy import models
from cloudkitty.storage.v2.sqlalchemy import partitions
from cloudkitty import timeutils

LOG = logging.getLogger(__name__)
_UTC = datetime.timezone.utc
_BATCHES = models.RatedBatch.__table__
_DAILY = models.RatedDailyTotal.__table__
#: Batches (one scope's period each) deleted per transaction: short
#: transactions, a bounded undo log and lock set, whatever is expired.
BATCHES_PER_TRANSACTION = 500
#: Days summed by label per upkeep (one transaction each): a month.
DAYS_PER_UPKEEP = 31


def delete_before(engine, writer, before, size=BATCHES_PER_TRANSACTION):
    """Delete the batches whose period begins before ``before`` (aware
    UTC), with their points, totals and daily sums, ``size`` batches per
    transaction, oldest ids first; return ``(batches, transactions)``
    deleted and used.

    :param writer: the storage's :class:`~.writes.Writer`, whose
        ``delete_ids`` keeps the daily sums (and sums by label) in
        step.
    """
    end = timeutils.to_db(before)
    oldest = sa.select(_BATCHES.c.id).where(
        _BATCHES.c.period_begin < end).order_by(_BATCHES.c.id).limit(size)
    deleted = transactions = 0
    while True:
        with engine.begin() as conn:
            ids = conn.execute(oldest).scalars().all()
            if not ids:
                break
            writer.delete_ids(conn, ids, end=before)
        deleted += len(ids)
        transactions += 1
    if deleted:
        LOG.info('Retention: deleted %d batches of rated data older than '
                 '%s, in %d transactions', deleted, before, transactions)
    return deleted, transactions


def roll(engine, writer, today, size=DAYS_PER_UPKEEP):
    """Sum by label (:meth:`.writes.Writer.roll_day`, one transaction
    each) the ``size`` oldest days before ``today`` (a UTC date) that have
    a daily row not rolled; return ``(days, rows)``: the days rolled, in
    order, and the number of rows summed into."""
    started = time.monotonic()
    with engine.connect() as conn:
        days = conn.execute(sa.select(_DAILY.c.day).where(
            _DAILY.c.rolled == sa.false(), _DAILY.c.day < today).distinct(
        ).order_by(_DAILY.c.day).limit(size)).scalars().all()
    rows = 0
    for day in days:
        with writer.dialect.rolling() as conn:
            rows += writer.roll_day(conn, day)
    if days:
        LOG.info('Summed %d days of rated data by label (%s to %s): %d rows '
                 'in %.1f s', len(days), days[0], days[-1], rows,
                 time.monotonic() - started)
    return days, rows


@dataclasses.dataclass
class Upkeep:
    """What one :func:`maintain` did: the partitions ``created`` and
    ``dropped`` (names), the ``batches`` deleted in ``transactions``, the
    days ``rolled`` (dates, by :func:`roll`) into ``label_rows`` rows."""

    created: list = dataclasses.field(default_factory=list)
    dropped: list = dataclasses.field(default_factory=list)
    batches: int = 0
    transactions: int = 0
    rolled: list = dataclasses.field(default_factory=list)
    label_rows: int = 0


def maintain(engine, writer, conf, now):
    """Create the partitions ahead of ``now`` (aware UTC), apply the
    retention of ``conf`` (``[storage] retention`` days, ``0``: none),
    then :func:`roll` the days before the UTC day of ``now``; return the
    :class:`Upkeep`.

    :param writer: the storage's :class:`~.writes.Writer`.
    """
    upkeep = Upkeep()
    with engine.connect() as conn:
        partitioned = partitions.is_partitioned(conn)
    options = conf.storage_sqlalchemy
    keeper = partitions.Partitions(engine, options.partition_interval,
                                   options.partitions_ahead)
    if partitioned:
        upkeep.created = keeper.create_ahead(now)
    days = conf.storage.retention
    if days:
        cutoff = now - datetime.timedelta(days=days)
        if partitioned:
            # Only whole partitions: what is older than the start of the
            # partition holding the cutoff.
            cutoff = partitions.floor(cutoff, keeper.interval).replace(
                tzinfo=_UTC)
            upkeep.dropped = keeper.drop_before(cutoff)
            with writer.dialect.rolling() as conn:
                writer.resum_months(conn, cutoff.date())
        upkeep.batches, upkeep.transactions = delete_before(engine, writer,
                                                            cutoff)
    upkeep.rolled, upkeep.label_rows = roll(
        engine, writer, now.astimezone(_UTC).date())
    return upkeep
