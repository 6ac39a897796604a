"""Hostile pyscripts against their boundary: one test per attack of
issue 15, each asserting that the attack fails and that the service (and
the next script) lives on.

The scripts run through the real module and sandbox processes on this
machine's kernel; the attacks on the processor and the API run through a
real ``cloudkitty-processor`` and the API application. An attack script
tries each of its moves and reports what each gave (``attempt``), so that
a test sees an attack succeed as soon as the boundary has a hole, rather
than one failing move hiding the others.

``CK_PYSCRIPTS_TEST_SKIP=seccomp,landlock`` (layer names of
:data:`LAYERS`, or ``all``) runs the sandboxes of this module without
those layers (``allow_unconfined``): the way to see each test fail when
the boundary is taken away.
"""

import datetime
import decimal
import json
import logging
import os
import platform
import subprocess
import time
from unittest import mock
import urllib.request

import pytest
import webtest

from cloudkitty.api import app as api_app
from cloudkitty.api import hooks
from cloudkitty.rating import pyscripts
from cloudkitty.rating.pyscripts import _confine
from cloudkitty.rating.pyscripts import db as scripts_db
from cloudkitty.rating.pyscripts import exceptions as exc
from cloudkitty.rating.pyscripts import sandbox
from cloudkitty.tests.functional.api import conftest as api_fixtures
from cloudkitty.tests.functional import live_server
from cloudkitty.tests.functional.rating import test_pyscripts_sandbox as base
from cloudkitty.tests.functional import shared_servers
from cloudkitty.tests.functional import harness

D = decimal.Decimal
HOUR = datetime.timedelta(hours=1)
LAYERS = ('user', 'mount', 'pid', 'network', 'ipc', 'uts', 'root',
          'rlimits', 'landlock', 'capabilities', 'no-new-privs', 'seccomp')
_SKIP = os.environ.get('CK_PYSCRIPTS_TEST_SKIP', '')
SKIP = frozenset(LAYERS if _SKIP == 'all' else filter(None,
                                                      _SKIP.split(',')))
BOUNDARY = sandbox.Boundary(allow_unconfined=bool(SKIP), skip=SKIP)
LIMITS = sandbox.Limits(cpu_time=2, memory=256, timeout=20)
TGKILL = _confine._CHECKED[platform.machine()]['tgkill']
#: A virtual host of the test's own on the machine's RabbitMQ (a fixture).
rabbitmq_vhost = shared_servers.rabbitmq_vhost

#: The head of an attack script: ``attempt(name, move)`` records what the
#: move returned (``repr``, cut) or how it was refused.
ATTEMPT = '''\
import json, os, signal, sys, time
found = {}
def attempt(name, move):
    try:
        found[name] = 'done: ' + repr(move())[:5000]
    except BaseException as error:
        found[name] = f'refused: {type(error).__name__}: {error}'[:300]
'''
#: The tail: the report in the first point's metadata, and a price.
REPORT = '''
point = data['usage']['cpu'][0]
point['metadata']['found'] = json.dumps(found)
point['rating']['price'] = point['vol']['qty'] * 2
'''


@pytest.fixture
def pool():
    pool = sandbox.SandboxPool(LIMITS, boundary=BOUNDARY)
    yield pool
    pool.close()


@pytest.fixture
def module(pool):
    return pyscripts.PyScripts(pool=pool)


def attack(module, moves, name='hostile'):
    """Run ``moves`` (script lines using ``attempt``) and return
    ``{move: outcome}``; the script must then have priced its frame."""
    priced = module.run_script(base.script(ATTEMPT + moves + REPORT, name),
                               base.frame(3))
    (_type, point), = priced.iterpoints()
    assert point.price == 6
    return json.loads(point.metadata['found'])


def refused(found):
    """The moves that were not refused."""
    return {move: outcome for move, outcome in found.items()
            if not outcome.startswith('refused: ')}


def lives_on(module):
    """The next script runs and prices."""
    priced = module.run_script(base.script(base.PRICE_PER_CENT, 'cents'),
                               base.frame(5))
    assert next(priced.iterpoints())[1].price == D('0.05')


def sandbox_processes():
    """pids of the live processes started as a sandbox by this process
    (whatever became of their parents)."""
    marker = f'"parent": {os.getpid()},'.encode()
    found = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/cmdline', 'rb') as cmdline:
                text = cmdline.read()
        except OSError:
            continue
        if b'_sandbox_main.py' in text and marker in text and \
                base._state(int(entry)) not in (None, 'Z'):
            found.append(int(entry))
    return found


