"""The ``gnocchi`` collector: Gnocchi's aggregates API, grouped by resource
attributes.

The usage of metric ``M`` (the source metric name of a metrics.yml key) in
the period ``[start, end)`` is one call of the aggregates API on the
resources of ``extra_args.resource_type`` whose ``type`` is that type and
whose ``[collect] scope_key`` attribute is the scope, with the operation::

    (aggregate RE_AGGREGATION_METHOD (metric M AGGREGATION_METHOD))

(or ``extra_args.custom_query``, whose words ``RE_AGGREGATION_METHOD``,
``AGGREGATION_METHOD`` and ``METRIC_NAME`` are replaced by the metric's
values), grouped by the metric's ``groupby`` (which always holds the scope
key and ``extra_args.resource_key``), at the granularity
``extra_args.force_granularity`` (0: every granularity, and the finest one
is used). With ``use_all_resource_revisions`` (the default) Gnocchi groups
each revision of a resource by the attributes it had, over the part of the
period it was current: a resource whose grouped attributes changed in the
period gives one point per set of values. Without it, resources are grouped
by their current attributes.

The quantity of a group is its value at the group's first timestamp in
``[start, end)``, as upstream reads it: with ``force_granularity`` equal to
the collect period (the default 3600) the only one. With a ``rate:``
re-aggregation, the query starts one granularity earlier so that the
first rate falls at ``start`` (the difference with the point before it);
with ``force_granularity: 0`` one collect period earlier, which reaches
the point before ``start`` of any granularity up to the period. A
resource without a point before the period has no rate in it. Quantities
are read as :class:`~decimal.Decimal` through the ``str`` of the JSON
numbers.

Gnocchi 4.7's grouping of revisions has two limits worth knowing: it
keeps one resource of a group whose resources' revisions start together
(several resources per group, e.g. a ``resource_key`` other than ``id``),
and without a granularity it adds up the values of the granularities
sharing a timestamp. With such a ``resource_key``, or
``force_granularity: 0``, set ``use_all_resource_revisions: false``.
Its ``count`` re-aggregation answers HTTP 500 without revisions (it cannot
serialise numpy's integers): the operation multiplies a ``count`` or
``rate:count`` re-aggregation by 1.0, which makes them floats.

A grouped attribute or metadata a resource lacks is ``""``. Metadata are
the attributes of the resources found (their current revision), matched
on ``resource_key``; a group whose resource is not found is dropped with
a warning. A scope in which no resource has the metric has no data.

Collection is grouped (:attr:`GnocchiCollector.grouped_collection`): a
``q_filter`` maps attributes to a value or a list of values.
"""

import datetime
import logging
import re
import types

import voluptuous

from cloudkitty import collector
from cloudkitty.collector import metrics_conf
from cloudkitty import dataframe
from cloudkitty import gnocchi_client

LOG = logging.getLogger(__name__)

_BASIC_METHODS = ('count', 'first', 'last', 'max', 'mean', 'median', 'min',
                  'std', 'sum')
#: Methods an archive policy can store: the basic ones and percentiles
#: (``1pct`` to ``99pct``), each also as ``rate:<method>``.
AGGREGATION_METHODS = _BASIC_METHODS + tuple(
    f'{n}pct' for n in range(1, 100))
#: Methods of Gnocchi's ``aggregate`` operation, each also as
#: ``rate:<method>``.
RE_AGGREGATION_METHODS = ('count', 'max', 'mean', 'median', 'min', 'std',
                          'sum', 'var')

#: Re-aggregations whose values Gnocchi computes as numpy integers.
_INTEGER_RE_AGGREGATIONS = ('count', 'rate:count')

#: Placeholders of ``custom_query``, longest first (one contains another).
QUERY_PLACEHOLDERS = ('RE_AGGREGATION_METHOD', 'AGGREGATION_METHOD',
                      'METRIC_NAME')

_PLACEHOLDER_RE = re.compile('|'.join(QUERY_PLACEHOLDERS))


