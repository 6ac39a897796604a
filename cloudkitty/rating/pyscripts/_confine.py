"""The kernel mechanisms that confine a pyscripts sandbox process.

Standard library only (``ctypes`` onto the C library): the sandbox process
(:mod:`cloudkitty.rating.pyscripts._sandbox_main`) loads this file before
it confines itself, and the service imports it to describe the host. Linux
only; each function raises :class:`Unavailable` saying what the kernel
refused, and the caller decides (fail closed, or ``allow_unconfined``).

The layers, set up in this order (see ``doc/source/admin/pyscripts.rst``
for why these):

1. :func:`unshare` -- new user, mount, PID, network, IPC and UTS
   namespaces: no network device but a loopback that is down, no System V
   IPC of the host, and processes that neither see nor can signal any
   process outside (and all die with the namespace's first process).
2. :func:`private_root` -- in the new mount namespace, a root directory of
   its own (an empty tmpfs, read-only) into which only the directories the
   interpreter needs are bound, read-only: no other file of the host
   exists there (configuration, database, ``/proc``, ``/dev``, ``/tmp``).
3. :func:`landlock` -- where the kernel has Landlock: the same directories,
   read-only, as the only file system access (a second, independent
   enforcement); TCP bind and connect refused (ABI 4); signals and abstract
   UNIX sockets scoped to the process (ABI 6).
4. :func:`drop_capabilities` and ``PR_SET_NO_NEW_PRIVS``: the capabilities
   the user namespace gave are dropped, and nothing can raise privileges
   again.
5. :func:`seccomp` -- a system call allow list (everything else fails with
   ``EPERM``): no socket, no process (threads only), no ``exec``, no file
   opened for writing, no signal but to the process itself, no mount,
   namespace, ptrace, BPF, io_uring, keyring or ``prctl`` call.
"""

import ctypes
import errno
import os
import platform
import struct

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class Unavailable(Exception):
    """A layer the kernel (or the host's configuration) refused."""


def _fail(what):
    number = ctypes.get_errno()
    raise Unavailable(f'{what}: {os.strerror(number)} '
                      f'({errno.errorcode.get(number, number)})')


def _check(result, what):
    if result < 0:
        _fail(what)
    return result


# -- process attributes -------------------------------------------------------

PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22


def _prctl(option, arg2, what):
    _check(_libc.prctl(ctypes.c_int(option), ctypes.c_ulong(arg2),
                       ctypes.c_ulong(0), ctypes.c_ulong(0),
                       ctypes.c_ulong(0)), what)


def set_parent_death_signal(signal_number):
    """``PR_SET_PDEATHSIG``: the kernel sends ``signal_number`` to this
    process when the thread that created it ends."""
    _prctl(PR_SET_PDEATHSIG, signal_number, 'PR_SET_PDEATHSIG')


def no_new_privs():
    """``PR_SET_NO_NEW_PRIVS``: no exec can raise privileges again."""
    _prctl(PR_SET_NO_NEW_PRIVS, 1, 'PR_SET_NO_NEW_PRIVS')


