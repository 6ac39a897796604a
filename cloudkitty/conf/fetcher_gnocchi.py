"""``[fetcher_gnocchi]``: the scopes are attribute values of Gnocchi
resources."""

from oslo_config import cfg

from cloudkitty.conf import collector_gnocchi
from cloudkitty.conf import keystoneauth

CONNECTION_OPTS = collector_gnocchi.connection_opts()
SCOPE_OPTS = [
    cfg.StrOpt('scope_attribute', default='project_id',
               help='Resource attribute holding the scope id.'),
    cfg.ListOpt('resource_types', default=['generic'],
                help='Resource types whose resources hold the scopes.'),
]
OPTS = CONNECTION_OPTS + SCOPE_OPTS


def register_opts(conf):
    """Register ``[fetcher_gnocchi]`` on ``conf``."""
    conf.register_opts(OPTS, group='fetcher_gnocchi')


def list_opts():
    return [('fetcher_gnocchi',
             CONNECTION_OPTS + keystoneauth.list_opts() + SCOPE_OPTS)]
