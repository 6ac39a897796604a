"""The prometheus collector against a real Prometheus (see conftest)."""

import datetime
import decimal
import socket
import threading
import time

from oslo_config import cfg
import pytest

from cloudkitty import collector
from cloudkitty.collector import prometheus as prom
from cloudkitty.collector import quantity
from cloudkitty import conf as ck_conf
from cloudkitty.tests.functional import live_server
from cloudkitty.tests.functional.prometheus import conftest as data
from cloudkitty.tests.functional.prometheus import server

D = decimal.Decimal
A, B = data.SCOPE_A, data.SCOPE_B
# A period for the tests that need no data.
T0 = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
T1 = T0 + data.HOUR


def make_conf(url, user=server.USER, password=server.PASSWORD, timeout=10):
    conf = ck_conf.register_all(cfg.ConfigOpts())
    conf([], project='cloudkitty', default_config_files=[])
    for name, value in (('prometheus_url', url), ('prometheus_user', user),
                        ('prometheus_password', password),
                        ('timeout', timeout)):
        conf.set_override(name, value, 'collector_prometheus')
    return conf


def make(url, metrics, **options):
    return prom.PrometheusCollector(conf={'metrics': metrics}, period=3600,
                                    oslo_conf=make_conf(url, **options))


def collect(prometheus, definition, scope=A, metric='ck_gauge'):
    """``{(groupby without time keys): (qty, metadata)}`` of one metric."""
    coll = make(prometheus.url, {metric: dict(unit='u', **definition)})
    _, points = coll.retrieve(metric, prometheus.t0, prometheus.end, scope)
    return {_labels(p.groupby): (p.qty, dict(p.metadata)) for p in points}


def _labels(groupby):
    return tuple(sorted((k, v) for k, v in groupby.items()
                        if k not in quantity.TIME_KEYS))


def qtys(result):
    return {dict(k).get('id'): qty for k, (qty, _) in result.items()}


# -- the query --------------------------------------------------------------------

@pytest.mark.parametrize('method, expected', [
    # Over vm1 (2 4 4 4 5 5 7 9) and vm2 (1 3), then across them.
    ('max', '9'), ('min', '1'), ('sum', '44'), ('avg', '3.5'),
    ('count', '2'),  # two series
    ('stddev', '0.5'),  # stddev of (2, 1)
    ('stdvar', '2.25'),  # variance of (4, 1)
])
def test_aggregation_methods(prometheus, method, expected):
    result = collect(prometheus, {'extra_args': {
        'aggregation_method': method}})
    assert result == {(('project_id', A),): (D(expected), {})}
    assert str(next(iter(result.values()))[0]) == expected


def test_the_default_method_is_max_and_only_the_hour_counts(prometheus):
    # The samples of 100 before and after the hour are not in the range.
    result = collect(prometheus, {'groupby': ['id']})
    assert qtys(result) == {'vm1': D(9), 'vm2': D(3)}


@pytest.mark.parametrize('function, expected', [
    ('changes', '5'),
    ('delta', '720'),  # +600 over 3000 s, extrapolated to 3600 s
    ('deriv', '0.2'),
    ('idelta', '120'),
    ('irate', '0.2'),
    # 720 / 3600 as Prometheus computes it in binary floating point: the
    # text it sends is kept digit for digit.
    ('rate', '0.19999999999999998'),
])
def test_range_functions(prometheus, function, expected):
    result = collect(prometheus, {'groupby': ['id'], 'extra_args': {
        'range_function': function}}, metric='ck_counter')
    assert qtys(result) == {'vm1': D(expected)}
    assert str(qtys(result)['vm1']) == expected


def test_irange_is_accepted_but_refused_by_prometheus(prometheus):
    # Upstream lists it; Prometheus knows no such function.
    with pytest.raises(collector.CollectError) as info:
        collect(prometheus, {'extra_args': {'range_function': 'irange'}},
                metric='ck_counter')
    assert info.value.collector == 'prometheus'
    assert info.value.metric == 'ck_counter' and info.value.scope == A
    assert 'HTTP 400' in str(info.value)
    assert 'unknown function with name "irange"' in str(info.value)


@pytest.mark.parametrize('function, expected', [
    ('abs', {'neg': '2.5', 'quarter': '0.25', 'zero': '0'}),
    ('ceil', {'neg': '-2', 'quarter': '1', 'sq': '7'}),
    ('floor', {'neg': '-3', 'quarter': '0', 'sq': '6'}),
    ('round', {'neg': '-2', 'quarter': '0', 'sq': '6'}),
    ('exp', {'zero': '1', 'one': '2.718281828459045'}),
    # ln(0) is -Inf, ln(-2.5) NaN: not numbers, dropped.
    ('ln', {'one': '0', 'zero': None, 'neg': None}),
    ('log2', {'eight': '3', 'quarter': '-2'}),
    ('log10', {'hundred': '2', 'tenth': '-0.9999999999999999'}),
    ('sqrt', {'sq': '2.5', 'quarter': '0.5', 'neg': None}),
])
def test_query_functions(prometheus, function, expected):
    result = qtys(collect(prometheus, {'groupby': ['id'], 'extra_args': {
        'query_function': function}}, metric='ck_values'))
    for id_, qty in expected.items():
        if qty is None:
            assert id_ not in result
        else:
            assert str(result[id_]) == qty, id_
            assert result[id_] == D(qty)


