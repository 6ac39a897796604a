"""The sandbox process: runs pyscripts, one request at a time.

Started by :mod:`cloudkitty.rating.pyscripts.sandbox` as
``python -I _sandbox_main.py '<limits as JSON>'``; it imports the standard
library only, so that it starts fast and small. Before reading any request
it makes the limits its own: no core dumps, ``RLIMIT_AS`` (address space)
for good, and, for each request, ``RLIMIT_CPU`` set to the CPU time used so
far plus the allowance, with ``SIGXCPU``'s default action: the kernel ends
the process however the script spends its time, even inside C code.

Protocol (one JSON document per line): the request on the process's
original stdin is ``{"name", "code", "data"}``, ``data`` being a frame's
``as_dict(mutable=True)`` with Decimals as strings and datetimes in ISO
8601; the reply on its original stdout is ``{"ok": true, "data", "last"}``
(the same encoding) or ``{"ok": false, "error", "last": true}``; ``last``
says the process ends after this reply (after a failure, or when the
script left threads running). Both channels are moved off fds 0 and 1
first, so a script that reads stdin reads nothing and its ``print`` goes to
stderr, never into the protocol. The process also ends within a second of
its parent's death, whatever the script is doing then.

The script runs with globals ``data`` (the frame: ``period.begin`` and
``end`` as datetimes, each point's ``vol.qty`` and ``rating.price`` as
Decimals) and ``__name__ == "__pyscript__"``; it edits ``data`` in place or
binds a new one. Decimal arithmetic runs in a fresh context per request,
400 digits of precision, so money is never rounded here.
"""

import _thread
import builtins
import datetime
import decimal
import json
import math
import os
import resource
import signal
import sys
import time

CONTEXT = dict(prec=400, rounding=decimal.ROUND_HALF_EVEN,
               Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN,
               traps=[decimal.InvalidOperation, decimal.DivisionByZero,
                      decimal.Overflow])
_CODE_CACHE = 32


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


def _run(request, codes):
    name, source = request['name'], request['code']
    code = codes.get(source)
    if code is None:
        code = compile(source, f'<pyscript {name}>', 'exec')
        if len(codes) >= _CODE_CACHE:
            codes.clear()
        codes[source] = code
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


def _handle(line, codes, limits):
    """The reply (bytes) to one request line, and whether this process
    stops after sending it (the reply's ``last``)."""
    failure = None
    try:
        _allow_cpu(limits['cpu'])
        result = _run(json.loads(line), codes)
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
    return reply.encode('utf-8') + b'\n', last


def _watch_parent(parent):
    # A process whose parent died is adopted by another: end then, even if
    # a script is sleeping (one spending CPU meets its limit anyway).
    while True:
        time.sleep(1)
        if os.getppid() != parent:
            os._exit(1)


def main():
    limits = json.loads(sys.argv[1])
    # A raw thread: threading does not count it among the script's.
    _thread.start_new_thread(_watch_parent, (os.getppid(),))
    requests = os.fdopen(os.dup(0), 'rb')
    replies = os.fdopen(os.dup(1), 'wb')
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    sys.stdin = open(os.devnull)
    sys.stdout = sys.stderr
    signal.signal(signal.SIGXCPU, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_AS,
                       (limits['memory'], limits['memory']))
    codes = {}
    for line in requests:
        reply, stop = _handle(line, codes, limits)
        replies.write(reply)
        replies.flush()
        if stop:
            # A failed script may have left anything behind: the next
            # request gets a fresh process.
            os._exit(0)


if __name__ == '__main__':
    main()
