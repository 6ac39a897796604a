"""Hashmap rules written in a YAML file, loaded into the database.

What ``cloudkitty-rate --rules FILE`` uses to price the usage it rates
without going through the API. The file names services by the points'
type (a metric's ``alt_name``), fields by label, groups by name::

    start: 2026-01-01T00:00:00Z      # optional: when its mappings start
    services:
      instance:
        mappings:
          - cost: 0.01                # flat (default) or rate
          - {cost: 0.008, tenant_id: demo-alpha}
        fields:
          flavor_name:
            mappings:
              - {value: m1.tiny, cost: 0.005, group: flavor}
        thresholds:
          - {level: 10, type: rate, cost: 0.9}

A mapping may also have ``name``, ``description``, ``start`` and ``end``;
a field's ``thresholds`` compare the label's value. Numbers are read digit
for digit (as Decimals, never floats).

:func:`apply` is idempotent: it creates what the database lacks and keeps
what it already holds; a rule of the file that clashes with a different
one in the database (another cost, say) is a :class:`RulesFileError`, and
nothing is deleted or changed.
"""

import dataclasses
import decimal

import voluptuous
import yaml

from cloudkitty import dataframe
from cloudkitty.rating.hash import exceptions as exc
from cloudkitty.rating.hash import rules
from cloudkitty import timeutils

#: Who the audit fields name as the creator of the mappings loaded.
CREATOR = 'cloudkitty-rate'


class RulesFileError(Exception):
    """An unreadable or invalid file, or a rule clashing with the database
    (the message names the file and the rule)."""


class _Loader(yaml.SafeLoader):
    """YAML with its floats read as Decimals."""


def _decimal(loader, node):
    text = loader.construct_scalar(node).replace('_', '')
    try:
        return decimal.Decimal(text)
    except decimal.InvalidOperation:
        return text   # .inf, .nan: refused by the schema


_Loader.add_constructor('tag:yaml.org,2002:float', _decimal)


def _text(value):
    """A label value as rules compare it: a string (numbers as written)."""
    if isinstance(value, bool) or not isinstance(
            value, (str, int, decimal.Decimal)):
        raise voluptuous.Invalid('expected a string or a number')
    return str(value)


def _date(value):
    try:
        return timeutils.parse(value)
    except (TypeError, ValueError):
        raise voluptuous.Invalid('expected an ISO 8601 date') from None


_NAME = voluptuous.All(str, voluptuous.Length(min=1, max=255))
_RULE = {
    voluptuous.Required('cost'): dataframe.decimal_number,
    voluptuous.Optional('type', default='flat'): voluptuous.In(
        rules.RULE_TYPES),
    voluptuous.Optional('group'): _NAME,
    voluptuous.Optional('tenant_id'): _NAME,
}
_MAPPING = {
    **_RULE,
    voluptuous.Optional('value'): _text,
    voluptuous.Optional('name'): _NAME,
    voluptuous.Optional('description'): str,
    voluptuous.Optional('start'): _date,
    voluptuous.Optional('end'): _date,
}
_THRESHOLD = {**_RULE, voluptuous.Required('level'): dataframe.decimal_number}
_RULES = {
    voluptuous.Optional('mappings', default=list): [_MAPPING],
    voluptuous.Optional('thresholds', default=list): [_THRESHOLD],
}
_SCHEMA = voluptuous.Schema({
    voluptuous.Optional('start'): _date,
    voluptuous.Required('services'): {_NAME: {
        **_RULES,
        voluptuous.Optional('fields', default=dict): {_NAME: _RULES},
    }},
})


def load(path):
    """The validated content of the rules file ``path``; RulesFileError."""
    try:
        with open(path, encoding='utf-8') as stream:
            content = yaml.load(stream, Loader=_Loader)  # noqa: S506
    except OSError as error:
        raise RulesFileError(f'{path}: cannot read the rules: '
                             f'{error.strerror or error}') from None
    except yaml.YAMLError as error:
        raise RulesFileError(f'{path}: invalid YAML: {error}') from None
    try:
        return _SCHEMA(content)
    except voluptuous.MultipleInvalid as invalid:
        faults = '; '.join(
            f"{' > '.join(str(part) for part in error.path) or 'top'}: "
            f'{error.msg}' for error in invalid.errors)
        raise RulesFileError(f'{path}: {faults}') from None


