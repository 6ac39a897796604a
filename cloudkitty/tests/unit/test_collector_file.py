"""The file collector: usage records from local JSONL and CSV files."""

import datetime
import decimal
import filecmp
import json
import os

from oslo_config import cfg
import pytest

from cloudkitty import collector
from cloudkitty.collector import file as file_collector
from cloudkitty import conf as ck_conf
from cloudkitty.tests import scripts

D = decimal.Decimal
UTC = datetime.timezone.utc
T0 = datetime.datetime(2026, 1, 1, tzinfo=UTC)
HOUR = datetime.timedelta(hours=1)
QUICKSTART = scripts.TOP / 'etc' / 'cloudkitty' / 'quickstart'


def at(minutes):
    return (T0 + datetime.timedelta(minutes=minutes)).isoformat()


@pytest.fixture
def usage(tmp_path):
    directory = tmp_path / 'usage'
    directory.mkdir()
    return directory


@pytest.fixture
def conf(usage):
    conf = cfg.ConfigOpts()
    ck_conf.register_all(conf)
    conf([], project='cloudkitty')
    conf.set_override('usage_path', str(usage), group='collector_file')
    return conf


def write_jsonl(path, records):
    path.write_text(''.join(
        (r if isinstance(r, str) else json.dumps(r)) + '\n' for r in records))
    return path


def record(metric='cpu', scope='p1', minutes=0, qty=1, **labels):
    return {'metric': metric, 'scope': scope, 'time': at(minutes), 'qty': qty,
            'labels': labels}


def make(conf, metrics):
    instance = collector.get_collector(conf, {'metrics': metrics})
    instance.refresh_interval = 0
    return instance


CPU = {'cpu': {'unit': 'instance', 'groupby': ['id'],
               'metadata': ['flavor']}}


def fetch(instance, metric='cpu', scope='p1', start=T0, end=T0 + HOUR,
          **kwargs):
    points = instance.fetch_all(metric, start, end, scope, **kwargs)
    return sorted(((dict(p.groupby), p.qty, dict(p.metadata))
                   for p in points), key=lambda x: sorted(x[0].items()))


# --- grouping and aggregation -------------------------------------------------------

def test_groups_by_groupby_labels_and_sums(conf, usage):
    write_jsonl(usage / 'a.jsonl', [
        record(minutes=0, qty=1, id='vm-1', flavor='small'),
        record(minutes=30, qty='2.5', id='vm-1', flavor='large'),
        record(minutes=10, qty=0.1, id='vm-2', flavor='tiny', other='x'),
        record(minutes=20, qty=0.2, id='vm-2', flavor='tiny'),
        record(scope='p2', qty=100, id='vm-3'),
        record(metric='ram', qty=100, id='vm-1'),
    ])
    assert fetch(make(conf, CPU)) == [
        ({'id': 'vm-1', 'project_id': 'p1'}, D('3.5'), {'flavor': 'large'}),
        ({'id': 'vm-2', 'project_id': 'p1'}, D('0.3'), {'flavor': 'tiny'}),
    ]


def test_points_are_data_points_with_the_metric_unit(conf, usage):
    write_jsonl(usage / 'a.jsonl', [record(id='vm-1')])
    (point,) = make(conf, CPU).fetch_all('cpu', T0, T0 + HOUR, 'p1')
    assert point.unit == 'instance' and point.price == D(0)
    assert type(point.qty) is D and point.description is None
    with pytest.raises(TypeError):
        point.groupby['id'] = 'x'


@pytest.mark.parametrize('method, expected', [
    ('sum', '6.5'), ('max', '4'), ('min',
                                   '0.5'), ('avg', '2.166666666666666666666666667'),
    ('mean', '2.166666666666666666666666667'), ('last', '2'),
])
def test_aggregation_methods(conf, usage, method, expected):
    write_jsonl(usage / 'a.jsonl', [
        record(minutes=10, qty=4, id='a'),
        record(minutes=0, qty='0.5', id='a'),
        record(minutes=50, qty=2, id='a'),
    ])
    metrics = {'cpu': dict(CPU['cpu'],
                           extra_args={'aggregation_method': method})}
    ((_, qty, _),) = fetch(make(conf, metrics))
    assert qty == D(expected) and type(qty) is D


