"""metrics.yml validation, BaseCollector.retrieve and the collector loader."""

import datetime
import decimal
import fractions

from oslo_config import cfg
import pytest
import voluptuous
from voluptuous import All
from voluptuous import In
from voluptuous import Length
from voluptuous import Required
from voluptuous import Schema

from cloudkitty import collector
from cloudkitty.collector import BaseCollector
from cloudkitty.collector import metrics_conf
from cloudkitty.collector import quantity
from cloudkitty import conf as ck_conf
from cloudkitty import dataframe

D = decimal.Decimal
F = fractions.Fraction
UTC = datetime.timezone.utc
START = datetime.datetime(2026, 1, 4, 10, tzinfo=UTC)   # a Sunday
END = START + datetime.timedelta(hours=1)


@pytest.fixture
def conf():
    conf = cfg.ConfigOpts()
    ck_conf.register_all(conf)
    conf([], project='cloudkitty')
    return conf


@pytest.fixture
def global_conf(monkeypatch):
    """A registered cfg.CONF, for the third-party (global) read path.

    A fresh object stands in for the global (and for this module's
    ``CONF = cfg.CONF``, as a guide-written collector module has it), so
    that nothing is left registered on the real one.
    """
    conf = cfg.ConfigOpts()
    ck_conf.register_all(conf)
    monkeypatch.setattr(cfg, 'CONF', conf)
    monkeypatch.setitem(globals(), 'CONF', conf)
    return conf


def validate(metrics, scope_key='project_id', collector_class=None):
    return collector.validate_metrics_conf({'metrics': metrics},
                                           collector_class, scope_key)


def invalid(metrics, **kwargs):
    with pytest.raises(collector.InvalidConfiguration) as info:
        validate(metrics, **kwargs)
    return info.value


# --- METRIC_BASE_SCHEMA and the cross-key rules --------------------------------

def test_minimal_definition_gets_every_default():
    assert validate({'cpu': {'unit': 'instance'}}) == {'cpu': {
        'unit': 'instance', 'alt_name': 'cpu', 'factor': F(1),
        'offset': F(0), 'groupby': ['project_id'], 'metadata': [],
        'mutate': 'NONE'}}


def test_full_definition():
    out = validate({'cpu': {
        'unit': 'instance', 'alt_name': 'instance', 'factor': '1/3',
        'offset': 2, 'groupby': ['id', 'user_id'], 'metadata': ['flavor'],
        'mutate': 'MAP', 'mutate_map': {1: 10, '2.5': 0.5},
        'description': 'Instances', 'skip_datapoints_expression': 'False',
        'extra_args': {'anything': ['goes']}}})['cpu']
    assert out['factor'] == F(1, 3) and out['offset'] == F(2)
    assert out['groupby'] == ['id', 'user_id', 'project_id']
    assert out['mutate_map'] == {D(1): D(10), D('2.5'): D('0.5')}
    assert all(type(k) is D and type(v) is D
               for k, v in out['mutate_map'].items())
    assert out['description'] == 'Instances'
    assert out['skip_datapoints_expression'] == 'False'
    assert out['extra_args'] == {'anything': ['goes']}


def test_validation_is_idempotent():
    once = validate({'cpu': {'unit': 'u', 'factor': 0.5, 'mutate': 'MAP',
                             'mutate_map': {0: 1}, 'groupby': ['id']},
                     'ram': [{'unit': 'MiB', 'alt_name': 'a'},
                             {'unit': 'GiB', 'alt_name': 'b'}]})
    twice = collector.validate_metrics_conf(once, scope_key='project_id')
    assert twice == once


