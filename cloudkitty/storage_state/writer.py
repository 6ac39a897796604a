"""The report writer's progress: one row per report file.

The table is transient: a file without a row is rebuilt from the rated
data, so losing rows costs time, never correctness.
"""

import dataclasses
import datetime
import decimal
import json

import sqlalchemy as sa

from cloudkitty.db import models
from cloudkitty import timeutils


@dataclasses.dataclass
class FileState:
    """What was written to one report file (see ``WriterFileState``).

    ``qty`` and ``total`` are Decimals; ``extra`` is the writer's own
    JSON-serialisable state; ``file_sha256`` is ``None`` while the footer is
    not written.
    """

    written_until: datetime.datetime
    qty: decimal.Decimal
    total: decimal.Decimal
    body_size: int
    body_sha256: str
    file_sha256: str = None
    extra: dict = dataclasses.field(default_factory=dict)


class WriterStateManager:
    """Reads and writes the ``writer_file_states`` table."""

    def __init__(self, engine):
        self._engine = engine
        self._table = models.WriterFileState.__table__

    def _where(self, scope_id, writer, month):
        table = self._table
        return sa.and_(table.c.scope_id == scope_id,
                       table.c.writer == writer,
                       table.c.month == timeutils.to_db(month))

    def get(self, scope_id, writer, month):
        """Return the :class:`FileState` of a file, or ``None``."""
        with self._engine.connect() as connection:
            row = connection.execute(sa.select(self._table).where(
                self._where(scope_id, writer, month))).mappings().first()
        if row is None:
            return None
        return FileState(
            written_until=timeutils.from_db(row['written_until']),
            qty=decimal.Decimal(row['qty']),
            total=decimal.Decimal(row['total']),
            body_size=row['body_size'], body_sha256=row['body_sha256'],
            file_sha256=row['file_sha256'], extra=json.loads(row['extra']))

    def save(self, scope_id, writer, month, state):
        """Record ``state`` (a :class:`FileState`) as the file's."""
        values = {
            'written_until': timeutils.to_db(state.written_until),
            'qty': format(state.qty, 'f'), 'total': format(state.total, 'f'),
            'body_size': state.body_size, 'body_sha256': state.body_sha256,
            'file_sha256': state.file_sha256,
            'extra': json.dumps(state.extra, sort_keys=True)}
        with self._engine.begin() as connection:
            updated = connection.execute(self._table.update().where(
                self._where(scope_id, writer, month)).values(**values))
            if not updated.rowcount:
                connection.execute(self._table.insert().values(
                    scope_id=scope_id, writer=writer, month=timeutils.to_db(month),
                    **values))
