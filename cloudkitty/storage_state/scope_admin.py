"""Scope changes only operators make, through ``PATCH /v2/scope``."""

from sqlalchemy import exc as sa_exc

from cloudkitty.db import models
from cloudkitty import storage_state
from cloudkitty import timeutils


class ScopeConflict(ValueError):
    """The change would make a scope identical to another one."""


class ScopeAdmin(storage_state.ScopeStateManager):
    """A :class:`~cloudkitty.storage_state.ScopeStateManager` that can also
    change the keys (scope_key, fetcher, collector) of a scope."""

    def update_scope(self, state, scope_key=None, fetcher=None,
                     collector=None, active=None):
        """Change the scope ``state`` (a dict from :meth:`get_all`).

        Each of ``scope_key``, ``fetcher``, ``collector`` and ``active`` left
        ``None`` keeps its value; a change of ``active`` stamps
        ``scope_activation_toggle_date``. Returns the updated state, or
        ``None`` if the scope no longer exists. Raises
        :class:`ScopeConflict` if another scope already has the new keys.
        """
        table = models.ScopeState.__table__
        key = {name: state[name] for name in
               ('identifier', 'scope_key', 'fetcher', 'collector')}
        new_key = dict(key)
        for name, value in (('scope_key', scope_key), ('fetcher', fetcher),
                            ('collector', collector)):
            if value is not None:
                new_key[name] = value
        values = {name: new_key[name]
                  for name in new_key if name != 'identifier'}
        if active is not None and bool(active) != state['active']:
            values['active'] = bool(active)
            values['scope_activation_toggle_date'] = timeutils.to_db(
                timeutils.utcnow())
        try:
            with self._engine.begin() as connection:
                connection.execute(table.update().where(
                    self._where(key)).values(**values))
        except sa_exc.IntegrityError:
            raise ScopeConflict(
                f"scope {state['identifier']!r} with scope_key "
                f"{new_key['scope_key']!r}, fetcher {new_key['fetcher']!r} "
                f"and collector {new_key['collector']!r} already exists") \
                from None
        scope_id = new_key.pop('identifier')
        return self.get_state(scope_id, **new_key)