@pytest.mark.parametrize('prefix, suffix, expected', [
    ('', '/ 4', {'vm1': '2.25', 'vm2': '0.75'}),
    ('-', '', {'vm1': '-9', 'vm2': '-3'}),
    ('1 +', '* 2', {'vm1': '19', 'vm2': '7'}),
])
def test_query_prefix_and_suffix(prometheus, prefix, suffix, expected):
    result = collect(prometheus, {'groupby': ['id'], 'extra_args': {
        'query_prefix': prefix, 'query_suffix': suffix}})
    assert qtys(result) == {k: D(v) for k, v in expected.items()}


def test_groupby_metadata_and_missing_labels(prometheus):
    result = collect(prometheus, {'groupby': ['id', 'host'],
                                  'metadata': ['flavor']})
    assert result == {
        (('host', ''), ('id', 'vm1'), ('project_id', A)):
            (D(9), {'flavor': 'm1.small'}),
        # vm2 has no flavor label.
        (('host', ''), ('id', 'vm2'), ('project_id', A)):
            (D(3), {'flavor': ''}),
    }


def test_points_carry_unit_time_keys_and_exact_conversions(prometheus):
    coll = make(prometheus.url, {'ck_values': {
        'unit': 'GiB', 'groupby': ['id'], 'factor': 3, 'offset': '1/1024',
        'description': 'values'}})
    type_, points = coll.retrieve('ck_values', prometheus.t0,
                                  prometheus.end, A)
    assert type_ == 'ck_values'
    tenth, = [p for p in points if p.groupby['id'] == 'tenth']
    # 0.1 * 3 + 1/1024, exactly: no binary floating point on the way.
    assert tenth.qty == D('0.3009765625')
    assert tenth.unit == 'GiB' and tenth.description == 'values'
    assert {k: tenth.groupby[k] for k in quantity.TIME_KEYS} == \
        quantity.time_keys(prometheus.t0)


def test_a_scope_without_data(prometheus):
    coll = make(prometheus.url, {'ck_gauge': {'unit': 'u'}})
    with pytest.raises(collector.NoDataCollected):
        coll.retrieve('ck_gauge', prometheus.t0, prometheus.end, 'nobody')


def test_another_period_reads_other_samples(prometheus):
    coll = make(prometheus.url, {'ck_gauge': {'unit': 'u',
                                              'groupby': ['id']}})
    # The hour after: only the samples of 100 at t0 + 3900 s.
    _, points = coll.retrieve('ck_gauge', prometheus.end,
                              prometheus.end + data.HOUR, A)
    assert {p.groupby['id']: p.qty for p in points} == {
        'vm1': D(100), 'vm2': D(100)}


# -- several scopes in one query ---------------------------------------------------

def test_retrieve_many_is_one_query_split_by_scope(prometheus):
    coll = make(prometheus.url, {'ck_gauge': {'unit': 'u',
                                              'groupby': ['id']}})
    before = prometheus.server.query_count()
    many = coll.retrieve_many('ck_gauge', prometheus.t0, prometheus.end,
                              [A, B, 'nobody'])
    assert prometheus.server.query_count() - before == 1
    assert set(many) == {A, B}
    for scope in (A, B):
        assert many[scope] == coll.retrieve('ck_gauge', prometheus.t0,
                                            prometheus.end, scope)
    assert {p.groupby['id']: p.qty for p in many[B][1]} == {'vm3': D(1000)}


def test_retrieve_many_matches_scope_ids_literally(prometheus):
    coll = make(prometheus.url, {'ck_scope': {'unit': 'u'}})
    many = coll.retrieve_many('ck_scope', prometheus.t0, prometheus.end,
                              ['scope.x'])
    # "scope.x" as a regular expression would match "scopeyx" too.
    assert {s: [p.qty for p in points] for s, (_, points) in
            many.items()} == {'scope.x': [D(1)]}


# -- authentication, failures ------------------------------------------------------

@pytest.mark.parametrize('user, password', [
    (None, None), (server.USER, 'wrong')])
def test_basic_auth_is_sent_and_required(prometheus, user, password):
    coll = make(prometheus.url, {'ck_gauge': {'unit': 'u'}}, user=user,
                password=password)
    with pytest.raises(collector.CollectError) as info:
        coll.retrieve('ck_gauge', prometheus.t0, prometheus.end, A)
    assert 'HTTP 401' in str(info.value)
    assert f'{prometheus.url}/api/v1/query' in str(info.value)
    assert server.PASSWORD not in str(info.value)


