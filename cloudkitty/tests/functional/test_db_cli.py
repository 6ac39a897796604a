"""``cloudkitty-dbsync`` and ``cloudkitty-storage-init`` on SQLite."""

import sqlalchemy as sa

from cloudkitty.cli import dbsync
from cloudkitty.cli import storage_init
from cloudkitty import db
from cloudkitty.db import migration


def _printed(capsys):
    """What the command printed, without oslo.log's lines (also stdout)."""
    return [line for line in capsys.readouterr().out.splitlines()
            if ' INFO ' not in line]


def _config(tmp_path):
    path = tmp_path / 'cloudkitty.conf'
    path.write_text('[database]\n'
                    f'connection = sqlite:///{tmp_path}/ck.sqlite\n')
    return ['--config-file', str(path)]


def _tables(tmp_path):
    engine = db.create_engine(f'sqlite:///{tmp_path}/ck.sqlite')
    try:
        return set(sa.inspect(engine).get_table_names()), migration.current(
            engine)
    finally:
        engine.dispose()


def test_dbsync_upgrade_version_and_downgrade(tmp_path, capsys):
    argv = _config(tmp_path)
    assert dbsync.main(argv + ['upgrade']) == 0
    head = migration.head()
    assert _printed(capsys) == [head]
    tables, revision = _tables(tmp_path)
    assert revision == head
    assert {'cloudkitty_storage_states',
            'storage_states_reprocessing_scheduler',
            'rated_data_modules'} <= tables

    assert dbsync.main(argv + ['version']) == 0
    assert _printed(capsys) == [head]

    assert dbsync.main(argv + ['downgrade', '--revision', 'base']) == 0
    assert _printed(capsys) == ['base']
    tables, revision = _tables(tmp_path)
    assert revision is None
    assert 'cloudkitty_storage_states' not in tables


def test_dbsync_upgrade_is_idempotent(tmp_path, capsys):
    argv = _config(tmp_path)
    assert dbsync.main(argv + ['upgrade']) == 0
    assert dbsync.main(argv + ['upgrade']) == 0
    assert _printed(capsys) == [migration.head()] * 2


def test_storage_init_creates_the_rated_data_schema(tmp_path, capsys):
    assert storage_init.main(_config(tmp_path)) == 0
    assert _printed(capsys) == ["storage backend 'sqlalchemy' initialised"]
    tables, revision = _tables(tmp_path)
    assert revision == migration.head()
    assert len(tables) > 3
