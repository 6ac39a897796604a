"""Rated data: the points' sums by UTC day and label.

``rated_label_days`` holds, for each (day, scope, type, label id), the sums
of the day's points that have a scope, and ``rated_daily_totals`` gets
``rolled``: whether that day's sums of the row's scope and type are in
``rated_label_days``, as a write sets it back to false (see
``RatedLabelDay`` in ``cloudkitty.storage.v2.sqlalchemy.models``). The new
table starts empty and every daily row unrolled: the storage's upkeep
fills it, a bounded number of days at a time.

On PostgreSQL, when ``rated_daily_totals`` is partitioned (0009), the new
table is partitioned by range of ``day`` with the same bounds, and a
``DEFAULT`` partition; the bounds are read from the catalog.

Revision ID: 0010
Revises: 0009
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.dialects import postgresql

revision = '0010'
down_revision = '0009'

# Sums: as wide as a quantity, for prices too (as 0006).
_SUM = sa.Numeric(48, 28).with_variant(sa.String(80), 'sqlite')
_PREFIX = 'rated_daily_totals'


def _key_string(length):
    return sa.String(length).with_variant(
        postgresql.VARCHAR(length, collation='C'), 'postgresql').with_variant(
        mysql.VARCHAR(length, charset='utf8mb4',
                      collation='utf8mb4_nopad_bin'), 'mysql', 'mariadb')


def _daily_partitions(bind):
    """``[(suffix, bound)]`` of the partitions of ``rated_daily_totals``
    (none unless it is partitioned): the part of each name after the
    table's, and its bound as PostgreSQL writes it (``FOR VALUES ...`` or
    ``DEFAULT``)."""
    if bind.dialect.name != 'postgresql' or not bind.exec_driver_sql(
            'SELECT EXISTS (SELECT FROM pg_partitioned_table WHERE partrelid '
            "= to_regclass('rated_daily_totals'))").scalar():
        return None
    rows = bind.exec_driver_sql(
        'SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM '
        'pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE '
        "i.inhparent = 'rated_daily_totals'::regclass").all()
    return [('_default' if bound == 'DEFAULT' else
             name[len(_PREFIX):] if name.startswith(_PREFIX) else f'_{name}',
             bound) for name, bound in rows]


def upgrade():
    bind = op.get_bind()
    with op.batch_alter_table('rated_daily_totals') as batch:
        batch.add_column(sa.Column('rolled', sa.Boolean, nullable=False,
                                   server_default=sa.false()))
    op.create_index('ix_rated_daily_totals_rolled', 'rated_daily_totals',
                    ['rolled', 'day'])
    daily = _daily_partitions(bind)
    options = {} if daily is None else {
        'postgresql_partition_by': 'RANGE (day)'}
    op.create_table(
        'rated_label_days',
        sa.Column('day', sa.Date, nullable=False),
        sa.Column('scope_id', _key_string(255), nullable=False),
        sa.Column('type', _key_string(255), nullable=False),
        sa.Column('label_id', sa.BigInteger, nullable=False,
                  autoincrement=False),
        sa.Column('qty', _SUM, nullable=False),
        sa.Column('price', _SUM, nullable=False),
        sa.Column('points', sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint('day', 'scope_id', 'type', 'label_id',
                                name='pk_rated_label_days'),
        **options)
    for suffix, bound in daily or ():
        bind.exec_driver_sql(
            f'CREATE TABLE rated_label_days{suffix} PARTITION OF '
            f'rated_label_days {bound}')
    if daily is not None and not any(b == 'DEFAULT' for _, b in daily):
        bind.exec_driver_sql('CREATE TABLE rated_label_days_default '
                             'PARTITION OF rated_label_days DEFAULT')


def downgrade():
    op.drop_table('rated_label_days')
    op.drop_index('ix_rated_daily_totals_rolled',
                  table_name='rated_daily_totals')
    with op.batch_alter_table('rated_daily_totals') as batch:
        batch.drop_column('rolled')
