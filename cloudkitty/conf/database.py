"""``[database]``: oslo.db's options, with the service's default URL."""

import copy

from oslo_db import options as db_options

DEFAULT_DB_CONNECTION = 'sqlite:////var/lib/cloudkitty/cloudkitty.sqlite'


def _opts():
    # oslo.db leaves [database] connection without a default; ours is the
    # embedded SQLite database, so that a bare installation runs.
    opts = copy.deepcopy(db_options.database_opts)
    for opt in opts:
        if opt.dest == 'connection':
            opt.default = DEFAULT_DB_CONNECTION
    return opts


OPTS = _opts()


def register_opts(conf):
    """Register ``[database]`` on ``conf``."""
    conf.register_opts(OPTS, group='database')


def list_opts():
    return [('database', OPTS)]
