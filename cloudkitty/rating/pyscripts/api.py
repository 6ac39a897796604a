"""``/v1/rating/module_config/pyscripts``: the module's own API (v1, WSME).

``/scripts``: GET (list, with the filters of
:meth:`~cloudkitty.rating.pyscripts.db.PyScriptsDB.list_scripts` and
``no_data``), GET one, POST (``?force``) -> 201, PUT -> 201, DELETE (soft)
-> 204. Where the id goes, clients differ: PUT and DELETE take it in the
path, the query string or the body. Datetimes are written as naive UTC,
like the rest of v1; naive input is UTC. Access is checked once for the
whole module API by :class:`cloudkitty.api.v1.rating.ModuleConfigController`.
"""

import contextlib
import datetime

import pecan
from pecan import rest
import wsmeext.pecan as wsme_pecan
from wsme import types as wtypes

from cloudkitty.api import errors
from cloudkitty.rating.pyscripts import db as scripts_db
from cloudkitty.rating.pyscripts import exceptions as exc

_TRUE = ('true', '1', 'yes', 'on')
_FALSE = ('false', '0', 'no', 'off', '')
# What a client may send in a body besides what it may change: the
# read-only fields of an object it read before.
_CHANGEABLE = ('name', 'data', 'description', 'start', 'end')


def _v1_date(moment):
    if moment is None:
        return None
    return moment.astimezone(datetime.timezone.utc).replace(tzinfo=None)


class Script(wtypes.Base):
    """A script: its source in ``data``, ``checksum`` the sha512 hex of it."""

    script_id = wtypes.wsattr(wtypes.text, mandatory=False)
    name = wtypes.wsattr(wtypes.text, mandatory=False)
    data = wtypes.wsattr(wtypes.text, mandatory=False)
    checksum = wtypes.wsattr(wtypes.text, mandatory=False)
    description = wtypes.wsattr(wtypes.text, mandatory=False)
    start = wtypes.wsattr(datetime.datetime, mandatory=False)
    end = wtypes.wsattr(datetime.datetime, mandatory=False)
    created_at = wtypes.wsattr(datetime.datetime, mandatory=False)
    created_by = wtypes.wsattr(wtypes.text, mandatory=False)
    updated_by = wtypes.wsattr(wtypes.text, mandatory=False)
    deleted = wtypes.wsattr(datetime.datetime, mandatory=False)
    deleted_by = wtypes.wsattr(wtypes.text, mandatory=False)

    @classmethod
    def from_dict(cls, script):
        values = dict(script)
        for key in ('start', 'end', 'created_at', 'deleted'):
            values[key] = _v1_date(values[key])
        return cls(**values)

    def given(self):
        """``{attribute: value}`` of what the body set (``None`` included)."""
        return {name: getattr(self, name) for name in (
            'script_id', 'name', 'data', 'checksum', 'description', 'start',
            'end', 'created_at', 'created_by', 'updated_by', 'deleted',
            'deleted_by') if getattr(self, name) is not wtypes.Unset}


class ScriptCollection(wtypes.Base):
    scripts = [Script]


@contextlib.contextmanager
def _api_errors():
    """The data layer's errors as the API's."""
    try:
        yield
    except exc.NotFound as error:
        raise errors.NotFound(str(error)) from None
    except exc.Conflict as error:
        raise errors.Conflict(str(error)) from None
    except exc.InvalidScript as error:
        raise errors.BadRequest(str(error)) from None


def _flag(value, name):
    """A boolean query parameter (WSME leaves them as text here)."""
    if value is None or isinstance(value, bool):
        return bool(value)
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise errors.BadRequest(f"invalid query parameter '{name}': expected a "
                            f'boolean, got {value!r}')


def _is_active(value):
    """``is_active``: a boolean, or the datetime to be active at."""
    if value is None:
        return None
    if value.lower() in _TRUE + _FALSE:
        return _flag(value, 'is_active') or None
    return value


def _script_id(*candidates):
    """The one script id given in the path, query string or body."""
    values = {value for value in candidates
              if value not in (None, wtypes.Unset, '')}
    if not values:
        raise errors.BadRequest("'script_id' is required (in the path, the "
                                'query string or the body).')
    if len(values) > 1:
        raise errors.BadRequest("'script_id' is given several times with "
                                'different values.')
    return values.pop()


def _store():
    return scripts_db.PyScriptsDB(pecan.request.backends.engine)


def _user():
    return pecan.request.context.user_id


class ScriptsController(rest.RestController):
    """``/v1/rating/module_config/pyscripts/scripts``."""

    @wsme_pecan.wsexpose(ScriptCollection, wtypes.text, wtypes.text,
                         wtypes.text, wtypes.text, wtypes.text, wtypes.text,
                         wtypes.text, wtypes.text, wtypes.text)
    def get_all(self, no_data=None, deleted=None, start=None, end=None,
                created_by=None, updated_by=None, deleted_by=None,
                description=None, is_active=None):
        """Scripts, oldest first; ``no_data`` leaves their source out."""
        with _api_errors():
            scripts = _store().list_scripts(
                no_data=_flag(no_data, 'no_data'),
                deleted=_flag(deleted, 'deleted'), start=start, end=end,
                created_by=created_by, updated_by=updated_by,
                deleted_by=deleted_by, description=description,
                is_active=_is_active(is_active))
        return ScriptCollection(scripts=[Script.from_dict(script)
                                         for script in scripts])

    @wsme_pecan.wsexpose(Script, wtypes.text)
    def get_one(self, script_id):
        with _api_errors():
            return Script.from_dict(_store().get_script(script_id))

    @wsme_pecan.wsexpose(Script, wtypes.text, body=Script, status_code=201)
    def post(self, force=None, script=None):
        """Create a script; ``?force=true`` for a start in the past."""
        force = _flag(force, 'force')
        given = script.given() if script is not None else {}
        for name in ('name', 'data'):
            if given.get(name) is None:
                raise errors.BadRequest(f"'{name}' is required in the body.")
        unexpected = sorted(set(given) - set(_CHANGEABLE) - {'checksum'})
        if unexpected:
            raise errors.BadRequest(
                f"{', '.join(unexpected)} cannot be set on a new script.")
        with _api_errors():
            created = _store().create_script(
                given['name'], given['data'],
                description=given.get('description'),
                start=given.get('start'), end=given.get('end'),
                created_by=_user(), force=force)
        pecan.response.location = (
            f"{pecan.request.path_url.rstrip('/')}/{created['script_id']}")
        return Script.from_dict(created)

    @wsme_pecan.wsexpose(Script, wtypes.text, wtypes.text, body=Script,
                         status_code=201)
    def put(self, script_id=None, force=None, script=None):
        """Change a script (see api.md for what may change when)."""
        force = _flag(force, 'force')
        given = script.given() if script is not None else {}
        script_id = _script_id(script_id, given.get('script_id'))
        # The read-only fields of an object read before are ignored.
        changes = {name: given[name] for name in _CHANGEABLE
                   if name in given}
        with _api_errors():
            return Script.from_dict(_store().update_script(
                script_id, updated_by=_user(), force=force, **changes))

    @wsme_pecan.wsexpose(None, wtypes.text, body=Script, status_code=204)
    def delete(self, script_id=None, script=None):
        """Mark a script deleted: it is no longer run, and stays readable."""
        given = script.given() if script is not None else {}
        script_id = _script_id(script_id, given.get('script_id'))
        with _api_errors():
            _store().delete_script(script_id, deleted_by=_user())


class PyScriptsConfigController(rest.RestController):
    """``/v1/rating/module_config/pyscripts``."""

    scripts = ScriptsController()
