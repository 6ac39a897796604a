"""``cloudkitty-processor --config-file FILE``: collect, rate and store.

Validates metrics.yml and the skip expressions first: an invalid
configuration ends the command with status 1 and one line naming the
metric and the key. Then runs ``[orchestrator] max_workers`` worker
processes until SIGTERM (status 0).
"""

import signal
import sys

PROG = 'cloudkitty-processor'


def _stop_before_start(signum, frame):
    # Nothing is rated before the workers start: a SIGTERM during start-up
    # is a clean stop too.
    raise SystemExit(0)


def main(argv=None):
    signal.signal(signal.SIGTERM, _stop_before_start)
    # Imported here so that the handler above covers the imports' time.
    from oslo_config import cfg

    from cloudkitty.orchestrator import processor
    from cloudkitty import service

    # Third-party collectors read cfg.CONF (CONF.collect.scope_key ...): the
    # options are registered there, and our code is handed it explicitly.
    conf = cfg.CONF
    try:
        service.prepare_service(sys.argv[1:] if argv is None else argv, conf)
    except cfg.Error as exc:
        print(f'{PROG}: {exc}', file=sys.stderr)
        return 1
    try:
        plan = processor.validate(conf)
    except processor.ConfigurationError as exc:
        print(f'{PROG}: invalid configuration: {exc}', file=sys.stderr)
        return 1
    processor.serve(conf, plan)
    return 0


if __name__ == '__main__':
    sys.exit(main())
