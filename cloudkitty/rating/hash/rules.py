"""The hashmap rules of one period, compiled for pricing.

:class:`RuleSet` takes the rules valid at a period start (plain
:class:`MappingRule` and :class:`ThresholdRule` records, from
:meth:`cloudkitty.rating.hash.db.HashMapDB.load_rules` or built by hand)
and compiles them once into dicts keyed by service name, field name and
value. :meth:`RuleSet.for_scope` resolves the scope-specific rules of one
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
piece per interval between service threshold levels): the point's plan,
computed once per combination and memoised, from what each value
contributes (its mappings folded per group, the threshold it reaches in
each), worked out once per value. The points of a service are
then priced column by column, each step one C-level ``map`` over all of
them: their label values looked up in the memo, their qtys bisected into a
piece, ``price + (M * qty + C)``: a column of prices. No point is built:
the priced frame holds the points it was given and that column
(:meth:`cloudkitty.dataframe.DataFrame.with_prices`), and builds the
priced points only for a reader that goes point by point. A processor's
round is one column per service for all the frames that see the same
rules (:meth:`RuleSet.process_many`), so the fixed costs of a column are
paid once per round, not once per scope. No Python code
runs per point but for values that are not strings, to read a field from
the metadata of a frame whose other points have it in their groupby, and
to put back the prices a plan leaves alone. Values met for the first time
are made canonical column by column too (when they are strings), and only
a combination of them never seen before costs a plan. The arithmetic runs
in :data:`CONTEXT`, whose precision is high enough that nothing is ever
rounded, so regrouping the sums and products gives exactly the values the
step-by-step definition above gives.
"""

import bisect
import collections
import decimal
import itertools
import operator
import types

from cloudkitty import _perf
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
# What a group's matched mappings fold into, before any: (flat, rate).
_NEUTRAL = (_ZERO, _ONE)
_NO_FOLDS = types.MappingProxyType({})
# x + _NEUTRAL_ZERO is x, digit for digit, for any x CONTEXT computes: the
# sum of two numbers takes the smaller exponent, and adding a negative zero
# keeps the sign of a zero. The sums of a plan's slopes and constants start
# from it (a plain 0 would cap their exponent at 0: 0 + 4.2E+3 is 4200,
# which times 0.1 is 420.0, where rating.md's steps give 420), and pieces
# without a constant add it, so that a whole column is priced by one
# C-level map.
_NEUTRAL_ZERO = decimal.Decimal(f'-0E+{decimal.MAX_EMAX}')
_MISSING = object()
_POINTS = operator.itemgetter(1)
_PRICES = operator.itemgetter(2)
_SLOPE = operator.itemgetter(0)
_CONSTANT = operator.itemgetter(1)
_FROM_ZERO = operator.itemgetter(2)
# A DataPoint's fields (unit, qty, price, groupby, metadata, description).
_QTY = operator.itemgetter(1)
_GROUPBY = operator.itemgetter(3)
_METADATA = operator.itemgetter(4)
_PLAIN_ZERO = _ZERO.as_tuple()
# A plan memo larger than this is dropped and rebuilt: it only grows past
# it when a threshold sits on a field with very many distinct values.
_MEMO_LIMIT = 1 << 16


class MappingRule(collections.namedtuple(
        'MappingRule',
        ['service', 'field', 'value', 'type', 'cost', 'group', 'scope_id'])):
    """One mapping: ``field`` is ``None`` for a service mapping (then
    ``value`` is ``None`` too); ``group`` and ``scope_id`` (the scope the rule is for, upstream's
    ``tenant_id``) may be ``None``."""

    __slots__ = ()

    def override_key(self):
        """What a scope's own rule replaces: same parent, group and value."""
        return ('mapping', self.service, self.field, self.value, self.group)


class ThresholdRule(collections.namedtuple(
        'ThresholdRule',
        ['service', 'field', 'level', 'type', 'cost', 'group', 'scope_id'])):
    """One threshold: ``field`` is ``None`` for a service threshold."""

    __slots__ = ()

    def override_key(self):
        """What a scope's own rule replaces: same parent, group and level."""
        return ('threshold', self.service, self.field, self.level,
                self.group)


