"""Scope state, reprocessing schedule and module state.

Revision ID: 0001
Revises:
"""

from alembic import op
import sqlalchemy as sa

revision = '0001'
down_revision = None


def upgrade():
    op.create_table(
        'cloudkitty_storage_states',
        sa.Column('id', sa.Integer, primary_key=True),
        sa.Column('identifier', sa.String(256), nullable=False),
        sa.Column('scope_key', sa.String(40), nullable=False),
        sa.Column('fetcher', sa.String(40), nullable=False),
        sa.Column('collector', sa.String(40), nullable=False),
        sa.Column('last_processed_timestamp', sa.DateTime, nullable=True),
        sa.Column('active', sa.Boolean, nullable=False,
                  server_default=sa.true()),
        sa.Column('scope_activation_toggle_date', sa.DateTime, nullable=True),
        sa.UniqueConstraint('identifier', 'scope_key', 'collector',
                            'fetcher', name='uq_storage_states_scope'),
    )
    op.create_table(
        'storage_states_reprocessing_scheduler',
        sa.Column('id', sa.Integer, primary_key=True),
        sa.Column('identifier', sa.String(256), nullable=False, index=True),
        sa.Column('reason', sa.Text, nullable=False),
        sa.Column('start_reprocess_time', sa.DateTime, nullable=False),
        sa.Column('end_reprocess_time', sa.DateTime, nullable=False),
        sa.Column('current_reprocess_time', sa.DateTime, nullable=True),
    )
    op.create_table(
        'rated_data_modules',
        sa.Column('name', sa.String(255), primary_key=True),
        sa.Column('enabled', sa.Boolean, nullable=False,
                  server_default=sa.false()),
        sa.Column('priority', sa.Integer, nullable=False, server_default='1'),
    )


def downgrade():
    op.drop_table('rated_data_modules')
    op.drop_table('storage_states_reprocessing_scheduler')
    op.drop_table('cloudkitty_storage_states')
