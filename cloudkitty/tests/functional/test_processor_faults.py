"""Faults under a running ``cloudkitty-processor``: the database stopped for
a minute, the message broker cut off. Each test ends with the stored data
compared with the expected data exactly (nothing lost, nothing doubled),
and the periods rated read from the log, each exactly once in order
(besides the re-rating a reset asks for).

None stops a server other tests share: the database is a PostgreSQL
cluster of the test's own (:mod:`own_postgresql`); the broker is either
the machine's RabbitMQ (in a virtual host of the test's own,
:mod:`shared_servers`) behind a TCP proxy of the test's
(:class:`TcpProxy`), which is what is cut, or a RabbitMQ node of the
test's own (:mod:`own_rabbitmq`), really stopped and started again: it
comes back without the queues, exchanges and bindings that were not
durable, which the clients must declare again.
"""

import contextlib
import datetime
import socket
import threading
import time

import pytest

from cloudkitty.tests.functional import coordination
from cloudkitty.tests.functional import live_server
from cloudkitty.tests.functional import own_postgresql
from cloudkitty.tests.functional import own_rabbitmq
from cloudkitty.tests.functional import shared_servers
from cloudkitty.tests.functional import harness

HOUR = harness.HOUR
#: How long the database stays down (the issue asks for a minute).
DATABASE_OUTAGE = 60.0


@pytest.fixture
def postgresql():
    """A running PostgreSQL cluster of this test's own."""
    with own_postgresql.running() as cluster:
        yield cluster


def rated(log):
    """``{scope: [period start, ...]}`` in the order the log says they
    were stored."""
    found = {}
    for scope, period in harness.RATED.findall(log.read_text()):
        found.setdefault(scope, []).append(period)
    return found


def hourly(first, last):
    """ISO starts of the periods from ``first`` to ``last``, included."""
    count = (last - first) // HOUR + 1
    return [(first + i * HOUR).isoformat() for i in range(count)]


def restarted(periods):
    """``periods`` split where it goes back in time: ``(before, after)``
    (``after`` empty when it never does)."""
    for i in range(1, len(periods)):
        if periods[i] <= periods[i - 1]:
            return periods[:i], periods[i:]
    return periods, []


def failures(log, scope):
    """The lines of the passes over ``scope`` abandoned for a failure
    (collection or other), not for a stop."""
    return [line for line in harness.lines(log, f'Scope {scope} abandoned')
            if 'stop requested' not in line]


def test_database_stopped_for_a_minute(tmp_path, postgresql):
    scenario = harness.Watched(tmp_path, scopes=3, hours=36, seed=41,
                               url=postgresql.url)
    log = tmp_path / 'ck.log'
    process = scenario.start()
    try:
        # In the middle of the work: the first periods are stored.
        assert scenario.wait_until(
            lambda: sum(map(len, rated(log).values())) >= 5, 60, process,
            poll=0.01)
        postgresql.stop()
        stopped = time.monotonic()

        # Down: every scope fails and is retried; nothing is rated; the
        # endpoint still answers, with the counters.
        assert scenario.wait_until(lambda: all(
            'OperationalError' in ''.join(failures(log, scope))
            for scope in scenario.scopes), 30, process)
        # The one worker logs a period as rated before it goes on: once
        # each scope has failed, the period being recorded as the database
        # stopped, if any, is in the log.
        before = rated(log)
        assert sum(map(len, before.values())) < 3 * scenario.hours
        down = scenario.samples()
        assert down[('cloudkitty_scope_states_up', None)] == 0
        assert not any(name == 'cloudkitty_scope_lag_periods'
                       for name, _ in down)
        assert all(down[('cloudkitty_scope_rating_errors_total', scope)] >= 1
                   for scope in scenario.scopes)
        time.sleep(max(0.0, DATABASE_OUTAGE - (time.monotonic() - stopped)))
        assert rated(log) == before
        postgresql.start()

        assert scenario.wait_until(scenario.caught_up, 120, process)
        assert scenario.wait_until(lambda: all(
            scenario.samples()[('cloudkitty_scope_periods_rated_total', s)]
            == (last - scenario.base) // HOUR
            for s, last in scenario.states().items()), 30, process)
        final = scenario.samples()
    finally:
        code, err = harness.stop(process)
    assert code == 0, err
    assert final[('cloudkitty_scope_states_up', None)] == 1
    states = scenario.states()
    periods = rated(log)
    for scope in scenario.scopes:
        # Every period once, in order, none skipped.
        assert periods[scope] == hourly(scenario.base + HOUR, states[scope])
        assert final[('cloudkitty_scope_rating_errors_total', scope)] == \
            len(failures(log, scope))
        assert final[('cloudkitty_scope_collection_errors_total',
                      scope)] == 0
    expected = scenario.assert_stored_exactly_once()
    print(f'database stopped {DATABASE_OUTAGE:g}s: '
          f'{sum(map(len, periods.values()))} periods rated, '
          f'{len(expected)} points stored once, 0 lost, 0 doubled; '
          f'{sum(len(failures(log, s)) for s in scenario.scopes)} '
          f'passes over a scope abandoned while it was down')


