"""The one list of every option, for registration and for the generators."""

import copy
import multiprocessing

from oslo_config import cfg
from oslo_db import options as db_options

from cloudkitty.conf import api as api_opts

_DEFAULT_OPTS = [
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

COLLECT_OPTS = [
    cfg.StrOpt('collector', default='file',
               help='Collector (entry point of cloudkitty.collector.backends) '
                    'that gathers usage.'),
    cfg.IntOpt('period', default=3600, min=1,
               help='Length of a collect period, in seconds.'),
    cfg.IntOpt('wait_periods', default=2, min=0,
               help='Number of whole periods to wait after a period ends '
                    'before it is rated, so that late data arrives.'),
    cfg.StrOpt('metrics_conf', default='/etc/cloudkitty/metrics.yml',
               help='Path of the metrics.yml file describing what to rate.'),
    cfg.StrOpt('scope_key', default='project_id',
               help='Attribute of the collected data that identifies a '
                    'scope (the unit that is rated and billed).'),
]

FETCHER_OPTS = [
    cfg.StrOpt('backend', default='source',
               help='Fetcher (entry point of cloudkitty.fetchers) that lists '
                    'the scopes to rate.'),
]

FETCHER_SOURCE_OPTS = [
    cfg.ListOpt('sources', default=[],
                help='Static list of scope ids to rate.'),
]

COLLECTOR_FILE_OPTS = [
    cfg.StrOpt('usage_path', default='/var/lib/cloudkitty/usage',
               help='File or directory of usage records (*.jsonl, *.csv) '
                    'read by the file collector.'),
]

ORCHESTRATOR_OPTS = [
    cfg.StrOpt('coordination_url', default='file:///var/lib/cloudkitty/locks',
               secret=True,
               help='tooz coordination backend URL used for the per-scope '
                    'locks (file://, redis://, etcd3+http://, ...).'),
    cfg.IntOpt('max_workers', default=multiprocessing.cpu_count(), min=0,
               sample_default='<number of CPUs>',
               help='Number of processor worker processes rating scopes.'),
    cfg.IntOpt('max_workers_reprocessing',
               default=multiprocessing.cpu_count(), min=0,
               sample_default='<number of CPUs>',
               help='Number of worker processes running reprocessing tasks.'),
    cfg.IntOpt('max_threads', default=20, min=1,
               help='Number of metrics of one scope collected concurrently.'),
    cfg.StrOpt('skip_datapoints_expression', default='',
               help='Expression over `datapoint` (qty, price, unit, '
                    'groupby, metadata, desc); points for which it is true '
                    'are not stored. Empty: nothing is skipped. A metric\'s '
                    'own skip_datapoints_expression takes precedence.'),
    cfg.IntOpt('collector_request_timeout', default=60, min=1,
               help='Seconds allowed for the collection of one metric of '
                    'one scope and period before it counts as failed.'),
    cfg.FloatOpt('process_interval', default=10.0, min=0.0,
                 help='Seconds a worker sleeps after a pass over the scopes '
                      'that found nothing to rate.'),
]

DEFAULT_DB_CONNECTION = 'sqlite:////var/lib/cloudkitty/cloudkitty.sqlite'


def _database_opts():
    # oslo.db leaves [database] connection without a default; ours is the
    # embedded SQLite database, so that a bare installation runs.
    opts = copy.deepcopy(db_options.database_opts)
    for opt in opts:
        if opt.dest == 'connection':
            opt.default = DEFAULT_DB_CONNECTION
    return opts


STORAGE_OPTS = [
    cfg.StrOpt('backend', default='sqlalchemy',
               help='Storage backend (entry point of '
                    'cloudkitty.storage.v2.backends).'),
    cfg.IntOpt('version', default=2, min=2, max=2,
               help='Storage interface version; only 2 exists.'),
]

STORAGE_SQLALCHEMY_OPTS = [
    cfg.StrOpt('connection', secret=True,
               help='SQLAlchemy URL of the rated-data database. '
                    'Default: [database] connection.'),
]


def list_opts():
    """Return ``[(group, [opts])]`` for registration and oslo-config-generator."""
    return [
        ('DEFAULT', _DEFAULT_OPTS),
        ('api', api_opts.OPTS),
        ('collect', COLLECT_OPTS),
        ('collector_file', COLLECTOR_FILE_OPTS),
        ('database', _database_opts()),
        ('fetcher', FETCHER_OPTS),
        ('fetcher_source', FETCHER_SOURCE_OPTS),
        ('orchestrator', ORCHESTRATOR_OPTS),
        ('storage', STORAGE_OPTS),
        ('storage_sqlalchemy', STORAGE_SQLALCHEMY_OPTS),
    ]
