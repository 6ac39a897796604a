"""``[orchestrator]``: the processor's workers, locks and limits."""

import multiprocessing

from oslo_config import cfg

OPTS = [
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
    cfg.FloatOpt('reset_lock_timeout', default=600.0, min=0.0,
                 help='Seconds a processor waits for a scope\'s lock (held '
                      'while the scope is being rated) to carry out a '
                      'scope state reset asked for through the API; past '
                      'it, the reset is abandoned with an error in the '
                      'log and must be asked for again.'),
]


def register_opts(conf):
    """Register ``[orchestrator]`` on ``conf``."""
    conf.register_opts(OPTS, group='orchestrator')


def list_opts():
    return [('orchestrator', OPTS)]
