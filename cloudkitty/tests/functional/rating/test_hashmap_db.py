"""The hashmap data layer on SQLite, PostgreSQL and MariaDB: every
validation of api.md, soft deletion, cascades and the list filters."""

import datetime
import decimal

import pytest
import sqlalchemy as sa

from cloudkitty.rating.hash import db as hash_db

from cloudkitty.rating.hash import exceptions as exc
from cloudkitty.tests.functional.rating import hashmap_fixtures as fixtures

# The fixtures these tests use.
clock = fixtures.clock
hashmap_url = fixtures.hashmap_url
hashmap_engine = fixtures.hashmap_engine
hashmap_db = fixtures.hashmap_db

D = decimal.Decimal
NOW = datetime.datetime(2030, 1, 1, 12, tzinfo=datetime.UTC)


def at(days=0, **delta):
    return NOW + datetime.timedelta(days=days, **delta)


@pytest.fixture
def compute(hashmap_db):
    """A service ``compute`` with a field ``flavor`` and a group ``g``."""
    service = hashmap_db.create_service('compute')
    field = hashmap_db.create_field(service['service_id'], 'flavor')
    group = hashmap_db.create_group('g')
    return service['service_id'], field['field_id'], group['group_id']


# -- services, fields, groups ------------------------------------------------

def test_service_create_get_list_delete(hashmap_db):
    service = hashmap_db.create_service('compute')
    assert hashmap_db.get_service(service['service_id']) == service
    assert hashmap_db.get_service(name='compute') == service
    hashmap_db.create_service('a-volume')
    assert [s['name'] for s in hashmap_db.list_services()] == [
        'a-volume', 'compute']
    with pytest.raises(exc.ServiceAlreadyExists) as raised:
        hashmap_db.create_service('compute')
    assert raised.value.uuid == service['service_id']
    hashmap_db.delete_service(service['service_id'])
    with pytest.raises(exc.NoSuchService):
        hashmap_db.get_service(service['service_id'])
    with pytest.raises(exc.NoSuchService):
        hashmap_db.delete_service(service['service_id'])


def test_service_delete_cascades(hashmap_db, compute):
    service_id, field_id, group_id = compute
    hashmap_db.create_mapping(1, service_id=service_id, group_id=group_id)
    hashmap_db.create_mapping(2, field_id=field_id, value='a')
    hashmap_db.create_threshold(1, 2, service_id=service_id)
    hashmap_db.create_threshold(1, 2, field_id=field_id)
    other = hashmap_db.create_service('other')['service_id']
    kept = hashmap_db.create_mapping(3, service_id=other)
    hashmap_db.delete_service(service_id)
    assert hashmap_db.list_fields() == []
    assert hashmap_db.list_mappings(deleted=True) == [kept]
    assert hashmap_db.list_thresholds() == []
    assert hashmap_db.list_groups() == [{'group_id': group_id, 'name': 'g'}]


def test_field_name_unique_per_service(hashmap_db):
    compute = hashmap_db.create_service('compute')['service_id']
    volume = hashmap_db.create_service('volume')['service_id']
    field = hashmap_db.create_field(compute, 'flavor')
    assert field['service_id'] == compute
    with pytest.raises(exc.FieldAlreadyExists):
        hashmap_db.create_field(compute, 'flavor')
    hashmap_db.create_field(volume, 'flavor')
    assert hashmap_db.get_field(field['field_id']) == field
    assert hashmap_db.get_field(service_id=compute, name='flavor') == field
    assert hashmap_db.list_fields(compute) == [field]
    assert len(hashmap_db.list_fields()) == 2
    with pytest.raises(exc.NoSuchField):
        hashmap_db.get_field('nope')


def test_field_of_unknown_service_is_a_bad_request(hashmap_db):
    with pytest.raises(exc.UnknownParent) as raised:
        hashmap_db.create_field('nope', 'flavor')
    assert isinstance(raised.value, exc.InvalidRule)
    assert isinstance(raised.value.missing, exc.NoSuchService)


def test_field_delete_cascades(hashmap_db, compute):
    service_id, field_id, _ = compute
    hashmap_db.create_mapping(2, field_id=field_id, value='a')
    hashmap_db.create_threshold(1, 2, field_id=field_id)
    kept = hashmap_db.create_mapping(1, service_id=service_id)
    hashmap_db.delete_field(field_id)
    assert hashmap_db.list_mappings(deleted=True) == [kept]
    assert hashmap_db.list_thresholds() == []
    with pytest.raises(exc.NoSuchField):
        hashmap_db.delete_field(field_id)


