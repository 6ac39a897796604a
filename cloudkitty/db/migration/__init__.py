"""Schema migrations: one alembic environment for every table.

:func:`upgrade` is what ``cloudkitty-dbsync upgrade`` and
``cloudkitty-storage-init`` run; :func:`current` tells the revision a
database is at (``None`` when it was never migrated).
"""

import os

from alembic import command
from alembic import config as alembic_config
from alembic import migration as alembic_migration
from alembic import script as alembic_script

_HERE = os.path.dirname(os.path.abspath(__file__))


def _config(engine):
    config = alembic_config.Config()
    config.set_main_option('script_location', _HERE)
    config.attributes['engine'] = engine
    return config


def upgrade(engine, revision='head'):
    """Migrate the database behind ``engine`` to ``revision``."""
    command.upgrade(_config(engine), revision)


def downgrade(engine, revision):
    """Migrate the database behind ``engine`` down to ``revision``."""
    command.downgrade(_config(engine), revision)


def current(engine):
    """Return the database's revision, or ``None`` if never migrated."""
    with engine.connect() as connection:
        return alembic_migration.MigrationContext.configure(
            connection).get_current_revision()


def _scripts():
    return alembic_script.ScriptDirectory.from_config(_config(None))


def head():
    """Return the newest revision shipped with the code."""
    return _scripts().get_current_head()


def is_known(revision):
    """Whether ``revision`` is one of the revisions shipped with the code."""
    return revision in {script.revision
                        for script in _scripts().walk_revisions()}
