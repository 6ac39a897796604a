"""Hashmap rating module: services, fields, groups, mappings, thresholds.

See ``cloudkitty.rating.hash.models``. The types are spelt out here, not
imported, so that this revision keeps creating the same schema whatever the
models become.

Revision ID: 0003
Revises: 0002
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

revision = '0003'
down_revision = '0002'


def _money(integer_digits):
    # SQLite has no decimal type: exact text.
    return sa.Numeric(integer_digits + 28, 28).with_variant(sa.String(80),
                                                            'sqlite')


_TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6),
                                        'mysql', 'mariadb')


def _named_table(table, uuid_column, *columns):
    """A table with an integer key, a unique UUID and a unique name."""
    op.create_table(
        table,
        sa.Column('id', sa.Integer, primary_key=True),
        sa.Column(uuid_column, sa.String(36), nullable=False),
        *columns,
        sa.Column('name', sa.String(255), nullable=False),
        sa.UniqueConstraint(uuid_column, name=f'uq_{table}_uuid'),
    )


def _rule_columns(table):
    """Type, cost, parents and tenant of a mapping or threshold table."""
    return [
        sa.Column('type', sa.String(4), nullable=False),
        sa.Column('cost', _money(12), nullable=False),
        sa.Column('service_id', sa.Integer,
                  sa.ForeignKey('hashmap_services.id', ondelete='CASCADE',
                                name=f'fk_{table}_service'),
                  nullable=True),
        sa.Column('field_id', sa.Integer,
                  sa.ForeignKey('hashmap_fields.id', ondelete='CASCADE',
                                name=f'fk_{table}_field'),
                  nullable=True),
        sa.Column('group_id', sa.Integer,
                  sa.ForeignKey('hashmap_groups.id', ondelete='SET NULL',
                                name=f'fk_{table}_group'),
                  nullable=True),
        sa.Column('tenant_id', sa.String(255), nullable=True),
        sa.CheckConstraint('(service_id IS NULL) <> (field_id IS NULL)',
                           name=f'ck_{table}_one_parent'),
        sa.CheckConstraint("type IN ('flat', 'rate')",
                           name=f'ck_{table}_type'),
    ]


def _parent_indexes(table):
    for column in ('service_id', 'field_id', 'group_id'):
        op.create_index(f'ix_{table}_{column}', table, [column])


def upgrade():
    _named_table('hashmap_services', 'service_id',
                 sa.UniqueConstraint('name', name='uq_hashmap_services_name'))
    _named_table(
        'hashmap_fields', 'field_id',
        sa.Column('service_id', sa.Integer,
                  sa.ForeignKey('hashmap_services.id', ondelete='CASCADE',
                                name='fk_hashmap_fields_service'),
                  nullable=False),
        sa.UniqueConstraint('service_id', 'name',
                            name='uq_hashmap_fields_service_name'))
    _named_table('hashmap_groups', 'group_id',
                 sa.UniqueConstraint('name', name='uq_hashmap_groups_name'))
    op.create_table(
        'hashmap_mappings',
        sa.Column('id', sa.Integer, primary_key=True),
        sa.Column('mapping_id', sa.String(36), nullable=False),
        sa.Column('value', sa.String(255), nullable=True),
        *_rule_columns('hashmap_mappings'),
        sa.Column('name', sa.String(255), nullable=True),
        sa.Column('description', sa.Text, nullable=True),
        sa.Column('start', _TIMESTAMP, nullable=False),
        sa.Column('end', _TIMESTAMP, nullable=True),
        sa.Column('created_at', _TIMESTAMP, nullable=False),
        sa.Column('created_by', sa.String(255), nullable=True),
        sa.Column('updated_by', sa.String(255), nullable=True),
        sa.Column('deleted', _TIMESTAMP, nullable=True),
        sa.Column('deleted_by', sa.String(255), nullable=True),
        sa.UniqueConstraint('mapping_id', name='uq_hashmap_mappings_uuid'),
    )
    _parent_indexes('hashmap_mappings')
    op.create_index('ix_hashmap_mappings_validity', 'hashmap_mappings',
                    ['deleted', 'start'])
    op.create_table(
        'hashmap_thresholds',
        sa.Column('id', sa.Integer, primary_key=True),
        sa.Column('threshold_id', sa.String(36), nullable=False),
        sa.Column('level', _money(20), nullable=False),
        *_rule_columns('hashmap_thresholds'),
        sa.UniqueConstraint('threshold_id',
                            name='uq_hashmap_thresholds_uuid'),
    )
    _parent_indexes('hashmap_thresholds')
    revision_table = op.create_table(
        'hashmap_revision',
        sa.Column('id', sa.Integer, primary_key=True, autoincrement=False),
        sa.Column('revision', sa.BigInteger, nullable=False),
    )
    op.bulk_insert(revision_table, [{'id': 1, 'revision': 0}])


def downgrade():
    op.drop_table('hashmap_revision')
    op.drop_table('hashmap_thresholds')
    op.drop_table('hashmap_mappings')
    op.drop_table('hashmap_groups')
    op.drop_table('hashmap_fields')
    op.drop_table('hashmap_services')
