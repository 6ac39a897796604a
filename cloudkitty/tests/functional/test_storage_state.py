"""Scope states on SQLite: the reads the processor's lag checks make."""

import datetime

import sqlalchemy as sa

from cloudkitty import db
from cloudkitty.db import migration
from cloudkitty import storage_state

UTC = datetime.timezone.utc
T0 = datetime.datetime(2024, 5, 1, tzinfo=UTC)
HOUR = datetime.timedelta(hours=1)


def test_last_processed_timestamps_of_many_scopes_in_one_read(tmp_path):
    engine = db.create_engine(f'sqlite:///{tmp_path}/ck.sqlite')
    migration.upgrade(engine)
    states = storage_state.ScopeStateManager(engine, 'project_id', 'source',
                                             'file')
    states.create_scope('a', last_processed_timestamp=T0)
    states.create_scope('b', last_processed_timestamp=T0 + HOUR)
    states.create_scope('off', last_processed_timestamp=T0)
    states.set_active('off', False)
    # The same id under another collector is another scope.
    other = storage_state.ScopeStateManager(engine, 'project_id', 'source',
                                            'gnocchi')
    other.create_scope('c', last_processed_timestamp=T0)
    statements = []
    sa.event.listen(engine, 'before_cursor_execute',
                    lambda *args: statements.append(args[2]))
    found = states.get_last_processed_timestamps(['a', 'b', 'c', 'off',
                                                  'new'])
    assert found == {'a': T0, 'b': T0 + HOUR, 'c': None, 'new': None}
    assert found['a'].tzinfo is not None
    assert [s for s in statements if s.startswith('SELECT')] == \
        statements[-1:]
    engine.dispose()


def test_state_of_a_scope_by_its_whole_key(tmp_path):
    engine = db.create_engine(f'sqlite:///{tmp_path}/ck.sqlite')
    migration.upgrade(engine)
    states = storage_state.ScopeStateManager(engine, 'project_id', 'source',
                                             'file')
    assert states.get_state('a') is None
    states.set_last_processed_timestamp('a', T0)
    states.set_last_processed_timestamp('a', T0 + HOUR)
    # The same id under another collector: another row.
    states.set_last_processed_timestamp('a', T0, collector='gnocchi')
    assert states.get_state('a')['last_processed_timestamp'] == T0 + HOUR
    other = states.get_state('a', collector='gnocchi')
    assert (other['collector'], other['last_processed_timestamp'],
            other['active']) == ('gnocchi', T0, True)
    states.set_last_processed_timestamp('b', T0)
    assert len(states.get_all(scope_id='a')) == 2
    assert [s['identifier'] for s in states.get_all(scope_id='b')] == ['b']
    # The former keyword, which the API still passes.
    assert len(states.get_all(scope_id='a')) == 2
    engine.dispose()
