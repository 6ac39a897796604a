"""Fixtures of the tests against a real Gnocchi.

``gnocchi`` (session): a running :class:`server.Gnocchi` on a throwaway
PostgreSQL database. When it cannot be installed or started the tests
skip, except under ``CI=true`` where they fail.

``dataset`` (session): what the tests collect, see :class:`Dataset`: an
archive policy keeping 1-minute and 1-hour maxima, minima, means and sums,
resources of two types in three projects, and their measures, all in the
hour :attr:`Dataset.hour` (after the resources' creation, so their first
revision covers it), processed by metricd before the fixture returns.
"""

import dataclasses
import datetime
import os
import time
import uuid

from gnocchiclient import auth as g_auth
from gnocchiclient import client as g_client
from keystoneauth1 import session as ks_session
from oslo_config import cfg
import pytest

from cloudkitty import conf as ck_conf
from cloudkitty.tests.functional.gnocchi import server
from cloudkitty.tests.functional import storage as storage_fixtures

ARCHIVE_POLICY = 'ck-test'
METHODS = ['max', 'min', 'mean', 'sum']
PROCESSING_TIMEOUT = 60

#: {name: (type, attributes, {metric: [(seconds into the hour, value)]})}
RESOURCES = {
    'inst1': ('ck_instance', {'project_id': 'proj-a', 'user_id': 'alice',
                              'flavor': 'm1.small', 'zone': 'z1'},
              {'cpu': [(0, 1.5), (60, 2.25), (120, 0.75)]}),
    'inst2': ('ck_instance', {'project_id': 'proj-a', 'flavor': 'm1.large',
                              'zone': 'z1'},
              {'cpu': [(30, 4.125), (90, 3.5)]}),
    'inst3': ('ck_instance', {'project_id': 'proj-b', 'user_id': 'bob',
                              'flavor': 'm1.small', 'zone': 'z2'},
              {'cpu': [(10, 10.1)]}),
    'vol1': ('ck_volume', {'project_id': 'proj-b', 'volume_type': 'ssd'},
             {'volume.size': [(0, 20)]}),
    'idle': ('ck_instance', {'project_id': 'proj-c', 'flavor': 'm1.small',
                             'zone': 'z3'}, {}),
}
RESOURCE_TYPES = {
    'ck_instance': ('flavor', 'zone'),
    'ck_volume': ('volume_type',),
}


def client(url, user='admin'):
    """A gnocchiclient of ``url`` as ``user`` (basic authentication)."""
    auth = g_auth.GnocchiBasicPlugin(user=user, endpoint=url)
    return g_client.Client('1', session=ks_session.Session(auth=auth))


def wait_for_measures(admin, metric_id, count, granularity=60):
    """Wait until metricd aggregated ``count`` points of the metric."""
    deadline = time.monotonic() + PROCESSING_TIMEOUT
    while time.monotonic() < deadline:
        if len(admin.metric.get_measures(metric_id, aggregation='max',
                                         granularity=granularity)) >= count:
            return
        time.sleep(0.2)
    raise AssertionError(f'metricd did not process metric {metric_id} in '
                         f'{PROCESSING_TIMEOUT} s')


def add_measures(admin, measures):
    """Push ``{metric id: [(datetime, value)]}``; wait until processed."""
    for metric_id, points in measures.items():
        admin.metric.add_measures(metric_id, [
            {'timestamp': moment.isoformat(), 'value': value}
            for moment, value in points])
    for metric_id, points in measures.items():
        minutes = {moment.replace(second=0, microsecond=0)
                   for moment, _ in points}
        wait_for_measures(admin, metric_id, len(minutes))


@dataclasses.dataclass
class Dataset:
    """The resources and measures of the tests."""

    url: str
    hour: datetime.datetime       # start of the hour holding the measures
    ids: dict                     # name in RESOURCES -> resource id

    @property
    def end(self):
        return self.hour + datetime.timedelta(hours=1)


@pytest.fixture(scope='session')
def gnocchi(tmp_path_factory):
    try:
        with storage_fixtures.fresh_database('postgresql',
                                             prefix='ck_gnocchi') as url:
            instance = server.Gnocchi(tmp_path_factory.mktemp('gnocchi'),
                                      url)
            try:
                instance.start()
                yield instance
            finally:
                instance.stop()
    except (server.GnocchiUnavailable,
            storage_fixtures.ServerUnavailable) as exc:
        if os.environ.get('CI') == 'true':
            pytest.fail(f'Gnocchi is required under CI: {exc}')
        pytest.skip(f'Gnocchi unavailable: {exc}')


@pytest.fixture(scope='session')
def dataset(gnocchi):
    admin = client(gnocchi.url)
    admin.archive_policy.create({
        'name': ARCHIVE_POLICY, 'back_window': 0,
        'aggregation_methods': METHODS,
        'definition': [{'granularity': 60, 'points': 3 * 1440},
                       {'granularity': 3600, 'points': 72}]})
    for name, attributes in RESOURCE_TYPES.items():
        admin.resource_type.create({'name': name, 'attributes': {
            a: {'type': 'string', 'required': False} for a in attributes}})
    now = datetime.datetime.now(datetime.timezone.utc)
    hour = now.replace(minute=0, second=0, microsecond=0) + \
        datetime.timedelta(hours=1)
    ids, measures = {}, {}
    for name, (type_, attributes, metrics) in RESOURCES.items():
        resource = admin.resource.create(type_, dict(
            attributes, id=str(uuid.uuid4()),
            metrics={m: {'archive_policy_name': ARCHIVE_POLICY}
                     for m in metrics}))
        ids[name] = resource['id']
        for metric, points in metrics.items():
            measures[resource['metrics'][metric]] = [
                (hour + datetime.timedelta(seconds=s), v) for s, v in points]
    add_measures(admin, measures)
    return Dataset(url=gnocchi.url, hour=hour, ids=ids)


def make_conf(url, user='admin', scope_key='project_id', **fetcher):
    """A fresh ``ConfigOpts`` whose collector and fetcher reach ``url``
    with basic authentication as ``user``."""
    conf = ck_conf.register_all(cfg.ConfigOpts())
    conf([], project='cloudkitty', default_config_files=[])
    conf.set_override('scope_key', scope_key, 'collect')
    conf.set_override('collector', 'gnocchi', 'collect')
    conf.set_override('backend', 'gnocchi', 'fetcher')
    for group in ('collector_gnocchi', 'fetcher_gnocchi'):
        conf.set_override('gnocchi_auth_type', 'basic', group)
        conf.set_override('gnocchi_endpoint', url, group)
        conf.set_override('gnocchi_user', user, group)
    for name, value in fetcher.items():
        conf.set_override(name, value, 'fetcher_gnocchi')
    return conf
