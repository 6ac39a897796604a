"""The write orchestrator: rated data to report files, resumable.

For each scope with a processing state, the months from its first stored
period up to where its rated data is complete (the end of its last
processed period) are written, one file per writer and month. Each file's
progress is kept in ``writer_file_states``; a run continues a file whose
body is intact and whose rated data has not changed since, and rebuilds it
from the storage otherwise (deleted, truncated or edited file, reprocessed
period, lost state row).

The rated data is read through the storage's query methods, one page of
``[output] page_size`` points at a time, and handed to the writers a
collect period at a time.
"""

import dataclasses
import datetime
import decimal
import fcntl
import logging
import os
import urllib.parse

from cloudkitty import storage_state
from cloudkitty.storage import v2
from cloudkitty.storage_state import writer as writer_state
from cloudkitty import timeutils
from cloudkitty.writer import report_file
from cloudkitty.writer import WriterError

LOG = logging.getLogger(__name__)

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
_ZERO = decimal.Decimal(0)
LOCK_FILE = '.cloudkitty-writer.lock'


@dataclasses.dataclass
class MonthResult:
    """What one run did to one scope's month: ``periods`` written (the
    most any writer wrote), ``rebuilt`` writers, ``total`` price of the
    month so far (exact)."""

    scope_id: str
    month: datetime.datetime
    until: datetime.datetime
    periods: int = 0
    rebuilt: list = dataclasses.field(default_factory=list)
    total: decimal.Decimal = _ZERO


class _OpenFile:
    """A writer's file during a run, with the state saved after each period."""

    def __init__(self, name, writer, report, state):
        self.name = name
        self.writer = writer
        self.report = report
        self.state = state
        self.periods = 0


def _exact_sum(values):
    """The sum of Decimals, exact whatever the caller's context."""
    with decimal.localcontext(v2.DECIMAL_CONTEXT):
        return sum(values, _ZERO)