class _CapHeader(ctypes.Structure):
    _fields_ = [('version', ctypes.c_uint32), ('pid', ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [('effective', ctypes.c_uint32),
                ('permitted', ctypes.c_uint32),
                ('inheritable', ctypes.c_uint32)]


def drop_capabilities():
    """Empty the effective, permitted and inheritable capability sets."""
    header = _CapHeader(0x20080522, 0)   # _LINUX_CAPABILITY_VERSION_3
    data = (_CapData * 2)()
    _check(_libc.capset(ctypes.byref(header), data), 'capset')


# -- namespaces ---------------------------------------------------------------

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

#: The namespaces a sandbox gets, in the order they are made.
NAMESPACES = (('user', CLONE_NEWUSER), ('mount', CLONE_NEWNS),
              ('pid', CLONE_NEWPID), ('network', CLONE_NEWNET),
              ('ipc', CLONE_NEWIPC), ('uts', CLONE_NEWUTS))


def _write(path, text):
    with open(path, 'w') as stream:
        stream.write(text)


def unshare(skip=()):
    """Enter new namespaces (those of :data:`NAMESPACES` not in ``skip``);
    returns ``{name: None or the reason it failed}``.

    The user namespace comes first: in it this process holds the
    capabilities the others need, whoever runs the service. Its own user
    and group are mapped to root inside, so that it can mount there; the
    kernel still knows them as the service's user and group. The PID
    namespace applies to the children made afterwards.
    """
    outcome = {}
    uid, gid = os.geteuid(), os.getegid()
    for name, flag in NAMESPACES:
        if name in skip:
            outcome[name] = 'disabled'
            continue
        if _libc.unshare(ctypes.c_int(flag)) != 0:
            outcome[name] = os.strerror(ctypes.get_errno())
            continue
        outcome[name] = None
        if name == 'user':
            try:
                _write('/proc/self/setgroups', 'deny')
                _write('/proc/self/uid_map', f'0 {uid} 1')
                _write('/proc/self/gid_map', f'0 {gid} 1')
            except OSError as error:
                outcome[name] = f'cannot map its user: {error.strerror}'
    return outcome


# -- the private root -----------------------------------------------------------

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_RELATIME = 1 << 21
MNT_DETACH = 2
#: statvfs's flags and the mount flags a bind remount must keep.
_KEPT_FLAGS = ((os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV),
               (os.ST_NOEXEC, MS_NOEXEC), (os.ST_NOATIME, MS_NOATIME),
               (os.ST_NODIRATIME, MS_NODIRATIME),
               (getattr(os, 'ST_RELATIME', 4096), MS_RELATIME))
_SYS_PIVOT_ROOT = {'x86_64': 155, 'aarch64': 41}
#: Where the new root is assembled (any directory; the tmpfs hides it in
#: this mount namespace only).
_BASE = '/tmp'


def _mount(source, target, fstype, flags, data, what):
    encode = (lambda value: None if value is None else os.fsencode(value))
    if _libc.mount(encode(source), encode(target), encode(fstype),
                   ctypes.c_ulong(flags), encode(data)) != 0:
        _fail(f'{what} ({target})')


def _read_only_bind(source_fd, target):
    _mount(f'/proc/self/fd/{source_fd}', target, None, MS_BIND | MS_REC, None,
           'bind mount')
    flags = os.statvfs(target).f_flag
    kept = 0
    for st_flag, ms_flag in _KEPT_FLAGS:
        if flags & st_flag:
            kept |= ms_flag
    _mount(None, target, None,
           MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | kept,
           None, 'read-only remount')


def readable_paths():
    """The files and directories the interpreter needs once started: its
    standard library (``sys.path`` of ``python -I -S``), the directories of
    the shared objects mapped into this process (the interpreter, the C
    library, extension modules) and the dynamic loader's cache. Sorted, none
    beneath another."""
    import sys
    candidates = {path for path in sys.path if os.path.isdir(path)}
    with open('/proc/self/maps') as maps:
        for line in maps:
            parts = line.split(None, 5)
            if len(parts) == 6 and parts[5].startswith('/'):
                path = parts[5].rstrip('\n')
                if os.path.isfile(path):
                    candidates.add(os.path.dirname(path))
    if os.path.isfile('/etc/ld.so.cache'):
        candidates.add('/etc/ld.so.cache')
    kept = []
    for path in sorted(os.path.realpath(p) for p in candidates):
        if path == '/' or any(path.startswith(parent.rstrip('/') + '/')
                              for parent in kept):
            continue
        kept.append(path)
    return kept


def private_root(paths):
    """Make a read-only tmpfs the root of this mount namespace, with each
    of ``paths`` (absolute, none beneath another) bound at its own place,
    read-only; the old root is detached. The working directory becomes
    ``/``."""
    sources = [(path, os.open(path, os.O_PATH | os.O_CLOEXEC))
               for path in paths]
    try:
        _mount(None, '/', None, MS_REC | MS_PRIVATE, None,
               'private mount propagation')
        _mount('tmpfs', _BASE, 'tmpfs', MS_NOSUID | MS_NODEV,
               'mode=0755,size=1m', 'tmpfs')
        for path, fd in sources:
            target = _BASE + path
            if os.path.isdir(f'/proc/self/fd/{fd}'):
                os.makedirs(target, exist_ok=True)
            else:
                os.makedirs(os.path.dirname(target), exist_ok=True)
                os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o644))
            _read_only_bind(fd, target)
    finally:
        for _path, fd in sources:
            os.close(fd)
    number = _SYS_PIVOT_ROOT.get(platform.machine())
    if number is None:
        raise Unavailable(f'pivot_root: unknown system call number on '
                          f'{platform.machine()}')
    os.chdir(_BASE)
    # pivot_root(".", "."): the old root ends up stacked on the new one,
    # and is detached at once.
    _check(_libc.syscall(ctypes.c_long(number), b'.', b'.'), 'pivot_root')
    _check(_libc.umount2(b'.', ctypes.c_int(MNT_DETACH)), 'umount old root')
    os.chdir('/')
    _mount(None, '/', None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV,
           None, 'read-only root')


