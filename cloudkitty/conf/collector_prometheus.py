"""``[collector_prometheus]``: how the prometheus collector reaches its server."""

from oslo_config import cfg


def connection_opts():
    """New instances of the options naming a Prometheus server and how to
    reach it; shared by ``[collector_prometheus]`` and
    ``[fetcher_prometheus]``."""
    return [
        cfg.StrOpt('prometheus_url', default='',
                   help='Base URL of the Prometheus server (its HTTP API is '
                        'under <prometheus_url>/api/v1).'),
        cfg.StrOpt('prometheus_user',
                   help='User for HTTP basic authentication (with '
                        'prometheus_password; none when unset).'),
        cfg.StrOpt('prometheus_password', secret=True,
                   help='Password for HTTP basic authentication.'),
        cfg.StrOpt('cafile',
                   help='Certificate authority file that verifies the '
                        'server\'s HTTPS certificate.'),
        cfg.BoolOpt('insecure', default=False,
                    help='Do not verify the server\'s HTTPS certificate.'),
        cfg.FloatOpt('timeout', default=60, min=0.001,
                     help='Seconds to wait for the server to connect and to '
                          'send each part of its answer.'),
    ]


OPTS = connection_opts()


def register_opts(conf):
    """Register ``[collector_prometheus]`` on ``conf``."""
    conf.register_opts(OPTS, group='collector_prometheus')


def list_opts():
    return [('collector_prometheus', OPTS)]