@pytest.mark.parametrize('definition, key', [
    ({}, 'unit'),
    ({'unit': ''}, 'unit'),
    ({'unit': '   '}, 'unit'),
    ({'unit': 3}, 'unit'),
    ({'unit': 'u', 'alt_name': ''}, 'alt_name'),
    ({'unit': 'u', 'alt_name': 5}, 'alt_name'),
    ({'unit': 'u', 'groupby': 'id'}, 'groupby'),
    ({'unit': 'u', 'groupby': ['id', '']}, 'groupby.1'),
    ({'unit': 'u', 'metadata': [3]}, 'metadata.0'),
    ({'unit': 'u', 'factor': 'abc'}, 'factor'),
    ({'unit': 'u', 'factor': '1/0'}, 'factor'),
    ({'unit': 'u', 'factor': True}, 'factor'),
    ({'unit': 'u', 'factor': [1]}, 'factor'),
    ({'unit': 'u', 'offset': 'x'}, 'offset'),
    ({'unit': 'u', 'mutate': 'ROUND'}, 'mutate'),
    ({'unit': 'u', 'mutate': 3}, 'mutate'),
    ({'unit': 'u', 'mutate': 'MAP'}, 'mutate_map'),
    ({'unit': 'u', 'mutate_map': {1: 1}}, 'mutate_map'),
    ({'unit': 'u', 'mutate': 'NUMBOOL', 'mutate_map': {1: 1}}, 'mutate_map'),
    ({'unit': 'u', 'mutate': 'MAP', 'mutate_map': {'on': 1}}, 'mutate_map'),
    ({'unit': 'u', 'mutate': 'MAP', 'mutate_map': [1]}, 'mutate_map'),
    ({'unit': 'u', 'description': 3}, 'description'),
    ({'unit': 'u', 'skip_datapoints_expression': 3},
     'skip_datapoints_expression'),
    ({'unit': 'u', 'extra_args': 'x'}, 'extra_args'),
    ({'unit': 'u', 'unkown_key': 1}, 'unkown_key'),
    ({'unit': 'u', 'groupby': ['id'], 'metadata': ['id']}, 'metadata'),
    ({'unit': 'u', 'metadata': ['project_id']}, 'metadata'),
])
def test_invalid_definition_names_metric_and_key(definition, key):
    error = invalid({'good': {'unit': 'u'}, 'my.metric': definition})
    assert error.metric == 'my.metric'
    assert error.key == key
    assert "metric 'my.metric'" in str(error)
    assert f"'{key}'" in str(error)


def test_key_in_both_lists_is_named():
    error = invalid({'cpu': {'unit': 'u', 'groupby': ['id', 'flavor'],
                             'metadata': ['flavor', 'image']}})
    assert 'flavor' in str(error) and 'image' not in str(error)


@pytest.mark.parametrize('value, expected', [
    (1, F(1)), (2.5, F(5, 2)), (0.001, F(1, 1000)), ('1/1048576',
                                                     F(1, 1048576)),
    ('0.5', F(1, 2)), (D('0.1'), F(1, 10)), ('1e-3', F(1, 1000)),
    (-2, F(-2)), (F(1, 3), F(1, 3)),
])
def test_factor_and_offset_are_fractions(value, expected):
    out = validate({'m': {'unit': 'u', 'factor': value, 'offset': value}})
    assert out['m']['factor'] == expected and out['m']['offset'] == expected
    assert type(out['m']['factor']) is F


@pytest.mark.parametrize('mutate', metrics_conf.MUTATORS)
def test_every_mutator_is_accepted_in_any_case(mutate):
    definition = {'unit': 'u', 'mutate': mutate.lower()}
    if mutate == 'MAP':
        definition['mutate_map'] = {0: 1}
    assert validate({'m': definition})['m']['mutate'] == mutate


def test_scope_key_is_added_once_and_groupby_deduplicated():
    out = validate({'m': {'unit': 'u', 'groupby': ['id', 'id', 'domain_id',
                                                   'user']}},
                   scope_key='domain_id')
    assert out['m']['groupby'] == ['id', 'domain_id', 'user']


def test_several_definitions_of_one_metric():
    out = validate({'cpu': [
        {'unit': 'instance', 'alt_name': 'instance', 'mutate': 'NUMBOOL'},
        {'unit': 'vcpu', 'alt_name': 'vcpus'}],
        'ram': [{'unit': 'MiB'}]})
    assert list(out) == ['cpu@#instance', 'cpu@#vcpus', 'ram']
    assert out['cpu@#instance']['alt_name'] == 'instance'
    assert out['ram']['alt_name'] == 'ram'
    assert metrics_conf.source_metric_name('cpu@#vcpus') == 'cpu'
    assert metrics_conf.source_metric_name('ram') == 'ram'


def test_one_definition_without_alt_name_keeps_the_metric_name():
    out = validate({'cpu': [{'unit': 'instance'},
                            {'unit': 'vcpu', 'alt_name': 'vcpus'}]})
    assert out['cpu@#cpu']['alt_name'] == 'cpu'
    assert out['cpu@#vcpus']['alt_name'] == 'vcpus'


