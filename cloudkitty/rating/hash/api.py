"""``/v1/rating/module_config/hashmap``: the hashmap module's own API (v1).

=====================================  ======================================
``GET /types``                         ``["flat", "rate"]``
``/services``                          GET (list, one), POST ``{name}``,
                                       DELETE (with its fields and rules)
``/fields``                            GET (``?service_id``, one), POST
                                       ``{name, service_id}``, DELETE
``/groups``                            GET (list, one), POST ``{name}``,
                                       DELETE (``?recursive``: with its
                                       rules, else they lose their group);
                                       ``GET /groups/mappings?group_id``,
                                       ``GET /groups/thresholds?group_id``
``/mappings``                          GET (list with the filters of
                                       :meth:`~cloudkitty.rating.hash.db.
                                       HashMapDB.list_mappings`, one), POST
                                       (``?force``), PUT (``?force``),
                                       DELETE (soft);
                                       ``GET /mappings/group?mapping_id``
``/thresholds``                        GET (list, one), POST, PUT, DELETE;
                                       ``GET /thresholds/group?threshold_id``
=====================================  ======================================

POST answers 201 with the object and its URL in ``Location``, PUT 302 with
the object's URL in ``Location`` and no body, DELETE 204. The id of the
object a PUT or DELETE is about may come in the path, the query string or
the body (the ``cloudkitty`` CLI sends it in the body, to the collection's
URL); a PUT may carry a whole object read before: what it holds unchanged
is not a change. Costs and levels are read digit for digit from JSON
numbers or strings and written as JSON strings; a ``null`` in a POST is an
attribute not given (the CLI sends them). Who creates, updates or deletes
a mapping is recorded from the request context. Validation is the data
layer's (:mod:`cloudkitty.rating.hash.db`): its unknown objects answer
404, its conflicts 409, its invalid requests (an unknown parent of a new
object included) 400. Access is checked once for the whole module API by
:class:`cloudkitty.api.v1.rating.ModuleConfigController`.
"""

import functools

import pecan
from pecan import rest
import wsmeext.pecan as wsme_pecan
from wsme import types as wtypes

from cloudkitty.api import errors
from cloudkitty.api import utils as api_utils
from cloudkitty.api.v1 import module_config as mc
from cloudkitty.rating import common
from cloudkitty.rating.hash import db as hash_db
from cloudkitty.rating.hash import exceptions as exc
from cloudkitty.rating.hash import rules

_errors = functools.partial(mc.translate_errors, exc.NotFound,
                            exc.Conflict, exc.InvalidRule)


def _store():
    return hash_db.HashMapDB(pecan.request.backends.engine)


class Service(wtypes.Base):
    """A service: its rules match the points of that type (metric)."""

    service_id = wtypes.wsattr(wtypes.text, mandatory=False)
    name = wtypes.wsattr(mc.NAME, mandatory=False)


class ServiceCollection(wtypes.Base):
    services = [Service]


class Field(wtypes.Base):
    """A field of a service: its rules match a key of the points' desc."""

    field_id = wtypes.wsattr(wtypes.text, mandatory=False)
    name = wtypes.wsattr(mc.NAME, mandatory=False)
    service_id = wtypes.wsattr(wtypes.text, mandatory=False)


class FieldCollection(wtypes.Base):
    fields = [Field]


class Group(wtypes.Base):
    """A group of rules priced together."""

    group_id = wtypes.wsattr(wtypes.text, mandatory=False)
    name = wtypes.wsattr(mc.NAME, mandatory=False)


class GroupDeletion(Group):
    """The body of a group's DELETE, as the CLI sends it."""

    recursive = wtypes.wsattr(bool, mandatory=False)


class GroupCollection(wtypes.Base):
    groups = [Group]


class _Rule(wtypes.Base):
    """What mappings and thresholds have: a type, a cost, a parent (a
    service or a field), a group and a tenant, all optional."""

    type = wtypes.wsattr(wtypes.text, mandatory=False)
    cost = wtypes.wsattr(mc.DECIMAL, mandatory=False)
    service_id = wtypes.wsattr(wtypes.text, mandatory=False)
    field_id = wtypes.wsattr(wtypes.text, mandatory=False)
    group_id = wtypes.wsattr(wtypes.text, mandatory=False)
    tenant_id = wtypes.wsattr(mc.NAME, mandatory=False)


