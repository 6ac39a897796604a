"""The files shipped in etc/: the configuration and policy samples are what
their generators write, the metrics.yml samples validate with their
collector, and the systemd units are sound.

(api_paste.ini is loaded in tests/functional/api/test_pipeline.py.)
"""

import configparser
import os
import pathlib
import shutil
import subprocess
import sys

import pytest
from stevedore import driver

from cloudkitty import collector
from cloudkitty.tests.scripts import TOP

ETC = TOP / 'etc'
BIN = pathlib.Path(sys.executable).parent


@pytest.mark.parametrize('sample, collector_name, scope_key, types', [
    ('metrics-gnocchi.yml', 'gnocchi', 'project_id',
     ['image.size', 'instance', 'network.bw.in', 'network.bw.out',
      'network.floating', 'radosgw.objects.size', 'volume.size']),
    ('metrics-prometheus.yml', 'prometheus', 'tenant_id',
     ['image.size', 'instance', 'network.bw.in', 'network.bw.out',
      'network.floating', 'volume.size']),
])
def test_metrics_samples_validate(sample, collector_name, scope_key, types):
    path = str(ETC / 'cloudkitty' / sample)
    base = collector.load_metrics_conf(path, scope_key=scope_key)
    collector_class = driver.DriverManager(
        collector.COLLECTORS_NAMESPACE, collector_name).driver
    metrics = collector.load_metrics_conf(path, collector_class, scope_key)
    assert sorted(m['alt_name'] for m in metrics.values()) == types
    assert sorted(metrics) == sorted(base)
    for name, metric in metrics.items():
        assert metric['description'], name


def _units():
    return sorted((ETC / 'systemd').iterdir())


def _parse(path):
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read(path)
    return parser


def _console_scripts():
    setup = configparser.ConfigParser()
    setup.read(TOP / 'setup.cfg')
    return {line.split('=')[0].strip() for line in setup.get(
        'entry_points', 'console_scripts').strip().splitlines()}


def test_units_run_installed_commands_and_restart_on_failure():
    units = {path.name: _parse(path) for path in _units()}
    assert sorted(units) == [
        'cloudkitty-api.service', 'cloudkitty-processor.service',
        'cloudkitty-writer.service', 'cloudkitty-writer.timer']
    commands = {}
    for name, unit in units.items():
        assert unit.get('Unit', 'Description'), name
        if name.endswith('.service'):
            service = unit['Service']
            program = os.path.basename(service['ExecStart'].split()[0])
            commands[name] = program
            assert (BIN / program).exists(), f'{program} is not installed'
            assert service.get('Restart') == 'on-failure', name
    assert commands == {
        'cloudkitty-api.service': 'gunicorn',
        'cloudkitty-processor.service': 'cloudkitty-processor',
        'cloudkitty-writer.service': 'cloudkitty-writer'}
    assert {'cloudkitty-processor', 'cloudkitty-writer'} <= \
        _console_scripts()
    assert units['cloudkitty-api.service']['Service']['ExecStart'].endswith(
        ' cloudkitty.wsgi.api:application')
    timer = units['cloudkitty-writer.timer']
    assert timer['Timer']['Unit'] == 'cloudkitty-writer.service'
    assert timer['Install']['WantedBy'] == 'timers.target'


def test_units_pass_systemd_analyze_verify(tmp_path):
    if shutil.which('systemd-analyze') is None:
        if os.environ.get('CI') == 'true':
            pytest.fail('systemd-analyze is required under CI')
        pytest.skip('systemd-analyze is not installed')
    # The units name /usr/bin, where packages install the commands; here
    # they are in the virtualenv.
    for path in _units():
        (tmp_path / path.name).write_text(
            path.read_text().replace('/usr/bin/', f'{BIN}/'))
    result = subprocess.run(
        ['systemd-analyze', 'verify',
         *sorted(str(p) for p in tmp_path.iterdir())],
        capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout, result.stderr) == (0, '', '')


def _generated(tmp_path, name, code, generator_conf):
    """What a generator (run as ``python -c code``) writes."""
    output = tmp_path / name
    subprocess.run(
        [sys.executable, '-c', code, '--config-file',
         str(ETC / 'cloudkitty' / generator_conf), '--output-file',
         str(output)],
        check=True, cwd=TOP)
    return output.read_text()


def test_shipped_sample_matches_the_generator(tmp_path):
    generated = _generated(
        tmp_path, 'cloudkitty.conf.sample',
        'from oslo_config import generator; generator.main()',
        'cloudkitty-config-generator.conf')
    shipped = (ETC / 'cloudkitty/cloudkitty.conf.sample').read_text()
    assert generated == shipped


def test_shipped_policy_sample_matches_the_generator(tmp_path):
    generated = _generated(
        tmp_path, 'policy.yaml.sample',
        'from oslo_policy import generator; generator.generate_sample()',
        'cloudkitty-policy-generator.conf')
    shipped = (ETC / 'cloudkitty/policy.yaml.sample').read_text()
    assert generated == shipped
