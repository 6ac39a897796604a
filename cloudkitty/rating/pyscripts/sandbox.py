"""Sandbox processes for pyscripts: a script can fail, never the processor.

Each script runs in a separate, long-lived process
(:mod:`cloudkitty.rating.pyscripts._sandbox_main`, started as
``python -I`` with the standard library only), which a :class:`SandboxPool`
keeps between calls, so a period costs a round trip, not a process start.
The process is started with ``subprocess`` (fork and exec: safe from a
multi-threaded parent, nothing of the parent's state inherited) in a
session of its own. Limits (:class:`Limits`, the ``[pyscripts]`` options):

- memory: ``RLIMIT_AS`` of the sandbox process, set before any script
  runs; an allocation beyond it raises ``MemoryError`` in the script;
- CPU time: ``RLIMIT_CPU``, reset before each script to the time used so
  far plus the allowance; the kernel ends the process (``SIGXCPU``) when
  the script goes beyond, even inside C code;
- wall-clock: the parent waits that long for the reply (the frame's
  transfer included), then kills the process group: this also catches a
  script that sleeps, blocks, or lifts its own CPU limit.

Data crosses as one line of JSON each way, Decimals as strings (never a
float) and datetimes in ISO 8601; the parent parses replies as JSON only,
so nothing a script writes can run code in the processor. A sandbox whose
script failed in any way (raised, hit a limit, died, answered garbage) is
discarded and the next call gets a fresh one; after a fork the child
process starts its own sandboxes.
"""

import dataclasses
import datetime
import decimal
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
import types

from cloudkitty import dataframe

LOG = logging.getLogger(__name__)

