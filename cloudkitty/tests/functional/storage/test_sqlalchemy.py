"""What the sqlalchemy backend promises beyond the contract: shared labels,
hash collision detection, batch bookkeeping, migrations, concurrency."""

import concurrent.futures
import datetime
import decimal

from alembic import autogenerate
from alembic import migration as alembic_migration
import pytest
import sqlalchemy as sa

from cloudkitty import dataframe
from cloudkitty.db import migration
from cloudkitty.db import models as db_models
from cloudkitty.storage import v2
from cloudkitty.storage.v2.sqlalchemy import backend
from cloudkitty.tests.functional import storage as db_servers

UTC = datetime.timezone.utc
HOUR = datetime.timedelta(hours=1)
T0 = datetime.datetime(2024, 3, 1, tzinfo=UTC)
WINDOW = {'begin': T0, 'end': T0 + 48 * HOUR}


def frame(start, scope, resources, price='0.5', metadata=None):
    """Points of ``resources``; ``scope`` None leaves project_id out."""
    groupby = {} if scope is None else {'project_id': scope}
    return dataframe.DataFrame(start, start + HOUR, {'instance': [
        dataframe.DataPoint('instance', 1, price, {**groupby, 'id': r},
                            metadata or {'flavor': 'small'})
        for r in resources]})


def count(storage, table):
    with storage.engine.connect() as conn:
        return conn.exec_driver_sql(f'SELECT COUNT(*) FROM {table}').scalar()


def test_labels_are_stored_once(storage, storage_url):
    storage.push([frame(T0 + h * HOUR, 'p1', ['a', 'b']) for h in range(3)])
    # Another process, which knows nothing of what was stored.
    other = backend.SQLAlchemyStorage(db_servers.make_conf(storage_url))
    other.push([frame(T0 + 3 * HOUR, 'p1', ['b', 'c'])])
    other.engine.dispose()
    assert count(storage, 'rated_labels') == 3
    assert count(storage, 'rated_points') == 8
    assert count(storage, 'rated_batches') == 4
    rows = storage.total(groupby=['id'], **WINDOW)['results']
    assert [(r['id'], r['qty']) for r in rows] == [
        ('a', 3), ('b', 4), ('c', 1)]


def test_label_hash_collisions_are_refused(storage, storage_url,
                                           monkeypatch):
    monkeypatch.setattr(backend, '_label_hash', lambda canonical: 42)
    with pytest.raises(v2.StorageError, match='collision'):
        storage.push([frame(T0, 'p1', ['a', 'b'])])
    storage.push([frame(T0, 'p1', ['a'])])
    other = backend.SQLAlchemyStorage(db_servers.make_conf(storage_url))
    with pytest.raises(v2.StorageError, match='collision'):
        other.push([frame(T0 + HOUR, 'p1', ['b'])])
    other.push([frame(T0 + HOUR, 'p1', ['a'])])
    other.engine.dispose()
    assert count(storage, 'rated_points') == 2
    assert count(storage, 'rated_labels') == 1


def test_deletes_leave_no_empty_batch(storage):
    storage.push([frame(T0, 'p1', ['a', 'b']), frame(T0, 'p2', ['a']),
                  frame(T0 + HOUR, 'p1', ['a'])])
    assert count(storage, 'rated_batches') == 3
    storage.delete(filters={'id': 'a', 'project_id': 'p2'})
    assert count(storage, 'rated_batches') == 2
    storage.delete(filters={'id': 'a'}, begin=T0, end=T0 + HOUR)
    assert count(storage, 'rated_batches') == 2
    storage.delete(begin=T0 + HOUR)
    assert count(storage, 'rated_batches') == 1
    storage.replace(frame(T0, 'p1', ['c']), 'p1')
    assert count(storage, 'rated_batches') == 1
    assert count(storage, 'rated_points') == 1


def test_replace_is_one_transaction(storage):
    storage.push([frame(T0, 'p1', ['a'])])
    with pytest.raises(v2.InvalidData):
        storage.replace(frame(T0, 'p1', ['b'], price=10 ** 13), 'p1')
    rows = storage.total(groupby=['id'], **WINDOW)['results']
    assert [r['id'] for r in rows] == ['a']


