"""The periods a processor rates, rated and stored together: a
:class:`StoreGroup`.

The scope worker rates and stores one period in one call
(:meth:`~cloudkitty.orchestrator.worker.ScopeWorker.rate_period`); each
call is a transaction of its own, whose fixed costs (round trips, the
commit) dominate a period of a few thousand points, and each rating module
prices the one frame, whose fixed costs dominate too. The processor hands
the worker a group's :meth:`StoreGroup.store` instead: the periods
collected are kept, then rated together (each module prices the frames of
one start in one call: :meth:`~cloudkitty.rating.Pipeline.rate_many`),
filtered, and stored together by one ``storage.replace_many`` (one
transaction on the ``sqlalchemy`` backend) once ``max_points`` points are
pending, or when the processor flushes (the end of a round, of a pass).

The contract of a period stored alone holds for the group:

- a scope's state is recorded only once its periods are committed: a
  crash before leaves them due, and the replace of the next attempt
  removes whatever this one stored; a period is stored exactly once;
- a scope whose lock is no longer this worker's at the flush has none of
  its pending periods stored nor recorded (another worker may rate them);
- a scope whose periods could not be rated, stored (the flush failed) or
  recorded stores no later period in the pass: its next period would be
  recorded past the one that is missing; a period the rating modules
  fail on fails its scope alone;
- the lock of a scope is held until its periods are stored and recorded:
  the processor hands its release to :meth:`StoreGroup.done`.

Every outcome is logged per scope: a line per period stored (``Rated
scope ... period ...``), a warning for a scope whose periods were not.
"""

import dataclasses
import logging

from cloudkitty.orchestrator import health as ck_health
from cloudkitty.orchestrator import worker as ck_worker

LOG = logging.getLogger(__name__)

#: Points pending before the group stores them: one transaction per this
#: many points at most (memory stays bounded: the frames are kept until
#: stored).
MAX_POINTS = 50_000


class NotStored(ck_worker.ScopeAbandoned):
    """A scope's pending periods were not rated (a rating module failed),
    stored (the store failed, or its lock was lost) or recorded: it rates
    no more periods in this pass. Its reason names the periods."""


@dataclasses.dataclass
class _Period:
    start: object
    frame: object
    record: object
    rating: object = None   # a worker.Rating until rated, then None
    skipped: int = 0


@dataclasses.dataclass
class _Scope:
    """What the group knows of one scope: its periods waiting to be stored,
    the starts stored, why it failed, and once its visit is over
    ``(result, finish, release)``."""

    still_held: object = None
    periods: list = dataclasses.field(default_factory=list)
    stored: list = dataclasses.field(default_factory=list)
    error: str = None
    visit: tuple = None