def test_group_create_duplicate(hashmap_db):
    group = hashmap_db.create_group('g')
    assert hashmap_db.get_group(group['group_id']) == group
    with pytest.raises(exc.GroupAlreadyExists):
        hashmap_db.create_group('g')
    with pytest.raises(exc.NoSuchGroup):
        hashmap_db.get_group('nope')


def test_group_delete_keeps_rules_without_group(hashmap_db, compute):
    service_id, _, group_id = compute
    mapping = hashmap_db.create_mapping(1, service_id=service_id,
                                        group_id=group_id)
    threshold = hashmap_db.create_threshold(5, 1, service_id=service_id,
                                            group_id=group_id)
    assert hashmap_db.list_mappings(group_id=group_id) == [mapping]
    assert hashmap_db.get_mapping_group(mapping['mapping_id'])['name'] == 'g'
    assert hashmap_db.get_threshold_group(
        threshold['threshold_id'])['group_id'] == group_id
    hashmap_db.delete_group(group_id)
    assert hashmap_db.get_mapping(mapping['mapping_id']) == dict(
        mapping, group_id=None)
    assert hashmap_db.get_threshold(threshold['threshold_id']) == dict(
        threshold, group_id=None)
    with pytest.raises(exc.MappingHasNoGroup):
        hashmap_db.get_mapping_group(mapping['mapping_id'])
    with pytest.raises(exc.ThresholdHasNoGroup):
        hashmap_db.get_threshold_group(threshold['threshold_id'])
    with pytest.raises(exc.NoSuchGroup):
        hashmap_db.delete_group(group_id)


def test_group_delete_recursive(hashmap_db, compute, clock):
    service_id, field_id, group_id = compute
    mapping = hashmap_db.create_mapping(1, service_id=service_id,
                                        group_id=group_id)
    hashmap_db.create_threshold(5, 1, service_id=service_id,
                                group_id=group_id)
    other = hashmap_db.create_mapping(2, field_id=field_id, value='a')
    hashmap_db.delete_group(group_id, recursive=True, deleted_by='admin')
    assert hashmap_db.list_mappings() == [other]
    gone = hashmap_db.get_mapping(mapping['mapping_id'])
    assert (gone['deleted'], gone['deleted_by'], gone['group_id']) == (
        clock.now, 'admin', None)
    assert hashmap_db.list_thresholds() == []


# -- mappings: creation -------------------------------------------------------

def test_mapping_fields_round_trip(hashmap_db, compute, clock):
    service_id, field_id, group_id = compute
    mapping = hashmap_db.create_mapping(
        '1.337', 'rate', value='m1.nano', field_id=field_id,
        group_id=group_id, tenant_id='t1', name='nano',
        description='Nano flavor', start=at(1), end=at(2),
        created_by='admin')
    assert mapping == {
        'mapping_id': mapping['mapping_id'], 'value': 'm1.nano',
        'type': 'rate', 'cost': D('1.337'), 'service_id': None,
        'field_id': field_id, 'group_id': group_id, 'tenant_id': 't1',
        'name': 'nano', 'description': 'Nano flavor', 'start': at(1),
        'end': at(2), 'created_at': clock.now, 'created_by': 'admin',
        'updated_by': None, 'deleted': None, 'deleted_by': None}
    assert str(mapping['cost']) == '1.337'
    service_mapping = hashmap_db.create_mapping(1, service_id=service_id)
    assert (service_mapping['type'], service_mapping['start'],
            service_mapping['value']) == ('flat', clock.now, None)


@pytest.mark.parametrize('cost', [
    '999999999999.9999999999999999999999999999',
    '-0.0000000000000000000000000001', '0', '100', '1.5'])
def test_mapping_cost_keeps_every_digit(hashmap_db, compute, cost):
    mapping = hashmap_db.create_mapping(cost, service_id=compute[0])
    # Read back as written, whatever the database's own scale.
    assert str(hashmap_db.get_mapping(mapping['mapping_id'])['cost']) == str(
        D(cost))


@pytest.mark.parametrize('cost', [
    '1000000000000', '0.00000000000000000000000000001', 'abc', 'NaN',
    'Infinity', True])
def test_mapping_cost_out_of_range(hashmap_db, compute, cost):
    with pytest.raises(exc.InvalidRule):
        hashmap_db.create_mapping(cost, service_id=compute[0])


