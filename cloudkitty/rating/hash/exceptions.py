"""Errors of the hashmap data layer.

Three families, so that the API maps them without knowing each one:
:class:`NotFound` (the object named by the request does not exist: 404),
:class:`Conflict` (it would duplicate an existing one: 409) and
:class:`InvalidRule` (the request itself is wrong: 400, including a parent
that does not exist when creating a field or a rule).
"""


class HashMapError(Exception):
    """Base of every hashmap error."""


class NotFound(HashMapError):
    """No such object."""

    kind = 'object'

    def __init__(self, uuid=None, name=None):
        self.uuid = uuid
        self.name = name
        what = f'name {name}' if name is not None else uuid
        super().__init__(f'No such {self.kind}: {what}')


class NoSuchService(NotFound):
    kind = 'service'


class NoSuchField(NotFound):
    kind = 'field'


class NoSuchGroup(NotFound):
    kind = 'group'


class NoSuchMapping(NotFound):
    kind = 'mapping'


class NoSuchThreshold(NotFound):
    kind = 'threshold'


class MappingHasNoGroup(NotFound):
    """The mapping exists but belongs to no group."""

    kind = 'group for mapping'


class ThresholdHasNoGroup(NotFound):
    """The threshold exists but belongs to no group."""

    kind = 'group for threshold'


class Conflict(HashMapError):
    """The object would duplicate one that exists.

    ``uuid`` is the existing object's, when there is one to name.
    """

    def __init__(self, message, uuid=None):
        self.uuid = uuid
        super().__init__(message)


class ServiceAlreadyExists(Conflict):
    pass


class FieldAlreadyExists(Conflict):
    pass


class GroupAlreadyExists(Conflict):
    pass


class MappingAlreadyExists(Conflict):
    """Same name as a live mapping, or same parent, value, tenant and group
    as a live mapping with an overlapping validity."""


class ThresholdAlreadyExists(Conflict):
    """Same level, parent and tenant as an existing threshold."""


class InvalidRule(HashMapError, ValueError):
    """A create or update request that cannot be applied as given."""


class NoSuchType(InvalidRule):
    """A rule type other than ``flat`` and ``rate``."""

    def __init__(self, type_):
        self.type = type_
        super().__init__(f'No such rule type: {type_!r} (flat or rate)')


class UnknownParent(InvalidRule):
    """The service, field or group a new object refers to does not exist."""

    def __init__(self, missing):
        self.missing = missing
        super().__init__(str(missing))


class ImmutableRule(InvalidRule):
    """An update the validity rules forbid (started rule, deleted rule,
    attribute that never changes)."""
