"""``[storage]`` and ``[storage_sqlalchemy]``: where rated data is kept."""

from oslo_config import cfg

STORAGE_OPTS = [
    cfg.StrOpt('backend', default='sqlalchemy',
               help='Storage backend (entry point of '
                    'cloudkitty.storage.v2.backends).'),
    cfg.IntOpt('version', default=2, min=2, max=2,
               help='Storage interface version; only 2 exists.'),
    cfg.IntOpt('retention', default=0, min=0,
               help='Days rated data is kept; older data is deleted by the '
                    'processors\' storage maintenance (on PostgreSQL, whole '
                    'time partitions; elsewhere, whole batches, a bounded '
                    'number per transaction). 0: kept forever.'),
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
    cfg.StrOpt('partition_interval', default='month',
               choices=[('day', 'a UTC day'),
                        ('week', 'an ISO week, from Monday'),
                        ('month', 'a calendar month'),
                        ('year', 'a calendar year')],
               help='On PostgreSQL, the length of the time partitions of '
                    'the rated data, created ahead by the processors.'),
    cfg.IntOpt('partitions_ahead', default=2, min=1,
               help='On PostgreSQL, how many partitions after the current '
                    'one the processors keep created.'),
]


def register_opts(conf):
    """Register ``[storage]``, ``[storage_sqlalchemy]`` on ``conf``."""
    conf.register_opts(STORAGE_OPTS, group='storage')
    conf.register_opts(SQLALCHEMY_OPTS, group='storage_sqlalchemy')


def list_opts():
    return [('storage', STORAGE_OPTS), ('storage_sqlalchemy', SQLALCHEMY_OPTS)]
