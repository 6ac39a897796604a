"""The processor's Prometheus endpoint: ``GET /metrics``.

With ``[orchestrator] metrics_port`` set, ``cloudkitty-processor`` runs one
more process (:class:`MetricsService`) serving, in the text exposition
format 0.0.4, per scope (label ``scope``):

- from the scope state table, the truth across hosts, for the scopes of
  the processor's fetcher, collector and scope key:
  ``cloudkitty_scope_last_processed_timestamp_seconds`` (start of the last
  period rated) and, for the active scopes, ``cloudkitty_scope_lag_periods``
  (periods due and not yet rated, by the rule the workers follow, see
  :func:`cloudkitty.orchestrator.periods.due_periods`) and
  ``cloudkitty_scope_lag_seconds`` (the same in seconds);
- from the counters of this host's workers since the processor started
  (:mod:`cloudkitty.orchestrator.health`):
  ``cloudkitty_scope_periods_rated_total``,
  ``cloudkitty_scope_periods_reprocessed_total``,
  ``cloudkitty_scope_collection_errors_total`` and
  ``cloudkitty_scope_rating_errors_total``;

and ``cloudkitty_scope_states_up``: 1 if the scope states could be read
for this answer, else 0 (the counters are served all the same).
"""

import dataclasses
import http.server
import logging
import socket
import threading

import cotyledon

from cloudkitty import db
from cloudkitty.orchestrator import health
from cloudkitty.orchestrator import periods
from cloudkitty import storage_state
from cloudkitty import timeutils

LOG = logging.getLogger(__name__)

CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'
PATH = '/metrics'


@dataclasses.dataclass(frozen=True)
class Family:
    """One metric: ``samples`` is a sequence of ``(labels dict, value)``;
    ``type`` is ``gauge`` or ``counter``."""

    name: str
    type: str
    help: str
    samples: tuple = ()


def render(families):
    """The text exposition (format 0.0.4) of ``families``, in order: a
    HELP and a TYPE line each, then one line per sample."""
    lines = []
    for family in families:
        lines.append(f'# HELP {family.name} '
                     f'{_escape(family.help, quote=False)}')
        lines.append(f'# TYPE {family.name} {family.type}')
        for labels, value in family.samples:
            lines.append(f'{family.name}{_labels(labels)} {_number(value)}')
    return '\n'.join(lines) + '\n'


def _escape(text, quote=True):
    text = text.replace('\\', '\\\\').replace('\n', '\\n')
    return text.replace('"', '\\"') if quote else text


def _labels(labels):
    if not labels:
        return ''
    return '{' + ','.join(f'{name}="{_escape(str(value))}"'
                          for name, value in labels.items()) + '}'


def _number(value):
    if isinstance(value, float) and not value.is_integer():
        return repr(value)
    return str(int(value))


_HELP = {
    health.PERIODS_RATED:
        'Periods of the scope rated and stored by this host\'s workers '
        'since the processor started.',
    health.PERIODS_REPROCESSED:
        'Periods of the scope rated again for reprocessing tasks by this '
        'host\'s workers since the processor started.',
    health.COLLECTION_ERRORS:
        'Passes over the scope abandoned by this host\'s workers because a '
        'metric\'s collection failed or timed out.',
    health.RATING_ERRORS:
        'Passes over the scope abandoned by this host\'s workers for a '
        'failure other than collection (rating modules, storage, scope '
        'state).',
}


def families(states, counters, period, wait_periods, now):
    """The :class:`Family` list the endpoint serves.

    :param states: the scope states (dicts of :meth:`~cloudkitty.
        storage_state.ScopeStateManager.get_all`), or ``None`` when they
        could not be read
    :param counters: ``{scope_id: {name: count}}`` as
        :func:`cloudkitty.orchestrator.health.read_counters` returns
    :param period: ``[collect] period`` in seconds
    :param wait_periods: ``[collect] wait_periods``
    :param now: the current aware UTC time
    """
    by_scope = {s['identifier']: s for s in states or ()}
    last, lag_periods, lag_seconds = [], [], []
    for scope_id in sorted(by_scope):
        state = by_scope[scope_id]
        labels = {'scope': scope_id}
        stamp = state['last_processed_timestamp']
        if stamp is not None:
            last.append((labels, int(stamp.timestamp())))
        if state['active']:
            due = periods.due_periods(stamp, period, wait_periods, now)
            lag_periods.append((labels, due))
            lag_seconds.append((labels, due * period))
    result = [
        Family('cloudkitty_scope_states_up', 'gauge',
               '1 if the scope states could be read for this answer, '
               'else 0.', (({}, int(states is not None)),)),
        Family('cloudkitty_scope_last_processed_timestamp_seconds', 'gauge',
               'Start of the last period rated for the scope, in seconds '
               'since the epoch.', tuple(last)),
        Family('cloudkitty_scope_lag_periods', 'gauge',
               'Periods of the active scope due and not yet rated.',
               tuple(lag_periods)),
        Family('cloudkitty_scope_lag_seconds', 'gauge',
               'Seconds of periods of the active scope due and not yet '
               'rated.', tuple(lag_seconds)),
    ]
    scopes = sorted(set(by_scope) | set(counters))
    for name in health.NAMES:
        result.append(Family(
            f'cloudkitty_scope_{name}_total', 'counter', _HELP[name],
            tuple(({'scope': s}, counters.get(s, {}).get(name, 0))
                  for s in scopes)))
    return result


