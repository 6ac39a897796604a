"""Reads on a replica, against a real primary and replica that the tests
start (:mod:`~cloudkitty.tests.functional.own_replica`): PostgreSQL
streaming replication, and MariaDB's.

The router of :mod:`cloudkitty.db.replica` is built from the
configuration (``[database] connection`` and ``slave_connection``,
``[api] max_replica_lag``) by :func:`~cloudkitty.db.replica.for_storage`,
with a clock of the test's own, advanced to make a verdict due. Which
server answered a read is told by the server itself
(``inet_server_port()`` and ``pg_is_in_recovery()``, ``@@port``): a
replica takes no writes, so no row can prove it. On PostgreSQL, rated
data is pushed on the primary by the storage backend.
"""

import datetime
import decimal
import logging
import re

from oslo_config import cfg
import pytest
import sqlalchemy as sa

from cloudkitty import conf as ck_conf
from cloudkitty import dataframe
from cloudkitty import db
from cloudkitty.db import replica
from cloudkitty import storage
from cloudkitty.tests.functional import own_replica
from cloudkitty.tests.unit import test_db_replica
from cloudkitty.tests import waiting

UTC = datetime.timezone.utc
LOGGER = 'cloudkitty.db.replica'
#: Seconds any condition below is waited for, at most.
DEADLINE = 15


@pytest.fixture(scope='module')
def servers():
    """``(primary, replica)``: this module's own, the rated-data tables
    created on the primary (and so on the replica)."""
    with own_replica.running() as (primary, standby):
        storage.get_storage(make_conf(primary, standby)).init()
        # Replayed on the replica (seconds on a loaded machine): a read of
        # it before would find no table, not an old count.
        engine = db.create_engine(standby.url, poolclass=sa.pool.NullPool)
        try:
            assert waiting.wait_for(lambda: _has_points_table(engine),
                                    DEADLINE)
        finally:
            engine.dispose()
        yield primary, standby


def _has_points_table(engine):
    with engine.connect() as connection:
        return connection.execute(sa.text(
            "SELECT to_regclass('rated_points') IS NOT NULL")).scalar()


class Clock(test_db_replica.Clock):
    def tick(self):
        """Make the router's verdict due; return ``True``."""
        self.now += replica.CHECK_EVERY
        return True


def make_conf(primary, standby, max_replica_lag=30.0):
    conf = ck_conf.register_all(cfg.ConfigOpts())
    conf([], project='cloudkitty', default_config_files=[])
    conf.set_override('connection', primary.url, 'database')
    conf.set_override('slave_connection', standby.url, 'database')
    conf.set_override('max_replica_lag', max_replica_lag, 'api')
    return conf


def make_router(servers, max_replica_lag=30.0):
    conf = make_conf(*servers, max_replica_lag)
    clock = Clock()
    router = replica.for_storage(conf, db.get_engine(conf), clock)
    return conf, clock, router


def push(conf, hour, points=1):
    """Push ``points`` points of the hour ``hour`` of 2024-05-01 on the
    primary."""
    start = datetime.datetime(2024, 5, 1, hour, tzinfo=UTC)
    storage.get_storage(conf).push([dataframe.DataFrame(
        start, start + datetime.timedelta(hours=1),
        {'cpu': [dataframe.DataPoint('instance', 1, decimal.Decimal('0.5'),
                                     {'project_id': 'p1', 'id': str(n)}, {})
                 for n in range(points)]})], 'p1')


def answer(router):
    """``(port, in recovery, points stored)`` as the server the router
    connects a read to answers."""
    with router.connect() as connection:
        return tuple(connection.execute(sa.text(
            'SELECT inet_server_port(), pg_is_in_recovery(), '
            '(SELECT count(*) FROM rated_points)')).one())


def points(engine):
    with engine.connect() as connection:
        return connection.execute(sa.text(
            'SELECT count(*) FROM rated_points')).scalar()


def on_replica(router, statement):
    with router.replica.connect() as connection:
        return connection.execute(sa.text(statement)).scalar()


def test_rated_data_written_on_the_primary_is_read_on_the_replica(servers):
    primary, standby = servers
    conf, clock, router = make_router(servers)
    before = points(router.primary)
    push(conf, 0, points=3)
    assert points(router.primary) == before + 3
    # Streamed within the deadline, and read where it was streamed to.
    assert waiting.wait_for(lambda: clock.tick() and answer(router) == (
        standby.port, True, before + 3), DEADLINE), answer(router)
    assert router.engine_for_read() is router.replica
    with router.primary.connect() as connection:
        assert connection.execute(sa.text(
            'SELECT inet_server_port()')).scalar() == primary.port


def test_a_caught_up_replica_of_an_idle_primary_serves_whatever_the_age(
        servers):
    _, standby = servers
    conf, clock, router = make_router(servers, max_replica_lag=0.5)
    push(conf, 1)
    # Nothing written since: the last transaction replayed grows older
    # than max_replica_lag, the replica has replayed all it received.
    assert waiting.wait_for(lambda: on_replica(
        router, "SELECT now() - pg_last_xact_replay_timestamp() > "
                "interval '0.5 s'"), DEADLINE)
    assert waiting.wait_for(lambda: clock.tick() and answer(router)[:2] == (
        standby.port, True), DEADLINE)


