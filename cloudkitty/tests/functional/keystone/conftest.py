"""Fixtures of the tests against a real Keystone.

``keystone`` (session): a running :class:`server.Keystone` holding project A
and project B, a ``reader`` user of each, and a ``cloudkitty`` service user
(role ``service``) for keystonemiddleware. When Keystone cannot be installed
or started the tests skip, except under ``CI=true`` where they fail.

``keystone_api`` (module): the API's keystone pipeline
(``[DEFAULT] auth_strategy = keystone``, ``etc/cloudkitty/api_paste.ini``)
served over HTTP, on a fresh SQLite database holding rated data of both
projects (see :data:`PRICES`).
"""

import dataclasses
import os
import pathlib
import shutil

from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3
from oslo_config import cfg
import pytest
import requests

import cloudkitty
from cloudkitty.api import app as api_app
from cloudkitty import conf as ck_conf
from cloudkitty import storage
from cloudkitty.tests.functional.api import conftest as api_conftest
from cloudkitty.tests.functional.keystone import server
from cloudkitty.tests.functional import live_server

TOP = pathlib.Path(cloudkitty.__file__).resolve().parent.parent
PASTE_CONFIG = TOP / 'etc' / 'cloudkitty' / 'api_paste.ini'
USER_PASSWORD = 'reader-secret'
SERVICE_PASSWORD = 'service-secret'

#: Rated data of the tests: {project: [(type, qty, price)]}, every point at
#: day 1 00:00 of the current month, one hour long.
PRICES = {
    'A': [('cpu', 1, '1.5'), ('image.size', 10, '0.25')],
    'B': [('cpu', 2, '7.75')],
}
TOTALS = {'A': '1.75', 'B': '7.75'}


@dataclasses.dataclass
class Identities:
    """Who is who in the test Keystone."""

    url: str
    projects: dict      # 'A', 'B', 'admin' -> project id
    users: dict         # 'admin', 'reader_a', 'reader_b' -> (name, project)
    tokens: dict = dataclasses.field(default_factory=dict)

    def token(self, user):
        """A project-scoped token of ``user`` (cached)."""
        if user not in self.tokens:
            name, project = self.users[user]
            password = server.ADMIN_PASSWORD if user == 'admin' else \
                USER_PASSWORD
            auth = v3.Password(auth_url=self.url, username=name,
                               password=password, user_domain_id='default',
                               project_id=self.projects[project])
            self.tokens[user] = ks_session.Session(auth=auth).get_token()
        return self.tokens[user]


def _admin_session(url):
    auth = v3.Password(auth_url=url, username='admin',
                       password=server.ADMIN_PASSWORD,
                       user_domain_id='default', project_name='admin',
                       project_domain_id='default')
    return ks_session.Session(auth=auth)


def _create(session, url, collection, body):
    key = collection.rstrip('s')
    response = session.post(f'{url}/{collection}', json={key: body})
    return response.json()[key]['id']


def _role(session, url, name):
    roles = session.get(f'{url}/roles', params={'name': name}).json()['roles']
    return roles[0]['id'] if roles else _create(session, url, 'roles',
                                                {'name': name})


def _grant(session, url, project, user, role):
    session.put(f'{url}/projects/{project}/users/{user}/roles/{role}')


def provision(url):
    """Create the projects, roles and users of the tests; return them."""
    session = _admin_session(url)
    admin_projects = session.get(f'{url}/projects',
                                 params={'name': 'admin'}).json()['projects']
    projects = {'admin': admin_projects[0]['id']}
    for name in ('A', 'B', 'service'):
        projects[name] = _create(session, url, 'projects', {
            'name': f'project-{name}', 'domain_id': 'default'})
    reader = _role(session, url, 'reader')
    users = {'admin': ('admin', 'admin')}
    for project in ('A', 'B'):
        name = f'reader-{project.lower()}'
        user = _create(session, url, 'users', {
            'name': name, 'password': USER_PASSWORD,
            'domain_id': 'default'})
        _grant(session, url, projects[project], user, reader)
        users[f'reader_{project.lower()}'] = (name, project)
    service_user = _create(session, url, 'users', {
        'name': 'cloudkitty', 'password': SERVICE_PASSWORD,
        'domain_id': 'default'})
    _grant(session, url, projects['service'], service_user,
           _role(session, url, 'service'))
    return Identities(url=url, projects=projects, users=users)


