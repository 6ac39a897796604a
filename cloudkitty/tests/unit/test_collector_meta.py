"""The meta collector's logic, with fake sub-collectors and fake tables:
dispatch, default collector, disabled collectors, validation, and the
routes read once per period."""

import datetime
import decimal
import logging

from oslo_config import cfg
import pytest
import sqlalchemy
import voluptuous

from cloudkitty import collector
from cloudkitty.collector import meta
from cloudkitty.collector import metrics_conf
from cloudkitty import conf as ck_conf
from cloudkitty import dataframe
from cloudkitty.db import models
from cloudkitty.storage_state import collector as collector_state

D = decimal.Decimal
UTC = datetime.timezone.utc
HOUR = datetime.timedelta(hours=1)
P1 = datetime.datetime(2026, 2, 1, 10, tzinfo=UTC)
P2, P3 = P1 + HOUR, P1 + 2 * HOUR

#: What each fake source holds: {(source metric, scope): [(id, qty)]}.
USAGE = {
    ('cpu', 'p1'): [('vm1', '3'), ('vm2', '5')],
    ('cpu', 'p2'): [('vm3', '7')],
    ('ram', 'p1'): [('vm1', '2048')],
    ('disk', 'p1'): [('vol1', '20')],
}

METRICS = {'metrics': {
    'cpu': {'unit': 'instance', 'groupby': ['id'],
            'extra_args': {'alpha_arg': 'x'}},
    'ram': [{'unit': 'MiB', 'alt_name': 'ram_mib', 'groupby': ['id'],
             'extra_args': {'beta_arg': 1}},
            {'unit': 'GiB', 'alt_name': 'ram_gib', 'groupby': ['id'],
             'factor': '1/1024', 'extra_args': {'beta_arg': 1}}],
    'disk': {'unit': 'GiB', 'groupby': ['id'],
             'extra_args': {'beta_arg': 2}},
}}
KEYS = ['cpu', 'ram@#ram_mib', 'ram@#ram_gib', 'disk']


class Fake(collector.BaseCollector):
    """Answers from :data:`USAGE`; records its calls on the class."""

    calls = None
    builds = None
    down = False
    extra = {}

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        type(self).builds.append(sorted(self.conf))

    @classmethod
    def check_configuration(cls, conf):
        return metrics_conf.check_extra_args(
            collector.BaseCollector.check_configuration(conf),
            {voluptuous.Required('extra_args'): cls.extra})

    def fetch_all(self, metric_name, start, end, project_id=None,
                  q_filter=None):
        type(self).calls.append((metric_name, start, project_id))
        if type(self).down:
            raise collector.CollectError(self.collector_name, metric_name,
                                         project_id, 'source down')
        if project_id is None:
            scopes = q_filter[self.scope_key]
        else:
            scopes = [project_id]
        source = metrics_conf.source_metric_name(metric_name)
        return [dataframe.DataPoint('u', qty, 0, {'id': id_,
                                                  'project_id': scope}, {})
                for scope in scopes
                for id_, qty in USAGE.get((source, scope), ())]


class Alpha(Fake):
    collector_name = 'alpha'
    extra = {voluptuous.Required('alpha_arg'): str}
    grouped_collection = True


class Beta(Fake):
    collector_name = 'beta'
    extra = {voluptuous.Required('beta_arg'): int}


CLASSES = {'alpha': Alpha, 'beta': Beta}


def load(name):
    try:
        return CLASSES[name]
    except KeyError:
        raise LookupError(f'no collector {name!r}') from None


class Tables:
    """Stands for the mapping and state tables; counts the reads."""

    def __init__(self, mappings=None, states=None):
        self.mappings = dict(mappings or {})
        self.states = dict(states or {})
        self.reads = 0
        self.fail = False

    def read(self):
        self.reads += 1
        if self.fail:
            raise OSError('database unreachable')
        return dict(self.mappings), dict(self.states)


@pytest.fixture(autouse=True)
def fresh_fakes():
    for cls in (Alpha, Beta):
        cls.calls, cls.builds, cls.down = [], [], False


def make(tables, default='beta', metrics=METRICS):
    conf = ck_conf.register_all(cfg.ConfigOpts())
    conf([], project='cloudkitty', default_config_files=[])
    conf.set_override('default_collector', default, 'collector_meta')
    return meta.MetaCollector(conf=metrics, period=3600, oslo_conf=conf,
                              routing=tables, loader=load)


