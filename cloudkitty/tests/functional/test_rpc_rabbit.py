"""Scope resets and quotes from the API to a processor over a real RabbitMQ.

The API is the WebTest application with the real RPC client; the processor
side is :class:`cloudkitty.orchestrator.processor.RPCServer` built as the
``cloudkitty-rpc`` worker builds it (same database, storage, rating modules
and file locks), run in a thread. Each test has a virtual host of its
own on the machine's broker (:mod:`shared_servers`), deleted after it with
all it holds: parallel runs, leftovers and other users' queues never meet
the test's, and nothing is left on the broker.
"""

import collections
import contextlib
import datetime
import decimal
import threading
import time
import uuid

import pytest
import webtest

from cloudkitty.api import app as api_app
from cloudkitty.api import hooks
from cloudkitty import db
from cloudkitty.db import migration
from cloudkitty import messaging
from cloudkitty.orchestrator import lock as ck_lock
from cloudkitty.orchestrator import processor
from cloudkitty.rating.hash import db as hash_db
from cloudkitty import storage
from cloudkitty.tests.functional.api import conftest as api_fixtures
from cloudkitty.tests.functional import shared_servers
from cloudkitty.tests import waiting
from cloudkitty import timeutils

D = decimal.Decimal
UTC = datetime.timezone.utc
HOUR = datetime.timedelta(hours=1)
#: A virtual host of the test's own on the machine's RabbitMQ (a fixture).
rabbitmq_vhost = shared_servers.rabbitmq_vhost


@pytest.fixture
def conf(tmp_path, rabbitmq_vhost):
    conf = api_fixtures.make_conf(tmp_path, tmp_path / 'cloudkitty.sqlite')
    conf.set_override('usage_path', str(tmp_path / 'usage'),
                      'collector_file')
    conf.set_override('coordination_url', f'file://{tmp_path}/locks',
                      'orchestrator')
    conf.set_override('reset_lock_timeout', 10, 'orchestrator')
    conf.set_override('quote_timeout', 5, 'api')
    messaging.register_opts(conf)
    conf.set_override('transport_url', rabbitmq_vhost.url)
    engine = db.create_engine(conf.database.connection)
    migration.upgrade(engine)
    engine.dispose()
    storage.get_storage(conf).init()
    return conf


@pytest.fixture
def topic():
    return f'cloudkitty-test-{uuid.uuid4().hex[:12]}'


class CountedLocks:
    """The server's scope locks, counting by scope the attempts that found
    the lock taken (``refused``)."""

    def __init__(self, locks):
        self._locks = locks
        self._counting = threading.Lock()
        self.refused = collections.Counter()

    def __getattr__(self, name):
        return getattr(self._locks, name)

    @contextlib.contextmanager
    def hold(self, scope_id):
        with self._locks.hold(scope_id) as held:
            if not held:
                with self._counting:
                    self.refused[scope_id] += 1
            yield held


@pytest.fixture
def processor_rpc(conf, topic):
    """The processor's RPC server, listening, in a thread; yields its
    :class:`CountedLocks`."""
    stop = threading.Event()
    plan = processor.validate(conf)
    parts = processor.build(conf, plan, stop)
    locks = CountedLocks(processor.make_locks(conf, 'RPC-test', stop))
    server = processor.RPCServer(conf, parts, locks, stop, topic=topic)
    thread = threading.Thread(target=server.run_forever, name='rpc-test')
    thread.start()
    try:
        assert server.started.wait(20), 'the RPC server did not start'
        yield locks
    finally:
        stop.set()
        thread.join(20)
        locks.stop()
        parts.engine.dispose()
    assert not thread.is_alive()


def make_api(conf, topic, quote_timeout):
    """The API with the real RPC client, on ``topic``; and its backends."""
    client = messaging.ProcessorClient(
        messaging.get_transport(conf), quote_timeout, owns_transport=True,
        topic=topic)
    backends = hooks.Backends(conf, scope_reset=None, quote=None)
    # What Backends builds from [DEFAULT] transport_url, on the test topic.
    backends.processor_rpc.close()
    backends.processor_rpc = hooks.ProcessorRPC(client)
    backends.scope_reset = backends.processor_rpc.scope_reset
    backends.quote = backends.processor_rpc.quote
    return webtest.TestApp(api_app.setup_app(conf, backends)), backends


@pytest.fixture
def api(conf, topic):
    app, backends = make_api(conf, topic, conf.api.quote_timeout)
    yield app, backends
    backends.processor_rpc.close()
    backends.engine.dispose()


