"""SIGKILL the processor at random instants: no period lost or doubled."""

import os
import random
import signal
import time

from cloudkitty.tests.functional import test_processor as harness

KILLS = 20


def test_sigkill_at_random_instants_neither_loses_nor_doubles(tmp_path):
    # About 1200 periods: a processor rates a few hundred a second, and
    # each run below is killed a fraction of a second into its work.
    scenario = harness.Scenario(tmp_path, scopes=4, hours=300, seed=11,
                                max_workers=2)
    rng = random.Random()
    interrupted = 0
    for _ in range(KILLS):
        before = scenario.states()
        process = scenario.start()
        if not scenario.caught_up():
            scenario.wait_until(
                lambda before=before: scenario.states() != before, 30,
                process, poll=0.01)
        # A random instant of the work: collecting, rating, between the
        # delete and the push, between the push and the state...
        time.sleep(rng.uniform(0, 0.15))
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        if not scenario.caught_up():
            interrupted += 1
    process = scenario.start()
    try:
        assert scenario.wait_until(scenario.caught_up, 120, process)
    finally:
        code, err = harness.stop(process)
    assert code == 0, err
    scenario.assert_stored_exactly_once()
    # The kills must have hit processors in the middle of their work.
    print(f'{KILLS} kills, {interrupted} in the middle of the work')
    assert interrupted >= KILLS * 3 // 4, interrupted