def test_migrations_go_down_and_up(storage):
    storage.push([frame(T0, 'p1', ['a'])])
    migration.downgrade(storage.engine, '0001')
    assert migration.current(storage.engine) == '0001'
    assert 'rated_points' not in sa.inspect(storage.engine).get_table_names()
    storage.init()
    storage.init()
    assert migration.current(storage.engine) == migration.head()
    assert storage.retrieve(**WINDOW)['total'] == 0


def test_models_match_the_migration(storage):
    tables = {'rated_points', 'rated_labels', 'rated_batches'}
    with storage.engine.connect() as conn:
        context = alembic_migration.MigrationContext.configure(
            conn, opts={'compare_type': True})
        diffs = autogenerate.compare_metadata(context, db_models.Base.metadata)
    assert [d for d in diffs if any(t in repr(d) for t in tables)] == []


def test_concurrent_pushes_share_labels(storage, storage_url):
    """Writers pushing overlapping new labels neither deadlock nor lose
    points (on SQLite they take turns)."""
    def push(worker):
        own = backend.SQLAlchemyStorage(db_servers.make_conf(storage_url))
        try:
            for h in range(5):
                resources = [f'r{i}' for i in range(20)]
                if worker % 2:
                    resources.reverse()
                own.push([frame(T0 + h * HOUR, None, resources,
                                metadata={'flavor': f'f{h}'})], f'p{worker}')
        finally:
            own.engine.dispose()

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(push, range(4)))
    assert count(storage, 'rated_labels') == 100
    result = storage.total(groupby=['project_id'], **WINDOW)
    assert [(r['project_id'], r['qty'], r['rate']) for r in
            result['results']] == [
        (f'p{w}', 100, decimal.Decimal(50)) for w in range(4)]


class _Deadlock(Exception):
    sqlstate = '40P01'
    args = (1213, 'Deadlock found')


def test_writes_chosen_as_deadlock_victims_are_retried(storage):
    attempts = []

    def work(conn):
        attempts.append(conn)
        if len(attempts) < 3:
            raise sa.exc.DBAPIError('INSERT', {}, _Deadlock())
        return [7]

    storage._write(work)
    assert len(attempts) == 3 and 7 in storage._known_labels

    def always(conn):
        attempts.append(conn)
        raise sa.exc.DBAPIError('INSERT', {}, _Deadlock())

    attempts.clear()
    with pytest.raises(sa.exc.DBAPIError):
        storage._write(always)
    assert len(attempts) == 3


def test_large_pushes_store_labels_aside(storage, storage_url, monkeypatch):
    """On PostgreSQL, the labels of a large push go through a second
    connection while the points stream; the push stays all or nothing."""
    monkeypatch.setattr(backend, '_LABEL_SPILL', 3)
    frames = [frame(T0 + h * HOUR, 'p1', [f'r{i}' for i in range(4)],
                    metadata={'flavor': f'f{h}'}) for h in range(3)]
    storage.push(frames)
    assert count(storage, 'rated_labels') == 12
    assert storage.total(**WINDOW)['results'][0]['qty'] == 12

    real_hash = backend._label_hash
    monkeypatch.setattr(backend, '_label_hash', lambda canonical: (
        42 if '"f9"' in canonical else real_hash(canonical)))
    storage.push([frame(T0 + 5 * HOUR, 'p1', ['a'],
                        metadata={'flavor': 'f9'})])
    # Another process: the stored label 42 is not in its cache, and the
    # chunk holding its own label 42 is checked by the second connection.
    other = backend.SQLAlchemyStorage(db_servers.make_conf(storage_url))
    colliding = frame(T0 + 6 * HOUR, 'p1', ['b'], metadata={'flavor': 'f9'})
    with pytest.raises(v2.StorageError, match='collision'):
        other.push([colliding] + frames)
    other.engine.dispose()
    assert count(storage, 'rated_points') == 13
