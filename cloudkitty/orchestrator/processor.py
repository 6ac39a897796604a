"""The processor: worker processes that rate every scope, period by period.

``cloudkitty-processor`` validates its configuration, then runs
``[orchestrator] max_workers`` :class:`ProcessorService` processes under a
cotyledon ``ServiceManager``. Each one loops over passes (:class:`Processor`):
list the scopes, keep this worker's share of them (the scopes are shared
out among the live workers of all processors where the coordination backend
allows, :mod:`cloudkitty.orchestrator.lock`), and for each one whose lock
it gets, rate every due period.
A pass that rated nothing is followed by ``process_interval`` seconds of
sleep. Failures (collector, database, coordination backend) are logged and
retried on a later pass; they never end a worker. With ``[DEFAULT]
transport_url`` set, one more process (:class:`RPCService`) serves the
API's scope resets and quotes (:mod:`cloudkitty.orchestrator.rpc`).

:func:`run_until_caught_up` runs the same passes in the calling process
until no scope has a due period, for one-shot commands.
"""

import contextlib
import dataclasses
import functools
import logging
import operator
import random
import shutil
import tempfile
import threading

import cotyledon
from stevedore import extension

from cloudkitty import collector as ck_collector
from cloudkitty import db
from cloudkitty import fetcher as ck_fetcher
from cloudkitty import messaging
from cloudkitty.orchestrator import batch as ck_batch
from cloudkitty.orchestrator import health as ck_health
from cloudkitty.orchestrator import lock as ck_lock
from cloudkitty.orchestrator import metrics as ck_metrics
from cloudkitty.orchestrator import rpc as ck_rpc
from cloudkitty.orchestrator import shared as ck_shared
from cloudkitty.orchestrator import skip as ck_skip
from cloudkitty.orchestrator import worker as ck_worker
from cloudkitty import rating
from cloudkitty import storage as ck_storage
from cloudkitty import storage_state
from cloudkitty.storage_state import reprocessing
from cloudkitty import timeutils

LOG = logging.getLogger(__name__)
# Seconds between two upkeeps of the storage by a processor.
STORAGE_UPKEEP_INTERVAL = 3600


class ConfigurationError(Exception):
    """The processor cannot start; the message is one line for the user."""


@dataclasses.dataclass(frozen=True)
class Plan:
    """What start-up validation produced: the metrics and skip predicates.

    ``metrics`` is the collector's validated ``{key: definition}``;
    ``skip_predicates`` is ``(default, {type: predicate})``.
    """

    metrics: dict
    skip_predicates: tuple


def validate(conf):
    """Validate metrics.yml with the configured collector, and the skip
    expressions; return a :class:`Plan`.

    Raises :class:`ConfigurationError` whose message names the file, the
    metric and the key at fault.
    """
    try:
        collector_class = ck_collector.get_collector_class(conf)
    except Exception as exc:  # noqa: BLE001 - stevedore: missing/broken
        raise ConfigurationError(
            f'[collect] collector {conf.collect.collector!r} cannot be '
            f'loaded: {exc.__class__.__name__}: {exc}') from None
    try:
        # With conf, a collector can check what lies beyond metrics.yml
        # (the meta collector: the mappings in the database).
        metrics = ck_collector.load_metrics_conf(
            conf.collect.metrics_conf, collector_class,
            conf.collect.scope_key, oslo_conf=conf)
        predicates = ck_skip.compile_metric_predicates(
            metrics, conf.orchestrator.skip_datapoints_expression)
    except (ck_collector.InvalidConfiguration,
            ck_skip.InvalidSkipExpression) as exc:
        raise ConfigurationError(_one_line(exc)) from None
    return Plan(metrics, predicates)


def _one_line(exc):
    return ' '.join(str(exc).split())


