"""The import's rated-data copy, verification and row copy on SQLite,
with a source of frames in memory (no upstream needed): replace per chunk,
nothing stored twice, a killed run resumed, a difference found, ids kept,
a conflicting row refused, upstream's database only read."""

import datetime
import decimal

import pytest
import sqlalchemy as sa

from cloudkitty.cli import import_upstream
from cloudkitty import dataframe
from cloudkitty import db
from cloudkitty.db import migration
from cloudkitty import importer
from cloudkitty.importer import rated
from cloudkitty.importer import rows
from cloudkitty.importer import rules
from cloudkitty.importer import verify
from cloudkitty.rating.hash import models as hash_models
from cloudkitty.storage.v2 import sqlalchemy as ck_sqlalchemy
from cloudkitty.tests.functional import storage as db_servers

UTC = datetime.timezone.utc
D = decimal.Decimal
BEGIN = datetime.datetime(2026, 1, 30, tzinfo=UTC)
END = datetime.datetime(2026, 2, 3, tzinfo=UTC)
HOUR = datetime.timedelta(hours=1)


class Killed(Exception):
    pass


class MemorySource(importer.RatedSource):
    """Hourly frames of two scopes and types; ``kill_at``: the chunk start
    whose read raises, as a kill would stop the run there."""

    tolerance = 1e-9

    def __init__(self, kill_at=None):
        self.kill_at = kill_at
        self.points = []
        moment = BEGIN
        while moment < END:
            frame = dataframe.DataFrame(moment, moment + HOUR)
            for n, scope in enumerate(('a', 'b')):
                frame.add_point(dataframe.DataPoint(
                    'instance', 1, D('0.1') * (n + 1) + D(moment.hour) / 1000,
                    {'project_id': scope, 'id': f'vm-{scope}'},
                    {'flavor': 'm1'}), 'instance')
                frame.add_point(dataframe.DataPoint(
                    'GiB', D('2.5'), D('0.0485'), {'project_id': scope},
                    {}), 'volume')
            self.points.append(frame)
            moment += HOUR

    def bounds(self):
        return self.points[0].start, self.points[-1].start

    def _window(self, begin, end):
        return [f for f in self.points if begin <= f.start < end]

    def count(self, begin, end):
        return sum(len(f) for f in self._window(begin, end))

    def frames(self, begin, end):
        if begin == self.kill_at:
            raise Killed()
        return self._window(begin, end)

    def totals(self, begin, end):
        return rated.sums(self._window(begin, end), 'project_id')


@pytest.fixture
def storage(tmp_path):
    url = f'sqlite:///{tmp_path}/ours.sqlite'
    backend = ck_sqlalchemy.SQLAlchemyStorage(db_servers.make_conf(url))
    backend.init()
    yield backend
    backend.engine.dispose()


def copy(source, storage, lines):
    return rated.copy_rated(source, storage, BEGIN, END, out=lines.append)


def test_copy_replaces_each_chunk_and_a_second_run_stores_nothing(storage):
    outside = dataframe.DataFrame(END, END + HOUR)
    outside.add_point(dataframe.DataPoint('u', 1, 7, {'project_id': 'a'},
                                          {}), 'instance')
    stray = dataframe.DataFrame(BEGIN, BEGIN + HOUR)
    stray.add_point(dataframe.DataPoint('u', 1, 1000, {'project_id': 'z'},
                                        {}), 'instance')
    storage.push([outside, stray])
    source = MemorySource()
    lines = []
    progress = copy(source, storage, lines)
    assert (progress.points, progress.stored, progress.chunks_stored,
            progress.chunks_skipped) == (384, 384, 4, 0)
    assert lines[-1].startswith('[2026-02-02 00:00 .. 2026-02-03 00:00) '
                                '96 points stored; 384/384 points,')
    assert all(line.agrees for line in verify.compare(
        source, storage, BEGIN, END))
    # The stray point of the window is gone, the one after it stays.
    assert rated.stored_sums(storage, BEGIN, END + HOUR)[('a', 'volume')] \
        == (D(240), D('4.656'))
    assert ('z', 'instance') not in rated.stored_sums(storage, BEGIN, END)
    assert rated.stored_sums(storage, END, END + HOUR) == {
        ('a', 'instance'): (D(1), D(7))}

    again = copy(source, storage, lines)
    assert (again.stored, again.chunks_skipped) == (0, 4)
    assert lines[-1].startswith('[2026-02-02 00:00 .. 2026-02-03 00:00) '
                                '96 points already stored;')