def test_last_and_metadata_follow_time_then_file_order(conf, usage):
    write_jsonl(usage / 'a.jsonl', [
        record(minutes=30, qty=1, id='a', flavor='first'),
        record(minutes=30, qty=2, id='a', flavor='second'),
        record(minutes=5, qty=3, id='a', flavor='early'),
    ])
    metrics = {'cpu': dict(CPU['cpu'],
                           extra_args={'aggregation_method': 'last'})}
    assert fetch(make(conf, metrics)) == [
        ({'id': 'a', 'project_id': 'p1'}, D(2), {'flavor': 'second'})]


def test_missing_labels_become_empty_strings(conf, usage):
    write_jsonl(usage / 'a.jsonl', [
        {'metric': 'cpu', 'scope': 'p1', 'time': at(0), 'qty': 1},
        record(qty=2, flavor='x'),
    ])
    assert fetch(make(conf, CPU)) == [
        ({'id': '', 'project_id': 'p1'}, D(3), {'flavor': 'x'})]


def test_label_values_become_strings(conf, usage):
    write_jsonl(usage / 'a.jsonl', [
        record(id=12, flavor=None),
        record(id=True, flavor=1.5),
    ])
    assert fetch(make(conf, CPU)) == [
        ({'id': '12', 'project_id': 'p1'}, D(1), {'flavor': ''}),
        ({'id': 'true', 'project_id': 'p1'}, D(1), {'flavor': '1.5'}),
    ]


def test_scope_field_is_the_scope_key(conf, usage):
    conf.set_override('scope_key', 'domain_id', group='collect')
    write_jsonl(usage / 'a.jsonl', [record(scope='d1', id='a',
                                           domain_id='ignored')])
    instance = make(conf, CPU)
    assert fetch(instance, scope='d1') == [
        ({'id': 'a', 'domain_id': 'd1'}, D(1), {'flavor': ''})]


def test_quantities_never_go_through_float(conf, usage):
    write_jsonl(usage / 'a.jsonl', [
        '{"metric": "cpu", "scope": "p1", "time": "%s", "qty": '
        '0.1000000000000000000000000000001, "labels": {"id": "a"}}' % at(0),
        '{"metric": "cpu", "scope": "p1", "time": "%s", "qty": 0.2, '
        '"labels": {"id": "a"}}' % at(1),
    ])
    ((_, qty, _),) = fetch(make(conf, CPU))
    assert qty == D('0.3000000000000000000000000000001')


# --- periods ---------------------------------------------------------------------------

def test_period_includes_its_start_and_excludes_its_end(conf, usage):
    write_jsonl(usage / 'a.jsonl', [
        record(minutes=-1, qty=1, id='before'),
        record(minutes=0, qty=2, id='start'),
        record(minutes=59, qty=3, id='inside'),
        record(minutes=60, qty=4, id='end'),
    ])
    instance = make(conf, CPU)
    assert [g['id'] for g, _, _ in fetch(instance)] == ['inside', 'start']
    assert [g['id'] for g, _, _ in fetch(instance, start=T0 + HOUR,
                                         end=T0 + 2 * HOUR)] == ['end']


def test_begin_end_records_belong_to_the_period_of_their_begin(conf, usage):
    write_jsonl(usage / 'a.jsonl', [
        {'metric': 'cpu', 'scope': 'p1', 'begin': at(50), 'end': at(110),
         'qty': 5, 'labels': {'id': 'a'}},
        {'metric': 'cpu', 'scope': 'p1', 'begin': at(60), 'qty': 7,
         'labels': {'id': 'b'}},
    ])
    instance = make(conf, CPU)
    assert [(g['id'], q) for g, q, _ in fetch(instance)] == [('a', D(5))]
    assert [(g['id'], q) for g, q, _ in fetch(
        instance, start=T0 + HOUR, end=T0 + 2 * HOUR)] == [('b', D(7))]


