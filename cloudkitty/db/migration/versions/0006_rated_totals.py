"""Rated data: per-batch and per-day sums of the points.

``total`` reads them instead of the points when a query involves only
scopes, types and periods. See ``RatedTotal`` and ``RatedDailyTotal`` in
``cloudkitty.storage.v2.sqlalchemy.models``. The rows of the points
already stored are computed here, in the database.

Revision ID: 0006
Revises: 0005
"""

import decimal

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.dialects import postgresql

revision = '0006'
down_revision = '0005'

_TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6),
                                        'mysql', 'mariadb')
# Sums: as wide as a quantity, for prices too.
_SUM = sa.Numeric(48, 28).with_variant(sa.String(80), 'sqlite')


def _key_string(length):
    return sa.String(length).with_variant(
        postgresql.VARCHAR(length, collation='C'), 'postgresql').with_variant(
        mysql.VARCHAR(length, charset='utf8mb4',
                      collation='utf8mb4_nopad_bin'), 'mysql', 'mariadb')


class _TextSum:
    """Exact sum of SQLite's decimal text (this revision's own copy)."""

    def __init__(self):
        self.total = decimal.Decimal(0)

    def step(self, value):
        with decimal.localcontext(decimal.Context(prec=100)):
            self.total += decimal.Decimal(value)

    def finalize(self):
        return str(self.total)


def upgrade():
    op.create_table(
        'rated_totals',
        sa.Column('batch_id', sa.BigInteger, nullable=False,
                  autoincrement=False),
        sa.Column('type', _key_string(255), nullable=False),
        sa.Column('period_begin', _TIMESTAMP, nullable=False),
        sa.Column('period_end', _TIMESTAMP, nullable=False),
        sa.Column('scope_id', _key_string(255), nullable=True),
        sa.Column('qty', _SUM, nullable=False),
        sa.Column('price', _SUM, nullable=False),
        sa.PrimaryKeyConstraint('batch_id', 'type', name='pk_rated_totals'),
    )
    op.create_index('ix_rated_totals_begin', 'rated_totals',
                    ['period_begin'])
    op.create_index('ix_rated_totals_scope_begin', 'rated_totals',
                    ['scope_id', 'period_begin'])
    op.create_table(
        'rated_daily_totals',
        sa.Column('scope_id', _key_string(255), nullable=False),
        sa.Column('type', _key_string(255), nullable=False),
        sa.Column('day', sa.Date, nullable=False),
        sa.Column('qty', _SUM, nullable=False),
        sa.Column('price', _SUM, nullable=False),
        sa.Column('totals', sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint('scope_id', 'type', 'day',
                                name='pk_rated_daily_totals'),
    )
    bind = op.get_bind()
    total, day = 'sum', 'CAST(period_begin AS DATE)'
    if bind.dialect.name == 'sqlite':
        bind.connection.driver_connection.create_aggregate(
            'ck_migration_sum', 1, _TextSum)
        total, day = 'ck_migration_sum', 'date(period_begin)'
    op.execute(
        f'INSERT INTO rated_totals (batch_id, type, period_begin, '
        f'period_end, scope_id, qty, price) SELECT batch_id, type, '
        f'period_begin, period_end, scope_id, {total}(qty), {total}(price) '
        f'FROM rated_points GROUP BY batch_id, type, period_begin, '
        f'period_end, scope_id')
    op.execute(
        f'INSERT INTO rated_daily_totals (scope_id, type, day, qty, price, '
        f'totals) SELECT scope_id, type, {day}, {total}(qty), '
        f'{total}(price), COUNT(*) FROM rated_totals WHERE scope_id IS NOT '
        f'NULL GROUP BY scope_id, type, {day}')


def downgrade():
    op.drop_table('rated_daily_totals')
    op.drop_index('ix_rated_totals_scope_begin', table_name='rated_totals')
    op.drop_index('ix_rated_totals_begin', table_name='rated_totals')
    op.drop_table('rated_totals')
