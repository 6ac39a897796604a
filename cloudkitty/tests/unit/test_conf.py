"""Options: registration on a given ConfigOpts, and the shipped sample."""

import os
import subprocess
import sys

from oslo_config import cfg

from cloudkitty import conf as ck_conf

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


def test_register_all_on_a_fresh_conf_has_compatible_defaults():
    conf = ck_conf.register_all(cfg.ConfigOpts())
    conf([], project='cloudkitty')
    assert conf.collect.period == 3600
    assert conf.collect.wait_periods == 2
    assert conf.collect.scope_key == 'project_id'
    assert conf.orchestrator.skip_datapoints_expression == ''
    assert conf.storage.version == 2
    assert conf.database.connection.startswith('sqlite:')
    # Nothing was registered on the global object.
    assert 'collect' not in cfg.CONF


def test_shipped_sample_matches_the_generator(tmp_path):
    output = tmp_path / 'cloudkitty.conf.sample'
    subprocess.run(
        [sys.executable, '-m', 'oslo_config.generator',
         '--config-file',
         os.path.join(TOP, 'etc/cloudkitty/cloudkitty-config-generator.conf'),
         '--output-file', str(output)],
        check=True, cwd=TOP)
    shipped = open(os.path.join(TOP, 'etc/cloudkitty/cloudkitty.conf.sample'))
    assert output.read_text() == shipped.read()
