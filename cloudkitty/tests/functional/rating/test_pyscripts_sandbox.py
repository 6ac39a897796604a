"""pyscripts in their sandbox processes: exact money, and every way a
script can fail (one test each), which must name the script and leave the
processor, and the next script, unharmed."""

import datetime
import decimal
import os
import subprocess
import sys
import time

from oslo_config import cfg
import pytest

from cloudkitty import conf as ck_conf
from cloudkitty import dataframe
from cloudkitty.rating import pyscripts
from cloudkitty.rating.pyscripts import db as scripts_db
from cloudkitty.rating.pyscripts import exceptions as exc
from cloudkitty.rating.pyscripts import sandbox

D = decimal.Decimal
UTC = datetime.timezone.utc
START = datetime.datetime(2024, 3, 1, tzinfo=UTC)
END = START + datetime.timedelta(hours=1)
# Short limits: hostile scripts cost at most a couple of seconds.
LIMITS = sandbox.Limits(cpu_time=1, memory=128, timeout=30)

PRICE_PER_CENT = '''\
import decimal
for points in data['usage'].values():
    for point in points:
        qty = point['vol']['qty']
        point['rating']['price'] = qty * decimal.Decimal('0.01')
'''


def script(code, name='hostile'):
    return scripts_db.Script(f'id-{name}', name, code,
                             scripts_db.checksum(code))


def frame(*quantities, type_='cpu'):
    return dataframe.DataFrame(START, END, {type_: [
        dataframe.DataPoint('instance', qty, 0, {'project_id': 'p1'},
                            {'flavor': 'm1', 'ratio': 1.5})
        for qty in quantities]})


class FixedScripts:
    """Stands for the data layer: the same scripts at every start."""

    def __init__(self, scripts):
        self.scripts = scripts

    def revision(self):
        return 1

    def load_scripts(self, start):
        return self.scripts


@pytest.fixture(scope='module')
def pool():
    pool = sandbox.SandboxPool(LIMITS)
    yield pool
    pool.close()


@pytest.fixture
def module(pool):
    return pyscripts.PyScripts(pool=pool)


def fails(module, code, data=None):
    """The ScriptFailed of running ``code`` on ``data``."""
    with pytest.raises(exc.ScriptFailed) as caught:
        module.run_script(script(code), data or frame(1))
    assert caught.value.name == 'hostile'
    assert "pyscript 'hostile' (id-hostile)" in str(caught.value)
    return caught.value


#: Leaves the sandbox process's token (drawn on its first run) as the
#: only point; fails on a quantity of 0.
TOKEN = """
import builtins, os
if data['usage']['cpu'][0]['vol']['qty'] == 0:
    raise RuntimeError('no')
token = builtins.__dict__.setdefault(
    'sandbox_token', int.from_bytes(os.urandom(6), 'big'))
data['usage'] = {'token': [{'vol': {'unit': 'token', 'qty': token}}]}
"""


def sandbox_token(module, code=TOKEN, name='token', qty=1):
    """What tells the sandbox process a script ran in from another: a
    random number the script draws in its first run in a process."""
    found = module.run_script(script(code, name), frame(qty))
    return int(next(found.iterpoints())[1].qty)


# -- money -------------------------------------------------------------------

def test_price_is_exact_to_the_last_digit(module):
    quantities = [D('123456789012345678.1234567890123456789012345678'),
                  D('0.0000000000000000000000000001'), D('3'), D('1E+3'),
                  D('98765.4321')]
    priced = module.run_script(script(PRICE_PER_CENT, 'cents'),
                               frame(*quantities))
    points = [point for _type, point in priced.iterpoints()]
    assert [p.qty for p in points] == quantities
    assert [str(p.price) for p in points] == [
        '1234567890123456.781234567890123456789012345678',
        '1E-30', '0.03', '1E+1', '987.654321']
    for point in points:
        assert point.price == point.qty.scaleb(-2, decimal.Context(prec=99))
        assert isinstance(point.price, D)


def test_script_sees_decimals_and_datetimes_and_keeps_labels(module):
    code = '''
import datetime, decimal
assert isinstance(data['period']['begin'], datetime.datetime)
period = data['period']
assert period['end'] - period['begin'] == datetime.timedelta(hours=1)
point = data['usage']['cpu'][0]
assert isinstance(point['vol']['qty'], decimal.Decimal)
assert isinstance(point['rating']['price'], decimal.Decimal)
point['rating']['price'] = decimal.Decimal(1) / 8
point['metadata']['checked'] = True
'''
    priced = module.run_script(script(code, 'types'), frame('2.5'))
    (type_, point), = priced.iterpoints()
    assert (type_, point.qty, point.price) == ('cpu', D('2.5'), D('0.125'))
    assert dict(point.metadata) == {'flavor': 'm1', 'ratio': 1.5,
                                    'checked': True}
    assert dict(point.groupby) == {'project_id': 'p1'}
    assert (priced.start, priced.end) == (START, END)


