"""The scope worker built with doubles for every collaborator, for the
tests of the worker and of what drives it (health, shared collection, a
rating module run by the worker): a collector answering from a table of
behaviours, and the in-memory storage and state of
:mod:`cloudkitty.testing`."""

import datetime
import threading

from cloudkitty import collector
from cloudkitty import dataframe
from cloudkitty.orchestrator import worker
from cloudkitty import testing

UTC = datetime.timezone.utc
HOUR = datetime.timedelta(hours=1)
NOW = datetime.datetime(2024, 3, 10, 12, 30, tzinfo=UTC)
MONTH = datetime.datetime(2024, 3, 1, tzinfo=UTC)


def point(qty, price=0, **groupby):
    return dataframe.DataPoint('u', qty, price, groupby, {})


class FakeCollector:
    """``behaviour[metric](scope, start)`` gives points or raises."""

    def __init__(self, behaviour):
        self.behaviour = behaviour
        self.calls = []
        self.running = 0
        self.most_running = 0
        self._lock = threading.Lock()

    def retrieve(self, metric_name, start, end, project_id=None,
                 q_filter=None):
        assert end - start == HOUR
        with self._lock:
            self.calls.append((metric_name, project_id, start))
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        try:
            points = self.behaviour[metric_name](project_id, start)
        finally:
            with self._lock:
                self.running -= 1
        return metric_name + '_type', points


def constant(*points):
    return lambda scope, start: list(points)


def no_data(scope, start):
    raise collector.NoDataCollected('fake', 'cpu', scope)


def make_worker(behaviour=None, last=None, settings=None, storage=None,
                journal=None, **kwargs):
    journal = journal if journal is not None else []
    settings = settings or worker.Settings(period=3600, wait_periods=2,
                                           max_threads=4,
                                           collector_request_timeout=5)
    behaviour = behaviour or {'cpu': constant(point(1)),
                              'ram': constant(point(2))}
    fake_collector = FakeCollector(behaviour)
    storage = storage or testing.Storage(journal)
    state = kwargs.pop('scope_state', None) or testing.ScopeState(journal, last)
    scope_worker = worker.ScopeWorker(
        fake_collector, storage, state, list(behaviour), settings,
        clock=kwargs.pop('clock', lambda: NOW), **kwargs)
    return scope_worker, fake_collector, storage, state, journal
