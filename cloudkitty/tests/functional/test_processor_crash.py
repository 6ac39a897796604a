"""SIGKILL the processor at random instants while it rates and reprocesses:
no period lost or doubled, every reprocessing task finished.

A kill hits either the whole processor (master and workers, started again
by the test) or one of its worker processes (started again by the master),
each a random instant after rating and reprocessing got under way.
"""

import os
import random
import signal
import time

from cloudkitty.tests.functional import test_processor as harness

#: Kills that must hit a processor while reprocessing tasks run (at most
#: MAX_KILLS kills in all); one in WHOLE kills the whole processor.
KILLS = 20
MAX_KILLS = 30
WHOLE = 3


class Tasks:
    """The scenario's reprocessing tasks: a new batch over the whole
    window once the previous one is finished, so that reprocessing runs
    beside the rating during every kill."""

    def __init__(self, scenario):
        from cloudkitty import db
        from cloudkitty.storage_state import reprocessing
        self.scenario = scenario
        self.engine = db.create_engine(f'sqlite:///{scenario.database}')
        self.schedule = reprocessing.ReprocessingScheduleManager(self.engine)
        self.created = 0

    def progress(self):
        return {task['id']: task['current_reprocess_time']
                for task in self.schedule.get_all()}

    def unfinished(self):
        return [task for task in self.schedule.get_all()
                if task['current_reprocess_time'] is None or
                task['current_reprocess_time'] < task['end_reprocess_time']]

    def ensure_running(self):
        if not self.unfinished():
            scenario = self.scenario
            self.created += len(self.schedule.create(
                scenario.scopes, 'crash test', scenario.base + harness.HOUR,
                scenario.last_data_period))


def children(pid):
    """The processes ``pid`` started, from any of its threads (the
    processor's workers)."""
    found = []
    for task in os.listdir(f'/proc/{pid}/task'):
        with open(f'/proc/{pid}/task/{task}/children') as stream:
            found.extend(int(child) for child in stream.read().split())
    return found


def test_sigkill_at_random_instants_with_reprocessing(tmp_path):
    # About 2000 periods to rate and as many to reprocess: a processor
    # rates a few hundred a second, and is killed every second or so.
    scenario = harness.Scenario(tmp_path, scopes=4, hours=500, seed=11,
                                max_workers=2)
    tasks = Tasks(scenario)
    rng = random.Random()
    kills = interrupted = reprocessing = whole = 0
    process = None
    try:
        while reprocessing < KILLS and kills < MAX_KILLS:
            tasks.ensure_running()
            before = scenario.states(), tasks.progress()
            if process is None:
                process = scenario.start()
            # Both kinds of work under way (or rating finished) ...
            scenario.wait_until(
                lambda before=before: (
                    scenario.caught_up() or scenario.states() != before[0])
                and tasks.progress() != before[1], 30, process, poll=0.01)
            # ... then a random instant of it: collecting, rating, between
            # the delete and the push, between the push and the record...
            time.sleep(rng.uniform(0, 0.15))
            if kills % WHOLE == 0:
                os.killpg(process.pid, signal.SIGKILL)
                process.communicate()
                process = None
                whole += 1
            else:
                os.kill(rng.choice(children(process.pid)), signal.SIGKILL)
            kills += 1
            interrupted += not scenario.caught_up()
            reprocessing += bool(tasks.unfinished())
        process = process or scenario.start()
        assert scenario.wait_until(
            lambda: scenario.caught_up() and not tasks.unfinished(), 120,
            process)
        code, err = harness.stop(process)
        process = None
        assert code == 0, err
    finally:
        if process is not None:
            harness.stop(process, signal.SIGKILL)
        tasks.engine.dispose()
    rated = len(harness.RATED.findall((tmp_path / 'ck.log').read_text()))
    expected = scenario.expected()
    stored = scenario.stored()
    # Periods (scope, start) with a point missing, or stored twice.
    lost = len({key[::2] for key in set(expected) - set(stored)})
    doubled = len({key[::2] for key, qty in stored.items() if len(qty) > 1})
    print(f'{kills} kills ({whole} of a whole processor, the others of a '
          f'worker process; {reprocessing} while reprocessing tasks ran, '
          f'{interrupted} before the rating had caught up); {rated} periods '
          f'rated, {tasks.created} reprocessing tasks finished; {lost} '
          f'periods lost, {doubled} doubled')
    scenario.assert_stored_exactly_once()
    # Every kill hit a processor while reprocessing tasks were under way.
    assert reprocessing >= KILLS, (kills, reprocessing)
