"""The default policies, checked with oslo.policy on a fresh ConfigOpts."""

from oslo_config import cfg
from oslo_context import context
from oslo_policy import opts
import pytest

from cloudkitty import policies
from cloudkitty.policies import base
from cloudkitty.policies import report
from cloudkitty.policies import scope


@pytest.fixture
def enforcer():
    conf = cfg.ConfigOpts()
    conf([], default_config_files=[])
    return policies.make_enforcer(conf)


def _allowed(enforcer, rule, roles, project_id, target_project):
    creds = context.RequestContext(roles=roles, project_id=project_id)
    return enforcer.authorize(rule, {'project_id': target_project}, creds,
                              do_raise=False)


def test_rule_names_are_unique_and_documented():
    rules = policies.list_rules()
    names = [rule.name for rule in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert rule.description


def test_reader_sees_own_project_only(enforcer):
    assert _allowed(enforcer, report.GET_TOTAL, ['reader'], 'p1', 'p1')
    assert not _allowed(enforcer, report.GET_TOTAL, ['reader'], 'p1', 'p2')
    assert not _allowed(enforcer, report.GET_TOTAL, ['member'], 'p1', 'p1')


def test_admin_sees_every_project(enforcer):
    assert _allowed(enforcer, report.GET_TOTAL, ['admin'], 'p1', 'p2')
    assert _allowed(enforcer, scope.RESET_STATE, ['admin'], 'p1', None)


def test_admin_routes_refuse_readers(enforcer):
    assert not _allowed(enforcer, scope.GET_STATE, ['reader'], 'p1', 'p1')


def test_policy_file_overrides(tmp_path):
    policy_file = tmp_path / 'policy.yaml'
    policy_file.write_text(f'"{scope.GET_STATE}": "role:reader"\n')
    conf = cfg.ConfigOpts()
    conf([], default_config_files=[])
    # An override on this ConfigOpts only: opts.set_defaults() would change
    # the default of every later one, other tests' included.
    for group, options in opts.list_opts():
        conf.register_opts(options, group=group)
    conf.set_override('policy_file', str(policy_file), group='oslo_policy')
    enforcer = policies.make_enforcer(conf)
    assert _allowed(enforcer, scope.GET_STATE, ['reader'], 'p1', 'p1')


def test_context_is_admin_is_the_admin_role(enforcer):
    assert _allowed(enforcer, base.CONTEXT_IS_ADMIN, ['admin'], None, None)
    assert not _allowed(enforcer, base.CONTEXT_IS_ADMIN, ['reader'], 'p1',
                        'p1')
