"""Data access of the pyscripts module: what its API and its processor need.

:class:`PyScriptsDB` works on an engine. Scripts go in and out as dicts
with the fields of the API (api.md, PyScripts): ``script_id`` (a UUID
string), ``name``, ``data`` (the source), ``checksum`` (sha512 hex of
``data``), ``start``, ``end``, ``description`` and the audit fields, with
aware UTC datetimes (naive input is taken as UTC). The validity and audit
rules are those every dated rule follows (:mod:`cloudkitty.rating.common`);
errors are those of :mod:`cloudkitty.rating.pyscripts.exceptions`.

Every write runs in one transaction that first increments the
``pyscripts_revision`` row, so the live-name check (read, then write)
cannot race and :meth:`PyScriptsDB.revision` tells a processor whether the
scripts changed.
"""

import collections
import datetime
import hashlib
import uuid

import sqlalchemy as sa

from cloudkitty.rating import common
from cloudkitty.rating.pyscripts import exceptions as exc
from cloudkitty.rating.pyscripts import models
from cloudkitty import timeutils

_SCRIPTS = models.PyScript.__table__
_NAME_LENGTH = 255

_FIELDS = frozenset(['script_id', 'name', 'data', 'checksum', 'description',
                     'start', 'end'])
# Derived from data: a PUT may carry it, it is never set.
_READ_ONLY = common.AUDIT_FIELDS | {'checksum'}

DATED = common.DatedRules(
    _SCRIPTS, 'script_id', exc.InvalidScript, exc.ImmutableScript,
    future_changes=('data', 'start', 'end', 'description'), what='script')

#: A script as the processor runs it.
Script = collections.namedtuple('Script',
                                ['script_id', 'name', 'data', 'checksum'])


def checksum(data):
    """The sha512 hex digest of a script's source."""
    return hashlib.sha512(data.encode('utf-8')).hexdigest()


def check_source(data):
    """``data`` if it is Python source that compiles, else InvalidScript.

    Compiling runs nothing; it tells at once a script that would fail on
    every period.
    """
    if not isinstance(data, str) or not data.strip():
        raise exc.InvalidScript('data must be a non-empty string of Python '
                                'source')
    try:
        compile(data, '<pyscript>', 'exec')
    except SyntaxError as error:
        raise exc.InvalidScript(
            f'data is not valid Python: {error.msg} (line {error.lineno})'
        ) from None
    except (ValueError, RecursionError, MemoryError) as error:
        raise exc.InvalidScript(f'data is not valid Python: {error}') \
            from None
    return data


def _check_name(name):
    if not isinstance(name, str) or not name.strip():
        raise exc.InvalidScript('name must be a non-empty string')
    if len(name) > _NAME_LENGTH:
        raise exc.InvalidScript(
            f'name is longer than {_NAME_LENGTH} characters')
    return name


def _script_dict(row, with_data=True):
    script = {
        'script_id': row.script_id, 'name': row.name,
        'data': row.data if with_data else None, 'checksum': row.checksum,
        'description': row.description, 'start': common.from_db(row.start),
        'end': common.from_db(row.end),
        'created_at': common.from_db(row.created_at),
        'created_by': row.created_by, 'updated_by': row.updated_by,
        'deleted': common.from_db(row.deleted), 'deleted_by': row.deleted_by,
    }
    return script