def test_mapping_parent_rules(hashmap_db, compute):
    service_id, field_id, _ = compute
    with pytest.raises(exc.InvalidRule, match='Exactly one'):
        hashmap_db.create_mapping(1, service_id=service_id,
                                  field_id=field_id, value='a')
    with pytest.raises(exc.InvalidRule, match='Exactly one'):
        hashmap_db.create_mapping(1)
    with pytest.raises(exc.InvalidRule, match='needs a value'):
        hashmap_db.create_mapping(1, field_id=field_id)
    with pytest.raises(exc.InvalidRule, match='needs a value'):
        hashmap_db.create_mapping(1, field_id=field_id, value='')
    with pytest.raises(exc.InvalidRule, match='cannot have a value'):
        hashmap_db.create_mapping(1, service_id=service_id, value='a')
    with pytest.raises(exc.UnknownParent):
        hashmap_db.create_mapping(1, service_id='nope')
    with pytest.raises(exc.UnknownParent):
        hashmap_db.create_mapping(1, field_id='nope', value='a')
    with pytest.raises(exc.UnknownParent):
        hashmap_db.create_mapping(1, service_id=service_id, group_id='nope')
    with pytest.raises(exc.NoSuchType):
        hashmap_db.create_mapping(1, 'free', service_id=service_id)
    assert hashmap_db.list_mappings(deleted=True) == []


def test_mapping_start_in_the_past_needs_force(hashmap_db, compute):
    service_id = compute[0]
    with pytest.raises(exc.InvalidRule, match='in the past'):
        hashmap_db.create_mapping(1, service_id=service_id,
                                  start=at(seconds=-1))
    forced = hashmap_db.create_mapping(1, service_id=service_id,
                                       start=at(-30), force=True)
    assert forced['start'] == at(-30)
    with pytest.raises(exc.InvalidRule, match='not after'):
        hashmap_db.create_mapping(1, service_id=service_id, start=at(2),
                                  end=at(2), tenant_id='x')


def test_mapping_naive_and_text_dates_are_utc(hashmap_db, compute):
    mapping = hashmap_db.create_mapping(
        1, service_id=compute[0], start=datetime.datetime(2030, 2, 1),
        end='2030-03-01T01:00:00+01:00')
    assert mapping['start'] == datetime.datetime(
        2030, 2, 1, tzinfo=datetime.UTC)
    assert mapping['end'] == datetime.datetime(
        2030, 3, 1, tzinfo=datetime.UTC)


def test_mapping_overlap_conflicts(hashmap_db, compute):
    service_id, field_id, group_id = compute
    first = hashmap_db.create_mapping(1, field_id=field_id, value='a',
                                      start=at(10), end=at(20))
    for start, end in [(at(5), at(11)), (at(19), None), (at(12), at(13)),
                       (at(0), None)]:
        with pytest.raises(exc.MappingAlreadyExists) as raised:
            hashmap_db.create_mapping(2, field_id=field_id, value='a',
                                      start=start, end=end)
        assert raised.value.uuid == first['mapping_id']
    # Adjacent windows, another value, tenant or group: no conflict.
    hashmap_db.create_mapping(2, field_id=field_id, value='a', start=at(20))
    hashmap_db.create_mapping(2, field_id=field_id, value='a', end=at(10))
    hashmap_db.create_mapping(2, field_id=field_id, value='b')
    hashmap_db.create_mapping(2, field_id=field_id, value='a', tenant_id='t')
    hashmap_db.create_mapping(2, field_id=field_id, value='a',
                              group_id=group_id)
    # Service mappings (no value) conflict the same way.
    hashmap_db.create_mapping(1, service_id=service_id)
    with pytest.raises(exc.MappingAlreadyExists):
        hashmap_db.create_mapping(1, 'rate', service_id=service_id,
                                  start=at(3))
    hashmap_db.create_mapping(1, 'rate', service_id=service_id,
                              group_id=group_id)


def test_deleted_mapping_does_not_conflict(hashmap_db, compute):
    service_id = compute[0]
    mapping = hashmap_db.create_mapping(1, service_id=service_id, name='n')
    hashmap_db.delete_mapping(mapping['mapping_id'])
    hashmap_db.create_mapping(2, service_id=service_id, name='n')


def test_mapping_name_is_unique_among_live_mappings(hashmap_db, compute):
    service_id, field_id, _ = compute
    hashmap_db.create_mapping(1, service_id=service_id, name='price',
                              end=at(5))
    with pytest.raises(exc.MappingAlreadyExists, match='named price'):
        hashmap_db.create_mapping(1, field_id=field_id, value='a',
                                  name='price', start=at(10))


