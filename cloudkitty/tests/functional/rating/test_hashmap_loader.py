"""The rules a period is rated with, read from SQLite, PostgreSQL and
MariaDB: validity windows, soft deletion, the number of queries, and the
HashMap module pricing the worked examples of rating.md from the database.
"""

import contextlib
import datetime
import decimal

from oslo_config import cfg
import sqlalchemy as sa
from sqlalchemy import event

from cloudkitty import conf as ck_conf
from cloudkitty import dataframe
from cloudkitty import rating
from cloudkitty.rating import hash as hashmap
from cloudkitty.rating.hash import db as hash_db
from cloudkitty.rating.hash import rules
from cloudkitty.rating import noop
from cloudkitty.tests.functional.rating import hashmap_fixtures as fixtures

# The fixtures these tests use.
clock = fixtures.clock
hashmap_url = fixtures.hashmap_url
hashmap_engine = fixtures.hashmap_engine
hashmap_db = fixtures.hashmap_db

D = decimal.Decimal
HOUR = datetime.timedelta(hours=1)
SECOND = datetime.timedelta(seconds=1)
NOW = datetime.datetime(2030, 1, 1, 12, tzinfo=datetime.UTC)


@contextlib.contextmanager
def count_selects(engine):
    """Count the SELECT statements run on ``engine`` in the block."""
    selects = []

    def count(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith('SELECT'):
            selects.append(statement)
    event.listen(engine, 'before_cursor_execute', count)
    try:
        yield selects
    finally:
        event.remove(engine, 'before_cursor_execute', count)


def rules_read(selects):
    """The statements of ``selects`` that read rules (not the revision)."""
    return [s for s in selects if 'hashmap_revision' not in s]


def frame_of(start, service, *points):
    frame = dataframe.DataFrame(start, start + HOUR)
    frame.add_points(points, service)
    return frame


def point(qty, **metadata):
    return dataframe.DataPoint('unit', qty, 0, {}, metadata)


def prices(frame):
    return [p.price for _, p in frame.iterpoints()]


def test_load_rules_takes_the_mappings_valid_at_the_period_start(
        hashmap_db, clock):
    service = hashmap_db.create_service('compute')['service_id']
    field = hashmap_db.create_field(service, 'flavor')['field_id']
    group = hashmap_db.create_group('G')['group_id']
    start = NOW + 10 * HOUR
    hashmap_db.create_mapping('1.5', service_id=service, start=start,
                              end=start + HOUR)
    hashmap_db.create_mapping(2, 'rate', field_id=field, value='a',
                              group_id=group, tenant_id='t',
                              start=start + HOUR)
    deleted = hashmap_db.create_mapping(3, field_id=field, value='b',
                                        start=start)
    hashmap_db.delete_mapping(deleted['mapping_id'])
    hashmap_db.create_threshold('64.5', '0.1', field_id=field)
    hashmap_db.create_threshold(5, 2, 'rate', service_id=service,
                                group_id=group, tenant_id='t')
    with hashmap_db.engine.connect() as conn:
        group_key = conn.execute(sa.text(
            'SELECT id FROM hashmap_groups')).scalar()

    def mappings(at):
        return sorted(hashmap_db.load_rules(at).mappings)

    service_rule = rules.MappingRule('compute', None, None, 'flat',
                                     D('1.5'), None, None)
    field_rule = rules.MappingRule('compute', 'flavor', 'a', 'rate', D(2),
                                   group_key, 't')
    assert mappings(start - datetime.timedelta(microseconds=1)) == []
    assert mappings(start) == [service_rule]
    assert mappings(start + HOUR / 2) == [service_rule]
    assert mappings(start + HOUR) == [field_rule]
    assert mappings(start + 1000 * HOUR) == [field_rule]
    thresholds = hashmap_db.load_rules(start).thresholds
    assert sorted(thresholds, key=lambda t: t.level) == [
        rules.ThresholdRule('compute', None, D(5), 'rate', D(2), group_key,
                            't'),
        rules.ThresholdRule('compute', 'flavor', D('64.5'), 'flat',
                            D('0.1'), None, None)]
    # Trailing zeros of the database's scale are dropped.
    assert sorted(str(t.cost) for t in thresholds) == ['0.1', '2']


def test_rules_are_in_force_by_whole_seconds(hashmap_db, clock):
    # A start and an end with fractions of a second, as "now" gives them:
    # in force during the seconds from the start's to the end's, excluded.
    service = hashmap_db.create_service('compute')['service_id']
    second = NOW + HOUR
    fraction = datetime.timedelta(microseconds=700000)
    hashmap_db.create_mapping('1.5', service_id=service,
                              start=second + fraction,
                              end=second + 5 * SECOND + fraction)

    def in_force(at):
        return [rule.cost for rule in hashmap_db.load_rules(at).mappings]

    assert in_force(second - datetime.timedelta(microseconds=1)) == []
    assert in_force(second) == [D('1.5')]           # the start's second
    assert in_force(second + fraction / 2) == [D('1.5')]
    assert in_force(second + 5 * SECOND - datetime.timedelta(
        microseconds=1)) == [D('1.5')]
    assert in_force(second + 5 * SECOND) == []      # the end's second
    assert in_force(second + 5 * SECOND + fraction) == []


def test_load_rules_costs_two_queries_whatever_the_rule_count(hashmap_db):
    def load_selects():
        with count_selects(hashmap_db.engine) as selects:
            hashmap_db.load_rules(NOW)
        return len(selects)

    service = hashmap_db.create_service('s')['service_id']
    few = load_selects()
    for i in range(60):
        field = hashmap_db.create_field(service, f'f{i}')['field_id']
        hashmap_db.create_mapping(i, field_id=field, value=str(i),
                                  start=NOW - HOUR, force=True)
        hashmap_db.create_threshold(i, i, field_id=field)
    assert len(hashmap_db.load_rules(NOW).mappings) == 60
    assert load_selects() == few == 2


def _worked_examples(store):
    instance = store.create_service('instance')['service_id']
    flavor = store.create_field(instance, 'flavor')['field_id']
    memory = store.create_field(instance, 'memory')['field_id']
    group = store.create_group('G')['group_id']
    store.create_mapping('1.00', service_id=instance)
    store.create_mapping('1.337', field_id=flavor, value='m1.nano',
                         group_id=group)
    store.create_threshold(64, '0.15', field_id=memory, group_id=group)
    volume = store.create_service('volume')['service_id']
    store.create_mapping('0.001', service_id=volume)
    store.create_threshold(50, '0.98', 'rate', service_id=volume)
    store.create_threshold(200, '0.95', 'rate', service_id=volume)
    store.create_threshold(50, '0.97', 'rate', service_id=volume,
                           tenant_id='tenant-a')


def _worked_module(store):
    """``(module, start, instance frame, volume frame)``: a module loaded
    with the worked examples' rules (stored in ``store``) for the period
    at ``start``, and a frame of each example."""
    _worked_examples(store)
    module = hashmap.HashMap(hash_db=store)
    start = NOW + HOUR
    module.reload_config(start)
    return (module, start,
            frame_of(start, 'instance', point(1, flavor='m1.nano',
                                              memory=64)),
            frame_of(start, 'volume', point(50), point(250)))


def test_module_prices_the_worked_examples_from_the_database(hashmap_db,
                                                             clock):
    module, start, instance, volume = _worked_module(hashmap_db)
    assert prices(module.process(instance)) == [D('2.487')]
    assert str(prices(module.process(instance))[0]) == '2.487'
    assert prices(module.for_scope('tenant-a').process(volume)) == [
        D('0.0485'), D('0.2375')]
    assert prices(module.process(volume, scope_id='tenant-b')) == [
        D('0.049'), D('0.2375')]
    assert prices(module.process(volume)) == [D('0.049'), D('0.2375')]
    single = hashmap.HashMap(tenant_id='tenant-a', hash_db=hashmap_db)
    assert prices(single.process(volume)) == [D('0.0485'), D('0.2375')]


def test_dated_rules_price_each_period_with_its_own(hashmap_db, clock):
    service = hashmap_db.create_service('vm')['service_id']
    change = NOW + 5 * HOUR
    old = hashmap_db.create_mapping(1, service_id=service)
    hashmap_db.update_mapping(old['mapping_id'], end=change)
    hashmap_db.create_mapping(2, service_id=service, start=change)
    gone = hashmap_db.create_mapping(100, 'rate', service_id=service,
                                     group_id=hashmap_db.create_group(
                                         'g')['group_id'])
    hashmap_db.delete_mapping(gone['mapping_id'])
    module = hashmap.HashMap(hash_db=hashmap_db)
    for start, expected in [(change - HOUR, D(3)), (change, D(6)),
                            (NOW - HOUR, D(0))]:
        module.reload_config(start)
        assert prices(module.process(frame_of(start, 'vm', point(3)))) == [
            expected]


def test_module_loads_once_per_start_and_revision(
        hashmap_db, clock, monkeypatch):
    _worked_examples(hashmap_db)
    module = hashmap.HashMap(hash_db=hashmap_db)
    start = NOW + HOUR
    # The revision is read on a connection of its own (SQLite: through
    # the engine, as the rest), counted apart.
    revisions = []
    read = hashmap_db.revision
    monkeypatch.setattr(hashmap_db, 'revision',
                        lambda: revisions.append(1) or read())
    with count_selects(hashmap_db.engine) as selects:
        module.reload_config(start)
    assert len(rules_read(selects)) == 2        # mappings, thresholds
    assert len(revisions) == 1
    first = module.rules_at(start)
    for scope in ('a', 'b', 'tenant-a'):
        with count_selects(hashmap_db.engine) as selects:
            module.reload_config(start)         # each scope of the pass
            module.for_scope(scope).process(frame_of(start, 'volume',
                                                     point(50)))
        assert rules_read(selects) == []        # the revision only
    assert len(revisions) == 5                  # and one by rules_at
    assert module.rules_at(start) is first
    # A write elsewhere: reloaded, but the same rules keep their set.
    hashmap_db.create_group('unrelated')
    module.reload_config(start)
    assert module.rules_at(start) is first
    hashmap_db.create_mapping(5, service_id=hashmap_db.get_service(
        name='volume')['service_id'], group_id=hashmap_db.get_group(
        hashmap_db.list_groups()[-1]['group_id'])['group_id'])
    module.reload_config(start)
    assert module.rules_at(start) is not first
    assert prices(module.process(frame_of(start, 'volume', point(50)))) == [
        D('0.049') + 250]


def test_a_change_to_one_service_keeps_the_plans_of_the_others(hashmap_db,
                                                               clock):
    module, start, instance, volume = _worked_module(hashmap_db)
    assert prices(module.process(instance)) == [D('2.487')]
    first = module.rules_at(start)
    hashmap_db.create_mapping('0.5', service_id=hashmap_db.get_service(
        name='volume')['service_id'], group_id=hashmap_db.create_group(
        'extra')['group_id'])
    module.reload_config(start)
    second = module.rules_at(start)
    assert second is not first
    assert second.for_scope()._services['instance'] is \
        first.for_scope()._services['instance']
    assert second.for_scope()._services['volume'] is not \
        first.for_scope()._services['volume']
    fresh = hashmap_db.load_rules(start)
    for frame in (instance, volume):
        for scope in (None, 'tenant-a'):
            assert prices(module.process(frame, scope_id=scope)) == prices(
                fresh.process(frame, scope))
    assert prices(module.process(volume)) == [D('25.049'), D('125.2375')]


def test_process_without_reload_uses_the_frame_start(hashmap_db, clock):
    service = hashmap_db.create_service('vm')['service_id']
    hashmap_db.create_mapping(2, service_id=service, start=NOW + HOUR)
    module = hashmap.HashMap(hash_db=hashmap_db)
    module.reload_config(NOW)
    assert prices(module.process(frame_of(NOW + HOUR, 'vm', point(1)))) == [
        D(2)]
    assert prices(module.process(frame_of(NOW, 'vm', point(1)))) == [D(0)]


def test_quote_prices_like_process(hashmap_db, clock):
    service = hashmap_db.create_service('vm')['service_id']
    hashmap_db.create_mapping(2, service_id=service, start=NOW + HOUR)
    hashmap_db.create_mapping(5, service_id=service, tenant_id='x',
                              start=NOW + HOUR)
    module = hashmap.HashMap(hash_db=hashmap_db)
    module.reload_config(NOW + HOUR)
    frame = frame_of(NOW + HOUR, 'vm', point(1))
    assert prices(module.quote(frame)) == [D(2)]
    assert prices(module.for_scope('x').quote(frame)) == [D(5)]
    assert prices(module.quote(frame_of(NOW, 'vm', point(1)))) == [D(0)]


def test_module_reads_the_configured_database(hashmap_engine, clock):
    hash_db.HashMapDB(hashmap_engine, clock=clock).create_service('vm')
    conf = cfg.ConfigOpts()
    ck_conf.register_all(conf)
    conf([], project='cloudkitty')
    conf.set_override('connection', hashmap_engine.url.render_as_string(
        hide_password=False), 'database')
    module = hashmap.HashMap(conf)
    assert module.rules_at(NOW) == rules.RuleSet()
    assert (module.hot_config, module.default_enabled) == (True, False)
    scoped = module.for_scope('p')
    assert (scoped.scope_id, scoped.hot_config) == ('p', True)


def test_pipeline_rates_each_scope_with_its_rules(hashmap_db, clock):
    _worked_examples(hashmap_db)
    module = hashmap.HashMap(hash_db=hashmap_db)
    start = NOW + HOUR
    module.reload_config(start)
    pipeline = [module, noop.Noop()]
    volume = frame_of(start, 'volume', point(50))
    assert prices(rating.rate(volume, pipeline, 'tenant-a')) == [
        D('0.0485')]
    assert prices(rating.rate(volume, pipeline, 'tenant-b')) == [D('0.049')]
    assert prices(rating.rate(volume, pipeline)) == [D('0.049')]