@pytest.fixture(scope='session')
def keystone(tmp_path_factory):
    instance = server.Keystone(tmp_path_factory.mktemp('keystone') / 'state')
    try:
        instance.start()
        identities = provision(instance.url)
    except (server.KeystoneUnavailable, requests.RequestException,
            OSError) as exc:
        instance.stop()
        if os.environ.get('CI') == 'true':
            pytest.fail(f'Keystone is required under CI: {exc}')
        pytest.skip(f'Keystone unavailable: {exc}')
    except Exception:
        instance.stop()
        raise
    yield identities
    instance.stop()


def write_config(directory, database, keystone_url, policy_file=None):
    """The configuration file of the API in keystone mode."""
    metrics = directory / 'metrics.yml'
    metrics.write_text(api_conftest.METRICS_YML)
    www = keystone_url.rsplit('/v3', 1)[0]
    text = f"""\
[DEFAULT]
auth_strategy = keystone
[api]
paste_config = {PASTE_CONFIG}
[collect]
metrics_conf = {metrics}
[database]
connection = sqlite:///{database}
[keystone_authtoken]
www_authenticate_uri = {www}
auth_url = {keystone_url}
auth_type = password
username = cloudkitty
password = {SERVICE_PASSWORD}
project_name = project-service
user_domain_id = default
project_domain_id = default
interface = public
"""
    if policy_file:
        text += f'[oslo_policy]\npolicy_file = {policy_file}\n'
    path = directory / 'cloudkitty.conf'
    path.write_text(text)
    return path


def load_conf(path):
    conf = cfg.ConfigOpts()
    ck_conf.register_all(conf)
    conf(['--config-file', str(path)], project='cloudkitty',
         default_config_files=[])
    return conf


def rated_frames(projects):
    """The frames of :data:`PRICES` for the Keystone project ids."""
    start = api_conftest.at(1)
    usage = {}
    for project, points in PRICES.items():
        for index, (type_, qty, price) in enumerate(points):
            usage.setdefault(type_, []).append(api_conftest.point(
                projects[project], qty, price,
                type_id=f'{project}-{index}'))
    return [api_conftest.frame(start, usage)]


def serve_api(directory, template, identities, policy_file=None):
    """Context manager: the keystone pipeline on rated data; yields URL."""
    directory.mkdir(parents=True, exist_ok=True)
    database = directory / 'cloudkitty.sqlite'
    shutil.copy(template, database)
    conf = load_conf(write_config(directory, database, identities.url,
                                  policy_file))
    backend = storage.get_storage(conf)
    backend.push(rated_frames(identities.projects))
    backend.engine.dispose()
    return live_server.serve(api_app.load_app(conf))


@pytest.fixture(scope='module')
def keystone_api(keystone, template_db, tmp_path_factory):
    with serve_api(tmp_path_factory.mktemp('api'), template_db,
                   keystone) as url:
        yield url


class Caller:
    """``requests`` calls to the API as one of the test users."""

    def __init__(self, base_url, identities, user=None):
        self.base_url = base_url
        self.headers = {}
        if user:
            self.headers['X-Auth-Token'] = identities.token(user)

    def request(self, method, path, **kwargs):
        return requests.request(method, self.base_url + path,
                                headers=self.headers, timeout=30, **kwargs)

    def get(self, path, **params):
        return self.request('GET', path, params=params)


@pytest.fixture
def as_user(keystone_api, keystone):
    """``as_user('reader_a')``: a :class:`Caller` with that user's token."""
    return lambda user=None: Caller(keystone_api, keystone, user)


@pytest.fixture
def ids(keystone):
    """Project ids by test name ('A', 'B')."""
    return keystone.projects
