"""Several processors sharing the scopes out through redis and etcd.

Each processor is a ``cloudkitty-processor`` process with a configuration
file of its own (``[DEFAULT] host`` differs: they stand in for hosts), all
on one database and one coordination backend: the machine's redis (in a
namespace of the test's own) or an etcd the test starts. ``member_timeout``
is :data:`MEMBER_TIMEOUT` seconds, so that a killed processor leaves the
group within seconds.
"""

import collections
import datetime
import os
import re
import signal
import time

import pytest
from tooz import hashring

from cloudkitty.tests.functional import coordination
from cloudkitty.tests.functional import shared_servers
from cloudkitty.tests.functional import harness

MEMBER_TIMEOUT = 3
#: How soon after a kill every scope of the killed processor has moved.
TAKEOVER_SECONDS = MEMBER_TIMEOUT + 45
#: The rating worker's line when its view of the group changes:
#: (number of live members, its own member id).
JOINED = re.compile(r'Group cloudkitty-processors: (\d+) live members, '
                    r'(\S+) among them')

#: A key namespace of the test's own on the machine's redis (a fixture).
redis_namespace = shared_servers.redis_namespace


def configure(scenario, name, host, reprocessing=0):
    """Write ``<name>.conf``: host ``host``, :data:`MEMBER_TIMEOUT`,
    ``reprocessing`` reprocessing workers."""
    path = scenario.write_config(name)
    text = path.read_text()
    text = text.replace('[DEFAULT]\n', f'[DEFAULT]\nhost = {host}\n', 1)
    text = text.replace('[orchestrator]\n', '[orchestrator]\nmember_timeout '
                        f'= {MEMBER_TIMEOUT}\n', 1)
    text = text.replace('max_workers_reprocessing = 1',
                        f'max_workers_reprocessing = {reprocessing}')
    path.write_text(text)


def set_active(scenario, active):
    from cloudkitty import db
    from cloudkitty import storage_state
    engine = db.create_engine(f'sqlite:///{scenario.database}')
    try:
        states = storage_state.ScopeStateManager(engine, 'project_id',
                                                 'source', 'file')
        for scope in scenario.scopes:
            states.set_active(scope, active)
    finally:
        engine.dispose()


def read_log(scenario, name):
    try:
        return (scenario.tmp / f'{name}.log').read_text()
    except FileNotFoundError:
        return ''


def group_view(scenario, name):
    """``(live members, own member id)`` last logged by ``name``."""
    found = JOINED.findall(read_log(scenario, name))
    return (int(found[-1][0]), found[-1][1]) if found else (0, None)


def rated_in_group(scenario, name, members):
    """The scopes ``name`` rated while its view of the group held at least
    ``members`` live members (its own share of them, and those of
    members it saw leave, but not a share it took over from a member it
    no longer saw), and its views of the group, in order (for a failure's
    message)."""
    scopes, views, live = set(), [], 0
    for line in read_log(scenario, name).splitlines():
        joined = JOINED.search(line)
        if joined:
            live = int(joined.group(1))
            views.append(line[:23] + f' {live}')
        rated = harness.RATED.search(line)
        if rated and live >= members:
            scopes.add(rated.group(1))
    return scopes, views


def rated_by(scenario, names):
    """``{name: Counter((scope, period start))}`` from the RATED lines."""
    return {name: collections.Counter(
        harness.RATED.findall(read_log(scenario, name))) for name in names}


@pytest.fixture(params=['redis', 'etcd'])
def backend_url(request, tmp_path):
    """A coordination URL no other test uses: the machine's redis in a
    namespace of its own (its keys deleted after the test), or an etcd
    started for the test."""
    if request.param == 'redis':
        return request.getfixturevalue('redis_namespace').url
    server = coordination.Etcd(str(tmp_path / 'etcd')).start()
    request.addfinalizer(server.stop)
    return server.url