class Page:
    """Builds the endpoint's text from the database and the counters.

    :param conf: the processor's ``ConfigOpts``
    :param counters_dir: the directory of the workers' counter files
    :param clock: returns the current aware UTC time
    """

    def __init__(self, conf, counters_dir, engine,
                 clock=timeutils.utcnow):
        self._conf = conf
        self._counters_dir = counters_dir
        self._states = storage_state.ScopeStateManager(
            engine, conf.collect.scope_key, conf.fetcher.backend,
            conf.collect.collector)
        self._clock = clock

    def text(self):
        conf = self._conf
        try:
            states = self._states.get_all(
                scope_key=conf.collect.scope_key,
                fetcher=conf.fetcher.backend,
                collector=conf.collect.collector)
        except Exception as exc:  # noqa: BLE001 - database down
            LOG.warning('Cannot read the scope states for /metrics: %s: %s',
                        exc.__class__.__name__, exc)
            states = None
        return render(families(
            states, health.read_counters(self._counters_dir),
            conf.collect.period, conf.collect.wait_periods, self._clock()))


class _Handler(http.server.BaseHTTPRequestHandler):

    server_version = 'cloudkitty-processor'

    def do_GET(self):  # noqa: N802 - http.server's name
        if self.path.split('?', 1)[0] != PATH:
            self.send_error(404, f'Only {PATH} is served')
            return
        try:
            body = self.server.page().encode('utf-8')
        except Exception:  # a bug: answer 500, keep serving
            LOG.exception('Cannot build the /metrics page')
            self.send_error(500)
            return
        self.send_response(200)
        self.send_header('Content-Type', CONTENT_TYPE)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):  # noqa: A002 - base signature
        LOG.debug('/metrics: %s - %s', self.address_string(), format % args)


class MetricsServer(http.server.ThreadingHTTPServer):
    """An HTTP server answering ``GET /metrics`` with ``page()``."""

    daemon_threads = True

    def __init__(self, host, port, page):
        self.page = page
        if ':' in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), _Handler)


class MetricsService(cotyledon.Service):
    """The process serving ``/metrics`` on ``[orchestrator] metrics_host``
    and ``metrics_port`` until the processor stops."""

    name = 'cloudkitty-metrics'

    def __init__(self, worker_id, conf, counters_dir):
        super().__init__(worker_id)
        self._conf = conf
        self._counters_dir = counters_dir
        self._stop = threading.Event()
        self._finished = threading.Event()

    def run(self):
        options = self._conf.orchestrator
        engine = None
        try:
            engine = db.get_engine(self._conf)
            page = Page(self._conf, self._counters_dir, engine)
            try:
                server = MetricsServer(options.metrics_host,
                                       options.metrics_port, page.text)
            except OSError as exc:
                # Restarting would fail the same way: say so, and wait.
                LOG.error('Cannot serve /metrics on %s port %s: %s',
                          options.metrics_host, options.metrics_port, exc)
                self._stop.wait()
                return
            thread = threading.Thread(target=server.serve_forever,
                                      name='metrics', daemon=True)
            thread.start()
            LOG.info('Serving metrics on http://%s:%s%s',
                     options.metrics_host, server.server_port, PATH)
            self._stop.wait()
            server.shutdown()
            server.server_close()
        finally:
            if engine is not None:
                engine.dispose()
            self._finished.set()

    def terminate(self):
        self._stop.set()
        self._finished.wait()
