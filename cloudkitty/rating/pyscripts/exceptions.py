"""Errors of the pyscripts module.

Data layer errors come in three families, so that the API maps them
without knowing each one: :class:`NotFound` (404), :class:`Conflict` (409)
and :class:`InvalidScript` (400). :class:`ScriptFailed` is the rating
error: a script failed on a frame, which fails that scope's period.
"""


class PyScriptsError(Exception):
    """Base of every pyscripts error."""


class NotFound(PyScriptsError):
    """No such object."""


class NoSuchScript(NotFound):

    def __init__(self, script_id):
        self.script_id = script_id
        super().__init__(f'No such script: {script_id}')


class Conflict(PyScriptsError):
    """The object would duplicate one that exists (``uuid``: that one's)."""

    def __init__(self, message, uuid=None):
        self.uuid = uuid
        super().__init__(message)


class ScriptAlreadyExists(Conflict):
    """A live script has the same name."""


class InvalidScript(PyScriptsError, ValueError):
    """A create or update request that cannot be applied as given."""


class ImmutableScript(InvalidScript):
    """An update the validity rules forbid (started or deleted script,
    attribute that never changes)."""


class ScriptFailed(PyScriptsError):
    """A script failed on a frame: it raised, exceeded a limit, killed its
    process or left data that is not a valid frame.

    ``name`` and ``script_id`` identify the script, ``reason`` says what
    happened; the message names the script.
    """

    def __init__(self, name, script_id, reason):
        self.name = name
        self.script_id = script_id
        self.reason = reason
        super().__init__(f'pyscript {name!r} ({script_id}) failed: {reason}')