def test_a_killed_run_resumed_stores_each_point_once(storage):
    with pytest.raises(Killed):
        copy(MemorySource(kill_at=BEGIN + 2 * datetime.timedelta(days=1)),
             storage, [])
    source = MemorySource()
    resumed = copy(source, storage, [])
    assert (resumed.chunks_skipped, resumed.chunks_stored) == (2, 2)
    lines = verify.compare(source, storage, BEGIN, END)
    assert [(f'{line.month:%m}', line.scope_id, line.type, line.agrees)
            for line in lines] == [
        ('01', 'a', 'instance', True), ('01', 'a', 'volume', True),
        ('01', 'b', 'instance', True), ('01', 'b', 'volume', True),
        ('02', 'a', 'instance', True), ('02', 'a', 'volume', True),
        ('02', 'b', 'instance', True), ('02', 'b', 'volume', True)]
    # 24 hours of 2026-01-30 and 31 for scope a: 48 instance points of
    # qty 1 priced 0.1 + hour / 1000.
    assert lines[0].ours == (D(48), D('5.352'))


def test_verification_finds_a_missing_day(storage):
    source = MemorySource()
    copy(source, storage, [])
    storage.delete(begin=BEGIN, end=BEGIN + HOUR,
                   filters={'project_id': 'b', 'type': 'volume'})
    lines = verify.compare(source, storage, BEGIN, END)
    assert [(line.scope_id, line.type) for line in lines
            if not line.agrees] == [('b', 'volume')]
    assert 'DIFFERS' in verify.table(lines)


class SloppySource(MemorySource):
    """Gives every frame whatever the window."""

    def frames(self, begin, end):
        return self.points


def test_a_period_outside_the_chunk_is_refused(storage):
    with pytest.raises(importer.ImportFailed, match='a period starting '
                       '2026-01-31T00:00:00'):
        copy(SloppySource(), storage, [])
    assert rated.stored_sums(storage, BEGIN, END) == {}


UPSTREAM_DDL = """
-- Costs and levels as text: MariaDB's DECIMAL is exact, SQLite's
-- NUMERIC would turn them into floats.
CREATE TABLE hashmap_services (id INTEGER PRIMARY KEY, service_id TEXT,
    name TEXT);
CREATE TABLE hashmap_fields (id INTEGER PRIMARY KEY, field_id TEXT,
    service_id INTEGER, name TEXT);
CREATE TABLE hashmap_groups (id INTEGER PRIMARY KEY, group_id TEXT,
    name TEXT);
CREATE TABLE hashmap_mappings (id INTEGER PRIMARY KEY, mapping_id TEXT,
    value TEXT, cost TEXT, map_type TEXT, service_id INTEGER,
    field_id INTEGER, group_id INTEGER, tenant_id TEXT, name TEXT,
    created_at DATETIME, start DATETIME, "end" DATETIME, description TEXT,
    deleted DATETIME, created_by TEXT, updated_by TEXT, deleted_by TEXT);
CREATE TABLE hashmap_thresholds (id INTEGER PRIMARY KEY, threshold_id TEXT,
    level TEXT, cost TEXT, map_type TEXT, service_id INTEGER,
    field_id INTEGER, group_id INTEGER, tenant_id TEXT);
INSERT INTO hashmap_services VALUES (7, 'svc-uuid', 'instance');
INSERT INTO hashmap_groups VALUES (3, 'grp-uuid', 'g');
INSERT INTO hashmap_fields VALUES (9, 'fld-uuid', 7, 'flavor');
INSERT INTO hashmap_mappings VALUES (12, 'map-uuid', 'm1', '1.337', 'flat',
    NULL, 9, 3, 'tenant-1', 'm1 flat', '2025-12-01 10:00:00',
    '2026-01-01 00:00:00', NULL, 'd', NULL, 'admin', NULL, NULL);
INSERT INTO hashmap_thresholds VALUES (4, 'thr-uuid', '50', '0.98', 'rate',
    7, NULL, NULL, NULL);
"""


def upstream_sqlite(tmp_path, script):
    """The URL of an SQLite file standing for upstream's database, made
    by ``script`` (statements separated by semicolons)."""
    url = f'sqlite:///{tmp_path}/upstream.sqlite'
    setup = db.create_engine(url)
    with setup.begin() as conn:
        for statement in script.split(';'):
            if statement.strip():
                conn.exec_driver_sql(statement)
    setup.dispose()
    return url


