"""Sandbox processes for pyscripts: a script computes a price, nothing else.

Each script revision runs in sandbox processes of its own
(:mod:`cloudkitty.rating.pyscripts._sandbox_main`, started as ``python -I
-S -B`` with the standard library only, an empty environment and ``/`` as
working directory, in a session of its own), which a :class:`SandboxPool`
keeps between calls under the script's key, so a period costs a round
trip, not a process start. A sandbox runs the code of one script only and
a pool never hands it another key: nothing a script leaves in its process
is seen by another script, and a changed script (a new checksum, so a new
key) starts in a fresh interpreter. :meth:`SandboxPool.flush` ends them all
(the module calls it whenever the scripts change).

The boundary (:mod:`cloudkitty.rating.pyscripts._confine`): namespaces,
a private read-only root, Landlock where the kernel has it, no
capabilities, no new privileges and a seccomp allow list. The sandbox
reports the layers it has before any script is sent to it; one that misses
a layer gets no script (:class:`Unconfined`, which says what is missing)
unless :class:`Boundary` ``allow_unconfined`` is set (``[pyscripts]
allow_unconfined``): then every sandbox started without its whole boundary
logs a warning naming what is missing.

Limits (:class:`Limits`, the ``[pyscripts]`` options):

- memory: ``RLIMIT_AS`` of the sandbox process, set before any script
  runs; an allocation beyond it raises ``MemoryError`` in the script;
- CPU time: ``RLIMIT_CPU``, reset before each script to the time used so
  far plus the allowance; the kernel ends the process (``SIGXCPU``) when
  the script goes beyond, even inside C code;
- wall-clock: the parent waits that long for the reply (the sandbox's
  start and the frame's transfer included), then kills the process group:
  this also catches a script that sleeps, blocks, or lifts its own CPU
  limit;
- output: what a script writes to its standard output and error reaches
  the service's log, line by line with the script's name (the first
  :data:`LOG_LINES` lines of a run, each cut at :data:`LINE_CHARS`
  characters); beyond ``output`` bytes in one run the script is ended and
  fails;
- reply: at most ``reply`` MiB (or four times the request, if more); a
  larger reply fails the script.

Data crosses as one line of JSON each way, Decimals as strings (never a
float) and datetimes in ISO 8601; the parent parses replies as JSON only,
so nothing a script writes can run code in the processor. A sandbox whose
script failed in any way (raised, hit a limit, died, answered garbage) is
discarded and the next call gets a fresh one; after a fork the child
process starts its own sandboxes.
"""

import collections
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
#: Lines of a run's output logged, and the characters kept of each.
LOG_LINES = 100
LINE_CHARS = 1000
#: Idle sandboxes a pool keeps at most (beyond its size), least recently
#: used ended first.
IDLE = 8
#: Seconds a pool refuses scripts without starting a sandbox, once one
#: could not be confined.
RECHECK = 60


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one script may use on one frame.

    ``cpu_time``: CPU seconds (the kernel counts whole seconds, so the
    allowance is rounded up); ``memory``: MiB of address space of the
    sandbox process; ``timeout``: wall-clock seconds for the whole call;
    ``output``: bytes written to stdout and stderr in one run; ``reply``:
    MiB of the reply (at least four times the request).
    """

    cpu_time: float = 30.0
    memory: int = 1024
    timeout: float = 60.0
    output: int = _MIB
    reply: int = 64

    @classmethod
    def from_conf(cls, conf):
        """Read ``[pyscripts]`` from ``conf``."""
        group = conf.pyscripts
        return cls(cpu_time=group.cpu_time_limit, memory=group.memory_limit,
                   timeout=group.timeout, output=group.output_limit,
                   reply=group.reply_limit)


@dataclasses.dataclass(frozen=True)
class Boundary:
    """How confined the sandboxes must be.

    ``allow_unconfined``: run scripts in a sandbox that misses layers of
    the boundary (with a warning each time one starts); ``skip``: layers
    not even tried (the tests take the boundary apart with it), which then
    count as missing.
    """

    allow_unconfined: bool = False
    skip: frozenset = frozenset()

    @classmethod
    def from_conf(cls, conf):
        """Read ``[pyscripts] allow_unconfined`` from ``conf``."""
        return cls(allow_unconfined=conf.pyscripts.allow_unconfined)


class SandboxFailure(Exception):
    """The sandbox process gave no reply: ``reason`` says why."""

    def __init__(self, reason):
        self.reason = reason
        super().__init__(reason)


class Unconfined(SandboxFailure):
    """The boundary cannot be set up on this host: ``missing`` maps each
    missing layer to why; no script was sent."""

    def __init__(self, missing):
        self.missing = dict(missing)
        super().__init__(
            f'the sandbox cannot be confined on this host, missing: '
            f'{describe_layers(missing)}; pyscripts do not run without '
            f'their boundary unless [pyscripts] allow_unconfined = true')


def describe_layers(layers):
    """``{layer: why}`` as one line."""
    return ', '.join(f'{name} ({why})' for name, why in sorted(
        layers.items()))


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


class _Output:
    """What a sandbox wrote to its log channel during one call."""

    def __init__(self, limit):
        self.limit = limit
        self.size = 0
        self.kept = bytearray()

    def feed(self, chunk):
        """Keep ``chunk``; False once the run wrote more than the limit."""
        self.size += len(chunk)
        room = self.limit - len(self.kept)
        if room > 0:
            self.kept += chunk[:room]
        return self.size <= self.limit

    def log(self, name):
        """Log the lines kept, with the script's name, cut to size."""
        if not self.size:
            return
        lines = self.kept.decode('utf-8', 'replace').splitlines()
        for line in lines[:LOG_LINES]:
            if len(line) > LINE_CHARS:
                line = line[:LINE_CHARS] + ' [cut]'
            LOG.info('pyscript %s: %s', name, line)
        left = self.size - sum(len(line.encode('utf-8', 'replace')) + 1
                               for line in lines[:LOG_LINES])
        if left > 0:
            LOG.info('pyscript %s: %d more bytes of output not logged',
                     name, left)
        self.size = 0
        self.kept = bytearray()

    def tail(self):
        text = self.kept.decode('utf-8', 'replace').strip()
        return text.splitlines()[-1] if text else ''


