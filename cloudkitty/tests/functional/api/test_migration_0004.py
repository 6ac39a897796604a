"""Migration 0004: the tables of /v1/collector, up and down."""

import sqlalchemy as sa

from cloudkitty import db
from cloudkitty.db import migration


def test_upgrade_and_downgrade(tmp_path):
    engine = db.create_engine(f'sqlite:///{tmp_path / "m.sqlite"}')
    migration.upgrade(engine, '0004')
    tables = set(sa.inspect(engine).get_table_names())
    assert {'service_to_collector_mappings', 'collector_states'} <= tables
    migration.downgrade(engine, '0003')
    tables = set(sa.inspect(engine).get_table_names())
    assert not {'service_to_collector_mappings', 'collector_states'} & tables
    engine.dispose()
