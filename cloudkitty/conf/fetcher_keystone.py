"""``[fetcher_keystone]``: the scopes are Keystone projects."""

from oslo_config import cfg

from cloudkitty.conf import keystoneauth

OPTS = [
    cfg.StrOpt('keystone_version', default='3', choices=['3'],
               help='Identity API version (only v3 is served by current '
                    'Keystones).'),
    cfg.BoolOpt('ignore_rating_role', default=False,
                help='Rate every project, not only those where this '
                     'group\'s user holds the "rating" role.'),
    cfg.BoolOpt('ignore_disabled_tenants', default=False,
                help='Do not rate disabled projects.'),
    cfg.StrOpt('interface', default='public',
               help='Catalog interface of the identity endpoint.'),
    cfg.StrOpt('region_name',
               help='Region of the identity endpoint in the catalog.'),
]


def register_opts(conf):
    """Register ``[fetcher_keystone]`` on ``conf``."""
    conf.register_opts(OPTS, group='fetcher_keystone')


def list_opts():
    # keystoneauth's common and session options are registered when the
    # fetcher builds its client (cloudkitty.conf.keystoneauth); those of the
    # plugin named by auth_type when keystoneauth loads it (some are
    # required: registered here, they would be required of every
    # deployment).
    return [('fetcher_keystone', OPTS + keystoneauth.list_opts())]
