"""The user's persistent worker: a fork server (:mod:`.server`) that outlives the run that started
it, so that later runs (flake8 on every save, the CLI, the language server) skip the framework
import (1-2 s) and pay only for their own models, tens of milliseconds.

One worker serves one *key*: the Python environment (interpreter, installed distributions),
rfa-lint's code, the frameworks it preloads and the environment its children get; a run with
another key never talks to it.  It listens on ``KEY.sock`` (KEY's first 16 digits) in a folder
``rfa-lint-worker-UID`` of ``$RFA_LINT_WORKER_DIR`` (the tests' own), else ``$XDG_RUNTIME_DIR``,
else the temporary folder.

Trust.  The folder is used only when it is a real folder of this user that no one else may
enter (0700); a socket only when it is a socket of this user that no one else may write; the
process behind it only when the kernel says it runs as this user (``SO_PEERCRED``) and it names
the same key; the worker in turn serves only clients of its own user.  Anything else, or a
worker that is missing, dead, frozen or lost mid-file, and the run uses its own fork servers, as
without a worker: slower, the same findings (:func:`rfa_lint.sandbox.analyse_models`).

Isolation is the fork server's: a keeper and a fresh child per file, subreapers, results on the
run's own pipe (the run reads and caps them), the run's time limits, enforced by the run and,
should the run stop answering, by the worker itself (:class:`.server.Server`).  A client that
disconnects (ended, killed) takes its files' processes with it.  A request for a file whose
older text still runs supersedes it: the older run is told, then its processes killed.

Life.  The first run that finds no worker starts one (``python -m rfa_lint.sandbox.worker
serve ...``, a session of its own, no child of the run), under the key's start lock ``KEY.lock``,
so concurrent runs start one, not several.  It exits after :data:`IDLE_SECONDS` with no client
and nothing running, removing its socket.  The folder cleans itself: a lock file exists only
while a run holds it, and a run that starts a worker, ``status`` and ``stop`` remove the sockets
of dead workers (killed with SIGKILL: nothing listens there, no run holds their lock).
``python -m rfa_lint.sandbox.worker status`` lists the workers of this user, each with its
Python, rfa-lint version, frameworks and idle time; ``... stop`` stops those of this Python
environment (``sys.prefix``: another venv's runs keep theirs), ``... stop --all`` every one.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import select
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Iterator

import rfa_lint
from rfa_lint.sandbox import child, isolation, warm
from rfa_lint.sandbox.server import (MESSAGE_BYTES, START_FOLDER, Server, become_subreaper, command,
                                     kill_tree, peer_credentials, serve, wakeup_pipe)
from rfa_lint.sandbox.slots import child_slot

FOLDER_VARIABLE = "RFA_LINT_WORKER_DIR"
IDLE_SECONDS = 300.0
SOCKET_PATH_BYTES = 107  # what a Unix socket's address holds
FRAMEWORK_MODULES = ("torch", "tensorflow", "keras")  # what ``status`` names of a worker


def folder_path() -> Path:
    """Where the folder of this user's workers is (made by :func:`folder`)."""
    parent = os.environ.get(FOLDER_VARIABLE) or os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(parent, f"rfa-lint-worker-{os.getuid()}")


def folder() -> Path:
    """The folder of this user's workers; :class:`warm.ServerLost` when it is not private."""
    path = folder_path()
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = os.lstat(path)
    except OSError as exc:
        raise warm.ServerLost(f"no worker folder: {exc}") from None
    if not (stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o077):
        raise warm.ServerLost(f"{path} is not a private folder of this user")
    return path


def key(frameworks: tuple[str, ...], env: dict[str, str]) -> str:
    """What a worker must share with the run it serves (see the module docstring)."""
    from rfa_lint.cache import environment  # the cache imports the sandbox

    # the kernel's isolation as the run finds it: a worker started where namespaces are refused
    # (a container, a sandboxed editor) cannot give them to a run that has them
    material = {"environment": environment(), "executable": sys.executable, "prefix": sys.prefix,
                "frameworks": frameworks, "env": env, "isolation": isolation.probe().grade}
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:32]