# -- the boundary is there, or scripts do not run ---------------------------

@pytest.mark.skipif(bool(SKIP), reason='the boundary is taken apart')
def test_every_layer_is_up_on_this_kernel(pool):
    process = sandbox.Sandbox(LIMITS, boundary=BOUNDARY)
    try:
        process._start(time.monotonic() + 20)
        assert process.missing == {}
        assert set(process.layers) >= {
            'user-namespace', 'mount-namespace', 'pid-namespace',
            'network-namespace', 'ipc-namespace', 'uts-namespace', 'root',
            'rlimits', 'no-new-privs', 'capabilities', 'seccomp'}
        abi = _confine.landlock_abi()
        expected = {'landlock-fs'} if abi >= 1 else set()
        expected |= {'landlock-net'} if abi >= 4 else set()
        expected |= {'landlock-scope'} if abi >= 6 else set()
        assert expected <= set(process.layers)
    finally:
        process.close()


@pytest.mark.parametrize('layer', ['seccomp', 'user', 'root', 'landlock'])
def test_a_missing_layer_refuses_every_script(layer, caplog):
    module = pyscripts.PyScripts(pool=sandbox.SandboxPool(
        LIMITS, boundary=sandbox.Boundary(skip=frozenset([layer]))))
    try:
        with pytest.raises(exc.ScriptFailed) as caught:
            module.run_script(base.script("print('ran')", 'any'),
                              base.frame(1))
        # Refused again at once, without a sandbox started to learn it.
        with pytest.raises(exc.ScriptFailed) as again:
            with mock.patch.object(sandbox, 'Sandbox') as started:
                module.run_script(base.script('pass', 'other'),
                                  base.frame(1))
        assert not started.called
        assert again.value.reason == caught.value.reason
    finally:
        module.close()
    reason = caught.value.reason
    assert reason.startswith('the sandbox cannot be confined on this host, '
                             'missing: ')
    assert '(disabled)' in reason and layer in reason
    assert 'allow_unconfined = true' in reason
    # The script never reached a sandbox.
    assert not any('ran' in record.getMessage() for record in caplog.records)


def test_allow_unconfined_runs_with_a_warning_at_every_start(caplog):
    pool = sandbox.SandboxPool(LIMITS, boundary=sandbox.Boundary(
        allow_unconfined=True, skip=frozenset(['seccomp'])))
    module = pyscripts.PyScripts(pool=pool)
    try:
        for _ in range(2):
            module.run_script(base.script(base.PRICE_PER_CENT), base.frame(1))
            pool.flush()
    finally:
        module.close()
    warnings = [r.getMessage() for r in caplog.records
                if 'UNCONFINED' in r.getMessage()]
    assert len(warnings) == 2
    assert all('seccomp (disabled)' in warning for warning in warnings)


def test_the_option_is_off_by_default(conf):
    assert sandbox.Boundary.from_conf(conf) == sandbox.Boundary()


# -- the attacks ------------------------------------------------------------

def test_reads_no_file_configuration_or_environment(module, tmp_path,
                                                    monkeypatch):
    config = tmp_path / 'cloudkitty.conf'
    config.write_text('[database]\nconnection = '
                      'mysql+pymysql://ck:S3cretPassw0rd@db/cloudkitty\n')
    written = tmp_path / 'written'
    monkeypatch.setenv('CK_BOUNDARY_SECRET', 'EnvSecretValue')
    found = attack(module, f'''
attempt('passwd', lambda: open('/etc/passwd').read())
attempt('config', lambda: open({str(config)!r}).read())
attempt('list root', lambda: os.listdir('/'))
attempt('write', lambda: open({str(written)!r}, 'w').write('x'))
def ancestors():
    seen, pid = [], os.getpid()
    while pid > 1:
        seen.append(open(f'/proc/{{pid}}/environ', 'rb').read())
        pid = int(open(f'/proc/{{pid}}/stat').read().rsplit(')')[1].split()[1])
    return seen
attempt('environ of the service', ancestors)
if set(os.environ) - {{'LC_CTYPE'}}:
    found['own environ'] = 'done: ' + repr(dict(os.environ))
''')
    if _confine.landlock_abi() < 1:
        # The private root alone: its directory names can be listed.
        found.pop('list root')
    assert refused(found) == {}
    report = json.dumps(found)
    assert 'S3cretPassw0rd' not in report and 'root:' not in report
    assert 'EnvSecretValue' not in report
    assert not written.exists()
    lives_on(module)


