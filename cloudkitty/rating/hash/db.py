"""Data access of the hashmap module: what its API and its processor need.

:class:`HashMapDB` works on an engine. Objects go in and out as dicts with
the fields of the API (``doc`` api.md, hashmap): UUID strings for
``service_id``, ``field_id``, ``group_id``, ``mapping_id``,
``threshold_id``; ``Decimal`` costs and levels (trailing zeros dropped, so
the same value reads the same on every database); aware UTC datetimes
(naive input is taken as UTC). Errors are those of
:mod:`cloudkitty.rating.hash.exceptions`; nothing here knows HTTP.

The validity, audit and soft-delete rules of mappings are those of every
dated rule (:mod:`cloudkitty.rating.common`). Every write runs in one
transaction that first increments the ``hashmap_revision`` row: writers
are serialised on that row, so the uniqueness checks below (read, then
write) cannot race, and :meth:`HashMapDB.revision` tells a processor
whether the rules changed. A processor reads it before each period it
rates, at the least cost (:meth:`cloudkitty.rating.common.Revision.read`).

:meth:`HashMapDB.load_rules` is the processor's one read: the rules valid
at a period start, in two queries whatever their number, compiled into a
:class:`cloudkitty.rating.hash.rules.RuleSet`.
"""

import datetime
import decimal
import uuid

import sqlalchemy as sa

from cloudkitty import dataframe
from cloudkitty.rating import common
from cloudkitty.rating.hash import exceptions as exc
from cloudkitty.rating.hash import models
from cloudkitty.rating.hash import rules
from cloudkitty import timeutils

_SERVICES = models.HashMapService.__table__
_FIELDS = models.HashMapField.__table__
_GROUPS = models.HashMapGroup.__table__
_MAPPINGS = models.HashMapMapping.__table__
_THRESHOLDS = models.HashMapThreshold.__table__
_REVISION = models.HashMapRevision.__table__
# Every write increments it first (see the module's docstring).
_REVISION_COUNTER = common.Revision(_REVISION)
_RULE_KEYS = {_MAPPINGS.name: ('mapping_id', exc.NoSuchMapping),
              _THRESHOLDS.name: ('threshold_id', exc.NoSuchThreshold)}

_COST_DIGITS = 12
_LEVEL_DIGITS = 20
_SCALE = 28

_MAPPING_FIELDS = frozenset([
    'mapping_id', 'value', 'type', 'cost', 'service_id', 'field_id',
    'group_id', 'tenant_id', 'name', 'description', 'start', 'end'])
_THRESHOLD_FIELDS = frozenset([
    'threshold_id', 'level', 'type', 'cost', 'service_id', 'field_id',
    'group_id', 'tenant_id'])
_THRESHOLD_CHANGES = frozenset(['level', 'type', 'cost', 'group_id',
                                'tenant_id'])


def plain(value):
    """``value`` without trailing zeros and without exponent notation."""
    if value is None:
        return None
    value = decimal.Decimal(value).normalize(rules.CONTEXT)
    if value.as_tuple().exponent > 0:
        value = value.quantize(decimal.Decimal(1), context=rules.CONTEXT)
    return value


def _number(value, what, integer_digits):
    """A Decimal fitting ``NUMERIC(integer_digits + 28, 28)``, or
    :class:`InvalidRule`."""
    try:
        number = dataframe.to_decimal(value)
    except ValueError:
        raise exc.InvalidRule(f'{what} {value!r} is not a number') from None
    # Judged on the exponent first: normalizing 1E+999999999 overflows.
    if number and number.adjusted() >= integer_digits:
        raise exc.InvalidRule(f'{what} {value} has more than '
                              f'{integer_digits} integer digits')
    if number and number.adjusted() < -_SCALE:
        raise exc.InvalidRule(f'{what} {value} has more than {_SCALE} '
                              f'decimal digits')
    number = plain(number)
    if number.as_tuple().exponent < -_SCALE:
        raise exc.InvalidRule(f'{what} {value} has more than {_SCALE} '
                              f'decimal digits')
    if number.copy_abs() >= decimal.Decimal(10) ** integer_digits:
        raise exc.InvalidRule(f'{what} {value} has more than '
                              f'{integer_digits} integer digits')
    return number


