"""A collector that needs no server: usage records read from local files.

``[collector_file] usage_path`` is a file or a directory; a directory is
walked recursively and every ``*.jsonl`` and ``*.csv`` file in it is read,
in path order (hidden files and folders are ignored).

A record is one usage measurement:

- ``metric``: the metric name as used in metrics.yml (the data-source name);
- ``scope``: the scope id; it is the record's ``[collect] scope_key`` label;
- ``time`` (an instant), or ``begin`` and optionally ``end`` (a period, which
  belongs to the collect period containing its ``begin``): ISO 8601 (a naive
  value is UTC; compact forms like ``20260101T000000Z`` are fine) or a Unix
  timestamp in seconds;
- ``qty``: a number, read as Decimal digit for digit (never through float);
- labels: JSONL, a ``"labels"`` object of scalar values; CSV, every column
  other than the ones above (``unit`` is accepted and ignored in both).

JSONL, one object a line (blank lines are skipped)::

    {"metric": "cpu", "scope": "p1", "time": "2026-01-01T00:00:00Z",
     "qty": 1, "labels": {"id": "vm-1", "flavor_name": "m1.small"}}

CSV, with a header line::

    metric,scope,begin,end,qty,id,volume_type
    volume.size,p1,2026-01-01T00:00:00Z,2026-01-01T01:00:00Z,20,vol-1,ssd

For a metric, scope and collect period, the records are grouped by the
metric's ``groupby`` labels; the quantities of a group are aggregated with
``extra_args.aggregation_method`` (``sum`` by default, ``max``, ``min``,
``avg`` or its alias ``mean``, ``last``); ``metadata`` comes from the group's
latest record. A label a record lacks becomes ``""``.

The files are parsed once per process and kept, each keyed by its path,
modification time and size: a changed file is read again, the others are
not. Records are bucketed by (metric, scope) and sorted by time, so that a
fetch is two bisections. A malformed record makes every fetch fail with a
:class:`~cloudkitty.collector.CollectError` naming the file and the line.
"""

import array
import bisect
import csv
import datetime
import decimal
import functools
import itertools
import json
import math
import operator
import os
import threading
import time
import types

import voluptuous

from cloudkitty import _perf
from cloudkitty import collector
from cloudkitty.collector import metrics_conf
from cloudkitty.collector import quantity
from cloudkitty import dataframe
from cloudkitty import timeutils

AGGREGATION_METHODS = ('sum', 'max', 'min', 'avg', 'mean', 'last')

FILE_EXTRA_SCHEMA = {
    voluptuous.Required('extra_args',
                        default=lambda: {'aggregation_method': 'sum'}): {
        voluptuous.Required('aggregation_method', default='sum'):
            voluptuous.In(AGGREGATION_METHODS),
    },
}

SUFFIXES = ('.jsonl', '.csv')
_RESERVED = frozenset(['metric', 'scope', 'time', 'begin', 'end', 'qty',
                       'unit'])
_JSONL_KEYS = _RESERVED | {'labels'}


class UsageFileError(Exception):
    """A usage file is unreadable or holds a malformed record."""


class _BadRecord(Exception):
    pass


# --- parsing ---------------------------------------------------------------------