def test_opens_no_socket_to_the_api_or_anywhere(module, conf,
                                                tmp_path):
    backends = hooks.Backends(conf, scope_reset=lambda *args: None)
    backends.storage.push([api_fixtures.frame(api_fixtures.at(1), {'cpu': [
        api_fixtures.point('victim', 1, '7.5')]})])
    with live_server.serve(api_app.setup_app(conf, backends)) as url:
        port = int(url.rsplit(':', 1)[1])
        found = attack(module, f'''
import socket, urllib.request
attempt('api summary', lambda: urllib.request.urlopen(
    {url + '/v2/summary'!r}, timeout=5).read())
attempt('tcp connect', lambda: socket.create_connection(
    ('127.0.0.1', {port}), timeout=5))
def listen():
    server = socket.socket()
    server.bind(('0.0.0.0', 0))
    server.listen()
    return server.getsockname()
attempt('listen', listen)
attempt('udp', lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM
    ).sendto(b'x', ('127.0.0.1', {port})))
attempt('unix', lambda: socket.socket(socket.AF_UNIX).connect(
    {str(tmp_path / 'socket')!r}))
attempt('socketpair', socket.socketpair)
''')
        # The API is still there for everybody else.
        summary = urllib.request.urlopen(url + '/v2/summary', timeout=5)
        assert json.load(summary)['total'] == 1
    backends.engine.dispose()
    assert refused(found) == {}
    assert 'victim' not in json.dumps(found)
    lives_on(module)


def test_cannot_reach_the_database(module, conf, database):
    backends = hooks.Backends(conf, scope_reset=lambda *args: None)
    backends.storage.push([api_fixtures.frame(api_fixtures.at(1), {'cpu': [
        api_fixtures.point('victim', 1, '7.5')]})])

    def victim_total():
        return backends.storage.total(
            begin=api_fixtures.at(1), end=api_fixtures.at(2),
            filters={'project_id': 'victim'})['results'][0]['rate']

    before = victim_total()
    found = attack(module, f'''
attempt('sqlalchemy', lambda: __import__('sqlalchemy'))
def zero():
    import sqlite3
    db = sqlite3.connect({str(database)!r})
    tables = [row[0] for row in db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")]
    for table in tables:
        db.execute(f'DELETE FROM "{{table}}"')
    db.commit()
    return tables
attempt('sqlite', zero)
''')
    assert refused(found) == {}
    assert victim_total() == before == D('7.5')
    backends.engine.dispose()
    lives_on(module)


def test_no_process_outlives_the_sandbox(module, pool):
    marker = f'{time.time() % 1000:.6f}'
    found = attack(module, f'''
import subprocess
def fork_and_hide():
    pid = os.fork()
    if pid == 0:
        os.setsid()
        if os.fork() == 0:
            time.sleep(30)
        os._exit(0)
    return pid
attempt('fork', fork_and_hide)
attempt('spawn', lambda: subprocess.Popen(
    ['sleep', '3{marker}'], start_new_session=True).pid)
attempt('exec', lambda: os.execv('/bin/sh', ['sh', '-c', 'sleep 30']))
attempt('setsid', os.setsid)
attempt('setpgid', lambda: os.setpgid(0, 0))
''')
    pool.flush()
    # Nothing the script did is still running...
    deadline = time.monotonic() + 5
    while sandbox_processes():
        assert time.monotonic() < deadline, sandbox_processes()
        time.sleep(0.05)
    sleeping = [entry for entry in os.listdir('/proc') if entry.isdigit()
                and _cmdline(entry) == f'sleep\x003{marker}\x00'.encode()]
    assert sleeping == []
    # ... nor ever ran.
    assert refused(found) == {}
    lives_on(module)


def test_signals_nobody_but_itself(module):
    victim = subprocess.Popen(['sleep', '60'])
    try:
        found = attack(module, f'''
attempt('parent', lambda: os.kill(os.getppid(), signal.SIGKILL))
attempt('victim', lambda: os.kill({victim.pid}, signal.SIGKILL))
attempt('victim group', lambda: os.killpg({victim.pid}, signal.SIGKILL))
attempt('pid 1', lambda: os.kill(1, signal.SIGKILL))
def tgkill():
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall({TGKILL}, {victim.pid}, {victim.pid}, signal.SIGKILL):
        raise OSError(ctypes.get_errno(), 'tgkill')
attempt('tgkill', tgkill)
attempt('service', lambda: os.kill({os.getpid()}, 0))
''')
        assert victim.poll() is None
    finally:
        victim.kill()
        victim.wait()
    assert refused(found) == {}
    lives_on(module)