def connect(framework: str, frameworks: tuple[str, ...], env: dict[str, str]) -> warm.Connection:
    """A connection to the user's worker of this key, started when none runs; ServerLost when
    none can serve (the run then uses its own fork servers)."""
    name = key(frameworks, env)
    path = folder() / f"{name[:16]}.sock"  # the whole key is checked in the worker's hello
    if len(os.fsencode(path)) > SOCKET_PATH_BYTES:
        raise warm.ServerLost(f"the worker's socket path is too long: {path}")
    try:
        connection = _reach(path, name)
        if connection is None:
            sweep(path.parent)  # what dead workers left, this key's included
            with _lock(path.with_suffix(".lock")):
                connection = (_reach(path, name, replace=True)
                              or _start(path, name, framework, frameworks, env))
    except OSError as exc:  # no SO_PEERCRED (not Linux), a folder that vanished, ...
        raise warm.ServerLost(f"no worker: {exc}") from None
    return connection


def _reach(path: Path, name: str, replace: bool = False) -> warm.Connection | None:
    """The worker listening at ``path``; None when there is none (with ``replace``, a dead or
    frozen one's socket is removed, so a new one can take its place); ServerLost when
    something else is there: a socket or process of another user, another key's worker."""
    sock = _open(path)
    if sock is None:
        return None
    with contextlib.ExitStack() as stack:
        stack.callback(sock.close)
        pid, uid, _ = peer_credentials(sock)
        if uid != os.getuid():
            raise warm.ServerLost(f"{path} is served by another user's process")
        try:
            hello = json.loads(sock.recv(MESSAGE_BYTES))
        except (OSError, ValueError):  # frozen, or no worker of ours
            hello = None
        if hello is None or not isinstance(hello, dict):
            if replace and _is_worker(pid):
                kill_tree(pid)
                path.unlink(missing_ok=True)
            return None
        if hello.get("key") != name:
            raise warm.ServerLost(f"{path} is served by a worker of another version or environment")
        stack.pop_all()
        return warm.Connection(sock, pid)


