"""``[fetcher_prometheus]``: the scopes are label values found in Prometheus."""

from oslo_config import cfg

from cloudkitty.conf import collector_prometheus

OPTS = collector_prometheus.connection_opts() + [
    cfg.StrOpt('metric',
               help='Metric whose series name the scopes (required by the '
                    'prometheus fetcher).'),
    cfg.StrOpt('scope_attribute', default='project_id',
               help='Label of that metric holding the scope id.'),
    cfg.DictOpt('filters', default={},
                help='Label values the series must have, as '
                     'label1:value1,label2:value2.'),
]


def register_opts(conf):
    """Register ``[fetcher_prometheus]`` on ``conf``."""
    conf.register_opts(OPTS, group='fetcher_prometheus')


def list_opts():
    return [('fetcher_prometheus', OPTS)]
