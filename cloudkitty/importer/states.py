"""Upstream's states: rating modules, scopes, reprocessing, collectors.

- ``modules_state`` (``state`` is our ``enabled``; a missing priority is
  upstream's default, 1) into ``rated_data_modules``;
- ``cloudkitty_storage_states``, keyed by (identifier, scope_key,
  collector, fetcher): where each scope stands, whether it is active;
- ``storage_scope_reprocessing_schedule``, the tasks not finished yet
  (``current_reprocess_time`` unset or before the end), with their ids,
  into ``storage_states_reprocessing_scheduler``;
- ``service_to_collector_mappings``.

Upstream's ``states`` table (v1's collector states) has no counterpart and
is not read.
"""

import sqlalchemy as sa

from cloudkitty.db import models
from cloudkitty import importer
from cloudkitty.importer import rows


def _priority(value):
    return 1 if value is None else value


def _pending(table):
    current = table.c.current_reprocess_time
    return sa.or_(current.is_(None), current < table.c.end_reprocess_time)


STATES = (
    rows.TableCopy('modules_state', models.ModuleState.__table__,
                   {'name': 'name', 'state': 'enabled',
                    'priority': 'priority'},
                   key=('name',), convert={'priority': _priority}),
    rows.TableCopy('cloudkitty_storage_states', models.ScopeState.__table__,
                   {name: name for name in (
                       'identifier', 'scope_key', 'fetcher', 'collector',
                       'last_processed_timestamp', 'active',
                       'scope_activation_toggle_date')},
                   key=('identifier', 'scope_key', 'collector', 'fetcher')),
    rows.TableCopy('storage_scope_reprocessing_schedule',
                   models.ReprocessingTask.__table__,
                   {name: name for name in (
                       'id', 'identifier', 'reason', 'start_reprocess_time',
                       'end_reprocess_time', 'current_reprocess_time')},
                   key=('id',), identity=('identifier',
                                          'start_reprocess_time'),
                   where=_pending),
    rows.TableCopy('service_to_collector_mappings',
                   models.CollectorMapping.__table__,
                   {'service': 'service', 'collector': 'collector'},
                   key=('service',)),
)


def copy_states(upstream, engine, report):
    """Copy the tables of :data:`STATES` that upstream's database has
    (``cloudkitty-storage-init`` creates the scope tables: a deployment
    that never ran it has none), in one transaction; call
    ``report(table, counts)`` for each."""
    with upstream.connect() as upstream_conn, engine.begin() as conn:
        for copy in STATES:
            if not importer.has_table(upstream, copy.source):
                report(copy.source, 'not in upstream\'s database, skipped')
                continue
            report(copy.source, rows.copy_table(upstream_conn, conn, copy))
            if 'id' in copy.key:
                rows.advance_sequence(conn, copy.target)
