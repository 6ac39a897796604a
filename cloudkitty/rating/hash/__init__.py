"""The hashmap rating module (entry point ``hashmap``).

Prices points from rules attached to services and to fields of services:
mappings (valid over a window of time) and thresholds, flat or rate,
grouped, global or for one tenant (scope). The semantics are those of
rating.md; :mod:`cloudkitty.rating.hash.rules` implements them,
:mod:`cloudkitty.rating.hash.db` stores the rules and
:mod:`cloudkitty.rating.hash.api` serves them under
``/v1/rating/module_config/hashmap``.

How the processor uses it, per pass and per scope::

    module.reload_config(period_start)     # one revision query; the rules
                                           # valid then, loaded and compiled
                                           # once for every scope
    priced = module.for_scope(scope_id).process(frame)
    # or: module.process(frame, scope_id=scope_id)

``reload_config`` is cheap when called again with the same start (as a
worker does for each scope): rules are cached by period start for as long
as the ``hashmap_revision`` counter has not moved, and a reload that finds
the same rules keeps the compiled set (and what it memoised). A plain
``process(frame)`` prices with the scope given at construction
(``tenant_id``), with the rules valid at ``frame.start``.
"""

from cloudkitty import db as ck_db
from cloudkitty import rating
from cloudkitty.rating import common
from cloudkitty.rating.hash import api
from cloudkitty.rating.hash import db as hash_db
from cloudkitty import storage_state


class HashMap(rating.RatingProcessorBase):
    """Prices points from service and field mappings and thresholds.

    ``hash_db`` is the :class:`~cloudkitty.rating.hash.db.HashMapDB` to
    read rules from; without it one is made, on first use, on the engine
    of ``[database] connection`` of ``conf`` the process shares
    (:func:`cloudkitty.db.get_engine`).
    """

    description = ('HashMap rating module: prices points from mappings and '
                   'thresholds on services and fields.')
    hot_config = True
    config_controller = api.HashMapConfigController
    default_enabled = False
    default_priority = 1

    def __init__(self, conf=None, module_state=None, tenant_id=None,
                 hash_db=None):
        super().__init__(conf, module_state, tenant_id)
        self._db = hash_db
        self._rules = common.RulesByStart(
            lambda: self._hash_db().revision(),
            lambda start: self._hash_db().load_rules(start))

    def _hash_db(self):
        if self._db is None:
            self._db = hash_db.HashMapDB(ck_db.get_engine(self.conf))
        return self._db

    def rules_at(self, start):
        """The :class:`~cloudkitty.rating.hash.rules.RuleSet` of a period
        starting at ``start`` (a datetime).

        One query tells whether the rules changed since the last call; if
        not and ``start`` was asked for before, nothing more is read; a
        reload that finds the same rules keeps the compiled set.
        """
        return self._rules.at(start)

    def reload_config(self, start=None):
        """Make the rules valid at ``start`` (default: now) current."""
        self._rules.reload(start or storage_state.utcnow())

    def process(self, data, scope_id=None):
        """Price ``data`` for ``scope_id`` (default: the module's
        ``tenant_id``) with the rules valid at its start."""
        scope_id = self._tenant_id if scope_id is None else scope_id
        return self._rules.current(data.start).for_scope(scope_id).process(
            data)

    def quote(self, data, scope_id=None):
        """Price a quote request: as :meth:`process` (the API builds its
        frame on the current period, so these are the current rules)."""
        return self.process(data, scope_id=scope_id)

    def for_scope(self, scope_id):
        """A :class:`ScopedHashMap`: this module rating ``scope_id``."""
        return ScopedHashMap(self, scope_id)


class ScopedHashMap:
    """A :class:`HashMap` bound to one scope; stands in for it in a pipeline
    (``process``, ``quote``, ``reload_config``, name, priority, state)."""

    __slots__ = ('module', 'scope_id')

    def __init__(self, module, scope_id):
        self.module = module
        self.scope_id = scope_id

    module_name = property(lambda self: self.module.module_name)
    description = property(lambda self: self.module.description)
    hot_config = property(lambda self: self.module.hot_config)
    enabled = property(lambda self: self.module.enabled)
    priority = property(lambda self: self.module.priority)

    def reload_config(self, start=None):
        self.module.reload_config(start)

    def process(self, data):
        return self.module.process(data, scope_id=self.scope_id)

    def quote(self, data):
        return self.module.quote(data, scope_id=self.scope_id)
