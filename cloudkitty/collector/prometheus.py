"""The ``prometheus`` collector: instant queries to a Prometheus server.

The usage of metric ``M`` (the source metric name of a metrics.yml key) in
the period ``[start, end)`` is the instant query, evaluated at ``end``::

    [PREFIX ]AGG([QF(]RANGE(M{<scope key>="<scope>"}[<period>s])[)])
        by (<groupby>, <metadata>)[ SUFFIX]

where ``AGG`` is ``extra_args.aggregation_method`` (default ``max``),
``RANGE`` is ``extra_args.range_function`` if set, else ``AGG_over_time``,
``QF`` the optional ``extra_args.query_function``, and ``PREFIX`` and
``SUFFIX`` the optional ``query_prefix`` and ``query_suffix``. Prometheus
2 selects the samples of ``[end - period, end]``, both ends included (the
upstream behaviour this keeps).

A label missing from a result is ``""``. A quantity is the server's
decimal text read as a :class:`~decimal.Decimal`, never through a float;
a result that is not a finite number (``NaN``, ``+Inf``, e.g. ``ln`` of 0)
is dropped, with a warning naming the metric and its labels.

Collection is grouped (:attr:`PrometheusCollector.grouped_collection`): a
``q_filter`` maps labels to a value or a list of values, and the processor
asks for all the scopes due in a period with one query whose scope matcher
is a regular expression of their ids.
"""

import decimal
import logging
import re
import types

import voluptuous

from cloudkitty import collector
from cloudkitty.collector import metrics_conf
from cloudkitty import dataframe
from cloudkitty import prometheus_client

LOG = logging.getLogger(__name__)

AGGREGATION_METHODS = ('avg', 'count', 'max', 'min', 'stddev', 'stdvar',
                       'sum')
QUERY_FUNCTIONS = ('abs', 'ceil', 'exp', 'floor', 'ln', 'log2', 'log10',
                   'round', 'sqrt')
# "irange" is no PromQL function; upstream accepts it, so metrics.yml files
# naming it stay valid, and Prometheus refuses the query (a CollectError).
RANGE_FUNCTIONS = ('changes', 'delta', 'deriv', 'idelta', 'irange', 'irate',
                   'rate')

PROMETHEUS_EXTRA_SCHEMA = {
    voluptuous.Required('extra_args', default=dict): {
        voluptuous.Required('aggregation_method', default='max'):
            metrics_conf.one_of(AGGREGATION_METHODS),
        voluptuous.Optional('query_function'):
            metrics_conf.one_of(QUERY_FUNCTIONS),
        voluptuous.Optional('range_function'):
            metrics_conf.one_of(RANGE_FUNCTIONS),
        voluptuous.Required('query_prefix', default=''): str,
        voluptuous.Required('query_suffix', default=''): str,
    },
}

# The characters a regular expression (RE2, Prometheus's) gives a meaning.
_RE2_SPECIAL = re.compile(r'([\\.+*?()|\[\]{}^$])')


def quote(value):
    """``value`` as a PromQL double-quoted string literal."""
    escaped = str(value).replace('\\', '\\\\').replace('"', '\\"')
    return '"' + escaped.replace('\n', '\\n') + '"'


def matcher(label, value):
    """The PromQL matcher of ``label`` equal to ``value`` or, for a list,
    to any of its values (a regular expression of the escaped values)."""
    if isinstance(value, (list, tuple, set, frozenset)):
        alternatives = '|'.join(_RE2_SPECIAL.sub(r'\\\1', str(v))
                                for v in value)
        return f'{label}=~{quote(alternatives)}'
    return f'{label}={quote(value)}'


def selector(metric, filters):
    """``metric{label="value", ...}`` for ``filters`` ({label: value or
    [values]}); the bare metric name without filters."""
    if not filters:
        return metric
    return metric + '{' + ', '.join(
        matcher(label, value) for label, value in filters.items()) + '}'


def build_query(metric_name, definition, filters, period):
    """The PromQL query of one metric over ``period`` seconds.

    :param metric_name: the source metric name
    :param definition: the validated metric definition
    :param filters: ``{label: value or [values]}`` the series must match
    """
    args = definition['extra_args']
    method = args['aggregation_method']
    query = f'{selector(metric_name, filters)}[{period}s]'
    range_function = args.get('range_function')
    query = f'{range_function or method + "_over_time"}({query})'
    if args.get('query_function'):
        query = f"{args['query_function']}({query})"
    labels = ', '.join(definition['groupby'] + definition['metadata'])
    query = f'{method}({query}) by ({labels})'
    if args['query_prefix']:
        query = f"{args['query_prefix']} {query}"
    if args['query_suffix']:
        query = f"{query} {args['query_suffix']}"
    return query


class PrometheusCollector(collector.BaseCollector):
    """Collect from the Prometheus of ``[collector_prometheus]``.

    Keyword argument ``client``: a
    :class:`~cloudkitty.prometheus_client.PrometheusClient` (default: built
    from ``[collector_prometheus]``).
    """

    collector_name = 'prometheus'
    grouped_collection = True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._client = kwargs.get('client') or \
            prometheus_client.PrometheusClient.from_conf(
                self.oslo_conf.collector_prometheus)

    @staticmethod
    def check_configuration(conf, context=None):
        conf = collector.BaseCollector.check_configuration(conf, context)
        return metrics_conf.check_extra_args(conf, PROMETHEUS_EXTRA_SCHEMA)

    def fetch_all(self, metric_name, start, end, project_id=None,
                  q_filter=None):
        """One query for the metric, filtered on the scope and ``q_filter``.

        ``project_id=None`` filters on no scope (see
        :attr:`grouped_collection`). Quantities are returned as collected.

        :raises CollectError: the server failed, naming its URL
        """
        definition = self.conf[metric_name]
        filters = {}
        if project_id is not None:
            filters[self.scope_key] = project_id
        filters.update(q_filter or {})
        period = int((end - start).total_seconds())
        query = build_query(metrics_conf.source_metric_name(metric_name),
                            definition, filters, period)
        try:
            result = self._client.query(query, end)
        except prometheus_client.PrometheusError as exc:
            raise collector.CollectError(self.collector_name, metric_name,
                                         project_id, str(exc)) from None
        return self._points(metric_name, definition, project_id, result)

    def _points(self, metric_name, definition, project_id, result):
        unit = definition['unit']
        points = []
        for item in result:
            labels = item['metric']
            text = item['value'][1]
            try:
                qty = decimal.Decimal(text)
            except decimal.InvalidOperation:
                raise collector.CollectError(
                    self.collector_name, metric_name, project_id,
                    f'{self._client.query_url}: value {text!r} of '
                    f'{labels} is not a number') from None
            if not qty.is_finite():
                LOG.warning('Prometheus metric %s scope %s: dropped the '
                            'non-finite value %s of %s', metric_name,
                            project_id, text, labels)
                continue
            groupby = {key: labels.get(key, '')
                       for key in definition['groupby']}
            if project_id is not None:
                groupby[self.scope_key] = project_id
            metadata = {key: labels.get(key, '')
                        for key in definition['metadata']}
            points.append(dataframe.DataPoint._make((
                unit, qty, dataframe.NO_PRICE, types.MappingProxyType(groupby),
                types.MappingProxyType(metadata), None)))
        return points