def test_a_lagging_replica_is_bypassed_until_it_catches_up(servers, caplog):
    primary, standby = servers
    conf, clock, router = make_router(servers, max_replica_lag=0.5)
    caplog.set_level(logging.INFO, LOGGER)
    assert waiting.wait_for(lambda: clock.tick() and router.engine_for_read()
                            is router.replica, DEADLINE)
    on_replica(router, 'SELECT pg_wal_replay_pause()')
    try:
        push(conf, 2, points=2)
        stored = points(router.primary)
        # Received, not replayed: the lag grows past 0.5 s.
        assert waiting.wait_for(lambda: clock.tick() and (
            router.engine_for_read() is router.primary), DEADLINE)
        assert answer(router) == (primary.port, False, stored)
        assert points(router.replica) == stored - 2
        [warning] = [r.getMessage() for r in caplog.records
                     if r.levelname == 'WARNING']
        assert f'its replica {router.replica.url.render_as_string()} is ' \
               f'bypassed, it lags ' in warning
        assert 'more than [api] max_replica_lag, 0.5 s)' in warning
    finally:
        on_replica(router, 'SELECT pg_wal_replay_resume()')
    assert waiting.wait_for(lambda: clock.tick() and answer(router) == (
        standby.port, True, stored), DEADLINE)
    assert 'go to its replica' in caplog.records[-1].getMessage()


def test_a_stopped_replica_is_bypassed_with_a_warning_not_an_error(
        servers, caplog):
    primary, standby = servers
    conf, clock, router = make_router(servers)
    assert waiting.wait_for(lambda: clock.tick() and answer(router)[:2] == (
        standby.port, True), DEADLINE)
    stored = points(router.primary)
    standby.stop()
    try:
        # Stopped since the last check: its pooled connection fails the
        # check before use, and the read goes to the primary.
        assert answer(router) == (primary.port, False, stored)
        clock.tick()
        assert router.engine_for_read() is router.primary
        assert answer(router) == (primary.port, False, stored)
        [warning] = [r for r in caplog.records if r.name == LOGGER]
        assert warning.levelname == 'WARNING'
        assert 'is bypassed, it is down (' in warning.getMessage()
    finally:
        standby.start()
    assert waiting.wait_for(lambda: clock.tick() and answer(router)[:2] == (
        standby.port, True), DEADLINE)


def test_a_server_that_is_no_replica_is_never_behind(
        servers, mariadb_servers):
    for server in (servers[0], mariadb_servers[0]):
        engine = db.create_engine(server.url)
        try:
            with engine.connect() as connection:
                assert replica.LAG_QUERIES[engine.dialect.name](
                    connection) == 0.0
        finally:
            engine.dispose()


# -- MariaDB ----------------------------------------------------------------

@pytest.fixture(scope='module')
def mariadb_servers():
    """``(primary, replica)``: this module's own MariaDB servers, a table
    ``probe`` made on the primary (and so on the replica)."""
    with own_replica.running_mariadb() as (primary, standby):
        primary.execute('CREATE TABLE ck.probe (id INT PRIMARY KEY)')
        yield primary, standby


def mariadb_answer(router):
    """``(port, rows of probe)`` as the server the router connects a read
    to answers."""
    with router.connect() as connection:
        return tuple(connection.exec_driver_sql(
            'SELECT @@port, (SELECT count(*) FROM probe)').one())


def test_a_lagging_mariadb_replica_is_bypassed_until_it_catches_up(
        mariadb_servers, caplog):
    primary, standby = mariadb_servers
    _, clock, router = make_router(mariadb_servers, max_replica_lag=1)
    assert waiting.wait_for(lambda: clock.tick() and mariadb_answer(
        router) == (standby.port, 0), DEADLINE)
    standby.delay(3600)
    try:
        primary.execute('INSERT INTO ck.probe VALUES (1)')
        # Seconds_Behind_Master grows a second at a time past 1.
        assert waiting.wait_for(lambda: clock.tick() and (
            router.engine_for_read() is router.primary), DEADLINE)
        assert mariadb_answer(router) == (primary.port, 1)
        [warning] = [r.getMessage() for r in caplog.records
                     if r.levelname == 'WARNING']
        assert re.search(r'is bypassed, it lags [2-9]\.0 s \(more than '
                         r'\[api\] max_replica_lag, 1 s\)$',
                         warning), warning
    finally:
        standby.delay(0)
    assert waiting.wait_for(lambda: clock.tick() and mariadb_answer(
        router) == (standby.port, 1), DEADLINE)


def test_a_mariadb_replica_not_replaying_is_bypassed(mariadb_servers,
                                                     caplog):
    primary, standby = mariadb_servers
    _, clock, router = make_router(mariadb_servers)
    assert waiting.wait_for(lambda: clock.tick() and (
        router.engine_for_read() is router.replica), DEADLINE)
    standby.execute('STOP REPLICA SQL_THREAD')
    try:
        clock.tick()
        assert mariadb_answer(router)[0] == primary.port
        [warning] = [r.getMessage() for r in caplog.records
                     if r.levelname == 'WARNING']
        assert warning.endswith('is bypassed, it cannot tell its lag '
                                '(replication stopped, or nothing replayed '
                                'yet)')
    finally:
        standby.execute('START REPLICA SQL_THREAD')
    assert waiting.wait_for(lambda: clock.tick() and (
        router.engine_for_read() is router.replica), DEADLINE)
