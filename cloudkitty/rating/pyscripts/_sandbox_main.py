"""The sandbox process: confines itself, then runs one pyscript's requests.

Started by :mod:`cloudkitty.rating.pyscripts.sandbox` as
``python -I -S -B _sandbox_main.py '<arguments as JSON>'``, with an empty
environment, in a session of its own, its three standard streams pipes to
the service: requests in, replies out, and a log channel (stderr, where
``print`` also goes). It imports the standard library only.

Three processes, so that the one running the script is neither the one the
service waits for nor the first of its PID namespace (which the kernel
would spare from its own signals, ``SIGXCPU`` included):

- the *relay*, the service's child: enters the new namespaces
  (:func:`_confine.unshare`), builds the private read-only root
  (:func:`_confine.private_root`), starts the init, then ends with the
  same status as the script's process (the same signal, or exit code),
  or kills everything at once if the service dies (a pidfd on it);
- the *init*, first process of the new PID namespace: starts the runner and
  ends when it ends, which ends whatever else is in the namespace;
- the *runner*: drops what it does not need (descriptors, limits), applies
  Landlock, drops its capabilities, sets ``PR_SET_NO_NEW_PRIVS`` and the
  seccomp filter (:mod:`_confine`), says which layers it has (the first
  line on its reply channel: ``{"ready": true, "layers": [...],
  "missing": {layer: why}, "absent": {layer: why}}``), and only then reads
  requests. The service sends no script to a sandbox that misses a
  required layer unless told to (``[pyscripts] allow_unconfined``).

Protocol (one JSON document per line): a request is ``{"name", "code",
"data"}``, ``data`` being a frame's ``as_dict(mutable=True)`` with Decimals
as strings and datetimes in ISO 8601; the reply is ``{"ok": true, "data",
"last"}`` (the same encoding) or ``{"ok": false, "error", "last": true}``;
``last`` says the process ends after this reply (after a failure, or when
the script left threads running). A sandbox runs the code of its first
request only: a request with other code is refused, so that nothing one
script leaves in the process is ever seen by another.

Limits: ``RLIMIT_AS`` for good, and for each request ``RLIMIT_CPU`` set to
the CPU time used so far plus the allowance, with ``SIGXCPU``'s default
action: the kernel ends the runner however the script spends its time.

The script runs with globals ``data`` (the frame: ``period.begin`` and
``end`` as datetimes, each point's ``vol.qty`` and ``rating.price`` as
Decimals) and ``__name__ == "__pyscript__"``; it edits ``data`` in place or
binds a new one. Decimal arithmetic runs in a fresh context per request,
400 digits of precision, so money is never rounded here.
"""

import builtins
import datetime
import decimal
import importlib.util
import json
import math
import os
import resource
import select
import signal
import sys

CONTEXT = dict(prec=400, rounding=decimal.ROUND_HALF_EVEN,
               Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN,
               traps=[decimal.InvalidOperation, decimal.DivisionByZero,
                      decimal.Overflow])
#: The runner's descriptors: requests and replies (0 reads nothing, 1 and 2
#: are the log channel).
REQUESTS, REPLIES = 3, 4
#: Open files the runner may hold at once.
MAX_FILES = 32


def _load_confine():
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        '_confine.py')
    spec = importlib.util.spec_from_file_location('_confine', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _encode(value):
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    raise TypeError(f'{type(value).__name__} {value!r} is not JSON '
                    f'serializable')


def _decode_frame(data):
    """Decimals and datetimes back where the frame format has them."""
    period = data['period']
    for key in ('begin', 'end'):
        period[key] = datetime.datetime.fromisoformat(period[key])
    for points in data['usage'].values():
        for point in points:
            point['vol']['qty'] = decimal.Decimal(point['vol']['qty'])
            point['rating']['price'] = decimal.Decimal(
                point['rating']['price'])
    return data


def _cpu_used():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _allow_cpu(seconds):
    """Let this request use ``seconds`` more CPU (whole seconds: the
    kernel counts in seconds), whatever was used before."""
    soft = math.ceil(_cpu_used() + seconds)
    _hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
    if _hard != resource.RLIM_INFINITY:
        soft = min(soft, _hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, _hard))