@dataclasses.dataclass
class PassSummary:
    """What one pass over the scopes did.

    ``scopes``: the scopes this worker tried; ``others``: those it left
    to the other workers (their share, see
    :meth:`~cloudkitty.orchestrator.lock.ScopeLocks.share`);
    ``rated``: ``{scope: number of periods stored}`` (scopes with none are
    absent); ``failed``: ``{scope: error}``; ``locked``: scopes another
    worker held; ``inactive``: scopes marked inactive; ``unavailable``: why
    the pass could not run at all (coordination backend or fetcher down).
    """

    scopes: list = dataclasses.field(default_factory=list)
    others: list = dataclasses.field(default_factory=list)
    rated: dict = dataclasses.field(default_factory=dict)
    failed: dict = dataclasses.field(default_factory=dict)
    locked: list = dataclasses.field(default_factory=list)
    inactive: list = dataclasses.field(default_factory=list)
    unavailable: str = None

    @property
    def periods(self):
        return sum(self.rated.values())


class _Passes:
    """What the rating and the reprocessing passes share: the start of a
    pass (coordination, listing, this worker's share), the visit of one
    scope under its lock, and the loop of passes (:meth:`run_forever`)
    over the ``run_pass(scope_ids=None) -> PassSummary`` of each kind."""

    _what = None  # what a pass lists, for the log

    def __init__(self, scope_worker, locks, stop_event=None, health=None,
                 sweep=False):
        self._worker = scope_worker
        self._locks = locks
        self._stop = stop_event or threading.Event()
        self._health = health or ck_health.Health()
        self._sweep = sweep

    def _share(self, summary, listing, scope_of):
        """The items of ``listing()`` this worker rates in the pass, in
        order, or ``None`` when the pass cannot run (``summary`` says why);
        ``scope_of(item)`` is an item's scope."""
        if not self._locks.start():
            summary.unavailable = 'coordination backend unreachable'
            return None
        try:
            items = listing()
        except Exception as exc:  # noqa: BLE001 - any listing failure
            LOG.warning('Could not list the %s, will retry: %s: %s',
                        self._what, exc.__class__.__name__, exc)
            summary.unavailable = f'listing the {self._what} failed: {exc}'
            return None
        listed = [scope_of(item) for item in items]
        mine = self._locks.share(listed)
        if mine is None:
            summary.unavailable = 'coordination backend unreachable'
            return None
        mine = set(mine)
        summary.others = [s for s in listed if s not in mine]
        items = [i for i in items if scope_of(i) in mine]
        summary.scopes = [scope_of(item) for item in items]
        return items

    def _visit(self, scope_id, summary, rate, group=None, results=None):
        """``rate(still_held=...)`` under the scope's lock, told to
        ``summary`` and the health once its periods are stored.

        With a ``group`` (a :class:`~cloudkitty.orchestrator.batch.
        StoreGroup`), ``rate`` stores its periods through it and the lock
        is held until the group has stored and recorded them
        (:meth:`~cloudkitty.orchestrator.batch.StoreGroup.done`). The
        :class:`~cloudkitty.orchestrator.worker.ScopeResult` goes to
        ``results[scope_id]`` then (``None`` when another worker holds
        the lock).

        ``still_held`` checks that the lock is still this worker's, where
        the locks can tell (:meth:`~cloudkitty.orchestrator.lock.
        ScopeLocks.still_held`), else it is ``None``.
        """
        results = {} if results is None else results
        stack = contextlib.ExitStack()
        with stack:
            if not stack.enter_context(self._locks.hold(scope_id)):
                summary.locked.append(scope_id)
                results[scope_id] = None
                return
            still_held = getattr(self._locks, 'still_held', None)
            result = rate(still_held=None if still_held is None
                          else functools.partial(still_held, scope_id))
            finish = functools.partial(self._tell, summary, results)
            if group is None:
                finish(result)
            else:
                group.done(scope_id, result, finish, stack.pop_all().close)

    def _tell(self, summary, results, result):
        """Tell ``summary``, the health and ``results`` what a visit
        did."""
        scope_id = result.scope_id
        results[scope_id] = result
        self._health.record(scope_id, result)
        if result.rated:
            summary.rated[scope_id] = (summary.rated.get(scope_id, 0)
                                       + len(result.rated))
        if result.error is not None:
            summary.failed[scope_id] = result.error
        if result.inactive:
            summary.inactive.append(scope_id)

    def _ending(self):
        """Stop asked for, or the share of the scopes changed (a worker
        joined or left): the pass ends, the next one tries the new share."""
        return self._stop.is_set() or self._locks.share_changed()

    def run_forever(self, interval):
        """Pass after pass until the stop event is set; never raises.

        Sleeps ``interval`` seconds after a pass that rated nothing.
        """
        while not self._stop.is_set():
            try:
                summary = self.run_pass()
            except Exception:  # a bug must not end the worker: log, go on
                LOG.exception('Processor pass failed')
                summary = PassSummary()
            self._health.pass_done(
                lambda scope_id: self._worker.lag(scope_id))
            unvisited = summary.others + summary.locked
            if self._sweep and unvisited:
                self._health.sweep(unvisited, self._worker.lags)
            if not summary.periods:
                self._stop.wait(interval)


