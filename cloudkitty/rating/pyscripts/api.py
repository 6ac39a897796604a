"""``/v1/rating/module_config/pyscripts``: the module's own API (v1, WSME).

``/scripts``: GET (list, with the filters of
:meth:`~cloudkitty.rating.pyscripts.db.PyScriptsDB.list_scripts` and
``no_data``), GET one, POST (``?force``) -> 201, PUT -> 201, DELETE (soft)
-> 204. Where the id goes, clients differ: PUT and DELETE take it in the
path, the query string or the body. Datetimes are written as naive UTC,
like the rest of v1; naive input is UTC. Access is checked once for the
whole module API by :class:`cloudkitty.api.v1.rating.ModuleConfigController`.
"""

import functools

import pecan
from pecan import rest
import wsmeext.pecan as wsme_pecan
from wsme import types as wtypes

from cloudkitty.api import utils as api_utils
from cloudkitty.api.v1 import module_config as mc
from cloudkitty.rating.pyscripts import db as scripts_db
from cloudkitty.rating.pyscripts import exceptions as exc

# What a client may send in a body besides what it may change: the
# read-only fields of an object it read before.
_CHANGEABLE = ('name', 'data', 'description', 'start', 'end')

_api_errors = functools.partial(mc.translate_errors, exc.NotFound,
                                exc.Conflict, exc.InvalidScript)


class Script(mc.DatedRule):
    """A script: its source in ``data``, ``checksum`` the sha512 hex of it."""

    script_id = wtypes.wsattr(wtypes.text, mandatory=False)
    name = wtypes.wsattr(wtypes.text, mandatory=False)
    data = wtypes.wsattr(wtypes.text, mandatory=False)
    checksum = wtypes.wsattr(wtypes.text, mandatory=False)


class ScriptCollection(wtypes.Base):
    scripts = [Script]


def _store():
    return scripts_db.PyScriptsDB(pecan.request.backends.engine)


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
                no_data=mc.flag(no_data, 'no_data'),
                deleted=mc.flag(deleted, 'deleted'),
                start=mc.instant(start, 'start'),
                end=mc.instant(end, 'end'),
                created_by=created_by, updated_by=updated_by,
                deleted_by=deleted_by, description=description,
                is_active=mc.is_active(is_active))
        return ScriptCollection(scripts=[Script(**script)
                                         for script in scripts])

    @wsme_pecan.wsexpose(Script, wtypes.text)
    def get_one(self, script_id):
        with _api_errors():
            return Script(**_store().get_script(script_id))

    @wsme_pecan.wsexpose(Script, wtypes.text, body=Script, status_code=201)
    def post(self, force=None, script=None):
        """Create a script; ``?force=true`` for a start in the past."""
        force = mc.flag(force, 'force')
        given = mc.given(script)
        mc.require(given, 'name', 'data')
        mc.refuse_read_only(given, _CHANGEABLE + ('checksum',), 'script')
        with _api_errors():
            created = _store().create_script(
                given['name'], given['data'],
                description=given.get('description'),
                start=given.get('start'), end=given.get('end'),
                created_by=mc.caller(), force=force)
        pecan.response.location = mc.object_url(created['script_id'])
        return Script(**created)

    @wsme_pecan.wsexpose(Script, wtypes.text, wtypes.text, body=Script,
                         status_code=201)
    def put(self, script_id=None, force=None, script=None):
        """Change a script (see api.md for what may change when)."""
        force = mc.flag(force, 'force')
        given = mc.given(script)
        script_id = api_utils.one_id('script_id', script_id,
                                     given.get('script_id'))
        # The read-only fields of an object read before are ignored.
        changes = {name: given[name] for name in _CHANGEABLE
                   if name in given}
        with _api_errors():
            return Script(**_store().update_script(
                script_id, updated_by=mc.caller(), force=force, **changes))

    @wsme_pecan.wsexpose(None, wtypes.text, body=Script, status_code=204)
    def delete(self, script_id=None, script=None):
        """Mark a script deleted: it is no longer run, and stays readable."""
        given = mc.given(script)
        script_id = api_utils.one_id('script_id', script_id,
                                     given.get('script_id'))
        with _api_errors():
            _store().delete_script(script_id, deleted_by=mc.caller())


class PyScriptsConfigController(rest.RestController):
    """``/v1/rating/module_config/pyscripts``."""

    scripts = ScriptsController()