def test_no_state_survives_a_script(tmp_path, pool):
    from cloudkitty import db
    from cloudkitty.db import migration
    engine = db.create_engine(f'sqlite:///{tmp_path / "ck.sqlite"}')
    migration.upgrade(engine)
    store = scripts_db.PyScriptsDB(engine)
    module = pyscripts.PyScripts(scripts_db=store, pool=pool)
    start = base.START
    # Patches the sandbox so that every reply it sends from then on
    # multiplies the prices by 1000, whatever script asks.
    patcher = store.create_script('patcher', '''
import json, decimal
if not getattr(json, 'patched', False):
    plain = json.dumps
    def dumps(reply, **options):
        for points in (reply.get('data') or {}).get('usage', {}).values():
            for point in points:
                point['rating']['price'] = decimal.Decimal(
                    point['rating']['price']) * 1000
        return plain(reply, **options)
    json.dumps = dumps
    json.patched = True
''', start=start, force=True)

    def price(qty=1):
        module.reload_config(start)
        priced = module.process(base.frame(qty))
        return next(priced.iterpoints())[1].price

    # The patch works, in the patcher's own process: its own later runs
    # are multiplied.
    assert price() == 0
    assert price() == 0
    store.delete_script(patcher['script_id'])
    store.create_script('cents', base.PRICE_PER_CENT, start=start,
                        force=True)
    assert price(100) == D('1.00')
    assert price(100) == D('1.00')
    # The patcher's sandbox is gone, not kept idle.
    assert all(key[0] != patcher['script_id'] for key in pool.idle())
    engine.dispose()


def test_a_script_revision_never_runs_in_another_scripts_sandbox(module):
    first = base.sandbox_token(module, base.TOKEN, 'one')
    second = base.sandbox_token(module, base.TOKEN, 'two')
    changed = base.sandbox_token(module, base.TOKEN + '\n# v2\n', 'one')
    assert len({first, second, changed}) == 3
    assert base.sandbox_token(module, base.TOKEN, 'one') == first


def test_writes_a_bounded_output_to_the_log_only(capfd, caplog):
    caplog.set_level(logging.INFO, sandbox.LOG.name)
    module = pyscripts.PyScripts(pool=sandbox.SandboxPool(
        sandbox.Limits(cpu_time=5, memory=256, timeout=20, output=2 ** 16),
        boundary=BOUNDARY))
    started = time.monotonic()
    try:
        with pytest.raises(exc.ScriptFailed) as caught:
            module.run_script(base.script(
                "import os\nchunk = b'x' * 2 ** 20\nfor _ in range(200):\n"
                "    os.write(2, chunk)\n", 'flood'), base.frame(1))
        assert 'wrote more than 65536 bytes' in caught.value.reason
        assert time.monotonic() - started < 10
        lives_on(module)
    finally:
        module.close()
    out, err = capfd.readouterr()
    assert 'xxxx' not in out + err
    logged = [r.getMessage() for r in caplog.records
              if r.getMessage().startswith('pyscript flood: ')]
    assert 0 < sum(map(len, logged)) < 2 * sandbox.LINE_CHARS


def test_log_lines_carry_the_scripts_name_and_are_cut(module, caplog):
    caplog.set_level(logging.INFO, sandbox.LOG.name)
    module.run_script(base.script(
        "print('hello')\nprint('y' * 5000)\nfor i in range(200):\n"
        "    print(i)\n" + base.PRICE_PER_CENT, 'chatty'), base.frame(1))
    lines = [r.getMessage() for r in caplog.records
             if r.getMessage().startswith('pyscript chatty: ')]
    assert lines[0] == 'pyscript chatty: hello'
    assert lines[1] == ('pyscript chatty: ' + 'y' * sandbox.LINE_CHARS +
                        ' [cut]')
    assert len(lines) == sandbox.LOG_LINES + 1
    assert lines[-1].endswith('more bytes of output not logged')