class _Bound:
    """The one script this sandbox runs: compiled on its first request."""

    def __init__(self):
        self.source = None
        self.code = None

    def code_of(self, name, source):
        if self.source is None:
            self.code = compile(source, f'<pyscript {name}>', 'exec')
            self.source = source
        elif source != self.source:
            raise RuntimeError('this sandbox runs another script')
        return self.code


def _run(request, bound):
    code = bound.code_of(request['name'], request['code'])
    decimal.setcontext(decimal.Context(**CONTEXT))
    namespace = {'__name__': '__pyscript__', '__builtins__': builtins,
                 'data': _decode_frame(request['data'])}
    exec(code, namespace)  # nosec: running the script is the point
    return namespace.get('data')


def _describe(error):
    try:
        text = str(error)
    except Exception:  # a script's exception whose __str__ fails
        text = ''
    described = type(error).__name__
    if text:
        described += f': {text}'
    line = None
    traceback = error.__traceback__
    while traceback is not None:
        if traceback.tb_frame.f_code.co_filename.startswith('<pyscript '):
            line = traceback.tb_lineno
        traceback = traceback.tb_next
    if line is not None:
        described += f' (script line {line})'
    return described


def _live_threads():
    # Only a script imports threading here: threads it started and left
    # running would go on spending this process's time and memory.
    threading = sys.modules.get('threading')
    return threading is not None and threading.active_count() > 1


def _flush_output():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a script replaced or closed it
            pass


def _handle(line, bound, limits):
    """The reply (bytes) to one request line, and whether this process
    stops after sending it (the reply's ``last``)."""
    failure = None
    try:
        _allow_cpu(limits['cpu'])
        result = _run(json.loads(line), bound)
        last = _live_threads()
        reply = json.dumps({'ok': True, 'data': result, 'last': last},
                           default=_encode, allow_nan=False)
    except MemoryError:
        # Described below, once the script's objects are gone.
        failure = 'memory'
    except BaseException as exc:  # the script's failure, whatever it is
        failure = _describe(exc)
    result = None
    if failure == 'memory':
        failure = (f'MemoryError: the script exceeded the memory limit '
                   f'({limits["memory"] // 2 ** 20} MiB of address space)')
    if failure is not None:
        last = True
        reply = json.dumps({'ok': False, 'error': failure, 'last': True})
    _flush_output()
    return reply.encode('utf-8') + b'\n', last


# -- the three processes -------------------------------------------------------

def _exit_like(status):
    """End this process as the one whose wait ``status`` this is."""
    code = os.waitstatus_to_exitcode(status)
    if code > 128 and code - 128 < signal.NSIG:
        # The init reports its child's signal as 128 + number.
        code = -(code - 128)
    if code < 0:
        try:
            signal.signal(-code, signal.SIG_DFL)
        except (OSError, ValueError):  # SIGKILL, SIGSTOP: default anyway
            pass
        os.kill(os.getpid(), -code)
        os._exit(128 - code)
    os._exit(code)


def _relay(child, parent_fd):
    """The service's child: wait for the init, or for the service's end."""
    os.close(0)
    os.close(1)
    if parent_fd is None:
        _exit_like(os.waitpid(child, 0)[1])
    poller = select.poll()
    poller.register(parent_fd, select.POLLIN)
    child_fd = os.pidfd_open(child)
    poller.register(child_fd, select.POLLIN)
    while True:
        ready = [fd for fd, _event in poller.poll()]
        if child_fd in ready:
            _exit_like(os.waitpid(child, 0)[1])
        if parent_fd in ready:
            # The service died: nothing of the sandbox outlives it.
            os.kill(child, signal.SIGKILL)
            os.waitpid(child, 0)
            os._exit(1)


def _init(child):
    """The first process of the PID namespace: end with the runner."""
    os.close(0)
    os.close(1)
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(1)
        if pid == child:
            code = os.waitstatus_to_exitcode(status)
            os._exit(128 - code if code < 0 else code)


def _limit(name, value):
    resource.setrlimit(getattr(resource, name), (value, value))


