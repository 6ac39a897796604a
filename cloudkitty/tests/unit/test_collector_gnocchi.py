"""The gnocchi collector's configuration and query building (no server)."""

import datetime

from oslo_config import cfg
import pytest

from cloudkitty import collector
from cloudkitty.collector import gnocchi
from cloudkitty import conf as ck_conf
from cloudkitty import gnocchi_client

UTC = datetime.timezone.utc
HOUR = datetime.datetime(2024, 5, 1, 10, tzinfo=UTC)


def validate(**definition):
    definition.setdefault('unit', 'instance')
    return collector.validate_metrics_conf(
        {'metrics': {'cpu': definition}}, gnocchi.GnocchiCollector,
        'project_id')['cpu']


def test_defaults_and_resource_key_grouped():
    metric = validate(extra_args={'resource_type': 'instance'},
                      groupby=['user_id'])
    assert metric['groupby'] == ['user_id', 'project_id', 'id']
    assert metric['extra_args'] == {
        'resource_type': 'instance', 'resource_key': 'id',
        'aggregation_method': 'max', 're_aggregation_method': 'max',
        'force_granularity': 3600, 'use_all_resource_revisions': True,
        'custom_query': ''}


@pytest.mark.parametrize('extra,message', [
    ({}, "metric 'cpu': key 'extra_args.resource_type': required key not "
         "provided"),
    ({'resource_type': 'i', 'aggregation_method': 'avg'},
     "metric 'cpu': key 'extra_args.aggregation_method': expected one of "
     "count, first, last, max, mean, median, min, std, sum or a percentile "
     "1pct to 99pct, optionally prefixed by \"rate:\", got 'avg'"),
    ({'resource_type': 'i', 're_aggregation_method': 'last'},
     "metric 'cpu': key 'extra_args.re_aggregation_method': expected one of "
     "count, max, mean, median, min, std, sum, var, optionally prefixed by "
     "\"rate:\", got 'last'"),
    ({'resource_type': 'i', 'force_granularity': -1},
     "metric 'cpu': key 'extra_args.force_granularity': expected a number "
     "of seconds >= 0 (0: the finest), got -1"),
    ({'resource_type': 'i', 'force_granularity': True},
     "metric 'cpu': key 'extra_args.force_granularity': expected a number "
     "of seconds >= 0 (0: the finest), got True"),
])
def test_invalid_extra_args_name_the_key(extra, message):
    with pytest.raises(collector.InvalidConfiguration) as error:
        validate(extra_args=extra)
    assert str(error.value) == message


def test_resource_key_cannot_be_metadata():
    with pytest.raises(collector.InvalidConfiguration) as error:
        validate(extra_args={'resource_type': 'i', 'resource_key': 'host'},
                 metadata=['host'])
    assert str(error.value) == (
        "metric 'cpu': key 'metadata': host is the resource_key, always "
        "grouped by")


@pytest.mark.parametrize('method', ['rate:max', '95pct', 'rate:5pct'])
def test_rate_and_percentile_methods_accepted(method):
    metric = validate(extra_args={'resource_type': 'i',
                                  'aggregation_method': method})
    assert metric['extra_args']['aggregation_method'] == method


def test_operation_default_and_custom():
    extra = validate(extra_args={'resource_type': 'i',
                                 'aggregation_method': 'mean',
                                 're_aggregation_method': 'sum'})['extra_args']
    assert gnocchi.operation('cpu', extra) == [
        'aggregate', 'sum', ['metric', 'cpu', 'mean']]
    extra['custom_query'] = ('(/ (aggregate RE_AGGREGATION_METHOD (metric '
                             'METRIC_NAME AGGREGATION_METHOD)) 8)')
    assert gnocchi.operation('disk.bytes', extra) == \
        '(/ (aggregate sum (metric disk.bytes mean)) 8)'


def test_search_filter():
    assert gnocchi.search_filter('instance', 'project_id', 'p1', {
        'flavor': 'm1', 'zone': ['a', 'b']}) == {'and': [
            {'=': {'type': 'instance'}}, {'=': {'project_id': 'p1'}},
            {'=': {'flavor': 'm1'}}, {'in': {'zone': ['a', 'b']}}]}
    assert gnocchi.search_filter('instance', 'project_id', None, None) == {
        'and': [{'=': {'type': 'instance'}}]}


def _at(minutes):
    return HOUR + datetime.timedelta(minutes=minutes)


@pytest.mark.parametrize('aggregated,finest_only,expected', [
    ([], False, None),
    ([(_at(-1), 60.0, 1.0), (_at(0), 60.0, 2.0), (_at(1), 60.0, 3.0)],
     False, 2.0),
    ([(_at(60), 60.0, 1.0)], False, None),
    ([(_at(0), 3600.0, 9.0), (_at(0), 60.0, 2.0), (_at(1), 60.0, 3.0)],
     True, 2.0),
])
def test_first_value_of_the_period(aggregated, finest_only, expected):
    assert gnocchi.first_value(aggregated, HOUR, _at(60),
                               finest_only) == expected


def _conf(**options):
    conf = ck_conf.register_all(cfg.ConfigOpts())
    conf([], project='cloudkitty', default_config_files=[])
    for name, value in options.items():
        conf.set_override(name, value, 'collector_gnocchi')
    return conf


def test_basic_auth_needs_an_endpoint():
    with pytest.raises(gnocchi_client.GnocchiConfigError) as error:
        gnocchi_client.build_client(_conf(gnocchi_auth_type='basic'),
                                    'collector_gnocchi')
    assert str(error.value) == ('[collector_gnocchi] gnocchi_endpoint is '
                                'required with gnocchi_auth_type = basic')


def test_keystone_auth_needs_an_auth_type():
    with pytest.raises(gnocchi_client.GnocchiConfigError) as error:
        gnocchi_client.build_client(_conf(), 'collector_gnocchi')
    assert str(error.value) == (
        '[collector_gnocchi] auth_type (or an auth_section holding it) is '
        'required with gnocchi_auth_type = keystone')


def test_basic_client_names_its_endpoint_without_connecting():
    client, source = gnocchi_client.build_client(
        _conf(gnocchi_auth_type='basic', gnocchi_endpoint='http://g:8041',
              gnocchi_user='rating'), 'collector_gnocchi')
    assert source == 'Gnocchi at http://g:8041'
    assert client.api.session.session.get_adapter('http://g').\
        _pool_maxsize == 10
