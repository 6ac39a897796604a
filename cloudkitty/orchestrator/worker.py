"""The scope worker: rate one scope, period after period.

Everything it talks to is handed in (collector, storage, scope state, rating
modules and their state, skip predicates, settings, a clock), so tests give
it fakes. For one period ``[start, start + period)`` it

1. collects every metric concurrently (at most ``max_threads`` at a time,
   each call bounded by ``collector_request_timeout``);
2. builds one :class:`~cloudkitty.dataframe.DataFrame` and runs the enabled
   rating modules over it, in descending priority;
3. drops the points its skip expression holds for;
4. stores the period idempotently: the scope's stored data of
   ``[start, end)`` is deleted, then the frame pushed (or both at once with
   ``storage.replace`` where the backend has it), and only then is
   ``start`` recorded as the scope's ``last_processed_timestamp``.

Step 4's order is what makes a crash harmless: until the state is written
the period is still due, so it is rated again after a restart, and the
delete that starts the store removes whatever a previous attempt pushed.
A period is therefore stored exactly once, however often it is attempted.

:meth:`ScopeWorker.reprocess` re-rates the window of a reprocessing task
the same way, recording its progress in the task instead of the scope state.
"""

import concurrent.futures
import contextlib
import dataclasses
import datetime
import functools
import logging
import threading
import time

from cloudkitty import collector as ck_collector
from cloudkitty import dataframe
from cloudkitty import rating
from cloudkitty.orchestrator import skip as ck_skip
from cloudkitty import storage_state