# -- mappings: updates -------------------------------------------------------

def test_future_mapping_may_change_cost_dates_description(hashmap_db,
                                                          compute):
    service_id = compute[0]
    mapping = hashmap_db.create_mapping(1, service_id=service_id,
                                        start=at(1), description='old')
    updated = hashmap_db.update_mapping(
        mapping['mapping_id'], updated_by='bob', cost='2.5', start=at(2),
        end=at(3), description='new')
    assert updated == dict(mapping, cost=D('2.5'), start=at(2), end=at(3),
                           description='new', updated_by='bob')
    assert hashmap_db.get_mapping(mapping['mapping_id']) == updated
    # The whole object sent back (as the CLI does) changes nothing.
    assert hashmap_db.update_mapping(updated['mapping_id'],
                                     **updated) == updated


@pytest.mark.parametrize('change', [
    {'value': 'b'}, {'type': 'rate'}, {'tenant_id': 't'}, {'name': 'x'},
    {'service_id': None}, {'mapping_id': 'other'}])
def test_future_mapping_keeps_its_identity(hashmap_db, compute, change):
    service_id, field_id, _ = compute
    mapping = hashmap_db.create_mapping(1, field_id=field_id, value='a',
                                        start=at(1))
    if 'service_id' in change:
        change = {'service_id': service_id}
    with pytest.raises(exc.ImmutableRule):
        hashmap_db.update_mapping(mapping['mapping_id'], **change)


def test_future_mapping_update_is_validated(hashmap_db, compute):
    service_id, _, _ = compute
    mapping = hashmap_db.create_mapping(1, service_id=service_id,
                                        start=at(10))
    hashmap_db.create_mapping(1, service_id=service_id, start=at(1),
                              end=at(5))
    with pytest.raises(exc.InvalidRule, match='in the past'):
        hashmap_db.update_mapping(mapping['mapping_id'], start=at(-1))
    with pytest.raises(exc.InvalidRule, match='not after'):
        hashmap_db.update_mapping(mapping['mapping_id'], end=at(9))
    with pytest.raises(exc.MappingAlreadyExists):
        hashmap_db.update_mapping(mapping['mapping_id'], start=at(4))
    with pytest.raises(exc.InvalidRule, match='no attribute'):
        hashmap_db.update_mapping(mapping['mapping_id'], colour='red')
    forced = hashmap_db.update_mapping(mapping['mapping_id'], start=at(-9),
                                       end=at(1), force=True)
    assert (forced['start'], forced['end']) == (at(-9), at(1))


def test_started_mapping_may_only_get_a_future_end(hashmap_db, compute,
                                                   clock):
    service_id = compute[0]
    mapping = hashmap_db.create_mapping(1, service_id=service_id)
    clock.advance(days=1)
    with pytest.raises(exc.ImmutableRule, match='only its end'):
        hashmap_db.update_mapping(mapping['mapping_id'], cost=2)
    with pytest.raises(exc.ImmutableRule, match='only its end'):
        hashmap_db.update_mapping(mapping['mapping_id'], end=at(5),
                                  description='x')
    with pytest.raises(exc.InvalidRule, match='future'):
        hashmap_db.update_mapping(mapping['mapping_id'], end=at(0, hours=1))
    ended = hashmap_db.update_mapping(mapping['mapping_id'], end=at(5),
                                      updated_by='bob')
    assert (ended['end'], ended['updated_by']) == (at(5), 'bob')
    # Started and ended: nothing changes any more, not even the end.
    with pytest.raises(exc.ImmutableRule, match='has an end'):
        hashmap_db.update_mapping(mapping['mapping_id'], end=at(6))
    assert hashmap_db.update_mapping(ended['mapping_id'], **ended) == ended


def test_deleted_mapping_cannot_change(hashmap_db, compute):
    mapping = hashmap_db.create_mapping(1, service_id=compute[0],
                                        start=at(1))
    hashmap_db.delete_mapping(mapping['mapping_id'])
    with pytest.raises(exc.ImmutableRule, match='deleted'):
        hashmap_db.update_mapping(mapping['mapping_id'], cost=3)
    with pytest.raises(exc.NoSuchMapping):
        hashmap_db.update_mapping('nope', cost=3)