def test_script_may_rebind_data_and_add_points(module):
    code = '''
import copy
new = copy.deepcopy(data)
new['usage']['fee'] = [{'vol': {'unit': 'period', 'qty': 1},
                        'rating': {'price': '9.99'}}]
data = new
'''
    priced = module.run_script(script(code, 'fee'), frame(1))
    assert [(t, p.price) for t, p in priced.iterpoints()] == [
        ('cpu', D(0)), ('fee', D('9.99'))]


def test_each_script_gets_a_fresh_decimal_context(module):
    module.run_script(script('import decimal\ndecimal.getcontext().prec = 2',
                             'narrow'), frame(1))
    priced = module.run_script(script(PRICE_PER_CENT, 'cents'),
                               frame(D('1234.5678')))
    assert next(priced.iterpoints())[1].price == D('12.345678')


def test_scripts_run_in_order_each_on_the_previous_output(module, pool):
    scripts = [script(PRICE_PER_CENT, 'a-cents'), script(
        "for p in data['usage']['cpu']:\n"
        "    p['rating']['price'] += 1\n", 'b-plus-one')]
    module = pyscripts.PyScripts(pool=pool, scripts_db=FixedScripts(scripts))
    priced = module.process(frame(300))
    assert next(priced.iterpoints())[1].price == D(4)


def test_a_sandbox_is_kept_after_success_and_replaced_after_failure(module):
    first = sandbox_token(module)
    assert sandbox_token(module) == first
    with pytest.raises(exc.ScriptFailed):
        sandbox_token(module, qty=0)
    assert sandbox_token(module) != first


def test_print_does_not_disturb_the_protocol(module):
    priced = module.run_script(script(
        "print('{\"ok\": false}')\n" + PRICE_PER_CENT, 'chatty'), frame(2))
    assert next(priced.iterpoints())[1].price == D('0.02')


# -- hostile scripts ---------------------------------------------------------

def test_script_that_raises(module):
    failure = fails(module, 'x = 1\nraise ValueError("no price for you")')
    assert failure.reason == 'ValueError: no price for you (script line 2)'


def test_script_with_a_syntax_error(module):
    assert 'SyntaxError' in fails(module, 'for').reason


def test_script_that_exits(module):
    assert fails(module, 'import sys\nsys.exit(3)').reason.startswith(
        'SystemExit: 3')


def test_script_that_loops_forever_hits_the_cpu_limit(module):
    failure = fails(module, 'while True:\n    pass')
    assert 'CPU time limit (1s)' in failure.reason


def test_script_that_sleeps_hits_the_wall_clock_timeout():
    module = pyscripts.PyScripts(pool=sandbox.SandboxPool(
        sandbox.Limits(cpu_time=1, memory=128, timeout=1.5)))
    failure = fails(module, 'import time\ntime.sleep(60)')
    assert 'wall-clock timeout (1.5s)' in failure.reason
    # The next script gets a working sandbox.
    assert module.run_script(script(PRICE_PER_CENT), frame(1))
    module.close()


def test_script_that_lifts_its_cpu_limit_hits_the_wall_clock_timeout():
    module = pyscripts.PyScripts(pool=sandbox.SandboxPool(
        sandbox.Limits(cpu_time=1, memory=128, timeout=1.5)))
    failure = fails(module, '''
import resource
resource.setrlimit(resource.RLIMIT_CPU, (resource.RLIM_INFINITY,) * 2)
while True:
    pass
''')
    assert 'wall-clock timeout' in failure.reason
    module.close()


def test_script_that_allocates_at_once(module):
    failure = fails(module, 'blob = bytearray(10 ** 10)')
    assert 'memory limit (128 MiB' in failure.reason


def test_script_that_allocates_without_bound(module):
    failure = fails(module, 'hoard = []\nwhile True:\n'
                            '    hoard.append(" " * 10 ** 6)')
    assert 'memory limit (128 MiB' in failure.reason


def test_script_that_exits_its_process(module):
    failure = fails(module, 'import os\nos._exit(7)')
    assert failure.reason == 'the sandbox process exited with status 7'


def test_script_that_kills_its_process(module):
    failure = fails(module, 'import os, signal\n'
                            'os.kill(os.getpid(), signal.SIGKILL)')
    assert failure.reason == 'the sandbox process was killed by SIGKILL'


def test_script_that_closes_the_channel(module):
    failure = fails(module, 'import os\nos.close(3)\nos.close(4)')
    assert 'sandbox process' in failure.reason