@pytest.mark.parametrize('value', [
    '2026-01-01T00:30:00Z', '2026-01-01T01:30:00+01:00', '2026-01-01T00:30:00',
    '20260101T003000Z', 1767227400, '1767227400', '1767227400.0',
])
def test_time_formats(conf, usage, value):
    write_jsonl(usage / 'a.jsonl', [{'metric': 'cpu', 'scope': 'p1',
                                     'time': value, 'qty': 1}])
    instance = make(conf, CPU)
    assert len(fetch(instance)) == 1
    assert fetch(instance, start=T0 + HOUR, end=T0 + 2 * HOUR) == []


def test_naive_period_bounds_are_utc(conf, usage):
    write_jsonl(usage / 'a.jsonl', [record(minutes=0, id='a')])
    instance = make(conf, CPU)
    naive = T0.replace(tzinfo=None)
    assert len(fetch(instance, start=naive, end=naive + HOUR)) == 1


def test_unsorted_files_are_sorted(conf, usage):
    write_jsonl(usage / 'a.jsonl', [record(minutes=m, qty=m, id=str(m))
                                    for m in (300, 5, 125, 65, 0)])
    instance = make(conf, CPU)
    got = [fetch(instance, start=T0 + h * HOUR, end=T0 + (h + 1) * HOUR)
           for h in range(6)]
    assert [[q for _, q, _ in points] for points in got] == [
        [D(0), D(5)], [D(65)], [D(125)], [], [], [D(300)]]


# --- all scopes at once, filters ---------------------------------------------------------

def test_all_scopes_at_once(conf, usage):
    write_jsonl(usage / 'a.jsonl', [
        record(scope='p2', id='a', qty=2), record(scope='p1', id='a'),
        record(scope='p3', id='b', minutes=90),
        record(metric='ram', scope='p4'),
    ])
    points = make(conf, CPU).fetch_all('cpu', T0, T0 + HOUR)
    assert sorted((p.groupby['project_id'], p.groupby['id'], p.qty)
                  for p in points) == [('p1', 'a', D(1)), ('p2', 'a', D(2))]


def test_retrieve_for_all_scopes(conf, usage):
    write_jsonl(usage / 'a.jsonl', [record(scope='p2', id='a'),
                                    record(scope='p1', id='b')])
    name, points = make(conf, CPU).retrieve('cpu', T0, T0 + HOUR)
    assert name == 'cpu'
    assert sorted(p.groupby['project_id'] for p in points) == ['p1', 'p2']
    assert all(p.groupby['year'] == '2026' for p in points)


def test_q_filter(conf, usage):
    write_jsonl(usage / 'a.jsonl', [
        record(id='a', flavor='small'), record(id='b', flavor='large'),
        record(id='c', flavor='tiny')])
    instance = make(conf, CPU)
    assert [g['id'] for g, _, _ in fetch(
        instance, q_filter={'flavor': 'large'})] == ['b']
    assert [g['id'] for g, _, _ in fetch(
        instance, q_filter={'flavor': ['small', 'tiny']})] == ['a', 'c']
    assert fetch(instance, q_filter={'project_id': 'p2'}) == []
    assert len(fetch(instance, q_filter={'project_id': ['p1']})) == 3


def test_unknown_scope_or_metric_is_no_data(conf, usage):
    write_jsonl(usage / 'a.jsonl', [record(id='a')])
    instance = make(conf, dict(CPU, ram={'unit': 'MiB'}))
    assert instance.fetch_all('cpu', T0, T0 + HOUR, 'nobody') == []
    with pytest.raises(collector.NoDataCollected):
        instance.retrieve('ram', T0, T0 + HOUR, 'p1')


