"""The processor rates ``file`` usage in rounds (grouped collection).

The file collector answers for many scopes at once (``retrieve_many``),
so a pass goes round by round: each metric of a round's period is
collected once for every scope due then, and the rating modules' states
are read once a round rather than once a scope-period. What is stored is
unchanged: every expected point exactly once.
"""

import datetime

from cloudkitty.collector import file as file_collector
from cloudkitty.orchestrator import processor
from cloudkitty import storage_state
from cloudkitty.tests.functional.harness import HOUR
from cloudkitty.tests.functional.harness import Scenario


def _counting(monkeypatch, owner, name, calls):
    original = getattr(owner, name)

    def counted(*args, **kwargs):
        calls.append(name)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)


def test_a_round_collects_each_metric_once_and_reads_states_once(
        tmp_path, monkeypatch):
    scenario = Scenario(tmp_path, scopes=3, hours=4, seed=5)
    calls = []
    _counting(monkeypatch, storage_state.ModuleStateManager, 'get_all',
              calls)
    _counting(monkeypatch, file_collector.FileCollector, 'retrieve_many',
              calls)
    _counting(monkeypatch, file_collector.FileCollector, 'retrieve', calls)
    # Under this clock the four data periods are due, and no other.
    now = scenario.base + 4 * HOUR + 2 * HOUR + datetime.timedelta(seconds=1)
    summary = processor.run_until_caught_up(
        scenario.conf(), use_locks=False, clock=lambda: now)
    assert summary['failed'] == {}
    assert summary['periods'] == 12
    rounds = 4
    metrics = 4  # the scenario's: cpu, volume, volume_count, traffic
    assert calls.count('get_all') == rounds
    assert calls.count('retrieve_many') == rounds * metrics
    assert calls.count('retrieve') == 0
    scenario.assert_stored_exactly_once()
