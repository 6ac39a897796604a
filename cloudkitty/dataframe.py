"""The data model shared by collectors, rating modules, storage and the API.

A :class:`DataPoint` is one priced usage record; a :class:`DataFrame` holds
the points of one collect period, by type (the metric's alt_name).
"""

import collections
import datetime
import decimal
import itertools
import json
import operator
import secrets
import threading
import types

import voluptuous

from cloudkitty import _perf
from cloudkitty import timeutils

_EMPTY = types.MappingProxyType({})
#: The price of a point no module has priced yet, one object for every such
#: point a collector makes: a rating module tells a column of them by
#: identity (see :mod:`cloudkitty.rating.hash.rules`).
NO_PRICE = decimal.Decimal(0)
_PRICE = operator.itemgetter(2)
# Builds a point from fields known to be valid, without DataPoint's checks.
_new_tuple = tuple.__new__
# Serialises the building of the points of price columns (see DataFrame).
_BUILDING = threading.Lock()


def to_decimal(value):
    """Convert an int, str, Decimal or float to ``Decimal``.

    Floats go through ``str()`` so that ``0.1`` becomes ``Decimal("0.1")``
    and never its binary expansion. Raises ``ValueError`` for anything that
    is not a number.
    """
    if value.__class__ is decimal.Decimal and value.is_finite():
        return value
    if isinstance(value, bool):
        raise ValueError(f'{value!r} is not a quantity or a price')
    if isinstance(value, float):
        value = str(value)
    try:
        result = decimal.Decimal(value)
    except (decimal.InvalidOperation, TypeError):
        raise ValueError(f'{value!r} is not a quantity or a price') from None
    if not result.is_finite():
        raise ValueError(f'{value!r} is not a finite number')
    return result


def _frozen(mapping):
    if mapping is None:
        return _EMPTY
    if isinstance(mapping, types.MappingProxyType):
        return mapping
    return types.MappingProxyType(dict(mapping))


class DataPoint(collections.namedtuple(
        'DataPoint',
        ['unit', 'qty', 'price', 'groupby', 'metadata', 'description'])):
    """One usage record and its price; immutable.

    ``qty`` and ``price`` are always ``Decimal``; ``groupby`` and ``metadata``
    are read-only mappings; an empty ``unit`` becomes ``"undefined"``.
    """

    __slots__ = ()

    def __new__(cls, unit, qty, price, groupby, metadata, description=None):
        return super().__new__(
            cls,
            unit or 'undefined',
            to_decimal(qty),
            to_decimal(price),
            _frozen(groupby),
            _frozen(metadata),
            description,
        )

    def __reduce__(self):
        # pickle and copy cannot handle the read-only mappings themselves.
        return (self.__class__, (self.unit, self.qty, self.price,
                                 dict(self.groupby), dict(self.metadata),
                                 self.description))

    def set_price(self, price):
        """Return a copy of this point with ``price`` (converted to Decimal)."""
        return self._replace(price=to_decimal(price))

    @property
    def desc(self):
        """Metadata merged with groupby (groupby wins on a clash), read-only."""
        merged = dict(self.metadata)
        merged.update(self.groupby)
        return types.MappingProxyType(merged)

    def as_dict(self, legacy=False, mutable=False):
        """Return the point as the dict format of the API and the seed doc.

        ``{"vol": {"unit", "qty"}, "rating": {"price"}, "groupby", "metadata"}``;
        with ``legacy`` the two label dicts are merged into ``"desc"``; with
        ``mutable`` every nested value is a plain dict.
        """
        wrap = dict if mutable else types.MappingProxyType
        output = {
            'vol': wrap({'unit': self.unit, 'qty': self.qty}),
            'rating': wrap({'price': self.price}),
        }
        if legacy:
            output['desc'] = wrap(dict(self.desc))
        else:
            output['groupby'] = wrap(dict(self.groupby))
            output['metadata'] = wrap(dict(self.metadata))
        if self.description is not None:
            output['description'] = self.description
        return output if mutable else types.MappingProxyType(output)

    def json(self, legacy=False):
        """Return :meth:`as_dict` as JSON; Decimals are JSON numbers."""
        return dumps(self.as_dict(legacy=legacy, mutable=True))

    @classmethod
    def from_dict(cls, dict_, legacy=False):
        """Validate ``dict_`` (the :meth:`as_dict` format) and build a point.

        ``rating.price`` defaults to 0. Raises ``ValueError`` naming the
        faulty key.
        """
        if isinstance(dict_, collections.abc.Mapping):
            # as_dict() hands out read-only proxies; voluptuous wants dicts.
            dict_ = {k: dict(v) if isinstance(v, types.MappingProxyType)
                     else v for k, v in dict_.items()}
        try:
            valid = (_LEGACY_POINT_SCHEMA if legacy else _POINT_SCHEMA)(dict_)
        except voluptuous.Invalid as exc:
            raise ValueError(f'invalid data point: {exc}') from None
        if legacy:
            groupby, metadata = valid['desc'], {}
        else:
            groupby, metadata = valid['groupby'], valid['metadata']
        return cls(valid['vol']['unit'], valid['vol']['qty'],
                   valid['rating']['price'], groupby, metadata,
                   valid.get('description'))


