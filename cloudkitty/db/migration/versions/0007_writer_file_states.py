"""Report writer: what ``cloudkitty-writer`` wrote to each report file.

See ``cloudkitty.db.models.WriterFileState``.

Revision ID: 0007
Revises: 0006
"""

from alembic import op
import sqlalchemy as sa

revision = '0007'
down_revision = '0006'


def upgrade():
    op.create_table(
        'writer_file_states',
        sa.Column('scope_id', sa.String(256), nullable=False),
        sa.Column('writer', sa.String(64), nullable=False),
        sa.Column('month', sa.DateTime, nullable=False),
        sa.Column('written_until', sa.DateTime, nullable=False),
        sa.Column('qty', sa.String(128), nullable=False),
        sa.Column('total', sa.String(128), nullable=False),
        sa.Column('body_size', sa.BigInteger, nullable=False),
        sa.Column('body_sha256', sa.String(64), nullable=False),
        sa.Column('file_sha256', sa.String(64), nullable=True),
        sa.Column('extra', sa.Text, nullable=False, server_default='{}'),
        sa.PrimaryKeyConstraint('scope_id', 'writer', 'month',
                                name='pk_writer_file_states'),
    )


def downgrade():
    op.drop_table('writer_file_states')