# --- retrieve, several definitions ----------------------------------------------------------

def test_retrieve_converts_and_labels(conf, usage):
    write_jsonl(usage / 'a.jsonl', [
        record(metric='image.size', qty=1073741824, id='img'),
        record(metric='image.size', qty=1048576, id='img2', minutes=120)])
    instance = make(conf, {'image.size': {
        'unit': 'MiB', 'factor': '1/1048576', 'groupby': ['id'],
        'description': 'Images', 'extra_args': {'aggregation_method': 'max'}}})
    name, (point,) = instance.retrieve('image.size', T0, T0 + HOUR, 'p1')
    assert point.qty == D(1024) and point.description == 'Images'
    assert dict(point.groupby) == {
        'id': 'img', 'project_id': 'p1', 'week_of_the_year': '00',
        'day_of_the_year': '1', 'month': '1', 'year': '2026'}


def test_several_definitions_read_the_source_metric(conf, usage):
    write_jsonl(usage / 'a.jsonl', [record(qty=4, id='a', flavor='x')])
    instance = make(conf, {'cpu': [
        {'unit': 'instance', 'alt_name': 'instance', 'mutate': 'NUMBOOL',
         'groupby': ['id']},
        {'unit': 'vcpu', 'alt_name': 'vcpus', 'metadata': ['flavor']}]})
    name, (point,) = instance.retrieve('cpu@#instance', T0, T0 + HOUR, 'p1')
    assert (name, point.qty, point.groupby['id']) == ('instance', D(1), 'a')
    name, (point,) = instance.retrieve('cpu@#vcpus', T0, T0 + HOUR, 'p1')
    assert (name, point.qty, dict(point.metadata)) == ('vcpus', D(4),
                                                       {'flavor': 'x'})


# --- configuration --------------------------------------------------------------------------

def test_aggregation_method_defaults_to_sum(conf):
    out = collector.validate_metrics_conf(
        {'metrics': {'a': {'unit': 'u'}, 'b': {'unit': 'u', 'extra_args': {}}}},
        file_collector.FileCollector, 'project_id')
    assert out['a']['extra_args'] == {'aggregation_method': 'sum'}
    assert out['b']['extra_args'] == {'aggregation_method': 'sum'}


@pytest.mark.parametrize('extra', [{'aggregation_method': 'median'},
                                   {'other': 1}, 'sum'])
def test_bad_extra_args_name_metric_and_key(extra):
    with pytest.raises(collector.InvalidConfiguration) as info:
        collector.validate_metrics_conf(
            {'metrics': {'cpu': {'unit': 'u', 'extra_args': extra}}},
            file_collector.FileCollector, 'project_id')
    assert "metric 'cpu'" in str(info.value)
    assert 'extra_args' in str(info.value)


def test_usage_path_may_be_one_file(conf, usage):
    path = write_jsonl(usage / 'only.jsonl', [record(id='a')])
    write_jsonl(usage / 'other.jsonl', [record(id='b')])
    conf.set_override('usage_path', str(path), group='collector_file')
    assert [g['id'] for g, _, _ in fetch(make(conf, CPU))] == ['a']


def test_directory_is_walked_for_jsonl_and_csv_only(conf, usage):
    (usage / 'sub' / 'deeper').mkdir(parents=True)
    write_jsonl(usage / 'sub' / 'deeper' / 'a.jsonl', [record(id='deep')])
    write_jsonl(usage / 'b.JSONL', [record(id='upper')])
    write_jsonl(usage / 'notes.txt', ['not usage'])
    write_jsonl(usage / '.hidden.jsonl', ['not usage either'])
    (usage / '.git').mkdir()
    write_jsonl(usage / '.git' / 'x.jsonl', ['nor this'])
    (usage / 'c.csv').write_text('metric,scope,time,qty,id\n'
                                 f'cpu,p1,{at(0)},1,csv\n')
    assert [g['id'] for g, _, _ in fetch(make(conf, CPU))] == [
        'csv', 'deep', 'upper']