def test_reply_is_bounded(module):
    module = pyscripts.PyScripts(pool=sandbox.SandboxPool(
        sandbox.Limits(cpu_time=5, memory=256, timeout=20, reply=1),
        boundary=BOUNDARY))
    try:
        with pytest.raises(exc.ScriptFailed) as caught:
            module.run_script(base.script(
                "data['usage']['cpu'][0]['metadata']['blob'] = "
                "'x' * 5 * 2 ** 20", 'bloat'), base.frame(1))
        assert 'the reply is larger than 1 MiB' in caught.value.reason
        lives_on(module)
    finally:
        module.close()


# -- through the API and a real processor ----------------------------------

def test_the_api_never_runs_a_script(conf, tmp_path):
    backends = hooks.Backends(conf, scope_reset=lambda *args: None)
    app = webtest.TestApp(api_app.setup_app(conf, backends))
    app.post_json('/v1/rating/module_config/pyscripts/scripts?force=true', {
        'name': 'marker', 'start': '2020-01-01T00:00:00',
        'data': f'open({str(tmp_path / "ran")!r}, "w")\n'})
    body = {'resources': [{'service': 'cpu', 'volume': '1'}]}
    assert app.post_json('/v1/rating/quote', body).json == 0
    app.put_json('/v1/rating/modules/pyscripts', {'enabled': True},
                 status=302)
    response = app.post_json('/v1/rating/quote', body, status=503)
    assert response.json['faultstring'] == (
        'The rating module(s) pyscripts price quotes in the processors '
        'only, reached over [DEFAULT] transport_url, which is not set on '
        'this API.')
    assert not (tmp_path / 'ran').exists()
    assert sandbox_processes() == []
    backends.engine.dispose()


#: Prices at a cent per unit, after trying to kill the process that runs
#: it, the processor's master found through /proc, and every other
#: process of the service.
KILLER = ATTEMPT + '''
def masters():
    killed = []
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            command = open(f'/proc/{entry}/cmdline', 'rb').read()
            if b'processor.py: ' in command:
                os.kill(int(entry), signal.SIGKILL)
                killed.append(entry)
    return killed
attempt('processor through /proc', masters)
attempt('parent', lambda: os.kill(os.getppid(), signal.SIGKILL))
import decimal
for points in data['usage'].values():
    for point in points:
        point['rating']['price'] = point['vol']['qty'] * decimal.Decimal(
            '0.01')
'''


def service_processes(master):
    """pids of the processor's processes (not its sandboxes)."""
    return sorted(pid for pid in [master.pid] + base.descendants(master.pid)
                  if b'_sandbox_main.py' not in _cmdline(pid))


def _cmdline(pid):
    try:
        with open(f'/proc/{pid}/cmdline', 'rb') as cmdline:
            return cmdline.read()
    except OSError:
        return b''


def test_a_script_kills_no_processor_process(tmp_path, rabbitmq_vhost):
    scenario = harness.Steered(tmp_path, rabbitmq_vhost.url, scopes=1,
                               hours=3, seed=15)
    app, backends = scenario.api()
    app.post_json('/v1/rating/module_config/pyscripts/scripts?force=true', {
        'name': 'killer', 'data': KILLER,
        'start': (scenario.base - 24 * HOUR).isoformat()})
    app.put_json('/v1/rating/modules/pyscripts', {'enabled': True},
                 status=302)
    process = scenario.start()
    try:
        assert scenario.wait_until(lambda: 'Serving scope resets' in (
            tmp_path / 'ck.log').read_text(), 60, process)
        before = service_processes(process)
        # A quote: priced by the processor's RPC worker, whose script
        # tried to kill it and its master.
        response = app.post_json('/v1/rating/quote', {'resources': [
            {'service': 'cpu', 'volume': '250'}]})
        assert D(response.text) == D('2.50')
        # The periods: rated by a processor worker, likewise.
        assert scenario.wait_until(scenario.caught_up, 60, process)
        assert process.poll() is None
        assert service_processes(process) == before
    finally:
        code, err = harness.stop(process)
        backends.processor_rpc.close()
        backends.engine.dispose()
    assert code == 0, err
    scenario.assert_stored_exactly_once(priced=True)
    # Every period priced by the script, each point at a cent per unit.
    result = scenario.storage().retrieve(
        begin=scenario.base, end=scenario.last_data_period + 10 * HOUR,
        paginate=False)
    points = [point for frame in result['dataframes']
              for _type, point in frame.iterpoints()]
    assert points and all(point.price == point.qty * D('0.01')
                          for point in points)