@pytest.mark.parametrize('metrics', [
    {'cpu': [{'unit': 'a'}, {'unit': 'b'}]},
    {'cpu': [{'unit': 'a', 'alt_name': 'x'}, {'unit': 'b', 'alt_name': 'x'}]},
    {'cpu': {'unit': 'a', 'alt_name': 'x'}, 'ram': {'unit': 'b',
                                                    'alt_name': 'x'}},
    {'cpu': {'unit': 'a', 'alt_name': 'ram'}, 'ram': {'unit': 'b'}},
])
def test_duplicate_alt_names_are_refused(metrics):
    error = invalid(metrics)
    assert error.key == 'alt_name'
    assert 'alt_name' in str(error) and 'already' in str(error)


def test_definition_number_is_named_in_a_list():
    error = invalid({'cpu': [{'unit': 'a', 'alt_name': 'x'},
                             {'alt_name': 'y'}]})
    assert "metric 'cpu (definition 2)'" in str(error)
    assert error.key == 'unit'


@pytest.mark.parametrize('content, text', [
    ({}, 'metrics'),
    ({'metrics': {}}, 'no metric'),
    ({'metrics': None}, 'metrics'),
    ({'metrics': ['cpu']}, 'metrics'),
    ({'metrics': {'cpu': {'unit': 'u'}}, 'extra': 1}, 'extra'),
    ({'metrics': {'cpu': 'instance'}}, "metric 'cpu'"),
    ({'metrics': {'cpu': []}}, "metric 'cpu'"),
    ({'metrics': {'cpu': [3]}}, "metric 'cpu'"),
    ({'metrics': {3: {'unit': 'u'}}}, '3'),
    ('metrics', 'mapping'),
])
def test_invalid_top_level(content, text):
    with pytest.raises(collector.InvalidConfiguration) as info:
        collector.validate_metrics_conf(content, scope_key='project_id')
    assert text in str(info.value)


# --- load_metrics_conf ------------------------------------------------------------

def test_load_metrics_conf(tmp_path):
    path = tmp_path / 'metrics.yml'
    path.write_text('metrics:\n'
                    '  image.size:\n'
                    '    unit: MiB\n'
                    '    factor: 1/1048576\n'
                    '    groupby: [id]\n'
                    '  net:\n'
                    '    unit: MB\n'
                    '    factor: 0.000001\n'
                    '    offset: 0.1\n')
    out = collector.load_metrics_conf(str(path), scope_key='tenant')
    assert out['image.size']['factor'] == F(1, 1048576)
    assert out['image.size']['groupby'] == ['id', 'tenant']
    # YAML floats go through str(): 1e-06 is exactly one millionth.
    assert out['net']['factor'] == F(1, 10**6)
    assert out['net']['offset'] == F(1, 10)


@pytest.mark.parametrize('text, expected', [
    ('metrics: [unclosed\n', 'invalid YAML'),
    ('', '"metrics" is missing'),
    ('metric:\n  cpu:\n    unit: u\n', '"metrics" is missing'),
    ('metrics:\n  cpu:\n    unit: u\n    factor: 1/x\n',
     "metric 'cpu': key 'factor'"),
])
def test_load_metrics_conf_errors_name_the_file(tmp_path, text, expected):
    path = tmp_path / 'metrics.yml'
    path.write_text(text)
    with pytest.raises(collector.InvalidConfiguration) as info:
        collector.load_metrics_conf(str(path))
    assert str(path) in str(info.value)
    assert expected in str(info.value)
    assert 'Traceback' not in str(info.value)


def test_load_metrics_conf_missing_file(tmp_path):
    with pytest.raises(collector.InvalidConfiguration) as info:
        collector.load_metrics_conf(str(tmp_path / 'nope.yml'))
    assert 'nope.yml' in str(info.value)


def test_invalid_configuration_is_one_exception_class():
    assert issubclass(collector.InvalidConfiguration, ValueError)
    assert not issubclass(collector.InvalidConfiguration, voluptuous.Invalid)


# --- quantity conversion and mutation ------------------------------------------------

