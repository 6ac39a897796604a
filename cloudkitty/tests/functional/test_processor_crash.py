"""SIGKILL the processor at random instants while it rates, and while it
rates and reprocesses: no period lost or doubled, every reprocessing task
finished.

A kill hits either the whole processor (master and workers, started again
by the test) or one of its worker processes (started again by the master),
each a random instant after rating and reprocessing got under way.
"""

import os
import random
import signal
import time

from cloudkitty.tests.functional import harness

#: Kills that must hit a processor while reprocessing tasks run (at most
#: MAX_KILLS kills in all); one in WHOLE kills the whole processor.
KILLS = 20
MAX_KILLS = 30
WHOLE = 3
#: Kills that must hit a processor while it rates, without reprocessing:
#: the instants a kill finds a period recorded but not stored are few (the
#: time of a store), so that a processor recording before storing loses a
#: period in every run, many kills are needed (about 5 such losses in 40).
RATING_KILLS = 40
RATING_MAX_KILLS = 50


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


class Killer:
    """Starts the scenario's processor and SIGKILLs it at random instants,
    one kill in WHOLE the whole processor (started again here), the others
    one of its worker processes (started again by its master)."""

    def __init__(self, scenario):
        self.scenario = scenario
        self.rng = random.Random()
        self.process = None
        self.kills = self.whole = 0

    def kill_once(self, snapshot, moved):
        """Kill a random instant after the work moved on: ``moved(before,
        snapshot())`` holds, ``before`` being ``snapshot()`` taken now."""
        scenario = self.scenario
        before = snapshot()
        if self.process is None:
            self.process = scenario.start()
        scenario.wait_until(lambda: moved(before, snapshot()), 30,
                            self.process, poll=0.01)
        # A random instant of the work: collecting, rating, between the
        # delete and the push, between the push and the record...
        time.sleep(self.rng.uniform(0, 0.15))
        if self.kills % WHOLE == 0:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.communicate()
            self.process = None
            self.whole += 1
        else:
            os.kill(self.rng.choice(children(self.process.pid)),
                    signal.SIGKILL)
        self.kills += 1

    def finish(self, done, timeout=120):
        """Let the processor run until ``done()``; stop it cleanly."""
        self.process = self.process or self.scenario.start()
        assert self.scenario.wait_until(done, timeout, self.process)
        code, err = harness.stop(self.process)
        self.process = None
        assert code == 0, err

    def close(self):
        if self.process is not None:
            harness.stop(self.process, signal.SIGKILL)
            self.process = None


def lost_and_doubled(scenario):
    """``(lost, doubled)``: periods (scope, start) with an expected point
    missing, and periods with a point stored twice."""
    expected = scenario.expected()
    stored = scenario.stored()
    lost = len({key[::2] for key in set(expected) - set(stored)})
    doubled = len({key[::2] for key, qty in stored.items() if len(qty) > 1})
    return lost, doubled


def test_sigkill_at_random_instants_while_rating(tmp_path):
    # Rating alone: no reprocessing task rates a period a second time, so a
    # period the state records but a kill kept from being stored (the state
    # written before the store) stays lost. About 8000 periods: a processor
    # rates a few hundred a second and is killed every second or so.
    scenario = harness.Scenario(tmp_path, scopes=4, hours=2000, seed=12,
                                max_workers=2)
    killer = Killer(scenario)
    interrupted = 0
    try:
        while (interrupted < RATING_KILLS
               and killer.kills < RATING_MAX_KILLS):
            killer.kill_once(scenario.states,
                             lambda before, now: now != before)
            interrupted += not scenario.caught_up()
        killer.finish(scenario.caught_up)
    finally:
        killer.close()
    rated = len(harness.RATED.findall((tmp_path / 'ck.log').read_text()))
    lost, doubled = lost_and_doubled(scenario)
    print(f'{killer.kills} kills ({killer.whole} of a whole processor, the '
          f'others of a worker process; {interrupted} before the rating had '
          f'caught up); {rated} periods rated; {lost} periods lost, '
          f'{doubled} doubled')
    scenario.assert_stored_exactly_once()
    # Every kill hit a processor in the middle of the rating.
    assert interrupted >= RATING_KILLS, (killer.kills, interrupted)


def test_sigkill_at_random_instants_with_reprocessing(tmp_path):
    # About 2000 periods to rate and as many to reprocess: a processor
    # rates a few hundred a second, and is killed every second or so.
    scenario = harness.Scenario(tmp_path, scopes=4, hours=500, seed=11,
                                max_workers=2)
    tasks = Tasks(scenario)
    killer = Killer(scenario)
    interrupted = reprocessing = 0

    def snapshot():
        return scenario.states(), tasks.progress()

    def moved(before, now):
        # Both kinds of work under way (or rating finished).
        return ((scenario.caught_up() or now[0] != before[0])
                and now[1] != before[1])

    try:
        while reprocessing < KILLS and killer.kills < MAX_KILLS:
            tasks.ensure_running()
            killer.kill_once(snapshot, moved)
            interrupted += not scenario.caught_up()
            reprocessing += bool(tasks.unfinished())
        killer.finish(lambda: scenario.caught_up() and not tasks.unfinished())
    finally:
        killer.close()
        tasks.engine.dispose()
    rated = len(harness.RATED.findall((tmp_path / 'ck.log').read_text()))
    lost, doubled = lost_and_doubled(scenario)
    print(f'{killer.kills} kills ({killer.whole} of a whole processor, the '
          f'others of a worker process; {reprocessing} while reprocessing '
          f'tasks ran, {interrupted} before the rating had caught up); '
          f'{rated} periods rated, {tasks.created} reprocessing tasks '
          f'finished; {lost} periods lost, {doubled} doubled')
    scenario.assert_stored_exactly_once()
    # Every kill hit a processor while reprocessing tasks were under way.
    assert reprocessing >= KILLS, (killer.kills, reprocessing)