# -- Landlock -----------------------------------------------------------------

_LANDLOCK_CREATE_RULESET = 444
_LANDLOCK_ADD_RULE = 445
_LANDLOCK_RESTRICT_SELF = 446
_LANDLOCK_CREATE_RULESET_VERSION = 1
_LANDLOCK_RULE_PATH_BENEATH = 1
_FS_EXECUTE = 1 << 0
_FS_READ_FILE = 1 << 2
_FS_READ_DIR = 1 << 3
#: The file system rights each ABI handles (all refused unless granted).
_FS_RIGHTS = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1,
              5: (1 << 16) - 1}
_NET_BIND_TCP = 1 << 0
_NET_CONNECT_TCP = 1 << 1
_SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0
_SCOPE_SIGNAL = 1 << 1


def landlock_abi():
    """The kernel's Landlock ABI version, 0 where it has none (or it is
    disabled at boot)."""
    version = _libc.syscall(ctypes.c_long(_LANDLOCK_CREATE_RULESET), None,
                            ctypes.c_size_t(0),
                            ctypes.c_uint32(_LANDLOCK_CREATE_RULESET_VERSION))
    return max(0, version)


def landlock(paths):
    """Restrict this process (and what it starts) to reading ``paths``
    (files or directories, beneath which everything is readable); where
    the ABI allows, refuse TCP bind and connect, and scope signals and
    abstract UNIX sockets. Returns the features enforced."""
    abi = landlock_abi()
    if abi < 1:
        raise Unavailable('Landlock is not enabled in this kernel')
    fs_rights = _FS_RIGHTS[max(v for v in _FS_RIGHTS if v <= abi)]
    features = ['landlock-fs']
    net_rights = scoped = 0
    size = 8
    if abi >= 4:
        net_rights = _NET_BIND_TCP | _NET_CONNECT_TCP
        features.append('landlock-net')
        size = 16
    if abi >= 6:
        scoped = _SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL
        features.append('landlock-scope')
        size = 24
    attr = ctypes.create_string_buffer(
        struct.pack('=QQQ', fs_rights, net_rights, scoped)[:size], size)
    ruleset = _check(_libc.syscall(
        ctypes.c_long(_LANDLOCK_CREATE_RULESET), attr, ctypes.c_size_t(size),
        ctypes.c_uint32(0)), 'landlock_create_ruleset')
    try:
        for path in paths:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            try:
                allowed = _FS_READ_FILE
                if os.path.isdir(path):
                    allowed |= _FS_READ_DIR
                rule = ctypes.create_string_buffer(
                    struct.pack('=Qi', allowed, fd), 12)
                _check(_libc.syscall(
                    ctypes.c_long(_LANDLOCK_ADD_RULE), ctypes.c_int(ruleset),
                    ctypes.c_int(_LANDLOCK_RULE_PATH_BENEATH), rule,
                    ctypes.c_uint32(0)), f'landlock_add_rule ({path})')
            finally:
                os.close(fd)
        _check(_libc.syscall(ctypes.c_long(_LANDLOCK_RESTRICT_SELF),
                             ctypes.c_int(ruleset), ctypes.c_uint32(0)),
               'landlock_restrict_self')
    finally:
        os.close(ruleset)
    return features


# -- seccomp ------------------------------------------------------------------