def test_mapping_soft_delete(hashmap_db, compute, clock):
    mapping = hashmap_db.create_mapping(1, service_id=compute[0])
    clock.advance(hours=1)
    hashmap_db.delete_mapping(mapping['mapping_id'], deleted_by='admin')
    deleted = hashmap_db.get_mapping(mapping['mapping_id'])
    assert deleted == dict(mapping, deleted=clock.now, deleted_by='admin')
    assert hashmap_db.list_mappings() == []
    assert hashmap_db.list_mappings(deleted=True) == [deleted]
    with pytest.raises(exc.NoSuchMapping):
        hashmap_db.delete_mapping(mapping['mapping_id'])


# -- mappings: list filters ---------------------------------------------------

def test_mapping_list_filters(hashmap_db, compute, clock):
    service_id, field_id, group_id = compute
    svc = hashmap_db.create_mapping(1, service_id=service_id,
                                    created_by='alice',
                                    description='Base 100% price')
    fld = hashmap_db.create_mapping(1, field_id=field_id, value='a',
                                    group_id=group_id, tenant_id='t1',
                                    start=at(10), end=at(20))
    gone = hashmap_db.create_mapping(1, field_id=field_id, value='b',
                                     end=at(30))
    hashmap_db.delete_mapping(gone['mapping_id'], deleted_by='bob')
    gone = hashmap_db.get_mapping(gone['mapping_id'])
    future = hashmap_db.update_mapping(
        hashmap_db.create_mapping(1, field_id=field_id, value='c',
                                  start=at(40))['mapping_id'],
        updated_by='carol', cost=2)

    def ids(**filters):
        return [m['mapping_id'] for m in hashmap_db.list_mappings(**filters)]

    assert ids() == [svc['mapping_id'], fld['mapping_id'],
                     future['mapping_id']]
    assert ids(service_id=service_id) == [svc['mapping_id']]
    assert ids(field_id=field_id) == [fld['mapping_id'],
                                      future['mapping_id']]
    assert ids(group_id=group_id) == [fld['mapping_id']]
    assert ids(no_group=True) == [svc['mapping_id'], future['mapping_id']]
    assert ids(tenant_id='t1') == [fld['mapping_id']]
    assert ids(filter_tenant=True) == [svc['mapping_id'],
                                       future['mapping_id']]
    assert ids(deleted=True, field_id=field_id) == [
        fld['mapping_id'], gone['mapping_id'], future['mapping_id']]
    assert ids(start=at(10)) == [fld['mapping_id'], future['mapping_id']]
    assert ids(end=at(25), deleted=True) == [fld['mapping_id']]
    assert ids(created_by='alice') == [svc['mapping_id']]
    assert ids(updated_by='carol') == [future['mapping_id']]
    assert ids(deleted_by='bob', deleted=True) == [gone['mapping_id']]
    assert ids(description='100%') == [svc['mapping_id']]
    assert ids(description='BASE') == [svc['mapping_id']]
    assert ids(description='1_0') == []
    assert ids(is_active=True) == [svc['mapping_id']]
    assert ids(is_active=at(15)) == [svc['mapping_id'], fld['mapping_id']]
    assert ids(is_active=at(45).isoformat()) == [svc['mapping_id'],
                                                 future['mapping_id']]
    assert ids(is_active=False) == ids()
    assert ids(service_id='nope') == []


# -- thresholds --------------------------------------------------------------

def test_threshold_create_and_duplicates(hashmap_db, compute):
    service_id, field_id, group_id = compute
    threshold = hashmap_db.create_threshold(
        '50', '0.98', 'rate', service_id=service_id, group_id=group_id)
    assert threshold == {
        'threshold_id': threshold['threshold_id'], 'level': D(50),
        'type': 'rate', 'cost': D('0.98'), 'service_id': service_id,
        'field_id': None, 'group_id': group_id, 'tenant_id': None}
    with pytest.raises(exc.ThresholdAlreadyExists):
        hashmap_db.create_threshold('50.000', 1, service_id=service_id)
    # Another tenant, parent or level is another threshold.
    hashmap_db.create_threshold(50, '0.97', 'rate', service_id=service_id,
                                tenant_id='t1')
    hashmap_db.create_threshold(50, 1, field_id=field_id)
    hashmap_db.create_threshold('50.5', 1, service_id=service_id)
    with pytest.raises(exc.ThresholdAlreadyExists):
        hashmap_db.create_threshold(50, 1, service_id=service_id,
                                    tenant_id='t1')
    with pytest.raises(exc.InvalidRule, match='Exactly one'):
        hashmap_db.create_threshold(1, 1)
    with pytest.raises(exc.UnknownParent):
        hashmap_db.create_threshold(1, 1, field_id='nope')
    with pytest.raises(exc.NoSuchType):
        hashmap_db.create_threshold(1, 1, 'x', field_id=field_id)
    with pytest.raises(exc.InvalidRule):
        hashmap_db.create_threshold('1e20', 1, field_id=field_id)
    big = hashmap_db.create_threshold('99999999999999999999', 1,
                                      field_id=field_id)
    assert big['level'] == D('99999999999999999999')