# -- the message broker ---------------------------------------------------------

class TcpProxy:
    """Forwards connections to ``127.0.0.1:<port>`` to ``target``.

    :meth:`cut` closes every connection and the listening socket (new
    connections are refused) as a broker that went down would;
    :meth:`restore` listens again on the same port.
    """

    def __init__(self, target):
        self.target = target
        self.port = live_server.free_port()
        self._lock = threading.Lock()
        self._sockets = set()
        self._listener = None
        self.connections = 0

    def restore(self):
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(('127.0.0.1', self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,),
                         daemon=True, name='proxy-accept').start()

    def cut(self):
        with self._lock:
            listener, self._listener = self._listener, None
            doomed, self._sockets = self._sockets, set()
        # Wakes the accept() of the listener's thread.
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        for sock in doomed:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener):
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self._sockets.update((client, upstream))
                self.connections += 1
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink),
                                 daemon=True, name='proxy-pump').start()

    @staticmethod
    def _pump(source, sink):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class ProxyCut:
    """The machine's broker behind a :class:`TcpProxy`, which is cut; the
    clients use the virtual host ``vhost`` through the proxy."""

    what = 'proxy cut'

    def __init__(self, proxy, vhost):
        self._proxy = proxy
        self.url = vhost.transport_url(proxy.port)

    def take_away(self):
        self._proxy.cut()

    def bring_back(self):
        self._proxy.restore()


class BrokerRestart:
    """A broker of the test's own (:class:`own_rabbitmq.Node`), stopped
    and started again."""

    what = 'broker stopped and started again'

    def __init__(self, node):
        self._node = node
        self.url = node.url

    def take_away(self):
        self._node.stop()

    def bring_back(self):
        self._node.start()


class BrokerOutage(harness.Steered):
    """The steered scenario, its processor and API reaching RabbitMQ at
    ``outage.url`` (through a proxy, or a node of the test's own),
    retrying the broker every second at most."""

    def __init__(self, tmp_path, outage, **kwargs):
        self.outage = outage
        super().__init__(tmp_path, outage.url, **kwargs)

    def write_config(self, name, max_workers=1, debug=False):
        path = super().write_config(name, max_workers, debug)
        path.write_text(path.read_text() + 'rabbit_interval_max = 1\n'
                        '[api]\nquote_timeout = 2\n')
        return path


@pytest.fixture
def proxy():
    proxy = TcpProxy(('127.0.0.1', shared_servers.RABBITMQ_PORT))
    proxy.restore()
    yield proxy
    with contextlib.suppress(OSError, AttributeError):
        proxy.cut()


@pytest.fixture
def rabbitmq():
    """A running RabbitMQ node of this test's own."""
    scripts = own_rabbitmq.scripts()
    if scripts is None:
        coordination.missing(
            f'RabbitMQ ({own_rabbitmq.DEBIAN_SCRIPTS}/rabbitmq-server) is '
            'missing')
    node = own_rabbitmq.Node(scripts)
    try:
        node.start()
        yield node
    finally:
        node.destroy()


#: A virtual host of the test's own on the machine's RabbitMQ (a fixture).
rabbitmq_vhost = shared_servers.rabbitmq_vhost
QUOTE = {'resources': [{'service': 'cpu', 'volume': '3'}]}


@pytest.fixture(params=['proxy-cut', 'broker-restart'])
def broker_outage(request):
    """How the broker goes away and comes back.

    The proxy is cut in front of the machine's broker, whose virtual host
    of the test's is deleted after it; the node of the test's own is
    stopped for real (and destroyed after the test).
    """
    if request.param == 'proxy-cut':
        return ProxyCut(request.getfixturevalue('proxy'),
                        request.getfixturevalue('rabbitmq_vhost'))
    return BrokerRestart(request.getfixturevalue('rabbitmq'))


