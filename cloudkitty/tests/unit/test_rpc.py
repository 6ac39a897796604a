"""Scope resets and quotes over oslo.messaging's in-memory ``fake:/``
driver."""

import contextlib
import datetime
import decimal
import importlib
import json
import logging
import threading
import time

from oslo_config import cfg
import oslo_messaging
from oslo_messaging import opts as messaging_opts
import pytest

from cloudkitty import dataframe
from cloudkitty import messaging
from cloudkitty.orchestrator import rpc
from cloudkitty import rating
from cloudkitty import testing
from cloudkitty.tests import waiting

D = decimal.Decimal
UTC = datetime.timezone.utc
T0 = datetime.datetime(2024, 5, 1, 12, tzinfo=UTC)
SCOPE = {'scope_id': 's1', 'scope_key': 'project_id', 'fetcher': 'source',
         'collector': 'file'}


def make_frame():
    frame = dataframe.DataFrame(T0, T0 + datetime.timedelta(hours=1))
    frame.add_point(dataframe.DataPoint(
        'instance', D('0.1'), D('0.000000000000000000001'),
        {'project_id': 's1', 'id': 'i-1'}, {'flavor': 'm1'}), 'cpu')
    frame.add_point(dataframe.DataPoint(
        'MiB', D('12345678901234567890.123456789'), 0, {}, {}, 'disk'),
        'image.size')
    return frame


class Multiply(rating.RatingProcessorBase):
    """Adds qty * factor to each point's price, noting what it was asked."""

    def __init__(self, name, factor):
        super().__init__()
        self.module_name = name
        self.factor = D(factor)
        self.reloaded = []
        self.quoted = 0

    def reload_config(self, start=None):
        self.reloaded.append(start)

    def process(self, data):
        priced = dataframe.DataFrame(data.start, data.end)
        for type_, point in data.iterpoints():
            priced.add_point(point.set_price(
                point.price + point.qty * self.factor), type_)
        return priced

    def quote(self, data):
        self.quoted += 1
        return self.process(data)


class FakeLocks:
    """Each scope's lock is busy for its first ``busy[scope]`` attempts."""

    def __init__(self, busy=None):
        self.busy = dict(busy or {})
        self.attempts = {}
        self.held = set()
        self.starts = 0

    def start(self):
        self.starts += 1
        return True

    @contextlib.contextmanager
    def hold(self, scope_id):
        self.attempts[scope_id] = self.attempts.get(scope_id, 0) + 1
        if self.attempts[scope_id] <= self.busy.get(scope_id, 0):
            yield False
            return
        self.held.add(scope_id)
        try:
            yield True
        finally:
            self.held.discard(scope_id)


class Events(list):
    """The journal of the doubles: each write noted with whether its
    scope's lock was held then."""

    def __init__(self, locks):
        super().__init__()
        self.locks = locks

    def append(self, event):
        super().append((*event, event[1] in self.locks.held))


def make_endpoint(busy=None, lock_timeout=5.0, states=None,
                  scope_error=None, storage_error=None, stop=None):
    locks = FakeLocks(busy)
    events = Events(locks)
    modules = {'double': Multiply('double', 2), 'tenth': Multiply('tenth',
                                                                  '0.1'),
               'off': Multiply('off', 1000)}
    states = states or {'double': {'enabled': True, 'priority': 1},
                        'tenth': {'enabled': True, 'priority': 5},
                        'off': {'enabled': False, 'priority': 9}}
    storage = testing.Storage(events)
    storage.fail = storage_error
    state = testing.ScopeState(events)
    state.fail = scope_error
    endpoint = rpc.ProcessorEndpoint(
        storage, state, modules, testing.ModuleState(states), locks,
        lock_timeout, 3600, stop)
    return endpoint, events, modules


@pytest.fixture
def conf():
    conf = cfg.ConfigOpts()
    conf([], project='cloudkitty', default_config_files=[])
    messaging.register_opts(conf)
    conf.set_override('transport_url', 'fake:/')
    return conf


@pytest.fixture
def transport(conf):
    transport = messaging.get_transport(conf)
    yield transport
    transport.cleanup()


@contextlib.contextmanager
def serving(transport, endpoint):
    server = rpc.get_server(transport, 'test-host', endpoint)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        server.wait()


