"""The ``prometheus`` fetcher: scopes are the label values of a metric.

The scopes are the distinct values of ``[fetcher_prometheus]
scope_attribute`` among the series of ``[fetcher_prometheus] metric`` that
match ``filters``, from the instant query (evaluated now)::

    max(<metric>{<filter>="<value>", ...}) by (<scope_attribute>)
"""

from cloudkitty.collector import prometheus as prometheus_collector
from cloudkitty import fetcher
from cloudkitty import prometheus_client


class PrometheusFetcher(fetcher.BaseFetcher):
    """List the scopes found in the Prometheus of ``[fetcher_prometheus]``."""

    name = 'prometheus'

    def __init__(self, conf=None):
        super().__init__(conf)
        self._options = self.conf.fetcher_prometheus
        if not self._options.metric:
            raise fetcher.FetchError(
                '[fetcher_prometheus] metric is required by the prometheus '
                'fetcher')
        try:
            self._client = prometheus_client.PrometheusClient.from_conf(
                self._options)
        except prometheus_client.PrometheusError as exc:
            raise fetcher.FetchError(
                f'[fetcher_prometheus]: {exc}') from None

    def query(self):
        """The PromQL query that lists the scopes."""
        options = self._options
        series = prometheus_collector.selector(options.metric,
                                               options.filters)
        return f'max({series}) by ({options.scope_attribute})'

    def get_tenants(self):
        """The distinct scope ids, sorted; series without the label are
        ignored.

        :raises FetchError: the server failed, naming its URL
        """
        try:
            result = self._client.query(self.query())
        except prometheus_client.PrometheusError as exc:
            raise fetcher.FetchError(
                f'prometheus fetcher: {exc}') from None
        attribute = self._options.scope_attribute
        return sorted({item['metric'][attribute] for item in result
                       if item['metric'].get(attribute)})
