"""Fixtures of the hashmap functional tests: migrated databases, a clock.

Imported by the ``test_hashmap_*`` modules (not a conftest, so that other
rating modules' tests keep their own). Each test session (each xdist
worker) migrates one database per backend on first use (a fresh one on
the servers, dropped at the end) and empties the hashmap tables before
every test. A server that cannot be reached skips
its tests, except under ``CI=true`` where it fails them.
"""

import contextlib
import datetime
import os

import pytest
import sqlalchemy as sa

from cloudkitty import db
from cloudkitty.db import migration
from cloudkitty.rating.hash import db as hash_db
from cloudkitty.tests.functional import storage as db_servers

BACKENDS = ['sqlite', 'postgresql', 'mariadb']
# Children first: what the foreign keys need.
TABLES = ('hashmap_mappings', 'hashmap_thresholds', 'hashmap_fields',
          'hashmap_services', 'hashmap_groups')
UTC = datetime.UTC


class Clock:
    """A settable clock: ``clock()`` is ``clock.now``."""

    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now

    def advance(self, **delta):
        self.now += datetime.timedelta(**delta)


@pytest.fixture(scope='session', params=BACKENDS)
def hashmap_url(request, tmp_path_factory):
    """URL of a database of each backend in turn, migrated once."""
    backend = request.param
    with contextlib.ExitStack() as stack:
        if backend == 'sqlite':
            url = f"sqlite:///{tmp_path_factory.mktemp('hashmap')}/ck.sqlite"
        else:
            try:
                url = stack.enter_context(
                    db_servers.fresh_database(backend, prefix='ck_hash'))
            except db_servers.ServerUnavailable as exc:
                if os.environ.get('CI') == 'true':
                    pytest.fail(f'{backend} is required under CI: {exc}')
                pytest.skip(str(exc))
        engine = db.create_engine(url, poolclass=sa.pool.NullPool)
        migration.upgrade(engine)
        engine.dispose()
        yield url


@pytest.fixture
def hashmap_engine(hashmap_url):
    """An engine on each backend in turn, hashmap tables empty."""
    engine = db.create_engine(hashmap_url)
    with engine.begin() as conn:
        for table in TABLES:
            conn.exec_driver_sql(f'DELETE FROM {table}')
    yield engine
    engine.dispose()


@pytest.fixture
def clock():
    return Clock(datetime.datetime(2030, 1, 1, 12, tzinfo=UTC))


@pytest.fixture
def hashmap_db(hashmap_engine, clock):
    return hash_db.HashMapDB(hashmap_engine, clock=clock)