def test_threshold_update(hashmap_db, compute):
    service_id, field_id, group_id = compute
    threshold = hashmap_db.create_threshold(10, 1, service_id=service_id)
    hashmap_db.create_threshold(20, 1, service_id=service_id)
    updated = hashmap_db.update_threshold(
        threshold['threshold_id'], level=15, cost='0.5', type='rate',
        group_id=group_id, tenant_id='t1')
    assert updated == dict(threshold, level=D(15), cost=D('0.5'),
                           type='rate', group_id=group_id, tenant_id='t1')
    assert hashmap_db.update_threshold(updated['threshold_id'],
                                       **updated) == updated
    with pytest.raises(exc.ThresholdAlreadyExists):
        hashmap_db.update_threshold(threshold['threshold_id'], level=20,
                                    tenant_id=None)
    with pytest.raises(exc.ImmutableRule):
        hashmap_db.update_threshold(threshold['threshold_id'],
                                    field_id=field_id)
    with pytest.raises(exc.NoSuchType):
        hashmap_db.update_threshold(threshold['threshold_id'], type='x')
    with pytest.raises(exc.UnknownParent):
        hashmap_db.update_threshold(threshold['threshold_id'],
                                    group_id='nope')
    with pytest.raises(exc.NoSuchThreshold):
        hashmap_db.update_threshold('nope', level=1)


def test_threshold_delete_and_filters(hashmap_db, compute):
    service_id, field_id, group_id = compute
    svc = hashmap_db.create_threshold(10, 1, service_id=service_id,
                                      group_id=group_id)
    fld = hashmap_db.create_threshold(10, 1, field_id=field_id,
                                      tenant_id='t1')
    assert hashmap_db.list_thresholds(service_id=service_id) == [svc]
    assert hashmap_db.list_thresholds(field_id=field_id) == [fld]
    assert hashmap_db.list_thresholds(group_id=group_id) == [svc]
    assert hashmap_db.list_thresholds(no_group=True) == [fld]
    assert hashmap_db.list_thresholds(tenant_id='t1') == [fld]
    assert hashmap_db.list_thresholds(filter_tenant=True) == [svc]
    hashmap_db.delete_threshold(svc['threshold_id'])
    assert hashmap_db.list_thresholds() == [fld]
    with pytest.raises(exc.NoSuchThreshold):
        hashmap_db.delete_threshold(svc['threshold_id'])
    with pytest.raises(exc.NoSuchThreshold):
        hashmap_db.get_threshold(svc['threshold_id'])


def test_every_write_moves_the_revision(hashmap_db):
    before = hashmap_db.revision()
    service = hashmap_db.create_service('compute')
    assert hashmap_db.revision() == before + 1
    with pytest.raises(exc.ServiceAlreadyExists):
        hashmap_db.create_service('compute')
    assert hashmap_db.revision() == before + 1      # rolled back
    hashmap_db.create_mapping(1, service_id=service['service_id'])
    assert hashmap_db.revision() == before + 2


def test_a_processor_reads_each_write_at_once(hashmap_db, monkeypatch):
    engine = hashmap_db.engine
    processor = hash_db.HashMapDB(engine)
    first = processor.revision()
    for count in range(1, 4):
        hashmap_db.create_group(f'g{count}')
        assert processor.revision() == first + count     # the next read
    # Its connection goes back to the pool.
    assert engine.pool.checkedout() == 0
    # A statement that fails on a connection: dropped, read again through
    # the engine (whose errors are SQLAlchemy's).
    counter = hash_db._REVISION_COUNTER
    sql = counter._select
    monkeypatch.setattr(counter, '_select', 'SELECT nothing FROM none')
    assert processor.revision() == first + 3
    monkeypatch.setattr(counter, '_select', sql)
    assert engine.pool.checkedout() == 0
    monkeypatch.setattr(counter, 'table', sa.table(
        'nowhere', sa.column('id'), sa.column('revision')))
    monkeypatch.setattr(counter, '_select', 'SELECT nothing FROM none')
    with pytest.raises(sa.exc.DBAPIError):
        processor.revision()