def test_missing_usage_path_is_a_collect_error(conf, tmp_path):
    conf.set_override('usage_path', str(tmp_path / 'nowhere'),
                      group='collector_file')
    instance = make(conf, CPU)
    with pytest.raises(collector.CollectError) as info:
        instance.retrieve('cpu', T0, T0 + HOUR, 'p1')
    assert 'nowhere' in str(info.value) and "'file'" in str(info.value)


def test_empty_directory_is_no_data(conf):
    with pytest.raises(collector.NoDataCollected):
        make(conf, CPU).retrieve('cpu', T0, T0 + HOUR, 'p1')


# --- CSV ---------------------------------------------------------------------------------------

def test_csv_records(conf, usage):
    (usage / 'u.csv').write_text(
        'metric,scope,begin,end,qty,id,volume_type,unit\n'
        f'volume.size,p1,{at(0)},{at(60)},20,vol-1,ssd,GiB\n'
        '\n'
        f'volume.size,p1,{at(0)},{at(60)},"1.5",vol-2,,GiB\n'
        f'volume.size,p1,{at(60)},{at(120)},30,vol-1,hdd,GiB\n')
    instance = make(conf, {'volume.size': {
        'unit': 'GiB', 'groupby': ['id'], 'metadata': ['volume_type']}})
    assert fetch(instance, 'volume.size') == [
        ({'id': 'vol-1', 'project_id': 'p1'}, D(20), {'volume_type': 'ssd'}),
        ({'id': 'vol-2', 'project_id': 'p1'}, D('1.5'), {'volume_type': ''}),
    ]


def test_csv_with_only_a_header_or_nothing(conf, usage):
    (usage / 'a.csv').write_text('metric,scope,time,qty\n')
    (usage / 'b.csv').write_text('')
    assert make(conf, CPU).fetch_all('cpu', T0, T0 + HOUR, 'p1') == []


# --- bad records -----------------------------------------------------------------------------

GOOD = json.dumps(record(id='a'))


@pytest.mark.parametrize('line, message', [
    ('{"metric": "cpu", "scope": "p1"', 'invalid JSON'),
    ('[1, 2]', 'JSON object'),
    (json.dumps({'metric': 'cpu', 'scope': 'p1', 'time': at(0)}),
     'missing "qty"'),
    (json.dumps(record(qty='lots')), '"qty" must be a number'),
    (json.dumps(record(qty=True)), '"qty" must be a number'),
    (json.dumps(record(qty=[1])), '"qty" must be a number'),
    (json.dumps(record(qty='NaN')), '"qty" must be a number'),
    (json.dumps(dict(record(), time='yesterday')), 'not an ISO 8601 date'),
    (json.dumps(dict(record(), time=None)), 'missing "time"'),
    (json.dumps(dict(record(), time=[1])), '"time" must be'),
    (json.dumps(dict(record(), time=True)), '"time" must be'),
    (json.dumps(dict(record(), begin=at(0))), 'not both'),
    (json.dumps({'metric': 'cpu', 'scope': 'p1', 'begin': at(60),
                 'end': at(0), 'qty': 1}), 'before "begin"'),
    (json.dumps(dict(record(), metric='')), '"metric" must be'),
    (json.dumps(dict(record(), metric=None)), '"metric" must be'),
    (json.dumps(dict(record(), scope=None)), '"scope" must be'),
    (json.dumps(dict(record(), scope=['p1'])), '"scope" must be'),
    (json.dumps(dict(record(), labels=['a'])), '"labels" must be an object'),
    (json.dumps(dict(record(), labels={'a': {'b': 1}})), "label 'a'"),
    (json.dumps(dict(record(), labels={'a': [1]})), "label 'a'"),
    (json.dumps(dict(record(), lables={'a': 1})), 'unknown key(s) lables'),
])
def test_bad_jsonl_record_names_file_and_line(conf, usage, line, message):
    path = write_jsonl(usage / 'bad.jsonl', [GOOD, '', GOOD, line, GOOD])
    instance = make(conf, CPU)
    with pytest.raises(collector.CollectError) as info:
        instance.retrieve('cpu', T0, T0 + HOUR, 'p1')
    assert f'{path}:4: ' in str(info.value)
    assert message in str(info.value)
    assert "'file'" in str(info.value) and "'cpu'" in str(info.value)


