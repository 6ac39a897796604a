"""The file collector's points, field for field, equal the ones the
implementation before it built each point once gave (commit e1a5317:
``_aggregate`` built raw points, ``BaseCollector._finish`` copies).

``file_collector_points.json`` holds what that implementation returned,
by :func:`collect_everything`, on the usage of :func:`write_usage`: units,
every aggregation method and mutate mode, fractional factors (exact and
rounded) and offsets, groupby and metadata keys with missing, numeric,
boolean and null label values, records on period bounds, several
definitions of one source metric, JSONL and CSV. Quantities are compared
as strings (``Decimal('1.50')`` is not ``Decimal('1.5')`` here), mappings
as ordered lists of items: to the last digit and the last key.
"""

import datetime
import json
import pathlib

from oslo_config import cfg
import pytest

from cloudkitty import collector
from cloudkitty import conf as ck_conf

UTC = datetime.timezone.utc
T0 = datetime.datetime(2026, 3, 1, tzinfo=UTC)
HOUR = datetime.timedelta(hours=1)
# Four hours of a day, and the first of the next (other time keys).
PERIODS = [T0 + HOUR * i for i in range(4)] + [T0 + HOUR * 24]
SCOPES = ['p1', 'p2', 'p3', 'nobody']
EXPECTED = pathlib.Path(__file__).with_name('file_collector_points.json')

METRICS = {
    'cpu': [
        {'unit': 'instance', 'groupby': ['id', 'az'],
         'metadata': ['flavor', 'image'], 'description': 'vCPU hours'},
        {'unit': 'instance', 'alt_name': 'cpu_avg', 'groupby': ['az'],
         'metadata': ['flavor'], 'factor': '1/3', 'offset': 2,
         'extra_args': {'aggregation_method': 'avg'}},
        {'unit': 'core', 'alt_name': 'cpu_up', 'groupby': ['id'],
         'mutate': 'NUMBOOL', 'extra_args': {'aggregation_method': 'last'}},
    ],
    'ram': [
        {'unit': 'GiB', 'groupby': ['id'], 'metadata': ['flavor'],
         'factor': '1/1048576', 'extra_args': {'aggregation_method': 'max'}},
        {'unit': 'KiB', 'alt_name': 'ram_ceil', 'groupby': ['user_id'],
         'factor': '1/1024', 'offset': '-1/8', 'mutate': 'CEIL',
         'extra_args': {'aggregation_method': 'min'}},
        {'unit': 'MiB', 'alt_name': 'ram_floor', 'groupby': ['id'],
         'factor': 7, 'mutate': 'FLOOR',
         'extra_args': {'aggregation_method': 'mean'}},
    ],
    'net': [
        {'unit': 'B', 'groupby': ['id', 'port'], 'metadata': ['mac'],
         'mutate': 'MAP', 'mutate_map': {0: 0, 1: 10, 2.5: '0.75'},
         'extra_args': {'aggregation_method': 'last'}},
        {'unit': 'B', 'alt_name': 'net_down', 'mutate': 'NOTNUMBOOL'},
    ],
    'volume.size': {'unit': 'GiB', 'groupby': ['id', 'volume_type'],
                    'metadata': ['user_id'], 'offset': '0.5',
                    'extra_args': {'aggregation_method': 'avg'}},
}


def _at(minutes):
    return (T0 + datetime.timedelta(minutes=minutes)).strftime(
        '%Y-%m-%dT%H:%M:%SZ')


