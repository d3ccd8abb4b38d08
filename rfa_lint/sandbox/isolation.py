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

What the kernel gives is found once per process by :func:`probe`, which forks a process that
goes through the same steps; where it refuses, the same process tree runs without them (the
``isolation`` setting ``"required"`` refuses to run model code then, and ``"processes"`` never
asks the kernel: for models whose libraries must write outside their work folder).  Linux only; everything
is done with ``ctypes`` system calls (Python 3.11 has no ``os.unshare``).
"""

from __future__ import annotations

import ctypes
import functools
import os
import signal
import struct
import sys
import tempfile
import threading
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Isolation:
    """What the kernel gives the sandbox children: namespaces (or why not), Landlock's version."""

    namespaces: bool
    landlock: int = 0
    refused: str = ""  # why there are no namespaces, or no Landlock

    @property
    def full(self) -> bool:
        return self.namespaces and self.landlock > 0

    def describe(self) -> str:
        """``namespaces (user, pid, net, ipc, mount) + landlock`` or ``processes only``."""
        if not self.namespaces:
            return f"processes only ({self.refused})"
        landlock = " + landlock" if self.landlock else f" (no landlock: {self.refused})"
        return f"namespaces ({NAMESPACES}){landlock}"


@functools.lru_cache(maxsize=None)
def probe() -> Isolation:
    """Whether the kernel lets a child of this process go through :func:`enter_namespaces` and
    :func:`confine` (once per process: a fork, two system call rounds, a few milliseconds)."""
    if not sys.platform.startswith("linux"):
        return Isolation(False, refused="not Linux")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the probe's own process
        os.close(read)
        os._exit(_probe_child(write))
    os.close(write)
    with os.fdopen(read, "rb") as answer:
        report = answer.read().decode("utf-8", "replace")
    os.waitpid(pid, 0)
    done, _, text = report.partition(" ")
    if done == "landlock":
        abi = int(text)
        return Isolation(True, abi, "" if abi else "the kernel has no Landlock")
    return Isolation(False, refused=text or "the probe died")


def _probe_child(answer: int) -> int:
    """Go through the steps of a sandbox child, and say how far they went on ``answer``."""
    try:
        enter_namespaces()
        init = start_init()
        pid = os.fork()
        if pid == 0:
            try:
                abi = confine(tempfile.gettempdir())
                os.write(answer, f"landlock {abi}".encode())
                os._exit(0)
            except OSError as exc:
                os.write(answer, f"refused {_why(exc)}".encode())
                os._exit(1)
        os.waitpid(pid, 0)
        os.kill(init, signal.SIGKILL)
        os.waitpid(init, 0)
    except OSError as exc:
        os.write(answer, f"refused {_why(exc)}".encode())
    return 0


def _why(exc: OSError) -> str:
    """``unshare: No space left on device``, ``/proc/self/uid_map: Permission denied``."""
    return f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc.strerror)


class Refused(RuntimeError):
    """``isolation = "required"``, and the kernel does not give it."""


_PROBING = threading.Lock()


def for_run(mode: str) -> Isolation:
    """The isolation this process's sandbox children get; :class:`Refused` when ``mode`` is
    ``"required"`` and the kernel refuses part of it.  Said once per process on stderr when it
    is less than full (the language server's stderr is its log)."""
    with _PROBING:  # threads of one run (the CLI's jobs) probe once
        isolation = probe()
    if mode == "required" and not isolation.full:
        raise Refused(f'isolation = "required", but the kernel refuses it: {isolation.describe()}; '
                      "model code was not run")
    _announce(isolation)
    return isolation


@functools.lru_cache(maxsize=None)
def _announce(isolation: Isolation) -> None:
    if not isolation.full:
        print(f"rfa-lint: isolation: {isolation.describe()}: model code runs as you, and can read, "
              "write and signal what you can; isolation = \"required\" refuses to run it",
              file=sys.stderr)


def hidden_folders(*folders: str | os.PathLike | None) -> tuple[str, ...]:
    """Folders a child must not see: the user's runtime folder (sockets of services that act for
    the user: D-Bus, the worker's), ``/run``, and the linter's own ``folders``."""
    names = ("/run", os.environ.get("XDG_RUNTIME_DIR"), *folders)
    return tuple(dict.fromkeys(os.path.abspath(name) for name in names if name))