@pytest.mark.parametrize('text, where, message', [
    ('metric,scope,qty\n', ':1: ', 'time or begin'),
    ('metric,time,qty\n', ':1: ', 'scope'),
    ('metric,scope,time,qty,id,id\n', ':1: ', 'duplicate'),
    (f'metric,scope,time,qty\ncpu,p1,{at(0)},1\ncpu,p1,{at(0)}\n', ':3: ',
     '3 fields, the header has 4'),
    (f'metric,scope,time,qty\ncpu,p1,{at(0)},1\n\ncpu,p1,{at(0)},x\n', ':4: ',
     '"qty" must be a number'),
    ('metric,scope,time,qty\ncpu,,2026-01-01T00:00:00Z,1\n', ':2: ',
     '"scope" must be'),
])
def test_bad_csv_names_file_and_line(conf, usage, text, where, message):
    path = usage / 'bad.csv'
    path.write_text(text)
    with pytest.raises(collector.CollectError) as info:
        make(conf, CPU).fetch_all('cpu', T0, T0 + HOUR, 'p1')
    assert f'{path}{where}' in str(info.value)
    assert message in str(info.value)


def test_undecodable_file_is_reported(conf, usage):
    (usage / 'bin.jsonl').write_bytes(b'\xff\xfe\x00garbage')
    with pytest.raises(collector.CollectError) as info:
        make(conf, CPU).fetch_all('cpu', T0, T0 + HOUR, 'p1')
    assert 'bin.jsonl' in str(info.value)


def test_fast_path_does_not_skip_validation_of_lookalikes(conf, usage):
    # True == 1 and hash(True) == hash(1): a cached qty or label must not
    # make a boolean pass.
    path = write_jsonl(usage / 'a.jsonl', [
        record(qty=1, id='a'), record(qty=True, id='a')])
    with pytest.raises(collector.CollectError) as info:
        make(conf, CPU).fetch_all('cpu', T0, T0 + HOUR, 'p1')
    assert f'{path}:2: ' in str(info.value)
    write_jsonl(usage / 'a.jsonl', [record(id='1'), record(id=1),
                                    record(id=True)])
    ids = [g['id'] for g, _, _ in fetch(make(conf, CPU))]
    assert ids == ['1', 'true']


# --- the cache ----------------------------------------------------------------------------------

@pytest.fixture
def parse_calls(monkeypatch):
    calls = []
    real = file_collector.parse_file

    def counting(path):
        calls.append(os.path.basename(path))
        return real(path)

    monkeypatch.setattr(file_collector, 'parse_file', counting)
    return calls


def touch_later(path, text):
    stat = path.stat()
    path.write_text(text)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))


def test_files_are_parsed_once(conf, usage, parse_calls):
    write_jsonl(usage / 'a.jsonl', [record(id='a')])
    write_jsonl(usage / 'b.jsonl', [record(id='b')])
    instance = make(conf, CPU)
    for _ in range(3):
        assert len(fetch(instance)) == 2
    other = make(conf, CPU)   # another collector of the same process
    assert len(fetch(other)) == 2
    assert sorted(parse_calls) == ['a.jsonl', 'b.jsonl']


def test_changed_file_is_parsed_again_alone(conf, usage, parse_calls):
    write_jsonl(usage / 'a.jsonl', [record(id='a')])
    b = write_jsonl(usage / 'b.jsonl', [record(id='b')])
    instance = make(conf, CPU)
    fetch(instance)
    touch_later(b, json.dumps(record(id='b2')) + '\n')
    assert [g['id'] for g, _, _ in fetch(instance)] == ['a', 'b2']
    assert sorted(parse_calls) == ['a.jsonl', 'b.jsonl', 'b.jsonl']


