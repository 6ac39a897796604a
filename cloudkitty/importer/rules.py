"""Upstream's rating rules: hashmap and pyscripts, with their ids.

The CLI, Horizon and operators' scripts name rules by id (the UUIDs) and
the foreign keys join on the integer ids, so both are kept. Upstream's
``map_type`` is our ``type``; its pyscripts keep their source
zlib-compressed, ours keep the text, with the same sha512 ``checksum``
(checked: a script whose checksum does not match its source is refused).
Upstream's ``hashmap_thresholds.level`` may be NULL (its API always sets
one, 0 by default; a NULL comes from a hand-written row), ours may not,
and upstream's own hashmap cannot compare a quantity with a NULL level:
such a threshold is refused, named, before anything is written. Each
module is copied in one transaction that first increments the
module's revision counter, so running processors load the new rules.
"""

import hashlib
import zlib

from cloudkitty import importer
from cloudkitty.importer import rows
from cloudkitty.rating import common
from cloudkitty.rating.hash import models as hash_models
from cloudkitty.rating.pyscripts import models as py_models

_AUDIT = ('created_at', 'start', 'end', 'description', 'deleted',
          'created_by', 'updated_by', 'deleted_by')
_PARENTS = ('service_id', 'field_id', 'group_id')


def _columns(*names, **renamed):
    return {**{name: name for name in names}, **renamed}


HASHMAP = (
    rows.TableCopy('hashmap_services', hash_models.HashMapService.__table__,
                   _columns('id', 'service_id', 'name'), key=('id',),
                   identity=('service_id',)),
    rows.TableCopy('hashmap_fields', hash_models.HashMapField.__table__,
                   _columns('id', 'field_id', 'service_id', 'name'),
                   key=('id',), identity=('field_id',)),
    rows.TableCopy('hashmap_groups', hash_models.HashMapGroup.__table__,
                   _columns('id', 'group_id', 'name'), key=('id',),
                   identity=('group_id',)),
    rows.TableCopy('hashmap_mappings', hash_models.HashMapMapping.__table__,
                   _columns('id', 'mapping_id', 'value', 'cost', 'tenant_id',
                            'name', *_PARENTS, *_AUDIT, map_type='type'),
                   key=('id',), identity=('mapping_id',)),
    rows.TableCopy('hashmap_thresholds',
                   hash_models.HashMapThreshold.__table__,
                   _columns('id', 'threshold_id', 'level', 'cost',
                            'tenant_id', *_PARENTS, map_type='type'),
                   key=('id',), identity=('threshold_id',)),
)


def _script_source(data):
    return zlib.decompress(data).decode('utf-8')


PYSCRIPTS = (
    rows.TableCopy('pyscripts_scripts', py_models.PyScript.__table__,
                   _columns('id', 'script_id', 'name', 'data', 'checksum',
                            *_AUDIT),
                   key=('id',), identity=('script_id',),
                   convert={'data': _script_source}),
)


def check_thresholds(upstream_conn):
    """Raise :class:`~cloudkitty.importer.ImportFailed` naming every
    threshold with no level, and what to do about it."""
    copy = HASHMAP[-1]
    missing = [row for row in rows.read_rows(upstream_conn, copy)
               if row['level'] is None]
    if missing:
        names = ', '.join(f'{row["threshold_id"]} (id {row["id"]})'
                          for row in missing)
        raise importer.ImportFailed(
            f'hashmap thresholds with no level: {names}. Ours require '
            f'one, and upstream\'s hashmap cannot rate with none: set '
            f'the level in upstream (PUT /v1/rating/module_config/hashmap/'
            f'thresholds/<threshold_id> with "level"; upstream\'s API '
            f'sets 0 by default) or delete the threshold there, then run '
            f'the import again. Nothing was copied.')


def check_scripts(upstream_conn):
    """Raise :class:`~cloudkitty.importer.ImportFailed` for a script whose
    checksum is not the sha512 of its source."""
    copy, = PYSCRIPTS
    for row in rows.read_rows(upstream_conn, copy):
        digest = hashlib.sha512(row['data'].encode('utf-8')).hexdigest()
        if digest != row['checksum']:
            raise importer.ImportFailed(
                f'pyscript {row["script_id"]} ({row["name"]}): checksum '
                f'{row["checksum"]} is not the sha512 of its source '
                f'({digest})')


#: (module, revision table, copies, check): what :func:`copy_rules`
#: copies, after ``check(upstream connection)`` found nothing to refuse.
MODULES = (
    ('hashmap', hash_models.HashMapRevision.__table__, HASHMAP,
     check_thresholds),
    ('pyscripts', py_models.PyScriptsRevision.__table__, PYSCRIPTS,
     check_scripts),
)


def copy_rules(upstream, engine, report):
    """Copy every module's tables from the ``upstream`` engine into ours
    (``engine``); call ``report(table, counts)`` for each table. A module
    whose tables upstream lacks (never installed there) is skipped."""
    for module, revision, copies, check in MODULES:
        if not all(importer.has_table(upstream, c.source) for c in copies):
            report(module, 'not in upstream\'s database, skipped')
            continue
        with upstream.connect() as upstream_conn:
            check(upstream_conn)
            with common.Revision(revision).write(engine) as conn:
                for copy in copies:
                    report(copy.source,
                           rows.copy_table(upstream_conn, conn, copy))
                    rows.advance_sequence(conn, copy.target)
