"""Two processors coordinated through tooz's redis driver, on the
machine's redis in a namespace of the test's own (:mod:`shared_servers`).
"""

import collections

from cloudkitty.tests.functional import shared_servers
from cloudkitty.tests.functional import harness

#: A key namespace of the test's own on the machine's redis (a fixture).
redis_namespace = shared_servers.redis_namespace


def test_two_processors_rate_each_scope_period_once(
        tmp_path, redis_namespace):
    scenario = harness.Scenario(tmp_path, scopes=6, hours=60, seed=5,
                                coordination_url=redis_namespace.url)
    scenario.write_config('ck2', max_workers=1)
    processes = [scenario.start(wait=False), scenario.start('ck2')]
    try:
        assert scenario.wait_until(scenario.caught_up, 120, processes[0])
    finally:
        results = [harness.stop(p) for p in processes]
    assert [code for code, _ in results] == [0, 0], results
    rated = collections.Counter()
    by_processor = []
    for name in ('ck.log', 'ck2.log'):
        found = harness.RATED.findall((tmp_path / name).read_text())
        by_processor.append(len(found))
        rated.update(found)
    print(f'periods rated by each processor: {by_processor}')
    assert rated and max(rated.values()) == 1, \
        [k for k, v in rated.items() if v > 1]
    periods = {(scope, (scenario.base + i * harness.HOUR).isoformat())
               for scope in scenario.scopes
               for i in range(1, scenario.hours + 1)}
    assert periods <= set(rated)
    scenario.assert_stored_exactly_once()
