"""Service to collector mappings and collector states (``/v1/collector``).

Revision ID: 0004
Revises: 0003
"""

from alembic import op
import sqlalchemy as sa

revision = '0004'
down_revision = '0003'


def upgrade():
    op.create_table(
        'service_to_collector_mappings',
        sa.Column('service', sa.String(255), primary_key=True),
        sa.Column('collector', sa.String(255), nullable=False),
    )
    op.create_table(
        'collector_states',
        sa.Column('name', sa.String(255), primary_key=True),
        sa.Column('enabled', sa.Boolean, nullable=False,
                  server_default=sa.false()),
    )


def downgrade():
    op.drop_table('collector_states')
    op.drop_table('service_to_collector_mappings')
