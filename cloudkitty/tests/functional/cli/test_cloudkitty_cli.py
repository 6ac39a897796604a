"""The real ``cloudkitty`` CLI against the API, end to end.

The rated data (see the API tests' ``rated`` fixture), this month:
p1: cpu 1.5 at day 1 00:00 and 01:00, image.size 0.25 at 00:00;
p2: cpu 1.25 at 00:00. Totals: 4.5; p1 3.25; p2 1.25; cpu 4.25.
"""

import json

import pytest
import requests

from cloudkitty.tests.functional.api import conftest as api_conftest
from cloudkitty.tests.functional.cli import conftest


def _z(moment):
    """A datetime as the CLI's users type it."""
    return moment.strftime('%Y-%m-%dT%H:%M:%SZ')


def _modules(rows):
    return {row['Module']: (row['Enabled'], row['Priority']) for row in rows}


# Rating modules (the same commands in v1 and v2).

def test_module_list_and_get(cli):
    modules = _modules(cli.json('module', 'list'))
    assert modules['noop'] == (True, 1)
    assert modules['hashmap'] == (False, 1)
    assert cli.json('module', 'get', 'hashmap') == [
        {'Module': 'hashmap', 'Enabled': False, 'Priority': 1}]


def test_module_get_unknown_fails(cli):
    process = cli.run('module', 'get', 'nope', check=False)
    assert process.returncode != 0
    assert 'nope' in process.stderr


def test_module_enable_and_disable(cli, backends):
    assert cli.json('module', 'enable', 'hashmap') == [
        {'Module': 'hashmap', 'Enabled': True, 'Priority': 1}]
    assert _modules(cli.json('module', 'list'))['hashmap'] == (True, 1)
    assert backends.rating_modules.get('hashmap').enabled is True
    assert cli.json('module', 'disable', 'hashmap') == [
        {'Module': 'hashmap', 'Enabled': False, 'Priority': 1}]
    assert _modules(cli.json('module', 'list'))['hashmap'] == (False, 1)
    assert backends.rating_modules.get('hashmap').enabled is False


def test_noop_stays_enabled(cli):
    # As upstream: the noop module cannot be disabled.
    assert cli.json('module', 'disable', 'noop')[0]['Enabled'] is True


def test_module_set_priority(cli):
    assert cli.json('module', 'set', 'priority', 'hashmap', '42') == [
        {'Module': 'hashmap', 'Enabled': False, 'Priority': 42}]
    assert cli.json('module', 'get', 'hashmap')[0]['Priority'] == 42
    assert _modules(cli.json('module', 'list'))['noop'] == (True, 1)


# Summaries and totals.

def test_summary_v2_grouped(cli):
    rows = cli.json('summary', 'get', '-g', 'project_id', '-g', 'type')
    assert {(row['Project id'], row['Type']): (row['Qty'], row['Rate'])
            for row in rows} == {('p1', 'cpu'): (2, 3),
                                 ('p1', 'image.size'): (10, 0.25),
                                 ('p2', 'cpu'): (2, 1.25)}
    assert {row['Begin'] for row in rows} == {api_conftest.at(1).isoformat()}


def test_summary_v2_window_and_filter(cli):
    rows = cli.json('summary', 'get', '-g', 'type', '--filter',
                    'project_id:p1', '-b', _z(api_conftest.at(1, 1)),
                    '-e', _z(api_conftest.at(2)))
    assert [(row['Type'], row['Rate']) for row in rows] == [('cpu', 1.5)]
    assert rows[0]['Begin'] == api_conftest.at(1, 1).isoformat()
    assert [row['Rate'] for row in cli.json('summary', 'get')] == [4.5]


def test_summary_v1_grouped(cli):
    rows = cli.json('summary', 'get', '-g', 'tenant_id', 'res_type',
                    api_version=1)
    assert {(row['Tenant ID'], row['Resource Type']): row['Rate']
            for row in rows} == {('p1', 'cpu'): '3',
                                 ('p1', 'image.size'): '0.25',
                                 ('p2', 'cpu'): '1.25'}
    rows = cli.json('summary', 'get', '-t', 'p2', api_version=1)
    assert [(row['Tenant ID'], row['Resource Type'], row['Rate'])
            for row in rows] == [('ALL', 'ALL', '1.25')]


