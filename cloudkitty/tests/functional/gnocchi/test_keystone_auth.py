"""The gnocchi collector through Keystone: the session's Gnocchi served by a
second API that takes Keystone tokens (``[api] auth_mode = keystone``,
keystonemiddleware validating them against the Keystone of the keystone
tests), found in that Keystone's catalog. It holds the session's dataset:
the quantities are those the basic-auth tests collect.

The collector is configured as a deployment would be, from a
configuration file: ``[collector_gnocchi] gnocchi_auth_type = keystone``
with keystoneauth's password plugin, in the group itself or in the group
its ``auth_section`` names.

This API starts once for this module (``keystone_gnocchi``), apart from
the session's basic-auth one, so that the other modules do not wait for
Keystone. When it cannot be started the tests skip, except under
``CI=true`` where they fail.
"""

import dataclasses
import decimal
import os

from oslo_config import cfg
import pytest
import requests

from cloudkitty import collector
from cloudkitty import conf as ck_conf
from cloudkitty.tests.functional.gnocchi import conftest
from cloudkitty.tests.functional.gnocchi import server
from cloudkitty.tests.functional.keystone import conftest as ks_conftest
from cloudkitty.tests.functional.keystone.conftest import keystone  # noqa: F401,E501

D = decimal.Decimal
GNOCCHI_PASSWORD = 'gnocchi-secret'
COLLECTOR_USER = 'ck-gnocchi-collector'
COLLECTOR_PASSWORD = 'collector-secret'
SCOPE = 'proj-a'


@dataclasses.dataclass
class KeystoneGnocchi:
    """The Keystone Gnocchi API and the data it serves."""

    url: str            # the API's endpoint, as in the catalog
    keystone_url: str
    dataset: conftest.Dataset


def _identities(keystone_url):
    """Gnocchi's service user (validates tokens) and the collector's user
    (admin in Gnocchi, as upstream deploys it), both of project-service;
    returns the admin session."""
    session = ks_conftest._admin_session(keystone_url)
    project = session.get(f'{keystone_url}/projects', params={
        'name': 'project-service'}).json()['projects'][0]['id']
    for name, password, role in (
            ('gnocchi', GNOCCHI_PASSWORD, 'service'),
            (COLLECTOR_USER, COLLECTOR_PASSWORD, 'admin')):
        user = ks_conftest._create(session, keystone_url, 'users', {
            'name': name, 'password': password, 'domain_id': 'default'})
        ks_conftest._grant(session, keystone_url, project, user,
                           ks_conftest._role(session, keystone_url, role))
    return session


def _register(session, keystone_url, gnocchi_url):
    """Gnocchi in the catalog: service type ``metric``, every interface."""
    service = ks_conftest._create(session, keystone_url, 'services', {
        'type': 'metric', 'name': 'gnocchi'})
    for interface in ('public', 'internal', 'admin'):
        ks_conftest._create(session, keystone_url, 'endpoints', {
            'service_id': service, 'interface': interface,
            'url': gnocchi_url, 'region_id': 'RegionOne'})


@pytest.fixture(scope='module')
def keystone_gnocchi(gnocchi, dataset, keystone,  # noqa: F811
                     tmp_path_factory):
    keystone_url = keystone.url
    session = _identities(keystone_url)
    try:
        api = gnocchi.keystone_api(
            tmp_path_factory.mktemp('gnocchi-keystone'), {
                'www_authenticate_uri': keystone_url.rsplit('/v3', 1)[0],
                'auth_url': keystone_url,
                'auth_type': 'password',
                'username': 'gnocchi',
                'password': GNOCCHI_PASSWORD,
                'project_name': 'project-service',
                'user_domain_id': 'default',
                'project_domain_id': 'default',
                'interface': 'public',
            })
    except server.GnocchiUnavailable as exc:
        if os.environ.get('CI') == 'true':
            pytest.fail(f'Gnocchi with Keystone is required under CI: {exc}')
        pytest.skip(f'Gnocchi with Keystone unavailable: {exc}')
    try:
        _register(session, keystone_url, api.url)
        yield KeystoneGnocchi(url=api.url, keystone_url=keystone_url,
                              dataset=dataset)
    finally:
        api.stop()