_MAIN = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                     '_sandbox_main.py')
_MIB = 2 ** 20
_CHUNK = 2 ** 20
_JSON_TYPES = {dict: 'an object', list: 'an array', str: 'a string',
               int: 'a number', float: 'a number', bool: 'a boolean',
               type(None): 'null'}


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one script may use on one frame.

    ``cpu_time``: CPU seconds (the kernel counts whole seconds, so the
    allowance is rounded up); ``memory``: MiB of address space of the
    sandbox process; ``timeout``: wall-clock seconds for the whole call.
    """

    cpu_time: float = 30.0
    memory: int = 1024
    timeout: float = 60.0

    @classmethod
    def from_conf(cls, conf):
        """Read ``[pyscripts]`` from ``conf``."""
        group = conf.pyscripts
        return cls(cpu_time=group.cpu_time_limit, memory=group.memory_limit,
                   timeout=group.timeout)


class SandboxFailure(Exception):
    """The sandbox process gave no reply: ``reason`` says why."""

    def __init__(self, reason):
        self.reason = reason
        super().__init__(reason)


class _Timeout(Exception):
    pass


def _describe_end(returncode, limits):
    if returncode is None:
        return 'the sandbox process stopped answering'
    if returncode < 0:
        number = -returncode
        if number == signal.SIGXCPU:
            return (f'exceeded the CPU time limit ({limits.cpu_time:g}s): '
                    f'the sandbox process was ended')
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f'signal {number}'
        return f'the sandbox process was killed by {name}'
    return f'the sandbox process exited with status {returncode}'


class Sandbox:
    """One sandbox process and its two pipes."""

    def __init__(self, limits, python=None):
        self.limits = limits
        arguments = json.dumps({'cpu': limits.cpu_time,
                                'memory': int(limits.memory * _MIB)})
        try:
            self.process = subprocess.Popen(
                [python or sys.executable, '-I', _MAIN, arguments],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0,
                start_new_session=True)
        except OSError as error:
            raise SandboxFailure(f'the sandbox process could not start: '
                                 f'{error}') from None
        self._in = self.process.stdin.fileno()
        self._out = self.process.stdout.fileno()
        os.set_blocking(self._in, False)
        os.set_blocking(self._out, False)

    def alive(self):
        return self.process.poll() is None

    def call(self, request, timeout):
        """Send ``request`` (one line of JSON, bytes without the newline)
        and return the reply, parsed; raises :class:`SandboxFailure`
        (after which this sandbox is closed) when none comes in time."""
        deadline = time.monotonic() + timeout
        try:
            self._send(request + b'\n', deadline)
            line = self._receive(deadline)
        except _Timeout:
            self.close()
            raise SandboxFailure(
                f'exceeded the wall-clock timeout ({timeout:g}s): the '
                f'sandbox process was killed') from None
        except (BrokenPipeError, ConnectionResetError, EOFError):
            raise SandboxFailure(self._ended(deadline)) from None
        try:
            return json.loads(line)
        except (ValueError, UnicodeDecodeError):
            self.close()
            raise SandboxFailure('the sandbox process sent a malformed '
                                 'reply') from None

    def _send(self, payload, deadline):
        view = memoryview(payload)
        while view:
            self._wait(deadline, write=True)
            try:
                written = os.write(self._in, view)
            except BlockingIOError:
                continue
            view = view[written:]

    def _receive(self, deadline):
        chunks = []
        while True:
            self._wait(deadline, write=False)
            try:
                chunk = os.read(self._out, _CHUNK)
            except BlockingIOError:
                continue
            if not chunk:
                raise EOFError
            end = chunk.find(b'\n')
            if end < 0:
                chunks.append(chunk)
                continue
            chunks.append(chunk[:end])
            if end != len(chunk) - 1:
                # More than one reply to one request: out of step.
                self.close()
                raise SandboxFailure('the sandbox process sent more than '
                                     'its reply')
            return b''.join(chunks)

    def _wait(self, deadline, write):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _Timeout
        # poll, not select: a processor may hold more than 1024 fds.
        poller = select.poll()
        if write:
            poller.register(self._in, select.POLLOUT)
        else:
            poller.register(self._out, select.POLLIN)
        if not poller.poll(remaining * 1000):
            raise _Timeout

    def _ended(self, deadline):
        """Why the process closed its channel; it is reaped (or killed)."""
        try:
            returncode = self.process.wait(
                timeout=max(0.0, min(1.0, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            returncode = None
        self.close()
        return _describe_end(returncode, self.limits)

    def close(self):
        """Kill the process (and whatever it started) and reap it."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for pipe in (self.process.stdin, self.process.stdout):
            try:
                pipe.close()
            except OSError:
                pass
        self.process.wait()


class SandboxPool:
    """Up to ``size`` sandbox processes, started on demand and kept.

    :meth:`call` is thread-safe: a caller waits for a free sandbox.
    """

    def __init__(self, limits=None, size=1, python=None):
        self.limits = limits or Limits()
        self._python = python
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self._idle = []
        self._pid = os.getpid()

    def call(self, request):
        """Run ``request`` (bytes, one JSON line) in a sandbox and return
        the reply (parsed JSON); :class:`SandboxFailure` if none came."""
        with self._slots:
            sandbox = self._take()
            try:
                reply = sandbox.call(request, self.limits.timeout)
            except SandboxFailure:
                raise
            except BaseException:
                sandbox.close()
                raise
            if isinstance(reply, dict) and reply.get('ok') is True and \
                    reply.get('last') is False:
                with self._lock:
                    self._idle.append(sandbox)
            else:
                # The process ends itself after its last reply; this reaps
                # it (or kills it, had it not).
                sandbox.close()
            return reply

    def _take(self):
        with self._lock:
            if self._pid != os.getpid():
                # Forked: those processes are the parent's to use.
                self._idle = []
                self._pid = os.getpid()
            while self._idle:
                sandbox = self._idle.pop()
                if sandbox.alive():
                    return sandbox
                sandbox.close()
        return Sandbox(self.limits, self._python)

    def close(self):
        """End the idle sandbox processes."""
        with self._lock:
            idle, self._idle = self._idle, []
        if self._pid == os.getpid():
            for sandbox in idle:
                sandbox.close()