@pytest.fixture(autouse=True)
def no_stray_threads():
    with waiting.no_new_threads(2):
        yield


def wait_for(predicate, timeout=5.0):
    return waiting.wait_for(predicate, timeout)


# Options -------------------------------------------------------------------

def test_transport_url_counts_only_when_set():
    conf = cfg.ConfigOpts()
    conf([], project='cloudkitty', default_config_files=[])
    messaging.register_opts(conf)
    # oslo.messaging's own default ("rabbit://") is no configuration.
    assert not messaging.is_configured(conf)
    conf.set_override('transport_url', 'rabbit://h:5672/')
    assert messaging.is_configured(conf)
    # Registering twice is harmless.
    messaging.register_opts(conf)
    assert conf.transport_url == 'rabbit://h:5672/'


@pytest.mark.parametrize('where, expected', [
    ('nowhere', False),
    ('file', True),
    ('directory', True),
    ('environment', True),
])
def test_asking_registers_nothing(tmp_path, monkeypatch, where, expected):
    """Unregistered (an API without RPC), the option is read again from
    the files, directories and environment ``conf`` was parsed from."""
    (tmp_path / 'ck.conf').write_text('[DEFAULT]\ndebug = true\n')
    (tmp_path / 'ck.conf.d').mkdir()
    url = 'rabbit://h:5672/'
    if where == 'file':
        (tmp_path / 'ck.conf').write_text(f'[DEFAULT]\ntransport_url = {url}\n')
    elif where == 'directory':
        (tmp_path / 'ck.conf.d' / 'rpc.conf').write_text(
            f'[DEFAULT]\ntransport_url = {url}\n')
    elif where == 'environment':
        monkeypatch.setenv('OS_DEFAULT__TRANSPORT_URL', url)
    conf = cfg.ConfigOpts()
    conf(['--config-file', str(tmp_path / 'ck.conf'),
          '--config-dir', str(tmp_path / 'ck.conf.d')],
         project='cloudkitty', default_config_files=[])
    assert messaging.is_configured(conf) is expected
    assert 'transport_url' not in conf


def test_the_option_groups_oslo_messaging_keeps_global_are_still_there():
    """The adapter of :func:`cloudkitty.messaging.register_opts`: each
    group is still defined where it reaches for it, still left out of
    oslo.messaging's public ``list_opts()`` (else the adapter can go), and
    registered on the conf it is given, where the RPC client reads it."""
    public = {group for group, _ in messaging_opts.list_opts()}
    conf = cfg.ConfigOpts()
    conf([], project='cloudkitty', default_config_files=[])
    messaging.register_opts(conf)
    for module_name, group in messaging.GLOBAL_ONLY_OPTS:
        options = getattr(importlib.import_module(module_name), group)
        assert options and all(isinstance(o, cfg.Opt) for o in options)
        assert group not in public
        assert {o.dest for o in options} <= set(conf[group])
    transport = messaging.get_transport(conf, 'fake:/')
    try:
        messaging.ProcessorClient(transport, 1)
    finally:
        transport.cleanup()


# The wire format -----------------------------------------------------------

def test_frames_travel_as_json_native_values_and_come_back_exact():
    frame = make_frame()
    wire = messaging.frame_to_wire(frame)
    # What the JSON of the drivers does to it changes nothing...
    assert json.loads(json.dumps(wire)) == wire

    # ...and no number travels as a float.
    def floats(value):
        if isinstance(value, dict):
            return [f for v in value.values() for f in floats(v)]
        if isinstance(value, list):
            return [f for v in value for f in floats(v)]
        return [value] if isinstance(value, float) else []
    assert floats(wire) == []
    assert wire['usage']['cpu'][0]['vol']['qty'] == '0.1'
    assert wire['usage']['cpu'][0]['rating']['price'] == \
        '1E-21'
    back = messaging.frame_from_wire(json.loads(json.dumps(wire)))
    assert back == frame
    assert [p.qty for _t, p in back.iterpoints()] == [
        D('0.1'), D('12345678901234567890.123456789')]
    assert [p.description for _t, p in back.iterpoints()] == [None, 'disk']


@pytest.mark.parametrize('qty, price', [(0.1, '0'), ('0.1', 0.5)])
def test_a_float_quantity_or_price_is_refused(qty, price):
    wire = messaging.frame_to_wire(make_frame())
    wire['usage']['cpu'][0]['vol']['qty'] = qty
    wire['usage']['cpu'][0]['rating']['price'] = price
    with pytest.raises(ValueError, match='as strings'):
        messaging.frame_from_wire(wire)


