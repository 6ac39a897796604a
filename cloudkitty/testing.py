"""In-memory doubles of the processor's collaborators, shipped for tests.

The scope worker (:class:`cloudkitty.orchestrator.worker.ScopeWorker`), the
processor's passes and the RPC endpoint take their collaborators through
their constructors; these stand in for the database-backed ones, here and
in the tests of third-party plugins, with no database:

- :class:`Storage`: the rated-data storage's writes (``replace``,
  ``replace_many``, ``push``, ``delete``), the points kept in a list;
- :class:`ScopeState`: the scope states
  (:class:`cloudkitty.storage_state.ScopeStateManager`'s reads and write);
- :class:`ModuleState`: the rating modules' stored states
  (:class:`cloudkitty.storage_state.ModuleStateManager`).

Each write is also appended to ``journal``, a list that several doubles
may share, so that a test reads the order of the writes across them (the
store-then-record order of the worker, for instance).
"""


class Storage:
    """Rated data in memory.

    ``points`` is a list of ``(scope_id, period start, type, DataPoint)``;
    ``journal`` receives ``('replace', scope_id, start)``, ``('push',
    scope_id, start)`` and ``('delete', scope_id, begin, end)``. While
    ``fail`` is an exception, each write raises it once done (the data is
    written, the caller is not told so, as when a connection drops before
    the commit's answer).
    """

    def __init__(self, journal=None, scope_key='project_id'):
        self.journal = [] if journal is None else journal
        self.scope_key = scope_key
        self.points = []
        self.fail = None

    def replace(self, frame, scope_id):
        """Make ``frame`` the only data of ``scope_id`` in its period."""
        self.replace_many([(frame, scope_id)])

    def replace_many(self, items):
        """:meth:`replace` of each ``(frame, scope_id)`` of ``items``,
        all of them written before ``fail`` is raised."""
        for frame, scope_id in items:
            self.journal.append(('replace', scope_id, frame.start))
            self._drop(scope_id, frame.start, frame.end)
            self._add(frame, scope_id)
        self._failing()

    def push(self, dataframes, scope_id=None):
        """Add the points of ``dataframes``."""
        for frame in dataframes:
            self.journal.append(('push', scope_id, frame.start))
            self._add(frame, scope_id)
        self._failing()

    def delete(self, begin=None, end=None, filters=None):
        """Drop the points of the scope ``filters[scope_key]`` whose period
        starts in ``[begin, end)`` (an open bound: no limit)."""
        scope_id = (filters or {}).get(self.scope_key)
        self.journal.append(('delete', scope_id, begin, end))
        self._drop(scope_id, begin, end)
        self._failing()

    def _add(self, frame, scope_id):
        self.points.extend((scope_id, frame.start, type_, point)
                           for type_, point in frame.iterpoints())

    def _drop(self, scope_id, begin, end):
        self.points = [
            p for p in self.points
            if not ((scope_id is None or p[0] == scope_id)
                    and (begin is None or begin <= p[1])
                    and (end is None or p[1] < end))]

    def _failing(self):
        if self.fail is not None:
            raise self.fail


class ScopeState:
    """Scope states in memory.

    ``last`` is ``{scope_id: start of the last period processed}``;
    ``inactive`` the scopes marked inactive; ``reads`` counts
    :meth:`get_state` calls; ``journal`` receives ``('state', scope_id,
    timestamp)``, and ``parts`` keeps the last ``parts`` each scope was
    written with. While ``fail`` is an exception, a write raises it and
    changes nothing.
    """

    def __init__(self, journal=None, last=None, inactive=()):
        self.journal = [] if journal is None else journal
        self.last = dict(last or {})
        self.inactive = set(inactive)
        self.reads = 0
        self.parts = {}
        self.fail = None

    def get_state(self, scope_id):
        """``{"last_processed_timestamp", "active"}``, or ``None`` for a
        scope never seen."""
        self.reads += 1
        if scope_id not in self.last and scope_id not in self.inactive:
            return None
        return {'last_processed_timestamp': self.last.get(scope_id),
                'active': scope_id not in self.inactive}

    def get_last_processed_timestamp(self, scope_id):
        return self.last.get(scope_id)

    def get_last_processed_timestamps(self, scope_ids):
        """``{scope_id: last or None}`` of the active ones."""
        return {s: self.last.get(s) for s in scope_ids
                if s not in self.inactive}

    def set_last_processed_timestamp(self, scope_id, timestamp, **parts):
        """Record ``timestamp`` (``parts``: the scope key, fetcher and
        collector of a new scope)."""
        if self.fail is not None:
            raise self.fail
        self.journal.append(('state', scope_id, timestamp))
        self.last[scope_id] = timestamp
        self.parts[scope_id] = parts


class ModuleState:
    """The rating modules' stored states in memory: ``states`` is
    ``{name: {"enabled", "priority"}}``, ``reads`` counts :meth:`get_all`
    calls."""

    def __init__(self, states=None):
        self.states = dict(states or {})
        self.reads = 0

    def get_all(self):
        """A copy of ``states``."""
        self.reads += 1
        return {name: dict(state) for name, state in self.states.items()}