def test_a_server_that_never_answers_times_out(tmp_path):
    listener = socket.socket()
    listener.bind(('127.0.0.1', 0))
    listener.listen(8)
    accepted = []
    threading.Thread(target=lambda: accepted.append(listener.accept()),
                     daemon=True).start()
    url = f'http://127.0.0.1:{listener.getsockname()[1]}'
    coll = make(url, {'ck_gauge': {'unit': 'u'}}, timeout=0.5)
    began = time.monotonic()
    try:
        with pytest.raises(collector.CollectError) as info:
            coll.retrieve('ck_gauge', T0, T1, A)
    finally:
        listener.close()
    assert time.monotonic() - began < 3
    assert str(info.value) == (
        f"Collector 'prometheus' failed to collect metric 'ck_gauge' for "
        f"scope '{A}': {url}/api/v1/query: no answer within 0.5s")


def test_a_server_that_is_down():
    url = f'http://127.0.0.1:{live_server.free_port()}'
    coll = make(url, {'ck_gauge': {'unit': 'u'}})
    with pytest.raises(collector.CollectError) as info:
        coll.retrieve('ck_gauge', T0, T1, A)
    assert f"Collector 'prometheus' failed to collect metric 'ck_gauge' " \
           f"for scope '{A}': {url}/api/v1/query: ConnectionError" in \
        str(info.value)


@pytest.mark.parametrize('status, body, words', [
    ('200 OK', b'<html>oops</html>', 'not a successful Prometheus answer'),
    ('200 OK', b'{"status": "success", "data": {"resultType": "matrix", '
               b'"result": []}}', "expected an instant vector, got 'matrix'"),
    ('200 OK', b'{"status": "success", "data": {"resultType": "vector", '
               b'"result": [{"metric": {}, "value": [1, 2]}]}}',
     'malformed vector'),
    ('200 OK', b'{"status": "success", "data": {"resultType": "vector", '
               b'"result": [{"metric": {}, "value": [1, "lots"]}]}}',
     "value 'lots' of {} is not a number"),
    ('503 Service Unavailable', b'{"status": "error", "errorType": '
     b'"unavailable", "error": "too busy"}', 'HTTP 503: unavailable: too busy'),
    ('502 Bad Gateway', b'<h1>bad   gateway</h1>', 'HTTP 502: <h1>bad gateway'),
])
def test_garbage_answers_are_collect_errors(status, body, words):
    def app(environ, start_response):
        start_response(status, [('Content-Type', 'application/json')])
        return [body]
    with live_server.serve(app) as url:
        coll = make(url, {'ck_gauge': {'unit': 'u'}})
        with pytest.raises(collector.CollectError) as info:
            coll.retrieve('ck_gauge', T0, T1, A)
    assert info.value.collector == 'prometheus'
    assert words in str(info.value)


# -- configuration --------------------------------------------------------------------

@pytest.mark.parametrize('extra_args, key, words', [
    ({'aggregation_method': 'median'}, 'extra_args.aggregation_method',
     "expected one of avg, count, max, min, stddev, stdvar, sum, got "
     "'median'"),
    ({'query_function': 'sin'}, 'extra_args.query_function', "got 'sin'"),
    ({'range_function': 'increase'}, 'extra_args.range_function',
     "got 'increase'"),
    ({'query_prefix': 3}, 'extra_args.query_prefix', 'expected str'),
    ({'bogus': 1}, 'extra_args.bogus', 'extra keys not allowed'),
])
def test_invalid_extra_args_are_refused(extra_args, key, words):
    with pytest.raises(collector.InvalidConfiguration) as info:
        collector.validate_metrics_conf(
            {'metrics': {'cpu': {'unit': 'u', 'extra_args': extra_args}}},
            prom.PrometheusCollector)
    assert info.value.metric == 'cpu' and info.value.key == key
    assert words in str(info.value)


def test_extra_args_defaults():
    conf = collector.validate_metrics_conf(
        {'metrics': {'cpu': {'unit': 'u'}}}, prom.PrometheusCollector)
    assert conf['cpu']['extra_args'] == {
        'aggregation_method': 'max', 'query_prefix': '', 'query_suffix': ''}


def test_the_query_of_a_metric_with_several_definitions():
    conf = collector.validate_metrics_conf({'metrics': {'ck.cpu': [
        {'unit': 'u', 'alt_name': 'a', 'groupby': ['id'],
         'metadata': ['flavor'], 'extra_args': {
             'aggregation_method': 'sum', 'range_function': 'rate',
             'query_function': 'ceil', 'query_prefix': 'x',
             'query_suffix': 'y'}},
        {'unit': 'u', 'alt_name': 'b'}]}}, prom.PrometheusCollector)
    definition = conf['ck.cpu@#a']
    assert prom.build_query('ck.cpu', definition, {'project_id': 'p"1'},
                            3600) == (
        'x sum(ceil(rate(ck.cpu{project_id="p\\"1"}[3600s]))) '
        'by (id, project_id, flavor) y')