def qtys(answer):
    type_, points = answer
    return type_, sorted((p.groupby['id'], p.qty) for p in points)


# --- dispatch ------------------------------------------------------------------------

def test_each_metric_from_its_collector_the_others_from_the_default():
    tables = Tables({'cpu': 'alpha'})
    coll = make(tables)
    assert qtys(coll.retrieve('cpu', P1, P2, 'p1')) == (
        'cpu', [('vm1', D(3)), ('vm2', D(5))])
    # Both definitions of ram come from the default collector, each
    # converted by its own definition.
    assert qtys(coll.retrieve('ram@#ram_mib', P1, P2, 'p1')) == (
        'ram_mib', [('vm1', D(2048))])
    assert qtys(coll.retrieve('ram@#ram_gib', P1, P2, 'p1')) == (
        'ram_gib', [('vm1', D(2))])
    assert Alpha.calls == [('cpu', P1, 'p1')]
    assert Beta.calls == [('ram@#ram_mib', P1, 'p1'),
                          ('ram@#ram_gib', P1, 'p1')]
    # One sub-collector per collector, with its metrics only.
    assert Alpha.builds == [['cpu']]
    assert Beta.builds == [['disk', 'ram@#ram_gib', 'ram@#ram_mib']]
    assert list(coll.conf) == KEYS


def test_the_service_is_the_metric_name_of_metrics_yml():
    make(Tables({'cpu': 'alpha', 'ram': 'alpha', 'disk': 'alpha'}),
         metrics={'metrics': {'cpu': METRICS['metrics']['cpu'],
                              'ram': {'unit': 'MiB',
                                      'extra_args': {'alpha_arg': 'y'}}}},
         default=None)
    assert Alpha.builds == [['cpu', 'ram']]


def test_no_data_is_no_data():
    coll = make(Tables({'cpu': 'alpha'}))
    with pytest.raises(collector.NoDataCollected):
        coll.retrieve('cpu', P1, P2, 'nobody')


def test_grouped_collection_is_delegated():
    coll = make(Tables({'cpu': 'alpha'}))
    assert coll.grouped_collection is True
    many = coll.retrieve_many('cpu', P1, P2, ['p1', 'p2', 'p3'])
    assert {s: qtys(a) for s, a in many.items()} == {
        'p1': ('cpu', [('vm1', D(3)), ('vm2', D(5))]),
        'p2': ('cpu', [('vm3', D(7))])}
    assert Alpha.calls == [('cpu', P1, None)]  # one call for the scopes
    many = coll.retrieve_many('disk', P1, P2, ['p1', 'p2'])
    assert {s: qtys(a) for s, a in many.items()} == {
        'p1': ('disk', [('vol1', D(20))])}
    assert Beta.calls == [('disk', P1, 'p1'), ('disk', P1, 'p2')]


def test_not_grouped_when_no_sub_collector_is():
    assert make(Tables({'cpu': 'alpha'}),
                metrics={'metrics': {'disk': METRICS['metrics']['disk']}}
                ).grouped_collection is False


def test_fetch_all_is_the_sub_collectors():
    coll = make(Tables({'cpu': 'alpha'}, {'beta': False}))
    points = coll.fetch_all('cpu', P1, P2, 'p2')
    assert [(p.groupby['id'], p.qty) for p in points] == [('vm3', D(7))]
    assert coll.fetch_all('disk', P1, P2, 'p1') == []


def test_a_source_failure_is_a_collect_error_naming_the_source():
    coll = make(Tables({'cpu': 'alpha'}))
    Alpha.down = True
    with pytest.raises(collector.CollectError) as caught:
        coll.retrieve('cpu', P1, P2, 'p1')
    assert str(caught.value) == ("Collector 'alpha' failed to collect metric "
                                 "'cpu' for scope 'p1': source down")


def test_unknown_metric():
    with pytest.raises(collector.CollectError, match='not in the metrics'):
        make(Tables({'cpu': 'alpha'})).retrieve('gpu', P1, P2, 'p1')


# --- disabled collectors ----------------------------------------------------------------

