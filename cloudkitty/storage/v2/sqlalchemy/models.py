"""Tables of the ``sqlalchemy`` storage backend (migrations 0002, 0006,
0008, 0009, 0010, 0011, 0012).

Seven tables, shaped by what the store does most: append a scope's period
in bulk, aggregate millions of points by scope, type and period, and
delete one scope's period before it is stored again.

``rated_points``, the fact table, one row per point, kept narrow: period,
scope id, type, quantity, price and ``label_id``. Its primary key
``(batch_id, seq)`` grows with every push, so bulk inserts append to the
index instead of touching random pages.

``rated_labels``, one row per distinct (unit, description, groupby,
metadata): the labels of a resource repeat period after period, so they are
stored once, keyed by a 64-bit hash of their canonical JSON. On PostgreSQL
(migration 0011) ``groupby`` and ``metadata`` have GIN indexes
(``jsonb_path_ops``): the label filter of a retrieve finds its labels by
containment there instead of reading every label (see
:meth:`.dialects.Dialect.label_lookup`).

``rated_batches``, one row per (push, scope, period): the index of the
points by ``(scope_id, period_begin)``. Indexing the fact table on those
text keys instead would cost a random b-tree insertion per point; here it
costs one per batch, and deleting a scope's period reads a few batch rows
then whole primary-key ranges of points.

``rated_totals``, one row per (batch, type): the sums of the batch's
quantities and prices of that type, and how many points they add up
(migration 0008), written in the transaction that writes
the points and deleted with them. A ``total`` that groups and filters only
on scopes, types and periods (the summaries operators and dashboards ask
for most) reads these rows, a tenth or less of the points, instead.

``rated_daily_totals``, one row per (scope, type, UTC day) of the batches
with a scope: their sums, how many ``rated_totals`` rows and how many
points they add up.
Each write adds its own sums, or subtracts them, in its transaction (an
atomic upsert: concurrent writers of one day add up); a row whose count
falls to zero is deleted. A ``total`` without time grouping reads the
whole days of its window here, and the ragged ends from ``rated_totals``.
Its ``rolled`` flag (migration 0010) tells whether the day's points of that
scope and type are summed in ``rated_label_days``: every write of the row
sets it back to false, the upkeep sets it (see
:func:`.maintenance.roll`).

``rated_monthly_totals`` (migration 0012), one row per (UTC month, scope,
type) of the batches with a scope: the same sums as the daily rows of
that month, kept by the same writes in the same transactions (see
:meth:`.writes.Writer.store_totals`). A ``total`` without time grouping
reads the whole months of its window here, a thirtieth of the daily rows:
the summary of a month reads one row per scope and type, however many
points the month holds (see :meth:`.reads.Reader.sums`). It is not
partitioned: it holds a few rows per scope and type and month, which the
retention deletes (see :func:`.maintenance.maintain`).

``rated_label_days``, one row per (UTC day, scope, type, label id) of the
points with a scope: their sums and count, written by the upkeep for the
days before today, never by a write. Labels change daily (the collectors'
time keys), so it holds a twenty-fourth of the rows of hourly points. A
``total`` grouped or filtered by labels, without time grouping, reads the
days of its window whose daily rows are all rolled here, and the rest from
the points (see :meth:`.reads.Reader.sums`); a write that deletes a daily
row deletes its rows here. Its index on ``(label_id, day)`` (migration
0011) finds the days of the labels a ``retrieve`` filters on, and their
matching points' count, without reading the others (see
:meth:`.reads.Reader.retrieve`).

On PostgreSQL (migration 0009), ``rated_batches``, ``rated_points`` and
``rated_totals`` are partitioned by range of ``period_begin``, and
``rated_daily_totals`` (and, migration 0010, ``rated_label_days``) by range
of ``day``, the same intervals in all (``[storage_sqlalchemy]
partition_interval``, a month by default; see :mod:`.partitions`): a
month's reads and a period's replacement read that month's partitions
only, and the retention drops whole partitions. There
the primary keys of ``rated_batches``, ``rated_points`` and
``rated_totals`` end with ``period_begin``, as PostgreSQL requires of a
partitioned table; the keys written here are those of MariaDB and SQLite,
unique on PostgreSQL as well (ids come from one sequence).

Text keys compare byte-wise everywhere (``COLLATE "C"`` on PostgreSQL,
``utf8mb4_nopad_bin`` on MariaDB, SQLite's default), so grouping and
sorting give the same results on the three databases (MariaDB's other
binary collation ignores trailing spaces). Money is ``NUMERIC`` (on SQLite,
which has no decimal type, exact decimal text summed by a registered
aggregate); timestamps are naive UTC.
"""

import sqlalchemy as sa
from sqlalchemy import orm

from cloudkitty.db import models
from cloudkitty.db import types as db_types


class RatedBatch(models.Base):
    """The points of one scope and period stored by one push."""

    __tablename__ = 'rated_batches'
    __table_args__ = (
        sa.Index('ix_rated_batches_scope_begin', 'scope_id', 'period_begin'),
    )

    id: orm.Mapped[int] = orm.mapped_column(db_types.BIG_ID,
                                            primary_key=True,
                                            autoincrement=True)
    scope_id = orm.mapped_column(db_types.key_string(255), nullable=True)
    period_begin = orm.mapped_column(db_types.TIMESTAMP, nullable=False)
    period_end = orm.mapped_column(db_types.TIMESTAMP, nullable=False)


