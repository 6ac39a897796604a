"""Options: registration on a given ConfigOpts (the shipped sample is
compared with the generator in tests/functional/test_samples.py)."""

from oslo_config import cfg

from cloudkitty import conf as ck_conf


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