class Processor(_Passes):
    """Passes over the scopes: lock, rate what is due, release.

    :param scope_worker: a :class:`~cloudkitty.orchestrator.worker.ScopeWorker`
    :param fetcher: has ``get_tenants() -> [scope_id]``
    :param locks: a :class:`~cloudkitty.orchestrator.lock.ScopeLocks`
        (or anything with ``start()``, ``share(scope_ids)``,
        ``share_changed()`` and ``hold(scope_id)``, and optionally
        ``still_held(scope_id)``); a pass tries only the scopes of its
        share, and ends early once the share changed.
    :param stop_event: once set, the current period is finished or
        abandoned and the pass ends.
    :param health: a :class:`~cloudkitty.orchestrator.health.Health`,
        told of every scope's result and of the end of every pass of
        :meth:`run_forever` (default: counts kept in memory, no lag
        warnings).
    :param sweep: after each pass of :meth:`run_forever`, have ``health``
        check the scopes the pass did not visit for stalls (one worker of
        each processor does).
    :param store_points: the periods rated are stored together
        (:class:`~cloudkitty.orchestrator.batch.StoreGroup`), in one
        transaction per this many points at most and per round; each
        scope's state is recorded, and its lock released, once its
        periods are stored.
    """

    _what = 'scopes'

    def __init__(self, scope_worker, fetcher, locks, stop_event=None,
                 shuffle=True, health=None, sweep=False,
                 store_points=ck_batch.MAX_POINTS):
        super().__init__(scope_worker, locks, stop_event, health, sweep)
        self._fetcher = fetcher
        self._shuffle = shuffle
        self._store_points = store_points

    def run_pass(self, scope_ids=None):
        """One pass over ``scope_ids`` (default: the fetcher's scopes).

        The plan of the pass: the scopes of this worker's share; then,
        where the collector groups collections (``grouped_collection``),
        their next due periods (one read of their states) and the rounds
        they are rated in, through one :class:`~cloudkitty.orchestrator.
        shared.SharedCollection`. In each round the scopes due in the
        oldest period among them rate that period, each metric of it
        collected once for them all; a scope leaves the pass once nothing
        is due, or it failed or was locked. Without grouped collection,
        each scope rates all its due periods in turn.
        Each scope is rated under its lock (:meth:`_visit`); the periods
        rated are stored together, at the end of each round (of the pass
        without grouped collection) or every ``store_points`` points, then
        recorded (:class:`~cloudkitty.orchestrator.batch.StoreGroup`).
        """
        summary = PassSummary()
        scopes = self._share(summary, lambda: self._list(scope_ids),
                             lambda scope_id: scope_id)
        if scopes is None:
            return summary
        collector = self._worker.collector
        if not getattr(collector, 'grouped_collection', False):
            with self._group() as group:
                for scope_id in scopes:
                    if self._ending():
                        break
                    self._visit(scope_id, summary, functools.partial(
                        self._worker.rate_scope, scope_id,
                        store=group.store), group)
            return summary
        try:
            nexts = self._worker.next_starts(scopes)
        except Exception as exc:  # noqa: BLE001 - e.g. database down
            self._fail_all(scopes, summary, f'reading the scope states '
                           f'failed: {exc.__class__.__name__}: {exc}')
            return summary
        shared = ck_shared.SharedCollection(collector, nexts,
                                            self._worker.next_start)
        states = functools.partial(shared.round_modules,
                                   read=self._worker.module_states)
        while scopes and not self._ending():
            if shared.next_round(scopes) is None:
                break
            results = {}
            with self._group() as group:
                for scope_id in [s for s in scopes if shared.in_round(s)]:
                    if self._ending():
                        break
                    self._visit(scope_id, summary, functools.partial(
                        self._worker.rate_scope, scope_id, max_periods=1,
                        usage_of=shared.usage, states=states,
                        store=group.store), group, results)
            # The round is stored: what each scope did is known.
            done = set()
            for scope_id, result in results.items():
                if result is not None and result.rated:
                    shared.advance(scope_id, result.rated[-1])
                if result is None or result.inactive or \
                        result.error is not None or not result.rated:
                    done.add(scope_id)
            scopes = [s for s in scopes if s not in done]
        return summary

    def _fail_all(self, scope_ids, summary, error):
        """Every scope of ``scope_ids`` failed this pass with ``error``:
        logged and told as a failure of each one."""
        for scope_id in scope_ids:
            ck_worker.log_abandoned('Scope', scope_id, error, LOG.warning)
            summary.failed[scope_id] = error
            self._health.record(scope_id, ck_worker.ScopeResult(
                scope_id, error=error, failure=ck_health.RATING))

    def _group(self):
        """The :class:`~cloudkitty.orchestrator.batch.StoreGroup` the
        periods of a pass (of a round, with grouped collection) are
        stored through."""
        return ck_batch.StoreGroup(self._worker.storage, self._store_points)

    def _list(self, scope_ids):
        if scope_ids is None:
            scope_ids = self._fetcher.get_tenants()
        scope_ids = list(scope_ids)
        if self._shuffle:
            # Workers walking the scopes in different orders meet less often
            # on the same lock.
            random.shuffle(scope_ids)
        return scope_ids


