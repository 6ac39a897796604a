"""The service's small state tables, managers only (the models are in
:mod:`cloudkitty.db.models`).

Here: scope state and rating module state. Beside it:
:mod:`.reprocessing` (the reprocessing schedule), :mod:`.scope_admin`
(scope changes only operators make), :mod:`.collector` (which collector
gathers which service) and :mod:`.writer` (the report writer's progress).

All datetimes handed in may be aware or naive (naive means UTC); all
datetimes handed out are timezone-aware UTC. The tables store naive UTC.
"""

import sqlalchemy as sa

from cloudkitty.db import models
from cloudkitty import timeutils

_STATES = models.ScopeState.__table__
# The two statements of every visit of a scope, built once with the key
# bound at execution: building them per call cost more than running them.
_KEY_MATCH = sa.and_(*(
    _STATES.c[name] == sa.bindparam(f'key_{name}')
    for name in ('identifier', 'scope_key', 'fetcher', 'collector')))
_SELECT_STATE = sa.select(_STATES).where(_KEY_MATCH)
_UPDATE_TIMESTAMP = _STATES.update().where(_KEY_MATCH).values(
    last_processed_timestamp=sa.bindparam('new_timestamp'))


def _key_params(key):
    return {f'key_{name}': value for name, value in key.items()}