def test_processors_share_the_scopes_and_take_over_a_dead_ones(
        tmp_path, backend_url):
    # The ring (of member ids holding process ids, so different in every
    # run) leaves one of three processors without a share about once in
    # 500 runs: the one killed is the one with the largest share, and a
    # survivor is expected to rate only if the ring gives it scopes.
    scenario = harness.Scenario(tmp_path, scopes=18, hours=50, seed=21,
                                coordination_url=backend_url)
    names = ['ck', 'ck2', 'ck3']
    for index, name in enumerate(names):
        configure(scenario, name, f'host-{index}')
    # Inactive until the three have joined, so that none rates the others'
    # scopes while it is alone in the group.
    set_active(scenario, False)
    processes = {name: scenario.start(name, wait=False) for name in names}
    try:
        assert scenario.wait_until(lambda: all(
            group_view(scenario, name)[0] == 3 for name in names), 60), \
            [group_view(scenario, name) for name in names]
        members = {group_view(scenario, name)[1]: name for name in names}
        ring = hashring.HashRing(set(members))
        owner = {scope: members[ring.get_nodes(scope.encode()).pop()]
                 for scope in scenario.scopes}
        shared = collections.Counter(owner.values())
        assert len(shared) >= 2, owner
        victim = max(names, key=lambda name: shared[name])
        survivors = [name for name in names if name != victim]
        after = hashring.HashRing({member for member, name in members.items()
                                   if name != victim})
        set_active(scenario, True)
        assert scenario.wait_until(lambda: len(harness.RATED.findall(
            read_log(scenario, victim))) >= 3, 60, processes[victim],
            poll=0.01)
        os.killpg(processes[victim].pid, signal.SIGKILL)
        killed = time.monotonic()
        processes[victim].communicate()
        at_kill = scenario.states()
        left = [scope for scope, name in owner.items()
                if name == victim and at_kill[scope] <
                scenario.last_data_period]
        assert left, 'the victim had finished its share before the kill'
        # Its scopes are taken over once the group has dropped it: each
        # survivor rates its new scopes' backlogs one after the other, so
        # the last one moves some seconds after the first; all within a
        # small part of a period (an hour).
        assert scenario.wait_until(lambda: all(
            scenario.states()[scope] > at_kill[scope] for scope in left),
            TAKEOVER_SECONDS)
        taken_over = time.monotonic() - killed
        assert scenario.wait_until(scenario.caught_up, 90)
        # Read before any survivor stops: one stopping leaves the other
        # alone in the group, which then rates the periods left of the
        # stopping one's scopes (caught up is up to the last period with
        # usage; the empty ones after it are still due).
        shares = {name: rated_in_group(scenario, name, 2)
                  for name in survivors}
    finally:
        results = {name: harness.stop(processes[name]) for name in names}
    assert [results[name][0] for name in survivors] == [0, 0], results
    rated = rated_by(scenario, names)
    total = sum(rated.values(), collections.Counter())
    print(f'{backend_url.split(":")[0]}: scopes per processor '
          f'{shared}, periods rated '
          f'{ {name: sum(c.values()) for name, c in rated.items()} }; '
          f'{len(left)} scopes of the killed one taken over '
          f'{taken_over:.1f}s after the kill')
    assert max(total.values()) == 1, [k for k, v in total.items() if v > 1]
    # Each rated its own share; the survivors also the victim's, after it.
    assert {scope for scope, _ in rated[victim]} <= {
        scope for scope, name in owner.items() if name == victim}
    for name in survivors:
        # Its own share and the victim's, as long as it saw the other
        # survivor (one whose heartbeat is late drops out, and its scopes
        # are then rightly taken over).
        scopes, views = shares[name]
        assert scopes <= {scope for scope, owned in owner.items()
                          if owned in (name, victim)}, (
            name, {scope: owner[scope] for scope in scopes}, views,
            {name: group_view(scenario, name) for name in names})
        if name in shared or any(
                members[after.get_nodes(scope.encode()).pop()] == name
                for scope in left):
            assert rated[name]
    assert set(left) <= {scope for name in survivors
                         for scope, _ in rated[name]}
    # Every period stored once (a period the victim stored may miss its
    # log line: the kill can fall between the two).
    scenario.assert_stored_exactly_once()


#: The coordination servers of the tests' own, which a test may stop and
#: start again: redis keeps nothing (it comes back empty), etcd keeps its
#: data (it comes back with the locks, members and leases it had).
OWN_SERVERS = {'redis': coordination.Redis, 'etcd': coordination.Etcd}


#: The lines of cloudkitty.orchestrator.lock saying the backend failed.
OUTAGE_SEEN = re.compile(
    r'Coordination backend \S+ unreachable|is not in the group '
    r'cloudkitty-processors|Could not (join the group|read the members|'
    r'take the lock|check the lock|release the lock)|'
    r'was lost while held')
#: The lock of a scope could not be checked before a store (fencing)...
UNCHECKED = re.compile(r'Could not check the lock of scope (\S+),')
#: ... so the worker abandoned the scope: (scope, the first period not
#: stored). The worker names the period it was about to store; a group of
#: periods stored together (orchestrator/batch.py) names them all.
FENCED = re.compile(r'Scope (\S+) abandoned for this pass, to be retried: '
                    r'scope [^\s:]+(?: period|: periods) (\S+?)(?:, \S+?)*:? '
                    r'(?:not stored nor recorded, )?its lock was lost')