class _Parser:
    """Turns raw record fields into ``(metric, scope, ts, qty, label id)``.

    Timestamps, quantities and label sets repeat a lot in usage exports
    (the same resource every hour), so each is converted once and shared.
    A label set is stored once in :attr:`label_table` (read-only mappings)
    and records refer to it by its position there.
    """

    def __init__(self):
        self._times = {}
        self._qtys = {}
        self._labels = {}
        self.label_table = []

    def timestamp(self, value, name):
        if value.__class__ is not str and (isinstance(value, bool) or
                                           not isinstance(
                                               value, (int, decimal.Decimal))):
            raise _BadRecord(f'"{name}" must be an ISO 8601 date or a Unix '
                             f'timestamp, got {value!r}')
        try:
            return self._times[value]
        except KeyError:
            pass
        ts = None
        if isinstance(value, str):
            text = value.strip()
            try:
                ts = float(decimal.Decimal(text))
            except decimal.InvalidOperation:
                ts = self._parse_iso(text, name)
        else:
            ts = float(value)
        if not math.isfinite(ts):
            raise _BadRecord(f'"{name}" is not a finite timestamp: {value!r}')
        self._times[value] = ts
        return ts

    @staticmethod
    def _parse_iso(text, name):
        try:
            moment = datetime.datetime.fromisoformat(text)
        except ValueError:
            try:
                moment = timeutils.parse(text)
            except ValueError:
                raise _BadRecord(f'"{name}" is not an ISO 8601 date: '
                                 f'{text!r}') from None
        return timeutils.parse(moment).timestamp()

    def qty(self, value):
        if value.__class__ is bool:  # before the cache: True == 1
            raise _BadRecord(f'"qty" must be a number, got {value!r}')
        try:
            return self._qtys[value]
        except KeyError:
            pass
        except TypeError:
            raise _BadRecord(
                f'"qty" must be a number, got {value!r}') from None
        try:
            qty = dataframe.to_decimal(value.strip() if isinstance(value, str)
                                       else value)
        except ValueError:
            raise _BadRecord(
                f'"qty" must be a number, got {value!r}') from None
        if len(self._qtys) < 100000:
            self._qtys[value] = qty
        return qty

    def labels(self, items):
        """The id of a label set given as a tuple of ``(key, value)`` pairs."""
        try:
            return self._labels[items]
        except KeyError:
            pass
        except TypeError:
            items = tuple((k, _label_value(k, v)) for k, v in items)
            return self.labels(items)
        for key, value in items:
            if not isinstance(key, str):
                raise _BadRecord(f'label name {key!r} is not a string')
            if not isinstance(value, str):
                items = tuple((k, _label_value(k, v)) for k, v in items)
                break
        label_id = self._labels.get(items)
        if label_id is None:
            label_id = self._labels[items] = len(self.label_table)
            self.label_table.append(types.MappingProxyType(dict(items)))
        return label_id

    def record(self, metric, scope, time_, begin, end, qty, label_items):
        if not isinstance(metric, str) or not metric:
            raise _BadRecord(f'"metric" must be a non-empty string, got '
                             f'{metric!r}')
        if isinstance(scope, int) and not isinstance(scope, bool):
            scope = str(scope)
        if not isinstance(scope, str) or not scope:
            raise _BadRecord(f'"scope" must be a non-empty string, got '
                             f'{scope!r}')
        if time_ is not None and time_ != '':
            if begin not in (None, '') or end not in (None, ''):
                raise _BadRecord('give either "time" or "begin"/"end", not '
                                 'both')
            ts = self.timestamp(time_, 'time')
        elif begin is not None and begin != '':
            ts = self.timestamp(begin, 'begin')
            if end is not None and end != '' and \
                    self.timestamp(end, 'end') < ts:
                raise _BadRecord(f'"end" ({end}) is before "begin" ({begin})')
        else:
            raise _BadRecord('missing "time" (or "begin")')
        return metric, scope, ts, self.qty(qty), self.labels(label_items)


def _label_value(key, value):
    if isinstance(value, str):
        return value
    if value is None:
        return ''
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, (int, decimal.Decimal)):
        return str(value)
    raise _BadRecord(f'label {key!r} must be a string, number, boolean or '
                     f'null, got {value!r}')


_CHUNK_BYTES = 1 << 22  # about this much JSONL is decoded by one json call


def _decode_chunk(lines):
    """Decode JSONL lines at once: the objects in order, or None on an error.

    One json call for many lines is much faster than one a line; when it
    fails (bad JSON, a blank line...), the caller goes line by line.
    """
    try:
        objects = json.loads('[' + ','.join(lines) + ']',
                             parse_float=decimal.Decimal)
    except ValueError:
        return None
    return objects if len(objects) == len(lines) else None


