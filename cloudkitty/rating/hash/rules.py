"""The hashmap rules of one period, compiled for pricing.

:class:`RuleSet` takes the rules valid at a period start (plain
:class:`MappingRule` and :class:`ThresholdRule` records, from
:meth:`cloudkitty.rating.hash.db.HashMapDB.load_rules` or built by hand)
and compiles them once into dicts keyed by service name, field name and
value. :meth:`RuleSet.for_scope` resolves the tenant-specific rules of one
scope on top of the global ones, recompiling only the services those rules
touch; every other scope shares the global compilation.

Pricing follows ``doc/spec rating.md`` (hashmap) exactly:

- per group (``None`` is the default group) start from ``flat = 0``,
  ``rate = 1``; the service's mappings always match, a field mapping matches
  when ``str(desc[field]) == value``; flat: ``flat = max(flat, cost)``,
  rate: ``rate *= cost``;
- thresholds: a service threshold compares the point's qty, a field
  threshold ``desc[field]`` read as a Decimal (through
  :func:`cloudkitty.dataframe.to_decimal`, so a float goes through ``str``;
  a value that is not a number matches no threshold). Among those whose
  level is reached, only the highest level applies in a group. On equal
  levels a service threshold wins over a field threshold, and field
  thresholds are taken in field name order, the first winning;
- a field threshold folds in first (flat: ``flat += cost``, rate:
  ``rate *= cost``), then ``res = rate * flat * qty``, then a service
  threshold (flat: ``res += cost`` once, rate: ``res *= cost``);
- the new price is the old one plus the sum of the groups' ``res``.

Why it is fast: for a given service, a point's price depends on its qty
and on the string values of the few fields that carry rules. The groups'
contributions are therefore folded, per combination of those values, into
a piecewise linear function of qty (``price += M * qty + C``, with one
piece per interval between service threshold levels); that function is
computed once and memoised, so pricing a point is a couple of dict lookups,
at most one bisection, one multiplication and one addition. The arithmetic
runs in :data:`CONTEXT`, whose precision is high enough that nothing is ever
rounded, so regrouping the sums and products gives exactly the values the
step-by-step definition above gives.
"""

import bisect
import collections
import decimal

from cloudkitty import dataframe

# 12 integer + 28 decimal digits per cost; a price multiplies a few of them
# and a qty. 400 digits leave room for ten such factors: no rounding ever.
CONTEXT = decimal.Context(prec=400, rounding=decimal.ROUND_HALF_EVEN,
                          Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN)

FLAT = 'flat'
RATE = 'rate'
RULE_TYPES = (FLAT, RATE)

_ZERO = decimal.Decimal(0)
_ONE = decimal.Decimal(1)
_MISSING = object()
# A plan memo larger than this is dropped and rebuilt: it only grows past
# it when a threshold sits on a field with very many distinct values.
_MEMO_LIMIT = 1 << 16
# Points are immutable tuples; building the priced copy straight from the
# fields avoids DataPoint's validation of values that are already valid
# (the qty and labels come from a DataPoint, the price is a Decimal).
_new_tuple = tuple.__new__


class MappingRule(collections.namedtuple(
        'MappingRule',
        ['service', 'field', 'value', 'type', 'cost', 'group', 'tenant'])):
    """One mapping: ``field`` is ``None`` for a service mapping (then
    ``value`` is ``None`` too); ``group`` and ``tenant`` may be ``None``."""

    __slots__ = ()

    def override_key(self):
        """What a tenant's rule replaces: same parent, group and value."""
        return ('mapping', self.service, self.field, self.value, self.group)


class ThresholdRule(collections.namedtuple(
        'ThresholdRule',
        ['service', 'field', 'level', 'type', 'cost', 'group', 'tenant'])):
    """One threshold: ``field`` is ``None`` for a service threshold."""

    __slots__ = ()

    def override_key(self):
        """What a tenant's rule replaces: same parent, group and level."""
        return ('threshold', self.service, self.field, self.level,
                self.group)


def resolve_tenant(global_rules, tenant_rules):
    """The rules one scope sees: its own, plus the global ones they do not
    override (same parent, group and value or level)."""
    overridden = {rule.override_key() for rule in tenant_rules}
    return ([r for r in global_rules if r.override_key() not in overridden]
            + list(tenant_rules))