def _mapping_value(value):
    """A mapping's value as stored: a string, ``None`` for none (or '')."""
    if value is None or value == '':
        return None
    return str(value)


def _check_one_parent(service_id, field_id):
    if (service_id is None) == (field_id is None):
        raise exc.InvalidRule('Exactly one of service_id and field_id is '
                              'required')


def _rule_type(type_):
    if type_ not in rules.RULE_TYPES:
        raise exc.NoSuchType(type_)
    return type_


_DATED = common.DatedRules(
    _MAPPINGS, 'mapping_id', exc.InvalidRule, exc.ImmutableRule,
    # What a rule that has not started yet may change (api.md).
    future_changes=('cost', 'start', 'end', 'description'))
_date = _DATED.date
_to_db = common.to_db
_from_db = common.from_db


def _same(a, b):
    """Equality of a stored value and a requested one (NULL is NULL)."""
    return a.is_(None) if b is None else a == b


def _parents_query(table):
    """``table``'s rows with the UUIDs of their service, field and group."""
    service, field, group = (_SERVICES.alias('s'), _FIELDS.alias('f'),
                             _GROUPS.alias('g'))
    query = sa.select(
        table,
        service.c.service_id.label('service_uuid'),
        field.c.field_id.label('field_uuid'),
        group.c.group_id.label('group_uuid'),
    ).select_from(
        table.outerjoin(service, table.c.service_id == service.c.id)
        .outerjoin(field, table.c.field_id == field.c.id)
        .outerjoin(group, table.c.group_id == group.c.id)
    ).order_by(table.c.id)
    return query, service, field, group


def _rule_row(conn, table, uuid_value):
    """A mapping or threshold row with its parents' UUIDs, or NotFound."""
    uuid_column, missing = _RULE_KEYS[table.name]
    query, *_ = _parents_query(table)
    row = conn.execute(query.where(table.c[uuid_column] == uuid_value)).first()
    if row is None:
        raise missing(uuid_value)
    return row


def _mapping_dict(row):
    return {
        'mapping_id': row.mapping_id, 'value': row.value, 'type': row.type,
        'cost': plain(row.cost), 'service_id': row.service_uuid,
        'field_id': row.field_uuid, 'group_id': row.group_uuid,
        'tenant_id': row.tenant_id, 'name': row.name,
        'description': row.description, 'start': _from_db(row.start),
        'end': _from_db(row.end), 'created_at': _from_db(row.created_at),
        'created_by': row.created_by, 'updated_by': row.updated_by,
        'deleted': _from_db(row.deleted), 'deleted_by': row.deleted_by,
    }


def _threshold_dict(row):
    return {
        'threshold_id': row.threshold_id, 'level': plain(row.level),
        'type': row.type, 'cost': plain(row.cost),
        'service_id': row.service_uuid, 'field_id': row.field_uuid,
        'group_id': row.group_uuid, 'tenant_id': row.tenant_id,
    }


