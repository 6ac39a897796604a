"""``[collector_file]``: the file collector's usage records."""

from oslo_config import cfg

OPTS = [
    cfg.StrOpt('usage_path', default='/var/lib/cloudkitty/usage',
               help='File or directory of usage records (.jsonl and .csv '
                    'files) read by the file collector.'),
]


def register_opts(conf):
    """Register ``[collector_file]`` on ``conf``."""
    conf.register_opts(OPTS, group='collector_file')


def list_opts():
    return [('collector_file', OPTS)]