class Sandbox:
    """One sandbox process and its three pipes."""

    def __init__(self, limits, python=None, boundary=None):
        self.limits = limits
        self.boundary = boundary or Boundary()
        self.layers = None
        arguments = json.dumps({'cpu': limits.cpu_time,
                                'memory': int(limits.memory * _MIB),
                                'parent': os.getpid(),
                                'skip': sorted(self.boundary.skip)})
        try:
            self.process = subprocess.Popen(
                [python or sys.executable, '-I', '-S', '-B', _MAIN,
                 arguments],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, bufsize=0, env={}, cwd='/',
                close_fds=True, start_new_session=True)
        except OSError as error:
            raise SandboxFailure(f'the sandbox process could not start: '
                                 f'{error}') from None
        self._in = self.process.stdin.fileno()
        self._out = self.process.stdout.fileno()
        self._err = self.process.stderr.fileno()
        for fd in (self._in, self._out, self._err):
            os.set_blocking(fd, False)
        self._output = _Output(limits.output)
        self._closed = False
        self._log_open = True

    def alive(self):
        return self.process.poll() is None

    def call(self, request, timeout, name='?'):
        """Send ``request`` (one line of JSON, bytes without the newline)
        and return the reply, parsed; raises :class:`SandboxFailure`
        (after which this sandbox is closed) when none comes in time.
        What the script wrote meanwhile is logged under ``name``."""
        deadline = time.monotonic() + timeout
        try:
            try:
                if self.layers is None:
                    self._start(deadline)
                self._send(request + b'\n', deadline)
                line = self._receive(deadline, max(
                    self.limits.reply * _MIB, 4 * len(request)))
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
        finally:
            self._drain()
            self._output.log(name)

    def _start(self, deadline):
        """Read the sandbox's first line: the layers it has. Raises
        :class:`Unconfined` (the sandbox closed) if it misses some and
        that is not allowed."""
        try:
            line = self._receive(deadline, _MIB)
            hello = json.loads(line)
            layers, missing = hello['layers'], hello['missing']
            absent = hello['absent']
        except EOFError:
            returncode = self._reap(deadline)
            reason = self._output.tail() or _describe_end(returncode,
                                                          self.limits)
            raise SandboxFailure(f'the sandbox process could not start: '
                                 f'{reason}') from None
        except (ValueError, UnicodeDecodeError, KeyError, TypeError):
            self.close()
            raise SandboxFailure('the sandbox process could not start: '
                                 'malformed report') from None
        if missing:
            if not self.boundary.allow_unconfined:
                self.close()
                raise Unconfined(missing)
            LOG.warning('pyscripts run UNCONFINED in sandbox process %s '
                        '([pyscripts] allow_unconfined = true), missing: %s',
                        self.process.pid, describe_layers(missing))
        self.layers = layers
        self.missing = missing
        self.absent = absent

    def _send(self, payload, deadline):
        view = memoryview(payload)
        while view:
            self._wait(deadline, self._in, select.POLLOUT)
            try:
                written = os.write(self._in, view)
            except BlockingIOError:
                continue
            view = view[written:]

    def _receive(self, deadline, limit):
        chunks = []
        size = 0
        while True:
            self._wait(deadline, self._out, select.POLLIN)
            try:
                chunk = os.read(self._out, _CHUNK)
            except BlockingIOError:
                continue
            if not chunk:
                raise EOFError
            end = chunk.find(b'\n')
            size += len(chunk) if end < 0 else end
            if size > limit:
                self.close()
                raise SandboxFailure(f'the reply is larger than '
                                     f'{limit / _MIB:g} MiB: the sandbox '
                                     f'process was killed')
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

    def _wait(self, deadline, fd, event):
        """Wait for ``event`` on ``fd``, reading the log channel
        meanwhile."""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _Timeout
            # poll, not select: a processor may hold more than 1024 fds.
            poller = select.poll()
            poller.register(fd, event)
            if self._log_open:
                poller.register(self._err, select.POLLIN)
            ready = dict(poller.poll(remaining * 1000))
            if not ready:
                raise _Timeout
            if self._log_open and self._err in ready:
                self._drain()
            if fd in ready:
                return

    def _drain(self):
        """Read what the log channel holds now."""
        while self._log_open and not self._closed:
            try:
                chunk = os.read(self._err, _CHUNK)
            except (BlockingIOError, OSError, ValueError):
                return
            if not chunk:
                # Closed by the sandbox: not to be polled again.
                self._log_open = False
                return
            if not self._output.feed(chunk):
                self.close()
                raise SandboxFailure(
                    f'wrote more than {self._output.limit} bytes to its '
                    f'standard output and error ([pyscripts] output_limit)'
                    f': the sandbox process was killed')

    def _reap(self, deadline):
        try:
            returncode = self.process.wait(
                timeout=max(0.0, min(1.0, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            returncode = None
        self._drain_quietly()
        self.close()
        return returncode

    def _drain_quietly(self):
        try:
            self._drain()
        except SandboxFailure:
            pass

    def _ended(self, deadline):
        """Why the process closed its channel; it is reaped (or killed)."""
        return _describe_end(self._reap(deadline), self.limits)

    def close(self):
        """Kill the process (and whatever it started) and reap it."""
        self._closed = True
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for pipe in (self.process.stdin, self.process.stdout,
                     self.process.stderr):
            try:
                pipe.close()
            except OSError:
                pass
        self.process.wait()


class SandboxPool:
    """Up to ``size`` sandbox processes running at once, started on demand
    and kept idle by key (at most ``max(size, IDLE)`` of them).

    :meth:`call` is thread-safe: a caller waits for a free slot.
    """

    def __init__(self, limits=None, size=1, python=None, boundary=None):
        self.limits = limits or Limits()
        self.boundary = boundary or Boundary()
        self._python = python
        self._slots = threading.BoundedSemaphore(size)
        self._max_idle = max(size, IDLE)
        self._lock = threading.Lock()
        self._idle = collections.OrderedDict()
        self._pid = os.getpid()
        self._refused = None

    def call(self, request, key=None, name='?'):
        """Run ``request`` (bytes, one JSON line) in a sandbox kept for
        ``key`` (``None``: a fresh one, ended after) and return the reply
        (parsed JSON); :class:`SandboxFailure` if none came. Output of the
        script is logged under ``name``. Once a sandbox could not be
        confined (:class:`Unconfined`), calls are refused for
        :data:`RECHECK` seconds without starting another."""
        with self._slots:
            refused = self._refused
            if refused is not None and \
                    time.monotonic() - refused[0] < RECHECK:
                raise Unconfined(refused[1].missing)
            sandbox = self._take(key)
            try:
                reply = sandbox.call(request, self.limits.timeout, name)
            except Unconfined as failure:
                # Not a process per script and period to learn it again.
                self._refused = (time.monotonic(), failure)
                sandbox.close()
                raise
            except SandboxFailure:
                sandbox.close()
                raise
            except BaseException:
                sandbox.close()
                raise
            if key is not None and isinstance(reply, dict) and \
                    reply.get('ok') is True and reply.get('last') is False:
                self._keep(key, sandbox)
            else:
                # The process ends itself after its last reply; this reaps
                # it (or kills it, had it not).
                sandbox.close()
            return reply

    def _take(self, key):
        with self._lock:
            if self._pid != os.getpid():
                # Forked: those processes are the parent's to use.
                self._idle = collections.OrderedDict()
                self._pid = os.getpid()
            idle = self._idle.get(key, [])
            while idle:
                sandbox = idle.pop()
                if not idle:
                    del self._idle[key]
                if sandbox.alive():
                    return sandbox
                sandbox.close()
        return Sandbox(self.limits, self._python, self.boundary)

    def _keep(self, key, sandbox):
        evicted = []
        with self._lock:
            self._idle.setdefault(key, []).append(sandbox)
            self._idle.move_to_end(key)
            while sum(map(len, self._idle.values())) > self._max_idle:
                oldest, sandboxes = next(iter(self._idle.items()))
                evicted.append(sandboxes.pop(0))
                if not sandboxes:
                    del self._idle[oldest]
        for old in evicted:
            old.close()

    def idle(self):
        """``{key: [pid, ...]}`` of the idle sandboxes."""
        with self._lock:
            return {key: [sandbox.process.pid for sandbox in sandboxes]
                    for key, sandboxes in self._idle.items()}

    def flush(self):
        """End the idle sandbox processes: the next calls start fresh
        ones."""
        with self._lock:
            idle, self._idle = self._idle, collections.OrderedDict()
        if self._pid == os.getpid():
            for sandboxes in idle.values():
                for sandbox in sandboxes:
                    sandbox.close()

    close = flush


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
