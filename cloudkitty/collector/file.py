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

import bisect
import csv
import datetime
import decimal
import io
import json
import math
import operator
import os
import threading
import time
import types

import voluptuous

from cloudkitty import collector
from cloudkitty import dataframe

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
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


class UsageFileError(Exception):
    """A usage file is unreadable or holds a malformed record."""


class _BadRecord(Exception):
    pass


# --- parsing ---------------------------------------------------------------------

class _Parser:
    """Turns raw record fields into ``(metric, scope, ts, qty, labels)``.

    Timestamps, quantities and label sets repeat a lot in usage exports
    (the same resource every hour), so each is converted once and shared.
    """

    def __init__(self):
        self._times = {}
        self._qtys = {}
        self._labels = {}

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
                moment = dataframe.parse_datetime(text)
            except ValueError:
                raise _BadRecord(f'"{name}" is not an ISO 8601 date: '
                                 f'{text!r}') from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=datetime.timezone.utc)
        return moment.timestamp()

    def qty(self, value):
        if value.__class__ is bool:  # before the cache: True == 1
            raise _BadRecord(f'"qty" must be a number, got {value!r}')
        try:
            return self._qtys[value]
        except KeyError:
            pass
        except TypeError:
            raise _BadRecord(f'"qty" must be a number, got {value!r}') from None
        try:
            qty = dataframe.to_decimal(value.strip() if isinstance(value, str)
                                       else value)
        except ValueError:
            raise _BadRecord(f'"qty" must be a number, got {value!r}') from None
        if len(self._qtys) < 100000:
            self._qtys[value] = qty
        return qty

    def labels(self, items):
        """Intern a label set given as a tuple of ``(key, value)`` pairs."""
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
        labels = self._labels[items] = types.MappingProxyType(dict(items))
        return labels

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


def _parse_jsonl(path, text, parser, sink):
    lines = text.splitlines()
    numbered = [(n, line) for n, line in enumerate(lines, 1) if line.strip()]
    objects = None
    try:
        # One json call for the whole file is much faster than one a line;
        # when it fails, the line-by-line pass below finds the culprit.
        objects = json.loads('[' + ','.join(l for _, l in numbered) + ']',
                             parse_float=decimal.Decimal)
        if len(objects) != len(numbered):
            objects = None
    except ValueError:
        objects = None
    for index, (lineno, line) in enumerate(numbered):
        try:
            if objects is None:
                try:
                    obj = json.loads(line, parse_float=decimal.Decimal)
                except ValueError as exc:
                    raise _BadRecord(f'invalid JSON: {exc}') from None
            else:
                obj = objects[index]
            if not isinstance(obj, dict):
                raise _BadRecord('a record must be a JSON object')
            if not _JSONL_KEYS.issuperset(obj):
                unknown = sorted(set(obj) - _JSONL_KEYS)
                raise _BadRecord(f'unknown key(s) {", ".join(unknown)} '
                                 '(labels go in "labels")')
            if 'qty' not in obj:
                raise _BadRecord('missing "qty"')
            labels = obj.get('labels')
            if labels is None:
                labels = {}
            elif not isinstance(labels, dict):
                raise _BadRecord('"labels" must be an object')
            sink(parser.record(obj.get('metric'), obj.get('scope'),
                               obj.get('time'), obj.get('begin'),
                               obj.get('end'), obj['qty'],
                               tuple(labels.items())))
        except _BadRecord as exc:
            raise UsageFileError(f'{path}:{lineno}: {exc}') from None