def test_a_disabled_collectors_metrics_yield_no_data(caplog):
    tables = Tables({'cpu': 'alpha'}, {'beta': False, 'alpha': True})
    coll = make(tables)
    caplog.set_level(logging.DEBUG, logger=meta.__name__)
    with pytest.raises(collector.NoDataCollected) as caught:
        coll.retrieve('ram@#ram_gib', P1, P2, 'p1')
    assert caught.value.collector == 'beta'
    assert caught.value.resource == 'ram_gib'
    assert coll.retrieve_many('disk', P1, P2, ['p1']) == {}
    assert Beta.calls == []
    assert qtys(coll.retrieve('cpu', P1, P2, 'p1'))[1] == [
        ('vm1', D(3)), ('vm2', D(5))]
    # Said at INFO for the first period it applies to, DEBUG after.
    coll.retrieve('cpu', P2, P3, 'p1')
    lines = [(r.levelname, r.getMessage()) for r in caplog.records
             if r.getMessage().startswith('Not collected')]
    message = ('metrics ram@#ram_mib, ram@#ram_gib, disk of collector beta, '
               'disabled through /v1/collector/states')
    assert lines == [
        ('INFO', f'Not collected for the period starting {P1.isoformat()}: '
                 f'{message}'),
        ('DEBUG', f'Not collected for the period starting {P2.isoformat()}: '
                  f'{message}')]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_enabling_again_applies_from_the_next_period():
    tables = Tables({'cpu': 'alpha'}, {'beta': False})
    coll = make(tables)
    with pytest.raises(collector.NoDataCollected):
        coll.retrieve('disk', P1, P2, 'p1')
    tables.states['beta'] = True
    with pytest.raises(collector.NoDataCollected):  # same period
        coll.retrieve('disk', P1, P2, 'p1')
    assert qtys(coll.retrieve('disk', P2, P3, 'p1')) == (
        'disk', [('vol1', D(20))])


# --- the routes, read once per period ---------------------------------------------------

def test_read_once_per_period_not_per_call():
    tables = Tables({'cpu': 'alpha'})
    coll = make(tables)
    assert tables.reads == 1  # building validates with what it read
    for key in KEYS:
        for scope in ('p1', 'p2'):
            try:
                coll.retrieve(key, P1, P2, scope)
            except collector.NoDataCollected:
                pass
    coll.retrieve_many('cpu', P1, P2, ['p1', 'p2'])
    assert tables.reads == 2
    coll.retrieve('cpu', P2, P3, 'p1')
    coll.retrieve('disk', P2, P3, 'p1')
    assert tables.reads == 3


def test_a_remap_applies_from_the_next_period_and_builds_once():
    tables = Tables({'cpu': 'alpha'})
    coll = make(tables)
    coll.retrieve('disk', P1, P2, 'p1')
    tables.mappings['disk'] = 'alpha'
    coll.retrieve('disk', P1, P2, 'p1')  # same period: as read
    assert [c[0] for c in Alpha.calls] == []
    with pytest.raises(collector.CollectError) as caught:
        coll.retrieve('disk', P2, P3, 'p1')
    # alpha requires alpha_arg: the remapped metric is validated by it.
    assert str(caught.value) == (
        "Collector 'meta' failed to collect metric 'disk' for scope 'p1': "
        "metric 'disk': key 'extra_args.beta_arg': extra keys not allowed; "
        "key 'extra_args.alpha_arg': required key not provided (collector "
        "'alpha', mapped through /v1/collector/mappings)")
    # The other metrics are collected meanwhile.
    assert qtys(coll.retrieve('cpu', P2, P3, 'p2'))[1] == [('vm3', D(7))]
    tables.mappings['ram'] = 'alpha'
    tables.mappings.pop('disk')
    with pytest.raises(collector.CollectError):
        coll.retrieve('ram@#ram_mib', P3, P3 + HOUR, 'p1')
    # Built once per collector and set of metrics: alpha for cpu at the
    # start, again for cpu and disk (disk refused), again for cpu and ram
    # (ram refused); beta for its three at the start, for ram in P2, and
    # for disk alone now.
    assert Alpha.builds == [['cpu'], ['cpu'], ['cpu']]
    assert Beta.builds == [['disk', 'ram@#ram_gib', 'ram@#ram_mib'],
                           ['ram@#ram_gib', 'ram@#ram_mib'], ['disk']]


