"""``[output]``: the report writer (``cloudkitty-writer``)."""

from oslo_config import cfg

# Upstream named the one output backend by its class path; a configuration
# file written for it keeps working.
FILE_BACKENDS = ('file', 'cloudkitty.backend.file.FileBackend')

OPTS = [
    cfg.StrOpt('backend', default='file', choices=FILE_BACKENDS,
               help='Where reports are written: "file", files under '
                    'basepath (upstream\'s class path '
                    'cloudkitty.backend.file.FileBackend means the same).'),
    cfg.StrOpt('basepath', default='/var/lib/cloudkitty/states/',
               help='Directory of the report files, one per scope, writer '
                    'and month; created when missing.'),
    cfg.ListOpt('pipeline', default=['osrf'],
                help='Writers that produce the reports (entry points of '
                     'cloudkitty.output.writers): osrf (JSON) and csv.'),
    cfg.IntOpt('page_size', default=1000, min=1,
               help='Number of rated points read from the storage per '
                    'query while writing: what the writer holds in memory '
                    'besides the period being written.'),
]


def register_opts(conf):
    """Register ``[output]`` on ``conf``."""
    conf.register_opts(OPTS, group='output')


def list_opts():
    return [('output', OPTS)]
