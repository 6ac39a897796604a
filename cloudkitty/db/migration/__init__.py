"""Schema migrations: one alembic environment for every table.

:func:`upgrade` is what ``cloudkitty-dbsync upgrade`` and
``cloudkitty-storage-init`` run; :func:`current` tells the revision a
database is at (``None`` when it was never migrated).

alembic is imported by these functions, not with the module: the API and
the processor import modules that may migrate (``init()`` of a storage
backend) but seldom do, and alembic costs each of their processes several
MiB.
"""

import os

_HERE = os.path.dirname(os.path.abspath(__file__))


def _config(engine):
    from alembic import config as alembic_config
    config = alembic_config.Config()
    config.set_main_option('script_location', _HERE)
    config.attributes['engine'] = engine
    return config


def upgrade(engine, revision='head'):
    """Migrate the database behind ``engine`` to ``revision``."""
    from alembic import command
    command.upgrade(_config(engine), revision)


def downgrade(engine, revision):
    """Migrate the database behind ``engine`` down to ``revision``."""
    from alembic import command
    command.downgrade(_config(engine), revision)


def current(engine):
    """Return the database's revision, or ``None`` if never migrated."""
    from alembic import migration as alembic_migration
    with engine.connect() as connection:
        return alembic_migration.MigrationContext.configure(
            connection).get_current_revision()


def _scripts():
    from alembic import script as alembic_script
    return alembic_script.ScriptDirectory.from_config(_config(None))


def head():
    """Return the newest revision shipped with the code."""
    return _scripts().get_current_head()


def is_known(revision):
    """Whether ``revision`` is one of the revisions shipped with the code."""
    return revision in {script.revision
                        for script in _scripts().walk_revisions()}
