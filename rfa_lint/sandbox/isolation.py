"""The kernel between model code and the user: namespaces and Landlock for every sandbox child.

Processes alone cannot contain code that runs as the same user: it can see, signal and write
everything the user can.  So each file's keeper (:mod:`.server`) enters new user, PID, network
and IPC namespaces and starts the init of a PID namespace of its own (:func:`enter_namespaces`,
:func:`start_init`) before it forks the child, which confines itself before any user code runs
(:func:`confine`):

- a mount namespace with a fresh ``/proc`` (it shows the file's own processes only), a private
  ``/dev/shm``, and empty folders over the linter's own state (the runtime folder with the
  worker's sockets, the slot locks): what another process of the user holds is out of sight;
- Landlock: it writes only under its work folder (and ``/dev/null``, its private ``/dev/shm``),
  opens no TCP connection, and signals no process outside its own domain;
- the network namespace has no interface up and no route anywhere.

The PID namespace's first process is a small init (:func:`start_init`); user code runs as its
sibling, an ordinary process whose parent (the keeper) is outside the namespace.  When the init
ends, the kernel kills everything the file started.

Landlock (ABI 7 and older) leaves two ways out: ``connect`` and ``sendto`` to a Unix socket of
the file system (the Docker daemon's, a session bus, another user's services), and a signal to
every process the user may signal (``kill(-1, ...)``), which matters where there is no PID
namespace.  A seccomp filter (:func:`restrict_calls`) closes both for every child, with
namespaces or without: a Unix socket can only be made in connected pairs (``socketpair``: the
pipes of ``multiprocessing`` keep working; a datagram pair is refused too, its ``sendto`` takes
any address), ``kill(-1, ...)`` and ``io_uring`` (which makes sockets past the filter) are
refused.

What the kernel gives is found once per process by :func:`probe`, which forks processes that
go through the same steps; where it refuses, the same process tree runs without them (the
``isolation`` setting ``"required"`` refuses to run model code then, and ``"processes"`` never
asks for namespaces and Landlock: for models whose libraries must write outside their work
folder).  Linux only; everything is done with ``ctypes`` system calls (Python 3.11 has no
``os.unshare``).
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import signal
import socket
import struct
import sys
import tempfile
import threading
from dataclasses import dataclass
from typing import Callable

CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWUSER = 0x00020000, 0x08000000, 0x10000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_PRIVATE = 0x1, 0x2, 0x4, 0x8, 0x4000, 0x40000
SHM_SIZE = "size=64m"  # the child's own /dev/shm: in memory, outside its address-space cap
PR_SET_NO_NEW_PRIVS = 38
NAMESPACES = "user, pid, net, ipc, mount"

# Landlock (include/uapi/linux/landlock.h); x86-64 and arm64 share the system call numbers
SYS_LANDLOCK_CREATE_RULESET, SYS_LANDLOCK_ADD_RULE, SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446
LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH = 1
WRITE_FILE, TRUNCATE = 1 << 1, 1 << 14
#: the file-system rights that change something, by the ABI version that brought them: REMOVE_DIR
#: to MAKE_SYM (1), REFER (2), TRUNCATE (3)
WRITES = {1: WRITE_FILE | sum(1 << bit for bit in range(4, 13)), 2: 1 << 13, 3: TRUNCATE}
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1  # ABI 4
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1  # ABI 6
O_PATH = getattr(os, "O_PATH", 0o10000000)

# seccomp (include/uapi/linux/seccomp.h, filter.h, audit.h)
PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
SECCOMP_RET_KILL_PROCESS, SECCOMP_RET_ERRNO, SECCOMP_RET_ALLOW = 0x80000000, 0x00050000, 0x7FFF0000
BPF_LD_ABS, BPF_JEQ, BPF_JGE, BPF_AND, BPF_RET = 0x20, 0x15, 0x35, 0x54, 0x06  # with BPF_W, BPF_K
SOCK_TYPE_MASK = 0xF  # SOCK_NONBLOCK and SOCK_CLOEXEC ride on the type argument
X32_SYSCALL_BIT = 0x40000000
IO_URING_SETUP = 425  # the same on every architecture


@dataclass(frozen=True)
class _Calls:
    """An architecture's audit number and the numbers of the system calls the filter looks at."""

    arch: int
    socket: int
    socketpair: int
    kill: int
    x32: bool = False  # x86-64 also takes x32 calls (numbers with X32_SYSCALL_BIT), same audit number


