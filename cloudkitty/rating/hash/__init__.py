"""The hashmap rating module (entry point ``hashmap``).

Prices points from rules attached to services and to fields of services:
mappings (valid over a window of time) and thresholds, flat or rate,
grouped, global or for one scope. The semantics are those of
rating.md; :mod:`cloudkitty.rating.hash.rules` implements them,
:mod:`cloudkitty.rating.hash.db` stores the rules (tables in
:mod:`cloudkitty.rating.hash.models`, errors in
:mod:`cloudkitty.rating.hash.exceptions`),
:mod:`cloudkitty.rating.hash.rules_file` reads them from a file and
:mod:`cloudkitty.rating.hash.api` serves them under
``/v1/rating/module_config/hashmap``.

How the processor uses it, per round (the scopes due in one period)::

    module.reload_config(period_start)     # one revision query; the rules
                                           # valid then, loaded and compiled
                                           # once for every scope
    priced = module.rate_many([(frame, scope_id), ...])
                                           # the round's frames: each
                                           # service's points of the scopes
                                           # that see the same rules priced
                                           # as one column

and ``module.rate(frame, scope_id)`` for a period rated alone (a
reprocessing task's).

``reload_config`` is cheap when called again with the same start (as a
worker does for each scope): rules are cached by period start for as long
as the ``hashmap_revision`` counter has not moved, and a reload that finds
the same rules keeps the compiled set (and what it memoised); one that
finds other rules keeps the compiled services whose rules did not change
(:meth:`~cloudkitty.rating.hash.rules.RuleSet.adopt`), so that a change
to one service's rules computes that service's point plans again, not
every service's. A plain
``process(frame)`` prices with the scope given at construction
(``tenant_id``), with the rules valid at ``frame.start``.
"""

import copy
import warnings

from cloudkitty import db as ck_db
from cloudkitty import rating
from cloudkitty.rating import common
from cloudkitty.rating.hash import db as hash_db
from cloudkitty.rating.hash import rules
from cloudkitty import timeutils


class HashMap(rating.RatingProcessorBase):
    """Prices points from service and field mappings and thresholds.

    ``hash_db`` is the :class:`~cloudkitty.rating.hash.db.HashMapDB` to
    read rules from; without it one is made, on first use, on ``engine``
    (the process's one engine, handed in by the service that loads the
    module), or else on the engine of ``[database] connection`` of
    ``conf`` the process shares (:func:`cloudkitty.db.get_engine`).
    """

    description = ('HashMap rating module: prices points from mappings and '
                   'thresholds on services and fields.')
    hot_config = True
    config_controller = 'cloudkitty.rating.hash.api:HashMapConfigController'
    default_enabled = False
    default_priority = 1

    def __init__(self, conf=None, module_state=None, tenant_id=None,
                 hash_db=None, engine=None):
        super().__init__(conf, module_state, tenant_id)
        self._db = hash_db
        self._engine = engine
        self._rules = common.RulesByStart(
            lambda: self._hash_db().revision(),
            lambda start: self._hash_db().load_rules(start),
            adopt=rules.RuleSet.adopt)

    def _hash_db(self):
        if self._db is None:
            self._db = hash_db.HashMapDB(
                self._engine or ck_db.get_engine(self.conf))
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
        self._rules.reload(start or timeutils.utcnow())

    def rate(self, frame, scope_id):
        """Price ``frame`` for ``scope_id`` with the rules valid at its
        start."""
        return self._rules.current(frame.start).for_scope(scope_id).process(
            frame)

    def rate_many(self, items):
        """The frames of ``items`` (``[(frame, scope_id)]``, periods of
        one start) priced with the rules valid then: each service's points
        of the frames that see the same rules priced in one column
        (:meth:`~cloudkitty.rating.hash.rules.RuleSet.process_many`)."""
        if not items:
            return []
        return self._rules.current(items[0][0].start).process_many(items)

    def process(self, data, scope_id=None):
        """Price ``data`` for ``scope_id`` (default: the module's
        ``tenant_id``) with the rules valid at its start."""
        return self.rate(data, self._tenant_id if scope_id is None
                         else scope_id)

    def quote(self, data, scope_id=None):
        """Price a quote request: as :meth:`process` (the API builds its
        frame on the current period, so these are the current rules)."""
        return self.process(data, scope_id=scope_id)

    @property
    def scope_id(self):
        """The scope a plain :meth:`process` prices for (``tenant_id``)."""
        return self._tenant_id

    def for_scope(self, scope_id):
        """Deprecated: call :meth:`rate` with the scope. This module
        pricing for ``scope_id`` by default (a shallow copy sharing its
        rules and caches)."""
        warnings.warn(rating.FOR_SCOPE_DEPRECATED, DeprecationWarning,
                      stacklevel=2)
        scoped = copy.copy(self)
        scoped._tenant_id = scope_id
        return scoped
