"""The read router of :mod:`cloudkitty.db.replica` with fake engines and a
fake clock: which engine serves a read as the replica's lag and health
change, how long a verdict is kept, what is logged. (Against a real
PostgreSQL primary and streaming replica: tests/functional/
test_replica.py.)"""

import logging
import threading
import types

from oslo_config import cfg
import pytest
import sqlalchemy as sa

from cloudkitty import conf as ck_conf
from cloudkitty.db import replica

LOGGER = 'cloudkitty.db.replica'


class Clock:
    """A settable clock: ``clock()`` is ``clock.now`` (seconds)."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class Engine:
    """The part of an engine the router uses; ``error``, when set, is
    raised by :meth:`connect`."""

    def __init__(self, host, dialect='postgresql', driver='psycopg'):
        self.dialect = types.SimpleNamespace(name=dialect, driver=driver)
        self.url = sa.engine.make_url(f'{dialect}+{driver}://{host}/ck')
        self.error = None

    def connect(self):
        if self.error is not None:
            raise self.error
        return Connection(self)


class Connection:
    def __init__(self, engine):
        self.engine = engine

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False


class Lag:
    """A lag query answering ``value`` (or raising it), counting calls."""

    def __init__(self, value=0.0):
        self.value = value
        self.calls = 0

    def __call__(self, connection):
        assert connection.engine.url.host == 'replica'
        self.calls += 1
        if isinstance(self.value, Exception):
            raise self.value
        return self.value


def unreachable():
    return sa.exc.OperationalError('SELECT 1', {}, OSError('refused'),
                                   connection_invalidated=True)


@pytest.fixture
def setup():
    clock, lag = Clock(), Lag()
    primary, standby = Engine('primary'), Engine('replica')
    router = replica.ReadRouter(primary, standby, max_lag=30, clock=clock,
                                check_every=1.0, lag_query=lag)
    return types.SimpleNamespace(clock=clock, lag=lag, primary=primary,
                                 replica=standby, router=router)


def test_without_a_replica_the_primary_serves_every_read():
    primary = Engine('primary')
    router = replica.ReadRouter(primary, lag_query=Lag())
    assert router.engine_for_read() is primary
    assert router.connect().engine is primary


def test_a_replica_within_the_lag_serves_and_is_checked_once_a_second(setup):
    setup.lag.value = 29.9
    for _ in range(5):
        assert setup.router.engine_for_read() is setup.replica
    assert setup.lag.calls == 1
    setup.clock.now += 0.999
    assert setup.router.engine_for_read() is setup.replica
    assert setup.lag.calls == 1
    setup.clock.now += 0.001
    assert setup.router.connect().engine is setup.replica
    assert setup.lag.calls == 2


def test_a_lag_of_exactly_max_replica_lag_still_serves(setup):
    setup.lag.value = 30.0
    assert setup.router.engine_for_read() is setup.replica


def test_a_lagging_replica_is_bypassed_until_it_catches_up(setup, caplog):
    caplog.set_level(logging.INFO, LOGGER)
    assert setup.router.engine_for_read() is setup.replica
    setup.lag.value = 45.25
    # The verdict of the last check holds until it is a second old.
    setup.clock.now += 0.5
    assert setup.router.engine_for_read() is setup.replica
    setup.clock.now += 0.5
    assert setup.router.engine_for_read() is setup.primary
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [(
        'WARNING', 'Reads of postgresql+psycopg://primary/ck go to the '
        'primary: its replica postgresql+psycopg://replica/ck is bypassed, '
        'it lags 45.2 s (more than [api] max_replica_lag, 30 s)')]
    # Still lagging: no new line for each check.
    setup.lag.value = 50
    setup.clock.now += 1
    assert setup.router.engine_for_read() is setup.primary
    assert len(caplog.records) == 1
    setup.lag.value = 0.0
    setup.clock.now += 1
    assert setup.router.engine_for_read() is setup.replica
    assert [(r.levelname, r.getMessage()) for r in caplog.records[1:]] == [(
        'INFO', 'Reads of postgresql+psycopg://primary/ck go to its '
        'replica postgresql+psycopg://replica/ck again (lag 0.0 s)')]


def test_a_replica_down_is_bypassed_with_a_warning_not_an_error(
        setup, caplog):
    setup.replica.error = unreachable()
    assert setup.router.engine_for_read() is setup.primary
    assert setup.router.connect().engine is setup.primary
    setup.clock.now += 1
    assert setup.router.engine_for_read() is setup.primary
    warnings = [r.getMessage() for r in caplog.records
                if r.levelname == 'WARNING']
    assert len(warnings) == 1
    assert 'replica postgresql+psycopg://replica/ck is bypassed, it is ' \
           'down (' in warnings[0]
    assert 'refused' in warnings[0]
    setup.replica.error = None
    setup.clock.now += 1
    assert setup.router.engine_for_read() is setup.replica


@pytest.mark.parametrize('lag, why', [
    (None, 'it cannot tell its lag (replication stopped, or nothing '
           'replayed yet)'),
    (sa.exc.ProgrammingError('SHOW REPLICA STATUS', {},
                             OSError('denied')),
     'its lag cannot be read ((builtins.OSError) denied'),
])
def test_a_replica_that_cannot_tell_its_lag_is_bypassed(setup, caplog, lag,
                                                        why):
    setup.lag.value = lag
    assert setup.router.engine_for_read() is setup.primary
    [record] = caplog.records
    assert record.levelname == 'WARNING'
    assert f'is bypassed, {why}' in record.getMessage()


def test_a_replica_refusing_a_read_connection_hands_the_primary_s(
        setup, caplog):
    assert setup.router.engine_for_read() is setup.replica
    # Down since its last check: the read is not failed for it.
    setup.replica.error = unreachable()
    assert setup.router.connect().engine is setup.primary
    assert 'is bypassed, it is down' in caplog.records[0].getMessage()
    # ... and the next reads of this second go to the primary at once.
    assert setup.router.engine_for_read() is setup.primary
    assert setup.lag.calls == 1


def test_a_primary_refusing_a_read_connection_raises(setup):
    setup.lag.value = 60
    setup.primary.error = unreachable()
    with pytest.raises(sa.exc.OperationalError):
        setup.router.connect()


def test_other_reads_keep_the_last_verdict_while_one_checks():
    clock, primary, standby = Clock(), Engine('primary'), Engine('replica')
    started, release = threading.Event(), threading.Event()
    lags = [0.0]

    def lag_query(connection):
        if lags:
            return lags.pop()
        started.set()
        assert release.wait(10)
        return 99.0
    router = replica.ReadRouter(primary, standby, max_lag=30, clock=clock,
                                lag_query=lag_query)
    assert router.engine_for_read() is standby
    clock.now += 1
    checker = threading.Thread(target=router.engine_for_read)
    checker.start()
    try:
        assert started.wait(10)
        assert router.engine_for_read() is standby
    finally:
        release.set()
        checker.join(10)
    assert router.engine_for_read() is primary


@pytest.mark.parametrize('primary, standby, message', [
    (Engine('primary'), Engine('replica', 'mysql', 'pymysql'),
     'the replica (mysql+pymysql) must be reached as its primary is '
     '(postgresql+psycopg)'),
    (Engine('primary'), Engine('replica', 'postgresql', 'psycopg2'),
     'the replica (postgresql+psycopg2) must be reached as its primary is '
     '(postgresql+psycopg)'),
    (Engine('primary', 'sqlite', 'pysqlite'),
     Engine('replica', 'sqlite', 'pysqlite'),
     'sqlite has no replica whose lag the service can read'),
])
def test_a_replica_of_another_kind_is_refused(primary, standby, message):
    with pytest.raises(ValueError) as raised:
        replica.ReadRouter(primary, standby)
    assert str(raised.value) == message


class StatusConnection:
    """Answers ``SHOW REPLICA STATUS`` with ``rows``."""

    def __init__(self, rows):
        self.rows = rows
        self.statements = []

    def exec_driver_sql(self, statement):
        self.statements.append(statement)
        return types.SimpleNamespace(mappings=lambda: types.SimpleNamespace(
            all=lambda: self.rows))


@pytest.mark.parametrize('rows, lag', [
    ([], 0.0),
    ([{'Seconds_Behind_Master': 12, 'Slave_SQL_Running': 'Yes'}], 12.0),
    ([{'Seconds_Behind_Source': 7}], 7.0),
    ([{'Seconds_Behind_Master': None, 'Slave_SQL_Running': 'No'}], None),
])
def test_the_mariadb_lag_is_seconds_behind_master(rows, lag):
    for dialect in ('mariadb', 'mysql'):
        connection = StatusConnection(rows)
        assert replica.LAG_QUERIES[dialect](connection) == lag
        assert connection.statements == ['SHOW REPLICA STATUS']


def make_conf(**groups):
    conf = ck_conf.register_all(cfg.ConfigOpts())
    conf([], project='cloudkitty', default_config_files=[])
    for group, options in groups.items():
        for name, value in options.items():
            conf.set_override(name, value, group)
    return conf


PRIMARY = 'postgresql+psycopg://ck@primary/ck'
RATED = 'postgresql+psycopg://ck@rated/ck'


@pytest.mark.parametrize('groups, expected', [
    ({}, None),
    ({'database': {'slave_connection': 'postgresql://ck@standby/ck'}},
     'standby'),
    # The rated data lives apart: [database]'s replica is not its replica.
    ({'database': {'slave_connection': 'postgresql://ck@standby/ck'},
      'storage_sqlalchemy': {'connection': RATED}}, None),
    ({'database': {'slave_connection': 'postgresql://ck@standby/ck'},
      'storage_sqlalchemy': {
          'connection': RATED,
          'slave_connection': 'postgresql://ck@rated-standby/ck'}},
     'rated-standby'),
])
def test_the_replica_of_the_rated_data_comes_from_the_configuration(
        groups, expected):
    conf = make_conf(api={'max_replica_lag': 4.5}, **groups)
    primary = sa.create_engine(PRIMARY)
    router = replica.for_storage(conf, primary)
    assert router.primary is primary
    if expected is None:
        assert router.replica is None
    else:
        # postgresql:// URLs are reached with psycopg (3), as the
        # primary's are.
        assert (router.replica.url.host, router.replica.dialect.driver) == (
            expected, 'psycopg')
    assert router.max_lag == 4.5


def test_max_replica_lag_defaults_to_30_seconds():
    assert make_conf().api.max_replica_lag == 30.0