class HashMapDB:
    """The hashmap tables behind ``engine``.

    ``clock`` returns the current aware UTC time (tests pass their own).
    """

    def __init__(self, engine, clock=timeutils.utcnow):
        self.engine = engine
        self._clock = clock

    # -- plumbing ---------------------------------------------------------

    def _write(self):
        """A write transaction, serialised on the revision row."""
        return _REVISION_COUNTER.write(self.engine)

    def revision(self):
        """The number of writes so far: changes whenever any rule does.
        Read from the database at each call
        (:meth:`cloudkitty.rating.common.Revision.read`)."""
        return _REVISION_COUNTER.read(self.engine)

    @staticmethod
    def _one(conn, table, uuid_column, uuid_value, error):
        row = conn.execute(sa.select(table).where(
            table.c[uuid_column] == uuid_value)).first()
        if row is None:
            raise error(uuid_value)
        return row

    def _parent(self, conn, table, uuid_column, uuid_value, error):
        """The row of a parent named by a create request, or 400."""
        try:
            return self._one(conn, table, uuid_column, uuid_value, error)
        except exc.NotFound as missing:
            raise exc.UnknownParent(missing) from None

    # -- services ---------------------------------------------------------

    def create_service(self, name):
        """Create a service: ``{service_id, name}``.

        Raises :class:`ServiceAlreadyExists` for a name in use.
        """
        with self._write() as conn:
            existing = conn.execute(sa.select(_SERVICES.c.service_id).where(
                _SERVICES.c.name == name)).scalar()
            if existing is not None:
                raise exc.ServiceAlreadyExists(
                    f'Service {name} already exists ({existing})', existing)
            service = {'service_id': str(uuid.uuid4()), 'name': name}
            conn.execute(_SERVICES.insert().values(**service))
        return service

    def get_service(self, service_id=None, name=None):
        """One service by UUID or by name; :class:`NoSuchService`."""
        with self.engine.connect() as conn:
            if service_id is not None:
                row = self._one(conn, _SERVICES, 'service_id', service_id,
                                exc.NoSuchService)
            else:
                row = conn.execute(sa.select(_SERVICES).where(
                    _SERVICES.c.name == name)).first()
                if row is None:
                    raise exc.NoSuchService(name=name)
        return {'service_id': row.service_id, 'name': row.name}

    def list_services(self):
        """Every service, by name."""
        with self.engine.connect() as conn:
            return [{'service_id': r.service_id, 'name': r.name}
                    for r in conn.execute(sa.select(_SERVICES).order_by(
                        _SERVICES.c.name))]

    def delete_service(self, service_id):
        """Delete a service with its fields, mappings and thresholds."""
        with self._write() as conn:
            row = self._one(conn, _SERVICES, 'service_id', service_id,
                            exc.NoSuchService)
            fields = sa.select(_FIELDS.c.id).where(
                _FIELDS.c.service_id == row.id)
            for table in (_MAPPINGS, _THRESHOLDS):
                conn.execute(table.delete().where(sa.or_(
                    table.c.service_id == row.id,
                    table.c.field_id.in_(fields))))
            conn.execute(_FIELDS.delete().where(
                _FIELDS.c.service_id == row.id))
            conn.execute(_SERVICES.delete().where(_SERVICES.c.id == row.id))

    # -- fields -----------------------------------------------------------

    def _field_query(self):
        return sa.select(_FIELDS.c.field_id, _FIELDS.c.name,
                         _SERVICES.c.service_id).select_from(
            _FIELDS.join(_SERVICES, _FIELDS.c.service_id == _SERVICES.c.id)
        ).order_by(_FIELDS.c.name)

    def create_field(self, service_id, name):
        """Create a field of a service: ``{field_id, name, service_id}``.

        Raises :class:`UnknownParent` for an unknown service and
        :class:`FieldAlreadyExists` for a name the service already has.
        """
        with self._write() as conn:
            service = self._parent(conn, _SERVICES, 'service_id', service_id,
                                   exc.NoSuchService)
            existing = conn.execute(sa.select(_FIELDS.c.field_id).where(
                _FIELDS.c.service_id == service.id,
                _FIELDS.c.name == name)).scalar()
            if existing is not None:
                raise exc.FieldAlreadyExists(
                    f'Field {name} of service {service.name} already exists '
                    f'({existing})', existing)
            field = {'field_id': str(uuid.uuid4()), 'name': name,
                     'service_id': service_id}
            conn.execute(_FIELDS.insert().values(
                field_id=field['field_id'], name=name, service_id=service.id))
        return field

    def get_field(self, field_id=None, service_id=None, name=None):
        """One field by UUID, or by service UUID and name; NoSuchField."""
        query = self._field_query()
        if field_id is not None:
            query = query.where(_FIELDS.c.field_id == field_id)
        else:
            query = query.where(_SERVICES.c.service_id == service_id,
                                _FIELDS.c.name == name)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            raise exc.NoSuchField(field_id, name=name)
        return dict(row._mapping)

    def list_fields(self, service_id=None):
        """The fields of a service (of every service without one)."""
        query = self._field_query()
        if service_id is not None:
            query = query.where(_SERVICES.c.service_id == service_id)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def delete_field(self, field_id):
        """Delete a field with its mappings and thresholds."""
        with self._write() as conn:
            row = self._one(conn, _FIELDS, 'field_id', field_id,
                            exc.NoSuchField)
            for table in (_MAPPINGS, _THRESHOLDS):
                conn.execute(table.delete().where(
                    table.c.field_id == row.id))
            conn.execute(_FIELDS.delete().where(_FIELDS.c.id == row.id))

    # -- groups -----------------------------------------------------------

    def create_group(self, name):
        """Create a group: ``{group_id, name}``; GroupAlreadyExists."""
        with self._write() as conn:
            existing = conn.execute(sa.select(_GROUPS.c.group_id).where(
                _GROUPS.c.name == name)).scalar()
            if existing is not None:
                raise exc.GroupAlreadyExists(
                    f'Group {name} already exists ({existing})', existing)
            group = {'group_id': str(uuid.uuid4()), 'name': name}
            conn.execute(_GROUPS.insert().values(**group))
        return group

    def get_group(self, group_id):
        """One group; :class:`NoSuchGroup`."""
        with self.engine.connect() as conn:
            row = self._one(conn, _GROUPS, 'group_id', group_id,
                            exc.NoSuchGroup)
        return {'group_id': row.group_id, 'name': row.name}

    def list_groups(self):
        """Every group, by name."""
        with self.engine.connect() as conn:
            return [{'group_id': r.group_id, 'name': r.name}
                    for r in conn.execute(sa.select(_GROUPS).order_by(
                        _GROUPS.c.name))]

    def delete_group(self, group_id, recursive=False, deleted_by=None):
        """Delete a group.

        With ``recursive`` its live mappings are deleted (softly, as
        :meth:`delete_mapping` does) and its thresholds too; otherwise its
        rules stay, without a group.
        """
        with self._write() as conn:
            row = self._one(conn, _GROUPS, 'group_id', group_id,
                            exc.NoSuchGroup)
            if recursive:
                conn.execute(_MAPPINGS.update().where(
                    _MAPPINGS.c.group_id == row.id,
                    _MAPPINGS.c.deleted.is_(None)).values(
                        deleted=_to_db(self._clock()), deleted_by=deleted_by))
                conn.execute(_THRESHOLDS.delete().where(
                    _THRESHOLDS.c.group_id == row.id))
            for table in (_MAPPINGS, _THRESHOLDS):
                conn.execute(table.update().where(
                    table.c.group_id == row.id).values(group_id=None))
            conn.execute(_GROUPS.delete().where(_GROUPS.c.id == row.id))

    def _rule_group(self, table, uuid_column, uuid_value, missing, no_group):
        with self.engine.connect() as conn:
            rule = self._one(conn, table, uuid_column, uuid_value, missing)
            if rule.group_id is None:
                raise no_group(uuid_value)
            group = conn.execute(sa.select(_GROUPS).where(
                _GROUPS.c.id == rule.group_id)).first()
        return {'group_id': group.group_id, 'name': group.name}

    def get_mapping_group(self, mapping_id):
        """The group of a mapping; NoSuchMapping, MappingHasNoGroup."""
        return self._rule_group(_MAPPINGS, 'mapping_id', mapping_id,
                                exc.NoSuchMapping, exc.MappingHasNoGroup)

    def get_threshold_group(self, threshold_id):
        """The group of a threshold; NoSuchThreshold, ThresholdHasNoGroup."""
        return self._rule_group(_THRESHOLDS, 'threshold_id', threshold_id,
                                exc.NoSuchThreshold, exc.ThresholdHasNoGroup)

    # -- rules: what mappings and thresholds share --------------------------

    def _rule_parents(self, conn, service_id, field_id, group_id):
        """Integer keys of a new rule's parents; exactly one of service and
        field (:class:`InvalidRule`), each existing (UnknownParent)."""
        _check_one_parent(service_id, field_id)
        keys = {'service_id': None, 'field_id': None, 'group_id': None}
        if service_id is not None:
            keys['service_id'] = self._parent(
                conn, _SERVICES, 'service_id', service_id,
                exc.NoSuchService).id
        else:
            keys['field_id'] = self._parent(
                conn, _FIELDS, 'field_id', field_id, exc.NoSuchField).id
        if group_id is not None:
            keys['group_id'] = self._parent(
                conn, _GROUPS, 'group_id', group_id, exc.NoSuchGroup).id
        return keys

    @staticmethod
    def _filtered(table, query, service, field, group, service_id=None,
                  field_id=None, group_id=None, no_group=False,
                  tenant_id=None, filter_tenant=False):
        if service_id is not None:
            query = query.where(service.c.service_id == service_id)
        if field_id is not None:
            query = query.where(field.c.field_id == field_id)
        if group_id is not None:
            query = query.where(group.c.group_id == group_id)
        elif no_group:
            query = query.where(table.c.group_id.is_(None))
        if filter_tenant or tenant_id is not None:
            query = query.where(_same(table.c.tenant_id, tenant_id))
        return query

    def _unchanged(self, current, changes, allowed, what):
        """The entries of ``changes`` that differ from ``current``.

        Audit fields are ignored; an unknown key is an InvalidRule.
        """
        diff = {}
        for key, value in changes.items():
            if key in common.AUDIT_FIELDS:
                continue
            if key not in allowed:
                raise exc.InvalidRule(f'{what} has no attribute {key!r}')
            if key in ('cost', 'level') and value is not None:
                value = _number(value, key, _COST_DIGITS if key == 'cost'
                                else _LEVEL_DIGITS)
            elif key in ('start', 'end'):
                value = _date(value, key)
            elif key == 'value':
                value = _mapping_value(value)
            if value != current[key]:
                diff[key] = value
        return diff

    # -- mappings ---------------------------------------------------------

    def create_mapping(self, cost, type='flat', value=None, service_id=None,
                       field_id=None, group_id=None, tenant_id=None,
                       name=None, description=None, start=None, end=None,
                       created_by=None, force=False):
        """Create a mapping and return it.

        Exactly one of ``service_id`` / ``field_id``; a field mapping needs
        a ``value``, a service mapping must not have one; ``start``
        defaults to now and may only be in the past with ``force``;
        ``end`` must come after ``start``. Raises :class:`InvalidRule`
        (:class:`UnknownParent`, :class:`NoSuchType`) and
        :class:`MappingAlreadyExists` when a live mapping has the same
        ``name``, or the same parent, value, tenant and group and a
        validity overlapping this one's.
        """
        _check_one_parent(service_id, field_id)
        cost = _number(cost, 'cost', _COST_DIGITS)
        _rule_type(type)
        value = _mapping_value(value)
        if field_id is not None and value is None:
            raise exc.InvalidRule('A field mapping needs a value')
        if service_id is not None and value is not None:
            raise exc.InvalidRule('A service mapping cannot have a value')
        now = self._clock()
        start = _date(start, 'start') or now
        end = _date(end, 'end')
        _DATED.check_window(start, end, now, force)
        with self._write() as conn:
            keys = self._rule_parents(conn, service_id, field_id, group_id)
            row = {'value': value, 'tenant_id': tenant_id, 'name': name,
                   **keys}
            self._check_mapping_conflicts(conn, row, start, end)
            mapping_id = str(uuid.uuid4())
            conn.execute(_MAPPINGS.insert().values(
                mapping_id=mapping_id, type=type, cost=cost,
                description=description, start=_to_db(start),
                end=_to_db(end), created_at=_to_db(now),
                created_by=created_by, **row))
        return self.get_mapping(mapping_id)

    @staticmethod
    def _check_mapping_conflicts(conn, row, start, end, exclude=None):
        """MappingAlreadyExists if ``row`` (db keys) clashes with a live
        mapping other than ``exclude`` (an integer id)."""
        live = _MAPPINGS.c.deleted.is_(None)
        if exclude is not None:
            live = sa.and_(live, _MAPPINGS.c.id != exclude)
        if row['name'] is not None:
            clash = conn.execute(sa.select(_MAPPINGS.c.mapping_id).where(
                live, _MAPPINGS.c.name == row['name'])).scalar()
            if clash is not None:
                raise exc.MappingAlreadyExists(
                    f'A mapping named {row["name"]} already exists '
                    f'({clash})', clash)
        overlap = [_MAPPINGS.c.end.is_(None) | (_MAPPINGS.c.end >
                                                _to_db(start))]
        if end is not None:
            overlap.append(_MAPPINGS.c.start < _to_db(end))
        clash = conn.execute(sa.select(_MAPPINGS.c.mapping_id).where(
            live, *overlap,
            *(_same(_MAPPINGS.c[key], row[key]) for key in
              ('service_id', 'field_id', 'value', 'tenant_id',
               'group_id')))).scalar()
        if clash is not None:
            raise exc.MappingAlreadyExists(
                f'Mapping {clash} has the same parent, value, tenant and '
                f'group and an overlapping validity', clash)

    def get_mapping(self, mapping_id):
        """One mapping, deleted or not; :class:`NoSuchMapping`."""
        with self.engine.connect() as conn:
            return _mapping_dict(_rule_row(conn, _MAPPINGS, mapping_id))

    def list_mappings(self, service_id=None, field_id=None, group_id=None,
                      no_group=False, tenant_id=None, filter_tenant=False,
                      deleted=False, start=None, end=None, created_by=None,
                      updated_by=None, deleted_by=None, description=None,
                      is_active=None):
        """Mappings matching every filter given, oldest first.

        ``service_id`` / ``field_id`` / ``group_id``: attached to that
        object; ``no_group``: in no group. ``tenant_id``: of that tenant;
        with ``filter_tenant`` a ``None`` tenant_id selects global
        mappings only. ``deleted``: include deleted mappings. ``start``:
        starting at or after; ``end``: ending before. ``description``: a
        case-insensitive substring. ``is_active``: ``True`` for valid now,
        or a datetime for valid then (and not deleted).
        """
        query, service, field, group = _parents_query(_MAPPINGS)
        query = self._filtered(_MAPPINGS, query, service, field, group,
                               service_id, field_id, group_id, no_group,
                               tenant_id, filter_tenant)
        query = _DATED.filter(query, self._clock(), deleted, start, end,
                              created_by, updated_by, deleted_by,
                              description, is_active)
        with self.engine.connect() as conn:
            return [_mapping_dict(row) for row in conn.execute(query)]

    def update_mapping(self, mapping_id, /, updated_by=None, force=False,
                       **changes):
        """Apply ``changes`` (attributes of the mapping) and return it.

        Attributes given with their current value are not changes, so a
        whole object read from the API can be sent back. A rule that has
        started and has no end may only get an end, in the future; a rule
        that has started and has an end cannot change; a rule that has
        not started may change its cost, start (in the past only with
        ``force``), end and description. A deleted rule cannot change.
        Raises :class:`NoSuchMapping`, :class:`ImmutableRule`,
        :class:`InvalidRule`, :class:`MappingAlreadyExists`.
        """
        with self._write() as conn:
            row = _rule_row(conn, _MAPPINGS, mapping_id)
            current = _mapping_dict(row)
            diff = self._unchanged(current, changes, _MAPPING_FIELDS,
                                   'A mapping')
            if not diff:
                return current
            now = self._clock()
            start, end = _DATED.check_update(current, diff, now, force)
            if current['start'] > now:
                self._check_mapping_conflicts(
                    conn, {'name': None, **{k: row._mapping[k] for k in (
                        'service_id', 'field_id', 'value', 'tenant_id',
                        'group_id')}}, start, end, exclude=row.id)
            values = {key: _to_db(value) if isinstance(
                value, datetime.datetime) else value
                for key, value in diff.items()}
            conn.execute(_MAPPINGS.update().where(
                _MAPPINGS.c.id == row.id).values(updated_by=updated_by,
                                                 **values))
            return _mapping_dict(_rule_row(conn, _MAPPINGS, mapping_id))

    def delete_mapping(self, mapping_id, deleted_by=None):
        """Mark a mapping deleted (it stays readable, and is no longer
        applied); :class:`NoSuchMapping` if unknown or already deleted."""
        with self._write() as conn:
            if not _DATED.soft_delete(conn, mapping_id, self._clock(),
                                      deleted_by):
                raise exc.NoSuchMapping(mapping_id)

    # -- thresholds -------------------------------------------------------

    def create_threshold(self, level, cost, type='flat', service_id=None,
                         field_id=None, group_id=None, tenant_id=None):
        """Create a threshold and return it.

        Exactly one of ``service_id`` / ``field_id``. Raises
        :class:`InvalidRule` (:class:`UnknownParent`, :class:`NoSuchType`)
        and :class:`ThresholdAlreadyExists` for the level, parent and
        tenant of an existing threshold.
        """
        _check_one_parent(service_id, field_id)
        level = _number(level, 'level', _LEVEL_DIGITS)
        cost = _number(cost, 'cost', _COST_DIGITS)
        _rule_type(type)
        with self._write() as conn:
            keys = self._rule_parents(conn, service_id, field_id, group_id)
            self._check_threshold_conflict(conn, level, keys, tenant_id)
            threshold_id = str(uuid.uuid4())
            conn.execute(_THRESHOLDS.insert().values(
                threshold_id=threshold_id, level=level, type=type, cost=cost,
                tenant_id=tenant_id, **keys))
        return self.get_threshold(threshold_id)

    @staticmethod
    def _check_threshold_conflict(conn, level, keys, tenant_id, exclude=None):
        # Levels are compared as numbers: SQLite stores them as text.
        query = sa.select(_THRESHOLDS.c.threshold_id, _THRESHOLDS.c.level
                          ).where(
            _same(_THRESHOLDS.c.service_id, keys['service_id']),
            _same(_THRESHOLDS.c.field_id, keys['field_id']),
            _same(_THRESHOLDS.c.tenant_id, tenant_id))
        if exclude is not None:
            query = query.where(_THRESHOLDS.c.id != exclude)
        for threshold_id, other in conn.execute(query):
            if decimal.Decimal(other) == level:
                raise exc.ThresholdAlreadyExists(
                    f'Threshold {threshold_id} has the same level, parent '
                    f'and tenant', threshold_id)

    def get_threshold(self, threshold_id):
        """One threshold; :class:`NoSuchThreshold`."""
        with self.engine.connect() as conn:
            return _threshold_dict(_rule_row(conn, _THRESHOLDS, threshold_id))

    def list_thresholds(self, service_id=None, field_id=None, group_id=None,
                        no_group=False, tenant_id=None, filter_tenant=False):
        """Thresholds matching every filter given (as for mappings)."""
        query, service, field, group = _parents_query(_THRESHOLDS)
        query = self._filtered(_THRESHOLDS, query, service, field, group,
                               service_id, field_id, group_id, no_group,
                               tenant_id, filter_tenant)
        with self.engine.connect() as conn:
            return [_threshold_dict(row) for row in conn.execute(query)]

    def update_threshold(self, threshold_id, /, **changes):
        """Change a threshold's level, type, cost, group or tenant.

        Its parent and id never change (given with their current value
        they are accepted). Raises :class:`NoSuchThreshold`,
        :class:`InvalidRule`, :class:`ThresholdAlreadyExists`.
        """
        with self._write() as conn:
            row = _rule_row(conn, _THRESHOLDS, threshold_id)
            current = _threshold_dict(row)
            diff = self._unchanged(current, changes, _THRESHOLD_FIELDS,
                                   'A threshold')
            forbidden = sorted(set(diff) - _THRESHOLD_CHANGES)
            if forbidden:
                raise exc.ImmutableRule(
                    f'A threshold cannot change {", ".join(forbidden)}')
            if not diff:
                return current
            values = dict(diff)
            if 'type' in values:
                _rule_type(values['type'])
            if values.get('cost', 0) is None or values.get(
                    'level', 0) is None:
                raise exc.InvalidRule('level and cost are required')
            if 'group_id' in values and values['group_id'] is not None:
                values['group_id'] = self._parent(
                    conn, _GROUPS, 'group_id', values['group_id'],
                    exc.NoSuchGroup).id
            self._check_threshold_conflict(
                conn, values.get('level', current['level']),
                {'service_id': row.service_id, 'field_id': row.field_id},
                values.get('tenant_id', current['tenant_id']),
                exclude=row.id)
            conn.execute(_THRESHOLDS.update().where(
                _THRESHOLDS.c.id == row.id).values(**values))
            return _threshold_dict(_rule_row(conn, _THRESHOLDS, threshold_id))

    def delete_threshold(self, threshold_id):
        """Delete a threshold; :class:`NoSuchThreshold`."""
        with self._write() as conn:
            deleted = conn.execute(_THRESHOLDS.delete().where(
                _THRESHOLDS.c.threshold_id == threshold_id))
            if not deleted.rowcount:
                raise exc.NoSuchThreshold(threshold_id)

    # -- the processor's read ---------------------------------------------

    def load_rules(self, at):
        """The :class:`~cloudkitty.rating.hash.rules.RuleSet` of a period
        starting at ``at``: the mappings valid then (``start <= at < end``
        or no end, not deleted) and every threshold, in two queries.

        Rules are keyed by service and field names; groups by their
        integer key.
        """
        at = _date(at, 'at')
        with self.engine.connect() as conn:
            mappings = [
                rules.MappingRule(row.service, row.field, row.value, row.type,
                                  plain(row.cost), row.group_id,
                                  row.tenant_id)
                for row in conn.execute(
                    _rule_names_query(_MAPPINGS).where(*_DATED.valid_at(at)))]
            thresholds = [
                rules.ThresholdRule(row.service, row.field, plain(row.level),
                                    row.type, plain(row.cost), row.group_id,
                                    row.tenant_id)
                for row in conn.execute(_rule_names_query(_THRESHOLDS))]
        return rules.RuleSet(mappings, thresholds)


def _rule_names_query(table):
    """``table``'s rows with their service name and field name."""
    service, field, field_service = (
        _SERVICES.alias('s'), _FIELDS.alias('f'), _SERVICES.alias('fs'))
    return sa.select(
        table,
        sa.func.coalesce(service.c.name, field_service.c.name).label(
            'service'),
        field.c.name.label('field'),
    ).select_from(
        table.outerjoin(service, table.c.service_id == service.c.id)
        .outerjoin(field, table.c.field_id == field.c.id)
        .outerjoin(field_service, field.c.service_id == field_service.c.id))