# json cannot write a Decimal as a number by itself: json_default turns it
# into a string between two marks, and dumps() strips the marks and the
# quotes around them. The per-process nonce in each mark keeps a string that
# merely looks like one (a label value "\x00decimal:1") from being turned
# into a number. JSON writes the NUL of a mark as \u0000 whatever its
# options, so that the marks are found in the text with str.replace.
_DECIMAL_NONCE = secrets.token_hex(8)
_DECIMAL_OPEN = f'\x00decimal-{_DECIMAL_NONCE}<'
_DECIMAL_CLOSE = f'>{_DECIMAL_NONCE}\x00'
_DECIMAL_OPEN_JSON = f'"\\u0000decimal-{_DECIMAL_NONCE}<'
_DECIMAL_CLOSE_JSON = f'>{_DECIMAL_NONCE}\\u0000"'


def json_default(obj):
    """``json.dumps`` hook for :func:`dumps`: Decimal, datetime, proxies."""
    if isinstance(obj, decimal.Decimal):
        return _DECIMAL_OPEN + str(obj) + _DECIMAL_CLOSE
    if isinstance(obj, datetime.datetime):
        return obj.isoformat()
    if isinstance(obj, types.MappingProxyType):
        return dict(obj)
    raise TypeError(f'{obj.__class__.__name__} is not JSON serializable')


def dumps(obj, **kwargs):
    """``json.dumps`` writing every Decimal as a JSON number, digit for digit."""
    return json.dumps(obj, default=json_default, **kwargs).replace(
        _DECIMAL_OPEN_JSON, '').replace(_DECIMAL_CLOSE_JSON, '')


def decimal_number(value):
    """voluptuous validator of a number read from outside (a point, an API
    body, metrics.yml, a rules file): a finite number -> ``Decimal``.

    Accepts what :func:`to_decimal` converts (int, str, Decimal, float
    through its ``str()``); a bool, a non-number, an infinity or a NaN is
    ``voluptuous.Invalid`` with a message naming the value ("expected a
    number" for a bool).
    """
    if isinstance(value, bool):
        raise voluptuous.Invalid('expected a number')
    try:
        return to_decimal(value)
    except ValueError as exc:
        raise voluptuous.Invalid(str(exc)) from None


def _labels(value):
    if not isinstance(value, collections.abc.Mapping):
        raise voluptuous.Invalid('expected a mapping')
    for key in value:
        if not isinstance(key, str):
            raise voluptuous.Invalid(f'label key {key!r} is not a string')
    return dict(value)


