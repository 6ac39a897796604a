"""How the processor's workers are doing: counters and lag warnings.

Each worker process keeps its own :class:`Counters` (periods rated,
collection and rating errors, per scope) and writes them to a file of its
own in a directory the processor's master creates, where the process
serving ``/metrics`` (:mod:`cloudkitty.orchestrator.metrics`) adds up the
files of every worker (:func:`read_counters`). A worker restarted by the
master reads its file back and counts on from there, so a counter never
goes down while the processor runs.

:class:`LagWatch` logs a warning when a scope is more than
``[orchestrator] lag_warning_periods`` periods behind after a pass over
it, and an info line once it is back within the limit. One worker of each
processor also sweeps the scopes it did not visit (other workers' shares,
locks held elsewhere) and warns of those behind that have not moved since
its previous sweep: a scope whose worker is stuck is not silent either.
"""

import json
import logging
import os
import time

LOG = logging.getLogger(__name__)

#: The counters of a scope, in the order the endpoint lists them.
PERIODS_RATED = 'periods_rated'
PERIODS_REPROCESSED = 'periods_reprocessed'
COLLECTION_ERRORS = 'collection_errors'
RATING_ERRORS = 'rating_errors'
NAMES = (PERIODS_RATED, PERIODS_REPROCESSED, COLLECTION_ERRORS,
         RATING_ERRORS)

#: What failed when a scope was abandoned (:attr:`~cloudkitty.orchestrator.
#: worker.ScopeResult.failure`): a metric's collection, or anything else.
COLLECTION, RATING = 'collection', 'rating'
_ERROR_COUNTERS = {COLLECTION: COLLECTION_ERRORS, RATING: RATING_ERRORS}

#: Least seconds between two writes of a worker's file within a pass.
FLUSH_SECONDS = 1.0
SUFFIX = '.json'


class Counters:
    """One worker's counters, ``{scope_id: {name: count}}``.

    :param path: the file they are written to (``None``: kept in memory
        only); counts already in it are counted on from.
    :param clock: monotonic seconds, for :data:`FLUSH_SECONDS`.
    """

    def __init__(self, path=None, clock=time.monotonic):
        self._path = path
        self._clock = clock
        self._counts = _load(path) if path is not None else {}
        self._dirty = False
        self._flushed = clock()

    def add(self, scope_id, name, count=1):
        """Add ``count`` to counter ``name`` (one of :data:`NAMES`)."""
        if not count:
            return
        scope = self._counts.setdefault(scope_id, dict.fromkeys(NAMES, 0))
        scope[name] += count
        self._dirty = True
        if self._clock() - self._flushed >= FLUSH_SECONDS:
            self.flush()

    def snapshot(self):
        """A copy of the counts."""
        return {scope: dict(counts) for scope, counts in self._counts.items()}

    def flush(self):
        """Write the counts to the file if they changed since the last
        write; a failure is logged, the counts are kept for the next."""
        if not self._dirty or self._path is None:
            return
        self._flushed = self._clock()
        temporary = f'{self._path}.{os.getpid()}.tmp'
        try:
            with open(temporary, 'w', encoding='utf-8') as stream:
                json.dump(self._counts, stream)
            # Atomic: the reader sees the old file or the new one, whole.
            os.replace(temporary, self._path)
        except OSError as exc:
            LOG.warning('Cannot write the processor counters to %s: %s',
                        self._path, exc)
            return
        self._dirty = False


def _load(path):
    try:
        with open(path, encoding='utf-8') as stream:
            counts = json.load(stream)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        LOG.warning('Cannot read the processor counters of %s, counting '
                    'from 0: %s', path, exc)
        return {}
    return {scope: {name: int(values.get(name, 0)) for name in NAMES}
            for scope, values in counts.items()}


def read_counters(directory):
    """The sum of the counters of every worker file in ``directory``:
    ``{scope_id: {name: count}}`` with every name of :data:`NAMES`.

    A file that cannot be read (being replaced, removed) is left out.
    """
    total = {}
    try:
        names = sorted(os.listdir(directory))
    except OSError as exc:
        LOG.warning('Cannot list the processor counters in %s: %s',
                    directory, exc)
        return total
    for name in names:
        if not name.endswith(SUFFIX):
            continue
        for scope, counts in _load(os.path.join(directory, name)).items():
            into = total.setdefault(scope, dict.fromkeys(NAMES, 0))
            for key, value in counts.items():
                into[key] += value
    return total


def counters_path(directory, label, worker_id):
    """The file of one worker's counters in ``directory``."""
    return os.path.join(directory, f'{label}-{worker_id}{SUFFIX}')