@dataclasses.dataclass
class Loaded:
    """What :func:`apply` did: rules ``created`` and ``kept`` (already in
    the database)."""

    created: int = 0
    kept: int = 0


def _get_or_create(create, conflict):
    """The id of the object ``create()`` makes, or of the existing one it
    clashes with."""
    try:
        return create()
    except conflict as clash:
        return clash.uuid


class _Applier:
    """Loads one file's rules; counts what it does in ``loaded``."""

    def __init__(self, store, start, path):
        self.store = store
        self.start = start
        self.path = path
        self.loaded = Loaded()
        self._groups = {}

    def _group_id(self, name):
        if name is not None and name not in self._groups:
            self._groups[name] = _get_or_create(
                lambda: self.store.create_group(name)['group_id'],
                exc.GroupAlreadyExists)
        return self._groups.get(name)

    def _rule(self, where, spec, parent, kind):
        """Create the mapping or threshold ``spec`` on ``parent``, or keep
        the equal one the database holds."""
        wanted = {'type': spec['type'], 'cost': spec['cost'],
                  'tenant_id': spec.get('tenant_id'),
                  'group_id': self._group_id(spec.get('group')), **parent}
        try:
            if kind == 'mappings':
                wanted['value'] = spec.get('value')
                self.store.create_mapping(
                    name=spec.get('name'),
                    description=spec.get('description'),
                    start=spec.get('start', self.start),
                    end=spec.get('end'), created_by=CREATOR, force=True,
                    **wanted)
            else:
                wanted['level'] = spec['level']
                self.store.create_threshold(**wanted)
        except exc.Conflict as clash:
            existing = (self.store.get_mapping(clash.uuid)
                        if kind == 'mappings' else
                        self.store.get_threshold(clash.uuid))
            if existing.get('deleted') is not None or any(
                    existing[key] != value for key, value in wanted.items()):
                raise RulesFileError(
                    f'{self.path}: {where}: clashes with {clash.uuid} in '
                    f'the database, which differs ({clash})') from None
            self.loaded.kept += 1
        except exc.InvalidRule as error:
            raise RulesFileError(f'{self.path}: {where}: {error}') from None
        else:
            self.loaded.created += 1

    def rules(self, where, parent, specs):
        """The ``mappings`` and ``thresholds`` of ``specs`` on ``parent``."""
        for kind in ('mappings', 'thresholds'):
            for index, spec in enumerate(specs[kind]):
                self._rule(f'{where} > {kind} > {index}', spec, parent, kind)


def apply(store, content, start, path='rules'):
    """Load ``content`` (from :func:`load`) into ``store`` (a
    :class:`~cloudkitty.rating.hash.db.HashMapDB`) and return
    :class:`Loaded`.

    Mappings start at their own ``start``, else the file's, else
    ``start`` (an aware datetime); they are created even if that is in the
    past. Raises :class:`RulesFileError` (naming ``path`` and the rule)
    for a rule the database contradicts, or that it refuses.
    """
    applier = _Applier(store, content.get('start', start), path)
    for name, service in content['services'].items():
        service_id = _get_or_create(
            lambda: store.create_service(name)['service_id'],
            exc.ServiceAlreadyExists)
        where = f'services > {name}'
        applier.rules(where, {'service_id': service_id}, service)
        for field_name, field in service['fields'].items():
            field_id = _get_or_create(
                lambda: store.create_field(service_id,
                                           field_name)['field_id'],
                exc.FieldAlreadyExists)
            applier.rules(f'{where} > fields > {field_name}',
                          {'field_id': field_id}, field)
    return applier.loaded
