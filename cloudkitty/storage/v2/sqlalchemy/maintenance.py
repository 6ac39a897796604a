"""The upkeep of the rated data the processors run (:func:`maintain`):
time partitions created ahead, and the data older than ``[storage]
retention`` deleted.

On PostgreSQL, partitioned, whole partitions are dropped (see
:mod:`.partitions`); the rows left before the partitions kept (in the
``DEFAULT`` partition, or in a database not partitioned yet) and, on
MariaDB and SQLite, all the rows past the retention, are deleted as whole
batches, a bounded number per transaction (:func:`delete_before`).
"""

import dataclasses
import datetime
import logging

import sqlalchemy as sa

from cloudkitty.storage.v2.sqlalchemy import models
from cloudkitty.storage.v2.sqlalchemy import partitions
from cloudkitty import timeutils

LOG = logging.getLogger(__name__)
_BATCHES = models.RatedBatch.__table__
#: Batches (one scope's period each) deleted per transaction: short
#: transactions, a bounded undo log and lock set, whatever is expired.
BATCHES_PER_TRANSACTION = 500


def delete_before(engine, writer, before, size=BATCHES_PER_TRANSACTION):
    """Delete the batches whose period begins before ``before`` (aware
    UTC), with their points, totals and daily sums, ``size`` batches per
    transaction, oldest ids first; return ``(batches, transactions)``
    deleted and used.

    :param writer: the storage's :class:`~.writes.Writer`, whose
        ``delete_ids`` keeps the daily sums in step.
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


@dataclasses.dataclass
class Upkeep:
    """What one :func:`maintain` did: the partitions ``created`` and
    ``dropped`` (names), the ``batches`` deleted in ``transactions``."""

    created: list = dataclasses.field(default_factory=list)
    dropped: list = dataclasses.field(default_factory=list)
    batches: int = 0
    transactions: int = 0


def maintain(engine, writer, conf, now):
    """Create the partitions ahead of ``now`` (aware UTC) and apply the
    retention of ``conf`` (``[storage] retention`` days, ``0``: none);
    return the :class:`Upkeep`.

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
    if not days:
        return upkeep
    cutoff = now - datetime.timedelta(days=days)
    if partitioned:
        # Only whole partitions: what is older than the start of the
        # partition holding the cutoff.
        cutoff = partitions.floor(cutoff, keeper.interval).replace(
            tzinfo=datetime.timezone.utc)
        upkeep.dropped = keeper.drop_before(cutoff)
    upkeep.batches, upkeep.transactions = delete_before(engine, writer,
                                                        cutoff)
    return upkeep
