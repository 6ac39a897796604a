"""``[collect]``: what is collected, how often, and the scope key."""

from oslo_config import cfg

OPTS = [
    cfg.StrOpt('collector', default='file',
               help='Collector (entry point of cloudkitty.collector.backends) '
                    'that gathers usage.'),
    cfg.IntOpt('period', default=3600, min=1,
               help='Length of a collect period, in seconds.'),
    cfg.IntOpt('wait_periods', default=2, min=0,
               help='Number of whole periods to wait after a period ends '
                    'before it is rated, so that late data arrives.'),
    cfg.StrOpt('metrics_conf', default='/etc/cloudkitty/metrics.yml',
               help='Path of the metrics.yml file describing what to rate.'),
    cfg.StrOpt('scope_key', default='project_id',
               help='Attribute of the collected data that identifies a '
                    'scope (the unit that is rated and billed).'),
]


def register_opts(conf):
    """Register ``[collect]`` on ``conf``."""
    conf.register_opts(OPTS, group='collect')


def list_opts():
    return [('collect', OPTS)]
