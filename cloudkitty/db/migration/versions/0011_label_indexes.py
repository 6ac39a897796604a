"""Rated data: indexes that find the labels a ``retrieve`` filters on.

``rated_label_days`` gets an index on ``(label_id, day)``: the days, and
the number of points, of the labels matching a filter, read without the
other labels' rows. On PostgreSQL, ``rated_labels.groupby`` and
``.metadata`` get GIN indexes (``jsonb_path_ops``), which answer the
containment test that narrows a label filter before its exact comparison
(see ``Dialect.label_lookup`` in
``cloudkitty.storage.v2.sqlalchemy.dialects``). On a partitioned
``rated_label_days`` the index is made on every partition, and on those
made later.

Revision ID: 0011
Revises: 0010
"""

from alembic import op

revision = '0011'
down_revision = '0010'

_JSON_COLUMNS = ('groupby', 'metadata')


def upgrade():
    op.create_index('ix_rated_label_days_label', 'rated_label_days',
                    ['label_id', 'day'])
    if op.get_bind().dialect.name == 'postgresql':
        for column in _JSON_COLUMNS:
            op.create_index(f'ix_rated_labels_{column}', 'rated_labels',
                            [column], postgresql_using='gin',
                            postgresql_ops={column: 'jsonb_path_ops'})


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        for column in _JSON_COLUMNS:
            op.drop_index(f'ix_rated_labels_{column}',
                          table_name='rated_labels')
    op.drop_index('ix_rated_label_days_label',
                  table_name='rated_label_days')