def _runner_setup(confine, paths, report, args):
    """Confine the runner; records each layer in ``report``."""
    layers, missing, absent = report['layers'], report['missing'], \
        report['absent']
    skip = set(args.get('skip', ()))
    # Descriptors: the two channels at known numbers, nothing inherited.
    os.dup2(0, REQUESTS)
    os.dup2(1, REPLIES)
    empty, writer = os.pipe()
    os.close(writer)
    os.dup2(empty, 0)
    os.close(empty)
    os.dup2(2, 1)
    os.closerange(REPLIES + 1, 1 << 16)
    os.set_inheritable(REQUESTS, False)
    os.set_inheritable(REPLIES, False)
    signal.signal(signal.SIGXCPU, signal.SIG_DFL)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    if 'rlimits' in skip:
        missing['rlimits'] = 'disabled'
    else:
        # No file written, even by a hole in the layers below.
        for name, value in (('RLIMIT_FSIZE', 0), ('RLIMIT_NOFILE', MAX_FILES),
                            ('RLIMIT_MEMLOCK', 0), ('RLIMIT_MSGQUEUE', 0)):
            _limit(name, value)
        layers.append('rlimits')

    def attempt(name, function, *arguments):
        if name in skip:
            missing[name] = 'disabled'
            return False, None
        try:
            return True, function(*arguments)
        except confine.Unavailable as error:
            missing[name] = str(error)
            return False, None

    # No new privileges first: Landlock needs it (or CAP_SYS_ADMIN).
    if attempt('no-new-privs', confine.no_new_privs)[0]:
        layers.append('no-new-privs')
    if 'landlock' in skip:
        missing['landlock'] = 'disabled'
    elif confine.landlock_abi() < 1:
        absent['landlock'] = 'not enabled in this kernel'
    else:
        done, features = attempt('landlock', confine.landlock, paths)
        if done:
            layers.extend(features)
            for feature, abi in (('landlock-net', 4), ('landlock-scope', 6)):
                if feature not in features:
                    absent[feature] = f'needs Landlock ABI {abi}'
    if attempt('capabilities', confine.drop_capabilities)[0]:
        layers.append('capabilities')
    # The memory limit last but one: ctypes and the imports above are done.
    resource.setrlimit(resource.RLIMIT_AS,
                       (args['memory'], args['memory']))
    if 'no-new-privs' in layers:
        if attempt('seccomp', confine.seccomp)[0]:
            layers.append('seccomp')
    else:
        missing['seccomp'] = ('disabled' if 'seccomp' in skip
                              else 'needs no-new-privs')


def main():
    args = json.loads(sys.argv[1])
    confine = _load_confine()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    report = {'ready': True, 'layers': [], 'missing': {}, 'absent': {}}
    skip = set(args.get('skip', ()))

    # The relay: a pidfd on the service (a parent death signal would follow
    # the thread that started the sandbox, not the service).
    parent = args['parent']
    try:
        parent_fd = os.pidfd_open(parent)
    except (AttributeError, OSError):
        parent_fd = None
        confine.set_parent_death_signal(signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)
    paths = confine.readable_paths()
    namespaces = confine.unshare(skip)
    for name, reason in namespaces.items():
        if reason is None:
            report['layers'].append(f'{name}-namespace')
        else:
            report['missing'][f'{name}-namespace'] = reason
    if 'root' in skip:
        report['missing']['root'] = 'disabled'
    elif namespaces.get('mount') is not None:
        report['missing']['root'] = 'needs a mount namespace'
    else:
        try:
            confine.private_root(paths)
            report['layers'].append('root')
        except (confine.Unavailable, OSError) as error:
            report['missing']['root'] = str(error)
    init = os.fork()
    if init:
        _relay(init, parent_fd)

    # The init.
    confine.set_parent_death_signal(signal.SIGKILL)
    runner = os.fork()
    if runner:
        _init(runner)

    # The runner.
    confine.set_parent_death_signal(signal.SIGKILL)
    _runner_setup(confine, paths, report, args)
    requests = os.fdopen(REQUESTS, 'rb')
    replies = os.fdopen(REPLIES, 'wb')
    replies.write(json.dumps(report).encode('utf-8') + b'\n')
    replies.flush()
    bound = _Bound()
    for line in requests:
        reply, stop = _handle(line, bound, args)
        replies.write(reply)
        replies.flush()
        if stop:
            # A failed script may have left anything behind: the next
            # request gets a fresh process.
            os._exit(0)


if __name__ == '__main__':
    main()