class _Piecewise:
    """``price + M * qty + C`` where ``(M, C)`` depends on the interval of
    sorted ``breaks`` that qty falls in (``C`` is ``None`` for zero)."""

    __slots__ = ('breaks', 'pieces')

    def __init__(self, breaks, pieces):
        self.breaks = breaks
        self.pieces = pieces


def _group_piece(flat, rate, field_threshold, service_threshold):
    """``(M, C)`` of one group once its thresholds are chosen."""
    if field_threshold is not None and (
            service_threshold is None
            or service_threshold[0] < field_threshold[0]):
        _level, type_, cost = field_threshold
        if type_ == FLAT:
            return rate * (flat + cost), _ZERO
        return rate * cost * flat, _ZERO
    if service_threshold is not None:
        _level, type_, cost = service_threshold
        if type_ == FLAT:
            return rate * flat, cost
        return rate * flat * cost, _ZERO
    return rate * flat, _ZERO


class _ServicePlan:
    """The rules of one service in one scope, and the memo of point plans.

    A point's key holds, for each field with rules (in name order), its
    value as a string (``None`` when the point has no such field); a field
    without thresholds keys on the index of the mapping value it matched
    instead, so that values no rule names share one plan.
    """

    __slots__ = ('fields', 'indexes', 'memo', '_field_maps',
                 '_field_thresholds', '_service_thresholds', '_base',
                 '_by_index', 'constant')

    def __init__(self, mappings, thresholds):
        base = {}                        # group -> [flat, rate]
        field_maps = collections.defaultdict(dict)  # field -> value -> [..]
        for rule in mappings:
            if rule.field is None:
                _fold_mapping(base.setdefault(rule.group, [_ZERO, _ONE]),
                              rule.type, rule.cost)
            else:
                field_maps[rule.field].setdefault(rule.value, []).append(
                    (rule.group, rule.type, rule.cost))
        service_thresholds = collections.defaultdict(list)
        field_thresholds = collections.defaultdict(
            lambda: collections.defaultdict(list))
        for rule in thresholds:
            entry = (rule.level, rule.type, rule.cost)
            if rule.field is None:
                service_thresholds[rule.group].append(entry)
            else:
                field_thresholds[rule.field][rule.group].append(entry)
        self._base = base
        self._field_maps = dict(field_maps)
        self._service_thresholds = {
            group: _sorted_levels(entries)
            for group, entries in service_thresholds.items()}
        self._field_thresholds = {
            field: {group: _sorted_levels(entries)
                    for group, entries in by_group.items()}
            for field, by_group in field_thresholds.items()}
        self.fields = tuple(sorted(set(field_maps) | set(field_thresholds)))
        # Fields without thresholds: value -> index into their match lists.
        self.indexes = []
        self._by_index = {}
        for field in self.fields:
            if field in self._field_thresholds:
                self.indexes.append(None)
            else:
                values = sorted(self._field_maps[field])
                self.indexes.append({v: i for i, v in enumerate(values)})
                self._by_index[field] = [self._field_maps[field][v]
                                         for v in values]
        self.indexes = tuple(self.indexes)
        self.memo = {}
        self.constant = None if self.fields else self._plan(())

    def plan(self, key):
        """The memoised plan of a point key (``None``: price unchanged)."""
        if len(self.memo) >= _MEMO_LIMIT:
            self.memo.clear()
        parts = key if len(self.fields) > 1 else (key,)
        plan = self.memo[key] = self._plan(parts)
        return plan

    def _plan(self, parts):
        groups = {g: list(acc) for g, acc in self._base.items()}
        field_best = {}                  # group -> (level, type, cost)
        for field, part in zip(self.fields, parts):
            if part is None:
                continue
            if field in self._by_index:
                matches = self._by_index[field][part]
            else:
                matches = self._field_maps.get(field, {}).get(part, ())
            for group, type_, cost in matches:
                _fold_mapping(groups.setdefault(group, [_ZERO, _ONE]),
                              type_, cost)
            by_group = self._field_thresholds.get(field)
            if by_group is None:
                continue
            try:
                number = dataframe.to_decimal(part)
            except ValueError:
                continue
            for group, (levels, entries) in by_group.items():
                i = bisect.bisect_right(levels, number) - 1
                if i >= 0 and (group not in field_best
                               or levels[i] > field_best[group][0]):
                    field_best[group] = entries[i]
        for group in list(field_best) + list(self._service_thresholds):
            groups.setdefault(group, [_ZERO, _ONE])
        if not groups:
            return None
        breaks = sorted({level for levels, _ in
                         self._service_thresholds.values()
                         for level in levels})
        # Interval j is [breaks[j-1], breaks[j]); its service threshold in
        # a group is the highest of that group's levels <= breaks[j-1].
        pieces = []
        for j in range(len(breaks) + 1):
            total_m, total_c = _ZERO, _ZERO
            for group, (flat, rate) in groups.items():
                service = None
                levels_entries = self._service_thresholds.get(group)
                if levels_entries is not None and j:
                    levels, entries = levels_entries
                    i = bisect.bisect_right(levels, breaks[j - 1]) - 1
                    if i >= 0:
                        service = entries[i]
                m, c = _group_piece(flat, rate, field_best.get(group),
                                    service)
                total_m += m
                total_c += c
            pieces.append((total_m, total_c or None))
        if all(not m and c is None for m, c in pieces):
            return None
        if not breaks:
            return pieces[0][0]
        return _Piecewise(tuple(breaks), tuple(pieces))

    def price_points(self, points):
        """Return the priced copies of ``points`` (a list)."""
        if not self.fields:
            return _price_constant(self.constant, points)
        if len(self.fields) == 1:
            return _price_one_field(self, points)
        return _price_fields(self, points)