def _parse_csv(path, text, parser, sink):
    reader = csv.reader(io.StringIO(text))
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        return
    missing = [n for n in ('metric', 'scope', 'qty') if n not in header]
    if 'time' not in header and 'begin' not in header:
        missing.append('time or begin')
    if missing:
        raise UsageFileError(f'{path}:1: header lacks column(s) '
                             f'{", ".join(missing)}')
    if len(set(header)) != len(header):
        raise UsageFileError(f'{path}:1: duplicate column names')
    column = {name: i for i, name in enumerate(header)}
    label_cols = [i for i, name in enumerate(header) if name not in _RESERVED]
    label_names = [header[i] for i in label_cols]

    def field(name):
        index = column.get(name)
        return (lambda row: None) if index is None \
            else operator.itemgetter(index)

    get_metric, get_scope, get_qty = field('metric'), field('scope'), \
        field('qty')
    get_time, get_begin, get_end = field('time'), field('begin'), field('end')
    width = len(header)
    for row in reader:
        lineno = reader.line_num
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        try:
            if len(row) != width:
                raise _BadRecord(f'{len(row)} fields, the header has {width}')
            sink(parser.record(
                get_metric(row), get_scope(row), get_time(row),
                get_begin(row), get_end(row), get_qty(row),
                tuple(zip(label_names, [row[i] for i in label_cols]))))
        except _BadRecord as exc:
            raise UsageFileError(f'{path}:{lineno}: {exc}') from None


def parse_file(path, parser=None):
    """Parse one usage file.

    :returns: ``{(metric, scope): [(ts, qty, labels)]}`` in file order, ``ts``
        being Unix seconds and ``labels`` a read-only mapping
    :raises UsageFileError: naming the file and the line
    """
    parser = parser or _Parser()
    buckets = {}

    def sink(record):
        metric, scope, ts, qty, labels = record
        key = (metric, scope)
        bucket = buckets.get(key)
        if bucket is None:
            bucket = buckets[key] = []
        bucket.append((ts, qty, labels))

    try:
        with open(path, encoding='utf-8-sig', newline='') as stream:
            text = stream.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageFileError(f'{path}: cannot read: {exc}') from None
    if path.lower().endswith('.csv'):
        _parse_csv(path, text, parser, sink)
    else:
        _parse_jsonl(path, text, parser, sink)
    return buckets


# --- the index -----------------------------------------------------------------------

class _Bucket:
    __slots__ = ('times', 'records')

    def __init__(self, records):
        records.sort(key=operator.itemgetter(0))  # stable: file order on ties
        self.records = records
        self.times = [r[0] for r in records]