_AUDIT_ARCH = {'x86_64': 0xC000003E, 'aarch64': 0xC00000B7}
#: System calls allowed whatever their arguments, by architecture.
_ALLOWED = {
    'x86_64': {
        'read': 0, 'write': 1, 'close': 3, 'stat': 4, 'fstat': 5, 'lstat': 6,
        'poll': 7, 'lseek': 8, 'mmap': 9, 'mprotect': 10, 'munmap': 11,
        'brk': 12, 'rt_sigaction': 13, 'rt_sigprocmask': 14,
        'rt_sigreturn': 15, 'pread64': 17, 'readv': 19, 'writev': 20,
        'access': 21, 'select': 23, 'sched_yield': 24, 'mremap': 25,
        'mincore': 27, 'madvise': 28, 'dup': 32, 'dup2': 33, 'pause': 34,
        'nanosleep': 35, 'getitimer': 36, 'alarm': 37, 'setitimer': 38,
        'getpid': 39, 'exit': 60, 'uname': 63, 'getcwd': 79,
        'readlink': 89, 'gettimeofday': 96, 'getrusage': 98, 'sysinfo': 99,
        'times': 100, 'getuid': 102, 'getgid': 104, 'geteuid': 107,
        'getegid': 108, 'getppid': 110, 'getpgrp': 111, 'getgroups': 115,
        'getresuid': 118, 'getresgid': 120, 'getpgid': 121, 'getsid': 124,
        'rt_sigpending': 127, 'rt_sigtimedwait': 128, 'rt_sigsuspend': 130,
        'sigaltstack': 131, 'statfs': 137, 'fstatfs': 138, 'arch_prctl': 158,
        'gettid': 186, 'time': 201, 'futex': 202, 'sched_getaffinity': 204,
        'getdents64': 217, 'set_tid_address': 218, 'restart_syscall': 219,
        'fadvise64': 221, 'clock_gettime': 228, 'clock_getres': 229,
        'clock_nanosleep': 230, 'exit_group': 231, 'newfstatat': 262,
        'readlinkat': 267, 'faccessat': 269, 'pselect6': 270, 'ppoll': 271,
        'set_robust_list': 273, 'get_robust_list': 274, 'dup3': 292,
        'preadv': 295, 'getcpu': 309, 'getrandom': 318, 'membarrier': 324,
        'preadv2': 327, 'statx': 332, 'rseq': 334, 'close_range': 436,
        'faccessat2': 439,
    },
    'aarch64': {
        'getcwd': 17, 'dup': 23, 'dup3': 24, 'statfs': 43, 'fstatfs': 44,
        'faccessat': 48, 'close': 57, 'getdents64': 61, 'lseek': 62,
        'read': 63, 'write': 64, 'readv': 65, 'writev': 66, 'pread64': 67,
        'preadv': 69, 'pselect6': 72, 'ppoll': 73, 'readlinkat': 78,
        'newfstatat': 79, 'fstat': 80, 'exit': 93, 'exit_group': 94,
        'set_tid_address': 96, 'futex': 98, 'set_robust_list': 99,
        'get_robust_list': 100, 'nanosleep': 101, 'getitimer': 102,
        'setitimer': 103, 'clock_gettime': 113, 'clock_getres': 114,
        'clock_nanosleep': 115, 'sched_getaffinity': 123, 'sched_yield': 124,
        'restart_syscall': 128, 'sigaltstack': 132, 'rt_sigsuspend': 133,
        'rt_sigaction': 134, 'rt_sigprocmask': 135, 'rt_sigpending': 136,
        'rt_sigtimedwait': 137, 'rt_sigreturn': 139, 'getresuid': 148,
        'getresgid': 150, 'times': 153, 'getpgid': 155, 'getsid': 156,
        'getgroups': 158, 'uname': 160, 'getrusage': 165, 'getcpu': 168,
        'gettimeofday': 169, 'getpid': 172, 'getppid': 173, 'getuid': 174,
        'geteuid': 175, 'getgid': 176, 'getegid': 177, 'gettid': 178,
        'sysinfo': 179, 'brk': 214, 'munmap': 215, 'mremap': 216,
        'mmap': 222, 'fadvise64': 223, 'mprotect': 226, 'mincore': 232,
        'madvise': 233, 'getrandom': 278, 'membarrier': 283, 'preadv2': 286,
        'statx': 291, 'rseq': 293, 'close_range': 436, 'faccessat2': 439,
    },
}
#: The system calls allowed with some arguments only.
_CHECKED = {
    'x86_64': {'open': 2, 'ioctl': 16, 'clone': 56, 'kill': 62, 'fcntl': 72,
               'tgkill': 234, 'openat': 257, 'prlimit64': 302,
               'clone3': 435},
    'aarch64': {'fcntl': 25, 'ioctl': 29, 'openat': 56, 'kill': 129,
                'tgkill': 131, 'clone': 220, 'prlimit64': 261,
                'clone3': 435},
}
_X32_SYSCALL_BIT = 0x40000000
_CLONE_THREAD = 0x00010000
#: O_WRONLY, O_RDWR, O_CREAT, O_TRUNC, O_APPEND, __O_TMPFILE.
_WRITE_FLAGS = 0o1 | 0o2 | 0o100 | 0o1000 | 0o2000 | 0o20000000
#: ioctl requests Python makes on its own files: TCGETS (isatty),
#: FIONREAD, FIONCLEX and FIOCLEX (inheritable flag).
_IOCTLS = (0x5401, 0x541B, 0x5450, 0x5451)
#: fcntl commands: F_DUPFD, F_GETFD, F_SETFD, F_GETFL, F_SETFL,
#: F_DUPFD_CLOEXEC (not F_SETOWN, which would aim SIGIO at a process).
_FCNTLS = (0, 1, 2, 3, 4, 1030)

