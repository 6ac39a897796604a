"""``[pyscripts]``: the limits of the processes pyscripts run in."""

from oslo_config import cfg

OPTS = [
    cfg.FloatOpt('cpu_time_limit', default=30.0, min=0.1,
                 help='CPU seconds one script may use on one frame '
                      '(RLIMIT_CPU of its sandbox process, counted in whole '
                      'seconds: the allowance is rounded up). Beyond, the '
                      'script fails and the period of its scope is rated '
                      'again on a later pass.'),
    cfg.IntOpt('memory_limit', default=1024, min=32,
               help='Address space, in MiB, of a sandbox process '
                    '(RLIMIT_AS): the interpreter, the frame a script '
                    'works on and what the script allocates. An allocation '
                    'beyond fails the script.'),
    cfg.FloatOpt('timeout', default=60.0, min=0.1,
                 help='Wall-clock seconds one script may take on one frame, '
                      'the transfer of the frame included; the sandbox '
                      'process is then killed. Keep it above '
                      'cpu_time_limit.'),
    cfg.StrOpt('python', default='',
               help='Python interpreter the sandbox processes run. Empty: '
                    'the one running the service; set it where that is not '
                    'a Python interpreter (an API embedded in a web '
                    'server). Scripts can import what it has installed.'),
    cfg.IntOpt('sandbox_processes', default=1, min=1,
               help='Sandbox processes kept by each process that rates '
                    '(processor worker, API): a worker rates one scope at '
                    'a time, so one is enough there.'),
]


def register_opts(conf):
    """Register ``[pyscripts]`` on ``conf``."""
    conf.register_opts(OPTS, group='pyscripts')


def list_opts():
    return [('pyscripts', OPTS)]