class ListCollector(BaseCollector):
    """Returns the points it is given, whatever the period."""

    collector_name = 'list'
    points = ()

    def fetch_all(self, metric_name, start, end, project_id=None,
                  q_filter=None):
        self.calls = getattr(self, 'calls', []) + [
            (metric_name, start, end, project_id, q_filter)]
        return list(self.points)


def retrieved(definition, *qtys, description=None):
    instance = ListCollector(conf={'metrics': {'m': definition}},
                             period=3600)
    instance.points = [dataframe.DataPoint('u', q, 0, {'id': str(i)}, {},
                                           description)
                       for i, q in enumerate(qtys)]
    return instance.retrieve('m', START, END, 'scope')


def qtys(definition, *values):
    name, points = retrieved(definition, *values)
    return [p.qty for p in points]


def exact(value):
    return (type(value) is D, str(value))


@pytest.mark.parametrize('factor, offset, qty, expected', [
    (1, 0, '2.50', '2.50'),
    ('1/1048576', 0, 1073741824, '1024'),
    ('1/1048576', 0, 1, '9.5367431640625E-7'),
    (0.001, 0, 12345, '12.345'),
    ('1/3', 0, 1, '0.3333333333333333333333333333'),
    ('1/3', 0, 2, '0.6666666666666666666666666667'),
    ('2/3', 0, '0.5', '0.3333333333333333333333333333'),
    (3, -1, 2, '5'),
    (1, '1/3', 1, '1.333333333333333333333333333'),
    ('1/3', '1/3', 2, '1'),
    (2, 0, '123456789012345678901234567890.5',
     '246913578024691357802469135781.0'),
    (1, 0.1, '0.2', '0.3'),
    (0, 5, 100, '5'),
    (-1, 0, 3, '-3'),
])
def test_factor_and_offset_to_the_last_digit(factor, offset, qty, expected):
    got, = qtys({'unit': 'u', 'factor': factor, 'offset': offset}, qty)
    assert type(got) is D
    assert got == D(expected)
    assert str(got.normalize()) == str(D(expected).normalize())


def test_non_terminating_result_is_rounded_once_to_28_digits():
    got, = qtys({'unit': 'u', 'factor': '1/7'}, '1000000')
    assert got == D('142857.1428571428571428571429')
    assert len(got.as_tuple().digits) == quantity.QTY_PRECISION


@pytest.mark.parametrize('mutate, values, expected', [
    ('NONE', ['0', '2.5', '-1'], ['0', '2.5', '-1']),
    ('NUMBOOL', ['0', '0.0', '2.5', '-0.001'], ['0', '0', '1', '1']),
    ('NOTNUMBOOL', ['0', '0.0', '2.5', '-0.001'], ['1', '1', '0', '0']),
    ('FLOOR', ['2.7', '-2.7', '3', '0.0001'], ['2', '-3', '3', '0']),
    ('CEIL', ['2.1', '-2.1', '3', '0.0001'], ['3', '-2', '3', '1']),
])
def test_mutations(mutate, values, expected):
    got = qtys({'unit': 'u', 'mutate': mutate}, *values)
    assert got == [D(e) for e in expected]
    assert all(type(g) is D for g in got)


def test_map_mutation():
    definition = {'unit': 'u', 'mutate': 'MAP',
                  'mutate_map': {1: 10, '2.5': 0.75, 0: 3}}
    assert qtys(definition, 1, '1.0', '2.50', 0, 7) == [
        D(10), D(10), D('0.75'), D(3), D(0)]


def test_mutation_comes_after_factor_and_offset():
    assert qtys({'unit': 'u', 'factor': 2, 'mutate': 'MAP',
                 'mutate_map': {2: 20}}, 1) == [D(20)]
    assert qtys({'unit': 'u', 'offset': '0.2', 'mutate': 'FLOOR'},
                '0.9') == [D(1)]
    assert qtys({'unit': 'u', 'offset': -1, 'mutate': 'NUMBOOL'},
                1, 3) == [D(0), D(1)]


def test_make_converter_identity_keeps_the_digits():
    convert = quantity.make_converter()
    assert str(convert(D('2.500'))) == '2.500'


# --- retrieve --------------------------------------------------------------------------

def test_retrieve_returns_alt_name_and_converted_points():
    name, points = retrieved({'unit': 'u', 'alt_name': 'instance',
                              'factor': 2}, 1, '1.5')
    assert name == 'instance'
    assert [p.qty for p in points] == [D(2), D(3)]