@pytest.fixture
def engines(tmp_path):
    up_url = upstream_sqlite(tmp_path, UPSTREAM_DDL)
    ours = db.create_engine(f'sqlite:///{tmp_path}/ours.sqlite')
    migration.upgrade(ours)
    upstream = importer.upstream_engine(up_url)
    yield upstream, ours
    upstream.dispose()
    ours.dispose()


def copy_hashmap(upstream, ours):
    counts = {}
    with upstream.connect() as up, ours.begin() as conn:
        for table in rules.HASHMAP:
            counts[table.source] = str(rows.copy_table(up, conn, table))
    return counts


def test_rules_keep_their_ids_and_a_second_copy_changes_nothing(engines):
    upstream, ours = engines
    assert set(copy_hashmap(upstream, ours).values()) == {
        '1 inserted, 0 updated, 0 unchanged'}
    mappings = hash_models.HashMapMapping.__table__.c
    thresholds = hash_models.HashMapThreshold.__table__.c
    with ours.connect() as conn:
        assert conn.execute(sa.select(
            mappings.id, mappings.mapping_id, mappings.type, mappings.cost,
            mappings.field_id, mappings.group_id, mappings.tenant_id,
            mappings.start, mappings.created_at)).all() == [
            (12, 'map-uuid', 'flat', D('1.337'), 9, 3, 'tenant-1',
             datetime.datetime(2026, 1, 1),
             datetime.datetime(2025, 12, 1, 10))]
        assert conn.execute(sa.select(
            thresholds.id, thresholds.level, thresholds.cost, thresholds.type,
            thresholds.service_id)).all() == [
            (4, D(50), D('0.98'), 'rate', 7)]
    assert set(copy_hashmap(upstream, ours).values()) == {
        '0 inserted, 0 updated, 1 unchanged'}


def test_a_rule_of_ours_holding_an_upstream_id_is_refused(engines):
    upstream, ours = engines
    with ours.begin() as conn:
        conn.exec_driver_sql("INSERT INTO hashmap_services (id, service_id, "
                             "name) VALUES (7, 'our-uuid', 'volume')")
    with pytest.raises(importer.ImportConflict, match="service_id 'our-uuid'"
                       ", upstream has 'svc-uuid'"):
        copy_hashmap(upstream, ours)


def test_upstream_database_is_only_read(engines):
    upstream, _ = engines
    with pytest.raises(sa.exc.OperationalError, match='readonly|read-only'):
        with upstream.begin() as conn:
            conn.exec_driver_sql('DELETE FROM hashmap_services')


def test_a_threshold_with_no_level_stops_the_import_named(tmp_path,
                                                          capsys):
    upstream = upstream_sqlite(tmp_path, UPSTREAM_DDL + """;
        INSERT INTO hashmap_thresholds VALUES (5, 'thr-null', NULL, '0.5',
            'flat', 7, NULL, NULL, NULL)""")
    ours = f'sqlite:///{tmp_path}/ck.db'
    conf = tmp_path / 'cloudkitty.conf'
    conf.write_text(f'[database]\nconnection = {ours}\n')
    argv = ['--config-file', str(conf), '--upstream-db', upstream,
            '--source', 'none']
    assert import_upstream.main(argv) == 2
    assert capsys.readouterr().err == (
        'cloudkitty-import-upstream: hashmap thresholds with no level: '
        'thr-null (id 5). Ours require one, and upstream\'s hashmap cannot '
        'rate with none: set the level in upstream (PUT /v1/rating/'
        'module_config/hashmap/thresholds/<threshold_id> with "level"; '
        'upstream\'s API sets 0 by default) or delete the threshold there, '
        'then run the import again. Nothing was copied.\n')
    engine = db.create_engine(ours)
    with engine.connect() as conn:
        assert conn.exec_driver_sql(
            'SELECT COUNT(*) FROM hashmap_services').scalar() == 0
    # Given its level, as the message says, the threshold is imported.
    writer = db.create_engine(upstream)
    with writer.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE hashmap_thresholds SET level = '0' WHERE id = 5")
    writer.dispose()
    assert import_upstream.main(argv) == 0
    thresholds = hash_models.HashMapThreshold.__table__.c
    with engine.connect() as conn:
        assert conn.execute(sa.select(
            thresholds.id, thresholds.threshold_id, thresholds.level,
            thresholds.cost).order_by(thresholds.id)).all() == [
            (4, 'thr-uuid', D(50), D('0.98')),
            (5, 'thr-null', D(0), D('0.5'))]
    engine.dispose()


