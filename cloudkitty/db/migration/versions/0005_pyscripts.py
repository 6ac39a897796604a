"""PyScripts rating module: scripts and their revision counter.

See ``cloudkitty.rating.pyscripts.models``. The types are spelt out here,
not imported, so that this revision keeps creating the same schema whatever
the models become.

Revision ID: 0005
Revises: 0004
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

revision = '0005'
down_revision = '0004'

_TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6),
                                        'mysql', 'mariadb')
_SOURCE = sa.Text().with_variant(mysql.LONGTEXT(), 'mysql', 'mariadb')


def upgrade():
    op.create_table(
        'pyscripts_scripts',
        sa.Column('id', sa.Integer, primary_key=True),
        sa.Column('script_id', sa.String(36), nullable=False),
        sa.Column('name', sa.String(255), nullable=False),
        sa.Column('data', _SOURCE, nullable=False),
        sa.Column('checksum', sa.String(128), nullable=False),
        sa.Column('description', sa.Text, nullable=True),
        sa.Column('start', _TIMESTAMP, nullable=False),
        sa.Column('end', _TIMESTAMP, nullable=True),
        sa.Column('created_at', _TIMESTAMP, nullable=False),
        sa.Column('created_by', sa.String(255), nullable=True),
        sa.Column('updated_by', sa.String(255), nullable=True),
        sa.Column('deleted', _TIMESTAMP, nullable=True),
        sa.Column('deleted_by', sa.String(255), nullable=True),
        sa.UniqueConstraint('script_id', name='uq_pyscripts_scripts_uuid'),
    )
    op.create_index('ix_pyscripts_scripts_validity', 'pyscripts_scripts',
                    ['deleted', 'start'])
    revision_table = op.create_table(
        'pyscripts_revision',
        sa.Column('id', sa.Integer, primary_key=True, autoincrement=False),
        sa.Column('revision', sa.BigInteger, nullable=False),
    )
    op.bulk_insert(revision_table, [{'id': 1, 'revision': 0}])


def downgrade():
    op.drop_table('pyscripts_revision')
    op.drop_index('ix_pyscripts_scripts_validity', 'pyscripts_scripts')
    op.drop_table('pyscripts_scripts')
