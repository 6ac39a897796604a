"""Fixtures of the functional tests: a migrated SQLite database, a
``ConfigOpts`` on it, the API's backends and application (through
WebTest), and rated data.

pytest hands them to every test under ``cloudkitty/tests/functional/``
(no import: a module or a directory's ``conftest.py`` that defines a
fixture of the same name overrides it there). The schema is migrated once
per session into a template file; each test works on its own copy, with
its own ``ConfigOpts``. The helpers the tests call (:func:`make_conf`,
:func:`at`, :func:`point`, :func:`frame`, :func:`reader`...) are
re-exported by ``cloudkitty.tests.functional.api.conftest``.
"""

import contextlib
import datetime
import shutil
import sqlite3

from oslo_config import cfg
import pytest
import webtest

from cloudkitty.api import app as api_app
from cloudkitty.api import hooks
from cloudkitty import conf as ck_conf
from cloudkitty import dataframe
from cloudkitty import db
from cloudkitty.db import migration
from cloudkitty import storage

UTC = datetime.timezone.utc

METRICS_YML = """\
metrics:
  cpu:
    unit: instance
    groupby: [id]
    metadata: [flavor]
  image.size:
    unit: MiB
    factor: 1/1048576
    groupby: [id]
    metadata: [container_format, disk_format]
"""


def make_conf(directory, database_file, **overrides):
    """A fresh ConfigOpts on ``database_file``, noauth unless overridden."""
    conf = cfg.ConfigOpts()
    ck_conf.register_all(conf)
    conf([], project='cloudkitty', default_config_files=[])
    metrics = directory / 'metrics.yml'
    metrics.write_text(METRICS_YML)
    conf.set_override('connection', f'sqlite:///{database_file}', 'database')
    conf.set_override('metrics_conf', str(metrics), 'collect')
    conf.set_override('auth_strategy', 'noauth')
    for name, (value, group) in overrides.items():
        conf.set_override(name, value, group)
    return conf


@pytest.fixture(scope='session')
def template_db(tmp_path_factory):
    directory = tmp_path_factory.mktemp('template')
    path = directory / 'migrated.sqlite'
    conf = make_conf(directory, path)
    engine = db.create_engine(conf.database.connection)
    migration.upgrade(engine)
    storage.get_storage(conf).init()
    engine.dispose()
    # A copy of the file alone must hold everything (nothing left in the
    # write-ahead log): VACUUM INTO writes such a file.
    template = directory / 'template.sqlite'
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.execute('VACUUM INTO ?', (str(template),))
    return template


@pytest.fixture
def database(tmp_path, template_db):
    path = tmp_path / 'cloudkitty.sqlite'
    shutil.copy(template_db, path)
    return path


@pytest.fixture
def conf(tmp_path, database):
    return make_conf(tmp_path, database)


class ResetRecorder:
    """Stands for the processors: records the scope resets asked for."""

    def __init__(self):
        self.calls = []

    def __call__(self, scopes, last_processed_timestamp):
        self.calls.append((scopes, last_processed_timestamp))


@pytest.fixture
def scope_reset():
    return ResetRecorder()


@pytest.fixture
def backends(conf, scope_reset):
    return hooks.Backends(conf, scope_reset=scope_reset)


@pytest.fixture
def app(conf, backends):
    """The application in noauth mode: every caller is an admin."""
    return webtest.TestApp(api_app.setup_app(conf, backends))


@pytest.fixture
def keystone_app(conf, backends):
    """The application in keystone mode, without keystonemiddleware: tests
    send the identity headers the middleware would set."""
    conf.set_override('auth_strategy', 'keystone')
    return webtest.TestApp(api_app.setup_app(conf, backends))


def reader(project_id):
    """Headers of a project reader, as keystonemiddleware sets them."""
    return {'X-Roles': 'reader,member', 'X-Project-Id': project_id,
            'X-User-Id': 'user-' + project_id,
            'X-Identity-Status': 'Confirmed'}


ADMIN = {'X-Roles': 'admin,reader', 'X-Project-Id': 'admin-project',
         'X-User-Id': 'admin', 'X-Identity-Status': 'Confirmed'}


def at(day, hour=0, month=None):
    """A datetime of the current month (rated data defaults to it)."""
    now = datetime.datetime.now(UTC)
    return datetime.datetime(now.year, month or now.month, day, hour,
                             tzinfo=UTC)


def point(scope, qty, price, type_id='i-1', unit='instance', **metadata):
    return dataframe.DataPoint(unit, qty, price,
                               {'project_id': scope, 'id': type_id},
                               metadata)


def frame(start, usage, hours=1):
    """A DataFrame of [start, start + hours) with ``usage`` {type: [points]}."""
    return dataframe.DataFrame(start, start + datetime.timedelta(hours=hours),
                               usage)


@pytest.fixture
def rated(backends):
    """Rated data of this month: two projects, two types, two periods.

    p1: cpu 1, priced 1.5, at day 1 00:00 and 01:00; image.size 10,
        priced 0.25, at 00:00
    p2: cpu 2, priced 1.25, at day 1 00:00
    """
    frames = [
        frame(at(1, 0), {
            'cpu': [point('p1', 1, '1.5', flavor='m1'),
                    point('p2', 2, '1.25', type_id='i-2', flavor='m2')],
            'image.size': [point('p1', 10, '0.25', type_id='img-1',
                                 unit='MiB', disk_format='raw')],
        }),
        frame(at(1, 1), {'cpu': [point('p1', 1, '1.5', flavor='m1')]}),
    ]
    backends.storage.push(frames)
    return frames