def test_script_that_leaves_threads_running_gets_a_new_sandbox(module):
    code = ('import threading, time\nthreading.Thread(target=time.sleep, '
            'args=(60,), daemon=True).start()\n' + TOKEN)
    first = sandbox_token(module, code, 'threads')
    assert sandbox_token(module, code, 'threads') != first


@pytest.mark.parametrize('code, words', [
    ("data['usage']['cpu'][0]['vol']['qty'] = 'lots'",
     "'lots' is not a quantity"),
    ("data['usage']['cpu'][0]['rating']['price'] = float('nan')",
     'ValueError'),
    ("import decimal\ndata['usage']['cpu'][0]['rating']['price'] = "
     "decimal.Decimal('Infinity')", 'not a finite number'),
    ("del data['usage']['cpu'][0]['vol']", "required key not provided"),
    ("data['usage']['cpu'][0]['colour'] = 'red'", 'extra keys'),
    ("data['usage']['cpu'] = {}", "must be a list"),
    ("data['usage'] = 3", '"usage" must be a mapping'),
    ("del data['period']", 'period'),
    ("data = None", 'data is null, not a frame'),
    ("data = [1]", 'data is an array, not a frame'),
    ("import datetime\ndata['period']['begin'] -= datetime.timedelta(1)",
     'the period changed'),
    ("data['usage']['cpu'][0]['metadata']['x'] = object()",
     'not JSON serializable'),
    ("data['loop'] = data", 'ValueError'),
])
def test_script_that_leaves_malformed_data(module, code, words):
    assert words in fails(module, code).reason


def test_failures_do_not_leak_into_the_next_script(module):
    for code in ('import os\nos._exit(1)', 'blob = bytearray(10 ** 10)',
                 'raise KeyError(1)'):
        fails(module, code)
        priced = module.run_script(script(PRICE_PER_CENT, 'cents'),
                                   frame(5))
        assert next(priced.iterpoints())[1].price == D('0.05')


def test_a_forked_child_starts_its_own_sandboxes(module, pool):
    parent_sandbox = sandbox_token(module)
    # What a fork changes for the pool: the pid it runs in.
    pool._pid = -1
    assert sandbox_token(module) != parent_sandbox


def test_limits_come_from_the_configuration():
    conf = ck_conf.register_all(cfg.ConfigOpts())
    conf([], project='cloudkitty', default_config_files=[])
    for name, value in (('cpu_time_limit', 1), ('memory_limit', 64),
                        ('timeout', 2.5), ('python', sys.executable)):
        conf.set_override(name, value, 'pyscripts')
    module = pyscripts.PyScripts(conf=conf)
    try:
        failure = fails(module, 'blob = bytearray(10 ** 8)')
        assert 'memory limit (64 MiB' in failure.reason
        assert module._sandboxes().limits == sandbox.Limits(
            cpu_time=1, memory=64, timeout=2.5)
    finally:
        module.close()


def test_missing_interpreter_fails_the_script():
    module = pyscripts.PyScripts(pool=sandbox.SandboxPool(
        LIMITS, python='/nonexistent/python'))
    assert 'could not start' in fails(module, 'pass').reason


def _state(pid):
    """The process's state letter, or None once it is gone (or reaped)."""
    try:
        with open(f'/proc/{pid}/stat') as stat:
            return stat.read().rsplit(')', 1)[1].split()[0]
    except FileNotFoundError:
        return None


def descendants(pid):
    """The pids of the processes below ``pid`` (from /proc)."""
    children = {}
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                with open(f'/proc/{entry}/stat') as stat:
                    parent = int(stat.read().rsplit(')', 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def test_sandbox_ends_with_its_parent():
    parent = subprocess.Popen([sys.executable, '-c', """
from cloudkitty.tests.functional.rating import test_pyscripts_sandbox as t
from cloudkitty.rating.pyscripts import sandbox
pool = sandbox.SandboxPool(sandbox.Limits(cpu_time=1, memory=128,
                                          timeout=120))
print('calling', flush=True)
pool.call(sandbox.encode_request('sleeper', 'import time; time.sleep(120)',
                                 t.frame(1)))
"""], stdout=subprocess.PIPE)
    assert parent.stdout.readline() == b'calling\n'
    deadline = time.monotonic() + 20
    # The relay, the init and the runner.
    while len(descendants(parent.pid)) < 3:
        assert time.monotonic() < deadline, 'the sandbox never started'
        time.sleep(0.05)
    sandboxes = descendants(parent.pid)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while any(_state(pid) not in (None, 'Z') for pid in sandboxes):
        assert time.monotonic() < deadline, 'the sandbox outlived its parent'
        time.sleep(0.1)
