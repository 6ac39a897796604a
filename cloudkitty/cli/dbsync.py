"""``cloudkitty-dbsync``: migrate the service's database schema.

``cloudkitty-dbsync [--config-file FILE] upgrade [--revision REV]``,
``downgrade --revision REV`` and ``version`` act on ``[database] connection``
and print the revision the database is left at.
"""

import sys

from oslo_config import cfg

from cloudkitty import db
from cloudkitty.db import migration
from cloudkitty import service


def _add_commands(subparsers):
    upgrade = subparsers.add_parser('upgrade', help='migrate to a revision')
    upgrade.add_argument('--revision', default='head')
    downgrade = subparsers.add_parser('downgrade', help='migrate down')
    downgrade.add_argument('--revision', required=True)
    subparsers.add_parser('version', help='print the current revision')


def main(argv=None):
    conf = cfg.ConfigOpts()
    conf.register_cli_opt(cfg.SubCommandOpt(
        'command', title='commands', handler=_add_commands))
    service.prepare_service(sys.argv[1:] if argv is None else argv, conf)
    engine = db.create_engine(conf.database.connection)
    command = conf.command
    if command.name == 'upgrade':
        migration.upgrade(engine, command.revision)
    elif command.name == 'downgrade':
        migration.downgrade(engine, command.revision)
    print(migration.current(engine) or 'base')
    return 0


if __name__ == '__main__':
    sys.exit(main())