#: How long a processor may take to meet an outage: a call into tooz's
#: redis driver retries for about a minute before it fails.
OUTAGE_NOTICED = 120


def outages_seen(scenario, name):
    """How many times ``name`` logged that the backend failed."""
    return len(OUTAGE_SEEN.findall(read_log(scenario, name)))


def fenced_stores(scenario, name, since):
    """``[(scope, period start or None)]`` of the scopes whose lock ``name``
    could not check before a store, after its first ``since`` outage lines;
    with the period it then abandoned, once it logged it."""
    log = read_log(scenario, name)
    starts = [m.start() for m in OUTAGE_SEEN.finditer(log)]
    if len(starts) <= since:
        return []
    log = log[starts[since]:]
    fenced = []
    for unchecked in UNCHECKED.finditer(log):
        scope = unchecked.group(1)
        period = next((m.group(2) for m in FENCED.finditer(
            log, unchecked.end()) if m.group(1) == scope), None)
        fenced.append((scope, period))
    return fenced


def every_period(scenario):
    """``{(scope, period start)}`` of every period from the first to the
    one each scope's state last recorded (at least every period with
    usage, once caught up), as the RATED lines name them."""
    periods = set()
    for scope, last in scenario.states().items():
        start = scenario.base + harness.HOUR
        while last is not None and start <= last:
            periods.add((scope, start.isoformat()))
            start += harness.HOUR
    return periods


@pytest.mark.parametrize('backend', sorted(OWN_SERVERS))
def test_coordination_backend_stopped_and_started_again(tmp_path, backend):
    # A server of our own: the machine's redis is shared with other tests.
    server = OWN_SERVERS[backend](str(tmp_path / backend)).start()
    scenario = harness.Scenario(tmp_path, scopes=6, hours=200, seed=23,
                                coordination_url=server.url)
    names = ['ck', 'ck2']
    for index, name in enumerate(names):
        configure(scenario, name, f'host-{index}')
    set_active(scenario, False)
    processes = {name: scenario.start(name, wait=False) for name in names}
    try:
        assert scenario.wait_until(lambda: all(
            group_view(scenario, name)[0] == 2 for name in names), 60)
        set_active(scenario, True)
        assert scenario.wait_until(lambda: sum(
            sum(c.values()) for c in rated_by(scenario, names).values()) >=
            20, 60, processes['ck'], poll=0.01)
        seen = {name: outages_seen(scenario, name) for name in names}
        server.stop()
        assert not scenario.caught_up()
        # Without the backend, no scope is taken and no lock vouched for:
        # each processor meets the outage (a call to the backend fails, and
        # is logged). Each store comes after its scope's lock was checked:
        # a processor storing a period as the backend went away finds its
        # lock unconfirmed, and abandons the period instead of storing it.
        assert scenario.wait_until(lambda: all(
            outages_seen(scenario, name) > seen[name] for name in names),
            OUTAGE_NOTICED), {n: read_log(scenario, n)[-3000:] for n in names}
        for name in names:
            assert scenario.wait_until(lambda name=name: all(
                period is not None
                for _, period in fenced_stores(scenario, name, seen[name])),
                10), read_log(scenario, name)[-3000:]
        frozen = scenario.states()
        for name in names:
            for scope, period in fenced_stores(scenario, name, seen[name]):
                assert frozen[scope] == (datetime.datetime.fromisoformat(
                    period) - harness.HOUR)
        assert not scenario.caught_up()
        server.start()
        assert scenario.wait_until(scenario.caught_up, 90)
    finally:
        results = [harness.stop(processes[name]) for name in names]
        server.stop()
    assert [code for code, _ in results] == [0, 0], results
    # Each noticed the outage, by whichever call met it first (joining,
    # the members, a lock taken, checked or released), and handled it: no
    # pass ended by an error let through.
    for name in names:
        log = read_log(scenario, name)
        assert OUTAGE_SEEN.search(log), log[-3000:]
        assert 'Processor pass failed' not in log, log[-3000:]
    total = sum(rated_by(scenario, names).values(), collections.Counter())
    print(f'{backend} stopped and started again: {sum(total.values())} '
          f'periods rated, '
          f'{sum(v - 1 for v in total.values())} rated twice, '
          f'{len(every_period(scenario) - set(total))} never')
    # Every period rated exactly once (none missed up to where each scope
    # stands, none twice), and stored exactly once.
    assert set(total) == every_period(scenario)
    assert max(total.values()) == 1
    scenario.assert_stored_exactly_once()
