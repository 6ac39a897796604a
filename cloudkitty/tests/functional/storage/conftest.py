"""Fixtures: one storage per test, on SQLite, PostgreSQL and MariaDB.

Each test session (each xdist worker) creates its own databases, migrates
them once and empties the rated-data tables before every test. A server
that cannot be reached skips its tests, except under ``CI=true`` where it
fails them.
"""

import contextlib
import os

import pytest
import sqlalchemy as sa

from cloudkitty import db
from cloudkitty.db import models as db_models
from cloudkitty.storage.v2 import sqlalchemy as ck_sqlalchemy
from cloudkitty.tests.functional import storage as db_servers

BACKENDS = ['sqlite', 'postgresql', 'mariadb']
# Every table of the rated data.
_TABLES = tuple(name for name in db_models.Base.metadata.tables
                if name.startswith('rated_'))


@pytest.fixture(scope='session')
def _databases(tmp_path_factory):
    """``{backend: URL or error}``, created on first use, dropped at exit."""
    with contextlib.ExitStack() as stack:
        urls = {}

        def get(backend):
            if backend not in urls:
                urls[backend] = _create(backend, stack, tmp_path_factory)
            return urls[backend]
        yield get


def _create(backend, stack, tmp_path_factory):
    if backend == 'sqlite':
        url = f"sqlite:///{tmp_path_factory.mktemp('storage')}/ck.sqlite"
    else:
        try:
            url = stack.enter_context(db_servers.fresh_database(backend))
        except db_servers.ServerUnavailable as exc:
            return exc
    storage = ck_sqlalchemy.SQLAlchemyStorage(db_servers.make_conf(url))
    storage.init()
    storage.engine.dispose()
    return url


@pytest.fixture(params=BACKENDS)
def storage_url(request, _databases):
    """The URL of a migrated database whose rated data is empty."""
    url = _databases(request.param)
    if isinstance(url, Exception):
        if os.environ.get('CI') == 'true':
            pytest.fail(f'{request.param} is required under CI: {url}')
        pytest.skip(str(url))
    engine = db.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        for table in _TABLES:
            conn.exec_driver_sql(f'DELETE FROM {table}')
    engine.dispose()
    return url


@pytest.fixture
def storage(storage_url):
    """A :class:`SQLAlchemyStorage` on an empty, migrated database."""
    backend = ck_sqlalchemy.SQLAlchemyStorage(
        db_servers.make_conf(storage_url))
    yield backend
    backend.engine.dispose()