class PyScriptsDB:
    """The pyscripts tables behind ``engine``.

    ``clock`` returns the current aware UTC time (tests pass their own).
    """

    def __init__(self, engine, clock=timeutils.utcnow):
        self.engine = engine
        self._clock = clock
        self._revision = common.Revision(models.PyScriptsRevision.__table__)

    def revision(self):
        """The number of writes so far: changes whenever a script does."""
        return self._revision.read(self.engine)

    @staticmethod
    def _row(conn, script_id):
        row = conn.execute(sa.select(_SCRIPTS).where(
            _SCRIPTS.c.script_id == script_id)).first()
        if row is None:
            raise exc.NoSuchScript(script_id)
        return row

    @staticmethod
    def _check_name_free(conn, name, exclude=None):
        query = sa.select(_SCRIPTS.c.script_id).where(
            DATED.live(), _SCRIPTS.c.name == name)
        if exclude is not None:
            query = query.where(_SCRIPTS.c.id != exclude)
        clash = conn.execute(query).scalar()
        if clash is not None:
            raise exc.ScriptAlreadyExists(
                f'A script named {name} already exists ({clash})', clash)

    def create_script(self, name, data, description=None, start=None,
                      end=None, created_by=None, force=False):
        """Create a script and return it.

        ``data`` must compile; ``start`` defaults to now and may only be in
        the past with ``force``; ``end`` must come after ``start``. Raises
        :class:`InvalidScript` and :class:`ScriptAlreadyExists` when a live
        script has the same name.
        """
        _check_name(name)
        check_source(data)
        now = self._clock()
        start = DATED.date(start, 'start') or now
        end = DATED.date(end, 'end')
        DATED.check_window(start, end, now, force)
        script_id = str(uuid.uuid4())
        with self._revision.write(self.engine) as conn:
            self._check_name_free(conn, name)
            conn.execute(_SCRIPTS.insert().values(
                script_id=script_id, name=name, data=data,
                checksum=checksum(data), description=description,
                start=common.to_db(start), end=common.to_db(end),
                created_at=common.to_db(now), created_by=created_by))
            return _script_dict(self._row(conn, script_id))

    def get_script(self, script_id):
        """One script, deleted or not; :class:`NoSuchScript`."""
        with self.engine.connect() as conn:
            return _script_dict(self._row(conn, script_id))

    def list_scripts(self, no_data=False, **filters):
        """Scripts matching every filter given, oldest first.

        ``no_data``: leave ``data`` out (``None``). The filters are those
        of :meth:`cloudkitty.rating.common.DatedRules.filter`:
        ``deleted``, ``start``, ``end``, ``created_by``, ``updated_by``,
        ``deleted_by``, ``description``, ``is_active``.
        """
        query = DATED.filter(sa.select(_SCRIPTS).order_by(_SCRIPTS.c.id),
                             self._clock(), **filters)
        with self.engine.connect() as conn:
            return [_script_dict(row, with_data=not no_data)
                    for row in conn.execute(query)]

    def update_script(self, script_id, /, updated_by=None, force=False,
                      **changes):
        """Apply ``changes`` (attributes of the script) and return it.

        Attributes given with their current value are not changes, nor are
        the audit fields and ``checksum`` (read-only), so a whole object
        read from the API can be sent back. A script that has not started
        may change its data, start (in the past only with ``force``), end
        and description; one that has started and has no end may only get
        an end, in the future; one that has started and has an end, or is
        deleted, cannot change. Raises :class:`NoSuchScript`,
        :class:`ImmutableScript`, :class:`InvalidScript`.
        """
        with self._revision.write(self.engine) as conn:
            row = self._row(conn, script_id)
            current = _script_dict(row)
            diff = self._diff(current, changes)
            if not diff:
                return current
            DATED.check_update(current, diff, self._clock(), force)
            values = {key: common.to_db(value)
                      if isinstance(value, datetime.datetime) else value
                      for key, value in diff.items()}
            if 'data' in values:
                values['checksum'] = checksum(values['data'])
            conn.execute(_SCRIPTS.update().where(
                _SCRIPTS.c.id == row.id).values(updated_by=updated_by,
                                                **values))
            return _script_dict(self._row(conn, script_id))

    @staticmethod
    def _diff(current, changes):
        diff = {}
        for key, value in changes.items():
            if key in _READ_ONLY:
                continue
            if key not in _FIELDS:
                raise exc.InvalidScript(f'A script has no attribute {key!r}')
            if key in ('start', 'end'):
                value = DATED.date(value, key)
            if value != current[key]:
                if key == 'data':
                    check_source(value)
                diff[key] = value
        return diff

    def delete_script(self, script_id, deleted_by=None):
        """Mark a script deleted (it stays readable, and is no longer run);
        :class:`NoSuchScript` if unknown or already deleted."""
        with self._revision.write(self.engine) as conn:
            if not DATED.soft_delete(conn, script_id, self._clock(),
                                     deleted_by):
                raise exc.NoSuchScript(script_id)

    def load_scripts(self, at):
        """The :class:`Script` tuples valid at ``at`` (``start <= at < end``
        or no end, not deleted), by name: the order they run in."""
        at = DATED.date(at, 'at')
        query = sa.select(_SCRIPTS.c.script_id, _SCRIPTS.c.name,
                          _SCRIPTS.c.data, _SCRIPTS.c.checksum).where(
            *DATED.valid_at(at)).order_by(_SCRIPTS.c.name,
                                          _SCRIPTS.c.script_id)
        with self.engine.connect() as conn:
            return [Script(*row) for row in conn.execute(query)]