@pytest.mark.parametrize('start, keys', [
    (START, {'week_of_the_year': '01', 'day_of_the_year': '4',
             'month': '1', 'year': '2026'}),
    (datetime.datetime(2026, 1, 1, tzinfo=UTC),
     {'week_of_the_year': '00', 'day_of_the_year': '1', 'month': '1',
      'year': '2026'}),
    (datetime.datetime(2024, 12, 31, 23, tzinfo=UTC),
     {'week_of_the_year': '52', 'day_of_the_year': '366', 'month': '12',
      'year': '2024'}),
])
def test_time_keys_from_the_period_start(start, keys):
    instance = ListCollector(conf={'metrics': {'m': {'unit': 'u'}}},
                             period=3600)
    instance.points = [dataframe.DataPoint(
        'u', 1, 0, {'id': 'a', 'month': 'stale'}, {'flavor': 'x'})]
    _, (point,) = instance.retrieve('m', start, start, 'p')
    assert dict(point.groupby) == dict({'id': 'a'}, **keys)
    assert dict(point.metadata) == {'flavor': 'x'}
    assert quantity.time_keys(start) == keys
    assert all(type(v) is str for v in point.groupby.values())


def test_retrieve_sets_the_metric_description():
    _, points = retrieved({'unit': 'u', 'description': 'Instances'}, 1,
                          description='from the source')
    assert [p.description for p in points] == ['Instances']
    _, points = retrieved({'unit': 'u'}, 1, description='from the source')
    assert [p.description for p in points] == ['from the source']


def test_retrieve_keeps_unit_price_and_point_type():
    _, (point,) = retrieved({'unit': 'u', 'factor': 3}, 2)
    assert isinstance(point, dataframe.DataPoint)
    assert point.unit == 'u' and point.price == D(0)
    with pytest.raises(TypeError):
        point.groupby['x'] = 1


def test_retrieve_passes_arguments_to_fetch_all():
    instance = ListCollector(conf={'metrics': {'m': {'unit': 'u'}}},
                             period=3600)
    instance.points = [dataframe.DataPoint('u', 1, 0, {}, {})]
    instance.retrieve('m', START, END, 'scope-1', q_filter={'a': 'b'})
    assert instance.calls == [('m', START, END, 'scope-1', {'a': 'b'})]


@pytest.mark.parametrize('result', [[], None, ()])
def test_no_data_collected(result):
    class Empty(ListCollector):
        def fetch_all(self, *args, **kwargs):
            return result

    instance = Empty(conf={'metrics': {'m': {'unit': 'u', 'alt_name': 'x'}}},
                     period=3600)
    with pytest.raises(collector.NoDataCollected) as info:
        instance.retrieve('m', START, END, 'scope-1')
    assert info.value.collector == 'list'
    assert info.value.resource == 'x'
    assert info.value.scope == 'scope-1'
    assert "'list'" in str(info.value) and "'x'" in str(info.value)


def test_source_failure_is_a_collect_error():
    class Broken(ListCollector):
        def fetch_all(self, *args, **kwargs):
            raise ConnectionError('connection refused')

    instance = Broken(conf={'metrics': {'cpu': {'unit': 'u'}}}, period=60)
    with pytest.raises(collector.CollectError) as info:
        instance.retrieve('cpu', START, END, 'scope-9')
    message = str(info.value)
    assert "'list'" in message and "'cpu'" in message
    assert "'scope-9'" in message and 'connection refused' in message
    assert isinstance(info.value.__cause__, ConnectionError)
    assert (info.value.collector, info.value.metric, info.value.scope) == \
        ('list', 'cpu', 'scope-9')


def test_errors_raised_by_fetch_all_pass_through():
    class Raises(ListCollector):
        error = None

        def fetch_all(self, *args, **kwargs):
            raise self.error

    instance = Raises(conf={'metrics': {'cpu': {'unit': 'u'}}}, period=60)
    instance.error = collector.NoDataCollected('raises', 'cpu')
    with pytest.raises(collector.NoDataCollected):
        instance.retrieve('cpu', START, END)
    instance.error = collector.CollectError('raises', 'cpu', None, 'boom')
    with pytest.raises(collector.CollectError) as info:
        instance.retrieve('cpu', START, END)
    assert 'all scopes' in str(info.value)


