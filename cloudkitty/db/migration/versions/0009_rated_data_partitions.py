"""Rated data: tables partitioned by time on PostgreSQL.

``rated_batches``, ``rated_points`` and ``rated_totals`` become tables
partitioned by range of ``period_begin``, ``rated_daily_totals`` by range
of ``day`` (see ``cloudkitty.storage.v2.sqlalchemy.partitions``). Their
primary keys take the partition key as a last column, as PostgreSQL
requires; the other indexes stay as they were.

An empty table is replaced by a partitioned one with a new ``DEFAULT``
partition. A table with rows is renamed ``<table>_legacy`` and attached to
the new one as its ``DEFAULT`` partition: every row stays where it is (the
one cost is the new primary-key index of the former table), and
``cloudkitty-storage-partition`` later moves them, an interval at a time,
into partitions of their own. Nothing changes on MariaDB and SQLite.

Catalog names are read, not assumed, and a table already partitioned is
left alone: the revision only depends on the tables' names and keys.

Revision ID: 0009
Revises: 0008
"""

from alembic import op

revision = '0009'
down_revision = '0008'

# (table, partition key, primary key columns before this revision).
_TABLES = (('rated_batches', 'period_begin', ('id',)),
           ('rated_points', 'period_begin', ('batch_id', 'seq')),
           ('rated_totals', 'period_begin', ('batch_id', 'type')),
           ('rated_daily_totals', 'day', ('scope_id', 'type', 'day')))


def _is_partitioned(bind, table):
    return bind.exec_driver_sql(
        'SELECT EXISTS (SELECT FROM pg_partitioned_table WHERE partrelid = '
        '%(table)s::regclass)', {'table': table}).scalar()


def _primary_key(bind, table):
    return bind.exec_driver_sql(
        "SELECT conname FROM pg_constraint WHERE contype = 'p' AND "
        "conrelid = %(table)s::regclass", {'table': table}).scalar()


def _indexes(bind, table):
    """``{name: CREATE INDEX statement}`` of the indexes of ``table`` that
    back no constraint."""
    return dict(bind.exec_driver_sql(
        'SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i '
        'JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = '
        '%(table)s::regclass AND NOT EXISTS (SELECT FROM pg_constraint k '
        'WHERE k.conindid = i.indexrelid)', {'table': table}).all())


def _sequences(bind, table):
    """``{column: sequence}`` of the serial columns of ``table``."""
    return {column: sequence for column, sequence in bind.exec_driver_sql(
        'SELECT attname, pg_get_serial_sequence(%(table)s, attname) FROM '
        'pg_attribute WHERE attrelid = %(table)s::regclass AND attnum > 0 '
        'AND NOT attisdropped', {'table': table}).all() if sequence}


def _move_sequences(bind, sequences, table):
    for column, sequence in sequences.items():
        bind.exec_driver_sql(
            f'ALTER SEQUENCE {sequence} OWNED BY {table}.{column}')


def _to_change(bind, partitioned, tables):
    """``(table, key, primary, constraint name, indexes)`` of ``tables``
    (of :data:`_TABLES`) that are ``partitioned`` or not (none but on
    PostgreSQL)."""
    if bind.dialect.name != 'postgresql':
        return
    for table, key, primary in tables:
        if _is_partitioned(bind, table) == partitioned:
            yield (table, key, primary, _primary_key(bind, table),
                   _indexes(bind, table))


def upgrade():
    bind = op.get_bind()
    for table, key, primary, constraint, indexes in _to_change(
            bind, False, _TABLES):
        legacy = f'{table}_legacy'
        empty = not bind.exec_driver_sql(
            f'SELECT EXISTS (SELECT FROM {table})').scalar()
        bind.exec_driver_sql(f'ALTER TABLE {table} RENAME TO {legacy}')
        # One primary key per partition: the parent's.
        bind.exec_driver_sql(
            f'ALTER TABLE {legacy} DROP CONSTRAINT {constraint}')
        for name in indexes:
            bind.exec_driver_sql(
                f'ALTER INDEX {name} RENAME TO {name[:56]}_legacy')
        bind.exec_driver_sql(
            f'CREATE TABLE {table} (LIKE {legacy} INCLUDING DEFAULTS) '
            f'PARTITION BY RANGE ({key})')
        columns = ', '.join(primary + (() if key in primary else (key,)))
        bind.exec_driver_sql(
            f'ALTER TABLE {table} ADD CONSTRAINT {constraint} PRIMARY KEY '
            f'({columns})')
        for statement in indexes.values():
            bind.exec_driver_sql(statement)
        _move_sequences(bind, _sequences(bind, legacy), table)
        if empty:
            bind.exec_driver_sql(f'DROP TABLE {legacy}')
            bind.exec_driver_sql(
                f'CREATE TABLE {table}_default PARTITION OF {table} DEFAULT')
        else:
            bind.exec_driver_sql(
                f'ALTER TABLE {table} ATTACH PARTITION {legacy} DEFAULT')


def downgrade():
    bind = op.get_bind()
    for table, _, primary, constraint, indexes in _to_change(
            bind, True, reversed(_TABLES)):
        plain = f'{table}_plain'
        bind.exec_driver_sql(
            f'CREATE TABLE {plain} (LIKE {table} INCLUDING DEFAULTS)')
        bind.exec_driver_sql(f'INSERT INTO {plain} SELECT * FROM {table}')
        _move_sequences(bind, _sequences(bind, table), plain)
        bind.exec_driver_sql(f'DROP TABLE {table}')
        bind.exec_driver_sql(f'ALTER TABLE {plain} RENAME TO {table}')
        bind.exec_driver_sql(
            f'ALTER TABLE {table} ADD CONSTRAINT {constraint} PRIMARY KEY '
            f'({", ".join(primary)})')
        for statement in indexes.values():
            bind.exec_driver_sql(statement.replace(' ON ONLY ', ' ON '))