class ReprocessingProcessor(_Passes):
    """Passes over the unfinished reprocessing tasks, oldest first.

    :param schedule: a :class:`~cloudkitty.storage_state.reprocessing.
        ReprocessingScheduleManager` (``get_all``,
        ``set_current_reprocess_time``).

    A task is worked on under its scope's lock, so that it never runs
    beside the scope's regular rating or another worker's reprocessing;
    its periods are not its scope's next ones, so nothing is shared.
    """

    _what = 'reprocessing tasks'

    def __init__(self, scope_worker, schedule, locks, stop_event=None,
                 health=None):
        super().__init__(scope_worker, locks, stop_event, health)
        self._schedule = schedule

    def run_pass(self, scope_ids=None):
        """One pass over the unfinished tasks of ``scope_ids`` (default:
        every scope's), each re-read under its scope's lock (another worker
        may have moved it on) and reprocessed
        (:meth:`~cloudkitty.orchestrator.worker.ScopeWorker.reprocess`)."""
        summary = PassSummary()
        tasks = self._share(summary, lambda: [
            task for task in self._schedule.get_all(
                scope_ids=scope_ids, order='asc') if not _finished(task)],
            operator.itemgetter('identifier'))
        for task in tasks or ():
            if self._ending():
                break
            self._visit(task['identifier'], summary,
                        functools.partial(self._reprocess, task))
        return summary

    def _reprocess(self, task, *, still_held):
        fresh = [t for t in self._schedule.get_all(
            scope_ids=[task['identifier']], order='asc')
            if t['id'] == task['id']]
        if not fresh or _finished(fresh[0]):
            return ck_worker.ScopeResult(task['identifier'])
        return self._worker.reprocess(fresh[0], self._schedule,
                                      still_held=still_held)


def _finished(task):
    current = task['current_reprocess_time']
    return current is not None and current >= task['end_reprocess_time']


@dataclasses.dataclass
class Collaborators:
    """Everything a processor process builds from its configuration, on
    the process's one database engine (``engine``)."""

    scope_worker: ck_worker.ScopeWorker
    fetcher: object
    storage: object
    engine: object
    schedule: reprocessing.ReprocessingScheduleManager
    scope_state: storage_state.ScopeStateManager = None
    modules: dict = None
    module_state: storage_state.ModuleStateManager = None