@pytest.mark.parametrize('args, total', [
    ((), 4.5),
    (('-t', 'p1'), 3.25),
    (('-t', 'p2'), 1.25),
    (('-a', '-s', 'cpu'), 4.25),
    (('-t', 'p9'), 0),
])
def test_total_get(cli, args, total):
    assert cli.json('total', 'get', *args, api_version=1) == {'Total': total}


def test_total_get_window(cli):
    # The CLI sends naive "YYYY-MM-DD HH:MM:SS" datetimes to v1.
    assert cli.json('total', 'get', '-t', 'p1',
                    '-b', _z(api_conftest.at(1, 1)),
                    '-e', _z(api_conftest.at(2)),
                    api_version=1) == {'Total': 1.5}


# Rated data.

def test_dataframes_add_and_get_v2(cli, tmp_path):
    start = api_conftest.at(2)
    frames = {'dataframes': [{
        'period': {'begin': start.isoformat(),
                   'end': api_conftest.at(2, 1).isoformat()},
        'usage': {'cpu': [{
            'vol': {'unit': 'instance', 'qty': 3},
            'rating': {'price': 0.75},
            'groupby': {'id': 'i-9', 'project_id': 'p3'},
            'metadata': {'flavor': 'm3'}}]},
    }]}
    datafile = tmp_path / 'frames.json'
    datafile.write_text(json.dumps(frames))
    assert cli.run('dataframes', 'add', str(datafile)).stdout == ''
    rows = cli.json('dataframes', 'get', '--filter', 'project_id:p3')
    assert rows == [{
        'Begin': start.isoformat(),
        'End': api_conftest.at(2, 1).isoformat(),
        'Metric Type': 'cpu', 'Unit': 'instance', 'Quantity': 3,
        'Price': 0.75, 'Group By': 'id="i-9" project_id="p3"',
        'Metadata': 'flavor="m3"'}]
    assert cli.json('total', 'get', '-t', 'p3', api_version=1) == {
        'Total': 0.75}
    assert cli.json('total', 'get', api_version=1) == {'Total': 5.25}


def test_dataframes_add_of_a_bad_file_fails(cli, tmp_path):
    datafile = tmp_path / 'frames.json'
    datafile.write_text('{"dataframes": []}')
    process = cli.run('dataframes', 'add', str(datafile), check=False)
    assert process.returncode != 0
    assert '400' in process.stderr


def test_dataframes_get_v2(cli):
    rows = cli.json('dataframes', 'get', '--filter', 'project_id:p1',
                    '-b', _z(api_conftest.at(1)),
                    '-e', _z(api_conftest.at(1, 1)))
    assert sorted((row['Metric Type'], row['Quantity'], row['Price'])
                  for row in rows) == [('cpu', 1, 1.5),
                                       ('image.size', 10, 0.25)]
    assert len(cli.json('dataframes', 'get')) == 4


def test_dataframes_get_v1(cli):
    # One frame per point, as upstream answers.
    frames = cli.json('dataframes', 'get', '-p', 'p1', api_version=1)
    assert [frame['Project ID'] for frame in frames] == ['p1', 'p1', 'p1']
    assert [(frame['Begin'], [
        (r['service'], r['volume'], r['rating'], r['rate_value'])
        for r in frame['Resources']]) for frame in frames] == [
        (api_conftest.at(1, 0).replace(tzinfo=None).isoformat(),
         [('cpu', '1', '1.5', '1.5000')]),
        (api_conftest.at(1, 0).replace(tzinfo=None).isoformat(),
         [('image.size', '10', '0.25', '0.0250')]),
        (api_conftest.at(1, 1).replace(tzinfo=None).isoformat(),
         [('cpu', '1', '1.5', '1.5000')])]
    frames = cli.json('dataframes', 'get', '-r', 'cpu', api_version=1)
    assert sorted(frame['Project ID'] for frame in frames) == [
        'p1', 'p1', 'p2']


def test_report_tenant_list(cli):
    assert cli.json('report', 'tenant', 'list', api_version=1) == [
        {'Tenant ID': 'p1'}, {'Tenant ID': 'p2'}]
    assert cli.json('report', 'tenant', 'list', '-b', '2001-01-01T00:00:00',
                    '-e', '2001-02-01T00:00:00', api_version=1) == []


# Metrics.