def _open(path: Path) -> socket.socket | None:
    """A socket connected to ``path`` when it is a socket of this user that only this user may
    write; None when nothing listens there (no file, or a dead worker's)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    if not (stat.S_ISSOCK(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o077):
        raise warm.ServerLost(f"{path} is not a socket of this user only")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sock.settimeout(warm.ANSWER_SECONDS)
    try:
        sock.connect(str(path))
    except OSError as exc:
        sock.close()
        if exc.errno in (errno.ECONNREFUSED, errno.ENOENT):
            return None
        raise warm.ServerLost(f"cannot reach the worker: {exc}") from None
    return sock


def _is_worker(pid: int) -> bool:
    try:
        return b"rfa_lint.sandbox.worker" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """The start lock of one key, held while a worker starts (at most ``warm.START_SECONDS``)."""
    deadline = time.monotonic() + warm.START_SECONDS
    while (fd := _take(path)) is None:
        if time.monotonic() > deadline:
            raise warm.ServerLost("another run has been starting the worker for too long")
        time.sleep(0.05)
    try:
        yield
    finally:
        _release(path, fd)


def _take(path: Path) -> int | None:
    """The lock file ``path`` held (an fd), created when missing; None when another process holds it.

    Whoever holds a lock file removes it before letting go (:func:`_release`), so the folder keeps
    no lock of a run that ended; a lock got on a file removed meanwhile is no lock, and is taken
    again on the file now at ``path``.
    """
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        if _is_at(fd, path):
            return fd
        os.close(fd)


def _is_at(fd: int, path: Path) -> bool:
    """Whether the file open as ``fd`` is the one at ``path``."""
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path, follow_symlinks=False))
    except FileNotFoundError:
        return False


def _release(path: Path, fd: int) -> None:
    path.unlink(missing_ok=True)  # still held: no one else has this file
    os.close(fd)


def _start(path: Path, name: str, framework: str, frameworks: tuple[str, ...],
           env: dict[str, str]) -> warm.Connection:
    """Start the worker of ``name`` and connect to it once it listens.

    The process started here forks the worker and exits at once (:func:`_detach`); it is reaped
    here, so the worker is no child of this run: a long-lived run (the language server) keeps
    no zombie of a worker that exited, and no wait for another child of it can reap the worker.
    """
    path.unlink(missing_ok=True)  # a dead worker's socket (the lock is ours, the folder private)
    ready, ready_end = os.pipe()
    try:
        with child_slot():  # the framework import is the expensive part of a cold child
            try:
                proc = subprocess.Popen(
                    command("rfa_lint.sandbox.worker", "serve", str(ready_end), str(path), name, framework,
                            ",".join(frameworks)),
                    pass_fds=[ready_end], cwd=START_FOLDER, env=env, stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                )
            finally:
                os.close(ready_end)
            started = select.select([ready], [], [], warm.START_SECONDS)[0] and os.read(ready, 1)
    finally:
        os.close(ready)
    connection = None
    try:
        connection = _reach(path, name) if started else None
    finally:
        if connection is None:  # its session's group: the worker's pid is not known here
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # not reused: its first process is not reaped yet
        _reap(proc)
    if connection is None:
        raise warm.ServerLost(f"the {framework} worker did not start")
    return connection


def _reap(proc: subprocess.Popen) -> None:
    """Reap the process that forked the worker (it exits at once; one that does not is killed)."""
    try:
        proc.wait(warm.ANSWER_SECONDS)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# --- the worker process -------------------------------------------------------------------------

def _detach() -> None:
    """Fork the worker and leave it: this first process exits at once, for the run that started
    it to reap (see :func:`_start`).  The worker stays in the session started for it, whose
    leader it is not, so it never gets a controlling terminal."""
    if os.fork():
        os._exit(0)


def run_worker(ready: int, path: str, name: str, framework: str, frameworks: str) -> None:
    """Import the frameworks, listen at ``path``, tell the starter on ``ready``, serve."""
    become_subreaper()
    os.umask(0o077)
    child.warm_up(framework, frameworks.split(","))
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(path)
    listener.listen(64)
    inode = os.stat(path).st_ino
    os.write(ready, b"1")
    os.close(ready)
    server = Server(wakeup_pipe(), listener)  # held to the end: its clients see it close at exit
    try:
        serve(server, IDLE_SECONDS, hello={"key": name, "pid": os.getpid(), **_about()})
    finally:
        with contextlib.suppress(OSError):
            if os.stat(path).st_ino == inode:  # still ours, not a successor's
                os.unlink(path)
        os._exit(0)  # at once: a framework's interpreter teardown takes seconds


def _about() -> dict:
    """What ``status`` shows of this worker: its environment (Python, ``sys.prefix``), rfa-lint's
    version, and the version of each framework it has loaded or could load."""
    installed = metadata.packages_distributions()
    frameworks = {}
    for name in FRAMEWORK_MODULES:
        module = sys.modules.get(name)
        if module is not None:
            frameworks[name] = f"{getattr(module, '__version__', '?')} loaded"
        elif installed.get(name):
            frameworks[name] = metadata.version(installed[name][0])
    return {"python": sys.executable, "prefix": sys.prefix, "version": rfa_lint.__version__,
            "frameworks": frameworks}


# --- seeing and stopping them -------------------------------------------------------------------

def workers(base: Path | None = None) -> Iterator[tuple[Path, socket.socket, dict]]:
    """(socket path, open connection, hello) of each worker of this user that answers; what dead
    ones left is removed first (:func:`sweep`)."""
    try:
        base = base or folder()
    except warm.ServerLost:
        return
    sweep(base)
    for path in sorted(base.glob("*.sock")):
        try:
            sock = _open(path)
        except warm.ServerLost:
            continue
        if sock is None:
            continue
        with sock:
            try:
                hello = json.loads(sock.recv(MESSAGE_BYTES))
            except (OSError, ValueError):
                continue
            if isinstance(hello, dict):
                yield path, sock, hello


def sweep(base: Path) -> None:
    """Remove what dead workers left in ``base``: a socket nothing listens on (a worker killed
    with SIGKILL cannot remove its own), and a start lock no run holds (a run killed while it
    started a worker).  Never fails: what cannot be removed stays."""
    for path in base.glob("*.sock"):
        with contextlib.suppress(OSError):
            _remove_if_dead(path)
    for lock in base.glob("*.lock"):
        with contextlib.suppress(OSError):
            if (fd := _take(lock)) is not None:
                _release(lock, fd)


def _remove_if_dead(path: Path) -> None:
    """Remove the socket ``path`` (and its lock) when nothing listens there and no run holds its
    lock: a run that does is starting its worker, which binds the socket before it listens."""
    if _listening(path) is not False:
        return
    lock = path.with_suffix(".lock")
    fd = _take(lock)
    if fd is None:
        return
    try:
        if _listening(path) is False:  # still: no worker started before the lock was ours
            path.unlink(missing_ok=True)
    finally:
        _release(lock, fd)


def _listening(path: Path) -> bool | None:
    """Whether a process listens at the socket ``path``; None when it is no socket of this user's."""
    try:
        sock = _open(path)
    except warm.ServerLost:
        return None
    if sock is None:
        return False
    sock.close()
    return True