def build(conf, plan, stop_event=None, clock=None):
    """Build the scope worker and fetcher for ``conf`` (in this process:
    engines and connections must not cross a fork). ``clock`` returns the
    current aware UTC time (default: the real one).

    The process's one engine of ``[database] connection``, with the
    ``[database]`` pool settings (:func:`cloudkitty.db.get_engine`), is
    handed to the scope and module states, the reprocessing schedule, the
    collector and the rating modules that take an ``engine``; the storage
    gets the same one from :func:`~cloudkitty.db.get_engine` where it
    keeps its data in that database.
    """
    engine = db.get_engine(conf)
    scope_state = storage_state.ScopeStateManager(
        engine, conf.collect.scope_key, conf.fetcher.backend,
        conf.collect.collector)
    module_state = storage_state.ModuleStateManager(engine)
    modules = rating.load_modules(conf, module_state, engine)
    collector = ck_collector.get_collector(conf, plan.metrics, engine=engine)
    storage = ck_storage.get_storage(conf, engine=engine)
    scope_worker = ck_worker.ScopeWorker(
        collector, storage, scope_state, list(collector.conf),
        ck_worker.Settings.from_conf(conf), modules=modules,
        module_state=module_state, skip_predicates=plan.skip_predicates,
        stop_event=stop_event, clock=clock or timeutils.utcnow)
    return Collaborators(
        scope_worker, ck_fetcher.get_fetcher(conf), storage, engine,
        reprocessing.ReprocessingScheduleManager(engine), scope_state,
        modules, module_state)


def make_locks(conf, worker_id=None, stop_event=None, group=None):
    """The per-scope locks of ``[orchestrator] coordination_url``, with
    ``member_timeout``; in ``group`` (see :class:`~cloudkitty.orchestrator.
    lock.ScopeLocks`) where the backend can share the scopes out (a log
    line says when it cannot)."""
    url = conf.orchestrator.coordination_url
    if group is not None and not ck_lock.shares_scopes(url):
        LOG.info('Worker %s tries the lock of every scope: the coordination '
                 'backend %s keeps no live group membership (use redis:// '
                 'or etcd3+http:// to share the scopes out)', worker_id,
                 url.partition('://')[0] + '://')
        group = None
    return ck_lock.ScopeLocks(
        ck_lock.with_timeouts(url, conf.orchestrator.member_timeout),
        ck_lock.member_id(conf.host, worker_id), stop_event=stop_event,
        group=group)


def run_until_caught_up(conf, scope_ids=None, use_locks=True,
                        stop_event=None, clock=None):
    """Rate every scope until none has a due period; single process.

    :param conf: the service's ``ConfigOpts``, prepared
        (:func:`cloudkitty.service.prepare_service`); the database must be
        migrated and the storage initialised.
    :param scope_ids: the scopes to rate (default: the fetcher's).
    :param use_locks: take each scope's tooz lock as the processor does
        (so it can run beside one); ``False`` for a machine without one.
    :param stop_event: a ``threading.Event`` to end early.
    :param clock: returns "now" (aware UTC) for the due-period rule
        (default: the real time); an earlier clock rates up to an earlier
        instant.
    :returns: a dict ``{"scopes": [ids], "periods": N,
        "rated": {scope: periods stored}, "failed": {scope: error},
        "locked": [scopes another worker held], "inactive": [scopes]}``.
        A scope that fails is not retried within the call.
    :raises ConfigurationError: invalid metrics.yml or skip expression.
    """
    plan = validate(conf)
    stop_event = stop_event or threading.Event()
    parts = build(conf, plan, stop_event, clock)
    locks = (make_locks(conf, stop_event=stop_event) if use_locks
             else ck_lock.NoLocks())
    processor = Processor(parts.scope_worker, parts.fetcher, locks,
                          stop_event, shuffle=False)
    total = {'scopes': [], 'periods': 0, 'rated': {}, 'failed': {},
             'locked': [], 'inactive': []}
    try:
        if scope_ids is None:
            scope_ids = list(parts.fetcher.get_tenants())
        total['scopes'] = list(scope_ids)
        pending = list(scope_ids)
        # Repeat while a pass rates something: time moves on while rating,
        # and a period may become due for a scope already looked at.
        while pending and not stop_event.is_set():
            summary = processor.run_pass(pending)
            if summary.unavailable:
                for scope_id in pending:
                    total['failed'][scope_id] = summary.unavailable
                break
            for scope_id, count in summary.rated.items():
                total['rated'][scope_id] = (
                    total['rated'].get(scope_id, 0) + count)
            total['failed'].update(summary.failed)
            total['locked'].extend(summary.locked)
            total['inactive'].extend(summary.inactive)
            if not summary.periods:
                break
            done = set(summary.failed) | set(summary.locked) | set(
                summary.inactive)
            pending = [s for s in pending if s not in done]
    finally:
        locks.stop()
        parts.engine.dispose()
    total['periods'] = sum(total['rated'].values())
    return total