def _conf_file(path, keystone_url, password, auth_section):
    credentials = f"""\
auth_type = password
auth_url = {keystone_url}
username = {COLLECTOR_USER}
password = {password}
project_name = project-service
user_domain_id = default
project_domain_id = default
"""
    text = ('[collect]\nscope_key = project_id\ncollector = gnocchi\n'
            '[collector_gnocchi]\ngnocchi_auth_type = keystone\n')
    if auth_section:
        text += f'auth_section = {auth_section}\n[{auth_section}]\n'
    path.write_text(text + credentials)
    return path


def build(tmp_path, keystone_gnocchi, password=COLLECTOR_PASSWORD,
          auth_section=None, **definition):
    """The collector of a configuration file holding keystone
    credentials, with one ``cpu`` metric of ``ck_instance`` resources."""
    path = _conf_file(tmp_path / 'cloudkitty.conf',
                      keystone_gnocchi.keystone_url, password, auth_section)
    conf = ck_conf.register_all(cfg.ConfigOpts())
    conf(['--config-file', str(path)], project='cloudkitty',
         default_config_files=[])
    definition.setdefault('unit', 'instance')
    definition.setdefault('extra_args', {'resource_type': 'ck_instance'})
    return collector.get_collector(conf, {'metrics': {'cpu': definition}})


def collect(instance, keystone_gnocchi):
    """``{resource name: (qty, metadata)}`` of the dataset's hour."""
    dataset = keystone_gnocchi.dataset
    _, points = instance.retrieve('cpu', dataset.hour, dataset.end, SCOPE)
    names = {v: k for k, v in dataset.ids.items()}
    return {names[p.groupby['id']]: (p.qty, dict(p.metadata))
            for p in points}


def test_gnocchi_refuses_a_request_without_a_token(keystone_gnocchi):
    # What makes the tests below about Keystone: this Gnocchi takes
    # nothing else.
    response = requests.get(f'{keystone_gnocchi.url}/v1/resource/generic',
                            timeout=10)
    assert response.status_code == 401


# keystone_authtoken: the section upstream's guide names (registered by
# nothing outside the API).
@pytest.mark.parametrize('auth_section', [None, 'keystone_authtoken'])
def test_keystone_credentials_collect_exact_quantities(
        tmp_path, keystone_gnocchi, auth_section):
    instance = build(tmp_path, keystone_gnocchi, auth_section=auth_section,
                     metadata=['flavor'])
    assert instance.source == (
        f'Gnocchi of the Keystone at {keystone_gnocchi.keystone_url} '
        '(catalog interface internalURL, region RegionOne)')
    # The hourly maxima of proj-a's instances (see conftest's RESOURCES).
    assert collect(instance, keystone_gnocchi) == {
        'inst1': (D('2.25'), {'flavor': 'm1.small'}),
        'inst2': (D('4.125'), {'flavor': 'm1.large'}),
    }


def test_wrong_password_is_a_collect_error_naming_the_source(
        tmp_path, keystone_gnocchi):
    instance = build(tmp_path, keystone_gnocchi, password='wrong')
    with pytest.raises(collector.CollectError) as error:
        collect(instance, keystone_gnocchi)
    message = str(error.value)
    assert message.startswith(
        f"Collector 'gnocchi' failed to collect metric 'cpu' for scope "
        f"'{SCOPE}': Gnocchi of the Keystone at "
        f'{keystone_gnocchi.keystone_url} (catalog interface internalURL, '
        'region RegionOne): Keystone refused the credentials: ')
    assert '(HTTP 401)' in message


def test_basic_auth_to_the_keystone_gnocchi_is_a_collect_error(
        keystone_gnocchi):
    instance = collector.get_collector(
        conftest.make_conf(keystone_gnocchi.url),
        {'metrics': {'cpu': {'unit': 'instance', 'extra_args': {
            'resource_type': 'ck_instance'}}}})
    with pytest.raises(collector.CollectError) as error:
        collect(instance, keystone_gnocchi)
    assert str(error.value).startswith(
        f"Collector 'gnocchi' failed to collect metric 'cpu' for scope "
        f"'{SCOPE}': Gnocchi at {keystone_gnocchi.url}: ")
    # Gnocchi's refusal, not Keystone's.
    assert '(HTTP 401)' in str(error.value)
    assert 'Keystone' not in str(error.value)
