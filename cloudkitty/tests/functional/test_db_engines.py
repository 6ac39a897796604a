"""The engines of :mod:`cloudkitty.db`, on SQLite files: one shared per URL
and pool settings, connection setups that reach the connections already
pooled, and :func:`cloudkitty.db.is_unavailable` telling a database out of
reach from a failed statement. (Against a real server stopped and started
again: tests/functional/api/test_database_unavailable.py.)"""

import datetime
import decimal

from oslo_config import cfg
import pytest
import sqlalchemy as sa

from cloudkitty import conf as ck_conf
from cloudkitty import dataframe
from cloudkitty import db
from cloudkitty.db import migration
from cloudkitty import storage

UTC = datetime.timezone.utc


def make_conf(url, **database):
    conf = cfg.ConfigOpts()
    ck_conf.register_all(conf)
    conf([], project='cloudkitty', default_config_files=[])
    conf.set_override('connection', url, 'database')
    for name, value in database.items():
        conf.set_override(name, value, 'database')
    return conf


def test_one_engine_per_url_and_pool_settings(tmp_path):
    url = f'sqlite:///{tmp_path}/ck.sqlite'
    engine = db.get_engine(make_conf(url))
    assert db.get_engine(make_conf(url)) is engine
    assert db.get_engine(make_conf(f'sqlite:///{tmp_path}/other.sqlite'),
                         url) is engine
    smaller = db.get_engine(make_conf(url, max_pool_size=1, max_overflow=0,
                                      pool_timeout=3))
    assert smaller is not engine
    assert (smaller.pool.size(), smaller.pool._max_overflow,
            smaller.pool._timeout) == (1, 0, 3)


def test_a_setup_reaches_the_connections_already_pooled(tmp_path):
    conf = make_conf(f'sqlite:///{tmp_path}/ck.sqlite')
    engine = db.get_engine(conf)
    migration.upgrade(engine)
    with engine.connect() as connection:  # pooled from now on
        connection.execute(sa.text('SELECT 1'))
    # The storage's SQL functions are set up on the pooled connection too:
    # a total needs them.
    backend = storage.get_storage(conf)
    assert backend.engine is engine
    start = datetime.datetime(2024, 5, 1, tzinfo=UTC)
    backend.push([dataframe.DataFrame(
        start, start + datetime.timedelta(hours=1),
        {'cpu': [dataframe.DataPoint('instance', 1, decimal.Decimal('1.5'),
                                     {'project_id': 'p1'}, {})]})], 'p1')
    total = backend.total(begin=start,
                          end=start + datetime.timedelta(hours=1))
    assert total['results'][0]['rate'] == decimal.Decimal('1.5')


def test_a_database_out_of_reach_is_unavailable(tmp_path):
    engine = db.create_engine(f'sqlite:///{tmp_path}/missing/dir/ck.sqlite')
    with pytest.raises(sa.exc.OperationalError) as caught:
        engine.connect()
    assert db.is_unavailable(caught.value)
    # Also once wrapped by a caller.
    try:
        try:
            raise caught.value
        except sa.exc.OperationalError as error:
            raise storage.v2.StorageError('cannot read') from error
    except storage.v2.StorageError as wrapped:
        assert db.is_unavailable(wrapped)


def test_a_failed_statement_is_not_unavailability(tmp_path):
    engine = db.create_engine(f'sqlite:///{tmp_path}/ck.sqlite')
    with engine.connect() as connection:
        with pytest.raises(sa.exc.OperationalError) as caught:
            connection.execute(sa.text('SELECT * FROM nowhere'))
    assert not db.is_unavailable(caught.value)
    assert not db.is_unavailable(ValueError('no'))


def test_no_free_connection_is_unavailable(tmp_path):
    conf = make_conf(f'sqlite:///{tmp_path}/ck.sqlite', max_pool_size=1,
                     max_overflow=0, pool_timeout=0)
    engine = db.get_engine(conf)
    with engine.connect():
        with pytest.raises(sa.exc.TimeoutError) as caught:
            engine.connect()
    assert db.is_unavailable(caught.value)


def test_a_relative_sqlite_file_is_the_one_of_the_directory_asked_from(
        tmp_path, monkeypatch):
    # The quick start's URL is relative. Two runs from two directories in
    # one process (the CLI's tests do this) must not share a file through
    # the engine the first one left.
    url = 'sqlite:///ck.sqlite'
    engines = []
    for name in ('one', 'two'):
        (tmp_path / name).mkdir()
        monkeypatch.chdir(tmp_path / name)
        engine = db.get_engine(make_conf(url))
        engines.append(engine)
        with engine.begin() as connection:
            connection.execute(sa.text('CREATE TABLE t (name TEXT)'))
            connection.execute(sa.text('INSERT INTO t VALUES (:name)'),
                               {'name': name})
        assert engine.url.database == str(tmp_path / name / 'ck.sqlite')
    monkeypatch.chdir(tmp_path)
    for name, engine in zip(('one', 'two'), engines):
        with engine.connect() as connection:
            names = connection.execute(sa.text('SELECT name FROM t'))
            assert names.scalars().all() == [name]


@pytest.mark.parametrize('url', ['sqlite://', 'sqlite:///:memory:'])
def test_an_in_memory_sqlite_url_is_kept(url):
    assert db.create_engine(url).url.database in (None, ':memory:')