CALLS = {"x86_64": _Calls(0xC000003E, socket=41, socketpair=53, kill=62, x32=True),
         "aarch64": _Calls(0xC00000B7, socket=198, socketpair=199, kill=129)}

_LIBC = ctypes.CDLL(None, use_errno=True)


def _call(result: int, what: str) -> int:
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")
    return result


def _write(path: str, text: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, path) from None


def enter_namespaces() -> None:
    """Move this process into new user, network and IPC namespaces, with a new PID namespace for
    its children: the next process it starts is PID 1 there (:func:`start_init`).  Only this
    user's own ids are mapped (the kernel allows no more without privileges).  OSError when the
    kernel refuses."""
    uid, gid = os.geteuid(), os.getegid()
    _call(_LIBC.unshare(CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC), "unshare")
    _write("/proc/self/uid_map", f"{uid} {uid} 1")
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/gid_map", f"{gid} {gid} 1")


def confine(work: str, hidden: tuple[str, ...] = ()) -> int:
    """Confine this process (a child in the namespaces :func:`enter_namespaces` made) before user
    code runs: its own mounts (a fresh ``/proc``, a private ``/dev/shm``, an empty folder over
    each existing folder of ``hidden``), then Landlock.  The Landlock ABI version in force (0:
    none, the kernel has no Landlock).  OSError when a step is refused."""
    _call(_LIBC.unshare(CLONE_NEWNS), "unshare mount namespace")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing mounted here shows outside
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    safe = MS_NOSUID | MS_NODEV | MS_NOEXEC
    mounts = [("/dev/shm", safe, SHM_SIZE), *((folder, safe | MS_RDONLY, "size=4k") for folder in hidden)]
    for folder, flags, data in mounts:
        if os.path.isdir(folder) and not _within(work, folder):
            _mount("tmpfs", folder, "tmpfs", flags, data)
    return restrict_writes(work)


#: The init of a file's PID namespace: it only reaps the orphans user code leaves (they are
#: reparented to it), and never ends by itself; killing it ends everything in the namespace.
INIT = ("import os, signal\n"
        "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})\n"
        "while True:\n"
        "    try:\n"
        "        while os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG):\n"
        "            pass\n"
        "    except ChildProcessError:\n"
        "        pass\n"
        "    signal.sigtimedwait({signal.SIGCHLD}, 60)\n")


def start_init() -> int:
    """Start the init of the PID namespace :func:`enter_namespaces` made (the first process this
    one starts is PID 1 there), and return its pid.  The next child this process forks then runs
    in that namespace as an ordinary process whose parent, this one, is outside it: it can see
    and signal neither its parent nor anything else outside.

    The init is a small interpreter started by ``posix_spawn`` (no copy of this process's memory,
    as a ``fork`` of a warm server would make), with no signal handlers: nothing inside the
    namespace can signal it, and the kernel kills everything there when it ends.
    """
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        actions = [(os.POSIX_SPAWN_DUP2, devnull, fd) for fd in (0, 1, 2)]
        return os.posix_spawn(sys.executable, [sys.executable, "-I", "-S", "-c", INIT], {},
                              file_actions=actions, setsigmask=(), setsigdef=signal.valid_signals()
                              - {signal.SIGKILL, signal.SIGSTOP})
    finally:
        os.close(devnull)


def _within(path: str, folder: str) -> bool:
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return os.path.commonpath([path, folder]) == folder


def _mount(source: str | None, target: str, kind: str | None, flags: int, data: str | None = None) -> None:
    encoded = [None if text is None else os.fsencode(text) for text in (source, target, kind, data)]
    _call(_LIBC.mount(*encoded[:3], ctypes.c_ulong(flags), encoded[3]), f"mount {target}")