def resolve_scope(global_rules, scope_rules):
    """The rules one scope sees: its own, plus the global ones they do not
    override (same parent, group and value or level)."""
    overridden = {rule.override_key() for rule in scope_rules}
    return ([r for r in global_rules if r.override_key() not in overridden]
            + list(scope_rules))


def _field_piece(flat, rate, field_threshold):
    """A group's ``M`` when no service threshold applies to it."""
    if field_threshold is None:
        return rate * flat
    _level, type_, cost = field_threshold
    if type_ == FLAT:
        return rate * (flat + cost)
    return rate * cost * flat


def _combined(fold, other):
    """Two folds of mappings matched in one group as one: the larger flat
    (the first on a tie), the product of the rates."""
    return (other[0] if other[0] > fold[0] else fold[0], fold[1] * other[1])


def _fold_mapping(folds, rule):
    """Fold the mapping ``rule`` into ``folds`` (group -> (flat, rate))."""
    own = (rule.cost, _ONE) if rule.type == FLAT else (_ZERO, rule.cost)
    folds[rule.group] = _combined(folds.get(rule.group, _NEUTRAL), own)


class _ServicePlan:
    """The rules of one service in one scope, and the memo of point plans.

    A plan is what pricing adds to the price of a point whose qty falls in
    each interval between the sorted service threshold levels: ``M``
    (``price += M * qty``), or ``(M, C, C + 0)`` (``price += M * qty + C``,
    ``C`` being :data:`_NEUTRAL_ZERO` for none; see
    :func:`_constant_piece`) when the service has flat service thresholds;
    a tuple of them, one per interval, when the service has service
    thresholds, else the one of the single interval. A plan that
    adds nothing is :attr:`unpriced`, whose points are kept as they are.

    Plans are memoised twice. ``plans`` is keyed by the canonical key: per
    field with rules (in name order) the value as a string, or for a field
    without thresholds the index of the mapping value it matched, so that
    values no rule names share one plan; ``None`` when the point lacks the
    field. ``fast`` is keyed by the raw values a point's rule fields have
    (:meth:`keys_of`: the groupby's, else the metadata's, else
    :data:`_MISSING`) and only holds keys made of strings and
    :data:`_MISSING`, since ``8``, ``8.0`` and ``True`` would be one dict
    key but are three different strings; it serves every such point,
    wherever its labels are, and nothing else needs to be computed then.

    What a plan is made of is worked out once per field value, whatever
    the plans it takes part in: the mappings a value matches, folded per
    group (``flat``, ``rate``), and the threshold a value reaches in each
    group.
    """

    __slots__ = (
        '_base',
        '_breaks',
        '_by_index',
        '_constants',
        '_crossings',
        '_field_levels',
        '_field_maps',
        '_holds_unpriced',
        '_layout',
        '_reached',
        '_service_groups',
        'constant',
        'fast',
        'fields',
        'fieldset',
        'getter',
        'plans',
        'rules_key',
        'specs',
        'unpriced',
    )

    def __init__(self, mappings, thresholds, rules_key):
        # What the rules of the service are: their _rules_key, which the
        # caller has already worked out.
        self.rules_key = rules_key
        base = {}                        # group -> (flat, rate)
        field_maps = collections.defaultdict(dict)  # field -> value -> ..
        for rule in mappings:
            if rule.field is None:
                _fold_mapping(base, rule)
            else:
                _fold_mapping(field_maps[rule.field].setdefault(
                    rule.value, {}), rule)
        # rating.md starts every group with a rule of the service from flat
        # 0, rate 1: one where nothing matches adds 1 * 0 * qty, whose
        # exponent can show.
        for rule in itertools.chain(mappings, thresholds):
            base.setdefault(rule.group, _NEUTRAL)
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
        self._field_levels = {
            field: tuple((group,) + _sorted_levels(entries)
                         for group, entries in by_group.items())
            for field, by_group in field_thresholds.items()}
        # Field -> value as a string -> group -> the threshold reached.
        self._reached = {field: {} for field in field_thresholds}
        self._init_service_thresholds(service_thresholds)
        self.fields = tuple(sorted(set(field_maps) | set(field_thresholds)))
        specs = []
        self._by_index = {}
        for field in self.fields:
            if field in field_thresholds:
                specs.append((field, None))
            else:
                # Fields without thresholds: value -> index of its folds.
                values = sorted(self._field_maps[field])
                specs.append((field, {v: i for i, v in enumerate(values)}))
                self._by_index[field] = [self._field_maps[field][v]
                                         for v in values]
        self.specs = tuple(specs)
        self.getter = (operator.itemgetter(*self.fields) if self.fields
                       else None)
        self.fieldset = frozenset(self.fields)
        self.fast = {}
        self.plans = {}
        # Whether a plan memoised (now or before) is unpriced: until one
        # is, pricing does not look for the points to keep as they are.
        self._holds_unpriced = False
        self.constant = None if self.fields else self._plan(())

    def _init_service_thresholds(self, service_thresholds):
        # The intervals between all service threshold levels of the service
        # and, per group, which of its own thresholds applies in each: the
        # same for every point, so worked out once here.
        self._service_groups = frozenset(service_thresholds)
        self._breaks = tuple(sorted({entry[0] for entries in
                                     service_thresholds.values()
                                     for entry in entries}))
        layout = []
        for group, entries in service_thresholds.items():
            levels, entries = _sorted_levels(entries)
            layout.append((group, entries, levels))
        self._layout = tuple(layout)
        # Crossing _breaks[j] moves some groups to a higher threshold:
        # (index in _layout, 1 + index of the threshold now applying).
        self._crossings = tuple(
            tuple((i, bisect.bisect_right(levels, level))
                  for i, (_, _, levels) in enumerate(layout)
                  if level in levels)
            for level in self._breaks)
        # Pieces are (M, C, C + 0) only when a flat service threshold can
        # add a constant: elsewhere pricing skips that addition.
        self._constants = any(entry[1] == FLAT
                              for entries in service_thresholds.values()
                              for entry in entries)
        nothing = (_constant_piece(_ZERO, _NEUTRAL_ZERO) if self._constants
                   else _ZERO)
        self.unpriced = ((nothing,) * (len(self._breaks) + 1)
                         if self._breaks else nothing)

    def slow_plan(self, groupby, metadata):
        """The plan of a point that missed the ``fast`` memo; kept in
        ``fast`` under the point's :meth:`keys_of` key when each of its rule
        fields is missing or a string."""
        parts = []
        values = []
        all_text = True
        for field, index in self.specs:
            # The groupby's value first, as upstream's desc takes it.
            value = groupby.get(field, _MISSING)
            if value is _MISSING:
                value = metadata.get(field, _MISSING)
            values.append(value)
            if value is _MISSING:
                parts.append(None)
                continue
            if value.__class__ is not str:
                all_text = False
                value = str(value)
            parts.append(value if index is None else index.get(value))
        plan = self._memoised(tuple(parts))
        if all_text:
            if len(self.fast) >= _MEMO_LIMIT:
                self.fast.clear()
            self.fast[tuple(values) if len(values) > 1 else values[0]] = plan
        return plan

    def _memoised(self, parts):
        """The plan of the canonical key ``parts``, from ``plans``."""
        plan = self.plans.get(parts, _MISSING)
        if plan is _MISSING:
            if len(self.plans) >= _MEMO_LIMIT:
                self.plans.clear()
            plan = self.plans[parts] = self._plan(parts)
            if plan is self.unpriced:
                self._holds_unpriced = True
        return plan

    def _learn(self, keys):
        """Put the plans of ``keys`` (new ``fast`` keys, made of strings
        only) in ``fast``, column by column: each field's values made
        canonical by one C-level ``map``, the canonical keys looked up in
        ``plans``, and a plan computed only for those met for the first
        time. ``fast`` is dropped first if they would take it past
        :data:`_MEMO_LIMIT` (so it only grows past it by the new keys of
        one frame)."""
        columns = zip(*keys) if len(self.fields) > 1 else (keys,)
        parts = list(zip(*[column if index is None else map(index.get, column)
                           for (_, index), column in zip(self.specs,
                                                         columns)]))
        plans = list(map(self.plans.get, parts, itertools.repeat(_MISSING)))
        for i in _where(plans, _MISSING):
            plans[i] = self._memoised(parts[i])
        if len(self.fast) + len(keys) > _MEMO_LIMIT:
            self.fast.clear()
        self.fast.update(zip(keys, plans))

    def _reached_by(self, field, value):
        """``{group: (level, type, cost)}``: the highest threshold of
        ``field`` that ``value`` (a string) reaches in each group."""
        reached = self._reached[field].get(value)
        if reached is None:
            reached = {}
            try:
                number = dataframe.to_decimal(value)
            except ValueError:
                number = None            # not a number: reaches nothing
            if number is not None:
                for group, levels, entries in self._field_levels[field]:
                    i = bisect.bisect_right(levels, number) - 1
                    if i >= 0:
                        reached[group] = entries[i]
            if len(self._reached[field]) >= _MEMO_LIMIT:
                self._reached[field].clear()
            self._reached[field][value] = reached
        return reached

    def _plan(self, parts):
        groups = dict(self._base)
        field_best = {}                  # group -> (level, type, cost)
        for field, part in zip(self.fields, parts):
            if part is None:
                continue
            if field in self._by_index:
                folds = self._by_index[field][part]
            else:
                folds = self._field_maps.get(field, _NO_FOLDS).get(
                    part, _NO_FOLDS)
            for group, fold in folds.items():
                known = groups[group]
                groups[group] = (fold if known is _NEUTRAL
                                 else _combined(known, fold))
            if field not in self._reached:
                continue
            # Fields in name order: on equal levels the first one wins.
            for group, entry in self._reached_by(field, part).items():
                if group not in field_best or entry[0] > field_best[group][0]:
                    field_best[group] = entry
        static = _NEUTRAL_ZERO
        for group, (flat, rate) in groups.items():
            if group not in self._service_groups:
                static += _field_piece(flat, rate, field_best.get(group))
        if not self._layout:
            return static or self.unpriced
        slopes, constants = [], []       # per _layout group: its pieces
        for group, entries, _levels in self._layout:
            flat, rate = groups[group]
            best = field_best.get(group)
            # One object per value a piece shares with another, so that
            # a crossing that changes nothing is seen by identity.
            slope = rate * flat
            alone = slope if best is None else _field_piece(flat, rate,
                                                            best)
            own_slopes, own_constants = [alone], [_NEUTRAL_ZERO]
            for level, type_, cost in entries:
                if best is not None and level < best[0]:
                    own_slopes.append(alone)  # the field threshold is higher
                    own_constants.append(_NEUTRAL_ZERO)
                elif type_ == FLAT:
                    own_slopes.append(slope)
                    own_constants.append(cost)
                else:
                    own_slopes.append(slope * cost)
                    own_constants.append(_NEUTRAL_ZERO)
            slopes.append(own_slopes)
            constants.append(own_constants)
        return self._pieces(static, slopes, constants)

    def _pieces(self, static, slopes, constants):
        """The plan of the pieces of each _layout group (``slopes`` and
        ``constants``: per group, the ``M`` and the ``C`` of its piece
        below its levels then at each of its thresholds) and of the
        groups without service thresholds, whose ``M`` sum to ``static``.

        In each interval ``M`` is ``static`` plus the ``M`` of the pieces
        in force, ``C`` the sum of their ``C`` (:data:`_NEUTRAL_ZERO` for
        a piece without one, so that only the constants in force give
        their digits), summed in _layout order:
        the same digits whatever the intervals before (a running sum of
        differences would keep the exponent of a piece no longer in
        force). An interval where no piece changes takes the previous
        interval's piece, the same objects, so a plan holds as few objects
        as it has values.
        """
        in_force = [own[0] for own in slopes]
        constants_in_force = [own[0] for own in constants]
        m = sum(in_force, static)
        c = sum(constants_in_force, _NEUTRAL_ZERO)
        with_constants = self._constants
        piece = _constant_piece(m, c) if with_constants else m
        pieces = [piece]
        for crossing in self._crossings:
            new_m = new_c = False
            for i, position in crossing:
                slope = slopes[i][position]
                if slope is not in_force[i]:
                    in_force[i] = slope
                    new_m = True
                constant = constants[i][position]
                if constant is not constants_in_force[i]:
                    constants_in_force[i] = constant
                    new_c = True
            if new_c:
                c = sum(constants_in_force, _NEUTRAL_ZERO)
                if new_m:
                    m = sum(in_force, static)
                piece = _constant_piece(m, c)
            elif new_m:
                m = sum(in_force, static)
                # The same C, and C + 0 not computed again.
                piece = (m,) + piece[1:] if with_constants else m
            pieces.append(piece)
        adds = (any(map(_SLOPE, pieces)) or any(map(_CONSTANT, pieces))
                if with_constants else any(pieces))
        return tuple(pieces) if adds else self.unpriced

    def plan_of(self, groupby, metadata):
        """The plan of one point, from the ``fast`` memo when it can be."""
        try:
            if self.fieldset.isdisjoint(groupby):
                return self.fast[self.getter(metadata)]
            if self.fieldset.issubset(groupby):
                return self.fast[self.getter(groupby)]
        except (KeyError, TypeError):  # not there, or unhashable
            pass
        return self.slow_plan(groupby, metadata)

    def keys_of(self, groupbys, metadatas, in_groupby):
        """The ``fast`` keys of the points labelled ``groupbys`` and
        ``metadatas`` (two sequences), some of whose groupbys have a rule
        field if ``in_groupby``, as a list: per point, the value of
        each rule field (in name order) from its groupby, else from its
        metadata, else :data:`_MISSING`; a tuple of them, or the value
        alone when the service has one rule field.

        One C-level ``map`` when no point has a rule field in its groupby,
        or every point has them all there; else a column per field, read
        from the groupbys by one ``map``, then from the metadata: by one
        ``map`` when no groupby has the field, else point by point for the
        points whose groupby lacks it.
        """
        if not in_groupby:
            try:
                return list(map(self.getter, metadatas))
            except KeyError:             # a field missing: read by column
                pass
        elif all(map(self.fieldset.issubset, groupbys)):
            return list(map(self.getter, groupbys))
        columns = []
        for field in self.fields:
            get = operator.methodcaller('get', field, _MISSING)
            column = list(map(get, groupbys))
            misses = list(_where(column, _MISSING))
            if len(misses) == len(column):   # in no groupby: one map
                column = list(map(get, metadatas))
            else:
                for i in misses:
                    column[i] = metadatas[i].get(field, _MISSING)
            columns.append(column)
        return list(zip(*columns)) if len(columns) > 1 else columns[0]

    def plans_of(self, points):
        """The plans of ``points`` (a list of DataPoints), as a list.

        When no point has a rule field in its groupby and every point's
        metadata has a key of ``fast``, as on every column of a scope
        whose labels have been seen before, one chain of C-level ``map``
        from the points to their plans, no list of labels or keys built.
        Otherwise their :meth:`keys_of` are looked up in ``fast``; when
        some miss, the keys met for the first time get their plans
        before the lookup runs again: column by column (:meth:`_learn`)
        when they are all made of strings, else one by one from one of
        their points; what ``fast`` cannot hold (values that are not
        strings) is then looked up point by point, as is every point when
        one has an unhashable value.
        """
        # One iterator over every groupby's keys: a call per point less
        # than isdisjoint on each.
        in_groupby = not self.fieldset.isdisjoint(
            itertools.chain.from_iterable(map(_GROUPBY, points)))
        if not in_groupby:
            try:
                return list(map(self.fast.__getitem__, map(
                    self.getter, map(_METADATA, points))))
            except (KeyError, TypeError):   # missing, new or unhashable
                pass
        groupbys = list(map(_GROUPBY, points))
        metadatas = list(map(_METADATA, points))
        fast = self.fast
        try:
            keys = self.keys_of(groupbys, metadatas, in_groupby)
            try:
                return list(map(fast.__getitem__, keys))
            except KeyError:
                pass
            firsts = dict(zip(keys, itertools.count()))
        except TypeError:                # an unhashable value
            return list(map(self.plan_of, groupbys, metadatas))
        # Not set(firsts) - fast.keys(): that iterates over all of fast.
        new = list(itertools.filterfalse(fast.__contains__, firsts))
        values = itertools.chain.from_iterable(new) if len(
            self.fields) > 1 else new
        if set(map(type, values)) == {str}:
            self._learn(new)
        else:
            for i in map(firsts.__getitem__, new):
                self.slow_plan(groupbys[i], metadatas[i])
        plans = list(map(fast.get, keys, itertools.repeat(_MISSING)))
        for i in _where(plans, _MISSING):
            plans[i] = self.slow_plan(groupbys[i], metadatas[i])
        return plans

    def price_points(self, points, prices):
        """The new prices of ``points`` (a non-empty list of DataPoints),
        whose prices so far are ``prices`` (a list, one per point), as a
        list in order; ``None`` when no point gets a new price. A point
        whose plan is :attr:`unpriced` keeps its price (the same object).

        Column by column, each step one C-level ``map`` over the whole
        list: the plans, the piece of each qty's interval, then
        ``price + (M * qty + C)`` (``M * qty + price`` without constants,
        ``M * qty + (C + 0)`` when every price is one plain zero: see
        :func:`_one_plain_zero`): a map of products, then one of sums
        (measured faster than one of fused multiply-adds, whose three
        arguments are parsed per call; exact, so the same digits). No
        point is built. Runs in :data:`CONTEXT`: call it within
        ``decimal.localcontext(CONTEXT)``.
        """
        if not self.fields and self.constant is self.unpriced:
            return None
        qtys = list(map(_QTY, points))
        if self.fields:
            plans = self.plans_of(points)
        else:  # no field rules: every point has the same plan
            plans = itertools.repeat(self.constant, len(points))
        pieces = plans
        if self._breaks:
            pieces = map(operator.getitem, plans,
                         map(bisect.bisect_right,
                             itertools.repeat(self._breaks), qtys))
        if self._constants:
            pieces = list(pieces)
            products = map(operator.mul, map(_SLOPE, pieces), qtys)
            if _one_plain_zero(prices):
                priced = list(map(operator.add, products,
                                  map(_FROM_ZERO, pieces)))
            else:
                priced = list(map(operator.add, prices, map(
                    operator.add, products, map(_CONSTANT, pieces))))
        else:
            priced = list(map(operator.add, prices,
                              map(operator.mul, pieces, qtys)))
        if self._holds_unpriced and _holds(plans, self.unpriced):
            return [price if plan is self.unpriced else new
                    for price, new, plan in zip(prices, priced, plans)]
        return priced


