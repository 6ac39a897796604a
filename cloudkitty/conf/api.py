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
    cfg.IntOpt('backlog', default=1024, min=1,
               help='cloudkitty-api only: connections the system queues '
                    'while every thread is busy (the listen backlog; '
                    'Linux caps it at net.core.somaxconn). Connections '
                    'beyond it are refused or time out.'),
    cfg.IntOpt('threads', default=16, min=1,
               help='cloudkitty-api only: requests served at once, one '
                    'thread each. Further connections wait in the backlog '
                    'until a thread is free.'),
    cfg.FloatOpt('client_timeout', default=30.0, min=0.01,
                 help='cloudkitty-api only: seconds a client has to send '
                      'its request line and headers, and to send each '
                      'part of its body or take each part of the answer; '
                      'a slower client is disconnected, freeing its '
                      'thread.'),
    cfg.FloatOpt('max_replica_lag', default=30.0, min=0,
                 help='Most seconds a replica of the rated data ([database] '
                      'or [storage_sqlalchemy] slave_connection) may lag '
                      'behind its primary, as the replica reports it, and '
                      'still serve the API\'s reads of rated data; a '
                      'replica lagging more, or down, is bypassed (the '
                      'reads go to the primary) until it catches up.'),
]


def register_opts(conf):
    """Register ``[api]`` on ``conf``."""
    conf.register_opts(OPTS, group='api')


def list_opts():
    return [('api', OPTS)]
