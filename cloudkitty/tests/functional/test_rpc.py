"""How the API and the processor pick their RPC side from the configuration.

The exchanges themselves are tested over ``fake:/`` (unit) and RabbitMQ
(:mod:`.test_rpc_rabbit`).
"""

import time

from oslo_messaging import opts as messaging_opts
import pytest
import webtest

from cloudkitty.api import app as api_app
from cloudkitty.api import hooks
from cloudkitty import messaging
from cloudkitty.orchestrator import processor
from cloudkitty.tests.functional import harness
from cloudkitty.tests.functional.api import conftest as api_fixtures
from cloudkitty.tests import waiting


@pytest.fixture(autouse=True)
def no_stray_threads():
    with waiting.no_new_threads(5):
        yield


@pytest.fixture
def conf(tmp_path, database):
    conf = api_fixtures.make_conf(tmp_path, database)
    messaging.register_opts(conf)
    return conf


@pytest.fixture
def backends_of(conf):
    built = []

    def build(**kwargs):
        backends = hooks.Backends(conf, **kwargs)
        built.append(backends)
        return backends
    yield build
    for backends in built:
        if backends.processor_rpc is not None:
            backends.processor_rpc.close()
        backends.engine.dispose()


def test_without_transport_url_quotes_are_priced_here(conf, backends_of):
    backends = backends_of()
    assert backends.processor_rpc is None
    assert backends.scope_reset is hooks.refuse_scope_reset
    assert backends.quote == backends.rating_modules.quote


def test_without_transport_url_resets_are_refused(conf, backends_of):
    """No processor can be reached to reset the scope: a 503 that says
    why, and the state stays."""
    backends = backends_of()
    app = webtest.TestApp(api_app.setup_app(conf, backends))
    backends.scope_state.set_last_processed_timestamp(
        's1', api_fixtures.at(2))
    response = app.put_json('/v2/scope', {
        'scope_id': 's1', 'last_processed_timestamp': '2024-01-01'},
        status=503)
    assert response.json['message'] == (
        'Scope resets are carried out by the processors, reached over '
        '[DEFAULT] transport_url, which is not set on this API.')
    assert backends.scope_state.get_last_processed_timestamp(
        's1') == api_fixtures.at(2)


def test_with_transport_url_the_processors_are_asked(conf, backends_of):
    conf.set_override('transport_url', 'fake:/')
    conf.set_override('quote_timeout', 0.2, 'api')
    backends = backends_of()
    assert isinstance(backends.processor_rpc, hooks.ProcessorRPC)
    assert backends.scope_reset == backends.processor_rpc.scope_reset
    assert backends.quote == backends.processor_rpc.quote
    app = webtest.TestApp(api_app.setup_app(conf, backends))
    backends.scope_state.set_last_processed_timestamp(
        's1', api_fixtures.at(1))
    # A cast is answered at once, whoever listens.
    assert app.put_json('/v2/scope', {
        'scope_id': 's1', 'last_processed_timestamp': '2024-01-01'},
        status=202).json == {}
    # Nobody answers this call.
    response = app.post_json('/v1/rating/quote', {'resources': [
        {'service': 'cpu', 'volume': 1}]}, status=503)
    assert response.json['faultstring'] == (
        'The processors cannot be reached: no processor answered the '
        'quote within 0.2s.')


def test_handed_in_fakes_win_over_the_transport(conf, backends_of):
    conf.set_override('transport_url', 'fake:/')
    calls = []
    backends = backends_of(scope_reset=lambda *args: calls.append(args),
                           quote=lambda frame: 0)
    assert backends.processor_rpc is None


def test_an_unreachable_broker_is_503_not_a_lost_reset(conf, backends_of):
    # Nothing listens on port 1: the bounded retries end in an error.
    conf.set_override('transport_url', 'rabbit://guest:guest@127.0.0.1:1/')
    for group, options in messaging_opts.list_opts():
        if group == 'oslo_messaging_rabbit':
            conf.register_opts(options, group=group)
    conf.set_override('rabbit_retry_backoff', 0, 'oslo_messaging_rabbit')
    backends = backends_of()
    app = webtest.TestApp(api_app.setup_app(conf, backends))
    backends.scope_state.set_last_processed_timestamp(
        's1', api_fixtures.at(1))
    started = time.monotonic()
    response = app.put_json('/v2/scope', {
        'scope_id': 's1', 'last_processed_timestamp': '2024-01-01'},
        status=503)
    assert time.monotonic() - started < 10
    assert response.json['message'].startswith(
        'The processors cannot be reached: the reset of scope s1 could not '
        'be sent')


MANAGERS = []


class RecordingManager:
    """Stands for cotyledon's ServiceManager: records the services."""

    def __init__(self):
        self.added = []
        MANAGERS.append(self)

    def add(self, service, workers, args):
        self.added.append((service, workers))

    def run(self):
        pass


@pytest.mark.parametrize('url, expected', [
    (None, [processor.ProcessorService, processor.ReprocessingService]),
    ('rabbit://h/', [processor.ProcessorService,
                     processor.ReprocessingService, processor.RPCService]),
])
def test_the_processor_serves_rpc_when_a_transport_is_set(
        conf, monkeypatch, url, expected):
    if url:
        conf.set_override('transport_url', url)
    conf.set_override('max_workers_reprocessing', 1, 'orchestrator')
    monkeypatch.setattr(processor.cotyledon, 'ServiceManager',
                        RecordingManager)
    processor.serve(conf, plan=None)
    added = MANAGERS[-1].added
    assert [service for service, _workers in added] == expected
    if url:
        assert added[-1] == (processor.RPCService, 1)


def test_the_processor_stops_promptly_while_the_broker_is_down(tmp_path):
    scenario = harness.Scenario(tmp_path, scopes=1, hours=1)
    scenario.config.write_text(scenario.config.read_text().replace(
        '[DEFAULT]\n',
        '[DEFAULT]\ntransport_url = rabbit://guest:guest@127.0.0.1:1/\n'))
    log = tmp_path / 'ck.log'
    process = scenario.start()
    try:
        assert scenario.wait_until(
            lambda: 'RPC worker 0 started' in log.read_text(), 60, process)
    finally:
        code, err = harness.stop(process)
    assert code == 0, err
    assert 'Stopped before the message broker could be reached' in \
        log.read_text()


def test_the_api_imports_nothing_of_the_processor():
    """The protocol both sides speak is cloudkitty.messaging: the API's
    application and hooks import no module of cloudkitty.orchestrator."""
    assert harness.modules_loaded_by(
        'from cloudkitty.api import app, hooks',
        ('cloudkitty.orchestrator',)) == '[]'