def _constant_piece(m, c):
    """The piece ``(M, C, C + 0)`` of a plan with constants: ``C`` is
    the sum of the constants in force, :data:`_NEUTRAL_ZERO` where none
    is (a constant of ``0.00`` is one: it adds its digits, as in the
    step-by-step definition); ``C + 0`` is what pricing adds to ``M *
    qty`` when every price so far is a plain zero (``0 + M * qty + C`` in
    one addition: exact, so the same digits)."""
    return (m, c, c + _ZERO)


def _one_plain_zero(prices):
    """Whether ``prices`` are all one object, ``Decimal('0')`` (positive,
    exponent 0): what collectors give every point they make."""
    first = prices[0]
    return (first.as_tuple() == _PLAIN_ZERO
            and all(map(operator.is_, prices, itertools.repeat(first))))


def _where(values, marker):
    """The indexes of ``marker`` in ``values``, found by identity."""
    return itertools.compress(
        itertools.count(),
        map(operator.is_, values, itertools.repeat(marker)))


def _holds(values, marker):
    """Whether ``marker`` is one of ``values``, found by identity (``in``
    compares, and a Decimal compares through an abstract class check)."""
    return any(map(operator.is_, values, itertools.repeat(marker)))


def _sorted_levels(entries):
    entries = sorted(entries, key=lambda entry: entry[0])
    return tuple(e[0] for e in entries), tuple(entries)