class ScopeStateManager:
    """Reads and writes the ``cloudkitty_storage_states`` table.

    A scope is identified by (scope_id, scope_key, fetcher, collector); the
    three last parts default to the values given at construction, which the
    processor takes from its configuration. The scope id is stored in the
    ``identifier`` column, the name the states handed out keep.
    """

    def __init__(self, engine, scope_key, fetcher, collector):
        self._engine = engine
        self._defaults = {'scope_key': scope_key, 'fetcher': fetcher,
                          'collector': collector}

    def _key(self, scope_id, **parts):
        key = {'identifier': scope_id}
        for name, default in self._defaults.items():
            key[name] = parts.get(name) or default
        return key

    @staticmethod
    def _where(key):
        table = models.ScopeState.__table__
        return sa.and_(*(table.c[name] == value for name, value in key.items()))

    def get_state(self, scope_id, **parts):
        """Return the scope's row as a dict, or ``None`` if it has none.

        Keys: identifier, scope_key, fetcher, collector,
        last_processed_timestamp, active, scope_activation_toggle_date.
        """
        with self._engine.connect() as connection:
            row = connection.execute(
                _SELECT_STATE, _key_params(self._key(scope_id, **parts))
            ).mappings().first()
        return _scope_dict(row) if row else None

    def get_last_processed_timestamp(self, scope_id, **parts):
        """Start of the last period processed for the scope, or ``None``."""
        state = self.get_state(scope_id, **parts)
        return state['last_processed_timestamp'] if state else None

    def get_last_processed_timestamps(self, scope_ids):
        """``{scope_id: start of the last period processed, or None}``
        of the active scopes among ``scope_ids`` (with this manager's
        scope_key, fetcher and collector), in one query; a scope without a
        state yet maps to ``None``, an inactive one is left out."""
        wanted = set(scope_ids)
        query = sa.select(
            _STATES.c.identifier, _STATES.c.last_processed_timestamp,
            _STATES.c.active).where(*(
                _STATES.c[name] == value
                for name, value in self._defaults.items()))
        found = dict.fromkeys(wanted)
        with self._engine.connect() as connection:
            # Every scope of the keys, filtered here: an IN list of
            # thousands of ids costs more than the rows it saves.
            for row in connection.execute(query):
                if row.identifier not in wanted:
                    continue
                if row.active:
                    found[row.identifier] = timeutils.from_db(
                        row.last_processed_timestamp)
                else:
                    del found[row.identifier]
        return found

    def set_last_processed_timestamp(self, scope_id, timestamp,
                                     connection=None, **parts):
        """Record ``timestamp`` as the scope's last processed period start.

        Creates the scope's row (active) when it has none. With
        ``connection``, runs inside the caller's transaction.
        """
        key = self._key(scope_id, **parts)
        if connection is None:
            with self._engine.begin() as own:
                return self._upsert(own, key, timeutils.to_db(timestamp))
        return self._upsert(connection, key, timeutils.to_db(timestamp))

    def _upsert(self, connection, key, timestamp):
        updated = connection.execute(_UPDATE_TIMESTAMP, {
            'new_timestamp': timestamp, **_key_params(key)})
        if not updated.rowcount:
            connection.execute(_STATES.insert().values(
                last_processed_timestamp=timestamp, active=True, **key))

    def create_scope(self, scope_id, last_processed_timestamp=None,
                     active=True, **parts):
        """Insert a scope; raises ``sqlalchemy.exc.IntegrityError`` if it exists."""
        key = self._key(scope_id, **parts)
        with self._engine.begin() as connection:
            connection.execute(models.ScopeState.__table__.insert().values(
                last_processed_timestamp=timeutils.to_db(last_processed_timestamp),
                active=active, **key))
        return self.get_state(scope_id, **parts)

    def set_active(self, scope_id, active, **parts):
        """Activate or deactivate a scope, stamping the toggle date on change.

        Returns the updated state, or ``None`` if the scope does not exist.
        """
        table = models.ScopeState.__table__
        where = self._where(self._key(scope_id, **parts))
        with self._engine.begin() as connection:
            connection.execute(table.update().where(
                where, table.c.active != active).values(
                    active=active, scope_activation_toggle_date=timeutils.to_db(
                        timeutils.utcnow())))
        return self.get_state(scope_id, **parts)

    def get_all(self, scope_id=None, fetcher=None, collector=None,
                scope_key=None, active=None, offset=0, limit=None):
        """List scope states, filtered by any of the given values.

        ``scope_id``, ``fetcher``, ``collector`` and ``scope_key`` may be
        a value or a list of values. Ordered by scope id.
        """
        table = models.ScopeState.__table__
        query = sa.select(table).order_by(table.c.identifier, table.c.id)
        for name, value in (('identifier', scope_id), ('fetcher', fetcher),
                            ('collector', collector),
                            ('scope_key', scope_key)):
            if value is None:
                continue
            values = value if isinstance(value, (list, tuple)) else [value]
            query = query.where(table.c[name].in_(values))
        if active is not None:
            query = query.where(table.c.active == bool(active))
        query = query.offset(offset)
        if limit is not None:
            query = query.limit(limit)
        with self._engine.connect() as connection:
            return [_scope_dict(row)
                    for row in connection.execute(query).mappings()]


def _scope_dict(row):
    state = dict(row)
    state.pop('id', None)
    state['last_processed_timestamp'] = timeutils.from_db(
        state['last_processed_timestamp'])
    state['scope_activation_toggle_date'] = timeutils.from_db(
        state['scope_activation_toggle_date'])
    return state


class ModuleStateManager:
    """Reads and writes the ``rated_data_modules`` table."""

    def __init__(self, engine):
        self._engine = engine

    def get_all(self):
        """Return ``{name: {"enabled": bool, "priority": int}}`` in one query."""
        table = models.ModuleState.__table__
        with self._engine.connect() as connection:
            return {row.name: {'enabled': row.enabled, 'priority': row.priority}
                    for row in connection.execute(sa.select(table))}

    def _set(self, name, **values):
        table = models.ModuleState.__table__
        with self._engine.begin() as connection:
            updated = connection.execute(
                table.update().where(table.c.name == name).values(**values))
            if not updated.rowcount:
                connection.execute(table.insert().values(name=name, **values))

    def set_state(self, name, enabled):
        """Enable or disable module ``name``."""
        self._set(name, enabled=bool(enabled))

    def set_priority(self, name, priority):
        """Set the priority of module ``name`` (higher runs first)."""
        self._set(name, priority=int(priority))