_POINT_BASE = {
    voluptuous.Required('vol'): {
        voluptuous.Required('unit'): voluptuous.Any(str, None),
        voluptuous.Required('qty'): decimal_number,
    },
    voluptuous.Required('rating', default={}): {
        voluptuous.Required('price', default=0): decimal_number,
    },
    voluptuous.Optional('description'): voluptuous.Any(str, None),
}
_POINT_SCHEMA = voluptuous.Schema({**_POINT_BASE, **{
    voluptuous.Required('groupby', default={}): _labels,
    voluptuous.Required('metadata', default={}): _labels,
}})
_LEGACY_POINT_SCHEMA = voluptuous.Schema({**_POINT_BASE, **{
    voluptuous.Required('desc', default={}): _labels,
}})


class DataFrame:
    """The rated usage of one collect period: ``start``, ``end`` and points.

    Points are kept by type in insertion order; :meth:`itertypes` and the
    dict forms list types sorted by name.

    A frame made by :meth:`with_prices` holds, for the types it priced, the
    points it was given and a column of their new prices, and builds the
    priced points only when it is first read point by point
    (:meth:`itertypes`, :meth:`iterpoints`, the dict forms, equality,
    adding points to such a type); :meth:`itercolumns` reads the two lists
    as they are, building nothing. Either way a reader sees the same
    points.
    """

    __slots__ = ('start', 'end', '_usage', '_prices')

    def __init__(self, start, end, usage=None):
        self.start = timeutils.parse(start)
        self.end = timeutils.parse(end)
        if self.end < self.start:
            raise ValueError(f'period end {self.end} is before its start '
                             f'{self.start}')
        self._usage = collections.defaultdict(list)
        # type -> the prices of _usage[type], in place of the points' own,
        # for the types whose priced points are not built yet.
        self._prices = {}
        for type_, points in (usage or {}).items():
            self.add_points(points, type_)

    def __eq__(self, other):
        if not isinstance(other, DataFrame):
            return NotImplemented
        return (self.start == other.start and self.end == other.end
                and dict(self.itertypes()) == dict(other.itertypes()))

    def __repr__(self):
        counts = {t: len(p) for t, p in sorted(self._usage.items()) if p}
        return f'DataFrame({self.start.isoformat()}, {self.end.isoformat()}, {counts})'

    def _build(self, type_=None):
        """Build the priced points of ``type_`` (``None``: of every type)
        from their price column."""
        if not self._prices:
            return
        # Many tuples that outlive the block: see cloudkitty._perf.
        with _BUILDING, _perf.gc_paused():
            for pending in ([type_] if type_ is not None
                            else list(self._prices)):
                prices = self._prices.get(pending)
                if prices is None:
                    continue
                points = self._usage[pending]
                units, qtys, olds, groupbys, metadatas, descriptions = zip(
                    *points)
                built = list(map(
                    _new_tuple, itertools.repeat(DataPoint),
                    zip(units, qtys, prices, groupbys, metadatas,
                        descriptions)))
                # A point whose price is the very one it had stays itself.
                for i in itertools.compress(itertools.count(), map(
                        operator.is_, olds, prices)):
                    built[i] = points[i]
                self._usage[pending] = built
                del self._prices[pending]

    def add_point(self, point, type_):
        """Append one :class:`DataPoint` of ``type_``."""
        if not isinstance(point, DataPoint):
            raise TypeError(f'expected a DataPoint, got {point!r}')
        self._build(type_)
        self._usage[type_].append(point)

    def add_points(self, points, type_):
        """Append several :class:`DataPoint` of ``type_``."""
        points = list(points)
        if not all(map(isinstance, points, itertools.repeat(DataPoint))):
            bad = next(p for p in points if not isinstance(p, DataPoint))
            raise TypeError(f'expected a DataPoint, got {bad!r}')
        self._build(type_)
        self._usage[type_].extend(points)

    def itertypes(self):
        """Yield ``(type, [points])`` for each non-empty type, sorted by type."""
        self._build()
        for type_ in sorted(self._usage):
            if self._usage[type_]:
                yield type_, self._usage[type_]

    def iterpoints(self):
        """Yield ``(type, point)`` for every point, types sorted."""
        for type_, points in self.itertypes():
            for point in points:
                yield type_, point

    def itercolumns(self):
        """Yield ``(type, points, prices)`` for each non-empty type, sorted
        by type, without building any point: ``prices`` is the list of the
        points' prices (Decimals), one per point in order, and **the price
        of** ``points[i]`` **is** ``prices[i]``, whatever ``points[i].price``
        says (a point of a price column keeps the price it had before
        :meth:`with_prices`); its other fields are its own. Both lists are
        the frame's: read them, do not change them. For the types of a
        price column this is the cheap way to read a priced frame; for
        the others ``prices`` is made from the points.
        """
        for type_ in sorted(self._usage):
            points = self._usage[type_]
            if points:
                prices = self._prices.get(type_)
                yield type_, points, (list(map(_PRICE, points))
                                      if prices is None else prices)

    def with_prices(self, prices, finite=False):
        """A new frame of the same period and points, the points of each
        type of ``prices`` (``{type: [Decimal]}``, one finite price per point
        of the type, in :meth:`itercolumns` order) priced with them.

        The priced points are not built here (see the class); the lists
        given are kept (and must not change afterwards), the points are
        shared. Raises ``KeyError`` for a type the frame lacks,
        ``ValueError`` for a column of another length or a price that is
        not finite, ``TypeError`` for one that is not a Decimal. With
        ``finite`` the caller vouches that every price is a finite Decimal
        (a rating engine's own arithmetic, say) and they are not looked at
        one by one (about 27 ns a price); the lengths are still checked.
        """
        for type_, column in prices.items():
            count = len(self._usage[type_]) if type_ in self._usage else 0
            if not count:
                raise KeyError(f'no points of type {type_!r} to price')
            if len(column) != count:
                raise ValueError(f'{len(column)} prices for the {count} '
                                 f'points of {type_!r}')
            if not finite and not all(map(decimal.Decimal.is_finite,
                                          column)):
                raise ValueError(f'a price of {type_!r} is not finite')
        priced = DataFrame(self.start, self.end)
        with _BUILDING:
            for type_, points in self._usage.items():
                if points:
                    priced._usage[type_] = list(points)
            priced._prices.update(self._prices)
        priced._prices.update(prices)
        return priced

    def __len__(self):
        return sum(len(points) for points in self._usage.values())

    def as_dict(self, legacy=False, mutable=False):
        """``{"period": {"begin", "end"}, "usage": {type: [point dicts]}}``.

        Period values are datetimes; :meth:`json` writes them as ISO 8601.
        """
        wrap = dict if mutable else types.MappingProxyType
        usage = {
            type_: [p.as_dict(legacy=legacy, mutable=mutable) for p in points]
            for type_, points in self.itertypes()
        }
        return wrap({
            'period': wrap({'begin': self.start, 'end': self.end}),
            'usage': wrap(usage),
        })

    def json(self, legacy=False):
        """Return :meth:`as_dict` as a JSON string."""
        return dumps(self.as_dict(legacy=legacy, mutable=True))

    @classmethod
    def from_dict(cls, dict_, legacy=False):
        """Build a frame from the :meth:`as_dict` format; ``ValueError`` if bad."""
        if not isinstance(dict_, collections.abc.Mapping):
            raise ValueError(f'invalid data frame: expected a mapping, got '
                             f'{type(dict_).__name__}')
        try:
            period = dict_['period']
            begin, end = period['begin'], period['end']
            usage = dict_.get('usage') or {}
            if not isinstance(usage, collections.abc.Mapping):
                raise ValueError('"usage" must be a mapping of type to points')
            frame = cls(begin, end)
            for type_, points in usage.items():
                if not isinstance(points, (list, tuple)):
                    raise ValueError(f'usage of {type_!r} must be a list')
                frame.add_points(
                    (DataPoint.from_dict(p, legacy=legacy) for p in points),
                    type_)
        except (KeyError, TypeError) as exc:
            raise ValueError(
                f'invalid data frame: missing or bad {exc}') from None
        return frame