def _decode_lines(lines):
    """Decode JSONL lines one by one: ``[(index, object or error)]``."""
    decoded = []
    for index, line in enumerate(lines):
        if line.strip():
            try:
                decoded.append((index, json.loads(
                    line, parse_float=decimal.Decimal)))
            except ValueError as exc:
                decoded.append((index, _BadRecord(f'invalid JSON: {exc}')))
    return decoded


def _jsonl_record(parser, obj):
    if isinstance(obj, _BadRecord):
        raise obj
    if not isinstance(obj, dict):
        raise _BadRecord('a record must be a JSON object')
    if not _JSONL_KEYS.issuperset(obj):
        unknown = sorted(set(obj) - _JSONL_KEYS)
        raise _BadRecord(f'unknown key(s) {", ".join(unknown)} (labels go '
                         'in "labels")')
    if 'qty' not in obj:
        raise _BadRecord('missing "qty"')
    labels = obj.get('labels')
    if labels is None:
        labels = {}
    elif not isinstance(labels, dict):
        raise _BadRecord('"labels" must be an object')
    return parser.record(obj.get('metric'), obj.get('scope'), obj.get('time'),
                         obj.get('begin'), obj.get('end'), obj['qty'],
                         tuple(labels.items()))


def _parse_jsonl(path, stream, parser, buckets):
    # The loop takes a fast path for the common record (string metric,
    # scope and time, and time, qty and labels already met in this file:
    # the parser's caches hold only validated values); anything else goes
    # through _jsonl_record, which validates and fills the caches.
    times, qtys, label_ids = parser._times, parser._qtys, parser._labels
    sink = functools.partial(_Columns.append_to, buckets)
    known = _JSONL_KEYS
    no_labels = ()
    first_line = 1
    while True:
        lines = stream.readlines(_CHUNK_BYTES)
        if not lines:
            return
        objects = _decode_chunk(lines)
        numbered = enumerate(objects) if objects is not None \
            else _decode_lines(lines)
        for index, obj in numbered:
            try:
                if obj.__class__ is dict and 'begin' not in obj:
                    metric, scope = obj.get('metric'), obj.get('scope')
                    qty, labels = obj.get('qty'), obj.get('labels')
                    time_ = obj.get('time')
                    if (metric.__class__ is str and metric
                            and scope.__class__ is str and scope
                            and time_.__class__ is str
                            and qty.__class__ is not bool
                            and known.issuperset(obj)):
                        ts, qty = times.get(time_), qtys.get(qty)
                        if labels.__class__ is dict:
                            label_id = label_ids.get(tuple(labels.items()))
                        elif labels is None:
                            label_id = label_ids.get(no_labels)
                        else:
                            label_id = None
                        if ts is not None and qty is not None and \
                                label_id is not None:
                            columns = buckets.get((metric, scope))
                            if columns is None:
                                columns = _Columns.add_to(buckets, metric,
                                                          scope)
                            columns.times.append(ts)
                            columns.qtys.append(qty)
                            columns.labels.append(label_id)
                            continue
                sink(*_jsonl_record(parser, obj))
            except TypeError:  # unhashable qty or label: validate it
                try:
                    sink(*_jsonl_record(parser, obj))
                except _BadRecord as exc:
                    raise UsageFileError(
                        f'{path}:{first_line + index}: {exc}') from None
            except _BadRecord as exc:
                raise UsageFileError(
                    f'{path}:{first_line + index}: {exc}') from None
        first_line += len(lines)


def _csv_columns(path, header):
    header = [name.strip() for name in header]
    missing = [n for n in ('metric', 'scope', 'qty') if n not in header]
    if 'time' not in header and 'begin' not in header:
        missing.append('time or begin')
    if missing:
        raise UsageFileError(f'{path}:1: header lacks column(s) '
                             f'{", ".join(missing)}')
    if len(set(header)) != len(header):
        raise UsageFileError(f'{path}:1: duplicate column names')
    return header


