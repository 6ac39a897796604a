"""What the sqlalchemy backend promises beyond the contract: shared labels,
hash collision detection, batch bookkeeping, migrations, concurrency."""

import concurrent.futures
import datetime
import decimal
import threading

from alembic import autogenerate
from alembic import migration as alembic_migration
import pytest
import sqlalchemy as sa

from cloudkitty import dataframe
from cloudkitty import db
from cloudkitty.db import migration
from cloudkitty.db import models as db_models
from cloudkitty import storage as ck_storage
from cloudkitty.storage import v2
from cloudkitty.storage.v2.sqlalchemy import backend
from cloudkitty.storage.v2.sqlalchemy import dialects
from cloudkitty.storage.v2.sqlalchemy import partitions
from cloudkitty.storage.v2.sqlalchemy import writes
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


def test_labels_of_committed_writes_are_remembered(storage, monkeypatch):
    """Labels stored by this process are not encoded nor hashed again; a
    write rolled back taught nothing."""
    storage.push([frame(T0, 'p1', ['a', 'b'])])
    with pytest.raises(v2.InvalidData):
        storage.push([frame(T0 + HOUR, 'p1', ['c'], price=10 ** 13)])

    def encoded(point, *args):
        raise AssertionError(f'labels of {point.groupby["id"]} encoded')
    monkeypatch.setattr(writes, '_label_of', encoded)
    storage.replace_many([(frame(T0 + h * HOUR, 'p1', ['b', 'a']), 'p1')
                          for h in range(3)])
    assert count(storage, 'rated_points') == 6
    with pytest.raises(AssertionError, match='labels of c encoded'):
        storage.push([frame(T0 + 4 * HOUR, 'p1', ['c'])])


@pytest.mark.parametrize('value', [
    decimal.Decimal('1.10'), decimal.Decimal('1E+2'), decimal.Decimal('1E-7'),
    decimal.Decimal('12345678901234567890.5'), 1e-07, 1e+20, True,
    [decimal.Decimal('2.50'), {'k': decimal.Decimal('0.10')}]])
def test_labels_stored_by_another_process_are_the_same(storage, storage_url,
                                                       value):
    """A label whose numbers the database writes back in another form
    (jsonb's 1E+2 is 100) or that a float would round is still the same
    label to a process that did not store it: no false collision."""
    pushed = frame(T0, 'p1', ['a'], metadata={'v': value})
    storage.push([pushed])
    other = backend.SQLAlchemyStorage(db_servers.make_conf(storage_url))
    other.push([pushed])
    other.engine.dispose()
    assert count(storage, 'rated_labels') == 1
    assert count(storage, 'rated_points') == 2


def test_label_hash_collisions_are_refused(storage, storage_url,
                                           monkeypatch):
    monkeypatch.setattr(writes, 'label_hash', lambda canonical: 42)
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


