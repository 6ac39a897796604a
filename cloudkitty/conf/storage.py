"""``[storage]`` and ``[storage_sqlalchemy]``: where rated data is kept."""

from oslo_config import cfg

STORAGE_OPTS = [
    cfg.StrOpt('backend', default='sqlalchemy',
               help='Storage backend (entry point of '
                    'cloudkitty.storage.v2.backends).'),
    cfg.IntOpt('version', default=2, min=2, max=2,
               help='Storage interface version; only 2 exists.'),
]


SQLALCHEMY_OPTS = [
    cfg.StrOpt('connection', secret=True,
               help='SQLAlchemy URL of the rated-data database. '
                    'Default: [database] connection.'),
    cfg.StrOpt('slave_connection', secret=True,
               help='SQLAlchemy URL of a streaming replica of the '
                    'rated-data database set in ``connection``, which '
                    'serves the API\'s reads of rated data while it lags '
                    'at most [api] max_replica_lag seconds. Default: '
                    '[database] slave_connection when ``connection`` is '
                    'not set (the rated data is then in [database]), '
                    'else no replica.'),
]


def register_opts(conf):
    """Register ``[storage]``, ``[storage_sqlalchemy]`` on ``conf``."""
    conf.register_opts(STORAGE_OPTS, group='storage')
    conf.register_opts(SQLALCHEMY_OPTS, group='storage_sqlalchemy')


def list_opts():
    return [('storage', STORAGE_OPTS), ('storage_sqlalchemy', SQLALCHEMY_OPTS)]
