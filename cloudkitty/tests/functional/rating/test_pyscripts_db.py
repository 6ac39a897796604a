"""The pyscripts data layer on SQLite, PostgreSQL and MariaDB: validity
windows, force, live-name uniqueness, update rules, soft deletion, list
filters, the processor's read; migration 0005 up and down."""

import datetime
import hashlib

import pytest
import sqlalchemy as sa

from cloudkitty import db
from cloudkitty.db import migration
from cloudkitty.rating.pyscripts import db as scripts_db
from cloudkitty.rating.pyscripts import exceptions as exc
from cloudkitty.tests.functional.rating import hashmap_fixtures as fixtures

# A migrated database per backend (the whole schema, hashmap's fixture).
hashmap_url = fixtures.hashmap_url
clock = fixtures.clock

NOW = datetime.datetime(2030, 1, 1, 12, tzinfo=datetime.UTC)
SOURCE = "data['usage'] = {}\n"


def at(days=0, **delta):
    return NOW + datetime.timedelta(days=days, **delta)


@pytest.fixture
def store(hashmap_url, clock):
    engine = db.create_engine(hashmap_url)
    with engine.begin() as conn:
        conn.exec_driver_sql('DELETE FROM pyscripts_scripts')
    yield scripts_db.PyScriptsDB(engine, clock=clock)
    engine.dispose()


def test_create_get_and_checksum(store):
    script = store.create_script('price', SOURCE, description='d',
                                 created_by='alice')
    assert script == {
        'script_id': script['script_id'], 'name': 'price', 'data': SOURCE,
        'checksum': hashlib.sha512(SOURCE.encode()).hexdigest(),
        'description': 'd', 'start': NOW, 'end': None, 'created_at': NOW,
        'created_by': 'alice', 'updated_by': None, 'deleted': None,
        'deleted_by': None}
    assert store.get_script(script['script_id']) == script
    with pytest.raises(exc.NoSuchScript):
        store.get_script('nope')


def test_long_source_round_trips(store):
    source = '# ' + 'x' * 200_000 + '\n' + SOURCE
    script = store.create_script('long', source)
    assert store.get_script(script['script_id'])['data'] == source


@pytest.mark.parametrize('name, data, words', [
    ('', SOURCE, 'name'),
    ('x' * 256, SOURCE, 'longer than 255'),
    ('s', '', 'non-empty'),
    ('s', '   ', 'non-empty'),
    ('s', 'for', 'not valid Python'),
    ('s', 'x = (\n', 'not valid Python'),
    ('s', b'bytes', 'non-empty string'),
])
def test_create_refuses_bad_input(store, name, data, words):
    with pytest.raises(exc.InvalidScript, match=words):
        store.create_script(name, data)


def test_create_validity_window(store):
    with pytest.raises(exc.InvalidScript, match='in the past'):
        store.create_script('s', SOURCE, start=at(-1))
    with pytest.raises(exc.InvalidScript, match='not after'):
        store.create_script('s', SOURCE, start=at(2), end=at(1))
    with pytest.raises(exc.InvalidScript, match='not a date'):
        store.create_script('s', SOURCE, start='tomorrow')
    forced = store.create_script('s', SOURCE, start=at(-1), end=at(1),
                                 force=True)
    assert (forced['start'], forced['end']) == (at(-1), at(1))
    naive = store.create_script('t', SOURCE, start='2030-01-05T00:00:00')
    assert naive['start'] == datetime.datetime(2030, 1, 5,
                                               tzinfo=datetime.UTC)


def test_live_names_are_unique(store):
    first = store.create_script('price', SOURCE, start=at(1))
    with pytest.raises(exc.ScriptAlreadyExists, match='named price') as e:
        store.create_script('price', SOURCE, start=at(10))
    assert e.value.uuid == first['script_id']
    store.delete_script(first['script_id'])
    assert store.create_script('price', SOURCE)['name'] == 'price'


def test_future_script_may_change_data_start_end_description(store):
    script = store.create_script('s', SOURCE, start=at(1))
    new_source = 'pass\n'
    changed = store.update_script(
        script['script_id'], updated_by='bob', data=new_source,
        start=at(2), end=at(3), description='new')
    assert changed['data'] == new_source
    assert changed['checksum'] == hashlib.sha512(b'pass\n').hexdigest()
    assert (changed['start'], changed['end'], changed['description'],
            changed['updated_by']) == (at(2), at(3), 'new', 'bob')
    with pytest.raises(exc.InvalidScript, match='in the past'):
        store.update_script(script['script_id'], start=at(-1))
    forced = store.update_script(script['script_id'], start=at(-1),
                                 force=True)
    assert forced['start'] == at(-1)


