"""Storage v2: the interface every rated-data backend implements.

:class:`BaseStorage` holds the public methods (``init``, ``push``,
``retrieve``, ``total``, ``delete``, ``replace``, ``replace_many``) with
their contracts and everything backends share: argument checking, the
default ``[begin, end)`` window, the mapping of ``time-*`` groupby keys,
``custom_fields`` parsing and the shape of the results. A backend
implements small primitives (``_push``, ``_retrieve``, ``_total``,
``_delete``, optionally ``_replace_many``) that receive arguments already
normalised into a :class:`Query`, :class:`GroupKey` list and
:class:`Field` list.

Backends are entry points of ``cloudkitty.storage.v2.backends`` and are
built with the service's ``ConfigOpts``: ``Backend(conf)``, and
``engine=`` the process's database engine where the constructor takes it
(:func:`cloudkitty.storage.get_storage`).
"""

import abc
import collections.abc
import dataclasses
import datetime
import decimal
import re

from cloudkitty import dataframe
from cloudkitty import timeutils

__all__ = ['TIME_GROUPBY_KEYS', 'BaseStorage', 'Field', 'GroupKey',
           'InvalidData', 'InvalidQuery', 'Query', 'StorageError']

_UTC = datetime.timezone.utc


class StorageError(Exception):
    """Base of the errors raised by storage backends."""


class InvalidQuery(StorageError, ValueError):
    """A query argument is malformed: unknown groupby key, bad filter, bad
    ``custom_fields``, ``begin`` after ``end``, negative offset..."""


class InvalidData(StorageError, ValueError):
    """Pushed data cannot be stored (not a DataFrame, quantity or price out
    of the storable range)."""


#: The most groupby keys, and label filter keys, one query takes: each
#: is a column, or a join, of the statement; thousands of them take
#: seconds to plan and go past what a database allows (2,000 columns in
#: SQLite, 1,664 in PostgreSQL).
MAX_GROUPBY_KEYS = 64
MAX_FILTER_KEYS = 64

#: ``time-*`` groupby keys and the groupby key every collector adds to each
#: point, from the period start, that they stand for.
TIME_GROUPBY_KEYS = {
    'time-d': 'day_of_the_year',
    'time-w': 'week_of_the_year',
    'time-m': 'month',
    'time-y': 'year',
}

# Label keys end up in JSON paths and SQL: keep them to a safe alphabet
# (Prometheus labels, Gnocchi attributes and OpenStack names all fit).
_KEY_RE = re.compile(r'^[\w.:/@-]{1,255}$')

# Exact arithmetic on money whatever the caller's decimal context: the sum
# of prices with 12 integer and 28 decimal digits has 40+ digits.
DECIMAL_CONTEXT = decimal.Context(prec=100, rounding=decimal.ROUND_HALF_UP)
_ONE = decimal.Decimal(1)


def normalize_decimal(value):
    """Return ``value`` without trailing zeros, an equal value.

    SQL ``NUMERIC(p, s)`` columns hand back every value with ``s``
    decimals; ``Decimal('1.5000')`` becomes ``Decimal('1.5')`` and
    ``Decimal('100.00')`` and ``Decimal('1E+2')`` become ``Decimal('100')``.
    Integers are never in exponent form; like any Decimal, a value below
    1E-6 is (``Decimal('0.00000050')`` becomes ``Decimal('5E-7')``).
    """
    if value is None:
        return None
    integral = value.to_integral_value(context=DECIMAL_CONTEXT)
    if value == integral:
        return integral.quantize(_ONE, context=DECIMAL_CONTEXT)
    return value.normalize(DECIMAL_CONTEXT)


@dataclasses.dataclass(frozen=True)
class Query:
    """What a read or a delete selects; built by :class:`BaseStorage`.

    A point matches when every constraint holds:

    - ``begin <= point period start < end`` (``None``: unbounded; aware UTC
      datetimes otherwise);
    - ``types``: the point's type is one of them (``None``: any type);
    - ``scopes``: the point's scope id is one of them (``None``: any);
    - ``labels``: for each ``(key, values)``, the point's groupby value for
      ``key`` (else its metadata value) is one of ``values``; values are
      compared as strings.

    An empty ``types``, ``scopes`` or label value tuple matches nothing.
    """

    begin: datetime.datetime = None
    end: datetime.datetime = None
    types: tuple = None
    scopes: tuple = None
    labels: tuple = ()