_RET_KILL_PROCESS = 0x80000000
_RET_ERRNO = 0x00050000
_RET_ALLOW = 0x7FFF0000
_LD_ABS_W = 0x20     # BPF_LD | BPF_W | BPF_ABS
_JEQ_K = 0x15        # BPF_JMP | BPF_JEQ | BPF_K
_JGE_K = 0x35        # BPF_JMP | BPF_JGE | BPF_K
_JSET_K = 0x45       # BPF_JMP | BPF_JSET | BPF_K
_RET_K = 0x06        # BPF_RET | BPF_K
_NR, _ARCH = 0, 4


def _arg(index):
    # The low 32 bits of argument ``index`` (little-endian): every argument
    # checked here is an int, an unsigned int or flags in the low bits.
    return 16 + 8 * index


def _ins(code, k, jt=0, jf=0):
    return (code, jt, jf, k)


def _deny(number=errno.EPERM):
    return _ins(_RET_K, _RET_ERRNO | number)


_ALLOW = _ins(_RET_K, _RET_ALLOW)


def _one_of(arg, values):
    block = [_ins(_LD_ABS_W, _arg(arg))]
    for value in values:
        block += [_ins(_JEQ_K, value, 0, 1), _ALLOW]
    return block + [_deny()]


def _unless_bits(arg, bits):
    """Allowed when none of ``bits`` is set in the argument."""
    return [_ins(_LD_ABS_W, _arg(arg)), _ins(_JSET_K, bits, 0, 1), _deny(),
            _ALLOW]


def seccomp_program(machine, own_pid):
    """The filter's instructions ``(code, jt, jf, k)`` for ``machine``;
    ``own_pid`` is the only process ``kill`` and ``tgkill`` may aim at."""
    if machine not in _AUDIT_ARCH:
        raise Unavailable(f'seccomp: no system call table for {machine}')
    checked = _CHECKED[machine]
    blocks = {
        'openat': _unless_bits(2, _WRITE_FLAGS),
        'open': _unless_bits(1, _WRITE_FLAGS),
        'ioctl': _one_of(1, _IOCTLS),
        'fcntl': _one_of(1, _FCNTLS),
        # Threads (they end with the process), never a process.
        'clone': [_ins(_LD_ABS_W, _arg(0)),
                  _ins(_JSET_K, _CLONE_THREAD, 0, 1), _ALLOW, _deny()],
        # Its flags are in memory a filter cannot read: ENOSYS makes the C
        # library fall back on clone.
        'clone3': [_deny(errno.ENOSYS)],
        'kill': _one_of(0, [own_pid]),
        'tgkill': _one_of(0, [own_pid]),
        'prlimit64': _one_of(0, [0]),
    }
    program = [_ins(_LD_ABS_W, _ARCH),
               _ins(_JEQ_K, _AUDIT_ARCH[machine], 1, 0),
               _ins(_RET_K, _RET_KILL_PROCESS),
               _ins(_LD_ABS_W, _NR)]
    if machine == 'x86_64':
        # The x32 ABI's numbers: none allowed.
        program += [_ins(_JGE_K, _X32_SYSCALL_BIT, 0, 1), _deny()]
    for number in sorted(_ALLOWED[machine].values()):
        program += [_ins(_JEQ_K, number, 0, 1), _ALLOW]
    for name, number in sorted(checked.items()):
        block = blocks[name]
        program += [_ins(_JEQ_K, number, 0, len(block))] + block
    program.append(_deny())
    return program


class _SockFilter(ctypes.Structure):
    _fields_ = [('code', ctypes.c_uint16), ('jt', ctypes.c_uint8),
                ('jf', ctypes.c_uint8), ('k', ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [('len', ctypes.c_ushort),
                ('filter', ctypes.POINTER(_SockFilter))]


def seccomp():
    """Install the system call filter on this (single-threaded) process;
    ``PR_SET_NO_NEW_PRIVS`` must be set."""
    program = seccomp_program(platform.machine(), os.getpid())
    filters = (_SockFilter * len(program))(*program)
    fprog = _SockFprog(len(program), filters)
    _check(_libc.prctl(ctypes.c_int(PR_SET_SECCOMP), ctypes.c_ulong(2),
                       ctypes.byref(fprog), ctypes.c_ulong(0),
                       ctypes.c_ulong(0)), 'seccomp filter')