def landlock_abi() -> int:
    """The kernel's Landlock ABI version; 0 when it has none (older than 5.13, or turned off)."""
    try:
        return max(_LIBC.syscall(SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0),
                                 ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION)), 0)
    except AttributeError:  # no syscall() in this C library
        return 0


def restrict_writes(work: str) -> int:
    """Landlock for this process and all it starts: file-system writes only under ``work``,
    ``/dev/null`` and ``/dev/shm``; no TCP bind or connect (ABI 4); no signal to, nor abstract
    Unix socket of, a process outside (ABI 6).  The ABI version in force (0: no Landlock)."""
    abi = landlock_abi()
    if abi == 0:
        return 0
    writes = sum(rights for version, rights in WRITES.items() if version <= abi)
    fields = [writes]
    if abi >= 4:
        fields.append(NET_BIND_TCP | NET_CONNECT_TCP)
    if abi >= 6:
        fields.append(SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL)
    attr = struct.pack(f"{len(fields)}Q", *fields)
    ruleset = _call(_LIBC.syscall(SYS_LANDLOCK_CREATE_RULESET, attr, ctypes.c_size_t(len(attr)),
                                  ctypes.c_uint32(0)), "landlock_create_ruleset")
    try:
        for path, rights in ((work, writes), ("/dev/shm", writes), (os.devnull, WRITE_FILE | TRUNCATE)):
            _allow(ruleset, path, rights & writes)
        _call(_LIBC.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
        _call(_LIBC.syscall(SYS_LANDLOCK_RESTRICT_SELF, ruleset, ctypes.c_uint32(0)), "landlock_restrict")
    finally:
        os.close(ruleset)
    return abi


def _allow(ruleset: int, path: str, rights: int) -> None:
    fd = os.open(path, O_PATH | os.O_CLOEXEC)
    try:
        rule = struct.pack("=Qi", rights, fd)  # struct landlock_path_beneath_attr is packed
        _call(_LIBC.syscall(SYS_LANDLOCK_ADD_RULE, ruleset, ctypes.c_uint32(LANDLOCK_RULE_PATH_BENEATH),
                            rule, ctypes.c_uint32(0)), f"landlock_add_rule {path}")
    finally:
        os.close(fd)


def restrict_calls() -> None:
    """A seccomp filter for this process and all it starts (it sets ``no_new_privs``): no Unix
    socket but a connected stream or packet pair, no ``kill(-1, ...)``, no ``io_uring`` (each
    fails with EPERM); a system call of another architecture, or an x32 one, kills the process.
    OSError when the kernel refuses, or the filter has no numbers for this architecture."""
    calls = CALLS.get(os.uname().machine)
    if calls is None or sys.byteorder != "little":
        raise OSError(errno.ENOSYS, f"no seccomp filter for {os.uname().machine}")
    code = _assemble(_program(calls))
    program = ctypes.create_string_buffer(code, len(code))
    fprog = struct.pack("HxxxxxxP", len(code) // 8, ctypes.addressof(program))  # struct sock_fprog
    _call(_LIBC.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    _call(_LIBC.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.c_char_p(fprog), 0, 0), "seccomp")


def _program(calls: _Calls) -> list:
    """The filter: instructions ``(code, k, jump if true, jump if false)`` (a jump names a label,
    or None: the next instruction) and labels.  The low half of argument ``i`` is at ``16 + 8i``
    (``struct seccomp_data``, little-endian): what the kernel reads of an ``int`` argument."""
    deny, arg = SECCOMP_RET_ERRNO | errno.EPERM, lambda index: 16 + 8 * index
    return [
        (BPF_LD_ABS, 4, None, None), (BPF_JEQ, calls.arch, None, "foreign"),
        (BPF_LD_ABS, 0, None, None),
        *([(BPF_JGE, X32_SYSCALL_BIT, "foreign", None)] if calls.x32 else []),
        (BPF_JEQ, calls.socket, "socket", None),
        (BPF_JEQ, calls.socketpair, "socketpair", None),
        (BPF_JEQ, calls.kill, "kill", None),
        (BPF_JEQ, IO_URING_SETUP, "deny", "allow"),
        "socket", (BPF_LD_ABS, arg(0), None, None), (BPF_JEQ, socket.AF_UNIX, "deny", "allow"),
        "socketpair", (BPF_LD_ABS, arg(1), None, None), (BPF_AND, SOCK_TYPE_MASK, None, None),
        (BPF_JEQ, socket.SOCK_DGRAM, "deny", "allow"),
        "kill", (BPF_LD_ABS, arg(0), None, None), (BPF_JEQ, 0xFFFFFFFF, "deny", "allow"),  # pid -1
        "allow", (BPF_RET, SECCOMP_RET_ALLOW, None, None),
        "deny", (BPF_RET, deny, None, None),
        "foreign", (BPF_RET, SECCOMP_RET_KILL_PROCESS, None, None),
    ]


def _assemble(program: list) -> bytes:
    """``struct sock_filter`` array of a :func:`_program` (classic BPF jumps only go forward)."""
    labels: dict[str, int] = {}
    instructions = []
    for item in program:
        if isinstance(item, str):
            labels[item] = len(instructions)
        else:
            instructions.append(item)

    def offset(target: str | None, at: int) -> int:
        return 0 if target is None else labels[target] - at - 1

    return b"".join(struct.pack("=HBBI", code, offset(true, at), offset(false, at), k)
                    for at, (code, k, true, false) in enumerate(instructions))


@dataclass(frozen=True)
class Isolation:
    """What the kernel gives the sandbox children: namespaces, Landlock's version (0: none), the
    seccomp filter; and why a part is missing."""

    namespaces: bool
    landlock: int = 0
    seccomp: bool = False
    refused: str = ""  # why there are no namespaces (or no Landlock), and no filter

    @property
    def full(self) -> bool:
        return self.namespaces and self.landlock > 0 and self.seccomp

    @property
    def grade(self) -> tuple[bool, int, bool]:
        """What a child's results may depend on (the reasons aside): a part of the cache's key."""
        return self.namespaces, self.landlock, self.seccomp

    def describe(self) -> str:
        """``namespaces (user, pid, net, ipc, mount) + landlock + seccomp``, ``processes only +
        seccomp (why no namespaces)``."""
        parts = [f"namespaces ({NAMESPACES})" if self.namespaces else "processes only",
                 *(["landlock"] if self.namespaces and self.landlock else []),
                 *(["seccomp"] if self.seccomp else [])]
        return " + ".join(parts) + (f" ({self.refused})" if self.refused else "")


#: What decides whether the kernel gives a process namespaces: the sysctls that turn them off
#: for unprivileged users (upstream, Debian's, AppArmor's).
USERNS_SWITCHES = ("/proc/sys/user/max_user_namespaces", "/proc/sys/kernel/unprivileged_userns_clone",
                   "/proc/sys/kernel/apparmor_restrict_unprivileged_userns")


def fingerprint(mode: str) -> tuple:
    """What the isolation of this process's children depends on, read without starting a process
    (:func:`probe` forks, and a cache hit must start none): the setting, the switches of user
    namespaces, Landlock's ABI, and the seccomp state and no-new-privileges of this process
    (a container's filter that refuses ``unshare`` shows there)."""
    status = _read("/proc/self/status")
    own = tuple(line for line in status.splitlines() if line.startswith(("Seccomp:", "NoNewPrivs:")))
    return mode, sys.platform, landlock_abi(), tuple(_read(path).strip() for path in USERNS_SWITCHES), own


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            return file.read()
    except OSError:
        return ""


@functools.lru_cache(maxsize=None)
def probe() -> Isolation:
    """Whether the kernel lets a child of this process go through :func:`enter_namespaces`,
    :func:`confine` and :func:`restrict_calls` (once per process: two forks, a few
    milliseconds; three without namespaces)."""
    if not sys.platform.startswith("linux"):
        return Isolation(False, refused="not Linux")
    namespaces, text = _tried(_confined)
    landlock, _, unfiltered = text.partition(" ") if namespaces else ("0", "", _tried(_unfiltered)[1])
    refused = [text if not namespaces else "" if int(landlock) else "the kernel has no Landlock",
               unfiltered and f"no seccomp: {unfiltered}"]
    return Isolation(namespaces, int(landlock), not unfiltered, "; ".join(filter(None, refused)))


def _tried(step: Callable[[], str]) -> tuple[bool, str]:
    """(True, what ``step`` returned) in a forked process of this one, or (False, why it failed)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the probe's own process
        try:
            os.close(read)
            try:
                os.write(write, f"ok {step()}".encode())
            except OSError as exc:
                os.write(write, f"refused {_why(exc)}".encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as answer:
        report = answer.read().decode("utf-8", "replace")
    os.waitpid(pid, 0)
    done, _, text = report.partition(" ")
    return (True, text) if done == "ok" else (False, text or "the probe died")


def _confined() -> str:
    """A sandbox child's steps: ``"VERSION"`` (Landlock's ABI in force), or ``"VERSION WHY"``
    when the filter failed."""
    enter_namespaces()
    init = start_init()
    try:
        confined, text = _tried(_confined_child)  # in the new PID namespace, beside its init
    finally:
        os.kill(init, signal.SIGKILL)
        os.waitpid(init, 0)
    if not confined:
        raise OSError(0, text)
    return text


def _confined_child() -> str:
    return f"{confine(tempfile.gettempdir())} {_unfiltered()}".strip()


def _unfiltered() -> str:
    """Why :func:`restrict_calls` fails in this process ("" when it works: no Unix socket can
    be made after it)."""
    try:
        restrict_calls()
    except OSError as exc:
        return _why(exc)
    try:
        socket.socket(socket.AF_UNIX).close()
    except PermissionError:
        return ""
    return "the filter let a Unix socket through"


def _why(exc: OSError) -> str:
    """``unshare: No space left on device``, ``/proc/self/uid_map: Permission denied``."""
    return f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc.strerror)


class Refused(RuntimeError):
    """``isolation = "required"``, and the kernel does not give it."""


_PROBING = threading.Lock()


def in_force(mode: str) -> Isolation:
    """The isolation this process's sandbox children get under the setting ``mode`` (for
    ``"required"``, when it runs them at all), without saying it."""
    with _PROBING:  # threads of one run (the CLI's jobs) probe once
        kernel = probe()
    if mode == "processes":
        return Isolation(False, seccomp=kernel.seccomp, refused='isolation = "processes"')
    return kernel


def for_run(mode: str) -> Isolation:
    """:func:`in_force`; :class:`Refused` when ``mode`` is ``"required"`` and the kernel refuses
    part of it.  Said once per run on stderr when the kernel gives less than ``"auto"`` asks
    (the language server's stderr is its log)."""
    isolation = in_force(mode)
    if mode == "required" and not isolation.full:
        raise Refused(f'isolation = "required", but the kernel refuses it: {isolation.describe()}; '
                      "model code was not run")
    if mode != "processes":
        _announce(isolation)
    return isolation


@functools.lru_cache(maxsize=None)
def _announce(isolation: Isolation) -> None:
    """Once per run: ``flake8 -j``'s workers are processes of one run (:func:`slots.once_per_run`)."""
    from rfa_lint.sandbox import slots

    if not isolation.full and slots.once_per_run("isolation-said"):
        print(f"rfa-lint: isolation: {isolation.describe()}: model code runs as you, and can read, "
              "write and signal what you can; isolation = \"required\" refuses to run it",
              file=sys.stderr)


def hidden_folders(*folders: str | os.PathLike | None) -> tuple[str, ...]:
    """Folders a child must not see: the user's runtime folder (sockets of services that act for
    the user: D-Bus, the worker's), ``/run``, and the linter's own ``folders``."""
    names = ("/run", os.environ.get("XDG_RUNTIME_DIR"), *folders)
    return tuple(dict.fromkeys(os.path.abspath(name) for name in names if name))