class WriteOrchestrator:
    """Writes report files for scopes, resuming where the last run stopped.

    :param conf: the service's ``ConfigOpts`` (``[output]``, ``[collect]``).
    :param storage: a :class:`~cloudkitty.storage.v2.BaseStorage`.
    :param engine: the engine of the service's database (scope states and
        ``writer_file_states``).
    :param writers: ``[(name, BaseWriter)]`` (see
        :func:`cloudkitty.writer.get_writers`).
    :param on_month: called with each :class:`MonthResult`, for progress
        (the ``on_month`` attribute, which may be replaced).
    """

    def __init__(self, conf, storage, engine, writers, on_month=None):
        self._storage = storage
        self._writers = writers
        self._scope_key = conf.collect.scope_key
        self._period = datetime.timedelta(seconds=conf.collect.period)
        self._basepath = conf.output.basepath
        self._page_size = conf.output.page_size
        self._scopes = storage_state.ScopeStateManager(
            engine, conf.collect.scope_key, conf.fetcher.backend,
            conf.collect.collector)
        self._files = writer_state.WriterStateManager(engine)
        self.on_month = on_month or (lambda result: None)

    def scopes(self):
        """Return ``{scope_id: end of its last processed period}``.

        Every scope with a processing state under ``[collect] scope_key``
        (whatever its fetcher or collector), sorted by id; its rated data
        is complete up to that instant.
        """
        until = {}
        for state in self._scopes.get_all(scope_key=self._scope_key):
            last = state['last_processed_timestamp']
            if last is None:
                continue
            end = last + self._period
            identifier = state['identifier']
            until[identifier] = max(end, until.get(identifier, end))
        return dict(sorted(until.items()))

    def generate(self, scope_ids=None, begin=None, end=None):
        """Write the files of ``scope_ids`` (default: every scope).

        :param begin: write the months from the one holding ``begin`` (an
            aware datetime; default: each scope's first stored period).
        :param end: write only the periods starting before ``end``
            (default: up to each scope's last processed period).
        :returns: the list of :class:`MonthResult`.
        :raises WriterError: when another run holds ``[output] basepath``,
            or a named scope has no processing state.
        """
        os.makedirs(self._basepath, exist_ok=True)
        with open(os.path.join(self._basepath, LOCK_FILE), 'a') as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise WriterError(
                    f'another cloudkitty-writer is writing to '
                    f'{self._basepath}') from None
            return self._generate(scope_ids, begin, end)

    def _generate(self, scope_ids, begin, end):
        known = self.scopes()
        if scope_ids is None:
            scope_ids = list(known)
        unknown = [s for s in scope_ids if s not in known]
        if unknown:
            raise WriterError(
                f'no processed period for scope(s) {", ".join(unknown)} '
                f'(known scopes: {", ".join(known) or "none"})')
        results = []
        for scope_id in scope_ids:
            stop = known[scope_id]
            if end is not None:
                stop = min(stop, end)
            month = self._first_month(scope_id, begin, stop)
            while month is not None and month < stop:
                following = timeutils.month_window(month)[1]
                result = self.write_month(scope_id, month,
                                          min(following, stop))
                if result is not None:
                    results.append(result)
                    self.on_month(result)
                month = following
        return results

    def _filters(self, scope_id):
        return {self._scope_key: scope_id}

    def _first_month(self, scope_id, begin, stop):
        if begin is not None:
            return timeutils.month_window(begin)[0]
        first = self._storage.total(
            groupby=['time'], begin=_EPOCH, end=stop,
            filters=self._filters(scope_id), limit=1)['results']
        return timeutils.month_window(first[0]['begin'])[0] if first else None

    def _periods(self, scope_id, begin, end):
        """``[(period begin, qty, price)]`` stored for the scope in the
        window, in time order."""
        periods, offset = [], 0
        while True:
            page = self._storage.total(
                groupby=['time'], begin=begin, end=end,
                filters=self._filters(scope_id), offset=offset,
                limit=self._page_size)
            periods += [(row['begin'], row['qty'], row['rate'])
                        for row in page['results']]
            offset += self._page_size
            if offset >= page['total']:
                return periods

    def _frames(self, scope_id, begin, end):
        """Yield the scope's frames of ``[begin, end)``, one per period,
        reading ``page_size`` points at a time."""
        current, offset = None, 0
        while True:
            page = self._storage.retrieve(
                begin=begin, end=end, filters=self._filters(scope_id),
                offset=offset, limit=self._page_size)
            for frame in page['dataframes']:
                if current is not None and (current.start, current.end) == (
                        frame.start, frame.end):
                    for type_, points in frame.itertypes():
                        current.add_points(points, type_)
                    continue
                if current is not None:
                    yield current
                current = frame
            offset += self._page_size
            if offset >= page['total']:
                break
        if current is not None:
            yield current

    def write_month(self, scope_id, month, stop):
        """Bring each writer's file of the scope's month up to ``stop``.

        Returns a :class:`MonthResult`, or ``None`` when the scope has no
        rated data in ``[month, stop)`` (no file is written).
        """
        states = {name: self._files.get(scope_id, name, month)
                  for name, _ in self._writers}
        # A file may cover more than this run asks for (an earlier run
        # without --end): its own window is what its sums are checked on.
        horizon = max([stop] + [s.written_until for s in states.values()
                                if s is not None])
        periods = self._periods(scope_id, month, horizon)
        if not any(begin < stop for begin, _, _ in periods):
            return None
        result = MonthResult(scope_id, month, stop)
        files = []
        try:
            for name, writer in self._writers:
                opened = self._open(scope_id, month, stop, name, writer,
                                    states[name], periods, result)
                if opened is not None:
                    files.append(opened)
            if files:
                start = min(f.state.written_until for f in files)
                for frame in self._frames(scope_id, start, stop):
                    self._write_period(scope_id, month, files, frame)
            for opened in files:
                self._finish(scope_id, month, stop, opened)
        finally:
            for opened in files:
                if opened.report is not None:
                    opened.report.close()
        result.periods = max((f.periods for f in files), default=0)
        result.total = _exact_sum(rate for begin, _, rate in periods
                                  if begin < stop)
        return result

    def _open(self, scope_id, month, stop, name, writer, state, periods,
              result):
        """Open the writer's file to continue it; ``None`` if up to date."""
        path = os.path.join(self._basepath, writer.filename(
            urllib.parse.quote(scope_id, safe=''), month))
        if state is not None:
            report, intact = report_file.ReportFile.resume(path, state)
            if report is None:
                why = 'is missing or was modified'
            else:
                written = [p for p in periods if p[0] < state.written_until]
                stored = (_exact_sum(q for _, q, _ in written),
                          _exact_sum(r for _, _, r in written))
                if stored == (state.qty, state.total):
                    if intact and state.written_until >= stop:
                        report.close()
                        return None
                    return _OpenFile(name, writer, report, state)
                report.close()
                why = ('was written from rated data that has changed since '
                       '(reprocessed?)')
            LOG.warning('scope %s, %s, %s: %s %s: rebuilt from the rated '
                        'data', scope_id, month.strftime('%Y-%m'), name,
                        path, why)
            result.rebuilt.append(name)
        report = report_file.ReportFile.create(path)
        writer.begin(report)
        state = writer_state.FileState(
            written_until=month, qty=_ZERO, total=_ZERO,
            body_size=report.body_size, body_sha256=report.body_sha256)
        return _OpenFile(name, writer, report, state)

    def _write_period(self, scope_id, month, files, frame):
        points = [point for _, point in frame.iterpoints()]
        qty = _exact_sum(p.qty for p in points)
        price = _exact_sum(p.price for p in points)
        for opened in files:
            state = opened.state
            if frame.start < state.written_until:
                continue
            opened.writer.write_period(opened.report, frame)
            state.qty = _exact_sum((state.qty, qty))
            state.total = _exact_sum((state.total, price))
            state.written_until = frame.end
            self._save_body(scope_id, month, opened)
            opened.periods += 1

    @staticmethod
    def _sync(opened):
        state, report = opened.state, opened.report
        state.body_size = report.body_size
        state.body_sha256 = report.body_sha256
        state.extra = report.extra
        state.file_sha256 = None

    def _save_body(self, scope_id, month, opened):
        self._sync(opened)
        self._files.save(scope_id, opened.name, month, opened.state)

    def _finish(self, scope_id, month, stop, opened):
        state = opened.state
        state.written_until = max(state.written_until, stop)
        self._sync(opened)
        footer = opened.writer.footer(opened.report, scope_id, month,
                                      state.written_until, state.total)
        state.file_sha256 = opened.report.finish(footer)
        opened.report = None
        self._files.save(scope_id, opened.name, month, state)