def test_prices_travel_as_strings():
    assert messaging.price_from_wire('0.30000000000000000001') == \
        D('0.30000000000000000001')
    for bad in (0.3, 3, None):
        with pytest.raises(ValueError):
            messaging.price_from_wire(bad)
    with pytest.raises(ValueError):
        messaging.price_from_wire('NaN')


# Quotes --------------------------------------------------------------------

def test_price_quote_runs_the_enabled_modules_by_priority_with_current_rules():
    endpoint, _events, modules = make_endpoint()
    frame = make_frame()
    total = rpc.price_quote(frame, modules,
                            endpoint._module_state.get_all())
    # tenth (priority 5) then double (1) on the previous output; off never.
    qty = D('0.1') + D('12345678901234567890.123456789')
    assert total == D('0.000000000000000000001') + qty * D('0.1') + qty * 2
    assert modules['tenth'].reloaded == [T0]
    assert modules['double'].reloaded == [T0]
    assert modules['off'].reloaded == [] and modules['off'].quoted == 0


def test_quote_over_the_transport_is_an_exact_decimal(transport):
    endpoint, _events, modules = make_endpoint()
    client = messaging.ProcessorClient(transport, quote_timeout=5)
    with serving(transport, endpoint):
        price = client.quote(make_frame())
    qty = D('0.1') + D('12345678901234567890.123456789')
    assert price == D('0.000000000000000000001') + qty * D('2.1')
    assert isinstance(price, D)
    assert modules['tenth'].quoted == 1


def test_quote_without_a_processor_times_out(transport):
    client = messaging.ProcessorClient(transport, quote_timeout=0.2)
    started = time.monotonic()
    with pytest.raises(messaging.ProcessorUnavailable, match='0.2s'):
        client.quote(make_frame())
    assert time.monotonic() - started < 3


def test_a_failing_quote_is_reported(transport, caplog):
    endpoint, _events, modules = make_endpoint()

    def boom(frame):
        raise RuntimeError('rules table missing')
    modules['double'].quote = boom
    client = messaging.ProcessorClient(transport, quote_timeout=5)
    with serving(transport, endpoint), pytest.raises(
            messaging.QuoteFailed, match='^RuntimeError: rules table missing$'):
        client.quote(make_frame())
    assert 'Quote failed' in caplog.text


@pytest.mark.parametrize('answer, words', [
    ({'price': 0.1}, 'string'), ('0.1', 'unexpected answer'),
    ({}, 'string')])
def test_a_malformed_answer_is_refused(transport, answer, words):
    class OddEndpoint:
        target = rpc.ProcessorEndpoint.target

        def quote(self, ctxt, frame):
            return answer
    client = messaging.ProcessorClient(transport, quote_timeout=5)
    with serving(transport, OddEndpoint()), pytest.raises(
            messaging.QuoteFailed, match=words):
        client.quote(make_frame())


# Scope resets --------------------------------------------------------------

def test_reset_casts_one_message_per_scope_and_the_processor_applies_it(
        transport):
    endpoint, events, _modules = make_endpoint()
    client = messaging.ProcessorClient(transport, quote_timeout=5)
    other = dict(SCOPE, scope_id='s2', collector='prometheus')
    with serving(transport, endpoint):
        client.reset_state([SCOPE, other], T0)
        assert wait_for(lambda: len(events) == 4)
    parts = {'scope_key': 'project_id', 'fetcher': 'source'}
    # Rated again from T0: the last period kept is the one before; each
    # scope under its lock, its state first, then its data from T0 on.
    before = T0 - datetime.timedelta(hours=1)
    for scope_id in ('s1', 's2'):
        assert [e for e in events if e[1] == scope_id] == [
            ('state', scope_id, before, True),
            ('delete', scope_id, T0, None, True)]
    assert endpoint._scope_state.parts == {
        's1': dict(parts, collector='file'),
        's2': dict(parts, collector='prometheus')}


