"""The scope worker: rate one scope, period after period.

Everything it talks to is handed in (collector, storage, scope state, rating
modules and their state, skip predicates, settings, a clock), so tests give
it fakes. For one period ``[start, start + period)`` it

1. collects every metric concurrently (at most ``max_threads`` at a time,
   each call bounded by ``collector_request_timeout``);
2. builds one :class:`~cloudkitty.dataframe.DataFrame` and runs the enabled
   rating modules over it, in descending priority;
3. drops the points its skip expression holds for;
4. stores the period idempotently: the frame replaces the scope's stored
   data of ``[start, end)`` (``storage.replace``), and only then is
   ``start`` recorded as the scope's ``last_processed_timestamp``.

Handed a ``store`` (a :class:`~cloudkitty.orchestrator.batch.
StoreGroup`'s), it collects the period and leaves steps 2 to 4 to it: the
processor rates the periods of a round together (each rating module
prices the frames of many scopes in one call), then filters, stores and
records them, in the same order (store, then record).

Step 4's order is what makes a crash harmless: until the state is written
the period is still due, so it is rated again after a restart, and the
delete that starts the store removes whatever a previous attempt pushed.
A period is therefore stored exactly once, however often it is attempted.

:meth:`ScopeWorker.rate_period` is that one call; what varies from one
period to the next comes in as its arguments (where the usage is read
from, the lock check, what recording means), never as a mode of the
worker, which changes no state of its own during a pass.
:meth:`ScopeWorker.rate_scope` rates a scope's due periods in turn, and
:meth:`ScopeWorker.reprocess` re-rates the window of a reprocessing task,
recording its progress in the task instead of the scope state.
"""

import concurrent.futures
import dataclasses
import datetime
import functools
import logging
import threading
import time

from cloudkitty import collector as ck_collector
from cloudkitty import dataframe
from cloudkitty.orchestrator import health as ck_health
from cloudkitty.orchestrator import periods as ck_periods
from cloudkitty.orchestrator import skip as ck_skip
from cloudkitty import rating
from cloudkitty import timeutils

LOG = logging.getLogger(__name__)
#: Why a scope's periods are not stored when its lock is no longer this
#: worker's.
LOCK_LOST = ('its lock was lost (expired, or the coordination backend '
             'restarted without it)')


def log_abandoned(what, scope_id, error, log=LOG.warning):
    """Log that ``what`` (``Scope``, ``Reprocessing of scope``)
    ``scope_id`` is abandoned for this pass because of ``error``, and is
    retried on a later one: one line, the one operators grep for."""
    log('%s %s abandoned for this pass, to be retried: %s', what, scope_id,
        error)


def log_stored(scope_id, start, points, skipped):
    """Log that the period of ``scope_id`` starting at ``start`` is
    stored, with ``points`` points, ``skipped`` dropped by the skip
    expressions."""
    LOG.info('Rated scope %s period %s: %d points stored, %d skipped',
             scope_id, start.isoformat(), points, skipped)


# How often a worker waiting on collector calls looks at the stop flag.
_POLL_SECONDS = 0.1


@dataclasses.dataclass(frozen=True)
class Settings:
    """The configuration values the scope worker needs."""

    period: int = 3600
    wait_periods: int = 2
    max_threads: int = 20
    collector_request_timeout: float = 60.0
    scope_key: str = 'project_id'

    @classmethod
    def from_conf(cls, conf):
        """Read ``[collect]`` and ``[orchestrator]`` from ``conf``."""
        return cls(period=conf.collect.period,
                   wait_periods=conf.collect.wait_periods,
                   max_threads=conf.orchestrator.max_threads,
                   collector_request_timeout=(
                       conf.orchestrator.collector_request_timeout),
                   scope_key=conf.collect.scope_key)


class ScopeAbandoned(Exception):
    """The scope cannot be rated in this pass; it is retried on a later one.

    ``metric`` is the metric whose collection failed, or ``None`` when the
    failure is not a metric's (storage, state, stop requested); ``source``
    the collector that failed to collect it.
    """

    def __init__(self, scope_id, reason, metric=None, period_start=None,
                 source=None):
        self.scope_id = scope_id
        self.reason = reason
        self.metric = metric
        self.period_start = period_start
        self.source = source
        where = f'scope {scope_id}'
        if period_start is not None:
            where += f' period {period_start.isoformat()}'
        if metric is not None:
            where += f' metric {metric}'
        if source is not None:
            where += f' source {source}'
        super().__init__(f'{where}: {reason}')