def status(base: Path | None = None) -> list[dict]:
    """Each worker's socket, pid, key, environment (``python``, ``prefix``, ``mine``: this one's),
    rfa-lint ``version``, ``frameworks``, other clients, files running and seconds ``idle``."""
    found = []
    for path, sock, hello in workers(base):
        with contextlib.suppress(OSError, ValueError):
            sock.send(json.dumps({"op": "status"}).encode())
            answer = json.loads(sock.recv(MESSAGE_BYTES))
            about = {k: hello.get(k) for k in ("key", "python", "prefix", "version", "frameworks")}
            found.append({"socket": str(path), **about, "mine": _mine(hello), **answer})
    return found


def _mine(hello: dict) -> bool:
    """Whether a worker serves this Python environment (one that predates these fields does not)."""
    return hello.get("prefix") == sys.prefix


def stop(base: Path | None = None, every: bool = False) -> list[int]:
    """Stop the workers of this Python environment (``every``: of every one) of this user (in
    ``base``): ask, then kill what did not go.  Their pids."""
    stopped = []
    for path, sock, hello in workers(base):
        if not (every or _mine(hello)):
            continue
        pid = peer_credentials(sock)[0]
        with contextlib.suppress(OSError):
            sock.send(json.dumps({"op": "stop"}).encode())
            sock.recv(MESSAGE_BYTES)  # empty once it killed its tree and exits
        if not _ended(pid):
            kill_tree(pid)
            if _ended(pid):
                with contextlib.suppress(OSError):
                    _remove_if_dead(path)  # a killed worker leaves its socket
        stopped.append(pid)
    return stopped


def _ended(pid: int) -> bool:
    """Whether the worker ``pid`` is gone within ``warm.ANSWER_SECONDS``."""
    deadline = time.monotonic() + warm.ANSWER_SECONDS
    while _is_worker(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    return not _is_worker(pid)


def main(argv: list[str]) -> int:
    if argv[:1] == ["serve"] and len(argv) == 6:
        _detach()
        run_worker(int(argv[1]), *argv[2:])
    if argv == ["status"]:
        found = status()
        for worker in found:
            print(_shown(worker))
        if not found:
            print(f"no worker runs (looked in {folder_path()})")
        return 0
    if argv in (["stop"], ["stop", "--all"]):
        for pid in stop(every=argv == ["stop", "--all"]):
            print(f"stopped worker {pid}")
        others = [w for w in status() if not w["mine"]]
        if argv == ["stop"] and others:
            print(f"{len(others)} worker(s) of other Python environments left running "
                  "(stop --all stops them)")
        return 0
    print("usage: python -m rfa_lint.sandbox.worker status | stop [--all]", file=sys.stderr)
    return 2


def _shown(worker: dict) -> str:
    """Two lines of ``status``: the worker and what it runs, then its environment."""
    frameworks = ", ".join(f"{name} {version}" for name, version in (worker.get("frameworks") or {}).items())
    whose = "this environment" if worker["mine"] else "another environment"
    idle = f"idle {worker['idle']:.0f}s" if isinstance(worker.get("idle"), (int, float)) else "idle ?"
    return (f"{worker['socket']}  pid {worker['pid']}  {worker['clients'] - 1} other clients  "
            f"{worker['running']} files running  {idle}\n"
            f"    {whose}: {worker.get('python') or '?'}  rfa-lint {worker.get('version') or '?'}  "
            f"{frameworks or 'no framework'}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
