"""Rules of ``/v1/info``: what is rated, as configured in metrics.yml."""

from cloudkitty.policies import base

GET_CONFIG = 'info:get_config'
LIST_METRICS = 'info:list_metrics_info'
GET_METRIC = 'info:get_metric_info'
LIST_SERVICES = 'info:list_services_info'
GET_SERVICE = 'info:get_service_info'

_RULES = [
    base.documented(GET_CONFIG, base.RULE_ANY,
                    'Show the metrics configuration.',
                    ('GET', '/v1/info/config')),
    base.documented(LIST_METRICS, base.RULE_ANY,
                    'List the rated metrics.',
                    ('GET', '/v1/info/metrics')),
    base.documented(GET_METRIC, base.RULE_ANY,
                    'Show one rated metric.',
                    ('GET', '/v1/info/metrics/{metric_id}')),
    base.documented(LIST_SERVICES, base.RULE_ANY,
                    'List the rated metrics (deprecated name: services).',
                    ('GET', '/v1/info/services')),
    base.documented(GET_SERVICE, base.RULE_ANY,
                    'Show one rated metric (deprecated name: service).',
                    ('GET', '/v1/info/services/{service_id}')),
]


def list_rules():
    return _RULES