class Mapping(_Rule, mc.DatedRule):
    """A flat or rate cost for a service, or for a value of a field."""

    mapping_id = wtypes.wsattr(wtypes.text, mandatory=False)
    value = wtypes.wsattr(mc.NAME, mandatory=False)
    name = wtypes.wsattr(mc.NAME, mandatory=False)


class MappingCollection(wtypes.Base):
    mappings = [Mapping]


class Threshold(_Rule):
    """A flat or rate cost applying from a level of qty or of a field."""

    threshold_id = wtypes.wsattr(wtypes.text, mandatory=False)
    level = wtypes.wsattr(mc.LEVEL, mandatory=False)


class ThresholdCollection(wtypes.Base):
    thresholds = [Threshold]


def _query(*names):
    """The query string's parameters ``names`` (``None`` when absent); 400
    for any other. (Pecan hands handlers the body's keys with the query's,
    so handlers read the query here.)"""
    params = pecan.request.GET
    unknown = sorted(set(params) - set(names))
    if unknown:
        raise errors.BadRequest(
            f"unknown query parameter(s): {', '.join(unknown)}")
    return {name: params.get(name) for name in names}


def _flags(query, names):
    return {name: mc.flag(query[name], name) for name in names}


class _Objects(rest.RestController):
    """GET one, POST and DELETE of one kind of hashmap object.

    Subclasses say what the object is (``kind``, its WSME ``datatype``,
    its ``id_name``), what a POST may and must set (``creatable``,
    ``required``), the boolean query parameters of POST and DELETE
    (``post_flags``, ``delete_flags``; DELETE also reads them from its
    body, of type ``deletion_type``), and implement :meth:`fetch`,
    :meth:`create` and :meth:`remove` on a :class:`HashMapDB`.
    """

    kind = None
    datatype = None
    id_name = None
    creatable = ()
    required = ()
    post_flags = ()
    delete_flags = ()
    deletion_type = None

    def fetch(self, store, object_id):
        raise NotImplementedError

    def create(self, store, values, **flags):
        raise NotImplementedError

    def remove(self, store, object_id, **flags):
        raise NotImplementedError

    def _target(self, path, flags, body):
        """The id of the object a PUT or DELETE is about (given in the
        ``path``, the query or the ``body``, from which it is removed) and
        the query's boolean parameters ``flags``."""
        if len(path) > 1:
            raise errors.NotFound('The resource could not be found.')
        query = _query(self.id_name, *flags)
        object_id = api_utils.one_id(self.id_name, *path,
                                     query[self.id_name],
                                     body.pop(self.id_name, None))
        return object_id, _flags(query, flags)

    @pecan.expose(content_type='application/json')
    def get_one(self, object_id):
        _query()
        with _errors():
            found = self.fetch(_store(), object_id)
        return mc.respond(self.datatype, self.datatype(**found))

    @pecan.expose(content_type='application/json')
    def post(self):
        """Create an object: 201, its URL in ``Location``."""
        flags = _flags(_query(*self.post_flags), self.post_flags)
        values = mc.given(mc.read_body(self.datatype))
        mc.refuse_read_only(values, self.creatable, self.kind)
        mc.require(values, *self.required)
        values = {name: value for name, value in values.items()
                  if value is not None}
        with _errors():
            created = self.create(_store(), values, **flags)
        pecan.response.location = mc.object_url(created[self.id_name])
        return mc.respond(self.datatype, self.datatype(**created), 201)

    @pecan.expose(content_type='application/json')
    def delete(self, *path):
        """Delete an object: 204."""
        body = mc.given(mc.read_body(self.deletion_type or self.datatype))
        object_id, flags = self._target(path, self.delete_flags, body)
        for name in self.delete_flags:
            flags[name] = flags[name] or bool(body.get(name))
        with _errors():
            self.remove(_store(), object_id, **flags)
        return mc.respond(status=204)