@pytest.fixture(autouse=True)
def no_stray_threads():
    with waiting.no_new_threads(5):
        yield


def wait_for(predicate, timeout=10.0):
    return waiting.wait_for(predicate, timeout)


def stored(backends, scope_id):
    """The period starts of the scope's stored points."""
    frames = backends.storage.retrieve(
        begin=BASE - 10 * HOUR, end=BASE + 100 * HOUR,
        filters={'project_id': scope_id}, paginate=False)['dataframes']
    return sorted(frame.start for frame in frames)


NOW = datetime.datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
BASE = NOW - 48 * HOUR


def fill(backends):
    """p1 and p2 rated for six hours from BASE; their states at BASE+5h."""
    frames = [api_fixtures.frame(BASE + i * HOUR, {'cpu': [
        api_fixtures.point('p1', 1, '1.5'),
        api_fixtures.point('p2', 2, '1.25', type_id='i-2')]})
        for i in range(6)]
    backends.storage.push(frames)
    for scope_id in ('p1', 'p2'):
        backends.scope_state.set_last_processed_timestamp(scope_id,
                                                          BASE + 5 * HOUR)


def state_of(backends, scope_id):
    return backends.scope_state.get_last_processed_timestamp(scope_id)


@pytest.mark.usefixtures('processor_rpc')
def test_scope_reset_through_the_api(api):
    app, backends = api
    fill(backends)
    hours = [BASE + i * HOUR for i in range(6)]
    new = BASE + 2 * HOUR
    response = app.put_json('/v2/scope', {
        'scope_id': 'p1', 'last_processed_timestamp': new.isoformat()},
        status=202)
    assert response.json == {}
    # Rated again from the new timestamp on: the last period kept is the
    # one before it, and the data from it on is deleted.
    assert wait_for(lambda: state_of(backends, 'p1') == new - HOUR)
    assert wait_for(lambda: stored(backends, 'p1') == hours[:2])
    # The other scope is untouched.
    assert state_of(backends, 'p2') == BASE + 5 * HOUR
    assert stored(backends, 'p2') == hours


def test_scope_reset_waits_for_the_scope_being_rated(
        api, conf, processor_rpc):
    app, backends = api
    fill(backends)
    # A rating worker holds p1's lock for a while.
    rater = ck_lock.ScopeLocks(conf.orchestrator.coordination_url,
                               b'rating-worker')
    try:
        with rater.hold('p1') as held:
            assert held
            app.put_json('/v2/scope', {'scope_id': 'p1',
                                       'last_processed_timestamp':
                                       BASE.isoformat()}, status=202)
            # The reset has arrived and found p1's lock taken, and tried
            # it again: it waits, rather than going on without the lock
            # (it would have changed p1 by then) or giving up.
            assert wait_for(lambda: processor_rpc.refused['p1'] >= 2)
            assert state_of(backends, 'p1') == BASE + 5 * HOUR
            assert len(stored(backends, 'p1')) == 6
        assert wait_for(lambda: state_of(backends, 'p1') == BASE - HOUR)
        assert wait_for(lambda: stored(backends, 'p1') == [])
    finally:
        rater.stop()


@pytest.mark.usefixtures('processor_rpc')
def test_quote_priced_by_the_processor_with_current_rules(api, conf):
    app, backends = api
    backends.module_state.set_state('hashmap', True)
    # A rule created after the processor started applies at once.
    rules = hash_db.HashMapDB(backends.engine)
    service = rules.create_service('cpu')['service_id']
    rules.create_mapping('0.1', service_id=service,
                         start=timeutils.utcnow() - HOUR, force=True)
    response = app.post_json('/v1/rating/quote', {'resources': [
        {'service': 'cpu', 'volume': '3'},
        {'service': 'cpu', 'volume': '0.000000000000000000007'},
        {'service': 'ram', 'volume': '5'}]})
    assert response.content_type == 'application/json'
    # Exact: as floats, 3 * 0.1 would be 0.30000000000000004.
    assert D(response.text) == D('0.3000000000000000000007')
    assert response.text == '0.3000000000000000000007'


def test_quote_without_a_processor_is_503(conf, topic):
    app, backends = make_api(conf, topic, 0.5)
    try:
        started = time.monotonic()
        response = app.post_json('/v1/rating/quote', {'resources': [
            {'service': 'cpu', 'volume': '3'}]}, status=503)
        assert time.monotonic() - started < 5
    finally:
        backends.processor_rpc.close()
        backends.engine.dispose()
    assert response.json['faultcode'] == 'Server'
    assert 'no processor answered the quote within 0.5s' in \
        response.json['faultstring']
