"""``[DEFAULT]`` options of the service itself."""

from oslo_config import cfg

OPTS = [
    cfg.StrOpt('auth_strategy', default='keystone',
               choices=[('keystone', 'tokens are validated by '
                                     'keystonemiddleware'),
                        ('noauth', 'every caller is an administrator')],
               help='Authentication of API callers.'),
    cfg.HostAddressOpt('host', default='localhost',
                       sample_default='<hostname>',
                       help='Name of this host, used in logs and as the '
                            'coordination member id prefix.'),
]


def register_opts(conf):
    """Register the ``[DEFAULT]`` options on ``conf``."""
    conf.register_opts(OPTS)


def list_opts():
    return [('DEFAULT', OPTS)]