class _Rules(_Objects):
    """What mappings and thresholds add: PUT, and ``GET group``."""

    _custom_actions = {'group': ['GET']}

    put_flags = ()
    #: Attributes a PUT may not set to ``null``.
    not_null = ('type', 'cost')

    def update(self, store, object_id, changes, **flags):
        raise NotImplementedError

    def group_of(self, store, object_id):
        raise NotImplementedError

    @pecan.expose(content_type='application/json')
    def put(self, *path):
        """Change a rule: 302, its URL in ``Location``."""
        values = mc.given(mc.read_body(self.datatype))
        object_id, flags = self._target(path, self.put_flags, values)
        for name in self.not_null:
            if name in values and values[name] is None:
                raise errors.BadRequest(f"'{name}' cannot be null.")
        # What only the data layer writes, sent back with a whole object.
        changes = {name: value for name, value in values.items()
                   if name not in common.AUDIT_FIELDS}
        with _errors():
            self.update(_store(), object_id, changes, **flags)
        pecan.response.location = mc.object_url(object_id)
        return mc.respond(status=302)

    @pecan.expose(content_type='application/json')
    def group(self):
        """The group of a rule (404 when it has none)."""
        object_id, _ = self._target((), (), {})
        with _errors():
            group = self.group_of(_store(), object_id)
        return mc.respond(Group, Group(**group))


class ServicesController(_Objects):
    """``/services``."""

    kind = 'service'
    datatype = Service
    id_name = 'service_id'
    creatable = required = ('name',)

    @wsme_pecan.wsexpose(ServiceCollection)
    def get_all(self):
        """Every service, by name."""
        return ServiceCollection(services=[
            Service(**service) for service in _store().list_services()])

    def fetch(self, store, object_id):
        return store.get_service(object_id)

    def create(self, store, values):
        return store.create_service(values['name'])

    def remove(self, store, object_id):
        store.delete_service(object_id)


class FieldsController(_Objects):
    """``/fields``."""

    kind = 'field'
    datatype = Field
    id_name = 'field_id'
    creatable = required = ('name', 'service_id')

    @wsme_pecan.wsexpose(FieldCollection, wtypes.text)
    def get_all(self, service_id=None):
        """The fields of a service (of every service without one)."""
        return FieldCollection(fields=[
            Field(**field) for field in _store().list_fields(service_id)])

    def fetch(self, store, object_id):
        return store.get_field(object_id)

    def create(self, store, values):
        return store.create_field(values['service_id'], values['name'])

    def remove(self, store, object_id):
        store.delete_field(object_id)


class GroupsController(_Objects):
    """``/groups``."""

    _custom_actions = {'mappings': ['GET'], 'thresholds': ['GET']}

    kind = 'group'
    datatype = Group
    id_name = 'group_id'
    creatable = required = ('name',)
    delete_flags = ('recursive',)
    deletion_type = GroupDeletion

    @wsme_pecan.wsexpose(GroupCollection)
    def get_all(self):
        """Every group, by name."""
        return GroupCollection(groups=[
            Group(**group) for group in _store().list_groups()])

    @wsme_pecan.wsexpose(MappingCollection, wtypes.text)
    def mappings(self, group_id=None):
        """The live mappings of a group."""
        group_id = api_utils.one_id('group_id', group_id)
        store = _store()
        with _errors():
            store.get_group(group_id)
            mappings = store.list_mappings(group_id=group_id)
        return MappingCollection(mappings=[
            Mapping(**mapping) for mapping in mappings])

    @wsme_pecan.wsexpose(ThresholdCollection, wtypes.text)
    def thresholds(self, group_id=None):
        """The thresholds of a group."""
        group_id = api_utils.one_id('group_id', group_id)
        store = _store()
        with _errors():
            store.get_group(group_id)
            thresholds = store.list_thresholds(group_id=group_id)
        return ThresholdCollection(thresholds=[
            Threshold(**threshold) for threshold in thresholds])

    def fetch(self, store, object_id):
        return store.get_group(object_id)

    def create(self, store, values):
        return store.create_group(values['name'])

    def remove(self, store, object_id, recursive=False):
        store.delete_group(object_id, recursive=recursive,
                           deleted_by=mc.caller())


