"""``[fetcher_gnocchi]``: the scopes are attribute values of Gnocchi
resources."""

from oslo_config import cfg

from cloudkitty.conf import collector_gnocchi

OPTS = collector_gnocchi.connection_opts() + [
    cfg.StrOpt('scope_attribute', default='project_id',
               help='Resource attribute holding the scope id.'),
    cfg.ListOpt('resource_types', default=['generic'],
                help='Resource types whose resources hold the scopes.'),
]


def register_opts(conf):
    """Register ``[fetcher_gnocchi]`` on ``conf``."""
    conf.register_opts(OPTS, group='fetcher_gnocchi')


def list_opts():
    return [('fetcher_gnocchi', OPTS)]