def _fold_mapping(acc, type_, cost):
    if type_ == FLAT:
        if cost > acc[0]:
            acc[0] = cost
    else:
        acc[1] = acc[1] * cost


def _sorted_levels(entries):
    entries = sorted(entries, key=lambda entry: entry[0])
    return tuple(e[0] for e in entries), tuple(entries)


def _apply(plan, point):
    qty = point[1]
    if plan.__class__ is decimal.Decimal:
        res = plan * qty
    else:
        m, c = plan.pieces[bisect.bisect_right(plan.breaks, qty)]
        res = m * qty if c is None else m * qty + c
    return _new_tuple(dataframe.DataPoint, (
        point[0], qty, point[2] + res, point[3], point[4], point[5]))


def _price_constant(plan, points):
    if plan is None:
        return list(points)
    if plan.__class__ is not decimal.Decimal:
        return [_apply(plan, point) for point in points]
    new, cls = _new_tuple, dataframe.DataPoint
    return [new(cls, (p[0], p[1], p[2] + plan * p[1], p[3], p[4], p[5]))
            for p in points]


# The two loops below are the hot path of the module: they are written out
# (no helper calls for the common linear plan) because every call counts at
# a million points a second.

def _price_one_field(service_plan, points):
    field = service_plan.fields[0]
    index = service_plan.indexes[0]
    memo = service_plan.memo
    new, cls, missing, dec = _new_tuple, dataframe.DataPoint, _MISSING, \
        decimal.Decimal
    out = []
    append = out.append
    for p in points:
        value = p[3].get(field, missing)
        if value is missing:
            value = p[4].get(field, missing)
        if value is missing:
            key = None
        else:
            if value.__class__ is not str:
                value = str(value)
            key = value if index is None else index.get(value)
        plan = memo.get(key, missing)
        if plan is missing:
            plan = service_plan.plan(key)
        if plan is None:
            append(p)
        elif plan.__class__ is dec:
            append(new(cls, (p[0], p[1], p[2] + plan * p[1], p[3], p[4],
                             p[5])))
        else:
            append(_apply(plan, p))
    return out


def _price_fields(service_plan, points):
    specs = tuple(zip(service_plan.fields, service_plan.indexes))
    memo = service_plan.memo
    new, cls, missing, dec = _new_tuple, dataframe.DataPoint, _MISSING, \
        decimal.Decimal
    out = []
    append = out.append
    for p in points:
        groupby, metadata = p[3], p[4]
        parts = []
        for field, index in specs:
            value = groupby.get(field, missing)
            if value is missing:
                value = metadata.get(field, missing)
            if value is missing:
                parts.append(None)
                continue
            if value.__class__ is not str:
                value = str(value)
            parts.append(value if index is None else index.get(value))
        key = tuple(parts)
        plan = memo.get(key, missing)
        if plan is missing:
            plan = service_plan.plan(key)
        if plan is None:
            append(p)
        elif plan.__class__ is dec:
            append(new(cls, (p[0], p[1], p[2] + plan * p[1], p[3], p[4],
                             p[5])))
        else:
            append(_apply(plan, p))
    return out


