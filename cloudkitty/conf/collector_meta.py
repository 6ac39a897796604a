"""``[collector_meta]``: the meta collector's fallback for unmapped metrics."""

from oslo_config import cfg

OPTS = [
    cfg.StrOpt('default_collector',
               help='Collector (entry point of cloudkitty.collector.backends, '
                    'not meta) that gathers the metrics of metrics.yml whose '
                    'name no /v1/collector/mappings mapping names, when '
                    '[collect] collector is meta. Unset: every metric must '
                    'be mapped, or the processor refuses to start.'),
]


def register_opts(conf):
    """Register ``[collector_meta]`` on ``conf``."""
    conf.register_opts(OPTS, group='collector_meta')


def list_opts():
    return [('collector_meta', OPTS)]