def _parse_csv(path, stream, parser, buckets):
    reader = csv.reader(stream)
    try:
        header = _csv_columns(path, next(reader))
    except StopIteration:
        return
    column = {name: i for i, name in enumerate(header)}
    label_cols = [i for i, name in enumerate(header) if name not in _RESERVED]
    label_names = [header[i] for i in label_cols]
    none = lambda row: None  # noqa: E731
    getters = [operator.itemgetter(column[name]) if name in column else none
               for name in ('metric', 'scope', 'time', 'begin', 'end', 'qty')]
    get_metric, get_scope, get_time, get_begin, get_end, get_qty = getters
    width = len(header)
    sink = functools.partial(_Columns.append_to, buckets)
    for row in reader:
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        try:
            if len(row) != width:
                raise _BadRecord(f'{len(row)} fields, the header has {width}')
            sink(*parser.record(
                get_metric(row), get_scope(row), get_time(row),
                get_begin(row), get_end(row), get_qty(row),
                tuple(zip(label_names, [row[i] for i in label_cols]))))
        except _BadRecord as exc:
            raise UsageFileError(f'{path}:{reader.line_num}: {exc}') from None


class _Columns:
    """Records of one (metric, scope) as three parallel columns.

    While a file is parsed they are lists; :meth:`freeze` turns them into
    tuples of floats and Decimals and an array of label ids, which the
    garbage collector never has to traverse (tuples of untracked objects are
    untracked, arrays hold no objects): millions of records cost nothing to
    every later collection of the process.
    """

    __slots__ = ('times', 'qtys', 'labels')

    def __init__(self, times=None, qtys=None, labels=None):
        self.times = [] if times is None else times
        self.qtys = [] if qtys is None else qtys
        self.labels = [] if labels is None else labels

    @classmethod
    def add_to(cls, buckets, metric, scope):
        columns = buckets[(metric, scope)] = cls()
        return columns

    @classmethod
    def append_to(cls, buckets, metric, scope, ts, qty, label_id):
        columns = buckets.get((metric, scope))
        if columns is None:
            columns = cls.add_to(buckets, metric, scope)
        columns.times.append(ts)
        columns.qtys.append(qty)
        columns.labels.append(label_id)

    @classmethod
    def merge(cls, parts):
        """Merge ``[(columns, label id offset)]`` into sorted frozen columns.

        Records are sorted by time; records of equal time keep their order
        (parts in order, then records in order).
        """
        times, qtys, labels = [], [], array.array('I')
        for part, offset in parts:
            times.extend(part.times)
            qtys.extend(part.qtys)
            labels.extend(part.labels if not offset else
                          array.array('I', [i + offset for i in part.labels]))
        if not all(map(operator.le, times, itertools.islice(times, 1, None))):
            order = sorted(range(len(times)), key=times.__getitem__)
            times = [times[i] for i in order]
            qtys = [qtys[i] for i in order]
            labels = array.array('I', [labels[i] for i in order])
        return cls(tuple(times), tuple(qtys), labels)

    def freeze(self):
        """Turn the lists of a parsed file into tuples and an array."""
        self.times = tuple(self.times)
        self.qtys = tuple(self.qtys)
        self.labels = array.array('I', self.labels)


def parse_file(path):
    """Parse one usage file.

    :returns: ``(buckets, label_table)``: ``buckets`` maps ``(metric,
        scope)`` to columns in file order, parallel sequences ``times``
        (Unix seconds), ``qtys`` (Decimal) and ``labels`` (positions in
        ``label_table``, a list of read-only label mappings)
    :raises UsageFileError: naming the file and the line
    """
    parser = _Parser()
    buckets = {}
    parse = _parse_csv if path.lower().endswith('.csv') else _parse_jsonl
    try:
        # Parsing allocates millions of objects that all survive; letting
        # the garbage collector scan them again and again would double the
        # indexing time.
        with open(path, encoding='utf-8-sig', newline='') as stream, \
                _perf.gc_paused():
            parse(path, stream, parser, buckets)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UsageFileError(f'{path}: cannot read: {exc}') from None
    for columns in buckets.values():
        columns.freeze()
    return buckets, parser.label_table