@dataclasses.dataclass
class ScopeResult:
    """What :meth:`ScopeWorker.rate_scope` did for one scope.

    ``rated``: period starts stored, in order; ``error``: why the scope
    was abandoned (``None`` if it was not); ``failure``: what failed,
    :data:`~cloudkitty.orchestrator.health.COLLECTION` (a metric's
    collection failed or timed out) or
    :data:`~cloudkitty.orchestrator.health.RATING` (anything else: rating
    modules, storage, scope state),
    ``None`` when nothing did (a stop request is no failure);
    ``inactive``: the scope is marked inactive and was not looked at.
    """

    scope_id: str
    rated: list = dataclasses.field(default_factory=list)
    error: str = None
    failure: str = None
    inactive: bool = False


@dataclasses.dataclass(frozen=True)
class Rating:
    """How a collected period is rated: ``pipeline`` (a
    :class:`~cloudkitty.rating.Pipeline`) prices it, then ``keep(frame)
    -> (frame, points dropped)`` drops what the skip expressions hold
    for."""

    pipeline: object
    keep: object

    def rated(self, frame, scope_id):
        """``(frame rated and filtered, points dropped)``: one period of
        ``scope_id``, alone."""
        return self.keep(self.pipeline.rate(frame, scope_id))


class ScopeWorker:
    """Rates scopes with the collaborators it is given.

    :param collector: has ``retrieve(metric_name, start, end,
        project_id=None, q_filter=None) -> (type, [DataPoint])``, raising
        ``cloudkitty.collector.NoDataCollected`` when there is nothing.
    :param storage: a v2 storage (:class:`~cloudkitty.storage.v2.
        BaseStorage`): ``replace(frame, scope_id)``, and ``delete(begin,
        end, filters)`` for reprocessing; :attr:`storage` to those who
        store the worker's periods for it.
    :param scope_state: a :class:`~cloudkitty.storage_state.ScopeStateManager`
        (``get_state``, ``get_last_processed_timestamp``,
        ``get_last_processed_timestamps``, ``set_last_processed_timestamp``).
    :param metrics: the metric names to collect, in order.
    :param settings: :class:`Settings`.
    :param modules: ``{name: RatingProcessorBase}`` (``None``: no rating).
    :param module_state: has ``get_all()`` (the modules' stored states),
        read once per period so that enabling, disabling or reordering a
        module applies from the next period rated.
    :param skip_predicates: ``(default, {type: predicate})`` as
        :func:`cloudkitty.orchestrator.skip.compile_metric_predicates`
        returns; a predicate is ``None`` for "never".
    :param stop_event: a ``threading.Event``; once set, the worker stores no
        new period and abandons the one it is collecting.
    :param clock: returns the current aware UTC time.
    """

    def __init__(self, collector, storage, scope_state, metrics, settings,
                 modules=None, module_state=None, skip_predicates=None,
                 stop_event=None, clock=timeutils.utcnow):
        self.collector = collector
        self._storage = storage
        self._scope_state = scope_state
        self._metrics = list(metrics)
        self._settings = settings
        self._modules = modules or {}
        self._module_state = module_state
        self._skip_default, self._skip_by_type = skip_predicates or (None, {})
        self._stop = stop_event or threading.Event()
        self._clock = clock
        self._collect_pool = None
        self._pipeline = (None, None)  # (module states, rating.Pipeline)
        self._source = getattr(collector, 'collector_name', None) or \
            type(collector).__name__

    @property
    def storage(self):
        """The storage the worker's periods are stored in."""
        return self._storage

    @property
    def period(self):
        """The length of a period, a ``timedelta``."""
        return datetime.timedelta(seconds=self._settings.period)

    def lag(self, scope_id):
        """``(last processed period start or None, due periods)`` of the
        scope now (:func:`~cloudkitty.orchestrator.periods.due_periods`)."""
        last = self._scope_state.get_last_processed_timestamp(scope_id)
        return last, ck_periods.due_periods(
            last, self._settings.period, self._settings.wait_periods,
            self._clock())

    def lags(self, scope_ids):
        """``{scope_id: (last processed period start or None, due
        periods)}`` of the active scopes among ``scope_ids`` now, from one
        read of the scope states (:meth:`lag` for many)."""
        now = self._clock()
        lasts = self._scope_state.get_last_processed_timestamps(scope_ids)
        return {scope_id: (last, ck_periods.due_periods(
            last, self._settings.period, self._settings.wait_periods, now))
            for scope_id, last in lasts.items()}

    def next_starts(self, scope_ids):
        """``{scope_id: start of its next due period, or None}`` now, from
        one read of the scope states; an inactive scope has none."""
        lasts = self._scope_state.get_last_processed_timestamps(scope_ids)
        return {scope_id: self.next_start(lasts[scope_id])
                if scope_id in lasts else None
                for scope_id in dict.fromkeys(scope_ids)}

    def next_start(self, last):
        """The next due period after ``last`` now
        (:func:`~cloudkitty.orchestrator.periods.next_period_start`)."""
        return ck_periods.next_period_start(
            last, self._settings.period, self._settings.wait_periods,
            self._clock())

    def usage(self, scope_id, start, end):
        """``usage(metric) -> (type, [DataPoint])`` of one period of the
        scope, each call one ``collector.retrieve``: what
        :meth:`rate_period` collects with unless it is handed another."""
        return functools.partial(self._retrieve_alone, scope_id=scope_id,
                                 start=start, end=end)

    def _retrieve_alone(self, metric, scope_id, start, end):
        return self.collector.retrieve(metric, start, end,
                                       project_id=scope_id, q_filter=None)

    def _pipeline_of(self, states):
        """The :class:`~cloudkitty.rating.Pipeline` of the module states
        ``states``: the one built last when ``states`` is the same object,
        as for the scopes of a round, which share the states read once for
        the round; so the modules load their rules (ask their revision
        counters) once per round too."""
        last_states, pipeline = self._pipeline
        if last_states is not states:
            pipeline = rating.Pipeline(self._modules, states)
            self._pipeline = (states, pipeline)
        return pipeline

    def module_states(self):
        """The rating modules' stored states, read now (``{}`` without
        a module state)."""
        if self._module_state is None:
            return {}
        return self._module_state.get_all()

    def rate_scope(self, scope_id, max_periods=None, *, still_held=None,
                   usage_of=None, states=None, store=None):
        """Rate every due period of ``scope_id``, oldest first.

        Stops when nothing is due, when ``max_periods`` periods were rated,
        when the stop event is set, or at the first failure: the scope is
        then abandoned for this pass, with a log line naming the scope, the
        metric and the error, and rated again on a later pass. Never raises
        for a failure of a collaborator. Returns a :class:`ScopeResult`.

        ``still_held`` and ``store`` are handed to each
        :meth:`rate_period`; ``usage_of(
        scope_id, start, end)`` gives each period's usage (default:
        :meth:`usage`) and ``states(start)`` its rating modules' states
        (default: read for each period), as a
        :class:`~cloudkitty.orchestrator.shared.SharedCollection` does
        for the periods of its rounds.
        """
        usage_of = usage_of or self.usage
        result = ScopeResult(scope_id)

        def periods():
            # Read once, under the caller's lock: from then on this worker
            # alone moves the scope's state.
            state = self._scope_state.get_state(scope_id)
            if state is not None and not state['active']:
                LOG.debug('Scope %s is inactive, not rated', scope_id)
                result.inactive = True
                return
            last = state['last_processed_timestamp'] if state else None
            while self._more(result, max_periods):
                start = self.next_start(last)
                if start is None:
                    break
                self.rate_period(
                    scope_id, start,
                    usage=usage_of(scope_id, start, start + self.period),
                    still_held=still_held,
                    states=None if states is None else states(start),
                    store=store)
                result.rated.append(start)
                last = start
        return self._guarded(result, 'Scope', periods)

    def _more(self, result, max_periods):
        if self._stop.is_set():
            return False
        return max_periods is None or len(result.rated) < max_periods

    @staticmethod
    def _guarded(result, what, work):
        """Run ``work()``; a failure abandons the scope for this pass:
        logged, and kept in ``result.error``."""
        scope_id = result.scope_id
        log = LOG.warning
        try:
            work()
        except ScopeAbandoned as exc:
            result.error = str(exc)
            if exc.metric is not None:
                result.failure = ck_health.COLLECTION
            elif exc.reason != 'stop requested':
                result.failure = ck_health.RATING
            else:
                log = LOG.info
        except Exception as exc:  # any failure of a collaborator
            result.error = f'scope {scope_id}: {exc.__class__.__name__}: {exc}'
            result.failure = ck_health.RATING
            # An outage fails every scope on every pass: the traceback only
            # where asked for.
            LOG.debug('%s %s: traceback', what, scope_id, exc_info=True)
        else:
            return result
        # Outside the except clause: oslo.log appends the exception being
        # handled to a warning, which would say it all twice.
        log_abandoned(what, scope_id, result.error, log)
        return result

    def reprocess(self, task, schedule, max_periods=None, *,
                  still_held=None):
        """Rate again the periods of a reprocessing task, oldest first.

        ``task`` is a dict of :class:`~cloudkitty.storage_state.reprocessing.
        ReprocessingScheduleManager` (``id``, ``identifier``,
        ``start_reprocess_time``, ``end_reprocess_time``,
        ``current_reprocess_time``); its periods run from the start to the
        end, both included. The first period begins by deleting the scope's
        stored data of the whole window, then each period is rated with the
        rules valid at its start and recorded as the task's
        ``current_reprocess_time`` (the scope state is left alone).

        Crash-safe like :meth:`rate_period`: until a period is recorded it is
        rated again, and the window's delete is repeated while the task has
        not recorded its first period. Stops like :meth:`rate_scope`; returns
        a :class:`ScopeResult`; never raises for a collaborator's failure.
        ``still_held`` is handed to each :meth:`rate_period`.
        """
        scope_id = task['identifier']
        result = ScopeResult(scope_id)

        def periods():
            current = task['current_reprocess_time']
            while self._more(result, max_periods):
                start = ck_periods.next_reprocess_start(
                    task['start_reprocess_time'], task['end_reprocess_time'],
                    current, self._settings.period)
                if start is None:
                    break
                if current is None:
                    self._storage.delete(
                        begin=task['start_reprocess_time'],
                        end=task['end_reprocess_time'] + self.period,
                        filters={self._settings.scope_key: scope_id})
                self.rate_period(
                    scope_id, start,
                    usage=self.usage(scope_id, start, start + self.period),
                    still_held=still_held, record=functools.partial(
                        schedule.set_current_reprocess_time, task['id'],
                        start))
                current = start
                result.rated.append(start)
        return self._guarded(result, 'Reprocessing of scope', periods)

    def rate_period(self, scope_id, start, *, usage, still_held=None,
                    record=None, states=None, store=None):
        """Collect, rate, filter, store and record one period of a scope.

        :param usage: ``usage(metric) -> (type, [DataPoint])`` of this
            period of the scope, raising ``NoDataCollected`` when there is
            nothing (:meth:`usage`, or a view of answers shared by several
            scopes); where ``usage.ready(metric)`` is true the answer is
            there already and is taken without a thread of the pool.
        :param still_held: ``still_held()`` says, just before the store,
            whether the scope's lock is still this worker's: where it is
            not (expired, or gone with a restarted coordination backend)
            the period is abandoned rather than stored beside the worker
            that took the lock since. ``None``: no check.
        :param record: runs once the period is stored; by default it sets
            the scope's ``last_processed_timestamp`` to ``start``.
        :param states: the rating modules' stored states to rate with
            (default: read now, so that a change applies from the next
            period rated).
        :param store: ``store(scope_id, frame, start, record=,
            still_held=, rating=)`` (:meth:`~cloudkitty.orchestrator.
            batch.StoreGroup.store`) takes the period collected, to rate,
            filter, store and then ``record()`` it later, with other
            periods (``rating`` is its :class:`Rating`); ``None``: all
            done here, now.

        Raises :class:`ScopeAbandoned` when a metric's collection fails or
        times out, when stopping before anything was stored or when the
        lock was lost; errors of the rating modules, the storage or the
        state (or of ``store``) are raised as they are. Returns the
        :class:`~cloudkitty.dataframe.DataFrame` stored, or the one handed
        to ``store`` (not rated yet).
        """
        frame = dataframe.DataFrame(start, start + self.period)
        for type_, points in self._collect(scope_id, start, usage):
            frame.add_points(points, type_)
        if states is None:
            states = self.module_states()
        rater = Rating(self._pipeline_of(states),
                       functools.partial(self._filter, scope_id=scope_id))
        if store is None:
            frame, skipped = rater.rated(frame, scope_id)
        self._check_storable(scope_id, start, still_held)
        if record is None:
            record = functools.partial(
                self._scope_state.set_last_processed_timestamp, scope_id,
                start)
        if store is not None:
            store(scope_id, frame, start, record=record,
                  still_held=still_held, rating=rater)
            return frame
        # Store, then record: see the module's docstring.
        self._storage.replace(frame, scope_id)
        record()
        log_stored(scope_id, start, len(frame), skipped)
        return frame

    def _check_storable(self, scope_id, start, still_held):
        """Raise :class:`ScopeAbandoned` when the period of ``scope_id``
        starting at ``start`` must not be stored: a stop was requested, or
        the lock is no longer this worker's."""
        if self._stop.is_set():
            # Nothing of this period has been stored yet.
            raise ScopeAbandoned(
                scope_id, 'stop requested', period_start=start)
        if still_held is not None and not still_held():
            raise ScopeAbandoned(
                scope_id, f'{LOCK_LOST}: another worker may rate it',
                period_start=start)

    def _collect(self, scope_id, start, usage):
        """``[(type, [points])]`` of every metric, in metrics order."""
        if not self._metrics:
            return []
        timeout = self._settings.collector_request_timeout
        started = {}

        def retrieve(metric):
            started[metric] = time.monotonic()
            return usage(metric)

        results = {}

        def take(metric, answer):
            try:
                results[metric] = answer()
            except ck_collector.NoDataCollected:
                LOG.debug('No data for scope %s metric %s period %s',
                          scope_id, metric, start.isoformat())
            except Exception as exc:
                raise ScopeAbandoned(
                    scope_id, f'{exc.__class__.__name__}: {exc}',
                    metric=metric, period_start=start,
                    source=self._source) from exc

        metrics = self._metrics
        answered = getattr(usage, 'ready', None)
        if answered is not None:
            # The answers already there are taken here: a thread of the
            # pool for each would cost more than the taking.
            ready = [m for m in metrics if answered(m)]
            for metric in ready:
                take(metric, functools.partial(retrieve, metric))
            metrics = [m for m in metrics if m not in ready]
        executor = self._executor()
        futures = {executor.submit(retrieve, m): m for m in metrics}
        pending = set(futures)
        try:
            while pending:
                done, pending = concurrent.futures.wait(
                    pending, timeout=self._wait_time(
                        started, futures, pending),
                    return_when=concurrent.futures.FIRST_COMPLETED)
                for future in done:
                    take(futures[future], future.result)
                now = time.monotonic()
                for future in pending:
                    metric = futures[future]
                    if metric in started and now - started[metric] > timeout:
                        raise ScopeAbandoned(
                            scope_id, f'collection timed out after {timeout}s',
                            metric=metric, period_start=start,
                            source=self._source)
                if pending and self._stop.is_set():
                    raise ScopeAbandoned(scope_id, 'stop requested',
                                         period_start=start)
        finally:
            if pending:
                # Abandoned: a call that hangs keeps its thread, so the next
                # period gets a pool of its own; nothing waits for the old.
                self._collect_pool = None
                executor.shutdown(wait=False, cancel_futures=True)
        return [results[m] for m in self._metrics if m in results]

    def _executor(self):
        # One pool for the worker's life: starting threads for every period
        # costs more than collecting a small scope.
        if self._collect_pool is None:
            self._collect_pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=min(self._settings.max_threads,
                                len(self._metrics)),
                thread_name_prefix='collect')
        return self._collect_pool

    def _wait_time(self, started, futures, pending):
        timeout = self._settings.collector_request_timeout
        now = time.monotonic()
        deadlines = [started[futures[f]] + timeout - now
                     for f in pending if futures[f] in started]
        return max(0.001, min(deadlines + [_POLL_SECONDS]))

    def _filter(self, frame, scope_id):
        """Drop the points a skip predicate holds for; ``(frame, dropped)``.

        A predicate that fails on a point keeps the point: a bad expression
        must not lose usage. The failures are logged once per period.
        Without any predicate, ``frame`` itself is returned: a priced frame
        keeps its price columns, its points unbuilt (see
        :meth:`~cloudkitty.dataframe.DataFrame.itercolumns`).
        """
        if self._skip_default is None and not self._skip_by_type:
            return frame, 0
        kept = dataframe.DataFrame(frame.start, frame.end)
        dropped = failures = 0
        first_failure = None
        for type_, points in frame.itertypes():
            predicate = self._skip_by_type.get(type_, self._skip_default)
            if predicate is None:
                kept.add_points(points, type_)
                continue
            for point in points:
                try:
                    drop = predicate(point)
                except ck_skip.SkipEvaluationError as exc:
                    failures += 1
                    first_failure = first_failure or exc
                    drop = False
                if drop:
                    dropped += 1
                else:
                    kept.add_point(point, type_)
        if failures:
            LOG.warning('Scope %s period %s: skip expression failed on %d '
                        'points, kept them: %s', scope_id,
                        frame.start.isoformat(), failures, first_failure)
        return kept, dropped