@dataclasses.dataclass(frozen=True)
class GroupKey:
    """One ``total`` grouping key.

    ``kind`` is ``'type'``, ``'scope'`` (the scope id column), ``'time'``
    (the collect period: begin and end) or ``'label'`` (the groupby label
    ``name``). ``name`` is the key in the result rows (unused for time).
    """

    kind: str
    name: str = None


@dataclasses.dataclass(frozen=True)
class Field:
    """One aggregate of ``total``: ``SUM(source) AS alias``.

    ``source`` is ``'qty'`` or ``'price'``.
    """

    alias: str
    source: str


DEFAULT_FIELDS = (Field('qty', 'qty'), Field('rate', 'price'))

_FIELD_RE = re.compile(
    r'^\s*sum\s*\(\s*"?(qty|price|rate)"?\s*\)'
    r'(?:\s+as\s+"?([A-Za-z_]\w{0,62})"?)?\s*$', re.IGNORECASE)


def parse_custom_fields(custom_fields):
    """Turn ``custom_fields`` into a tuple of :class:`Field`.

    ``None`` or ``''`` gives the default ``SUM(qty) AS qty, SUM(price) AS
    rate``. Otherwise a comma-separated list of ``SUM(qty)`` or
    ``SUM(price)`` (``rate`` is an alias of ``price``), each with an
    optional ``AS alias`` (default: the column name). Upstream passes
    ``custom_fields`` through to InfluxQL; SQL backends support this safe
    subset and raise :class:`InvalidQuery` for anything else.
    """
    if custom_fields is None or not str(custom_fields).strip():
        return DEFAULT_FIELDS
    if not isinstance(custom_fields, str):
        raise InvalidQuery('custom_fields must be a string')
    fields = []
    for part in custom_fields.split(','):
        match = _FIELD_RE.match(part)
        if not match:
            raise InvalidQuery(
                f'unsupported custom field {part.strip()!r}: expected '
                f'SUM(qty) or SUM(price), optionally followed by AS <name>')
        source = 'qty' if match.group(1).lower() == 'qty' else 'price'
        fields.append(Field(match.group(2) or match.group(1).lower(), source))
    aliases = [field.alias for field in fields]
    if len(set(aliases)) != len(aliases):
        raise InvalidQuery(f'custom_fields repeat a name: {aliases}')
    clash = set(aliases) & {'begin', 'end'}
    if clash:
        raise InvalidQuery(f'custom field names {sorted(clash)} are reserved')
    return tuple(fields)


def check_key(key, what='groupby key'):
    """Return ``key`` if it is a usable label key, else raise InvalidQuery."""
    if not isinstance(key, str) or not _KEY_RE.match(key):
        raise InvalidQuery(
            f'invalid {what} {key!r}: expected letters, digits and . : / @ '
            f'- _ only')
    return key


def _as_list(value, what):
    if value is None:
        return None
    if isinstance(value, (str, bytes)):
        return [value]
    if isinstance(value, collections.abc.Iterable) and not isinstance(
            value, collections.abc.Mapping):
        return list(value)
    raise InvalidQuery(f'{what} must be a string or a list of strings')


def _filter_value(value, key):
    if isinstance(value, str):
        return value
    if isinstance(value, (int, decimal.Decimal, float)) and not isinstance(
            value, bool):
        return str(value)
    raise InvalidQuery(f'invalid value {value!r} for filter {key!r}: '
                       f'expected a string or a number')


def _datetime(value, what):
    if value is None:
        return None
    try:
        return timeutils.parse(value).astimezone(_UTC)
    except ValueError as exc:
        raise InvalidQuery(f'invalid {what}: {exc}') from None