class LagWatch:
    """Warns of the scopes that fall more than ``limit`` periods behind.

    :meth:`check` is called at most once per pass and scope, with the
    number of periods due (see :func:`cloudkitty.orchestrator.worker.
    due_periods`). Above the limit, a warning names the scope, its last
    processed period and how many periods it is behind; it is repeated
    when a later check finds it further behind than the previous one.
    Back within the limit, an info line says so, once. What was warned is
    remembered by this process only.
    """

    def __init__(self, limit):
        self._limit = limit
        self._behind = {}  # scope_id -> periods due at its last check
        self._swept = {}  # scope_id -> last processed at the last sweep

    def is_behind(self, scope_id):
        return scope_id in self._behind

    def check(self, scope_id, last, due, stalled=False):
        """``stalled``: the warning also says the scope has not moved
        since the previous check (see :meth:`sweep`)."""
        last_text = last.isoformat() if last is not None else 'none'
        previous = self._behind.get(scope_id)
        if due > self._limit:
            if previous is None or due > previous:
                LOG.warning('Scope %s is %d periods behind (more than '
                            'lag_warning_periods = %d)%s: last processed '
                            'period %s%s', scope_id, due, self._limit,
                            ' and has not moved since the previous check'
                            if stalled else '', last_text,
                            '; the worker that has it may be stuck'
                            if stalled else '')
            self._behind[scope_id] = due
        elif previous is not None:
            LOG.info('Scope %s is no longer behind: %d periods due, last '
                     'processed period %s', scope_id, due, last_text)
            del self._behind[scope_id]

    def sweep(self, lags):
        """Check scopes some other worker rates, ``{scope_id: (last, due)}``
        as :meth:`check` takes them: above the limit, a scope is warned of
        only if its last processed period is the one of the previous sweep
        (stalled, not merely catching up); back within it, as :meth:`check`
        says. Scopes absent from ``lags`` are forgotten."""
        swept, self._swept = self._swept, {}
        for scope_id in sorted(lags):
            last, due = lags[scope_id]
            self._swept[scope_id] = last
            unmoved = scope_id in swept and swept[scope_id] == last
            if due <= self._limit or unmoved:
                self.check(scope_id, last, due, stalled=True)


class Health:
    """What a processor's passes report: counters and lag checks.

    :param counters: a :class:`Counters` (default: in memory only)
    :param rated: the counter the periods stored count in
        (:data:`PERIODS_RATED`, or :data:`PERIODS_REPROCESSED` for the
        reprocessing workers)
    :param lag_watch: a :class:`LagWatch` (``None``: no lag checks)
    """

    def __init__(self, counters=None, rated=PERIODS_RATED, lag_watch=None):
        self.counters = counters or Counters()
        self._rated = rated
        self._watch = lag_watch
        self._failed = set()
        self._fine = set()

    def record(self, scope_id, result):
        """Count what ``result`` (a :class:`~cloudkitty.orchestrator.
        worker.ScopeResult` of this pass) did."""
        self.counters.add(scope_id, self._rated, len(result.rated))
        if result.failure is not None:
            self.counters.add(scope_id, _ERROR_COUNTERS[result.failure])
            self._failed.add(scope_id)
        elif result.error is None and not result.inactive:
            self._fine.add(scope_id)

    def pass_done(self, lag_of):
        """End of a pass: write the counters, and check the lag of the
        scopes that failed in it, and of those found behind earlier that
        were rated in it. ``lag_of(scope_id)`` returns ``(last processed
        period start, periods due)``; where it fails, no check."""
        failed, fine = self._failed, self._fine - self._failed
        self._failed, self._fine = set(), set()
        self.counters.flush()
        if self._watch is None:
            return
        for scope_id in sorted(failed) + sorted(
                s for s in fine if self._watch.is_behind(s)):
            try:
                last, due = lag_of(scope_id)
            except Exception as exc:  # noqa: BLE001 - e.g. database down
                LOG.debug('Lag of scope %s unknown: %s: %s', scope_id,
                          exc.__class__.__name__, exc)
                continue
            self._watch.check(scope_id, last, due)

    def sweep(self, scope_ids, lags_of):
        """After a pass, check the scopes it did not visit for stalls
        (:meth:`LagWatch.sweep`), their lags read at once by
        ``lags_of(scope_ids)`` (as :meth:`~cloudkitty.orchestrator.worker.
        ScopeWorker.lags`); where that fails, no check."""
        if self._watch is None:
            return
        try:
            lags = lags_of(scope_ids)
        except Exception as exc:  # noqa: BLE001 - e.g. database down
            LOG.debug('Lags of %d scopes unknown: %s: %s', len(scope_ids),
                      exc.__class__.__name__, exc)
            return
        self._watch.sweep(lags)
