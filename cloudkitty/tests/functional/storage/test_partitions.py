"""Time partitions and retention of the sqlalchemy backend.

On PostgreSQL (a database of each test's own: partitions are schema):
the plans of a month's reads and of a period's replace name that month's
partitions only; ``maintain`` creates the partitions ahead, once however
many processors run it; the retention drops whole partitions and keeps
every other row; a database filled before migration 0009 is converted,
killed halfway and resumed, with every point exactly once. On MariaDB and
SQLite the retention deletes whole batches, a bounded number per
transaction.
"""

import datetime
import decimal
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import sqlalchemy as sa

from cloudkitty.cli import storage_partition
from cloudkitty import dataframe
from cloudkitty.db import migration
from cloudkitty.orchestrator import processor
from cloudkitty.storage.v2.sqlalchemy import backend
from cloudkitty.storage.v2.sqlalchemy import maintenance
from cloudkitty.storage.v2.sqlalchemy import partitions
from cloudkitty.tests.functional import storage as db_servers
from cloudkitty.tests.functional.storage import test_sqlalchemy as helpers

UTC = datetime.timezone.utc
HOUR = datetime.timedelta(hours=1)
DAY = datetime.timedelta(days=1)
JAN, FEB, MAR, APR, MAY = (datetime.datetime(2024, month, 1, tzinfo=UTC)
                           for month in (1, 2, 3, 4, 5))
# The tables a push writes (the upkeep alone writes rated_label_days).
WRITTEN = tuple(item for item in partitions.TABLES
                if item[0] != 'rated_label_days')


def at(month, day, hour=0):
    return month + (day - 1) * DAY + hour * HOUR


def frame(start, scope, resources, price):
    """Two types of points of ``resources`` in the hour from ``start``."""
    return dataframe.DataFrame(start, start + HOUR, {type_: [
        dataframe.DataPoint('u', decimal.Decimal(f'1.{i}'),
                            decimal.Decimal(price) * (i + 1),
                            {'project_id': scope, 'id': r}, {})
        for i, r in enumerate(resources)] for type_ in ('instance', 'volume')})


def fill(storage, months, scopes=('p1', 'p2'), days=(1, 15, 28)):
    """Push, for each of ``months``, ``days`` and two hours a day, the
    points of three resources of each scope (prices differ by month)."""
    for m, month in enumerate(months):
        for day in days:
            for hour in (0, 23):
                for scope in scopes:
                    storage.push([frame(at(month, day, hour), scope,
                                        ['a', 'b', 'c'],
                                        f'0.01{m}{day}{hour}')], scope)


def snapshot(storage, begin=None, end=None):
    """Count, sum of qty and of price of the points of ``[begin, end)``,
    after checking that the totals and daily sums match them."""
    totals, sums = helpers.stored_sums(storage)
    assert totals == sums
    where, params = 'WHERE TRUE', {}
    if begin is not None:
        where += ' AND period_begin >= :begin'
        params['begin'] = begin.replace(tzinfo=None)
    if end is not None:
        where += ' AND period_begin < :end'
        params['end'] = end.replace(tzinfo=None)
    with storage.engine.connect() as conn:
        count, qty, price = conn.execute(sa.text(
            f'SELECT COUNT(*), SUM(qty), SUM(price) FROM rated_points '
            f'{where}'), params).one()
        distinct = conn.execute(sa.text(
            f'SELECT COUNT(*) FROM (SELECT DISTINCT batch_id, seq FROM '
            f'rated_points {where}) AS points'), params).scalar()
    assert count == distinct  # no point twice
    return count, decimal.Decimal(qty or 0), decimal.Decimal(price or 0)


@pytest.fixture
def pg_url():
    try:
        with db_servers.fresh_database('postgresql', 'ck_part') as url:
            yield url
    except db_servers.ServerUnavailable as exc:
        if os.environ.get('CI') == 'true':
            pytest.fail(f'postgresql is required under CI: {exc}')
        pytest.skip(str(exc))


def _storage(url, **options):
    conf = db_servers.make_conf(url)
    for name, value in options.items():
        group = 'storage' if name == 'retention' else 'storage_sqlalchemy'
        conf.set_override(name, value, group)
    return backend.SQLAlchemyStorage(conf)


