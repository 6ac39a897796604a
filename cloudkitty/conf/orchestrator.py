"""``[orchestrator]``: the processor's workers, locks and limits."""

import multiprocessing

from oslo_config import cfg

OPTS = [
    cfg.StrOpt('coordination_url', default='file:///var/lib/cloudkitty/locks',
               secret=True,
               help='tooz coordination backend URL used for the per-scope '
                    'locks (file://, redis://, etcd3+http://, ...). With '
                    'redis:// and etcd3+http(s)://, the workers of all the '
                    'processors share the scopes out through a tooz group '
                    'instead of each trying every scope\'s lock.'),
    cfg.IntOpt('member_timeout', default=30, min=2,
               help='Seconds after which a processor worker that stopped '
                    'heartbeating (crashed, host lost) leaves the '
                    'coordination group and its scope locks expire: its '
                    'scopes then go to the other workers. Passed to redis '
                    'and etcd3 as membership_timeout and lock_timeout '
                    'unless coordination_url sets them.'),
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
    cfg.IntOpt('lag_warning_periods', default=3, min=0,
               help='A scope more than this many periods behind (periods '
                    'due and not rated) after a pass over it gets a '
                    'warning in the log, naming its last processed period; '
                    'repeated when it falls further behind, and an info '
                    'line once it is back within the limit.'),
    cfg.HostAddressOpt('metrics_host', default='127.0.0.1',
                       help='Address of the processor\'s Prometheus '
                            'endpoint (GET /metrics). The endpoint has no '
                            'authentication: keep it on a loopback address '
                            'unless the network is trusted.'),
    cfg.PortOpt('metrics_port', default=0,
                help='TCP port of the processor\'s Prometheus endpoint '
                     '(GET /metrics, text exposition format 0.0.4): per '
                     'scope, the last processed period, the lag, and the '
                     'periods rated and errors of this host\'s workers. '
                     '0 serves no endpoint.'),
]


def register_opts(conf):
    """Register ``[orchestrator]`` on ``conf``."""
    conf.register_opts(OPTS, group='orchestrator')


def list_opts():
    return [('orchestrator', OPTS)]
