"""``cloudkitty-rate`` over the quick start's sample usage (the README's
first command), checked against quantities and prices computed from the
usage files and the quick start's price list."""

import collections
import csv
import decimal
import json
import logging
import os

import pytest

from cloudkitty.cli import rate
from cloudkitty.rating.hash import rules_file
from cloudkitty.tests.scripts import TOP

QUICKSTART = TOP / 'etc' / 'cloudkitty' / 'quickstart'
D = decimal.Decimal

# The prices of quickstart/hashmap.yml, per hour.
INSTANCE = D('0.01')
INSTANCE_ALPHA = D('0.008')
FLAVORS = {'m1.tiny': D('0.005'), 'm1.small': D('0.01'),
           'm1.medium': D('0.02'), 'm1.large': D('0.04')}
GIB = D('0.0002')
SSD = D('1.5')
FROM_100_GIB = D('0.9')
MIB = D('0.0000002')
MB = D('0.00001')
FLOATING_IP = D('0.005')


def _expected_from_usage():
    """``{(scope, type): (qty, price)}``, straight from the usage files."""
    instance_hours = collections.defaultdict(dict)
    network_mb = collections.defaultdict(D)
    with open(QUICKSTART / 'usage' / 'compute.jsonl') as usage:
        for line in usage:
            record = json.loads(line, parse_float=D)
            if record['metric'] == 'cpu' and record['qty'] != 0:
                hour = record['time'][:13]
                instance_hours[record['scope']][
                    record['labels']['id'], hour] = \
                    record['labels']['flavor_name']
            elif record['metric'] == 'network.outgoing.bytes':
                network_mb[record['scope']] += D(record['qty']) / 1000000
    expected = collections.defaultdict(lambda: (D(0), D(0)))

    def add(scope, type_, qty, price):
        total_qty, total_price = expected[scope, type_]
        expected[scope, type_] = (total_qty + qty, total_price + price)

    for scope, hours in instance_hours.items():
        base = INSTANCE_ALPHA if scope == 'demo-alpha' else INSTANCE
        for flavor in hours.values():
            add(scope, 'instance', 1, base + FLAVORS[flavor])
    for scope, mb in network_mb.items():
        add(scope, 'network.out', mb, mb * MB)
    with open(QUICKSTART / 'usage' / 'storage.csv', newline='') as usage:
        for row in csv.DictReader(usage):
            qty = D(row['qty'])
            if row['metric'] == 'volume.size':
                price = qty * GIB
                if row['volume_type'] == 'ssd':
                    price *= SSD
                if qty >= 100:
                    price *= FROM_100_GIB
                add(row['scope'], 'volume.size', qty, price)
            else:
                mib = qty / 1048576
                add(row['scope'], 'image.size', mib, mib * MIB)
    with open(QUICKSTART / 'usage' / 'network.jsonl') as usage:
        for line in usage:
            record = json.loads(line)
            attached = int(record['qty'] != 0)
            add(record['scope'], 'ip.floating', attached,
                attached * FLOATING_IP)
    return dict(expected)


def _rows(output):
    """``{(scope, type): (qty, rate)}`` of the printed table."""
    rows = {}
    for line in output.splitlines():
        fields = line.split()
        if (len(fields) == 4 and fields[0].startswith('demo-')
                and not fields[1].startswith('(')):
            rows[fields[0], fields[1]] = (D(fields[2]), D(fields[3]))
    return rows


