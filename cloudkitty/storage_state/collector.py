"""Which collector gathers which service, and which collectors are enabled.

The meta collector dispatches each metric (service) to the collector it is
mapped to and skips disabled collectors; operators manage both through
``/v1/collector``. The tables (:class:`cloudkitty.db.models.CollectorMapping`
and :class:`~cloudkitty.db.models.CollectorState`) are created by migration
0004.
"""

import sqlalchemy as sa

from cloudkitty.db import models


def _upsert(engine, table, key, values):
    where = sa.and_(*(table.c[name] == value for name, value in key.items()))
    with engine.begin() as connection:
        updated = connection.execute(
            table.update().where(where).values(**values))
        if not updated.rowcount:
            connection.execute(table.insert().values(**key, **values))


class CollectorMappingManager:
    """Reads and writes the service to collector mappings."""

    def __init__(self, engine):
        self._engine = engine
        self._table = models.CollectorMapping.__table__

    def get(self, service):
        """Return ``{"service", "collector"}``, or ``None`` if unmapped."""
        with self._engine.connect() as connection:
            row = connection.execute(sa.select(self._table).where(
                self._table.c.service == service)).mappings().first()
        return dict(row) if row else None

    def get_all(self, collector=None):
        """List the mappings (of one ``collector`` if given), by service."""
        query = sa.select(self._table).order_by(self._table.c.service)
        if collector is not None:
            query = query.where(self._table.c.collector == collector)
        with self._engine.connect() as connection:
            return [dict(row) for row in connection.execute(query).mappings()]

    def set(self, service, collector):
        """Map ``service`` to ``collector``, replacing any previous mapping."""
        _upsert(self._engine, self._table, {'service': service},
                {'collector': collector})
        return {'service': service, 'collector': collector}

    def delete(self, service):
        """Remove the mapping of ``service``; ``False`` if there was none."""
        with self._engine.begin() as connection:
            deleted = connection.execute(self._table.delete().where(
                self._table.c.service == service))
        return bool(deleted.rowcount)


class CollectorStateManager:
    """Reads and writes whether collectors are enabled."""

    def __init__(self, engine):
        self._engine = engine
        self._table = models.CollectorState.__table__

    def get_state(self, name):
        """The state set for collector ``name``; ``False`` if never set.

        This is what ``/v1/collector/states`` reports, as upstream does.
        The meta collector reads :meth:`get_all` instead, and collects from
        every collector not disabled (one never set included).
        """
        with self._engine.connect() as connection:
            enabled = connection.execute(sa.select(self._table.c.enabled).where(
                self._table.c.name == name)).scalar()
        return bool(enabled)

    def get_all(self):
        """``{name: enabled}`` of the collectors whose state was set."""
        with self._engine.connect() as connection:
            rows = connection.execute(sa.select(
                self._table.c.name, self._table.c.enabled))
            return {name: bool(enabled) for name, enabled in rows}

    def set_state(self, name, enabled):
        """Enable or disable collector ``name``; returns the new state."""
        _upsert(self._engine, self._table, {'name': name},
                {'enabled': bool(enabled)})
        return bool(enabled)
