"""pyscripts through the processor's ScopeWorker: a failing script fails
its scope's period (not recorded, logged with the scope and the script),
other scopes are rated, and the period is rated once the script is fixed."""

import datetime
import decimal
import logging

import pytest

from cloudkitty import db
from cloudkitty.db import migration
from cloudkitty.rating import pyscripts
from cloudkitty.rating.pyscripts import db as scripts_db
from cloudkitty.rating.pyscripts import sandbox
from cloudkitty import testing
from cloudkitty.tests.unit import worker_doubles as fakes

D = decimal.Decimal
MONTH = fakes.MONTH

# Prices a cent per unit; the points of scope "bad" end the sandbox process.
SCRIPT = '''\
import decimal, os
for points in data['usage'].values():
    for point in points:
        if point['groupby']['project_id'] == 'bad':
            os._exit(1)
        qty = point['vol']['qty']
        point['rating']['price'] = qty * decimal.Decimal('0.01')
'''
FIXED = SCRIPT.replace('os._exit(1)', 'pass')


@pytest.fixture
def store(tmp_path):
    engine = db.create_engine(f'sqlite:///{tmp_path / "ck.sqlite"}')
    migration.upgrade(engine)
    yield scripts_db.PyScriptsDB(
        engine, clock=lambda: MONTH + datetime.timedelta(days=1))
    engine.dispose()


@pytest.fixture
def module(store):
    module = pyscripts.PyScripts(scripts_db=store, pool=sandbox.SandboxPool(
        sandbox.Limits(cpu_time=1, memory=128, timeout=10)))
    yield module
    module.close()


def by_scope(points, scope):
    return [(start, type_, p.qty, p.price)
            for s, start, type_, p in points if s == scope]


def test_failing_script_fails_only_its_scope_period(store, module, caplog):
    script = store.create_script('cents', SCRIPT, start=MONTH, force=True)
    scope_worker, _collector, storage, state, journal = fakes.make_worker(
        {'cpu': lambda scope, start: [
            fakes.point(250, project_id=scope)]},
        modules={'pyscripts': module},
        module_state=testing.ModuleState(
            {'pyscripts': {'enabled': True, 'priority': 1}}))

    with caplog.at_level(logging.WARNING):
        bad = scope_worker.rate_scope('bad', max_periods=1)
    assert bad.rated == []
    assert "pyscript 'cents'" in bad.error and 'scope bad' in bad.error
    assert 'exited with status 1' in bad.error
    assert state.get_last_processed_timestamp('bad') is None
    assert by_scope(storage.points, 'bad') == []
    assert any('bad' in r.getMessage() and "pyscript 'cents'" in
               r.getMessage() for r in caplog.records)

    good = scope_worker.rate_scope('good', max_periods=1)
    assert (good.rated, good.error) == ([MONTH], None)
    assert state.get_last_processed_timestamp('good') == MONTH
    assert by_scope(storage.points, 'good') == [
        (MONTH, 'cpu_type', D(250), D('2.50'))]

    # Fixed (a new version replaces the old), the period is rated on the
    # next pass.
    store.delete_script(script['script_id'])
    store.create_script('cents', FIXED, start=MONTH, force=True)
    again = scope_worker.rate_scope('bad', max_periods=1)
    assert (again.rated, again.error) == ([MONTH], None)
    assert by_scope(storage.points, 'bad') == [
        (MONTH, 'cpu_type', D(250), D('2.50'))]
    assert ('state', 'bad', MONTH) in journal


def test_scripts_follow_their_validity(store, module):
    hour = datetime.timedelta(hours=1)
    store.create_script('cents', FIXED, start=MONTH + hour, force=True)
    scope_worker, _collector, storage, _state, _journal = fakes.make_worker(
        {'cpu': lambda scope, start: [fakes.point(100, project_id=scope)]},
        modules={'pyscripts': module},
        module_state=testing.ModuleState(
            {'pyscripts': {'enabled': True, 'priority': 1}}))
    result = scope_worker.rate_scope('p', max_periods=2)
    assert result.rated == [MONTH, MONTH + hour]
    assert [price for *_, price in by_scope(storage.points, 'p')] == [
        D(0), D(1)]