def write_usage(folder):
    """Write the varied usage into ``folder`` (a ``pathlib.Path``)."""
    qtys = ['1', '1.50', '2.5', '0', '1e2', '-3.25', '0.1',
            '12345678901234567890.123456789', '7', '0.000001', '1024', '3']
    records = []
    for n in range(48):
        scope = SCOPES[n % 3]
        minutes = (n * 7) % 240 + (24 * 60 if n % 5 == 0 else 0)
        labels = {'id': f'vm-{n % 5}', 'flavor': ['m1.small', 'm1.large',
                                                  None, 3][n % 4],
                  'az': ['a', 'b'][n % 2], 'user_id': f'u{n % 3}'}
        if n % 6 == 0:
            del labels['az']
        if n % 9 == 0:
            labels['image'] = True if n % 2 else 2.5
        records.append({'metric': 'cpu', 'scope': scope,
                        'time': _at(minutes), 'qty': qtys[n % len(qtys)],
                        'labels': labels})
        ram = {'metric': 'ram', 'scope': scope,
               'qty': int(qtys[(n + 3) % 8 // 2 * 2].split('.')[0]
                          .split('e')[0]) * 1048576 + n,
               'labels': {'id': f'vm-{n % 4}', 'user_id': f'u{n % 2}',
                          'flavor': 'm1.small'}}
        if n % 4 == 0:
            ram['time'] = str(int((T0 + datetime.timedelta(
                minutes=minutes)).timestamp()))
        else:
            ram['time'] = (T0.replace(tzinfo=None) + datetime.timedelta(
                minutes=minutes)).isoformat()
        records.append(ram)
        records.append({'metric': 'net', 'scope': scope,
                        'time': (T0 + HOUR * (n % 4)).strftime(
                            '%Y%m%dT%H%M%SZ'),
                        'qty': [0, 1, '2.5', 4][n % 4],
                        'labels': {'id': f'vm-{n % 3}', 'port': n % 2,
                                   'mac': f'fa:16:{n:02x}'}})
    (folder / 'usage.jsonl').write_text(
        ''.join(json.dumps(r) + '\n' for r in records))
    rows = ['metric,scope,begin,end,qty,id,volume_type,user_id']
    for n in range(20):
        begin = T0 + datetime.timedelta(minutes=(n * 17) % 240)
        rows.append(','.join([
            'volume.size', SCOPES[n % 2], begin.isoformat(),
            (begin + HOUR).isoformat(), ['20', '20.0', '1.25', '3'][n % 4],
            f'vol-{n % 3}', ['ssd', 'hdd', ''][n % 3], f'u{n % 2}']))
    (folder / 'volumes.csv').write_text('\n'.join(rows) + '\n')


def _point(point):
    return [point.unit, str(point.qty), str(point.price),
            [list(item) for item in point.groupby.items()],
            [list(item) for item in point.metadata.items()],
            point.description]


def _answer(call):
    try:
        type_, points = call()
    except collector.NoDataCollected:
        return None
    return [type_, [_point(p) for p in points]]


def collect_everything(instance):
    """Every answer of ``instance`` on the usage, as JSON-able lists:
    ``retrieve`` per metric, period and scope (and for every scope),
    ``retrieve_many``, ``fetch_all`` (raw quantities) and ``q_filter``."""
    out = []
    for metric in instance.conf:
        for start in PERIODS:
            end = start + HOUR
            for scope in SCOPES + [None]:
                out.append(_answer(lambda: instance.retrieve(
                    metric, start, end, scope)))
            many = instance.retrieve_many(metric, start, end,
                                          ['p3', 'nobody', 'p1', 'p2'])
            out.append([[scope, type_, [_point(p) for p in points]]
                        for scope, (type_, points) in many.items()])
            out.append([_point(p) for p in instance.fetch_all(
                metric, start, end)])
            out.append(_answer(lambda: instance.retrieve(
                metric, start, end, 'p1',
                q_filter={'id': ['vm-1', 'vm-2'], 'az': 'a'})))
            out.append(_answer(lambda: instance.retrieve(
                metric, start, end, None, q_filter={
                    'project_id': ['p2', 'p3'], 'port': 1})))
    return out


def make_collector(usage_path):
    conf = cfg.ConfigOpts()
    ck_conf.register_all(conf)
    conf([], project='cloudkitty')
    conf.set_override('usage_path', str(usage_path), group='collector_file')
    conf.set_override('collector', 'file', group='collect')
    return collector.get_collector(conf, {'metrics': METRICS})


@pytest.fixture(scope='module')
def answers(tmp_path_factory):
    folder = tmp_path_factory.mktemp('usage')
    write_usage(folder)
    return collect_everything(make_collector(folder))


def test_every_answer_equals_the_previous_implementation(answers):
    expected = json.loads(EXPECTED.read_text())
    assert len(answers) == len(expected)
    for index, (got, want) in enumerate(zip(answers, expected)):
        assert got == want, f'answer {index}'


def test_the_usage_exercises_what_it_claims(answers):
    """The expected answers are not mostly empty: they hold points of
    every metric definition, aggregated groups and rounded quantities."""
    points = [p for answer in answers if answer
              for p in (answer[1] if isinstance(answer[1], list)
                        and answer[1] and isinstance(answer[0], str)
                        else [])]
    assert len(points) > 300
    types = {answer[0] for answer in answers
             if answer and isinstance(answer[0], str)}
    assert types == {'cpu', 'cpu_avg', 'cpu_up', 'ram', 'ram_ceil',
                     'ram_floor', 'net', 'net_down', 'volume.size'}
    qtys = {p[1] for p in points}
    # 28 significant digits: a third, rounded once
    assert any(len(q.replace('.', '').replace('-', '').lstrip('0')) == 28
               for q in qtys)
    assert '1.50' in qtys or any(q.endswith('0') and '.' in q for q in qtys)