# --- the index -----------------------------------------------------------------------

class UsageIndex:
    """The records of a set of files, by (metric, scope), sorted by time.

    :param parsed_files: the results of :func:`parse_file`, in file order
    """

    def __init__(self, parsed_files):
        #: every label set, records refer to them by position
        self.labels = []
        parts = {}
        for buckets, label_table in parsed_files:
            offset = len(self.labels)
            self.labels.extend(label_table)
            for key, columns in buckets.items():
                parts.setdefault(key, []).append((columns, offset))
        with _perf.gc_paused():
            self.buckets = {key: _Columns.merge(p) for key, p in parts.items()}
        scopes = {}
        for metric, scope in self.buckets:
            scopes.setdefault(metric, []).append(scope)
        #: metric -> sorted scope ids that have records of it
        self.scopes = {metric: sorted(s) for metric, s in scopes.items()}

    def records(self, metric, scope, start_ts, end_ts):
        """``(qtys, label ids)`` of ``metric`` and ``scope``, start <= ts < end.

        A label id is a position in :attr:`labels`.
        """
        columns = self.buckets.get((metric, scope))
        if columns is None:
            return (), ()
        low = bisect.bisect_left(columns.times, start_ts)
        high = bisect.bisect_left(columns.times, end_ts, low)
        return columns.qtys[low:high], columns.labels[low:high]


# One cache per process, shared by every FileCollector (the processor may
# build several): path -> ((mtime_ns, size), parsed buckets or error).
_FILES = {}
# usage_path -> (signature of its files, UsageIndex or error)
_INDEXES = {}
_LOCK = threading.Lock()


def _list_files(usage_path):
    try:
        info = os.stat(usage_path)
    except OSError as exc:
        raise UsageFileError(f'usage_path {usage_path!r}: '
                             f'{exc.strerror or exc}') from None
    if not os.path.isdir(usage_path):
        return [(usage_path, info.st_mtime_ns, info.st_size)]
    found = []
    for root, dirs, files in os.walk(usage_path):
        dirs[:] = [d for d in dirs if not d.startswith('.')]
        for name in files:
            if name.startswith('.') or not name.lower().endswith(SUFFIXES):
                continue
            path = os.path.join(root, name)
            try:
                stat = os.stat(path)
            except OSError:  # removed while listing
                continue
            found.append((path, stat.st_mtime_ns, stat.st_size))
    found.sort()
    return found


def _parsed(path, signature):
    cached = _FILES.get(path)
    if cached is None or cached[0] != signature:
        try:
            result = parse_file(path)
        except UsageFileError as exc:
            result = exc
        cached = _FILES[path] = (signature, result)
    return cached[1]


def load_index(usage_path):
    """Return the :class:`UsageIndex` of ``usage_path``, from cache if fresh.

    Only the files whose modification time or size changed are read again.

    :raises UsageFileError: missing path, unreadable file or bad record
    """
    with _LOCK:
        files = _list_files(usage_path)
        signature = tuple(files)
        cached = _INDEXES.get(usage_path)
        if cached is None or cached[0] != signature:
            parsed = [_parsed(path, (mtime_ns, size))
                      for path, mtime_ns, size in files]
            errors = [r for r in parsed if isinstance(r, UsageFileError)]
            listed = {path for path, _, _ in files}
            prefix = os.path.join(usage_path, '')
            for path in [p for p in _FILES if p not in listed and
                         (p == usage_path or p.startswith(prefix))]:
                del _FILES[path]
            cached = _INDEXES[usage_path] = (
                signature, errors[0] if errors else UsageIndex(parsed))
    if isinstance(cached[1], UsageFileError):
        raise cached[1]
    return cached[1]