def _compile(mappings, thresholds):
    by_service = collections.defaultdict(lambda: ([], []))
    for rule in mappings:
        by_service[rule.service][0].append(rule)
    for rule in thresholds:
        by_service[rule.service][1].append(rule)
    return {service: _ServicePlan(m, t)
            for service, (m, t) in by_service.items()}


class ScopeRules:
    """The rules one scope sees, compiled; prices frames and points."""

    __slots__ = ('scope_id', '_services')

    def __init__(self, scope_id, services):
        self.scope_id = scope_id
        self._services = services

    def process(self, frame):
        """Return a new DataFrame with every point of ``frame`` priced."""
        priced = dataframe.DataFrame(frame.start, frame.end)
        with decimal.localcontext(CONTEXT):
            for type_, points in frame.itertypes():
                plan = self._services.get(type_)
                priced.add_points(
                    points if plan is None else plan.price_points(points),
                    type_)
        return priced

    def price_points(self, service, points):
        """Priced copies of ``points`` (DataPoints of type ``service``)."""
        plan = self._services.get(service)
        if plan is None:
            return list(points)
        with decimal.localcontext(CONTEXT):
            return plan.price_points(list(points))


class RuleSet:
    """The compiled, read-only hashmap rules of one period.

    ``mappings`` and ``thresholds`` are iterables of :class:`MappingRule`
    and :class:`ThresholdRule`: the mappings valid at the period start and
    every threshold. Compiling the global rules happens here, once;
    :meth:`for_scope` adds a scope's own rules on first use and keeps the
    result for the other frames of that scope.
    """

    def __init__(self, mappings=(), thresholds=()):
        self.mappings = tuple(mappings)
        self.thresholds = tuple(thresholds)
        for rule in self.mappings + self.thresholds:
            if rule.type not in RULE_TYPES:
                raise ValueError(f'unknown rule type {rule.type!r}')
        self._tenant_rules = collections.defaultdict(lambda: ([], []))
        global_mappings, global_thresholds = [], []
        for rule in self.mappings:
            (global_mappings if rule.tenant is None
             else self._tenant_rules[rule.tenant][0]).append(rule)
        for rule in self.thresholds:
            (global_thresholds if rule.tenant is None
             else self._tenant_rules[rule.tenant][1]).append(rule)
        self._tenant_rules = dict(self._tenant_rules)
        self._global_rules = (global_mappings, global_thresholds)
        with decimal.localcontext(CONTEXT):
            self._global = ScopeRules(
                None, _compile(global_mappings, global_thresholds))
        self._scopes = {}

    def __eq__(self, other):
        if not isinstance(other, RuleSet):
            return NotImplemented
        return (sorted(map(_sort_key, self.mappings))
                == sorted(map(_sort_key, other.mappings))
                and sorted(map(_sort_key, self.thresholds))
                == sorted(map(_sort_key, other.thresholds)))

    __hash__ = None

    def __repr__(self):
        return (f'RuleSet({len(self.mappings)} mappings, '
                f'{len(self.thresholds)} thresholds, '
                f'{len(self._tenant_rules)} tenants with own rules)')

    @property
    def tenants(self):
        """The scopes that have rules of their own."""
        return frozenset(self._tenant_rules)

    def for_scope(self, scope_id=None):
        """The :class:`ScopeRules` of ``scope_id`` (``None``: global only)."""
        if scope_id is None or scope_id not in self._tenant_rules:
            return self._global
        scope = self._scopes.get(scope_id)
        if scope is None:
            scope = self._scopes[scope_id] = self._compile_scope(scope_id)
        return scope

    def _compile_scope(self, scope_id):
        own_mappings, own_thresholds = self._tenant_rules[scope_id]
        touched = {r.service for r in own_mappings + own_thresholds}
        global_mappings, global_thresholds = self._global_rules
        mappings = resolve_tenant(
            [r for r in global_mappings if r.service in touched],
            own_mappings)
        thresholds = resolve_tenant(
            [r for r in global_thresholds if r.service in touched],
            own_thresholds)
        services = dict(self._global._services)
        with decimal.localcontext(CONTEXT):
            services.update(_compile(mappings, thresholds))
        return ScopeRules(scope_id, services)

    def process(self, frame, scope_id=None):
        """Price ``frame`` with the rules ``scope_id`` sees."""
        return self.for_scope(scope_id).process(frame)


def _sort_key(rule):
    return tuple('' if v is None else str(v) for v in rule)