class RatedLabel(models.Base):
    """Unit, description, groupby and metadata shared by points."""

    __tablename__ = 'rated_labels'
    __table_args__ = tuple(
        sa.Index(f'ix_rated_labels_{column}', column,
                 postgresql_using='gin',
                 postgresql_ops={column: 'jsonb_path_ops'}).ddl_if(
            dialect='postgresql')
        for column in ('groupby', 'metadata'))

    id: orm.Mapped[int] = orm.mapped_column(sa.BigInteger, primary_key=True,
                                            autoincrement=False)
    unit = orm.mapped_column(sa.String(255), nullable=False)
    description = orm.mapped_column(sa.Text, nullable=True)
    groupby = orm.mapped_column(db_types.JSON, nullable=False)
    # ``metadata`` is reserved on declarative classes.
    meta = orm.mapped_column('metadata', db_types.JSON, nullable=False)


class RatedPoint(models.Base):
    """One rated point."""

    __tablename__ = 'rated_points'
    __table_args__ = (
        sa.Index('ix_rated_points_begin', 'period_begin',
                 postgresql_using='brin'),
        {'sqlite_with_rowid': False},
    )

    batch_id: orm.Mapped[int] = orm.mapped_column(
        sa.BigInteger, primary_key=True, autoincrement=False)
    seq: orm.Mapped[int] = orm.mapped_column(
        sa.Integer, primary_key=True, autoincrement=False)
    period_begin = orm.mapped_column(db_types.TIMESTAMP, nullable=False)
    period_end = orm.mapped_column(db_types.TIMESTAMP, nullable=False)
    scope_id = orm.mapped_column(db_types.key_string(255), nullable=True)
    type = orm.mapped_column(db_types.key_string(255), nullable=False)
    label_id = orm.mapped_column(sa.BigInteger, nullable=False)
    qty = orm.mapped_column(db_types.QTY, nullable=False)
    price = orm.mapped_column(db_types.PRICE, nullable=False)


class RatedTotal(models.Base):
    """Sums of the points of one batch and type."""

    __tablename__ = 'rated_totals'
    __table_args__ = (
        sa.Index('ix_rated_totals_begin', 'period_begin'),
        sa.Index('ix_rated_totals_scope_begin', 'scope_id', 'period_begin'),
    )

    batch_id: orm.Mapped[int] = orm.mapped_column(
        sa.BigInteger, primary_key=True, autoincrement=False)
    type = orm.mapped_column(db_types.key_string(255), primary_key=True)
    period_begin = orm.mapped_column(db_types.TIMESTAMP, nullable=False)
    period_end = orm.mapped_column(db_types.TIMESTAMP, nullable=False)
    scope_id = orm.mapped_column(db_types.key_string(255), nullable=True)
    qty = orm.mapped_column(db_types.SUM, nullable=False)
    price = orm.mapped_column(db_types.SUM, nullable=False)
    points: orm.Mapped[int] = orm.mapped_column(sa.BigInteger,
                                                nullable=False)


class RatedDailyTotal(models.Base):
    """Sums of the ``rated_totals`` rows of one scope, type and UTC day."""

    __tablename__ = 'rated_daily_totals'
    __table_args__ = (
        # The days to roll, and those of a window not rolled.
        sa.Index('ix_rated_daily_totals_rolled', 'rolled', 'day'),
    )

    scope_id = orm.mapped_column(db_types.key_string(255), primary_key=True)
    type = orm.mapped_column(db_types.key_string(255), primary_key=True)
    day = orm.mapped_column(sa.Date, primary_key=True)
    qty = orm.mapped_column(db_types.SUM, nullable=False)
    price = orm.mapped_column(db_types.SUM, nullable=False)
    totals: orm.Mapped[int] = orm.mapped_column(sa.BigInteger,
                                                nullable=False)
    points: orm.Mapped[int] = orm.mapped_column(sa.BigInteger,
                                                nullable=False)
    rolled: orm.Mapped[bool] = orm.mapped_column(
        sa.Boolean, nullable=False, server_default=sa.false())


class RatedMonthlyTotal(models.Base):
    """Sums of the ``rated_totals`` rows of one UTC month (its first day),
    scope and type."""

    __tablename__ = 'rated_monthly_totals'

    # Month first: a month's rows are one range, in scope and type order.
    month = orm.mapped_column(sa.Date, primary_key=True)
    scope_id = orm.mapped_column(db_types.key_string(255), primary_key=True)
    type = orm.mapped_column(db_types.key_string(255), primary_key=True)
    qty = orm.mapped_column(db_types.MONTHLY_SUM, nullable=False)
    price = orm.mapped_column(db_types.MONTHLY_SUM, nullable=False)
    totals: orm.Mapped[int] = orm.mapped_column(sa.BigInteger,
                                                nullable=False)
    points: orm.Mapped[int] = orm.mapped_column(sa.BigInteger,
                                                nullable=False)


class RatedLabelDay(models.Base):
    """Sums of the points of one UTC day, scope, type and label."""

    __tablename__ = 'rated_label_days'
    __table_args__ = (
        # The days and counts of the labels a retrieve filters on.
        sa.Index('ix_rated_label_days_label', 'label_id', 'day'),
    )

    day = orm.mapped_column(sa.Date, primary_key=True)
    scope_id = orm.mapped_column(db_types.key_string(255), primary_key=True)
    type = orm.mapped_column(db_types.key_string(255), primary_key=True)
    label_id: orm.Mapped[int] = orm.mapped_column(
        sa.BigInteger, primary_key=True, autoincrement=False)
    qty = orm.mapped_column(db_types.SUM, nullable=False)
    price = orm.mapped_column(db_types.SUM, nullable=False)
    points: orm.Mapped[int] = orm.mapped_column(sa.BigInteger,
                                                nullable=False)