LOG = logging.getLogger(__name__)

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
    ``COLLECTION`` (a metric's collection failed or timed out) or
    ``RATING`` (anything else: rating modules, storage, scope state),
    ``None`` when nothing did (a stop request is no failure);
    ``inactive``: the scope is marked inactive and was not looked at.
    """

    scope_id: str
    rated: list = dataclasses.field(default_factory=list)
    error: str = None
    failure: str = None
    inactive: bool = False


#: :attr:`ScopeResult.failure` values.
COLLECTION, RATING = 'collection', 'rating'


def month_start(now):
    """Midnight UTC of the first day of ``now``'s month, aware."""
    now = now.astimezone(datetime.timezone.utc)
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_period_start(last, period, wait_periods, now):
    """Start of the scope's next period to rate, or ``None`` if none is due.

    ``last`` is the start of the last period processed (``None`` if the
    scope never was). The candidate is ``last + period``, or the start of
    ``now``'s month (UTC) for a new scope. It is due iff
    ``candidate + wait_periods * period < now``, strictly, as the
    specification says. A period runs from its start for ``period``
    seconds, so with the default ``wait_periods`` of 2 a period is rated
    once a whole further period has passed after its end; with
    ``wait_periods`` 0 it would be rated while still running, which is why
    the default is not 0.

    The same rule guards a new scope's first period, so a scope first seen
    in the first hours of a month does not rate an unfinished period.
    """
    step = datetime.timedelta(seconds=period)
    candidate = month_start(now) if last is None else last + step
    if candidate + wait_periods * step < now:
        return candidate
    return None


def due_periods(last, period, wait_periods, now):
    """How many periods of a scope are due at ``now`` and not yet rated.

    The periods counted are those :func:`next_period_start` would hand
    out one after the other if each were rated at once: the next one and
    every later one also due by the same rule. 0 exactly when
    :func:`next_period_start` returns ``None``. The newest due period
    starts ``(due_periods - 1) * period`` seconds after the next one.
    """
    first = next_period_start(last, period, wait_periods, now)
    if first is None:
        return 0
    step = datetime.timedelta(seconds=period)
    # Period k (from 0) is due iff first + (k + wait_periods) * step < now.
    room = now - first - wait_periods * step
    return -(-room // step)


def next_reprocess_start(start, end, current, period):
    """Next period start of a reprocessing task, or ``None`` once finished.

    ``start`` and ``end`` are the first and the last period starts of the
    window (both included); ``current`` is the last one reprocessed
    (``None`` before the first).
    """
    if current is None:
        candidate = start
    else:
        candidate = current + datetime.timedelta(seconds=period)
    return candidate if candidate <= end else None


class SharedCollection:
    """The usage of one pass's scopes, collected once per metric and period.

    :param collector: has ``retrieve(metric_name, start, end, project_id)``
        and ``retrieve_many(metric_name, start, end, scope_ids)`` (see
        :meth:`cloudkitty.collector.BaseCollector.retrieve_many`).
    :param nexts: ``{scope_id: start of its next due period or None}``.
    :param due: ``f(start of a period recorded) -> start of the next due
        period or None``.

    The pass goes in rounds. :meth:`next_round` picks the oldest next
    period among the scopes still in the pass; the round's *group* is the
    scopes due in that period, and only they rate a period in that round
    (:meth:`in_round`). So scopes that lag behind catch up with the others
    first, and each period is collected once. A scope with nothing due is
    in no round.

    The first :meth:`retrieve` of a metric by a member of the group
    collects that metric for the whole group in one ``retrieve_many``
    call; the other members, asking later (or meanwhile, from other
    threads), get their part of that answer. Each part is handed out once
    and then forgotten; the parts nobody took (a scope that failed or was
    locked) are forgotten at the next round. A scope outside the group
    (its state moved since the pass began), or asking again for a part it
    had, is collected alone.

    A failure of the group's collection is each member's failure in this
    pass: raised to every one of them (a ``CollectError`` naming that
    scope), so that a source that is down is asked once per metric, not
    once per scope. Members are retried on a later pass.

    :meth:`advance` records that a scope stored a period;
    :meth:`round_modules` reads the rating modules' state once per round.
    """

    def __init__(self, collector, nexts, due):
        self._collector = collector
        self._nexts = dict(nexts)
        self._due = due
        self._start = None           # the round's period start
        self._group = frozenset()    # the scopes due then
        self._answers = {}           # metric -> Future of its answer
        self._taken = set()          # (metric, scope) parts handed out
        self._modules = None         # the modules' state of the round
        self._lock = threading.Lock()

    def advance(self, scope_id, start):
        """``scope_id`` recorded the period starting at ``start``."""
        following = self._due(start)
        with self._lock:
            self._nexts[scope_id] = following

    def next_round(self, scope_ids):
        """Begin a round among ``scope_ids``, the scopes still in the pass.

        :returns: the round's period start (``None``: nothing is due)
        """
        with self._lock:
            starts = [self._nexts.get(s) for s in scope_ids]
            self._start = min((s for s in starts if s is not None),
                              default=None)
            self._group = frozenset(
                s for s in scope_ids if self._nexts.get(s) == self._start
                and self._start is not None)
            self._answers.clear()
            self._taken.clear()
            self._modules = None
        return self._start

    def round_modules(self, start, read):
        """The rating modules' state for a period starting at ``start``:
        ``read()`` once per round for the round's period (the scopes of a
        round rate it with the same modules), every time for another."""
        if start != self._start:
            return read()
        with self._lock:
            if self._modules is None:
                self._modules = read()
            return self._modules

    def in_round(self, scope_id):
        """Whether ``scope_id`` rates a period in this round."""
        return scope_id in self._group

    def answered(self, metric, start, scope_id):
        """Whether :meth:`retrieve` of this metric, period and scope would
        take its part of an answer already there (no wait, no call)."""
        with self._lock:
            future = self._answers.get(metric)
            return (future is not None and future.done()
                    and start == self._start and scope_id in self._group
                    and (metric, scope_id) not in self._taken)

    def retrieve(self, metric, start, end, scope_id):
        """``(type, [DataPoint])`` of ``metric`` for one scope and period.

        :raises NoDataCollected: the scope has no data
        :raises CollectError: the collection failed (for the group, or for
            this scope alone)
        """
        with self._lock:
            shared = (start == self._start and scope_id in self._group
                      and (metric, scope_id) not in self._taken)
            if shared:
                self._taken.add((metric, scope_id))
                future = self._answers.get(metric)
                leader = future is None
                if leader:
                    future = self._answers[metric] = \
                        concurrent.futures.Future()
                group = self._group
        if not shared:
            return self._collector.retrieve(metric, start, end,
                                            project_id=scope_id)
        if leader:
            try:
                future.set_result(self._collector.retrieve_many(
                    metric, start, end, sorted(group)))
            except Exception as exc:  # each member raises it, see below
                future.set_exception(exc)
        try:
            answer = future.result()
        except ck_collector.CollectError as exc:
            raise ck_collector.CollectError(
                exc.collector, exc.metric, scope_id, exc.reason) from exc
        with self._lock:
            part = answer.pop(scope_id, None)
        if part is None:
            raise ck_collector.NoDataCollected(
                getattr(self._collector, 'collector_name', None), metric,
                scope_id)
        return part


class ScopeWorker:
    """Rates scopes with the collaborators it is given.

    :param collector: has ``retrieve(metric_name, start, end,
        project_id=None, q_filter=None) -> (type, [DataPoint])``, raising
        ``cloudkitty.collector.NoDataCollected`` when there is nothing.
    :param storage: a v2 storage: ``delete(begin, end, filters)`` and
        ``push(frames, scope_id)``, or ``replace(frame, scope_id)``.
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
                 stop_event=None, clock=storage_state.utcnow):
        self._collector = collector
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
        self._shared = None
        self._still_held = None
        self._source = getattr(collector, 'collector_name', None) or \
            type(collector).__name__

    @property
    def period(self):
        return datetime.timedelta(seconds=self._settings.period)

    def lag(self, scope_id):
        """``(last processed period start or None, due periods)`` of the
        scope now (:func:`due_periods`)."""
        last = self._scope_state.get_last_processed_timestamp(scope_id)
        return last, due_periods(last, self._settings.period,
                                 self._settings.wait_periods, self._clock())

    def lags(self, scope_ids):
        """``{scope_id: (last processed period start or None, due
        periods)}`` of the active scopes among ``scope_ids`` now, from one
        read of the scope states (:meth:`lag` for many)."""
        now = self._clock()
        lasts = self._scope_state.get_last_processed_timestamps(scope_ids)
        return {scope_id: (last, due_periods(last, self._settings.period,
                                             self._settings.wait_periods, now))
                for scope_id, last in lasts.items()}

    @contextlib.contextmanager
    def shared_collection(self, scope_ids):
        """Share collections between ``scope_ids`` until the block ends.

        With a collector that has ``grouped_collection``, every scope
        rated inside the block takes its usage from a
        :class:`SharedCollection` of those scopes: each metric of a period
        is collected once for all of them that are due in that period. A
        scope's period is still stored and recorded by :meth:`rate_period`
        alone, under the caller's lock of that scope; the collection merely
        reads the source sooner. For the regular rating of one pass (not
        for reprocessing, whose periods are not the scopes' next ones).

        Yields the :class:`SharedCollection` (the caller then rates in its
        rounds: ``next_round`` and ``in_round``, one period per scope), or
        ``None`` when the collector cannot group collections (nothing
        changes then).
        """
        if not getattr(self._collector, 'grouped_collection', False):
            yield None
            return
        # One read of every state; an inactive scope has nothing due.
        lasts = self._scope_state.get_last_processed_timestamps(scope_ids)
        nexts = {scope_id: self._next_start(lasts[scope_id])
                 if scope_id in lasts else None
                 for scope_id in dict.fromkeys(scope_ids)}
        self._shared = SharedCollection(self._collector, nexts,
                                        self._next_start)
        try:
            yield self._shared
        finally:
            self._shared = None

    @contextlib.contextmanager
    def fenced(self, still_held):
        """Within the block, store a period only if ``still_held()`` says
        the scope's lock is still this worker's (checked just before each
        store): a worker whose lock expired or vanished with a restarted
        coordination backend abandons the scope instead of rating it
        beside the worker that took the lock since."""
        self._still_held = still_held
        try:
            yield
        finally:
            self._still_held = None

    def rate_scope(self, scope_id, max_periods=None):
        """Rate every due period of ``scope_id``, oldest first.

        Stops when nothing is due, when ``max_periods`` periods were rated,
        when the stop event is set, or at the first failure: the scope is
        then abandoned for this pass, with a log line naming the scope, the
        metric and the error, and rated again on a later pass. Never raises
        for a failure of a collaborator. Returns a :class:`ScopeResult`.
        """
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
                start = self._next_start(last)
                if start is None:
                    break
                self.rate_period(scope_id, start)
                result.rated.append(start)
                last = start
        return self._guarded(result, 'Scope', periods)

    def _next_start(self, last):
        return next_period_start(last, self._settings.period,
                                 self._settings.wait_periods, self._clock())

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
                result.failure = COLLECTION
            elif exc.reason != 'stop requested':
                result.failure = RATING
            else:
                log = LOG.info
        except Exception as exc:  # any failure of a collaborator
            result.error = f'scope {scope_id}: {exc.__class__.__name__}: {exc}'
            result.failure = RATING
            # An outage fails every scope on every pass: the traceback only
            # where asked for.
            LOG.debug('%s %s: traceback', what, scope_id, exc_info=True)
        else:
            return result
        # Outside the except clause: oslo.log appends the exception being
        # handled to a warning, which would say it all twice.
        log('%s %s abandoned for this pass, to be retried: %s', what,
            scope_id, result.error)
        return result

    def reprocess(self, task, schedule, max_periods=None):
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
        """
        scope_id = task['identifier']
        result = ScopeResult(scope_id)

        def periods():
            current = task['current_reprocess_time']
            while self._more(result, max_periods):
                start = next_reprocess_start(
                    task['start_reprocess_time'], task['end_reprocess_time'],
                    current, self._settings.period)
                if start is None:
                    break
                if current is None:
                    self._storage.delete(
                        begin=task['start_reprocess_time'],
                        end=task['end_reprocess_time'] + self.period,
                        filters={self._settings.scope_key: scope_id})
                self.rate_period(scope_id, start, record=lambda s=start: (
                    schedule.set_current_reprocess_time(task['id'], s)))
                current = start
                result.rated.append(start)
        return self._guarded(result, 'Reprocessing of scope', periods)

    def rate_period(self, scope_id, start, record=None):
        """Collect, rate, filter, store and record one period of a scope.

        ``record()`` runs once the period is stored; by default it sets the
        scope's ``last_processed_timestamp`` to ``start``.

        Raises :class:`ScopeAbandoned` when a metric's collection fails or
        times out, or when stopping before anything was stored; errors of
        the storage or of the state are raised as they are. Returns the
        stored :class:`~cloudkitty.dataframe.DataFrame`.
        """
        end = start + self.period
        usage = self._collect(scope_id, start, end)
        frame = dataframe.DataFrame(start, end)
        for type_, points in usage:
            frame.add_points(points, type_)
        frame = self._rate(frame, start, scope_id)
        frame, skipped = self._filter(frame, scope_id)
        if self._stop.is_set():
            # Nothing of this period has been stored yet.
            raise ScopeAbandoned(
                scope_id, 'stop requested', period_start=start)
        if self._still_held is not None and not self._still_held():
            raise ScopeAbandoned(
                scope_id, 'its lock was lost (expired, or the coordination '
                'backend restarted without it): another worker may rate it',
                period_start=start)
        self._store(scope_id, frame)
        if record is None:
            self._scope_state.set_last_processed_timestamp(scope_id, start)
            if self._shared is not None:
                self._shared.advance(scope_id, start)
        else:
            record()
        LOG.info('Rated scope %s period %s: %d points stored, %d skipped',
                 scope_id, start.isoformat(), len(frame), skipped)
        return frame

    def _collect(self, scope_id, start, end):
        """``[(type, [points])]`` of every metric, in metrics order."""
        if not self._metrics:
            return []
        timeout = self._settings.collector_request_timeout
        started = {}
        shared = self._shared

        def retrieve(metric):
            started[metric] = time.monotonic()
            if shared is not None:
                return shared.retrieve(metric, start, end, scope_id)
            return self._collector.retrieve(metric, start, end,
                                            project_id=scope_id, q_filter=None)

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
        if shared is not None:
            # The parts of answers already there are taken here: a thread
            # of the pool for each would cost more than the taking.
            ready = [m for m in metrics
                     if shared.answered(m, start, scope_id)]
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

    def _rate(self, frame, start, scope_id):
        if self._module_state is None:
            states = {}
        elif self._shared is not None:
            states = self._shared.round_modules(start,
                                                self._module_state.get_all)
        else:
            states = self._module_state.get_all()
        pipeline = rating.enabled_pipeline(self._modules, states)
        for module in pipeline:
            module.reload_config(start)
        return rating.rate(frame, pipeline, scope_id)

    def _filter(self, frame, scope_id):
        """Drop the points a skip predicate holds for; ``(frame, dropped)``.

        A predicate that fails on a point keeps the point: a bad expression
        must not lose usage. The failures are logged once per period.
        """
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

    def _store(self, scope_id, frame):
        """Make ``frame`` the scope's only stored data for its period."""
        replace = getattr(self._storage, 'replace', None)
        if replace is not None:
            replace(frame, scope_id)
        else:
            self._storage.delete(
                begin=frame.start, end=frame.end,
                filters={self._settings.scope_key: scope_id})
            self._storage.push([frame], scope_id)