def _encode(value):
    # Label values only: quantities and prices are written as strings below.
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, types.MappingProxyType):
        return dict(value)
    raise TypeError(f'{type(value).__name__} is not JSON serializable')


def _point_dict(point):
    """``point.as_dict(mutable=True)`` with qty and price as strings."""
    encoded = {'vol': {'unit': point.unit, 'qty': str(point.qty)},
               'rating': {'price': str(point.price)},
               'groupby': dict(point.groupby),
               'metadata': dict(point.metadata)}
    if point.description is not None:
        encoded['description'] = point.description
    return encoded


def encode_request(name, code, frame):
    """The request line running script ``name`` (source ``code``) on
    ``frame``: bytes, without the newline."""
    data = {'period': {'begin': frame.start.isoformat(),
                       'end': frame.end.isoformat()},
            'usage': {type_: [_point_dict(point) for point in points]
                      for type_, points in frame.itertypes()}}
    return json.dumps({'name': name, 'code': code, 'data': data},
                      default=_encode).encode('utf-8')


_POINT_KEYS = frozenset(['vol', 'rating', 'groupby', 'metadata',
                         'description'])
_NUMBER = (str, int, float)


def _labels(value):
    return value is None or (value.__class__ is dict and all(
        key.__class__ is str for key in value))


def _plain_point(point):
    """The DataPoint of ``point`` when it has exactly the shape the
    sandbox writes for a valid point, else ``None``."""
    if point.__class__ is not dict or not point.keys() <= _POINT_KEYS:
        return None
    vol = point.get('vol')
    rating = point.get('rating', {})
    if vol.__class__ is not dict or vol.keys() != {'unit', 'qty'} or \
            rating.__class__ is not dict or not rating.keys() <= {'price'}:
        return None
    unit, qty, price = vol['unit'], vol['qty'], rating.get('price', 0)
    groupby, metadata = point.get('groupby'), point.get('metadata')
    description = point.get('description')
    if not (isinstance(qty, _NUMBER) and isinstance(price, _NUMBER)
            and qty.__class__ is not bool and price.__class__ is not bool
            and (unit is None or unit.__class__ is str)
            and (description is None or description.__class__ is str)
            and _labels(groupby) and _labels(metadata)):
        return None
    try:
        return dataframe.DataPoint(unit, qty, price, groupby, metadata,
                                   description)
    except ValueError:
        return None


def _plain_frame(data):
    """The DataFrame of ``data`` when every point has the plain shape
    (:func:`_plain_point`), else ``None``."""
    period, usage = data.get('period'), data.get('usage')
    if period.__class__ is not dict or usage.__class__ is not dict:
        return None
    try:
        frame = dataframe.DataFrame(period['begin'], period['end'])
    except (KeyError, TypeError, ValueError):
        return None
    for type_, points in usage.items():
        if points.__class__ is not list:
            return None
        plain = [_plain_point(point) for point in points]
        if None in plain:
            return None
        frame.add_points(plain, type_)
    return frame


def decode_frame(data, frame):
    """The DataFrame a script left (``data`` from the reply) for
    ``frame``'s period; ``ValueError`` saying what is wrong with it.

    :meth:`DataFrame.from_dict <cloudkitty.dataframe.DataFrame.from_dict>`
    decides, and explains what is wrong; its schema costs tens of
    microseconds a point, so the shape the sandbox writes for a valid
    frame is recognised first, and built directly.
    """
    if not isinstance(data, dict):
        kind = _JSON_TYPES.get(type(data), type(data).__name__)
        raise ValueError(f'data is {kind}, not a frame')
    result = _plain_frame(data)
    if result is None:
        result = dataframe.DataFrame.from_dict(data)
    if (result.start, result.end) != (frame.start, frame.end):
        raise ValueError(
            f'the period changed from [{frame.start.isoformat()}, '
            f'{frame.end.isoformat()}) to [{result.start.isoformat()}, '
            f'{result.end.isoformat()})')
    return result
