"""The usage of a pass's scopes, collected once per metric and period.

With a collector that has ``grouped_collection``, the processor
(:class:`cloudkitty.orchestrator.processor.Processor`) rates a pass in
rounds through one :class:`SharedCollection`: in each round the scopes due
in the oldest period rate that period, and each metric of it is collected
once for all of them (``retrieve_many``).
"""

import concurrent.futures
import dataclasses
import threading

from cloudkitty import collector as ck_collector


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
    :meth:`round_modules` reads the rating modules' state once per round;
    :meth:`usage` is what a scope worker collects one scope's period with.

    The processor alone builds and drives it (one per pass); the scope
    worker only calls the :meth:`usage` and the ``round_modules`` it is
    handed for a period.
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

    def usage(self, scope_id, start, end):
        """What a scope worker collects a period of ``scope_id`` with:
        ``usage(metric) -> (type, [DataPoint])`` (:meth:`retrieve`), and
        ``usage.ready(metric)`` (:meth:`answered`)."""
        return _Usage(self, scope_id, start, end)


@dataclasses.dataclass(frozen=True)
class _Usage:
    """One scope's period, collected through a :class:`SharedCollection`."""

    shared: SharedCollection
    scope_id: str
    start: object
    end: object

    def __call__(self, metric):
        return self.shared.retrieve(metric, self.start, self.end,
                                    self.scope_id)

    def ready(self, metric):
        return self.shared.answered(metric, self.start, self.scope_id)