class StoreGroup:
    """Periods of several scopes, rated together and stored in one call.

    :param storage: a v2 storage (``replace_many([(frame, scope_id)])``).
    :param max_points: :meth:`flush` once this many points are pending.

    Used as a context manager: leaving the block flushes what is pending;
    leaving it on an exception stores nothing more, and releases the locks
    of the scopes still waiting (their periods stay due).
    """

    def __init__(self, storage, max_points=MAX_POINTS):
        self._storage = storage
        self._max_points = max_points
        self._scopes = {}  # scope id -> _Scope, in the order they came
        self._points = 0

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, _tb):
        if exc is None:
            self.flush()
            return False
        for scope in self._scopes.values():
            if scope.visit is not None:
                scope.visit[2]()
        self._scopes.clear()
        return False

    def store(self, scope_id, frame, start, *, record, still_held=None,
              rating=None):
        """Keep ``frame``, the period of ``scope_id`` starting at ``start``,
        to be stored with the others; ``record()`` records it once
        stored; ``still_held()`` says at the flush whether the scope's
        lock is still this worker's (``None``: no check); ``rating`` (a
        :class:`~cloudkitty.orchestrator.worker.Rating`) rates and filters
        it at the flush, with the other periods of its pipeline (``None``:
        ``frame`` is stored as it is).

        The scope's periods must come in order. Flushes the group when
        ``max_points`` points are pending. Raises :class:`NotStored` when
        the scope's periods were not stored (by this call's flush or an
        earlier one).
        """
        scope = self._scopes.setdefault(scope_id, _Scope())
        if scope.error is None:
            scope.still_held = still_held
            scope.periods.append(_Period(start, frame, record, rating))
            self._points += len(frame)
            if self._points >= self._max_points:
                self.flush(storing=scope_id)
        if scope.error is not None:
            raise NotStored(scope_id, scope.error)

    def done(self, scope_id, result, finish, release):
        """The visit of ``scope_id`` is over, its lock still held: once
        its periods are stored and recorded (now, if none is pending),
        ``result`` (a :class:`~cloudkitty.orchestrator.worker.
        ScopeResult`) lists the starts stored and says why the others were
        not, ``finish(result)`` is called and then ``release()``."""
        scope = self._scopes.get(scope_id)
        if scope is None:
            try:
                finish(result)
            finally:
                release()
            return
        scope.visit = (result, finish, release)
        if not scope.periods:
            self._close(scope_id)

    def flush(self, storing=None):
        """Rate every pending period (:meth:`_rate`), store them in one
        ``replace_many``, then record each scope's last one; end the
        visits that were waiting.

        A scope whose periods were not stored is logged as abandoned,
        except ``storing``, the scope whose :meth:`store` flushes: its
        worker says so when :class:`NotStored` reaches it.
        """
        pending = {scope_id: scope for scope_id, scope in self._scopes.items()
                   if scope.periods}
        self._points = 0
        for scope_id, scope in list(pending.items()):
            if scope.still_held is not None and not scope.still_held():
                self._fail(scope_id, scope, storing,
                           f'{ck_worker.LOCK_LOST} before its periods were '
                           'stored: another worker may rate them')
                del pending[scope_id]
        for scope_id, reason in self._rate(pending).items():
            self._fail(scope_id, pending.pop(scope_id), storing, reason)
        items = [(period.frame, scope_id)
                 for scope_id, scope in pending.items()
                 for period in scope.periods]
        if items:
            try:
                self._storage.replace_many(items)
            except Exception as exc:  # any storage failure: logged per scope
                LOG.debug('Storing %d periods failed: traceback', len(items),
                          exc_info=True)
                for scope_id, scope in pending.items():
                    self._fail(scope_id, scope, storing, f'storing failed: '
                               f'{exc.__class__.__name__}: {exc}')
                pending = {}
        for scope_id, scope in pending.items():
            self._record(scope_id, scope, storing)
        for scope_id in [scope_id for scope_id, scope in self._scopes.items()
                         if scope.visit is not None]:
            self._close(scope_id)

    @staticmethod
    def _rate(pending):
        """Rate and filter the periods of ``pending`` (``{scope_id:
        _Scope}``) not rated yet: those of one pipeline key (the same
        modules in the same order) in one :meth:`~cloudkitty.rating.
        Pipeline.rate_many`. Returns ``{scope_id: why its periods are not
        stored}`` for the scopes one of whose periods failed."""
        batches = {}                     # pipeline key -> [(scope, period)]
        for scope_id, scope in pending.items():
            for period in scope.periods:
                if period.rating is not None:
                    batches.setdefault(period.rating.pipeline.key, []).append(
                        (scope_id, period))
        failed = {}
        for batch in batches.values():
            pipeline = batch[0][1].rating.pipeline
            try:
                results = pipeline.rate_many(
                    [(period.frame, scope_id) for scope_id, period in batch])
            except Exception as exc:  # loading the rules: every period's
                LOG.debug('Rating %d periods failed: traceback', len(batch),
                          exc_info=True)
                results = [exc] * len(batch)
            for (scope_id, period), result in zip(batch, results):
                if isinstance(result, Exception):
                    failed.setdefault(scope_id, f'rating failed: '
                                      f'{result.__class__.__name__}: '
                                      f'{result}')
                    continue
                period.frame, period.skipped = period.rating.keep(result)
                period.rating = None
        return failed

    @staticmethod
    def _record(scope_id, scope, storing):
        periods, scope.periods = scope.periods, []
        try:
            # The state is the last period's start: recording the others
            # first would change nothing.
            periods[-1].record()
        except Exception as exc:  # the state's failure: logged per scope
            # Stored but not recorded: rated again, and replaced.
            scope.error = (f'periods {_starts(periods)} stored but not '
                           'recorded (rated again, and replaced, on a later '
                           f'pass): recording its state failed: '
                           f'{exc.__class__.__name__}: {exc}')
            _abandoned(scope_id, scope, storing)
            return
        for period in periods:
            scope.stored.append(period.start)
            ck_worker.log_stored(scope_id, period.start, len(period.frame),
                                 period.skipped)

    @staticmethod
    def _fail(scope_id, scope, storing, reason):
        periods, scope.periods = scope.periods, []
        scope.error = (f'periods {_starts(periods)} not stored nor '
                       f'recorded, {reason}')
        _abandoned(scope_id, scope, storing)

    def _close(self, scope_id):
        scope = self._scopes.pop(scope_id)
        result, finish, release = scope.visit
        try:
            result.rated = scope.stored
            if scope.error is not None and result.error is None:
                result.error = str(NotStored(scope_id, scope.error))
            if scope.error is not None:
                # Neither a collection nor a stop: the storage or the lock.
                result.failure = ck_health.RATING
            finish(result)
        finally:
            release()


def _abandoned(scope_id, scope, storing):
    """Log that ``scope_id`` is abandoned for the pass (``scope.error``
    says why), unless it is ``storing``: its worker logs that one, from
    the :class:`NotStored` it meets (see
    :meth:`~cloudkitty.orchestrator.worker.ScopeWorker.rate_scope`)."""
    if scope_id != storing:
        ck_worker.log_abandoned('Scope', scope_id,
                                NotStored(scope_id, scope.error), LOG.warning)


def _starts(periods):
    return ', '.join(period.start.isoformat() for period in periods)
