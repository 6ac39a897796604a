"""``cloudkitty-rate`` over the quick start's sample usage (the README's
first command), checked against totals computed from the usage files."""

import collections
import decimal
import json
import os
import pathlib

import pytest

from cloudkitty.cli import rate

TOP = pathlib.Path(__file__).resolve().parents[3]
QUICKSTART = TOP / 'etc' / 'cloudkitty' / 'quickstart'


def _expected_from_usage():
    """Instance-hours and outgoing MB per scope, straight from the JSONL."""
    instance_hours = collections.defaultdict(set)
    network_mb = collections.defaultdict(decimal.Decimal)
    with open(QUICKSTART / 'usage' / 'compute.jsonl') as usage:
        for line in usage:
            record = json.loads(line, parse_float=decimal.Decimal)
            if record['metric'] == 'cpu' and record['qty'] != 0:
                hour = record['time'][:13]
                instance_hours[record['scope']].add(
                    (record['labels']['id'], hour))
            elif record['metric'] == 'network.outgoing.bytes':
                network_mb[record['scope']] += (
                    decimal.Decimal(record['qty']) / 1000000)
    return ({s: len(h) for s, h in instance_hours.items()}, network_mb)


def _rows(output):
    rows = {}
    for line in output.splitlines():
        fields = line.split()
        if (len(fields) == 4 and fields[0].startswith('demo-')
                and not fields[1].startswith('(')):
            rows[fields[0], fields[1]] = decimal.Decimal(fields[2])
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
    assert 'Rated 288 periods of 4 scopes' in output
    rows = _rows(output)
    hours, network = _expected_from_usage()
    assert len(hours) == 4
    for scope_id, count in hours.items():
        assert rows[scope_id, 'instance'] == count
        assert rows[scope_id, 'network.out'] == network[scope_id]
    assert len(rows) == 4 * 5

    # A second run finds every scope caught up and stores nothing twice.
    assert rate.main(argv) == 0
    again = capsys.readouterr().out
    assert 'Rated 0 periods of 4 scopes' in again
    assert _rows(again) == rows


def test_bad_begin_is_one_clear_line(in_tmp_checkout):
    with pytest.raises(SystemExit, match='--begin: .*not an ISO 8601 date'):
        rate.main(['--config-file', str(QUICKSTART / 'cloudkitty.conf'),
                   '--begin', 'yesterday'])