def test_an_unchanged_mapping_reuses_the_sub_collectors():
    tables = Tables({'cpu': 'alpha'})
    coll = make(tables)
    for start in (P1, P2, P3):
        coll.retrieve('cpu', start, start + HOUR, 'p1')
        coll.retrieve('disk', start, start + HOUR, 'p1')
    assert tables.reads == 4
    assert Alpha.builds == [['cpu']]
    assert len(Beta.builds) == 1


def test_a_failure_reads_the_routes_again_for_the_retry():
    tables = Tables({'cpu': 'alpha'})
    coll = make(tables)
    coll.retrieve('cpu', P1, P2, 'p1')
    assert tables.reads == 2
    Alpha.down = True
    with pytest.raises(collector.CollectError):
        coll.retrieve('cpu', P2, P3, 'p1')
    assert tables.reads == 3
    # The operator disables the source that is down: the retry of the
    # same period sees it.
    tables.states['alpha'] = False
    with pytest.raises(collector.NoDataCollected):
        coll.retrieve('cpu', P2, P3, 'p1')
    assert tables.reads == 4
    assert len(Alpha.calls) == 2


def test_a_remap_error_is_logged_once_as_an_error(caplog):
    tables = Tables({'cpu': 'alpha'})
    coll = make(tables)
    tables.mappings['cpu'] = 'gnochi'
    caplog.set_level(logging.DEBUG, logger=meta.__name__)
    for start in (P2, P3):
        with pytest.raises(collector.CollectError,
                           match="collector 'gnochi'"):
            coll.retrieve('cpu', start, start + HOUR, 'p1')
    errors = [r.getMessage() for r in caplog.records
              if r.levelno >= logging.WARNING]
    assert errors == [
        f'Metric cpu cannot be collected for the period starting '
        f'{P2.isoformat()}, its scopes are retried until the mapping is '
        "fixed: metric 'cpu': collector 'gnochi' (mapped through "
        "/v1/collector/mappings) cannot be loaded: LookupError: no "
        "collector 'gnochi'"]
    tables.mappings['cpu'] = 'alpha'
    assert qtys(coll.retrieve('cpu', P3, P3 + HOUR, 'p2'))[1] == [
        ('vm3', D(7))]


def test_unreadable_tables_fail_the_collection():
    tables = Tables({'cpu': 'alpha'})
    coll = make(tables)
    tables.fail = True
    with pytest.raises(collector.CollectError) as caught:
        coll.retrieve('disk', P1, P2, 'p1')
    assert str(caught.value) == (
        "Collector 'meta' failed to collect metric 'disk' for scope 'p1': "
        'cannot read the collector mappings and states: OSError: database '
        'unreachable')
    tables.fail = False
    assert qtys(coll.retrieve('disk', P1, P2, 'p1'))[1] == [('vol1', D(20))]


# --- validation at start-up -----------------------------------------------------------------

@pytest.mark.parametrize('mappings, default, message', [
    ({'cpu': 'alpha'}, None,
     "metric 'ram@#ram_mib': no collector: service 'ram' is not mapped "
     'through /v1/collector/mappings and [collector_meta] default_collector '
     'is not set'),
    ({'cpu': 'gnochi'}, 'beta',
     "metric 'cpu': collector 'gnochi' (mapped through "
     '/v1/collector/mappings) cannot be loaded: LookupError: no collector '
     "'gnochi'"),
    ({'cpu': 'alpha'}, 'gnochi',
     "metric 'ram@#ram_mib': collector 'gnochi' (the default collector, "
     '[collector_meta] default_collector) cannot be loaded: LookupError: '
     "no collector 'gnochi'"),
    ({'cpu': 'alpha', 'disk': 'meta'}, 'beta',
     "metric 'disk': collector 'meta' (mapped through "
     '/v1/collector/mappings) does not collect by itself; map the service '
     'to the collector of its data source'),
    ({}, 'beta',
     "metric 'cpu': key 'extra_args.alpha_arg': extra keys not allowed; "
     "key 'extra_args.beta_arg': required key not provided "
     "(collector 'beta', the default collector, [collector_meta] "
     'default_collector)'),
    ({'cpu': 'alpha', 'disk': 'alpha'}, 'beta',
     "metric 'disk': key 'extra_args.beta_arg': extra keys not allowed; "
     "key 'extra_args.alpha_arg': required key not provided "
     "(collector 'alpha', mapped through /v1/collector/mappings)"),
])
def test_start_up_refuses_a_metric_it_cannot_collect(
        mappings, default, message):
    with pytest.raises(collector.InvalidConfiguration) as caught:
        make(Tables(mappings), default=default)
    assert str(caught.value) == message
    assert caught.value.metric == message.split("'")[1]