def test_added_and_removed_files(conf, usage):
    write_jsonl(usage / 'a.jsonl', [record(id='a')])
    instance = make(conf, CPU)
    assert len(fetch(instance)) == 1
    write_jsonl(usage / 'b.jsonl', [record(id='b')])
    assert len(fetch(instance)) == 2
    (usage / 'a.jsonl').unlink()
    assert [g['id'] for g, _, _ in fetch(instance)] == ['b']


def test_fixed_file_clears_the_error(conf, usage):
    path = write_jsonl(usage / 'a.jsonl', ['{broken'])
    instance = make(conf, CPU)
    with pytest.raises(collector.CollectError):
        fetch(instance)
    touch_later(path, GOOD + '\n')
    assert len(fetch(instance)) == 1


def test_refresh_interval_trusts_the_index(conf, usage):
    write_jsonl(usage / 'a.jsonl', [record(id='a')])
    instance = make(conf, CPU)
    instance.refresh_interval = 3600
    fetch(instance)
    write_jsonl(usage / 'b.jsonl', [record(id='b')])
    assert len(fetch(instance)) == 1
    instance.refresh_interval = 0
    assert len(fetch(instance)) == 2


def test_large_file_spans_several_json_chunks(conf, usage, monkeypatch):
    monkeypatch.setattr(file_collector, '_CHUNK_BYTES', 200)
    records = [record(minutes=i % 60, qty=i, id=f'vm-{i % 7}')
               for i in range(500)]
    lines = [json.dumps(r) for r in records]
    lines[321] = '{"broken'
    path = write_jsonl(usage / 'a.jsonl', lines)
    with pytest.raises(collector.CollectError) as info:
        fetch(make(conf, CPU))
    assert f'{path}:322: ' in str(info.value)
    lines[321] = json.dumps(records[321])
    touch_later(path, '\n'.join(lines) + '\n')
    got = fetch(make(conf, CPU))
    assert sum(q for _, q, _ in got) == sum(range(500))
    assert len(got) == 7


# --- the quick start's sample -------------------------------------------------

def test_quickstart_usage_matches_its_generator(tmp_path):
    scripts.load(QUICKSTART / 'generate_usage.py').generate(str(tmp_path))
    names = sorted(os.listdir(tmp_path))
    assert names == sorted(os.listdir(QUICKSTART / 'usage'))
    match, mismatch, errors = filecmp.cmpfiles(
        tmp_path, QUICKSTART / 'usage', names, shallow=False)
    assert mismatch == [] and errors == []
    size = sum((QUICKSTART / 'usage' / n).stat().st_size for n in names)
    assert size < 500 * 1024


def test_quickstart_metrics_rate_every_metric_of_the_sample(conf):
    conf.set_override('usage_path', str(QUICKSTART / 'usage'),
                      group='collector_file')
    conf.set_override('metrics_conf', str(QUICKSTART / 'metrics.yml'),
                      group='collect')
    instance = collector.get_collector(conf)
    scopes = set()
    for key in instance.conf:
        for day in range(3):
            start = T0 + datetime.timedelta(days=day, hours=12)
            name, points = instance.retrieve(key, start, start + HOUR)
            scopes.update(p.groupby['project_id'] for p in points)
            assert all(p.description for p in points)
    assert scopes == {'demo-alpha', 'demo-bravo', 'demo-charlie',
                      'demo-delta'}
    assert {instance.conf[k]['alt_name'] for k in instance.conf} == {
        'instance', 'volume.size', 'image.size', 'network.out', 'ip.floating'}
    with pytest.raises(collector.NoDataCollected):
        instance.retrieve('cpu', T0 + 72 * HOUR, T0 + 73 * HOUR)
