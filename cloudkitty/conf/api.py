"""``[api]``: where and how the REST API is served."""

from oslo_config import cfg

OPTS = [
    cfg.HostAddressOpt('host', default='0.0.0.0',
                       help='Address cloudkitty-api listens on.'),
    cfg.PortOpt('port', default=8889,
                help='Port cloudkitty-api listens on.'),
    cfg.BoolOpt('pecan_debug', default=False,
                help='Serve Pecan\'s interactive debugger on errors. Never '
                     'enable it in production.'),
    cfg.StrOpt('paste_config', default='api_paste.ini',
               help='Paste deploy configuration of the WSGI pipeline; a '
                    'relative path is looked up next to the configuration '
                    'files.'),
    cfg.FloatOpt('quote_timeout', default=30.0, min=0.1,
                 help='Seconds the API waits for a processor to price a '
                      'quote (over [DEFAULT] transport_url) before it '
                      'answers 503.'),
    cfg.IntOpt('max_request_body_size', default=1048576, min=1,
               help='Largest request body the API accepts, in bytes; a '
                    'larger one is answered 413 before it is read. '
                    'Reading a JSON body takes about ten times its size '
                    'in memory.'),
    cfg.IntOpt('max_quote_resources', default=1000, min=1,
               help='Most resources one POST /v1/rating/quote may price; '
                    'more are answered 413.'),
]


def register_opts(conf):
    """Register ``[api]`` on ``conf``."""
    conf.register_opts(OPTS, group='api')


def list_opts():
    return [('api', OPTS)]
