"""Upstream's rated data in InfluxDB 1.x, read through its HTTP API.

Upstream's ``influxdb`` storage writes one InfluxDB point per rated point
in measurement ``dataframes``: its time is the start of the period, its
tags the point's ``groupby`` and ``type``, its fields the ``metadata``,
``qty`` and ``price`` (floats), ``unit``, ``description``, ``groupby`` and
``metadata`` (the keys of each, joined by ``|``) and
``__ck_collect_period`` (the period in seconds). This module reads them
back with ``SELECT * ... GROUP BY *`` and sums them with
``SUM(qty), SUM(price) ... GROUP BY type, <scope key>``.
"""

import datetime
import functools
import json
import types
import urllib.error
import urllib.parse
import urllib.request

from cloudkitty import dataframe
from cloudkitty import importer

_UTC = datetime.timezone.utc
_PERIOD_FIELD = '__ck_collect_period'


class InfluxSource(importer.RatedSource):
    """Measurement ``dataframes`` of database ``database`` at ``url``
    (``http://host:8086``; credentials as ``user:password@`` in the URL).

    :param scope_key: the tag holding the scope id (``project_id``).
    :param period: the period of points without ``__ck_collect_period``
        (upstream's ``[collect] period``).
    :param timeout: seconds to wait for each answer.
    """

    #: Upstream sums floats: each price is within half an ulp of its
    #: decimal, and a float sum of n terms within (n - 1) ulps; 1e-9
    #: covers a scope's month of up to ~9 million points (see the docs).
    tolerance = 1e-9

    def __init__(self, url, database, scope_key='project_id', period=3600,
                 timeout=300):
        parts = urllib.parse.urlsplit(url)
        self._base = f'{parts.scheme}://{parts.hostname}:{parts.port or 8086}'
        self._auth = {}
        if parts.username:
            self._auth = {'u': urllib.parse.unquote(parts.username),
                          'p': urllib.parse.unquote(parts.password or '')}
        self.database = database
        self.scope_key = scope_key
        self.period = period
        self.timeout = timeout

    def __str__(self):
        return f'InfluxDB {self._base} database {self.database}'

    def _query(self, query):
        """Yield each result of ``query`` (one per statement) as
        InfluxDB's JSON answers it."""
        params = {'db': self.database, 'q': query, 'epoch': 's',
                  **self._auth}
        request = urllib.request.Request(
            f'{self._base}/query?{urllib.parse.urlencode(params)}')
        try:
            with urllib.request.urlopen(request,
                                        timeout=self.timeout) as answer:
                results = json.load(answer)['results']
        except (urllib.error.URLError, OSError) as exc:
            raise importer.ImportFailed(f'{self}: {exc}') from None
        for result in results:
            if 'error' in result:
                raise importer.ImportFailed(
                    f'{self}: {result["error"]} ({query})')
            yield result

    def _series(self, query):
        for result in self._query(query):
            for series in result.get('series', ()):
                yield series

    @staticmethod
    def _where(begin, end):
        return (f"WHERE time >= '{_iso(begin)}' AND time < '{_iso(end)}'")

    def bounds(self):
        found = []
        for function in ('FIRST', 'LAST'):
            for series in self._series(
                    f'SELECT {function}(qty) FROM "dataframes"'):
                found.append(_time(series['values'][0][0]))
        return (found[0], found[1]) if found else None

    def count(self, begin, end):
        return sum(series['values'][0][1] for series in self._series(
            f'SELECT COUNT(qty) FROM "dataframes" {self._where(begin, end)}'))

    def frames(self, begin, end):
        frames = {}
        periods = {}
        # GROUP BY *: one series per tag set, the tags given once per
        # series; three times faster than InfluxDB merging every series
        # into one time-ordered answer.
        for series in self._series(
                f'SELECT * FROM "dataframes" {self._where(begin, end)} '
                f'GROUP BY *'):
            if series.get('partial'):
                raise importer.ImportFailed(
                    f'{self}: the answer for [{_iso(begin)}, {_iso(end)}) '
                    f'was cut by [http] max-row-limit: lower --chunk-hours '
                    f'or raise the limit')
            columns = series['columns']
            tags = series.get('tags') or {}
            # A resource's labels repeat period after period: one frozen
            # copy of each, shared by its points.
            labels = {}
            for values in series['values']:
                row = dict(zip(columns, values), **tags)
                period = periods.get((row['time'], row.get(_PERIOD_FIELD)))
                if period is None:
                    start = _time(row['time'])
                    period = periods[(row['time'], row.get(_PERIOD_FIELD))] = (
                        start, start + datetime.timedelta(
                            seconds=row.get(_PERIOD_FIELD) or self.period))
                frame = frames.get(period)
                if frame is None:
                    frame = frames[period] = dataframe.DataFrame(*period)
                frame.add_point(_point(row, labels), row['type'])
        return [frames[key] for key in sorted(frames)]

    def totals(self, begin, end):
        sums = {}
        for series in self._series(
                f'SELECT SUM(qty), SUM(price) FROM "dataframes" '
                f'{self._where(begin, end)} '
                f'GROUP BY "type", "{self.scope_key}"'):
            tags = series.get('tags') or {}
            _, qty, price = series['values'][0]
            sums[(tags.get(self.scope_key) or None, tags['type'])] = (
                dataframe.to_decimal(qty), dataframe.to_decimal(price))
        return sums


@functools.lru_cache(maxsize=1024)
def _keys(text):
    return tuple(key for key in (text or '').split('|') if key)


def _point(row, labels):
    """A DataPoint from a row of ``SELECT *``, as upstream's storage
    rebuilds it (a key without value reads ``''``); ``labels`` caches the
    frozen groupby and metadata by their keys and values."""
    signature = tuple((key, row.get(key)) for key in _keys(
        row.get('groupby'))), tuple((key, row.get(key)) for key in _keys(
            row.get('metadata')))
    frozen = labels.get(signature)
    if frozen is None:
        frozen = labels[signature] = tuple(
            types.MappingProxyType({key: _value(value)
                                    for key, value in pairs})
            for pairs in signature)
    return dataframe.DataPoint(row.get('unit'), row['qty'], row['price'],
                               *frozen, row.get('description'))


def _value(value):
    return '' if value is None else value


def _iso(moment):
    return moment.astimezone(_UTC).strftime('%Y-%m-%dT%H:%M:%SZ')


def _time(epoch_seconds):
    return datetime.datetime.fromtimestamp(epoch_seconds, _UTC)