# Dates as SQLAlchemy writes them on SQLite (text, compared as text).
V1_DDL = """
CREATE TABLE rated_data_frames (id INTEGER PRIMARY KEY, tenant_id TEXT,
    begin DATETIME, "end" DATETIME, unit TEXT, qty NUMERIC, res_type TEXT,
    rate FLOAT, "desc" TEXT);
INSERT INTO rated_data_frames VALUES
    (1, 'p1', '2026-01-31 23:00:00.000000', '2026-02-01 00:00:00.000000',
     'instance', '1.00000', 'instance', 0.1, '{"flavor": "m1"}'),
    (2, 'p1', '2026-01-31 23:00:00.000000', '2026-02-01 00:00:00.000000',
     'instance', '1.00000', 'instance', 0.2, '{"flavor": "m2"}'),
    (3, 'p2', '2026-02-01 00:00:00.000000', '2026-02-01 01:00:00.000000',
     'GiB', '2.50000', 'volume', 0.0485, '{}'),
    (4, NULL, '2026-02-01 00:00:00.000000', '2026-02-01 01:00:00.000000',
     'GiB', '1.00000', 'volume', 1e-07, '{}');
"""


def test_v1_sql_rated_data_frames_are_copied_and_agree(tmp_path, storage):
    source = rated.SOURCES['v1sql'](importer.upstream_engine(
        upstream_sqlite(tmp_path, V1_DDL)))
    begin, end = rated.default_window(source)
    assert (begin, end) == (datetime.datetime(2026, 1, 31, tzinfo=UTC),
                            datetime.datetime(2026, 2, 2, tzinfo=UTC))
    progress = rated.copy_rated(source, storage, begin, end,
                                out=lambda line: None)
    assert (progress.points, progress.stored) == (4, 4)
    # Prices are floats upstream: Decimal(repr(value)), summed exactly.
    assert rated.stored_sums(storage, begin, end) == {
        ('p1', 'instance'): (D(2), D('0.3')),
        ('p2', 'volume'): (D('2.5'), D('0.0485')),
        (None, 'volume'): (D(1), D('1E-7'))}
    lines = verify.compare(source, storage, begin, end)
    assert [line.agrees for line in lines] == [True, True, True]
    # Upstream's SUM of 0.1 and 0.2 is a float sum, within tolerance.
    assert lines[0].upstream == (D(2), D('0.30000000000000004'))
    retrieved = storage.retrieve(begin, end, paginate=False)['dataframes']
    assert [dict(point.metadata) for frame in retrieved
            for _, point in frame.iterpoints()][:2] == [
        {'flavor': 'm1'}, {'flavor': 'm2'}]


def test_command_exit_status_says_whether_totals_agree(tmp_path, capsys):
    upstream = upstream_sqlite(tmp_path, V1_DDL)
    conf = tmp_path / 'cloudkitty.conf'
    conf.write_text(f'[database]\nconnection = sqlite:///{tmp_path}/ck.db\n')
    argv = ['--config-file', str(conf), '--upstream-db', upstream,
            '--source', 'v1sql']
    assert import_upstream.main(argv) == 0
    out = capsys.readouterr().out
    # An upstream without rating modules or scope tables.
    assert "hashmap: not in upstream's database, skipped" in out
    assert "service_to_collector_mappings: not in upstream's database" in out
    assert '4 points stored, 0 chunks already there' in out
    assert out.endswith('all 3 totals agree (tolerance 1e-09 relative)\n')

    # A price below our 28 decimal places is stored as 0: reported.
    writer = db.create_engine(upstream)
    with writer.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO rated_data_frames VALUES (5, 'p3', "
            "'2026-03-01 00:00:00.000000', '2026-03-01 01:00:00.000000', "
            "'GiB', 1, 'volume', 1e-30, '{}')")
    writer.dispose()
    assert import_upstream.main(argv) == 1
    out = capsys.readouterr().out
    assert [line.split() for line in out.splitlines()
            if line.startswith('2026-03')] == [
        ['2026-03', 'p3', 'volume', '1', '1', '1E-30', '0', 'DIFFERS']]
    assert out.endswith('1 of 4 totals differ beyond the tolerance (1e-09 '
                        'relative)\n')