def test_each_metric_is_normalised_by_its_collector():
    class WithDefault(Beta):
        extra = {voluptuous.Required('beta_arg'): int,
                 voluptuous.Required('mode', default='max'): str}

    base = collector.validate_metrics_conf(METRICS, scope_key='project_id')
    cls, valid, errors = meta.check_group(
        'beta', {k: base[k] for k in ('disk', 'cpu')},
        {'disk': meta._MAPPED, 'cpu': meta._MAPPED},
        {'beta': WithDefault}.__getitem__, 'project_id')
    assert cls is WithDefault
    assert valid == {'disk': dict(base['disk'], extra_args={
        'beta_arg': 2, 'mode': 'max'})}
    assert list(errors) == ['cpu']
    assert errors['cpu'].key == 'extra_args.alpha_arg'


def test_check_configuration_without_a_service_conf_is_the_base_one():
    # The API reads metrics.yml without the mappings: extra_args are then
    # left to the sub-collectors.
    conf = collector.validate_metrics_conf(METRICS, meta.MetaCollector,
                                           'project_id')
    assert list(conf) == KEYS
    assert conf['cpu']['extra_args'] == {'alpha_arg': 'x'}
    with pytest.raises(collector.InvalidConfiguration, match="'unit'"):
        collector.validate_metrics_conf({'metrics': {'cpu': {}}},
                                        meta.MetaCollector, 'project_id')


def test_assign():
    groups, errors = meta.assign(KEYS, {'ram': 'alpha'}, None)
    assert groups == {'alpha': {'ram@#ram_mib': meta._MAPPED,
                                'ram@#ram_gib': meta._MAPPED}}
    assert sorted(errors) == ['cpu', 'disk']


# --- the process's engine, handed in ------------------------------------------------

@pytest.fixture
def engine():
    """A database in memory with the service's tables (no file, no server)."""
    engine = sqlalchemy.create_engine('sqlite://')
    models.Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def unreachable_conf(tmp_path):
    """A configuration whose ``[database] connection`` cannot be opened:
    whatever reads the mappings through it fails."""
    conf = ck_conf.register_all(cfg.ConfigOpts())
    conf([], project='cloudkitty', default_config_files=[])
    conf.set_override('connection',
                      f'sqlite:///{tmp_path}/no-such-dir/cloudkitty.sqlite',
                      'database')
    conf.set_override('usage_path', str(tmp_path), 'collector_file')
    conf.set_override('collector', 'meta', 'collect')
    return conf


def test_validation_reads_the_mappings_through_the_engine_handed_in(
        engine, unreachable_conf):
    collector_state.CollectorMappingManager(engine).set('cpu', 'file')
    out = collector.validate_metrics_conf(
        {'metrics': {'cpu': {'unit': 'u'}}}, meta.MetaCollector,
        oslo_conf=unreachable_conf, engine=engine)
    # Normalised by the file collector, the one the engine's table names.
    assert out['cpu']['extra_args'] == {'aggregation_method': 'sum'}


def test_validation_without_an_engine_opens_the_configured_database(
        unreachable_conf):
    with pytest.raises(collector.InvalidConfiguration,
                       match='cannot read the collector mappings of '
                             r'\[database\] connection: OperationalError'):
        collector.validate_metrics_conf(
            {'metrics': {'cpu': {'unit': 'u'}}}, meta.MetaCollector,
            oslo_conf=unreachable_conf)


def test_the_collector_routes_through_the_engine_handed_in(
        engine, unreachable_conf):
    collector_state.CollectorMappingManager(engine).set('cpu', 'file')
    instance = collector.get_collector(
        unreachable_conf, {'metrics': {'cpu': {'unit': 'u'}}}, engine=engine)
    assert type(instance) is meta.MetaCollector
    collector_state.CollectorStateManager(engine).set_state('file', False)
    with pytest.raises(collector.NoDataCollected):
        instance.retrieve('cpu', P1, P2, 'p1')
