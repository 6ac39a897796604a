"""``[collector_gnocchi]``: how the gnocchi collector reaches Gnocchi."""

from oslo_config import cfg

from cloudkitty.conf import keystoneauth


def connection_opts():
    """New instances of the options naming a Gnocchi and how to reach it;
    shared by ``[collector_gnocchi]`` and ``[fetcher_gnocchi]``.

    With ``gnocchi_auth_type = keystone`` the credentials are keystoneauth's
    (``auth_type`` and its plugin's options, in this group or in the group
    named by ``auth_section``) and the endpoint comes from the catalog;
    with ``basic``, Gnocchi's basic authentication as ``gnocchi_user`` at
    ``gnocchi_endpoint``. The TLS and timeout options are keystoneauth's
    session options. keystoneauth's options are not in this list: they
    are listed with the group (:func:`list_opts`) and registered when a
    client is built (:mod:`cloudkitty.conf.keystoneauth`).
    """
    return [
        cfg.StrOpt('gnocchi_auth_type', default='keystone',
                   choices=['keystone', 'basic'],
                   help='How to authenticate to Gnocchi: keystone (the '
                        'keystoneauth options of this group or of its '
                        'auth_section) or basic (gnocchi_user).'),
        cfg.StrOpt('gnocchi_user', default='',
                   help='User name sent with basic authentication.'),
        cfg.StrOpt('gnocchi_endpoint', default='',
                   help='Gnocchi URL, e.g. http://gnocchi:8041 (basic '
                        'authentication only; keystone finds it in the '
                        'catalog).'),
        cfg.StrOpt('interface', default='internalURL',
                   help='Catalog interface of the Gnocchi endpoint '
                        '(keystone authentication only).'),
        cfg.StrOpt('region_name', default='RegionOne',
                   help='Region of the Gnocchi endpoint in the catalog.'),
        cfg.IntOpt('http_pool_maxsize', default=10, min=1,
                   help='Connections kept open to Gnocchi (the concurrent '
                        'requests of the collect threads).'),
    ]


OPTS = connection_opts()


def register_opts(conf):
    """Register ``[collector_gnocchi]`` on ``conf``."""
    conf.register_opts(OPTS, group='collector_gnocchi')


def list_opts():
    return [('collector_gnocchi', OPTS + keystoneauth.list_opts())]