def test_unknown_metric_is_a_collect_error():
    instance = ListCollector(conf={'metrics': {'m': {'unit': 'u'}}},
                             period=60)
    with pytest.raises(collector.CollectError):
        instance.retrieve('other', START, END)


# --- construction ------------------------------------------------------------------------

def test_constructor_requires_the_metrics_conf():
    with pytest.raises(ValueError):
        ListCollector(period=3600)


def test_constructor_validates(conf):
    with pytest.raises(collector.InvalidConfiguration):
        ListCollector(conf={'metrics': {'m': {}}}, period=3600, oslo_conf=conf)


def test_constructor_uses_the_given_conf(conf):
    conf.set_override('scope_key', 'domain_id', group='collect')
    conf.set_override('period', 600, group='collect')
    instance = ListCollector(conf={'metrics': {'m': {'unit': 'u'}}},
                             oslo_conf=conf)
    assert instance.period == 600
    assert instance.scope_key == 'domain_id'
    assert instance.conf['m']['groupby'] == ['domain_id']
    assert instance.oslo_conf is conf


def test_base_collector_is_abstract():
    with pytest.raises(TypeError):
        BaseCollector(conf={'metrics': {'m': {'unit': 'u'}}}, period=60)


# --- the validation context: passed in, or read from cfg.CONF --------------------------

class Recording(ListCollector):
    """Records the context its check_configuration is handed."""

    contexts = []

    @staticmethod
    def check_configuration(conf, context=None):
        Recording.contexts.append(context)
        return BaseCollector.check_configuration(conf, context)


def test_an_override_taking_the_context_is_handed_it(conf):
    conf.set_override('scope_key', 'domain_id', group='collect')
    engine = object()
    Recording.contexts = []
    out = collector.validate_metrics_conf(
        {'metrics': {'m': {'unit': 'u'}}}, Recording, oslo_conf=conf,
        engine=engine)
    assert Recording.contexts == [
        collector.ValidationContext('domain_id', conf, engine)]
    assert out['m']['groupby'] == ['domain_id']
    Recording.contexts = []
    collector.validate_metrics_conf({'metrics': {'m': {'unit': 'u'}}},
                                    Recording, 'tenant_id', conf)
    assert Recording.contexts == [
        collector.ValidationContext('tenant_id', conf, None)]


def test_the_context_reaches_the_override_that_pins_a_metric():
    Recording.contexts = []
    invalid({'ok': {'unit': 'u'}, 'bad': {'unit': 'u', 'factor': 'x'}},
            collector_class=Recording, scope_key='domain_id')
    assert {context.scope_key for context in Recording.contexts} == \
        {'domain_id'}


def test_a_one_argument_override_reads_the_scope_key_of_cfg_conf(
        global_conf):
    # The guide's overrides call BaseCollector.check_configuration(conf):
    # the scope key they get is the global one, which the services
    # register from their configuration.
    global_conf.set_override('scope_key', 'from_global', group='collect')
    out = validate({'cpu': {'unit': 'u', 'extra_args': {'resource_type': 'i'}}},
                   scope_key='project_id', collector_class=GnocchiCollector)
    assert out['cpu']['groupby'] == ['from_global', 'id']


def test_check_configuration_without_a_context_reads_cfg_conf(global_conf):
    global_conf.set_override('scope_key', 'from_global', group='collect')
    assert metrics_conf.global_context() == \
        collector.ValidationContext('from_global')
    out = BaseCollector.check_configuration({'metrics': {'m': {'unit': 'u'}}})
    assert out['m']['groupby'] == ['from_global']


def test_scope_key_default_without_any_registration(monkeypatch):
    monkeypatch.setattr(cfg, 'CONF', cfg.ConfigOpts())
    assert metrics_conf.global_context().scope_key == 'project_id'
    assert validate({'m': {'unit': 'u'}}, scope_key=None)['m']['groupby'] \
        == ['project_id']


class _Signatures:
    @staticmethod
    def one(conf):
        return conf

    @staticmethod
    def two(conf, context=None):
        return conf

    @staticmethod
    def star(conf, *args):
        return conf

    @classmethod
    def class_one(cls, conf):
        return conf

    @classmethod
    def class_two(cls, conf, context):
        return conf


