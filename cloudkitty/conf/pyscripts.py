"""``[pyscripts]``: the boundary and limits of the processes pyscripts run in."""

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
                      'the start of its sandbox and the transfer of the '
                      'frame included; the sandbox process is then killed. '
                      'Keep it above cpu_time_limit.'),
    cfg.IntOpt('output_limit', default=1048576, min=1024,
               help='Bytes a script may write to its standard output and '
                    'error in one run. Its first lines reach the service\'s '
                    'log, with its name, each cut to 1000 characters; a '
                    'script that writes more is ended and fails.'),
    cfg.IntOpt('reply_limit', default=64, min=1,
               help='MiB of the frame a script leaves (its JSON reply), '
                    'or four times the frame it was given if that is more; '
                    'a larger reply fails the script.'),
    cfg.BoolOpt('allow_unconfined', default=False,
                help='Run scripts even where their sandbox cannot be '
                     'confined (kernel without user namespaces or seccomp, '
                     'container that forbids them): the layers that can be '
                     'set up are, and each sandbox started without the '
                     'others logs a warning naming them. When false (the '
                     'default), scripts then fail, saying what is missing. '
                     'A script running unconfined can read what the '
                     'service can read, connect to the network and signal '
                     'the service\'s processes.'),
    cfg.StrOpt('python', default='',
               help='Python interpreter the sandbox processes run (with -I '
                    '-S: its standard library only). Empty: the one running '
                    'the service; set it where that is not a Python '
                    'interpreter (a processor embedded in another '
                    'program).'),
    cfg.IntOpt('sandbox_processes', default=1, min=1,
               help='Scripts each processor process runs at once (one '
                    'sandbox process per script revision is kept idle '
                    'between periods, up to max(8, this) of them): a '
                    'worker rates one scope at a time, so one is enough '
                    'there.'),
]


def register_opts(conf):
    """Register ``[pyscripts]`` on ``conf``."""
    conf.register_opts(OPTS, group='pyscripts')


def list_opts():
    return [('pyscripts', OPTS)]