def keep_up_storage(storage, stop_event, every=STORAGE_UPKEEP_INTERVAL):
    """``storage.maintain(now)`` every ``every`` seconds until
    ``stop_event`` is set; a failure is logged, and tried again next
    time."""
    while not stop_event.is_set():
        try:
            storage.maintain(timeutils.utcnow())
        except Exception:  # noqa: BLE001 - e.g. database down
            LOG.exception('Storage upkeep failed, will retry')
        stop_event.wait(every)


class ProcessorService(cotyledon.Service):
    """One processor worker process: rates the scopes' due periods."""

    name = 'cloudkitty-processor'
    label = 'Processor'
    group = ck_lock.RATING_GROUP

    def __init__(self, worker_id, conf, plan, counters_dir=None):
        super().__init__(worker_id)
        self._conf = conf
        self._plan = plan
        self._counters_dir = counters_dir
        self._stop = threading.Event()
        self._finished = threading.Event()

    def run(self):
        locks = None
        try:
            interval = self._conf.orchestrator.process_interval
            parts = self._build(interval)
            if parts is None:
                return
            locks = make_locks(self._conf, f'{self.label}-{self.worker_id}',
                               self._stop, self.group)
            LOG.info('%s worker %s started', self.label, self.worker_id)
            if self.worker_id == 0 and self.group == ck_lock.RATING_GROUP:
                threading.Thread(target=keep_up_storage, daemon=True,
                                 args=(parts.storage, self._stop),
                                 name='storage-upkeep').start()
            self._processor(parts, locks).run_forever(interval)
        finally:
            if locks is not None:
                locks.stop()
            self._finished.set()

    def _build(self, interval):
        while not self._stop.is_set():
            try:
                return build(self._conf, self._plan, self._stop)
            except Exception as exc:  # noqa: BLE001 - e.g. storage down
                LOG.warning('%s worker %s cannot start yet, will retry: '
                            '%s: %s', self.label, self.worker_id,
                            exc.__class__.__name__, exc)
                self._stop.wait(max(interval, 1.0))
        return None

    def _processor(self, parts, locks):
        return Processor(parts.scope_worker, parts.fetcher, locks, self._stop,
                         health=ck_health.Health(
                             self._counters(), ck_health.PERIODS_RATED,
                             ck_health.LagWatch(
                                 self._conf.orchestrator.lag_warning_periods)),
                         sweep=self.worker_id == 0)

    def _counters(self):
        """This worker's counters, in its file of ``counters_dir``."""
        return ck_health.Counters(None if self._counters_dir is None else
                                  ck_health.counters_path(
                                      self._counters_dir, self.label,
                                      self.worker_id))

    def terminate(self):
        # Let the current period finish or be abandoned before storing,
        # and the lock be released; cotyledon's graceful shutdown timeout
        # bounds the wait.
        self._stop.set()
        self._finished.wait()


class ReprocessingService(ProcessorService):
    """One reprocessing worker process: works on the reprocessing tasks."""

    name = 'cloudkitty-reprocessing'
    label = 'Reprocessing'
    group = ck_lock.REPROCESSING_GROUP

    def _processor(self, parts, locks):
        return ReprocessingProcessor(
            parts.scope_worker, parts.schedule, locks, self._stop,
            health=ck_health.Health(self._counters(),
                                    ck_health.PERIODS_REPROCESSED))


