"""Rated data: how many points the per-batch and per-day sums add up.

``retrieve`` reads its total of points from these counts instead of
counting the points (see ``RatedTotal`` and ``RatedDailyTotal`` in
``cloudkitty.storage.v2.sqlalchemy.models``). The counts of the rows
already stored are computed here, in the database.

Revision ID: 0008
Revises: 0007
"""

from alembic import op
import sqlalchemy as sa

revision = '0008'
down_revision = '0007'


def upgrade():
    # Added with a default so that the rows already stored get one, which
    # is then dropped: every write names its count.
    for table in ('rated_totals', 'rated_daily_totals'):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column('points', sa.BigInteger,
                                       nullable=False, server_default='0'))
    day = ('date(period_begin)' if op.get_bind().dialect.name == 'sqlite'
           else 'CAST(period_begin AS DATE)')
    op.execute(
        'UPDATE rated_totals SET points = (SELECT COUNT(*) FROM rated_points'
        ' WHERE rated_points.batch_id = rated_totals.batch_id AND '
        'rated_points.type = rated_totals.type)')
    op.execute(
        f'UPDATE rated_daily_totals SET points = (SELECT SUM(points) FROM '
        f'rated_totals WHERE rated_totals.scope_id = '
        f'rated_daily_totals.scope_id AND rated_totals.type = '
        f'rated_daily_totals.type AND {day} = rated_daily_totals.day)')
    for table in ('rated_totals', 'rated_daily_totals'):
        with op.batch_alter_table(table) as batch:
            batch.alter_column('points', server_default=None,
                               existing_type=sa.BigInteger,
                               existing_nullable=False)


def downgrade():
    for table in ('rated_daily_totals', 'rated_totals'):
        with op.batch_alter_table(table) as batch:
            batch.drop_column('points')