def test_a_reset_nobody_listens_to_is_refused_not_lost(
        transport, monkeypatch):
    # The fake driver queues every message; a broker that has no queue for
    # the topic (no processor runs, or none has declared its queue again
    # since the broker restarted) drops a cast, unless it is mandatory:
    # then it returns it, and the driver raises MessageUndeliverable.
    sent = []

    def no_queue(target, ctxt, message, transport_options=None, **kwargs):
        sent.append(message['args']['scope']['scope_id'])
        if transport_options is not None and \
                transport_options.at_least_once:
            raise oslo_messaging.MessageUndeliverable(
                Exception('NO_ROUTE'), target.exchange, target.topic,
                message)
    monkeypatch.setattr(transport._driver, 'send', no_queue)
    client = messaging.ProcessorClient(transport, quote_timeout=5)
    other = dict(SCOPE, scope_id='s2')
    with pytest.raises(messaging.ProcessorUnavailable,
                       match='reset of scope s1 was returned by the broker: '
                             'no processor listens'):
        client.reset_state([SCOPE, other], T0)
    # Stopped at the first: the caller knows nothing was sent.
    assert sent == ['s1']


def test_reset_waits_for_the_scope_lock(caplog):
    endpoint, events, _modules = make_endpoint(busy={'s1': 3})
    caplog.set_level(logging.INFO)
    assert endpoint.reset_state({}, SCOPE, T0.isoformat())
    assert endpoint._locks.attempts == {'s1': 4}
    assert [e[0] for e in events] == ['state', 'delete']
    assert 'Scope s1 (project_id=s1, fetcher source, collector file) reset ' \
        'to 2024-05-01T12:00:00+00:00' in caplog.text


def test_reset_gives_up_when_the_lock_stays_busy(caplog):
    endpoint, events, _modules = make_endpoint(busy={'s1': 10 ** 6},
                                               lock_timeout=0.3)
    started = time.monotonic()
    assert not endpoint.reset_state({}, SCOPE, T0.isoformat())
    assert 0.3 <= time.monotonic() - started < 2
    assert events == []
    assert 'Reset of scope s1 to 2024-05-01T12:00:00+00:00 abandoned' in \
        caplog.text


def test_reset_gives_up_at_once_when_stopping():
    stop = threading.Event()
    endpoint, events, _modules = make_endpoint(busy={'s1': 10 ** 6},
                                               lock_timeout=60, stop=stop)
    threading.Timer(0.2, stop.set).start()
    started = time.monotonic()
    assert not endpoint.reset_state({}, SCOPE, T0.isoformat())
    assert time.monotonic() - started < 2
    assert events == []


def test_a_failed_state_write_changes_nothing(caplog):
    endpoint, events, _modules = make_endpoint(
        scope_error=RuntimeError('database is down'))
    assert not endpoint.reset_state({}, SCOPE, T0.isoformat())
    assert events == []
    assert 'nothing changed: RuntimeError: database is down' in caplog.text


def test_a_failed_delete_is_logged(caplog):
    endpoint, events, _modules = make_endpoint(
        storage_error=RuntimeError('storage is down'))
    assert not endpoint.reset_state({}, SCOPE, T0.isoformat())
    assert [e[0] for e in events] == ['state', 'delete']
    assert 'state set, but deleting' in caplog.text
    assert 'storage is down' in caplog.text


def test_a_bad_timestamp_is_refused(caplog):
    endpoint, events, _modules = make_endpoint()
    assert not endpoint.reset_state({}, SCOPE, 'yesterday')
    assert events == []
    assert 'Reset of scope s1 refused' in caplog.text


def test_hold_waiting_releases_the_lock_on_error():
    locks = FakeLocks(busy={'s1': 1})
    with pytest.raises(RuntimeError), rpc.hold_waiting(
            locks, 's1', 5, threading.Event(), interval=0.01) as held:
        assert held and locks.held == {'s1'}
        raise RuntimeError('boom')
    assert locks.held == set()


def test_private_methods_are_not_served(transport):
    endpoint, events, _modules = make_endpoint()
    client = messaging.ProcessorClient(transport, quote_timeout=1)
    with serving(transport, endpoint):
        call = client._client.prepare(timeout=1)
        with pytest.raises(Exception) as info:
            call.call({}, '_reset', scope_id='s1', parts={},
                      timestamp=T0.isoformat())
    assert 'NoSuchMethod' in repr(info.value) or \
        'does not exist' in str(info.value) or \
        'not allowed' in str(info.value).lower()
    assert events == []
