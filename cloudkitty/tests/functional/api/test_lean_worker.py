"""An API worker carries what its configuration uses, and no more.

keystoneauth (the gnocchi collector's and keystone fetcher's client
library) and oslo.messaging (RPC to the processors) are about 12 MiB of
each worker. The WSGI entry point imports neither when nothing configured
asks for them (``[DEFAULT] transport_url`` unset, ``noauth``), before and
after serving requests; their options are still listed for the sample
configuration and registered when a client is built.
"""

import json

from oslo_config import cfg
import pytest

from cloudkitty import conf as ck_conf
from cloudkitty.conf import keystoneauth
from cloudkitty.conf import opts
from cloudkitty import keystone_auth
from cloudkitty.tests.functional import harness
from cloudkitty.tests.functional import test_api_cli

HEAVY = ('keystoneauth1', 'oslo_messaging')
# keystoneauth's options in each group that reaches an OpenStack service
# (this version of keystoneauth may add more).
KEYSTONEAUTH = {o.dest for o in keystoneauth.list_opts()}
assert {'auth_type', 'auth_section', 'cafile', 'certfile', 'keyfile',
        'insecure', 'timeout'} <= KEYSTONEAUTH
KEYSTONEAUTH_GROUPS = ('collector_gnocchi', 'fetcher_gnocchi',
                       'fetcher_keystone')

# The WSGI entry point as a WSGI server loads it, then requests on every
# kind of route: the rated data, the rules, the scopes, and a quote.
SERVE = """
import os
os.environ['CLOUDKITTY_CONFIG_FILE'] = {config!r}
from cloudkitty.wsgi import api
application = api.application
import webtest
app = webtest.TestApp(application)
window = 'begin=2024-01-01T00:00:00&end=2024-01-02T00:00:00'
# An empty database: no scope, no rated point (404s), totals of 0.
for path, status in (
        ('/', 200), ('/v1/rating/modules', 200), ('/v2/scope', 404),
        ('/v1/rating/module_config/hashmap/services', 200),
        ('/v2/summary?groupby=project_id,type&' + window, 200),
        ('/v2/dataframes?' + window, 404),
        ('/v1/report/total?' + window, 200)):
    app.get(path, status=status)
assert app.post_json('/v1/rating/quote', {{'resources': [
    {{'service': 'cpu', 'volume': '1', 'desc': {{}}}}]}}).json == 0
"""


def _loaded(tmp_path, extra=''):
    config, _port, _log = test_api_cli.write_config(tmp_path)
    config.write_text(config.read_text().replace(
        '[DEFAULT]\n', f'[DEFAULT]\n{extra}'))
    return json.loads(harness.modules_loaded_by(
        SERVE.format(config=str(config)), HEAVY).replace("'", '"'))


def test_a_noauth_api_without_rpc_imports_neither(tmp_path):
    assert _loaded(tmp_path) == []


def test_a_transport_url_brings_oslo_messaging(tmp_path):
    """The check above would pass on a worker that never looks: with
    ``transport_url`` in the file, the RPC client is built (its quote then
    fails for want of a processor, so only the build is run)."""
    config, _port, _log = test_api_cli.write_config(tmp_path)
    config.write_text(config.read_text().replace(
        '[DEFAULT]\n', '[DEFAULT]\ntransport_url = rabbit://h:1/\n'))
    code = (f'import os\n'
            f'os.environ["CLOUDKITTY_CONFIG_FILE"] = {str(config)!r}\n'
            f'from cloudkitty.wsgi import api\n'
            f'api.application\n')
    loaded = harness.modules_loaded_by(code, HEAVY)
    assert "'oslo_messaging'" in loaded
    assert "'keystoneauth1'" not in loaded


def test_keystoneauth_options_are_listed_with_their_groups():
    listed = {}
    for group, options in opts.list_opts():
        listed.setdefault(group, set()).update(o.dest for o in options)
    for group in KEYSTONEAUTH_GROUPS:
        assert KEYSTONEAUTH <= listed[group], group


def test_keystoneauth_options_are_registered_with_the_client():
    """Every listed option is registered by ``register_all`` but
    keystoneauth's, which building a client of the group registers."""
    conf = ck_conf.register_all(cfg.ConfigOpts())
    conf([], project='cloudkitty', default_config_files=[])
    for group, options in opts.list_opts():
        registered = set(conf[group] if group != 'DEFAULT' else conf)
        missing = {o.dest for o in options} - registered
        expected = KEYSTONEAUTH if group in KEYSTONEAUTH_GROUPS else set()
        assert missing == expected, group
    for group in KEYSTONEAUTH_GROUPS:
        assert keystone_auth.load_auth(conf, group) is None
        session = keystone_auth.load_session(conf, group, None)
        assert session.timeout is None
        assert KEYSTONEAUTH <= set(conf[group])


@pytest.mark.parametrize('group', KEYSTONEAUTH_GROUPS)
def test_keystoneauth_options_are_in_the_sample(group):
    sample = (test_api_cli.TOP / 'etc' / 'cloudkitty' /
              'cloudkitty.conf.sample').read_text()
    section = sample.split(f'\n[{group}]\n')[1].split('\n[')[0]
    for name in KEYSTONEAUTH:
        assert f'\n#{name} = ' in section, name
