"""The API's reads of rated data on a streaming replica, and its writes on
the primary, against a PostgreSQL primary and replica of the test's own
(:mod:`~cloudkitty.tests.functional.own_replica`).

The replica's replay is paused to tell the servers apart: what the primary
holds since the pause is not on the replica, so an answer that lacks it
was read on the replica."""

import datetime
import decimal
import logging

import pytest
import sqlalchemy as sa
import webtest

from cloudkitty.api import app as api_app
from cloudkitty.api import hooks
from cloudkitty import dataframe
from cloudkitty import db
from cloudkitty import storage
from cloudkitty.tests.functional.api import conftest as api_conftest
from cloudkitty.tests.functional import own_replica
from cloudkitty.tests import waiting

UTC = datetime.timezone.utc
BEGIN = '2024-05-01T00:00:00+00:00'
END = '2024-06-01T00:00:00+00:00'


@pytest.fixture(scope='module')
def servers():
    with own_replica.running() as (primary, standby):
        yield primary, standby


def make_app(tmp_path, primary, standby, max_replica_lag):
    conf = api_conftest.make_conf(
        tmp_path, 'unused.sqlite',
        connection=(primary.url, 'database'),
        slave_connection=(standby.url, 'database'),
        max_replica_lag=(max_replica_lag, 'api'))
    storage.get_storage(conf).init()
    backends = hooks.Backends(conf, scope_reset=lambda *args: None)
    return webtest.TestApp(api_app.setup_app(conf, backends)), conf


def push(conf, hour, price, month=5):
    start = datetime.datetime(2024, month, 1, hour, tzinfo=UTC)
    storage.get_storage(conf).push([dataframe.DataFrame(
        start, start + datetime.timedelta(hours=1),
        {'cpu': [dataframe.DataPoint('instance', 1, decimal.Decimal(price),
                                     {'project_id': 'p1'}, {})]})], 'p1')


def rate(app, begin=BEGIN, end=END):
    body = app.get('/v2/summary', {'begin': begin, 'end': end}).json
    return body['results'][0][body['columns'].index('rate')] \
        if body['results'] else 0


def replayed_points(standby):
    """The points the replica holds, as it answers itself."""
    engine = db.create_engine(standby.url)
    try:
        with engine.connect() as connection:
            if connection.execute(sa.text(
                    "SELECT to_regclass('rated_points')")).scalar() is None:
                return 0  # the migration is not replayed yet
            return connection.execute(sa.text(
                'SELECT count(*) FROM rated_points')).scalar()
    finally:
        engine.dispose()


def replay(standby, paused):
    engine = db.create_engine(standby.url)
    with engine.connect() as connection:
        connection.execute(sa.text(
            'SELECT pg_wal_replay_pause()' if paused else
            'SELECT pg_wal_replay_resume()'))
    engine.dispose()


def test_summaries_are_read_on_the_replica_writes_go_to_the_primary(
        tmp_path, servers):
    primary, standby = servers
    app, conf = make_app(tmp_path, primary, standby, 3600)
    push(conf, 0, '1.5')
    # Replayed on the replica itself (the API could answer from the
    # primary while the replica has not replayed a transaction yet).
    assert waiting.wait_for(lambda: replayed_points(standby) == 1, 15)
    assert waiting.wait_for(lambda: rate(app) == 1.5, 15)
    replay(standby, paused=True)
    try:
        push(conf, 1, '2')
        app.post_json('/v2/dataframes', {'dataframes': [{
            'period': {'begin': '2024-05-01T02:00:00+00:00',
                       'end': '2024-05-01T03:00:00+00:00'},
            'usage': {'cpu': [{'vol': {'unit': 'instance', 'qty': 1},
                               'rating': {'price': 4},
                               'groupby': {'project_id': 'p1'},
                               'metadata': {}}]}}]}, status=204)
        # Both writes are on the primary, none read from there.
        assert storage.get_storage(conf).total(
            begin=datetime.datetime(2024, 5, 1, tzinfo=UTC),
            end=datetime.datetime(2024, 6, 1, tzinfo=UTC))['results'][0][
                'rate'] == decimal.Decimal('7.5')
        for _ in range(3):
            assert rate(app) == 1.5
            frames = app.get('/v2/dataframes',
                             {'begin': BEGIN, 'end': END}).json
            assert frames['total'] == 1
    finally:
        replay(standby, paused=False)
    assert waiting.wait_for(lambda: rate(app) == 7.5, 15)


def test_a_stopped_replica_is_bypassed_never_a_5xx(tmp_path, servers,
                                                   caplog):
    # Data of its own (June): the tests of this module may run in
    # different workers, each with its servers.
    june = ('2024-06-01T00:00:00+00:00', '2024-07-01T00:00:00+00:00')
    primary, standby = servers
    app, conf = make_app(tmp_path, primary, standby, 30)
    push(conf, 0, '2.25', month=6)
    assert waiting.wait_for(lambda: rate(app, *june) == 2.25, 15)
    standby.stop()
    try:
        for _ in range(5):
            assert rate(app, *june) == 2.25
        assert app.get('/v1/report/total', {
            'begin': june[0], 'end': june[1]}).json == '2.25'
        assert any('it is down' in r.getMessage() for r in caplog.records
                   if r.levelno == logging.WARNING)
    finally:
        standby.start()