def test_message_broker_cut_off(tmp_path, broker_outage):
    outage = broker_outage
    scenario = BrokerOutage(tmp_path, outage, scopes=3, hours=8, seed=42,
                            unstarted=1)
    app, backends = scenario.api()
    late, reset, plain = scenario.scopes
    log = tmp_path / 'ck.log'
    # To be activated while the broker is away.
    app.post_json('/v2/scope', {
        'scope_id': late, 'active': False,
        'last_processed_timestamp': (scenario.base + 3 * HOUR).isoformat()})
    # No processor listens yet: a reset is refused, not accepted and lost.
    assert 'no processor listens' in app.put_json('/v2/scope', {
        'scope_id': [reset], 'last_processed_timestamp': (
            scenario.base + 2 * HOUR).isoformat()}, status=503).text
    process = scenario.start()
    try:
        assert scenario.wait_until(
            lambda: 'Serving scope resets' in log.read_text(), 60, process)
        assert app.post_json('/v1/rating/quote', QUOTE).text == '0'
        assert scenario.wait_until(lambda: all(
            scenario.states()[s] >= scenario.last_data_period
            for s in (reset, plain)), 60, process)

        outage.take_away()
        assert scenario.wait_until(
            lambda: 'is unreachable' in log.read_text(), 30, process)
        # Rating goes on: the scope activated now is rated in full.
        app.patch_json('/v2/scope', {'scope_id': late, 'active': True})
        assert scenario.wait_until(scenario.caught_up, 60, process)
        # What needs the broker says so, at once, and changes nothing.
        began = time.monotonic()
        app.put_json('/v2/scope', {
            'scope_id': [reset], 'last_processed_timestamp': (
                scenario.base + 2 * HOUR).isoformat()}, status=503)
        app.post_json('/v1/rating/quote', QUOTE, status=503)
        assert time.monotonic() - began < 20

        reconnected = len(harness.lines(log, 'Reconnected to AMQP'))
        outage.bring_back()
        # A reset sent as soon as the broker is back is refused until a
        # processor listens again (a restarted broker has no queue for it
        # until the processor declares its own again), then accepted,
        # and applied: never accepted and lost.
        refused = []
        assert scenario.wait_until(lambda: reset_accepted(
            app, reset, scenario.base + 4 * HOUR, refused), 30, process,
            poll=0.05)
        assert scenario.wait_until(
            lambda: len(harness.lines(log, 'Reconnected to AMQP'))
            > reconnected, 30, process)
        # Quotes are answered again once the processor consumes again.
        assert scenario.wait_until(lambda: app.post_json(
            '/v1/rating/quote', QUOTE, expect_errors=True).status_int == 200,
            30, process)
        assert scenario.wait_until(
            lambda: f'Scope {reset} (project_id={reset}' in log.read_text(),
            30, process)
        assert scenario.wait_until(scenario.caught_up, 60, process)
    finally:
        code, err = harness.stop(process)
        backends.processor_rpc.close()
        backends.engine.dispose()
    assert code == 0, err
    states = scenario.states()
    periods = rated(log)
    assert periods[plain] == hourly(scenario.base + HOUR, states[plain])
    assert periods[late] == hourly(scenario.base + 4 * HOUR, states[late])
    # Once, up to wherever the processor stood when the reset arrived (at
    # least the last period with data: it may have gone on to the empty
    # periods after it), then again from the reset's timestamp on: the
    # reset tried while the broker was away was never applied.
    first, again = restarted(periods[reset])
    stood = datetime.datetime.fromisoformat(first[-1])
    assert stood >= scenario.last_data_period
    assert first == hourly(scenario.base + HOUR, stood)
    assert again == hourly(scenario.base + 4 * HOUR, states[reset])
    expected = scenario.assert_stored_exactly_once(
        since={late: scenario.base + 4 * HOUR})
    print(f'{outage.what}: {sum(map(len, periods.values()))} periods '
          f'rated ({len(periods[late])} while it was away, '
          f'{len(periods[reset]) - len(periods[plain])} again after a '
          f'reset, {len(refused)} reset(s) refused as it came back), '
          f'{len(expected)} points stored once, 0 lost, 0 doubled')


def reset_accepted(app, scope, timestamp, refused):
    """Ask for ``scope``'s reset; whether it was accepted (202). A refusal
    must be a 503 (kept in ``refused``), nothing else."""
    response = app.put_json('/v2/scope', {
        'scope_id': [scope], 'last_processed_timestamp':
        timestamp.isoformat()}, expect_errors=True)
    if response.status_int == 202:
        return True
    assert response.status_int == 503, response.text
    refused.append(response.text)
    return False