@pytest.fixture
def pg_storage(pg_url):
    """A storage on a new PostgreSQL database at the head revision, with
    monthly partitions from January to May 2024."""
    storage = _storage(pg_url, partitions_ahead=4)
    storage.init()
    storage.maintain(JAN + 9 * DAY)
    yield storage
    storage.engine.dispose()


def partition_rows(storage):
    """``{partition: rows}`` of the four tables."""
    with storage.engine.connect() as conn:
        return dict(conn.exec_driver_sql(' UNION ALL '.join(
            f'SELECT tableoid::regclass::text, COUNT(*) FROM {table} '
            f'GROUP BY 1' for table, _ in partitions.TABLES)).all())


@pytest.mark.parametrize('interval, start, end', [
    ('day', datetime.datetime(2024, 2, 29), datetime.datetime(2024, 3, 1)),
    ('week', datetime.datetime(2024, 2, 26), datetime.datetime(2024, 3, 4)),
    ('month', datetime.datetime(2024, 2, 1), datetime.datetime(2024, 3, 1)),
    ('year', datetime.datetime(2024, 1, 1), datetime.datetime(2025, 1, 1))])
def test_intervals_start_as_postgresql_truncates(interval, start, end):
    moment = datetime.datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=UTC)
    assert partitions.floor(moment, interval) == start
    assert partitions.floor(start, interval) == start
    assert partitions.following(start, interval) == end
    december = datetime.datetime(2023, 12, 1)
    assert partitions.following(december, 'month') == datetime.datetime(
        2024, 1, 1)


# -- plans --------------------------------------------------------------------

def _relations(plan):
    """The relations a JSON plan reads or writes."""
    found = set()
    if isinstance(plan, dict):
        if 'Relation Name' in plan:
            found.add(plan['Relation Name'])
        for value in plan.values():
            found |= _relations(value)
    elif isinstance(plan, list):
        for value in plan:
            found |= _relations(value)
    return found


def touched(storage, work):
    """Run ``work()``; return the partitions named by the plans of the
    statements it sent (each EXPLAINed afterwards, with its parameters)."""
    sent = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if not executemany and statement.lstrip().split(None, 1)[0].upper() \
                in ('SELECT', 'DELETE', 'UPDATE', 'INSERT', 'WITH'):
            sent.append((statement, parameters))
    sa.event.listen(storage.engine, 'before_cursor_execute', record)
    try:
        work()
    finally:
        sa.event.remove(storage.engine, 'before_cursor_execute', record)
    assert sent
    found = set()
    with storage.engine.connect() as conn:
        names = partitions.names(conn)
        for statement, parameters in sent:
            plan = conn.exec_driver_sql(
                f'EXPLAIN (FORMAT JSON) {statement}', parameters).scalar()
            if isinstance(plan, str):
                plan = json.loads(plan)
            found |= _relations(plan) & names
    return found


def february(tables=partitions.TABLES):
    return {f'{table}_p20240201' for table, _ in tables}


def test_a_months_reads_and_replace_touch_its_partitions_only(pg_storage):
    fill(pg_storage, (JAN, FEB, MAR))
    month = {'begin': FEB, 'end': MAR}
    total = touched(pg_storage, lambda: pg_storage.total(
        groupby=['project_id', 'type'], **month))
    # A whole month: its sums by month, a table not partitioned (and
    # whether the month has points without a scope).
    assert total <= {'rated_totals_p20240201'}
    days = touched(pg_storage, lambda: pg_storage.total(
        groupby=['project_id', 'type'], begin=FEB + DAY, end=MAR))
    assert days == {'rated_daily_totals_p20240201', 'rated_totals_p20240201'}
    ragged = touched(pg_storage, lambda: pg_storage.total(
        groupby=['project_id', 'type'], begin=FEB + HOUR, end=MAR))
    assert ragged == {'rated_daily_totals_p20240201',
                      'rated_totals_p20240201'}
    by_day = touched(pg_storage, lambda: pg_storage.total(
        groupby=['project_id', 'time-d'], **month))
    assert by_day <= february() and by_day
    points = touched(pg_storage, lambda: pg_storage.retrieve(
        limit=10, **month))
    assert points <= february() and 'rated_points_p20240201' in points
    before = snapshot(pg_storage)
    replace = touched(pg_storage, lambda: pg_storage.replace(
        frame(at(FEB, 15), 'p1', ['a', 'b', 'c'], '0.011150'), 'p1'))
    assert replace == february(WRITTEN), replace
    assert snapshot(pg_storage) == before