class MappingsController(_Rules):
    """``/mappings``."""

    kind = 'mapping'
    datatype = Mapping
    id_name = 'mapping_id'
    creatable = ('value', 'type', 'cost', 'service_id', 'field_id',
                 'group_id', 'tenant_id', 'name', 'description', 'start',
                 'end')
    required = ('cost',)
    post_flags = put_flags = ('force',)

    @wsme_pecan.wsexpose(MappingCollection, wtypes.text, wtypes.text,
                         wtypes.text, wtypes.text, wtypes.text, wtypes.text,
                         wtypes.text, wtypes.text, wtypes.text, wtypes.text,
                         wtypes.text, wtypes.text, wtypes.text, wtypes.text)
    def get_all(self, service_id=None, field_id=None, group_id=None,
                no_group=None, tenant_id=None, filter_tenant=None,
                deleted=None, start=None, end=None, created_by=None,
                updated_by=None, deleted_by=None, description=None,
                is_active=None):
        """Mappings matching every filter given, oldest first (deleted
        ones only with ``deleted``)."""
        with _errors():
            mappings = _store().list_mappings(
                service_id=service_id, field_id=field_id, group_id=group_id,
                no_group=mc.flag(no_group, 'no_group'), tenant_id=tenant_id,
                filter_tenant=mc.flag(filter_tenant, 'filter_tenant'),
                deleted=mc.flag(deleted, 'deleted'),
                start=mc.instant(start, 'start'),
                end=mc.instant(end, 'end'),
                created_by=created_by, updated_by=updated_by,
                deleted_by=deleted_by, description=description,
                is_active=mc.is_active(is_active))
        return MappingCollection(mappings=[
            Mapping(**mapping) for mapping in mappings])

    def fetch(self, store, object_id):
        return store.get_mapping(object_id)

    def create(self, store, values, force=False):
        return store.create_mapping(created_by=mc.caller(), force=force,
                                    **values)

    def update(self, store, object_id, changes, force=False):
        store.update_mapping(object_id, updated_by=mc.caller(), force=force,
                             **changes)

    def remove(self, store, object_id):
        store.delete_mapping(object_id, deleted_by=mc.caller())

    def group_of(self, store, object_id):
        return store.get_mapping_group(object_id)


class ThresholdsController(_Rules):
    """``/thresholds``."""

    kind = 'threshold'
    datatype = Threshold
    id_name = 'threshold_id'
    creatable = ('level', 'type', 'cost', 'service_id', 'field_id',
                 'group_id', 'tenant_id')
    required = ('level', 'cost')
    not_null = ('level', 'type', 'cost')

    @wsme_pecan.wsexpose(ThresholdCollection, wtypes.text, wtypes.text,
                         wtypes.text, wtypes.text, wtypes.text, wtypes.text)
    def get_all(self, service_id=None, field_id=None, group_id=None,
                no_group=None, tenant_id=None, filter_tenant=None):
        """Thresholds matching every filter given."""
        thresholds = _store().list_thresholds(
            service_id=service_id, field_id=field_id, group_id=group_id,
            no_group=mc.flag(no_group, 'no_group'), tenant_id=tenant_id,
            filter_tenant=mc.flag(filter_tenant, 'filter_tenant'))
        return ThresholdCollection(thresholds=[
            Threshold(**threshold) for threshold in thresholds])

    def fetch(self, store, object_id):
        return store.get_threshold(object_id)

    def create(self, store, values):
        return store.create_threshold(**values)

    def update(self, store, object_id, changes):
        store.update_threshold(object_id, **changes)

    def remove(self, store, object_id):
        store.delete_threshold(object_id)

    def group_of(self, store, object_id):
        return store.get_threshold_group(object_id)


class HashMapConfigController(rest.RestController):
    """``/v1/rating/module_config/hashmap``."""

    _custom_actions = {'types': ['GET']}

    services = ServicesController()
    fields = FieldsController()
    groups = GroupsController()
    mappings = MappingsController()
    thresholds = ThresholdsController()

    @wsme_pecan.wsexpose([wtypes.text])
    def types(self):
        """The rule types: ``["flat", "rate"]``."""
        return list(rules.RULE_TYPES)