class BaseStorage(abc.ABC):
    """A rated-data store (storage interface v2).

    Built with the service's ``ConfigOpts`` (``Backend(conf)``). A point is
    stored with its collect period, its type (the metric's alt_name), its
    scope id, quantity, price, unit, groupby, metadata and description.

    Time windows are half-open, ``[begin, end)``, and select points by the
    start of their period. Where ``begin``/``end`` are missing, reads use
    the current month (UTC) and :meth:`delete` leaves the window open.
    ``begin``/``end`` are datetimes (naive values are UTC) or ISO 8601
    strings; every datetime returned is timezone-aware UTC. Quantities and
    prices are always ``Decimal``.

    ``filters`` maps a groupby or metadata key to a value or a list of
    values (a list is an OR; values compare as strings). Two keys are not
    labels: ``type`` filters metric types, and the ``[collect] scope_key``
    (``project_id`` by default) filters the scope id the points were
    pushed with.
    """

    def __init__(self, conf):
        self.conf = conf
        self.scope_key = conf.collect.scope_key

    # -- public interface ---------------------------------------------------

    @abc.abstractmethod
    def init(self):
        """Create what the backend needs (tables, indexes); idempotent.

        Run by ``cloudkitty-storage-init`` before the first ``push``.
        """

    def maintain(self, now):
        """Upkeep the processors run about once an hour (``now``: aware
        UTC): what the coming writes need made ahead, and the data older
        than ``[storage] retention`` days deleted. Nothing by default."""

    def push(self, dataframes, scope_id=None):
        """Store rated frames.

        :param dataframes: a list of :class:`~cloudkitty.dataframe.DataFrame`
            (a single frame is accepted too).
        :param scope_id: the scope of every point; ``None`` takes each
            point's ``groupby[scope_key]`` (no such key: no scope).
        :raises InvalidData: when an item is not a DataFrame or a value
            cannot be stored.

        Points are stored as pushed: pushing a period twice counts it
        twice (see :meth:`replace`). All frames are stored or none.
        """
        frames = self._check_frames(dataframes)
        if any(len(frame) for frame in frames):
            self._push(frames, scope_id)

    def replace(self, dataframe, scope_id):
        """Make ``dataframe`` the only stored data of ``scope_id`` for its
        period: :meth:`delete` of ``[dataframe.start, dataframe.end)`` for
        the scope, then :meth:`push`.

        Calling it again with the same frame leaves the store unchanged:
        this is what makes the processor's store idempotent. Backends that
        can do both in one transaction override :meth:`_replace_many`.
        """
        self.replace_many([(dataframe, scope_id)])

    def replace_many(self, items):
        """:meth:`replace` of each ``(dataframe, scope_id)`` of ``items``,
        in one transaction where the backend can (``sqlalchemy``: every
        frame stored or none, at the cost of one call).

        This is how a processor stores the scope-periods of a round
        together: once it returns, each period's state may be recorded; a
        crash before that leaves the periods due, and storing them again
        replaces what this call stored.

        :raises InvalidQuery: when a ``scope_id`` is ``None``, or two
            frames of one scope have overlapping periods (the second would
            replace the first).
        :raises InvalidData: as :meth:`push`.
        """
        pairs = []
        ends = {}  # scope -> [(start, end)]
        for dataframe_, scope_id in items:
            frame, = self._check_frames([dataframe_])
            if scope_id is None:
                raise InvalidQuery('replace needs a scope_id')
            ends.setdefault(scope_id, []).append((frame.start, frame.end))
            pairs.append((frame, scope_id))
        for scope_id, windows in ends.items():
            windows.sort()
            for (_, end), (start, _) in zip(windows, windows[1:]):
                if start < end:
                    raise InvalidQuery(
                        f'replace_many: two periods of scope {scope_id!r} '
                        f'overlap at {start.isoformat()}')
        if pairs:
            self._replace_many(pairs)

    def retrieve(self, begin=None, end=None, filters=None, metric_types=None,
                 offset=0, limit=1000, paginate=True):
        """Return stored points as frames.

        :param begin, end: the window (default: the current month).
        :param filters: see the class docstring.
        :param metric_types: a type or a list of types (``None``: all).
        :param offset, limit: the page of points, used when ``paginate``.
        :returns: ``{"total": <number of matching points>, "dataframes":
            [DataFrame]}``: one frame per collect period on the page, in
            period order; within a frame, a type's points come in the order
            they were pushed, scope by scope (a frame pushed without
            ``scope_id`` whose points mix scopes comes back grouped by
            scope).
        :raises InvalidQuery: on a malformed argument.
        """
        query = self._make_query(begin, end, filters, metric_types,
                                 default_window=True)
        offset, limit = self._check_page(offset, limit, paginate)
        total, points = self._retrieve(query, offset, limit)
        frames = []
        for begin_, end_, type_, point in points:
            if not frames or (frames[-1].start, frames[-1].end) != (
                    begin_, end_):
                frames.append(dataframe.DataFrame(begin_, end_))
            frames[-1].add_point(point, type_)
        return {'total': total, 'dataframes': frames}

    def total(self, groupby=None, begin=None, end=None, metric_types=None,
              filters=None, custom_fields=None, offset=0, limit=1000,
              paginate=True):
        """Aggregate stored points, grouped.

        :param groupby: a list of keys (a comma-separated string is also
            accepted): ``type``, the scope key, any groupby key, ``time``
            (one row per collect period) and ``time-d``, ``time-w``,
            ``time-m``, ``time-y`` (the ``day_of_the_year``,
            ``week_of_the_year``, ``month`` and ``year`` groupby keys).
        :param begin, end, filters, metric_types: as in :meth:`retrieve`.
        :param custom_fields: see :func:`parse_custom_fields`.
        :param offset, limit: the page of groups, used when ``paginate``.
        :returns: ``{"total": <number of groups>, "results": [{"begin",
            "end", "qty", "rate", <groupby keys>}]}`` (with custom fields,
            their names replace ``qty`` and ``rate``). ``begin``/``end`` are
            the period's with ``time``, else the query's. ``qty``/``rate``
            are Decimals. Rows are sorted by the groupby values, in the
            order of ``groupby`` (missing values last); ``time-d`` and the
            like are returned under the groupby key they stand for. Without
            groupby there is one row, or none when no point matches.
        :raises InvalidQuery: on an unknown ``time-*`` key, a malformed
            key, filter or custom field.
        """
        query = self._make_query(begin, end, filters, metric_types,
                                 default_window=True)
        keys = self.parse_groupby(groupby)
        fields = parse_custom_fields(custom_fields)
        names = {key.name for key in keys if key.kind != 'time'}
        clash = names & ({'begin', 'end'} | {f.alias for f in fields})
        if clash:
            raise InvalidQuery(f'groupby keys {sorted(clash)} clash with '
                               f'result columns')
        offset, limit = self._check_page(offset, limit, paginate)
        total, rows = self._total(query, keys, fields, offset, limit)
        results = []
        for row in rows:
            result = {'begin': query.begin, 'end': query.end}
            groups = {}
            values = iter(row)
            for key in keys:
                if key.kind == 'time':
                    result['begin'] = next(values)
                    result['end'] = next(values)
                else:
                    groups[key.name] = next(values)
            for field in fields:
                result[field.alias] = normalize_decimal(next(values))
            result.update(groups)
            results.append(result)
        return {'total': total, 'results': results}

    def delete(self, begin=None, end=None, filters=None):
        """Remove the points of ``[begin, end)`` matching ``filters``.

        A missing ``begin`` or ``end`` leaves that side of the window open
        (no default month here); no argument at all empties the store.
        ``filters`` are those of :meth:`retrieve` (``type`` included).
        """
        self._delete(self._make_query(begin, end, filters, None,
                                      default_window=False))

    # -- shared logic -------------------------------------------------------

    def parse_groupby(self, groupby):
        """Turn a ``groupby`` argument into a list of :class:`GroupKey`.

        Duplicates are dropped (``time-d`` and ``day_of_the_year`` are one
        key). Raises :class:`InvalidQuery` for an unknown ``time-*`` key or a
        malformed key.
        """
        if groupby is None:
            return []
        if isinstance(groupby, str):
            groupby = [k.strip() for k in groupby.split(',') if k.strip()]
        keys = []
        for name in _as_list(groupby, 'groupby'):
            if name == 'type':
                key = GroupKey('type', 'type')
            elif name == self.scope_key:
                key = GroupKey('scope', name)
            elif name == 'time':
                key = GroupKey('time')
            elif isinstance(name, str) and name.startswith('time-'):
                if name not in TIME_GROUPBY_KEYS:
                    raise InvalidQuery(
                        f'unknown groupby key {name!r}: time keys are time, '
                        f'{", ".join(sorted(TIME_GROUPBY_KEYS))}')
                key = GroupKey('label', TIME_GROUPBY_KEYS[name])
            else:
                key = GroupKey('label', check_key(name))
            if key not in keys:
                keys.append(key)
            if len(keys) > MAX_GROUPBY_KEYS:
                raise InvalidQuery(f'more than {MAX_GROUPBY_KEYS} groupby '
                                   f'keys: at most {MAX_GROUPBY_KEYS} are '
                                   f'taken')
        return keys

    def _make_query(self, begin, end, filters, metric_types, default_window):
        begin = _datetime(begin, 'begin')
        end = _datetime(end, 'end')
        if default_window:
            month_start, next_month = timeutils.month_window()
            begin = begin or month_start
            end = end or next_month
        if begin is not None and end is not None and begin > end:
            raise InvalidQuery(f'begin {begin.isoformat()} is after end '
                               f'{end.isoformat()}')
        types = _as_list(metric_types, 'metric_types') or None
        if types is not None:
            types = tuple(dict.fromkeys(_filter_value(t, 'type')
                                        for t in types))
        scopes = None
        labels = []
        if filters is not None and not isinstance(filters,
                                                  collections.abc.Mapping):
            raise InvalidQuery('filters must be a mapping of key to values')
        for key, values in (filters or {}).items():
            if values is None:
                raise InvalidQuery(f'filter {key!r} has no value')
            values = tuple(dict.fromkeys(
                _filter_value(v, key) for v in _as_list(values, key)))
            if key == 'type':
                types = values if types is None else tuple(
                    t for t in types if t in values)
            elif key == self.scope_key:
                scopes = values
            else:
                labels.append((check_key(key, 'filter key'), values))
        if len(labels) > MAX_FILTER_KEYS:
            raise InvalidQuery(f'{len(labels)} filter keys: at most '
                               f'{MAX_FILTER_KEYS} are taken')
        return Query(begin=begin, end=end, types=types, scopes=scopes,
                     labels=tuple(sorted(labels)))

    @staticmethod
    def _check_page(offset, limit, paginate):
        if not paginate:
            return 0, None
        if isinstance(offset, bool) or not isinstance(offset, int) or (
                offset < 0):
            raise InvalidQuery(f'offset must be an integer >= 0, not '
                               f'{offset!r}')
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidQuery(f'limit must be an integer >= 1, not '
                               f'{limit!r}')
        return offset, limit

    @staticmethod
    def _check_frames(dataframes):
        if isinstance(dataframes, dataframe.DataFrame):
            return [dataframes]
        frames = list(dataframes or [])
        for frame in frames:
            if not isinstance(frame, dataframe.DataFrame):
                raise InvalidData(f'expected DataFrames, got {frame!r}')
        return frames

    # -- backend primitives -------------------------------------------------

    @abc.abstractmethod
    def _push(self, frames, scope_id):
        """Store ``frames`` (a non-empty list of DataFrames) atomically.

        Each point's scope is ``scope_id``, or when it is ``None``
        ``point.groupby.get(self.scope_key)``.
        """

    def _replace_many(self, pairs):
        """For each ``(frame, scope_id)`` of ``pairs`` (checked, non-empty
        list): delete the scope's data of the frame's period, then push it.

        Backends override this to do it all in one transaction.
        """
        for frame, scope_id in pairs:
            self.delete(begin=frame.start, end=frame.end,
                        filters={self.scope_key: scope_id})
            if len(frame):
                self._push([frame], scope_id)

    @abc.abstractmethod
    def _retrieve(self, query, offset, limit):
        """Return ``(total, points)`` for ``query``.

        ``total`` is the number of matching points, or, where counting
        them would read every point (a query with label filters whose
        page is not the last), an upper bound of it: at least the points
        of the page and of those before it, and 0 only when none matches
        (see doc/source/developer/storage.rst); ``points`` is the page
        ``[offset, offset + limit)`` (``limit`` ``None``: every point) of
        ``(begin, end, type, DataPoint)`` tuples ordered by period begin,
        period end, type and push order (scope by scope). ``begin``/``end``
        are aware UTC.
        """

    @abc.abstractmethod
    def _total(self, query, keys, fields, offset, limit):
        """Return ``(number of groups, rows)`` for ``query``.

        Points are grouped by ``keys`` (a list of :class:`GroupKey`; none:
        one group holding every matching point, no row when no point
        matches). A row is a tuple: for each key its value (two for a time
        key: the period's aware begin and end; ``None`` for a missing
        label), then one Decimal per :class:`Field` of ``fields``. Rows are
        sorted by the key values in ``keys`` order, ``None`` last, strings
        by code point, and paginated like ``_retrieve``.
        """

    @abc.abstractmethod
    def _delete(self, query):
        """Delete the points matching ``query`` (begin/end may be None)."""
