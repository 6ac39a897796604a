"""The ``keystone`` fetcher against a real Keystone: the rating role
(direct and through a group), ``ignore_rating_role``,
``ignore_disabled_tenants``, and a Keystone that does not answer."""

from keystoneauth1 import loading
from oslo_config import cfg
import pytest

from cloudkitty import conf as ck_conf
from cloudkitty import fetcher
from cloudkitty.fetcher import keystone as ks_fetcher
from cloudkitty.tests.functional.keystone import conftest
from cloudkitty.tests.functional import live_server

PASSWORD = 'fetcher-secret'


@pytest.fixture(scope='module')
def projects(keystone):
    """``{name: id}`` of the projects of the tests, with the ``ck-fetcher``
    user: admin of ``fetch-home``, ``rating`` on ``rated`` and on the
    disabled ``rated-off``, and through group ``raters`` on
    ``rated-by-group``; nothing on ``unrated``."""
    url = keystone.url
    session = conftest._admin_session(url)
    ids = {name: conftest._create(session, url, 'projects', {
        'name': name, 'domain_id': 'default', 'enabled': name != 'rated-off'})
        for name in ('fetch-home', 'rated', 'rated-off', 'rated-by-group',
                     'unrated')}
    user = conftest._create(session, url, 'users', {
        'name': 'ck-fetcher', 'password': PASSWORD, 'domain_id': 'default'})
    rating = conftest._role(session, url, 'rating')
    conftest._grant(session, url, ids['fetch-home'], user,
                    conftest._role(session, url, 'admin'))
    for name in ('rated', 'rated-off'):
        conftest._grant(session, url, ids[name], user, rating)
    group = conftest._create(session, url, 'groups', {
        'name': 'raters', 'domain_id': 'default'})
    session.put(f'{url}/groups/{group}/users/{user}')
    session.put(f'{url}/projects/{ids["rated-by-group"]}/groups/{group}'
                f'/roles/{rating}')
    every = session.get(f'{url}/projects').json()['projects']
    ids['*'] = {p['id'] for p in every}
    ids['*enabled'] = {p['id'] for p in every if p['enabled']}
    return ids


def make_fetcher(auth_url, **options):
    conf = cfg.ConfigOpts()
    ck_conf.register_all(conf)
    conf([], project='cloudkitty', default_config_files=[])
    conf.set_override('backend', 'keystone', 'fetcher')
    group = ks_fetcher.GROUP
    # The fetcher registers keystoneauth's options when it builds its
    # client; set before, they are registered here.
    loading.register_auth_conf_options(conf, group)
    loading.register_session_conf_options(conf, group)
    conf.set_override('auth_type', 'password', group)
    # As a configuration file would set them: the plugin's options are
    # registered when keystoneauth loads the plugin.
    conf.register_opts(loading.get_auth_plugin_conf_options('password'),
                       group=group)
    for name, value in dict(
            auth_url=auth_url, username='ck-fetcher', password=PASSWORD,
            user_domain_id='default', project_name='fetch-home',
            project_domain_id='default', **options).items():
        conf.set_override(name, value, group)
    return fetcher.get_fetcher(conf)


def test_projects_with_the_rating_role(keystone, projects):
    scopes = make_fetcher(keystone.url).get_tenants()
    assert scopes == sorted(projects[name] for name in (
        'rated', 'rated-off', 'rated-by-group'))


def test_disabled_projects_are_left_out_on_demand(keystone, projects):
    scopes = make_fetcher(keystone.url,
                          ignore_disabled_tenants=True).get_tenants()
    assert scopes == sorted([projects['rated'], projects['rated-by-group']])


def test_every_project_when_the_role_is_ignored(keystone, projects):
    assert make_fetcher(keystone.url, ignore_rating_role=True
                        ).get_tenants() == sorted(projects['*'])
    assert make_fetcher(keystone.url, ignore_rating_role=True,
                        ignore_disabled_tenants=True
                        ).get_tenants() == sorted(projects['*enabled'])
    assert projects['unrated'] in projects['*enabled']


def test_credentials_in_the_auth_section(keystone, projects, tmp_path):
    # As upstream's guide has it: the API's own keystone_authtoken.
    config = tmp_path / 'cloudkitty.conf'
    config.write_text(f"""\
[fetcher]
backend = keystone
[fetcher_keystone]
auth_section = keystone_authtoken
ignore_rating_role = true
[keystone_authtoken]
auth_type = password
auth_url = {keystone.url}
username = ck-fetcher
password = {PASSWORD}
user_domain_id = default
project_name = fetch-home
project_domain_id = default
""")
    conf = cfg.ConfigOpts()
    ck_conf.register_all(conf)
    conf(['--config-file', str(config)], project='cloudkitty',
         default_config_files=[])
    assert fetcher.get_fetcher(conf).get_tenants() == sorted(projects['*'])


def test_an_unreachable_keystone_names_itself():
    url = f'http://127.0.0.1:{live_server.free_port()}/v3'
    with pytest.raises(fetcher.FetchError) as caught:
        make_fetcher(url, timeout=2).get_tenants()
    assert f'Keystone at {url}' in str(caught.value)
    assert 'listing the projects' in str(caught.value)


def test_a_missing_auth_type_is_named():
    conf = cfg.ConfigOpts()
    ck_conf.register_all(conf)
    conf([], project='cloudkitty', default_config_files=[])
    with pytest.raises(fetcher.FetchError, match='auth_type'):
        ks_fetcher.KeystoneFetcher(conf=conf)