def test_the_loader_hands_the_storage_the_engine_of_the_process(storage_url):
    conf = db_servers.make_conf(storage_url)
    engine = db.create_engine(storage_url)
    try:
        handed = ck_storage.get_storage(conf, engine=engine)
        assert handed.engine is engine
        handed.push([frame(T0, 'p1', ['a'])])
        assert count(handed, 'rated_points') == 1
    finally:
        engine.dispose()
    # Without one: the engine the process shares for the URL.
    assert ck_storage.get_storage(conf).engine is db.get_engine(
        conf, storage_url)


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
    tables = {'rated_points', 'rated_labels', 'rated_batches',
              'rated_totals', 'rated_daily_totals', 'rated_monthly_totals',
              'rated_label_days'}
    with storage.engine.connect() as conn:
        context = alembic_migration.MigrationContext.configure(
            conn, opts={'compare_type': True})
        diffs = autogenerate.compare_metadata(context, db_models.Base.metadata)
        # PostgreSQL's time partitions: the tables' storage, not models.
        hidden = partitions.names(conn)
    if storage.engine.dialect.name != 'postgresql':
        # The models' indexes of PostgreSQL alone (Index.ddl_if).
        hidden = [*hidden, 'ix_rated_labels_groupby',
                  'ix_rated_labels_metadata']
    assert [d for d in diffs if any(t in repr(d) for t in tables)
            and not any(name in repr(d) for name in hidden)] == []


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
        return writes.Stored([7], {})

    storage._write(work)
    assert len(attempts) == 3 and 7 in storage._writer._known

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
    monkeypatch.setattr(dialects, '_LABEL_SPILL', 3)
    frames = [frame(T0 + h * HOUR, 'p1', [f'r{i}' for i in range(4)],
                    metadata={'flavor': f'f{h}'}) for h in range(3)]
    storage.push(frames)
    assert count(storage, 'rated_labels') == 12
    assert storage.total(**WINDOW)['results'][0]['qty'] == 12

    real_hash = writes.label_hash
    monkeypatch.setattr(writes, 'label_hash', lambda canonical: (
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


def stored_sums(storage):
    """``(rated_totals rows, sums of rated_points)``, each ``{(batch, type):
    (qty, price)}``: summed in Python from the points; checks on the way
    that ``rated_daily_totals`` holds the sums of ``rated_totals``, and
    ``rated_monthly_totals`` those of the daily rows."""
    with storage.engine.connect() as conn:
        daily = {(r.scope_id, r.type, str(r.day)[:10]): (
            decimal.Decimal(r.qty), decimal.Decimal(r.price), r.totals)
            for r in conn.execute(sa.text(
                'SELECT scope_id, type, day, qty, price, totals '
                'FROM rated_daily_totals'))}
        by_month = {}
        for (scope, type_, day), sums in daily.items():
            key = (scope, type_, day[:7])
            by_month[key] = tuple(map(sum, zip(by_month.get(key, (0,) * 3),
                                               sums)))
        if sa.inspect(conn).has_table('rated_monthly_totals'):
            assert {(r.scope_id, r.type, str(r.month)[:7]): (
                decimal.Decimal(r.qty), decimal.Decimal(r.price), r.totals)
                for r in conn.execute(sa.text(
                    'SELECT scope_id, type, month, qty, price, totals '
                    'FROM rated_monthly_totals'))} == by_month
        expected = {}
        for r in conn.execute(sa.text(
                'SELECT scope_id, type, period_begin, qty, price '
                'FROM rated_totals WHERE scope_id IS NOT NULL')):
            key = (r.scope_id, r.type, str(r.period_begin)[:10])
            qty, price, count = expected.get(key, (0, 0, 0))
            expected[key] = (qty + decimal.Decimal(r.qty),
                             price + decimal.Decimal(r.price), count + 1)
        assert daily == expected
        totals = {(r.batch_id, r.type): (decimal.Decimal(r.qty),
                                         decimal.Decimal(r.price))
                  for r in conn.execute(sa.text(
                      'SELECT batch_id, type, qty, price FROM rated_totals'))}
        sums = {}
        for r in conn.execute(sa.text(
                'SELECT batch_id, type, qty, price FROM rated_points')):
            qty, price = sums.get((r.batch_id, r.type), (0, 0))
            sums[r.batch_id, r.type] = (qty + decimal.Decimal(r.qty),
                                        price + decimal.Decimal(r.price))
    return totals, sums


def two_types(start, scope, resources, price):
    both = frame(start, scope, resources, price)
    for _, point in list(both.iterpoints()):
        both.add_point(point._replace(qty=decimal.Decimal('0.25')), 'volume')
    return both


def test_totals_follow_every_write(storage):
    """``rated_totals`` holds the exact sums of the points after pushes,
    replaces, and deletes by window, scope, type and label."""
    storage.push([two_types(T0 + h * HOUR, s, ['a', 'b', 'c'], '0.1234567')
                  for h in range(3) for s in ('p1', 'p2')])
    totals, sums = stored_sums(storage)
    assert len(totals) == 12 and totals == sums
    assert totals[min(totals)] == (3, decimal.Decimal('0.3703701'))

    storage.replace(two_types(T0, 'p1', ['d'], '7'), 'p1')
    storage.delete(filters={'id': 'a'}, begin=T0 + HOUR)
    storage.delete(begin=T0 + 2 * HOUR,
                   filters={'type': 'volume', 'project_id': 'p2'})
    storage.delete(filters={'id': 'b', 'project_id': 'p1'})
    totals, sums = stored_sums(storage)
    assert totals == sums and len(totals) == 11
    result = storage.total(groupby=['project_id', 'type'], **WINDOW)
    assert [(r['project_id'], r['type'], r['qty'], r['rate'])
            for r in result['results']] == [
        ('p1', 'instance', 3, decimal.Decimal('7.2469134')),
        ('p1', 'volume', decimal.Decimal('0.75'), decimal.Decimal('7.2469134')),
        ('p2', 'instance', 7, decimal.Decimal('0.8641969')),
        ('p2', 'volume', decimal.Decimal('1.25'),
         decimal.Decimal('0.6172835'))]


def test_totals_are_computed_by_the_migration(storage):
    storage.push([two_types(T0 + h * HOUR, 'p1', ['a', 'b'], '0.05')
                  for h in range(2)])
    before = storage.total(groupby=['type'], **WINDOW)['results']
    migration.downgrade(storage.engine, '0005')
    assert 'rated_totals' not in sa.inspect(
        storage.engine).get_table_names()
    storage.init()
    totals, sums = stored_sums(storage)
    assert len(totals) == 4 and totals == sums
    assert storage.total(groupby=['type'], **WINDOW)['results'] == before


def reference_total(storage, begin, end):
    """``{(scope, type): (qty, price)}`` summed in Python from the points
    of ``[begin, end)``."""
    sums = {}
    for _, type_, point in all_points(storage, begin=begin, end=end):
        key = (point.groupby.get('project_id'), type_)
        qty, price = sums.get(key, (0, 0))
        sums[key] = (qty + point.qty, price + point.price)
    return sums


def all_points(storage, **window):
    frames = storage.retrieve(paginate=False, **window)['dataframes']
    return [(f.start, t, p) for f in frames for t, p in f.iterpoints()]


@pytest.mark.parametrize('begin, end', [
    (T0, T0 + 72 * HOUR),  # whole days only
    (T0 + 7 * HOUR, T0 + 66 * HOUR),  # ragged ends around whole days
    (T0 + 7 * HOUR, T0 + 20 * HOUR),  # within a day
    (T0 - 24 * HOUR, T0 + 24 * HOUR + HOUR),
])
def test_totals_by_day_match_the_points(storage, begin, end):
    """Sums read from whole days and ragged ends equal the points' sums,
    points without a scope included, after deletes inside days."""
    def frames(scope):
        return [two_types(T0 + h * 6 * HOUR, scope, ['a', 'b'],
                          f'0.{h + 1}{len(scope or "")}1') for h in range(12)]

    storage.push(frames('p1'), 'p1')
    storage.push(frames('p22') + frames(None))
    storage.delete(begin=T0 + 30 * HOUR, end=T0 + 37 * HOUR,
                   filters={'project_id': 'p22'})
    storage.delete(begin=T0 + 12 * HOUR, end=T0 + 13 * HOUR,
                   filters={'type': 'volume'})
    totals, sums = stored_sums(storage)
    assert totals == sums
    rows = storage.total(groupby=['project_id', 'type'], begin=begin,
                         end=end)['results']
    expected = reference_total(storage, begin, end)
    assert {(r['project_id'], r['type']): (r['qty'], r['rate'])
            for r in rows} == expected
    assert len(expected) >= 4


def test_totals_sum_the_values_as_stored(storage):
    """Values of more than 28 decimals are stored rounded: the totals are
    the sums of the rounded values, for a frame of one scope and for a
    frame of several."""
    long = decimal.Decimal('0.000000000000000000000000000150')  # 30 places

    def frame_of(scopes):
        return dataframe.DataFrame(T0, T0 + HOUR, {'instance': [
            dataframe.DataPoint('instance', long, long,
                                {'project_id': scope, 'id': str(i)}, {})
            for i, scope in enumerate(scopes)]})

    storage.push([frame_of(['p1', 'p1', 'p1'])], 'p1')
    storage.push([frame_of(['p2', 'p3', 'p2'])])
    totals, sums = stored_sums(storage)
    assert totals == sums
    two = decimal.Decimal('4E-28')  # two points of 2E-28 each
    assert sorted(totals.values()) == [(decimal.Decimal('2E-28'),) * 2,
                                       (two, two), (6 * two / 4,) * 2]


@pytest.mark.parametrize('begin, hash_grouping', [
    (T0, False),  # whole days: the groups are read along the daily key
    (T0 + HOUR, True),  # a partial day: a union without key order
])
def test_a_summary_page_costs_a_few_statements(storage, begin,
                                               hash_grouping):
    """A full page of groups by scope and type, and their count, in a fixed
    number of statements whatever the data; on PostgreSQL, the settings of
    the read in one of them."""
    storage.push([frame(T0 + h * HOUR, f'p{s}', ['a', 'b'])
                  for h in range(30) for s in range(3)])
    statements = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)
    sa.event.listen(storage.engine, 'before_cursor_execute', record)
    try:
        result = storage.total(groupby=['project_id', 'type'], begin=begin,
                               end=T0 + 48 * HOUR, offset=0, limit=2)
    finally:
        sa.event.remove(storage.engine, 'before_cursor_execute', record)
    assert result['total'] == 3
    assert [r['project_id'] for r in result['results']] == ['p0', 'p1']
    # The probe for unscoped points, the page and the count, plus the
    # settings (one statement on PostgreSQL, a SET and its reset on
    # MariaDB) or SQLite's BEGIN.
    dialect = storage.engine.dialect.name
    assert len(statements) == 3 + {'postgresql': 1, 'mysql': 2,
                                   'mariadb': 2, 'sqlite': 1}[dialect]
    if dialect == 'postgresql':
        settings = [s for s in statements if 'set_config' in s]
        assert len(settings) == 1
        assert ('enable_hashagg' in settings[0]) is not hash_grouping


def test_reads_neither_wait_for_nor_hold_back_writes(storage, storage_url):
    """A read sees one state from its first statement on, while another
    process stores points (on SQLite too, where writes take the lock)."""
    storage.push([frame(T0, 'p1', ['a'])])
    other = backend.SQLAlchemyStorage(db_servers.make_conf(storage_url))
    points = sa.text('SELECT COUNT(*) FROM rated_points')
    try:
        with storage._dialect.snapshot({}) as conn:
            assert conn.execute(points).scalar() == 1
            writer = threading.Thread(target=other.push, args=(
                [frame(T0 + HOUR, 'p1', ['b'])],))
            writer.start()
            writer.join(10)
            assert not writer.is_alive(), 'the write waited for the read'
            assert conn.execute(points).scalar() == 1
            with storage._dialect.snapshot({}) as second:
                assert second.execute(points).scalar() == 2
    finally:
        writer.join()
        other.engine.dispose()
    assert count(storage, 'rated_points') == 2


def test_priced_frames_store_their_price_columns_unbuilt(storage,
                                                         monkeypatch):
    """A frame priced by columns (as the hashmap prices) is stored with the
    column's prices, not its points' former ones, without building its
    priced points: alone (replace), and holding several scopes (a push
    whose points name their scope)."""
    def priced(start, points):  # points: [(scope, resource)]
        unpriced = dataframe.DataFrame(start, start + HOUR, {'instance': [
            dataframe.DataPoint('instance', 1, '0',
                                {'project_id': scope, 'id': resource}, {})
            for scope, resource in points]})
        return unpriced.with_prices({'instance': [
            decimal.Decimal(f'1.{index}25') for index in range(len(points))]})

    alone = priced(T0, [('p1', 'a'), ('p1', 'b')])
    mixed = priced(T0 + HOUR, [('p1', 'a'), ('p2', 'a'), ('p1', 'c'),
                               ('p2', 'b')])
    built = []
    monkeypatch.setattr(dataframe.DataFrame, '_build', lambda self, *_:
                        built.append(self))
    storage.replace(alone, 'p1')
    storage.push([mixed])
    assert built == []
    monkeypatch.undo()
    result = storage.total(groupby=['project_id', 'id'], **WINDOW)
    assert [(r['project_id'], r['id'], r['rate'])
            for r in result['results']] == [
        ('p1', 'a', decimal.Decimal('2.050')),
        ('p1', 'b', decimal.Decimal('1.125')),
        ('p1', 'c', decimal.Decimal('1.225')),
        ('p2', 'a', decimal.Decimal('1.125')),
        ('p2', 'b', decimal.Decimal('1.325'))]