# --- the collector --------------------------------------------------------------------

#: ``_new_tuple(DataPoint, fields)``: a point from six fields that already
#: have their final types, without DataPoint's conversions.
_new_tuple = tuple.__new__


def _aggregate_sum(state, qty):
    state[0] = quantity.EXACT.add(state[0], qty)


def _aggregate_max(state, qty):
    if qty > state[0]:
        state[0] = qty


def _aggregate_min(state, qty):
    if qty < state[0]:
        state[0] = qty


def _aggregate_last(state, qty):
    state[0] = qty


_AGGREGATORS = {
    'sum': _aggregate_sum,
    'avg': _aggregate_sum,
    'mean': _aggregate_sum,
    'max': _aggregate_max,
    'min': _aggregate_min,
    'last': _aggregate_last,
}


def _aggregate(method, qtys, gids, label_ids):
    """Aggregate records by group: ``(qtys, group ids, label ids)``, one
    each per group, in the order of the groups' first records.

    ``qtys``, ``gids`` and ``label_ids`` are parallel, in time order; a
    group's label id is its latest record's (its metadata's source).
    """
    if len(set(gids)) == len(gids):  # a record a group: nothing to do
        return qtys, gids, label_ids
    add = _AGGREGATORS[method]
    groups = {}
    for qty, gid, label_id in zip(qtys, gids, label_ids):
        state = groups.get(gid)
        if state is None:
            groups[gid] = [qty, 1, label_id]
        else:
            add(state, qty)
            state[1] += 1
            state[2] = label_id
    averaged = method in ('avg', 'mean')
    qtys = [quantity.ROUNDED.divide(qty, decimal.Decimal(count))
            if averaged and count > 1 else qty
            for qty, count, _ in groups.values()]
    return qtys, list(groups), [state[2] for state in groups.values()]


class _MetricView:
    """How metrics label their points, memoised over one index: the
    metrics that have the same groupby and metadata keys share one.

    Each label set of the index is read once: its *group* (the values of
    the metric's groupby keys other than the scope key, numbered once per
    distinct tuple) and its metadata mapping. :meth:`groupbys` builds the
    groupby mapping of a group once per scope and day, the time keys
    changing at most daily, and the points of that day share it (it is
    read-only): only the last day collected of each scope is kept.

    Several threads may use it at once: the numbering of new label sets
    is done under a lock.
    """

    def __init__(self, index, group_keys, meta_keys, scope_key):
        self.index = index
        self._group_keys = group_keys
        self._meta_keys = meta_keys
        self._scope_key = scope_key
        #: label id -> metadata mapping
        self.metadata_of = {}
        self._gid_of = {}     # label id -> group id
        self._keys = []       # group id -> group key (label values)
        self._gids = {}       # group key -> group id
        self._groupbys = {}   # scope -> (time keys, {group id: groupby})
        self._lock = threading.Lock()

    def gids(self, label_ids):
        """The group id of each of ``label_ids``, a list."""
        gid_of = self._gid_of
        try:
            return list(map(gid_of.__getitem__, label_ids))
        except KeyError:
            pass
        table = self.index.labels
        with self._lock:
            for label_id in set(label_ids).difference(gid_of):
                labels = table[label_id]
                key = tuple(labels.get(k, '') for k in self._group_keys)
                gid = self._gids.get(key)
                if gid is None:
                    gid = self._gids[key] = len(self._keys)
                    self._keys.append(key)
                self.metadata_of[label_id] = types.MappingProxyType(
                    {k: labels.get(k, '') for k in self._meta_keys})
                gid_of[label_id] = gid  # last: published when complete
        return list(map(gid_of.__getitem__, label_ids))

    def groupbys(self, scope, time_keys, gids):
        """The groupby mapping of each of ``gids`` in ``scope``, with
        ``time_keys`` (``{}``: none), a list."""
        cached = self._groupbys.get(scope)
        if cached is None or cached[0] != time_keys:
            cached = self._groupbys[scope] = (time_keys, {})
        memo = cached[1]
        try:
            return list(map(memo.__getitem__, gids))
        except KeyError:
            pass
        for gid in set(gids).difference(memo):
            groupby = dict(zip(self._group_keys, self._keys[gid]))
            groupby[self._scope_key] = scope
            groupby.update(time_keys)
            memo[gid] = types.MappingProxyType(groupby)
        return list(map(memo.__getitem__, gids))