def _compile(mappings, thresholds, compiled):
    """``{service: _ServicePlan}`` of the rules, per service; a service
    whose rules are those of a plan in ``compiled`` (``{rules key:
    _ServicePlan}``, see :func:`_rules_key`) takes that plan, and what it
    memoised, instead of a new one; new plans are added to ``compiled``."""
    by_service = collections.defaultdict(lambda: ([], []))
    for rule in mappings:
        by_service[rule.service][0].append(rule)
    for rule in thresholds:
        by_service[rule.service][1].append(rule)
    services = {}
    for service, (m, t) in by_service.items():
        key = _rules_key(m, t)
        plan = compiled.get(key)
        if plan is None:
            plan = compiled[key] = _ServicePlan(m, t, key)
        services[service] = plan
    return services


def _rules_key(mappings, thresholds):
    """What makes two services' rules price alike: every field of every
    rule, numbers with their digits (``1.0`` and ``1.00`` differ), in an
    order of their own."""
    return (tuple(sorted(map(_sort_key, mappings))),
            tuple(sorted(map(_sort_key, thresholds))))


class ScopeRules:
    """The rules one scope sees, compiled; prices frames and points."""

    __slots__ = ('_services', 'scope_id')

    def __init__(self, scope_id, services):
        self.scope_id = scope_id
        self._services = services

    def process(self, frame):
        """Return a new DataFrame with every point of ``frame`` priced
        (:meth:`process_many` of one frame)."""
        return self.process_many([frame])[0]

    def process_many(self, frames):
        """The ``frames`` priced, as a list in order: new DataFrames of
        price columns (:meth:`cloudkitty.dataframe.DataFrame.
        with_prices`), the points themselves built only if read one by one.

        The points of one service in all the frames are priced in one
        call (:meth:`_ServicePlan.price_points`), as one column: the fixed
        costs of a call, and of looking up its plans, are paid once for
        the frames of a processor's round rather than once per frame.
        """
        parts = collections.defaultdict(list)   # type -> [(frame, points)]
        columns = [{} for _ in frames]
        for i, frame in enumerate(frames):
            for type_, points, prices in frame.itercolumns():
                if type_ in self._services:
                    parts[type_].append((i, points, prices))
        with decimal.localcontext(CONTEXT), _perf.gc_paused():
            for type_, frame_parts in parts.items():
                if len(frame_parts) == 1:
                    _, points, prices = frame_parts[0]
                else:
                    points = list(itertools.chain.from_iterable(
                        map(_POINTS, frame_parts)))
                    prices = list(itertools.chain.from_iterable(
                        map(_PRICES, frame_parts)))
                priced = self._services[type_].price_points(points, prices)
                if priced is None:
                    continue
                end = 0
                for i, points, _prices in frame_parts:
                    start, end = end, end + len(points)
                    columns[i][type_] = (priced if len(frame_parts) == 1
                                         else priced[start:end])
        # Finite by construction: sums and products of finite Decimals
        # in CONTEXT, which traps an overflow, and the prices given.
        return [frame.with_prices(priced, finite=True)
                for frame, priced in zip(frames, columns)]


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
        self._scope_rules = collections.defaultdict(lambda: ([], []))
        global_mappings, global_thresholds = [], []
        for rule in self.mappings:
            (global_mappings if rule.scope_id is None
             else self._scope_rules[rule.scope_id][0]).append(rule)
        for rule in self.thresholds:
            (global_thresholds if rule.scope_id is None
             else self._scope_rules[rule.scope_id][1]).append(rule)
        self._scope_rules = dict(self._scope_rules)
        self._global_rules = (global_mappings, global_thresholds)
        # {rules key: _ServicePlan} of every service compiled here, or
        # adopted from another set (see adopt).
        self._compiled = {}
        with decimal.localcontext(CONTEXT):
            self._global = ScopeRules(None, _compile(
                global_mappings, global_thresholds, self._compiled))
        self._scopes = {}
        self._sorted = None

    def adopt(self, others):
        """Price with the compiled services of the rule sets ``others``
        (of earlier loads) wherever a service has the same rules here, in
        the global view and in every scope's: the plans they memoised are
        not computed again after a change of other services' rules. Call
        before pricing with this set."""
        adopted = {}
        for other in others:
            for key, plan in other._compiled.items():
                adopted.setdefault(key, plan)
        self._compiled.update(adopted)
        services = self._global._services
        for service, plan in list(services.items()):
            services[service] = self._compiled.get(plan.rules_key, plan)

    def __eq__(self, other):
        if not isinstance(other, RuleSet):
            return NotImplemented
        return self is other or self._contents() == other._contents()

    def _contents(self):
        # What equality compares, in an order of its own; worked out once,
        # since a processor compares each set it loads with those it holds.
        if self._sorted is None:
            self._sorted = (sorted(map(_sort_key, self.mappings)),
                            sorted(map(_sort_key, self.thresholds)))
        return self._sorted

    __hash__ = None

    def __repr__(self):
        return (f'RuleSet({len(self.mappings)} mappings, '
                f'{len(self.thresholds)} thresholds, '
                f'{len(self._scope_rules)} scopes with own rules)')

    @property
    def scopes(self):
        """The scopes that have rules of their own."""
        return frozenset(self._scope_rules)

    def for_scope(self, scope_id=None):
        """The :class:`ScopeRules` of ``scope_id`` (``None``: global only)."""
        if scope_id is None or scope_id not in self._scope_rules:
            return self._global
        scope = self._scopes.get(scope_id)
        if scope is None:
            scope = self._scopes[scope_id] = self._compile_scope(scope_id)
        return scope

    def _compile_scope(self, scope_id):
        own_mappings, own_thresholds = self._scope_rules[scope_id]
        touched = {r.service for r in own_mappings + own_thresholds}
        global_mappings, global_thresholds = self._global_rules
        mappings = resolve_scope(
            [r for r in global_mappings if r.service in touched],
            own_mappings)
        thresholds = resolve_scope(
            [r for r in global_thresholds if r.service in touched],
            own_thresholds)
        services = dict(self._global._services)
        with decimal.localcontext(CONTEXT):
            services.update(_compile(mappings, thresholds, self._compiled))
        return ScopeRules(scope_id, services)

    def process(self, frame, scope_id=None):
        """Price ``frame`` with the rules ``scope_id`` sees."""
        return self.for_scope(scope_id).process(frame)

    def process_many(self, items):
        """The frames of ``items`` (``[(frame, scope_id)]``) priced, as a
        list in order: those of the scopes that see the same compiled
        rules (every scope without rules of its own sees the global ones)
        together (:meth:`ScopeRules.process_many`)."""
        views = {}                       # ScopeRules -> [index in items]
        for i, (_frame, scope_id) in enumerate(items):
            views.setdefault(self.for_scope(scope_id), []).append(i)
        priced = [None] * len(items)
        for view, indexes in views.items():
            for i, frame in zip(indexes, view.process_many(
                    [items[i][0] for i in indexes])):
                priced[i] = frame
        return priced


def _sort_key(rule):
    """``rule``'s fields as sortable text (``None`` apart from ``''``)."""
    return tuple((v is not None, '' if v is None else str(v)) for v in rule)