def test_future_script_keeps_its_name_and_identity(store):
    script = store.create_script('s', SOURCE, start=at(1))
    with pytest.raises(exc.ImmutableScript, match='Only data, start, end '
                                                  'and description'):
        store.update_script(script['script_id'], name='other')
    with pytest.raises(exc.ImmutableScript):
        store.update_script(script['script_id'], script_id='other')
    with pytest.raises(exc.InvalidScript, match='no attribute'):
        store.update_script(script['script_id'], colour='red')
    with pytest.raises(exc.InvalidScript, match='not valid Python'):
        store.update_script(script['script_id'], data='for')
    with pytest.raises(exc.InvalidScript, match='not after'):
        store.update_script(script['script_id'], end=at(0))


def test_whole_object_sent_back_is_no_change(store):
    script = store.create_script('s', SOURCE, start=at(1))
    assert store.update_script(script['script_id'], **script) == script
    # checksum and the audit fields are read-only: ignored.
    assert store.update_script(script['script_id'], checksum='x',
                               created_by='eve') == script


def test_started_script_may_only_get_a_future_end(store, clock):
    script = store.create_script('s', SOURCE)
    clock.advance(days=1)
    with pytest.raises(exc.ImmutableScript, match='only its end'):
        store.update_script(script['script_id'], data='pass')
    with pytest.raises(exc.ImmutableScript, match='only its end'):
        store.update_script(script['script_id'], end=at(5), description='x')
    with pytest.raises(exc.InvalidScript, match='future'):
        store.update_script(script['script_id'], end=at(0, hours=1))
    ended = store.update_script(script['script_id'], end=at(5))
    assert ended['end'] == at(5)
    with pytest.raises(exc.ImmutableScript, match='has an end'):
        store.update_script(script['script_id'], end=at(6))


def test_soft_delete(store, clock):
    script = store.create_script('s', SOURCE, start=at(1))
    clock.advance(hours=1)
    store.delete_script(script['script_id'], deleted_by='carol')
    deleted = store.get_script(script['script_id'])
    assert (deleted['deleted'], deleted['deleted_by']) == (at(0, hours=1),
                                                           'carol')
    with pytest.raises(exc.NoSuchScript):
        store.delete_script(script['script_id'])
    with pytest.raises(exc.NoSuchScript):
        store.delete_script('nope')
    with pytest.raises(exc.ImmutableScript, match='deleted'):
        store.update_script(script['script_id'], description='x')
    assert store.list_scripts() == []
    assert store.list_scripts(deleted=True) == [deleted]


def test_list_filters(store, clock):
    a = store.create_script('a', SOURCE, description='Compute prices',
                            created_by='alice')
    b = store.create_script('b', SOURCE, start=at(2), end=at(4),
                            created_by='bob')
    c = store.create_script('c', SOURCE, start=at(5))
    store.update_script(c['script_id'], description='later',
                        updated_by='carol')

    def ids(**filters):
        return [s['name'] for s in store.list_scripts(**filters)]

    assert ids() == ['a', 'b', 'c']
    assert ids(start=at(1)) == ['b', 'c']
    assert ids(end=at(5)) == ['b']
    assert ids(created_by='bob') == ['b']
    assert ids(updated_by='carol') == ['c']
    assert ids(description='PRICE') == ['a']
    assert ids(description='%') == []
    assert ids(is_active=True) == ['a']
    assert ids(is_active=at(3)) == ['a', 'b']
    assert ids(is_active=at(3).isoformat()) == ['a', 'b']
    store.delete_script(a['script_id'], deleted_by='dave')
    assert ids(deleted=True, deleted_by='dave') == ['a']
    assert ids(is_active=at(3), deleted=True) == ['b']
    listed = store.list_scripts(no_data=True)
    assert [s['data'] for s in listed] == [None, None]
    assert listed[0]['checksum'] == b['checksum']
    with pytest.raises(exc.InvalidScript, match='not a date'):
        store.list_scripts(start='soon')


def test_load_scripts_and_revision(store, clock):
    revision = store.revision()
    b = store.create_script('b', SOURCE, start=at(1), end=at(3))
    a = store.create_script('a', 'pass\n', start=at(2))
    assert store.revision() > revision
    assert store.load_scripts(at(0)) == []
    assert [s.name for s in store.load_scripts(at(1))] == ['b']
    loaded = store.load_scripts(at(2))
    assert [s.name for s in loaded] == ['a', 'b']
    assert loaded[0] == scripts_db.Script(a['script_id'], 'a', 'pass\n',
                                          a['checksum'])
    assert [s.name for s in store.load_scripts(at(3))] == ['a']
    revision = store.revision()
    store.delete_script(b['script_id'])
    assert store.revision() == revision + 1
    assert [s.name for s in store.load_scripts(at(2))] == ['a']


def test_migration_0005_up_and_down(tmp_path):
    engine = db.create_engine(f'sqlite:///{tmp_path / "m.sqlite"}')
    migration.upgrade(engine, '0005')
    tables = set(sa.inspect(engine).get_table_names())
    assert {'pyscripts_scripts', 'pyscripts_revision'} <= tables
    migration.downgrade(engine, '0004')
    tables = set(sa.inspect(engine).get_table_names())
    assert not {'pyscripts_scripts', 'pyscripts_revision'} & tables
    engine.dispose()