@pytest.fixture
def in_tmp_checkout(tmp_path, monkeypatch):
    """Run from a directory laid out like the checkout (relative paths)."""
    (tmp_path / 'etc' / 'cloudkitty').mkdir(parents=True)
    os.symlink(QUICKSTART, tmp_path / 'etc' / 'cloudkitty' / 'quickstart')
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_quickstart_rates_every_scope_exactly(in_tmp_checkout, capsys):
    argv = ['--config-file', str(QUICKSTART / 'cloudkitty.conf')]
    assert rate.main(argv) == 0
    output = capsys.readouterr().out
    assert ('hashmap.yml: 12 created, 0 already there; hashmap enabled.'
            in output)
    assert 'Rated 288 periods of 4 scopes' in output
    rows = _rows(output)
    expected = _expected_from_usage()
    assert len({scope for scope, _type in expected}) == 4
    assert len(expected) == 4 * 5
    assert rows == expected
    # The tenant-specific price applies to its scope only.
    assert rows['demo-alpha', 'instance'][1] < sum(
        FLAVORS.values()) * rows['demo-alpha', 'instance'][0]

    # A second run keeps the rules, finds every scope caught up and stores
    # nothing twice.
    assert rate.main(argv) == 0
    again = capsys.readouterr().out
    assert 'hashmap.yml: 0 created, 12 already there' in again
    assert 'Rated 0 periods of 4 scopes' in again
    assert _rows(again) == rows


def test_the_loggers_it_quiets_get_their_levels_back(in_tmp_checkout):
    # rate.main quiets the orchestrator's log while it runs. Left quieted,
    # a process that goes on (the tests') lost its INFO lines: the
    # orchestrator tests that read them failed after this module ran.
    loggers = [logging.getLogger(name)
               for name in ('cloudkitty.orchestrator', 'alembic')]
    before = [logger.level for logger in loggers]
    assert rate.main(['--config-file', str(QUICKSTART / 'cloudkitty.conf'),
                      '--end', '2026-01-01T01:00:00Z']) == 0
    assert [logger.level for logger in loggers] == before


def test_rules_that_contradict_the_database_are_refused(in_tmp_checkout):
    argv = ['--config-file', str(QUICKSTART / 'cloudkitty.conf'),
            '--end', '2026-01-01T01:00:00Z']
    assert rate.main(argv) == 0
    changed = in_tmp_checkout / 'changed.yml'
    changed.write_text((QUICKSTART / 'hashmap.yml').read_text().replace(
        'cost: 0.0002', 'cost: 0.0003'))
    with pytest.raises(SystemExit, match=(
            r'--rules: .*changed.yml: services > volume.size > mappings > '
            r'0: clashes with')):
        rate.main(argv + ['--rules', str(changed)])


@pytest.mark.parametrize('content, words', [
    ('services: {instance: {mappings: [{cost: abc}]}}',
     'services > instance > mappings > 0 > cost'),
    ('services: {instance: {mappings: [{cost: 1, type: fixed}]}}', 'type'),
    ('services: {instance: {fields: {flavor: {mappings: [{cost: 1}]}}}}',
     'A field mapping needs a value'),
    ('mappings: []', 'services'),
    ('services: [', 'invalid YAML'),
])
def test_bad_rules_are_one_clear_line(in_tmp_checkout, content, words):
    rules = in_tmp_checkout / 'rules.yml'
    rules.write_text(content)
    with pytest.raises(SystemExit, match='cloudkitty-rate: --rules: ') as \
            error:
        rate.main(['--config-file', str(QUICKSTART / 'cloudkitty.conf'),
                   '--end', '2026-01-01T01:00:00Z', '--rules', str(rules)])
    assert words in str(error.value)


def test_bad_begin_is_one_clear_line(in_tmp_checkout):
    with pytest.raises(SystemExit, match='--begin: .*not an ISO 8601 date'):
        rate.main(['--config-file', str(QUICKSTART / 'cloudkitty.conf'),
                   '--begin', 'yesterday'])


def test_rules_file_numbers_are_decimals(tmp_path):
    rules = tmp_path / 'rules.yml'
    rules.write_text('start: 2026-01-01T00:00:00Z\nservices:\n'
                     '  volume:\n    mappings:\n'
                     '      - {cost: 0.1234567890123456789012345678}\n'
                     '    thresholds:\n      - {level: 1_000.5, cost: 1e-3}\n')
    content = rules_file.load(rules)
    volume = content['services']['volume']
    assert volume['mappings'][0]['cost'] == D('0.1234567890123456789012345678')
    assert volume['thresholds'][0]['level'] == D('1000.5')
    assert volume['thresholds'][0]['cost'] == D('0.001')
    assert str(content['start']) == '2026-01-01 00:00:00+00:00'