def _method(methods, description):
    """voluptuous validator: one of ``methods``, maybe ``rate:``-prefixed."""
    allowed = frozenset(methods) | {f'rate:{m}' for m in methods}

    def validate(value):
        if value in allowed:
            return value
        raise voluptuous.Invalid(
            f'expected {description}, optionally prefixed by "rate:", got '
            f'{value!r}')
    return validate


def _granularity(value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise voluptuous.Invalid(
            f'expected a number of seconds >= 0 (0: the finest), got '
            f'{value!r}')
    return value


GNOCCHI_EXTRA_SCHEMA = {
    voluptuous.Required('extra_args'): {
        voluptuous.Required('resource_type'): metrics_conf.non_empty_str,
        # Gnocchi groups metrics by resource: the attribute that identifies
        # one, always grouped by.
        voluptuous.Required('resource_key', default='id'):
            metrics_conf.non_empty_str,
        voluptuous.Required('aggregation_method', default='max'): _method(
            AGGREGATION_METHODS,
            f'one of {", ".join(_BASIC_METHODS)} or a percentile 1pct to '
            '99pct'),
        voluptuous.Required('re_aggregation_method', default='max'): _method(
            RE_AGGREGATION_METHODS,
            f'one of {", ".join(RE_AGGREGATION_METHODS)}'),
        voluptuous.Required('force_granularity', default=3600): _granularity,
        voluptuous.Required('use_all_resource_revisions', default=True):
            bool,
        voluptuous.Required('custom_query', default=''): str,
    },
}


def operation(metric_name, extra_args):
    """The aggregates operation of a metric: a list, or the custom query's
    text with its placeholders replaced."""
    if extra_args['custom_query']:
        values = {
            'RE_AGGREGATION_METHOD': extra_args['re_aggregation_method'],
            'AGGREGATION_METHOD': extra_args['aggregation_method'],
            'METRIC_NAME': metric_name,
        }
        return _PLACEHOLDER_RE.sub(lambda match: values[match.group(0)],
                                   extra_args['custom_query'])
    re_aggregation = extra_args['re_aggregation_method']
    aggregate = ['aggregate', re_aggregation,
                 ['metric', metric_name, extra_args['aggregation_method']]]
    if re_aggregation in _INTEGER_RE_AGGREGATIONS:
        # Floats, which Gnocchi 4.7 can serialise (see the module's notes).
        return ['*', aggregate, 1.0]
    return aggregate


def search_filter(resource_type, scope_key, scope_id, q_filter):
    """The resource search of a collect: the type, the scope, ``q_filter``
    (``{attribute: value or [values]}``)."""
    conditions = [{'=': {'type': resource_type}}]
    if scope_id is not None:
        conditions.append({'=': {scope_key: scope_id}})
    for key, value in (q_filter or {}).items():
        if isinstance(value, (list, tuple, set, frozenset)):
            conditions.append({'in': {key: list(value)}})
        else:
            conditions.append({'=': {key: value}})
    return {'and': conditions}


def _text(value):
    return '' if value is None else value


def first_value(aggregated, start, end, finest_only):
    """The value of the first ``(timestamp, granularity, value)`` in
    ``[start, end)`` (of the finest granularity if ``finest_only``), or
    None."""
    inside = [m for m in aggregated if start <= m[0] < end]
    if finest_only and inside:
        finest = min(m[1] for m in inside)
        inside = [m for m in inside if m[1] == finest]
    if not inside:
        return None
    return min(inside, key=lambda m: m[0])[2]


class GnocchiCollector(collector.BaseCollector):
    """Collect usage from the Gnocchi of ``[collector_gnocchi]``.

    Keyword arguments: those of :class:`~cloudkitty.collector.BaseCollector`.

    :raises cloudkitty.gnocchi_client.GnocchiConfigError: the options
        cannot make a client
    """

    collector_name = 'gnocchi'
    grouped_collection = True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.client, self.source = gnocchi_client.build_client(
            self.oslo_conf, 'collector_gnocchi')

    @staticmethod
    def check_configuration(conf, context=None):
        """The base validation, then ``extra_args`` (see
        :data:`GNOCCHI_EXTRA_SCHEMA`); ``resource_key`` is added to
        ``groupby``."""
        conf = metrics_conf.check_extra_args(
            collector.BaseCollector.check_configuration(conf, context),
            GNOCCHI_EXTRA_SCHEMA)
        for key, metric in conf.items():
            resource_key = metric['extra_args']['resource_key']
            if resource_key in metric['metadata']:
                raise collector.InvalidConfiguration(
                    f"metric '{key}': key 'metadata': {resource_key} is the "
                    'resource_key, always grouped by', metric=key,
                    key='metadata')
            if resource_key not in metric['groupby']:
                metric['groupby'].append(resource_key)
        return conf

    def fetch_all(self, metric_name, start, end, project_id=None,
                  q_filter=None):
        """Usage of one metric in ``[start, end)``; every scope if
        ``project_id`` is None. See the module's documentation.

        :raises CollectError: Gnocchi failed, naming it
        """
        metric = self.conf[metric_name]
        extra = metric['extra_args']
        search = search_filter(extra['resource_type'], self.scope_key,
                               project_id, q_filter)
        try:
            groups = self._aggregates(metric_name, metric, start, end,
                                      search)
            resources = self._resources(metric, start, end, search) \
                if groups and metric['metadata'] else {}
        except gnocchi_client.ERRORS as exc:
            raise collector.CollectError(
                self.collector_name, metric_name, project_id,
                f'{self.source}: {gnocchi_client.describe(exc)}') from None
        finest_only = not extra['force_granularity']
        resource_key = extra['resource_key']
        points = []
        for group in groups:
            value = first_value(group['measures']['measures']['aggregated'],
                                start, end, finest_only)
            if value is None:
                continue
            groupby = {k: _text(group['group'].get(k))
                       for k in metric['groupby']}
            metadata = {}
            if metric['metadata']:
                resource = resources.get(group['group'].get(resource_key))
                if resource is None:
                    LOG.warning(
                        '%s: metric %s, scope %s: no %s resource with %s=%s '
                        'for its metadata, its usage is dropped', self.source,
                        metric_name, project_id, extra['resource_type'],
                        resource_key, group['group'].get(resource_key))
                    continue
                metadata = {k: _text(resource.get(k))
                            for k in metric['metadata']}
            points.append(dataframe.DataPoint(
                metric['unit'], value, dataframe.NO_PRICE, types.MappingProxyType(groupby),
                types.MappingProxyType(metadata)))
        return points

    def _aggregates(self, metric_name, metric, start, end, search):
        extra = metric['extra_args']
        source_name = metrics_conf.source_metric_name(metric_name)
        granularity = extra['force_granularity'] or None
        query_start = start
        if extra['re_aggregation_method'].startswith('rate:'):
            # The rate at start needs the point before it (see the module's
            # notes); with every granularity, the finest is not known here.
            query_start = start - datetime.timedelta(
                seconds=granularity or self.period)
        try:
            return self.client.aggregates.fetch(
                operation(source_name, extra), search=search,
                resource_type=extra['resource_type'], start=query_start,
                stop=end, granularity=granularity,
                groupby=metric['groupby'],
                use_history=extra['use_all_resource_revisions'])
        except gnocchi_client.MetricNotFound:
            # Gnocchi's answer when no resource searched has the metric.
            LOG.debug('%s: no %s resource of the search %s has metric %s',
                      self.source, extra['resource_type'], search,
                      source_name)
            return []

    def _resources(self, metric, start, end, search):
        """The resources alive in the period, by ``resource_key``."""
        extra = metric['extra_args']
        alive = {'and': search['and'] + [
            {'<': {'started_at': end.isoformat()}},
            {'or': [{'=': {'ended_at': None}},
                    {'>=': {'ended_at': start.isoformat()}}]},
        ]}
        resources = self.client.resource.search(
            resource_type=extra['resource_type'], query=alive, details=True)
        return {r.get(extra['resource_key']): r for r in resources}