def test_the_sums_by_label_get_the_partitions_of_the_daily_sums(pg_storage):
    """Migration 0010 on a partitioned database: ``rated_label_days``
    has the bounds of ``rated_daily_totals``, and a DEFAULT partition."""
    fill(pg_storage, (FEB,))
    migration.downgrade(pg_storage.engine, '0009')
    migration.upgrade(pg_storage.engine)
    with pg_storage.engine.connect() as conn:
        daily = partitions.partitions(conn, 'rated_daily_totals')
        by_label = partitions.partitions(conn, 'rated_label_days')
    assert by_label[0] == 'rated_label_days_default'
    assert [(f'rated_label_days{name[len("rated_daily_totals"):]}', low, up)
            for name, low, up in daily[1]] == by_label[1]
    assert len(by_label[1]) == 5
    pg_storage.maintain(MAR)
    assert partition_rows(pg_storage)['rated_label_days_p20240201'] > 0


# -- partitions ahead ---------------------------------------------------------

def test_maintain_creates_the_partitions_ahead_once(pg_url):
    storage = _storage(pg_url, partitions_ahead=2)
    storage.init()
    try:
        # A point of a month without partition yet: in DEFAULT.
        storage.push([frame(at(MAR, 3), 'p1', ['a'], '0.5')], 'p1')
        assert partition_rows(storage) == {
            'rated_batches_default': 1, 'rated_points_default': 2,
            'rated_totals_default': 2, 'rated_daily_totals_default': 2}
        before = snapshot(storage)
        now = at(JAN, 31, 23)
        upkeeps = []

        def maintain():
            upkeeps.append(_storage(pg_url, partitions_ahead=2).maintain(
                now))
        threads = [threading.Thread(target=maintain) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        created = sorted(name for upkeep in upkeeps
                         for name in upkeep.created)
        assert created == sorted(f'{table}_p2024{month:02}01'
                                 for table, _ in partitions.TABLES
                                 for month in (1, 2, 3))
        with storage.engine.connect() as conn:
            default, ranges = partitions.partitions(conn, 'rated_points')
        assert default == 'rated_points_default'
        assert [(lower, upper) for _, lower, upper in ranges] == [
            (datetime.datetime(2024, m, 1), datetime.datetime(2024, m + 1, 1))
            for m in (1, 2, 3)]
        # The March rows left DEFAULT for March's partitions.
        assert partition_rows(storage) == {
            'rated_batches_p20240301': 1, 'rated_points_p20240301': 2,
            'rated_totals_p20240301': 2, 'rated_daily_totals_p20240301': 2}
        assert snapshot(storage) == before
        assert storage.maintain(now).created == []
        assert storage.maintain(at(FEB, 1)).created == [
            f'{table}_p20240401' for table, _ in partitions.TABLES]
    finally:
        storage.engine.dispose()


def test_the_processor_keeps_the_storage_up():
    stop = threading.Event()
    calls = []

    class Storage:
        def maintain(self, now):
            calls.append(now)
            if len(calls) == 1:
                raise RuntimeError('database down')
            if len(calls) == 3:
                stop.set()

    processor.keep_up_storage(Storage(), stop, every=0.01)
    assert len(calls) == 3
    assert all(now.tzinfo is not None for now in calls)


# -- retention ----------------------------------------------------------------

def test_retention_drops_whole_partitions_and_keeps_the_rest(pg_url):
    storage = _storage(pg_url, partitions_ahead=4)
    storage.init()
    try:
        # December: before every partition, in DEFAULT.
        fill(storage, (datetime.datetime(2023, 12, 1, tzinfo=UTC),),
             days=(30,))
        storage.maintain(JAN)
        fill(storage, (JAN, FEB, MAR, APR))
        kept = snapshot(storage, MAR)
        assert kept[0] == 2 * 3 * 2 * 2 * 3 * 2  # months, days, hours...
        summary = storage.total(groupby=['project_id'], begin=MAR, end=MAY)
        # The days are summed by label first: January to March's, April
        # 1st (December's were by the first upkeep).
        assert len(storage.maintain(at(APR, 12)).rolled) == 3 * 3 + 1
        assert 'rated_label_days_p20240101' in partition_rows(storage)
        by_label = storage.total(groupby=['id'], begin=MAR, end=MAY)
        storage.conf.set_override('retention', 40, 'storage')
        # 40 days before April 12th is March 3rd: January and February
        # are wholly older; March is not.
        upkeep = storage.maintain(at(APR, 12))
        assert sorted(upkeep.dropped) == sorted(
            f'{table}_p2024{month:02}01' for table, _ in partitions.TABLES
            for month in (1, 2))
        assert (upkeep.batches, upkeep.transactions) == (4, 1)  # December
        assert snapshot(storage) == kept
        assert storage.total(groupby=['project_id'], begin=MAR,
                             end=MAY) == summary
        assert storage.total(groupby=['id'], begin=MAR, end=MAY) == by_label
        rows = partition_rows(storage)
        assert 'rated_label_days_p20240301' in rows
        assert {name[-10:] for name in rows} == {'_p20240301', '_p20240401'}
        # Later, March is still partly inside the retention.
        assert storage.maintain(at(APR, 30)).dropped == []
    finally:
        storage.engine.dispose()


def test_retention_by_week_sums_the_month_it_cuts_again(pg_url):
    """Weekly partitions: the retention drops the weeks before a cutoff
    inside February; the monthly sums of January go, and February's are
    those of its days kept."""
    storage = _storage(pg_url, partition_interval='week', partitions_ahead=1)
    storage.init()
    try:
        week = JAN  # a Monday
        while week < APR:
            storage.maintain(week)
            week += 7 * DAY
        fill(storage, (JAN, FEB, MAR))
        kept = snapshot(storage, at(FEB, 12))
        storage.conf.set_override('retention', 40, 'storage')
        # 40 days before March 23rd is Monday February 12th.
        upkeep = storage.maintain(at(MAR, 23))
        assert 'rated_points_p20240205' in upkeep.dropped
        assert 'rated_points_p20240212' not in upkeep.dropped
        assert snapshot(storage) == kept  # monthly sums: those of the days

        def sums(begin):
            return [(row['project_id'], row['type'], row['qty'], row['rate'])
                    for row in storage.total(groupby=['project_id', 'type'],
                                             begin=begin, end=MAR)['results']]
        assert sums(FEB) == sums(at(FEB, 12)) and len(sums(FEB)) == 4
        assert storage.total(begin=JAN, end=FEB)['total'] == 0
    finally:
        storage.engine.dispose()


@pytest.mark.parametrize('storage_url', ['sqlite', 'mariadb'],
                         indirect=True)
def test_retention_deletes_whole_batches_a_few_at_a_time(storage):
    fill(storage, (JAN, FEB, MAR), scopes=('p1', 'p2', 'p3'))
    kept = snapshot(storage, at(FEB, 28))
    summary = storage.total(groupby=['project_id', 'type'],
                            begin=at(FEB, 28), end=APR)
    old = snapshot(storage, end=at(FEB, 28))
    # January's 3 days and February's first 2, 2 hours a day, 3 scopes:
    # 30 batches of 6 points.
    assert old[0] == 30 * 6
    batches = maintenance.delete_before(storage.engine, storage._writer,
                                        at(FEB, 28), size=7)
    assert batches == (30, 5)
    assert snapshot(storage) == kept
    assert storage.total(groupby=['project_id', 'type'], begin=at(FEB, 28),
                         end=APR) == summary
    storage.conf.set_override('retention', 20, 'storage')
    upkeep = storage.maintain(at(APR, 1))  # before March 12th
    assert (upkeep.created, upkeep.dropped) == ([], [])
    assert upkeep.batches == 6 * 2  # February 28th, March 1st
    assert snapshot(storage) == snapshot(storage, at(MAR, 12))
    assert snapshot(storage)[0] == 2 * 2 * 3 * 3 * 2


# -- conversion ---------------------------------------------------------------

def _config_file(tmp_path, url):
    path = tmp_path / 'cloudkitty.conf'
    path.write_text(f'[database]\nconnection = {url}\n'
                    f'[storage_sqlalchemy]\nconnection = {url}\n')
    return str(path)


def test_a_database_filled_before_0009_is_converted_every_point_once(
        pg_url, tmp_path):
    storage = _storage(pg_url)
    try:
        # Filled at the head revision (the code writes its tables), then
        # taken down to 0008 with its rows.
        migration.upgrade(storage.engine)
        fill(storage, (JAN, FEB, MAR))
        summary = storage.total(groupby=['project_id', 'type', 'time-d'],
                                begin=JAN, end=APR)
        migration.downgrade(storage.engine, '0008')
        before = snapshot(storage)
        migration.upgrade(storage.engine)
        # The former tables are the DEFAULT partitions: nothing moved yet.
        assert set(partition_rows(storage)) == {
            f'{table}_legacy' for table, _ in WRITTEN}
        assert snapshot(storage) == before
        # Killed while it moves February, January done: another
        # transaction creating a table of the name of February's last
        # partition makes the command wait there, February's batches,
        # points and totals moved.
        config = _config_file(tmp_path, pg_url)
        with storage.engine.connect() as blocker:
            blocker.exec_driver_sql(
                'CREATE TABLE rated_daily_totals_p20240201 (id int)')
            command = subprocess.Popen(
                [sys.executable, '-m', 'cloudkitty.cli.storage_partition',
                 '--config-file', config], stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT)
            backend_pid = _waiting_backend(storage, command)
            command.send_signal(signal.SIGKILL)
            command.wait()
            with storage.engine.connect() as admin:
                admin.exec_driver_sql(
                    f'SELECT pg_terminate_backend({backend_pid})')
            blocker.rollback()
        halfway = partition_rows(storage)
        assert 'rated_points_p20240101' in halfway
        assert 'rated_points_p20240201' not in halfway
        assert halfway['rated_points_legacy'] == 2 * before[0] // 3
        assert snapshot(storage) == before
        # Resumed.
        result = subprocess.run(
            [sys.executable, '-m', 'cloudkitty.cli.storage_partition',
             '--config-file', config], capture_output=True, text=True,
            check=True)
        assert 'rated_points: DEFAULT partition rated_points_default' in \
            result.stdout
        rows = partition_rows(storage)
        assert sorted(rows) == sorted(
            f'{table}_p2024{month:02}01' for table, _ in WRITTEN
            for month in (1, 2, 3))
        assert snapshot(storage) == before
        for month, end in ((JAN, FEB), (FEB, MAR), (MAR, APR)):
            assert rows[f'rated_points_p{month:%Y%m%d}'] == snapshot(
                storage, month, end)[0] == before[0] // 3
        assert storage.total(groupby=['project_id', 'type', 'time-d'],
                             begin=JAN, end=APR) == summary
        # Writes go on: ids keep coming from the former sequence.
        storage.push([frame(at(MAR, 2), 'p3', ['z'], '1')], 'p3')
        assert snapshot(storage)[0] == before[0] + 2
        # And the revision goes down and up with its partitions.
        migration.downgrade(storage.engine, '0008')
        assert snapshot(storage)[0] == before[0] + 2
        migration.upgrade(storage.engine)
        assert snapshot(storage)[0] == before[0] + 2
    finally:
        storage.engine.dispose()


def _waiting_backend(storage, command, timeout=60):
    """The pid of the server process of ``command`` once it waits to
    create February's daily partition."""
    deadline = time.monotonic() + timeout
    with storage.engine.connect() as conn:
        while time.monotonic() < deadline:
            assert command.poll() is None, command.stdout.read()
            pid = conn.exec_driver_sql(
                "SELECT pid FROM pg_stat_activity WHERE datname = "
                "current_database() AND wait_event_type = 'Lock' AND "
                "query LIKE 'CREATE TABLE rated_daily_totals_p20240201%%'"
            ).scalar()
            if pid is not None:
                return pid
            conn.rollback()
            time.sleep(0.1)
    raise AssertionError('the command never waited')


def test_the_command_refuses_rated_data_that_is_not_partitioned(
        tmp_path, capsys):
    url = f'sqlite:///{tmp_path}/ck.sqlite'
    _storage(url).init()
    assert storage_partition.main(
        ['--config-file', _config_file(tmp_path, url)]) == 1
    assert 'not partitioned' in capsys.readouterr().out