@pytest.mark.parametrize('name, expected', [
    ('one', False), ('two', True), ('star', True), ('class_one', False),
    ('class_two', True)])
def test_accepts_context(name, expected):
    assert metrics_conf.accepts_context(getattr(_Signatures, name)) is expected


def test_collector_without_oslo_conf_reads_the_global(global_conf):
    global_conf.set_override('scope_key', 'tenant_id', group='collect')
    global_conf.set_override('period', 120, group='collect')
    instance = ListCollector(conf={'metrics': {'m': {'unit': 'u'}}})
    assert instance.conf['m']['groupby'] == ['tenant_id']
    assert instance.period == 120


# --- the seed guide's examples, unchanged ---------------------------------------------------

from cloudkitty.collector import BaseCollector as GuideBase  # noqa: E402

CONF = cfg.CONF


class FakeClient:
    def __init__(self, rows):
        self.rows = rows
        self.queries = []

    def query(self, filters, groupby):
        self.queries.append((filters, groupby))
        return self.rows


class MyCollector(GuideBase):
    def __init__(self, **kwargs):
        super(MyCollector, self).__init__(**kwargs)
        self.client = kwargs.get('client')

    def fetch_all(self, metric_name, start, end,
                  project_id=None, q_filter=None):
        scope_key = CONF.collect.scope_key
        filters = {'start': start, 'stop': end, scope_key: project_id}

        data = self.client.query(
            filters=filters,
            groupby=self.conf[metric_name]['groupby'])
        output = []
        for row in data:
            groupby = {k: row.get(k) for k in
                       self.conf[metric_name]['groupby']}
            metadata = {k: row.get(k) for k in
                        self.conf[metric_name]['metadata']}
            output.append(dataframe.DataPoint(
                self.conf[metric_name]['unit'],
                row['qty'],  # int, float, decimal.Decimal or str
                0,  # price
                groupby,  # dict
                metadata,  # dict
            ))
        return output


def test_seed_guide_collector_runs_unchanged(global_conf):
    global_conf.set_override('scope_key', 'project_id', group='collect')
    client = FakeClient([{'project_id': 'p1', 'id': 'vm', 'flavor': 'big',
                          'qty': 0.1}])
    instance = MyCollector(
        conf={'metrics': {'cpu': {'unit': 'instance', 'groupby': ['id'],
                                  'metadata': ['flavor'], 'factor': 3}}},
        period=3600, client=client)
    name, (point,) = instance.retrieve('cpu', START, END, 'p1')
    assert name == 'cpu'
    assert point.qty == D('0.3')
    assert point.groupby['project_id'] == 'p1'
    assert point.metadata == {'flavor': 'big'}
    assert client.queries == [({'start': START, 'stop': END,
                                'project_id': 'p1'}, ['id', 'project_id'])]


GNOCCHI_EXTRA_SCHEMA = {
    Required('extra_args'): {
        Required('resource_type'): All(str, Length(min=1)),
        # Due to Gnocchi model, metric are grouped by resource.
        # This parameter allows to adapt the key of the resource identifier
        Required('resource_key', default='id'): All(str, Length(min=1)),
        Required('aggregation_method', default='max'):
            In(['max', 'mean', 'min']),
    },
}


class GnocchiCollector(collector.BaseCollector):

    collector_name = 'gnocchi'

    @staticmethod
    def check_configuration(conf):
        conf = collector.BaseCollector.check_configuration(conf)
        metric_schema = Schema(collector.METRIC_BASE_SCHEMA).extend(
            GNOCCHI_EXTRA_SCHEMA)

        output = {}
        for metric_name, metric in conf.items():
            met = output[metric_name] = metric_schema(metric)

            if met['extra_args']['resource_key'] not in met['groupby']:
                met['groupby'].append(met['extra_args']['resource_key'])

        return output

    def fetch_all(self, metric_name, start, end, project_id=None,
                  q_filter=None):
        return [dataframe.DataPoint('u', 1, 0, {}, {})]


def test_seed_gnocchi_check_configuration():
    out = validate({'cpu': {'unit': 'instance', 'factor': '1/2',
                            'extra_args': {'resource_type': 'instance'}},
                    'vol': {'unit': 'GiB', 'groupby': ['uuid'],
                            'extra_args': {'resource_type': 'volume',
                                           'resource_key': 'uuid',
                                           'aggregation_method': 'mean'}}},
                   collector_class=GnocchiCollector)
    assert out['cpu']['extra_args'] == {'resource_type': 'instance',
                                        'resource_key': 'id',
                                        'aggregation_method': 'max'}
    assert out['cpu']['groupby'] == ['project_id', 'id']
    assert out['cpu']['factor'] == F(1, 2)
    assert out['vol']['groupby'] == ['uuid', 'project_id']