class RPCServer:
    """Serves the API's scope resets and quotes until the stop event.

    The server runs in the threads of oslo.messaging's executor; a reset
    takes the scope's lock from ``locks``, as the rating workers do.
    ``started`` is set once the server listens.
    """

    def __init__(self, conf, parts, locks, stop_event,
                 topic=messaging.TOPIC):
        self._conf = conf
        self._stop = stop_event
        self._topic = topic
        self.started = threading.Event()
        self._starting = threading.Lock()
        self._gave_up = False
        self.endpoint = ck_rpc.ProcessorEndpoint(
            parts.storage, parts.scope_state, parts.modules,
            parts.module_state, locks,
            conf.orchestrator.reset_lock_timeout, conf.collect.period,
            stop_event)

    def run_forever(self, interval=None):
        """Serve until the stop event; never raises (failures are logged)."""
        try:
            transport = messaging.get_transport(self._conf)
            server = ck_rpc.get_server(transport, self._conf.host,
                                       self.endpoint, self._topic)
        except Exception as exc:  # invalid transport_url, missing driver
            LOG.error('Cannot serve scope resets and quotes: %s: %s',
                      exc.__class__.__name__, exc)
            self._stop.wait()
            return
        # The server's start retries for as long as the broker is down,
        # and its stop waits for the start: it starts in a thread of its
        # own, left behind if the process is asked to stop first.
        threading.Thread(target=self._start, args=(server, transport),
                         daemon=True, name='rpc-start').start()
        while not (self._stop.is_set() or self.started.wait(0.1)):
            pass
        with self._starting:
            if not self.started.is_set():
                self._gave_up = True
                LOG.warning('Stopped before the message broker could be '
                            'reached')
                return
        LOG.info('Serving scope resets and quotes on topic %s', self._topic)
        self._stop.wait()
        _stop_server(server, transport)

    def _start(self, server, transport):
        try:
            server.start()
        except Exception as exc:  # noqa: BLE001 - logged; nothing served
            LOG.error('Cannot serve scope resets and quotes: %s: %s',
                      exc.__class__.__name__, exc)
            return
        with self._starting:
            if self._gave_up:
                _stop_server(server, transport)
            else:
                self.started.set()


def _stop_server(server, transport):
    server.stop()
    server.wait()
    transport.cleanup()


class RPCService(ProcessorService):
    """The process that serves the API's scope resets and quotes."""

    name = 'cloudkitty-rpc'
    label = 'RPC'
    group = None

    def _processor(self, parts, locks):
        return RPCServer(self._conf, parts, locks, self._stop)


def serve(conf, plan):
    """Run the worker processes until SIGTERM; the master exits 0.

    ``[orchestrator] max_workers`` processes rate (at least one) and
    ``max_workers_reprocessing`` work on reprocessing tasks (none if 0).
    With ``[DEFAULT] transport_url`` set, one more process serves the
    API's scope resets and quotes (:class:`RPCService`). With
    ``[orchestrator] metrics_port`` set, one more serves ``/metrics``
    (:class:`~cloudkitty.orchestrator.metrics.MetricsService`), adding up
    the counters the workers write to a temporary directory, removed when
    the master exits.
    """
    messaging.register_opts(conf)
    counters_dir = None
    if conf.orchestrator.metrics_port:
        counters_dir = tempfile.mkdtemp(prefix='cloudkitty-processor-')
    try:
        _serve(conf, plan, counters_dir)
    finally:
        # The master only: the workers, multiprocessing's, end in _exit.
        if counters_dir is not None:
            shutil.rmtree(counters_dir, ignore_errors=True)


def _serve(conf, plan, counters_dir):
    # Import the rating modules once, before the workers are forked: each
    # worker, and each one started again after a crash, then starts
    # without their imports. Nothing is instantiated here; a module that
    # fails to import is reported by the workers' own loading.
    extension.ExtensionManager(rating.NAMESPACE,
                               on_load_failure_callback=lambda *_: None)
    manager = cotyledon.ServiceManager()
    manager.add(ProcessorService,
                workers=max(1, conf.orchestrator.max_workers),
                args=(conf, plan, counters_dir))
    if conf.orchestrator.max_workers_reprocessing > 0:
        manager.add(ReprocessingService,
                    workers=conf.orchestrator.max_workers_reprocessing,
                    args=(conf, plan, counters_dir))
    if counters_dir is not None:
        manager.add(ck_metrics.MetricsService, workers=1,
                    args=(conf, counters_dir))
    if messaging.is_configured(conf):
        manager.add(RPCService, workers=1, args=(conf, plan))
    else:
        LOG.warning('[DEFAULT] transport_url is not set: the scope resets '
                    'and quotes asked through the API are not served')
    manager.run()