def test_info_metric_list_and_get(cli):
    assert cli.json('info', 'metric', 'list') == [
        {'Metric': 'cpu', 'Unit': 'instance', 'Metadata': ['flavor']},
        {'Metric': 'image.size', 'Unit': 'MiB',
         'Metadata': ['container_format', 'disk_format']}]
    assert cli.json('info', 'metric', 'get', 'image.size') == [
        {'Metric': 'image.size', 'Unit': 'MiB',
         'Metadata': ['container_format', 'disk_format']}]


def test_info_config_get(cli):
    rows = cli.json('info', 'config', 'get')
    config = {row['Section']: row['Value'] for row in rows}
    assert set(config['metrics']) == {'cpu', 'image.size'}
    assert config['metrics']['image.size']['unit'] == 'MiB'
    assert config['metrics']['cpu']['groupby'] == ['id']


# Scopes.

def test_scope_state_get(cli):
    rows = cli.json('scope', 'state', 'get')
    assert rows == [
        {'Scope ID': scope, 'Scope Key': 'project_id', 'Collector': 'file',
         'Fetcher': 'source', 'State': conftest.PROCESSED.isoformat()}
        for scope in ('p1', 'p2')]
    assert [row['Scope ID'] for row in cli.json(
        'scope', 'state', 'get', '--scope-id', 'p2')] == ['p2']


def test_scope_state_reset(cli, scope_reset):
    moment = api_conftest.at(1, 1)
    cli.run('scope', 'state', 'reset', '--scope-id', 'p2', _z(moment))
    cli.run('scope', 'state', 'reset', '--all-scopes', _z(moment))
    assert [([scope['scope_id'] for scope in scopes], timestamp)
            for scopes, timestamp in scope_reset.calls] == [
        (['p2'], moment), (['p1', 'p2'], moment)]


def test_scope_patch(cli):
    process = cli.run('scope', 'patch', '--scope-id', 'p2',
                      '--active', 'false', '--collector', 'other',
                      check=False)
    # The CLI prints the scope the API answers with; it returns that dict
    # from its command, which cliff turns into exit status 1.
    assert "'scope_id': 'p2'" in process.stderr + process.stdout
    assert "'active': False" in process.stderr + process.stdout
    [scope] = requests.get(f'{cli.endpoint}/v2/scope',
                           params={'scope_id': 'p2'}, timeout=30
                           ).json()['results']
    assert (scope['active'], scope['collector']) == (False, 'other')
    assert scope['scope_activation_toggle_date'] is not None
    assert [row['Collector'] for row in cli.json(
        'scope', 'state', 'get', '--scope-id', 'p2')] == ['other']


# Reprocessing.

def test_tasks_reprocessing_create_and_get(cli):
    cli.run('tasks', 'reprocessing', 'create', '--scope-id', 'p1',
            '--start-reprocess-time', _z(api_conftest.at(1)),
            '--end-reprocess-time', _z(api_conftest.at(1, 1)),
            '--reason', 'rules fixed')
    cli.run('tasks', 'reprocessing', 'create', '--scope-id', 'p2',
            '--start-reprocess-time', _z(api_conftest.at(1, 1)),
            '--end-reprocess-time', _z(api_conftest.at(1, 1)),
            '--reason', 'second')
    expected = [
        {'Scope ID': 'p2', 'Reason': 'second',
         'Start reprocessing time': api_conftest.at(1, 1).isoformat(),
         'End reprocessing time': api_conftest.at(1, 1).isoformat(),
         'Current reprocessing time': None},
        {'Scope ID': 'p1', 'Reason': 'rules fixed',
         'Start reprocessing time': api_conftest.at(1).isoformat(),
         'End reprocessing time': api_conftest.at(1, 1).isoformat(),
         'Current reprocessing time': None},
    ]
    assert cli.json('tasks', 'reprocessing', 'get') == expected
    assert cli.json('tasks', 'reprocessing', 'get', '--order', 'ASC') == \
        expected[::-1]
    assert cli.json('tasks', 'reprocessing', 'get', '--scope-id', 'p1') == \
        expected[1:]


def test_tasks_reprocessing_create_refused(cli):
    process = cli.run('tasks', 'reprocessing', 'create', '--scope-id', 'p1',
                      '--start-reprocess-time', _z(api_conftest.at(1)),
                      '--end-reprocess-time', _z(api_conftest.at(1, 5)),
                      '--reason', 'too late', check=False)
    assert process.returncode != 0
    assert '400' in process.stderr
