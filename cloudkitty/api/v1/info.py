"""``/v1/info``: what is rated, from metrics.yml."""

import pecan
from pecan import rest
import wsmeext.pecan as wsme_pecan
from wsme import types as wtypes
import yaml

from cloudkitty.api import errors
from cloudkitty.api import utils
from cloudkitty import collector
from cloudkitty.policies import info as info_policies


class CloudkittyMetricInfo(wtypes.Base):
    """A rated metric: its type (alt_name), unit and metadata keys."""

    metric_id = wtypes.text
    unit = wtypes.text
    metadata = [wtypes.text]


class CloudkittyMetricInfoCollection(wtypes.Base):
    metrics = [CloudkittyMetricInfo]


class CloudkittyServiceInfo(wtypes.Base):
    """Deprecated name of a rated metric."""

    service_id = wtypes.text
    unit = wtypes.text
    metadata = [wtypes.text]


class CloudkittyServiceInfoCollection(wtypes.Base):
    services = [CloudkittyServiceInfo]


def _metrics():
    """``[(metric_id, unit, metadata)]`` of the configured metrics."""
    conf = pecan.request.backends.conf
    definitions = collector.load_metrics_conf(
        conf.collect.metrics_conf, scope_key=conf.collect.scope_key)
    return [(d['alt_name'], d['unit'], list(d['metadata']))
            for d in definitions.values()]


def _metric(metric_id):
    for metric in _metrics():
        if metric[0] == metric_id:
            return metric
    raise errors.NotFound(f"Unknown metric '{metric_id}'.")


class MetricInfoController(rest.RestController):

    @wsme_pecan.wsexpose(CloudkittyMetricInfoCollection)
    def get_all(self):
        utils.authorize(info_policies.LIST_METRICS, {})
        return CloudkittyMetricInfoCollection(metrics=[
            CloudkittyMetricInfo(metric_id=m, unit=u, metadata=md)
            for m, u, md in _metrics()])

    @wsme_pecan.wsexpose(CloudkittyMetricInfo, wtypes.text)
    def get_one(self, metric_id):
        utils.authorize(info_policies.GET_METRIC, {})
        metric_id, unit, metadata = _metric(metric_id)
        return CloudkittyMetricInfo(metric_id=metric_id, unit=unit,
                                    metadata=metadata)


class ServiceInfoController(rest.RestController):

    @wsme_pecan.wsexpose(CloudkittyServiceInfoCollection)
    def get_all(self):
        utils.authorize(info_policies.LIST_SERVICES, {})
        return CloudkittyServiceInfoCollection(services=[
            CloudkittyServiceInfo(service_id=m, unit=u, metadata=md)
            for m, u, md in _metrics()])

    @wsme_pecan.wsexpose(CloudkittyServiceInfo, wtypes.text)
    def get_one(self, service_id):
        utils.authorize(info_policies.GET_SERVICE, {})
        service_id, unit, metadata = _metric(service_id)
        return CloudkittyServiceInfo(service_id=service_id, unit=unit,
                                     metadata=metadata)


class InfoController(rest.RestController):

    _custom_actions = {'config': ['GET']}

    metrics = MetricInfoController()
    services = ServiceInfoController()

    @pecan.expose('json')
    def config(self):
        """metrics.yml as written (an unreadable file is a server error)."""
        utils.authorize(info_policies.GET_CONFIG, {})
        path = pecan.request.backends.conf.collect.metrics_conf
        with open(path, encoding='utf-8') as stream:
            return yaml.safe_load(stream)