@pytest.mark.parametrize('extra, key', [
    (None, 'extra_args'),
    ({}, 'extra_args.resource_type'),
    ({'resource_type': 'x', 'aggregation_method': 'sum'},
     'extra_args.aggregation_method'),
    ({'resource_type': ''}, 'extra_args.resource_type'),
])
def test_seed_gnocchi_errors_name_metric_and_key(extra, key):
    definition = {'unit': 'u'}
    if extra is not None:
        definition['extra_args'] = extra
    error = invalid({'ok': {'unit': 'u', 'extra_args': {'resource_type': 'x'}},
                     'bad.one': definition}, collector_class=GnocchiCollector)
    assert error.metric == 'bad.one'
    assert "metric 'bad.one'" in str(error)
    assert key in str(error)


def test_seed_gnocchi_still_gets_the_base_rules():
    error = invalid({'cpu': {'unit': 'u', 'mutate': 'MAP',
                             'extra_args': {'resource_type': 'x'}}},
                    collector_class=GnocchiCollector)
    assert error.key == 'mutate_map'


def test_seed_gnocchi_collector_builds_and_retrieves(conf):
    instance = GnocchiCollector(
        conf={'metrics': {'cpu': {'unit': 'u', 'offset': 1,
                                  'extra_args': {'resource_type': 'i'}}}},
        period=3600, oslo_conf=conf)
    assert instance.conf['cpu']['groupby'] == ['project_id', 'id']
    name, (point,) = instance.retrieve('cpu', START, END, 'p')
    assert point.qty == D(2)


# --- the loader ----------------------------------------------------------------------------

def test_get_collector_loads_the_entry_point(conf, tmp_path):
    conf.set_override('usage_path', str(tmp_path), group='collector_file')
    conf.set_override('scope_key', 'domain_id', group='collect')
    instance = collector.get_collector(
        conf, {'metrics': {'cpu': {'unit': 'instance'}}})
    from cloudkitty.collector import file
    assert type(instance) is file.FileCollector
    assert instance.conf['cpu']['groupby'] == ['domain_id']
    assert instance.conf['cpu']['extra_args'] == {'aggregation_method': 'sum'}
    assert instance.period == 3600


def test_get_collector_reads_metrics_conf(conf, tmp_path):
    path = tmp_path / 'metrics.yml'
    path.write_text('metrics:\n  cpu:\n    unit: instance\n')
    conf.set_override('metrics_conf', str(path), group='collect')
    conf.set_override('usage_path', str(tmp_path), group='collector_file')
    assert list(collector.get_collector(conf).conf) == ['cpu']


def test_get_collector_refuses_invalid_extra_args(conf, tmp_path):
    path = tmp_path / 'metrics.yml'
    path.write_text('metrics:\n  cpu:\n    unit: instance\n'
                    '    extra_args:\n      aggregation_method: median\n')
    conf.set_override('metrics_conf', str(path), group='collect')
    with pytest.raises(collector.InvalidConfiguration) as info:
        collector.get_collector(conf)
    assert "metric 'cpu'" in str(info.value)
    assert 'extra_args.aggregation_method' in str(info.value)


def test_get_collector_unknown_backend(conf):
    conf.set_override('collector', 'no-such-collector', group='collect')
    with pytest.raises(Exception) as info:
        collector.get_collector(conf, {'metrics': {'m': {'unit': 'u'}}})
    assert 'no-such-collector' in str(info.value)


def test_validated_output_shares_nothing_with_the_input():
    raw = {'metrics': {'m': {'unit': 'u', 'extra_args': {'a': [1]},
                             'groupby': ['id']}}}
    out = collector.validate_metrics_conf(raw, scope_key='project_id')
    out['m']['extra_args']['a'].append(2)
    out['m']['groupby'].append('x')
    assert raw == {'metrics': {'m': {'unit': 'u', 'extra_args': {'a': [1]},
                                     'groupby': ['id']}}}