class UsageIndex:
    """The records of a set of files, by (metric, scope), sorted by time."""

    def __init__(self, parsed_files):
        merged = {}
        for parsed in parsed_files:
            for key, records in parsed.items():
                merged.setdefault(key, []).extend(records)
        self.buckets = {key: _Bucket(records)
                        for key, records in merged.items()}
        scopes = {}
        for metric, scope in self.buckets:
            scopes.setdefault(metric, []).append(scope)
        self.scopes = {metric: sorted(s) for metric, s in scopes.items()}

    def records(self, metric, scope, start_ts, end_ts):
        """Records of ``metric`` and ``scope`` with start <= ts < end."""
        bucket = self.buckets.get((metric, scope))
        if bucket is None:
            return ()
        low = bisect.bisect_left(bucket.times, start_ts)
        high = bisect.bisect_left(bucket.times, end_ts, low)
        return bucket.records[low:high]


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

    :raises UsageFileError: missing path, unreadable file or bad record
    """
    with _LOCK:
        files = _list_files(usage_path)
        signature = tuple(files)
        cached = _INDEXES.get(usage_path)
        if cached is None or cached[0] != signature:
            parsed = []
            error = None
            for path, mtime_ns, size in files:
                result = _parsed(path, (mtime_ns, size))
                if isinstance(result, UsageFileError):
                    error = error or result
                parsed.append(result)
            listed = {path for path, _, _ in files}
            for path in [p for p in _FILES if p not in listed and
                         (p == usage_path or p.startswith(
                             os.path.join(usage_path, '')))]:
                del _FILES[path]
            cached = _INDEXES[usage_path] = (
                signature, error if error else UsageIndex(parsed))
    if isinstance(cached[1], UsageFileError):
        raise cached[1]
    return cached[1]


# --- the collector --------------------------------------------------------------------

_ZERO = decimal.Decimal(0)


def _aggregate_sum(state, qty):
    state[0] = collector._EXACT.add(state[0], qty)


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


class FileCollector(collector.BaseCollector):
    """Collect usage from ``[collector_file] usage_path`` (no server)."""

    collector_name = 'file'

    #: Seconds during which a fetch trusts the index without looking at the
    #: files again (a stat of every file per fetch adds up over millions).
    refresh_interval = 1.0

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.usage_path = kwargs.get('usage_path') or \
            self.oslo_conf.collector_file.usage_path
        self._index = None
        self._index_checked = None

    @staticmethod
    def check_configuration(conf):
        conf = collector.BaseCollector.check_configuration(conf)
        schema = voluptuous.Schema(collector.METRIC_BASE_SCHEMA).extend(
            FILE_EXTRA_SCHEMA)
        output = {}
        for key, metric in conf.items():
            try:
                output[key] = schema(metric)
            except voluptuous.Invalid as exc:
                raise collector.InvalidConfiguration(
                    f"metric '{key}': {collector._describe(exc)}",
                    metric=key, key=collector._first_key(exc)) from None
            output[key]['extra_args'].setdefault('aggregation_method', 'sum')
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
        try:
            index = self.index()
        except UsageFileError as exc:
            raise collector.CollectError(self.collector_name, metric_name,
                                         project_id, str(exc)) from None
        metric = self.conf[metric_name]
        source = collector.source_metric_name(metric_name)
        if project_id is None:
            scopes = index.scopes.get(source, ())
        else:
            scopes = (project_id,)
        start_ts = start.timestamp() if start.tzinfo else \
            (start.replace(tzinfo=datetime.timezone.utc)).timestamp()
        end_ts = end.timestamp() if end.tzinfo else \
            (end.replace(tzinfo=datetime.timezone.utc)).timestamp()
        points = []
        for scope in scopes:
            records = index.records(source, scope, start_ts, end_ts)
            if records:
                points.extend(self._aggregate(metric, scope, records,
                                              q_filter))
        return points

    def _aggregate(self, metric, scope, records, q_filter):
        scope_key = self.scope_key
        group_keys = [k for k in metric['groupby'] if k != scope_key]
        meta_keys = metric['metadata']
        method = metric['extra_args'].get('aggregation_method', 'sum')
        add = _AGGREGATORS[method]
        match = _matcher(q_filter, scope_key, scope)
        keys_of = {}  # id(labels) -> group key; label sets are interned
        groups = {}
        for _, qty, labels in records:
            if match is not None and not match(labels):
                continue
            group_key = keys_of.get(id(labels))
            if group_key is None:
                group_key = keys_of[id(labels)] = tuple(
                    labels.get(k, '') for k in group_keys)
            state = groups.get(group_key)
            if state is None:
                groups[group_key] = [qty, 1, labels]
            else:
                add(state, qty)
                state[1] += 1
                state[2] = labels
        unit = metric['unit']
        points = []
        for group_key, (qty, count, labels) in groups.items():
            if method in ('avg', 'mean') and count > 1:
                qty = collector._ROUNDED.divide(qty, decimal.Decimal(count))
            groupby = dict(zip(group_keys, group_key))
            groupby[scope_key] = scope
            metadata = {k: labels.get(k, '') for k in meta_keys}
            points.append(dataframe.DataPoint(unit, qty, _ZERO, groupby,
                                              metadata))
        return points


def _matcher(q_filter, scope_key, scope):
    """``f(labels) -> bool`` for ``q_filter`` ({label: value or [values]})."""
    if not q_filter:
        return None
    wanted = {}
    for key, value in q_filter.items():
        values = value if isinstance(value, (list, tuple, set, frozenset)) \
            else [value]
        values = {v if isinstance(v, str) else _label_value(key, v)
                  for v in values}
        if key == scope_key:
            if scope not in values:
                return lambda labels: False
            continue
        wanted[key] = values
    if not wanted:
        return None
    return lambda labels: all(labels.get(k, '') in v
                              for k, v in wanted.items())