class FileCollector(collector.BaseCollector):
    """Collect usage from ``[collector_file] usage_path`` (no server).

    Each point is built once, finished: :meth:`retrieve` and
    :meth:`retrieve_many` aggregate, convert and label in one step (the
    base class builds ``fetch_all``'s points, then finished copies) and
    return what the base class would.
    """

    collector_name = 'file'

    #: One index answers for every scope: :meth:`retrieve_many` reads the
    #: records of each scope asked for in one call.
    grouped_collection = True

    #: Seconds during which a fetch trusts the index without looking at the
    #: files again (a stat of every file per fetch adds up over millions).
    refresh_interval = 1.0

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.usage_path = kwargs.get('usage_path') or \
            self.oslo_conf.collector_file.usage_path
        self._index = None
        self._index_checked = None
        self._views = {}

    @staticmethod
    def check_configuration(conf, context=None):
        conf = collector.BaseCollector.check_configuration(conf, context)
        output = metrics_conf.check_extra_args(conf, FILE_EXTRA_SCHEMA)
        for metric in output.values():
            metric['extra_args'].setdefault('aggregation_method', 'sum')
        return output

    def index(self):
        """The :class:`UsageIndex` of the usage files, reloaded if changed.

        :raises UsageFileError: see :func:`load_index`
        """
        now = time.monotonic()
        if self._index is None or \
                now - self._index_checked >= self.refresh_interval:
            self._index = load_index(self.usage_path)
            self._index_checked = now
        return self._index

    def fetch_all(self, metric_name, start, end, project_id=None,
                  q_filter=None):
        """Aggregated usage of one metric; every scope if ``project_id`` is None.

        Quantities are returned as collected (aggregated); ``retrieve``
        converts them. Each point's groupby holds the scope key.
        """
        by_scope = self._collect(
            metric_name, self.conf[metric_name], start, end, project_id,
            None if project_id is None else [project_id], q_filter, False)
        return list(itertools.chain.from_iterable(by_scope.values()))

    def retrieve(self, metric_name, start, end, project_id=None,
                 q_filter=None):
        """:meth:`BaseCollector.retrieve`'s answer, each point built once."""
        metric = self._metric(metric_name, project_id)
        alt_name = metric.get('alt_name', metric_name)
        by_scope = self._collect(
            metric_name, metric, start, end, project_id,
            None if project_id is None else [project_id], q_filter, True)
        points = list(itertools.chain.from_iterable(by_scope.values()))
        if not points:
            raise collector.NoDataCollected(self.collector_name, alt_name,
                                            project_id)
        return alt_name, points

    def retrieve_many(self, metric_name, start, end, scope_ids,
                      q_filter=None):
        """:meth:`BaseCollector.retrieve_many`'s answer (grouped: a scope
        key in ``q_filter`` is replaced by ``scope_ids``), from one read
        of the index, each point built once."""
        scope_ids = list(dict.fromkeys(scope_ids))
        if not scope_ids:
            return {}
        metric = self._metric(metric_name, None)
        alt_name = metric.get('alt_name', metric_name)
        q_filter = {key: value for key, value in (q_filter or {}).items()
                    if key != self.scope_key}
        by_scope = self._collect(metric_name, metric, start, end, None,
                                 scope_ids, q_filter, True)
        return {scope_id: (alt_name, points)
                for scope_id, points in by_scope.items()}

    def _collect(self, metric_name, metric, start, end, project_id, scopes,
                 q_filter, finish):
        """``{scope id: [DataPoint]}`` of one metric in ``[start, end)``,
        the scopes without usage left out.

        :param project_id: the scope named in a :class:`CollectError`
        :param scopes: the scope ids to read, in order; ``None``: every
            scope with records of the metric, sorted. A scope key in
            ``q_filter`` narrows them, its other keys the records.
        :param finish: ``False``: points as :meth:`fetch_all` returns
            them; ``True``: as :meth:`retrieve` does (converted, with the
            time keys of ``start`` and the metric's description)
        :raises CollectError: the usage files cannot be read, or
            ``q_filter`` holds a value no label can have
        """
        try:
            index = self.index()
            wanted, match = _split_filter(q_filter, self.scope_key)
        except (UsageFileError, _BadRecord) as exc:
            raise collector.CollectError(self.collector_name, metric_name,
                                         project_id, str(exc)) from None
        source = metrics_conf.source_metric_name(metric_name)
        if scopes is None:
            scopes = index.scopes.get(source, ())
        if wanted is not None:
            scopes = [scope for scope in scopes if scope in wanted]
        start_ts = timeutils.parse(start).timestamp()
        end_ts = timeutils.parse(end).timestamp()
        view = self._label_view(metric, index)
        transform, time_keys, description = None, {}, None
        if finish:
            transform = self._transform(metric_name)
            if transform is dataframe.to_decimal:  # the qtys are Decimals
                transform = None
            time_keys = quantity.time_keys(start)
            description = metric.get('description')
        method = metric['extra_args'].get('aggregation_method', 'sum')
        unit, price = itertools.repeat(metric['unit']), \
            itertools.repeat(dataframe.NO_PRICE)
        description = itertools.repeat(description)
        output = {}
        # Many containers, all outliving the loop: collections while it
        # runs would only scan them again and again.
        with _perf.gc_paused():
            for scope in scopes:
                qtys, label_ids = index.records(source, scope, start_ts,
                                                end_ts)
                if match is not None and qtys:
                    kept = [i for i, label_id in enumerate(label_ids)
                            if match(index.labels[label_id])]
                    qtys = [qtys[i] for i in kept]
                    label_ids = [label_ids[i] for i in kept]
                if not qtys:
                    continue
                qtys, gids, label_ids = _aggregate(
                    method, qtys, view.gids(label_ids), label_ids)
                if transform is not None:
                    qtys = map(transform, qtys)
                output[scope] = list(map(
                    _new_tuple, itertools.repeat(dataframe.DataPoint),
                    zip(unit, qtys, price, view.groupbys(scope, time_keys, gids),
                        map(view.metadata_of.__getitem__, label_ids),
                        description)))
        return output

    def _label_view(self, metric, index):
        """The :class:`_MetricView` of ``metric`` over ``index``, shared
        by the metrics with the same groupby and metadata keys."""
        keys = (tuple(k for k in metric['groupby'] if k != self.scope_key),
                tuple(metric['metadata']))
        view = self._views.get(keys)
        if view is None or view.index is not index:
            view = self._views[keys] = _MetricView(index, *keys,
                                                   self.scope_key)
        return view


def _split_filter(q_filter, scope_key):
    """``(scope ids or None, f(labels) -> bool or None)`` of ``q_filter``
    ({label: value or [values]}): the scope key's values, and a test of
    the other labels; ``None``: no condition.

    :raises _BadRecord: a value no label can have (a list, a dict...)
    """
    if not q_filter:
        return None, None
    scopes, wanted = None, {}
    for key, value in q_filter.items():
        values = value if isinstance(value, (list, tuple, set, frozenset)) \
            else [value]
        values = {v if isinstance(v, str) else _label_value(key, v)
                  for v in values}
        if key == scope_key:
            scopes = values
        else:
            wanted[key] = values
    if not wanted:
        return scopes, None
    return scopes, lambda labels: all(labels.get(k, '') in v
                                      for k, v in wanted.items())
