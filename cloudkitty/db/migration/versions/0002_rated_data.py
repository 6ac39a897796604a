"""Rated data of the sqlalchemy storage backend: points, labels, batches.

See ``cloudkitty.storage.v2.sqlalchemy.models`` for why the data is split
this way. The types are spelt out here, not imported, so that this revision
keeps creating the same schema whatever the models become.

Revision ID: 0002
Revises: 0001
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'


def _key_string(length):
    return sa.String(length).with_variant(
        postgresql.VARCHAR(length, collation='C'), 'postgresql').with_variant(
        mysql.VARCHAR(length, charset='utf8mb4',
                      collation='utf8mb4_nopad_bin'), 'mysql', 'mariadb')


def _money(precision, scale):
    # SQLite has no decimal type: exact text, summed by the backend's own
    # aggregate.
    return sa.Numeric(precision, scale).with_variant(sa.String(80), 'sqlite')


_TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6),
                                        'mysql', 'mariadb')
_JSON = sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')


def upgrade():
    op.create_table(
        'rated_batches',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  primary_key=True, autoincrement=True),
        sa.Column('scope_id', _key_string(255), nullable=True),
        sa.Column('period_begin', _TIMESTAMP, nullable=False),
        sa.Column('period_end', _TIMESTAMP, nullable=False),
    )
    op.create_index('ix_rated_batches_scope_begin', 'rated_batches',
                    ['scope_id', 'period_begin'])
    op.create_table(
        'rated_labels',
        sa.Column('id', sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column('unit', sa.String(255), nullable=False),
        sa.Column('description', sa.Text, nullable=True),
        sa.Column('groupby', _JSON, nullable=False),
        sa.Column('metadata', _JSON, nullable=False),
    )
    op.create_table(
        'rated_points',
        sa.Column('batch_id', sa.BigInteger, nullable=False,
                  autoincrement=False),
        sa.Column('seq', sa.Integer, nullable=False, autoincrement=False),
        sa.Column('period_begin', _TIMESTAMP, nullable=False),
        sa.Column('period_end', _TIMESTAMP, nullable=False),
        sa.Column('scope_id', _key_string(255), nullable=True),
        sa.Column('type', _key_string(255), nullable=False),
        sa.Column('label_id', sa.BigInteger, nullable=False),
        sa.Column('qty', _money(48, 28), nullable=False),
        sa.Column('price', _money(40, 28), nullable=False),
        sa.PrimaryKeyConstraint('batch_id', 'seq', name='pk_rated_points'),
        sqlite_with_rowid=False,
    )
    # BRIN: points arrive roughly in period order, and a block-range index
    # costs next to nothing to maintain during bulk loads.
    op.create_index('ix_rated_points_begin', 'rated_points',
                    ['period_begin'], postgresql_using='brin')


def downgrade():
    op.drop_index('ix_rated_points_begin', table_name='rated_points')
    op.drop_table('rated_points')
    op.drop_table('rated_labels')
    op.drop_index('ix_rated_batches_scope_begin', table_name='rated_batches')
    op.drop_table('rated_batches')
