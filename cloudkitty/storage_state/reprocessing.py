"""The reprocessing schedule: requests to rate a scope's past periods again.

A task covers the periods of one scope starting from ``start_reprocess_time``
up to ``end_reprocess_time`` (both period starts, both included).
``current_reprocess_time`` is ``None`` until the processor starts the task;
the task is finished once it reaches ``end_reprocess_time``.
"""

import sqlalchemy as sa

from cloudkitty.db import models
from cloudkitty import timeutils

ORDERS = ('asc', 'desc')


class ReprocessingScheduleManager:
    """Reads and writes the ``storage_states_reprocessing_scheduler`` table."""

    def __init__(self, engine):
        self._engine = engine
        self._table = models.ReprocessingTask.__table__

    def create(self, scope_ids, reason, start, end):
        """Schedule the reprocessing of each scope of ``scope_ids`` over
        [start, end], in one transaction.

        Returns the tasks as dicts (see :meth:`get_all`), in the order of
        ``scope_ids``.
        """
        tasks = []
        with self._engine.begin() as connection:
            for scope_id in scope_ids:
                values = {'identifier': scope_id, 'reason': reason,
                          'start_reprocess_time': timeutils.to_db(start),
                          'end_reprocess_time': timeutils.to_db(end),
                          'current_reprocess_time': None}
                result = connection.execute(
                    self._table.insert().values(**values))
                tasks.append(_task_dict(
                    {'id': result.inserted_primary_key[0], **values}))
        return tasks

    def get_all(self, scope_ids=None, order='desc', offset=0, limit=None):
        """List tasks, newest first (``order='desc'``) or oldest first.

        ``scope_ids``: restrict to these scopes (``None`` or empty: all).
        Each task is ``{"id", "identifier", "reason", "start_reprocess_time",
        "end_reprocess_time", "current_reprocess_time"}``, datetimes aware
        UTC. Raises ``ValueError`` for an order other than asc/desc.
        """
        if order not in ORDERS:
            raise ValueError(f'order must be one of {", ".join(ORDERS)}, '
                             f'not {order!r}')
        table = self._table
        query = sa.select(table).order_by(
            table.c.id.desc() if order == 'desc' else table.c.id.asc())
        if scope_ids:
            query = query.where(table.c.identifier.in_(list(scope_ids)))
        query = query.offset(offset)
        if limit is not None:
            query = query.limit(limit)
        with self._engine.connect() as connection:
            return [_task_dict(row)
                    for row in connection.execute(query).mappings()]

    def get_unfinished_overlapping(self, scope_id, start, end):
        """Unfinished tasks of scope ``scope_id`` whose window meets [start, end].

        Both windows include their ends, so a task ending at ``start``
        overlaps. Ordered by id.
        """
        table = self._table
        query = sa.select(table).where(
            table.c.identifier == scope_id,
            sa.or_(table.c.current_reprocess_time.is_(None),
                   table.c.current_reprocess_time
                   < table.c.end_reprocess_time),
            table.c.start_reprocess_time <= timeutils.to_db(end),
            table.c.end_reprocess_time >= timeutils.to_db(start),
        ).order_by(table.c.id)
        with self._engine.connect() as connection:
            return [_task_dict(row)
                    for row in connection.execute(query).mappings()]

    def set_current_reprocess_time(self, task_id, timestamp):
        """Record ``timestamp`` as the last period start task ``task_id``
        reprocessed (the processor calls it once the period is stored)."""
        with self._engine.begin() as connection:
            connection.execute(self._table.update().where(
                self._table.c.id == task_id).values(
                    current_reprocess_time=timeutils.to_db(timestamp)))


def _task_dict(row):
    task = dict(row)
    for name in ('start_reprocess_time', 'end_reprocess_time',
                 'current_reprocess_time'):
        task[name] = timeutils.from_db(task[name])
    return task
