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
serve ...``, a session of its own), under a lock, so concurrent runs start one, not several.  It
exits after :data:`IDLE_SECONDS` with no client and nothing running, removing its socket.
``python -m rfa_lint.sandbox.worker status`` lists the workers of this user, ``... stop`` stops
them (as does ``pkill -f rfa_lint.sandbox.worker``).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import select
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

from rfa_lint.sandbox import child, warm
from rfa_lint.sandbox.server import (MESSAGE_BYTES, Server, become_subreaper, kill_tree, peer_credentials,
                                     serve, wakeup_pipe)
from rfa_lint.sandbox.slots import child_slot

FOLDER_VARIABLE = "RFA_LINT_WORKER_DIR"
IDLE_SECONDS = 300.0
SOCKET_PATH_BYTES = 107  # what a Unix socket's address holds


def folder() -> Path:
    """The folder of this user's workers; :class:`warm.ServerLost` when it is not private."""
    base = os.environ.get(FOLDER_VARIABLE) or os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    path = Path(base, f"rfa-lint-worker-{os.getuid()}")
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

    material = {"environment": environment(), "executable": sys.executable, "prefix": sys.prefix,
                "frameworks": frameworks, "env": env}
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
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        deadline = time.monotonic() + warm.START_SECONDS
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise warm.ServerLost("another run has been starting the worker for too long") from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)


def _start(path: Path, name: str, framework: str, frameworks: tuple[str, ...],
           env: dict[str, str]) -> warm.Connection:
    """Start the worker of ``name`` and connect to it once it listens."""
    path.unlink(missing_ok=True)  # a dead worker's socket (the lock is ours, the folder private)
    ready, ready_end = os.pipe()
    try:
        with child_slot():  # the framework import is the expensive part of a cold child
            try:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "rfa_lint.sandbox.worker", "serve", str(ready_end), str(path),
                     name, framework, ",".join(frameworks)],
                    pass_fds=[ready_end], cwd=tempfile.gettempdir(), env=env, stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                )
            finally:
                os.close(ready_end)
            started = select.select([ready], [], [], warm.START_SECONDS)[0] and os.read(ready, 1)
    finally:
        os.close(ready)
    connection = _reach(path, name) if started else None
    if connection is None:
        kill_tree(proc.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(warm.ANSWER_SECONDS)
        raise warm.ServerLost(f"the {framework} worker did not start")
    return connection


# --- the worker process -------------------------------------------------------------------------

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
        serve(server, IDLE_SECONDS, hello={"key": name, "pid": os.getpid()})
    finally:
        with contextlib.suppress(OSError):
            if os.stat(path).st_ino == inode:  # still ours, not a successor's
                os.unlink(path)
        os._exit(0)  # at once: a framework's interpreter teardown takes seconds


# --- seeing and stopping them -------------------------------------------------------------------

def workers(base: Path | None = None) -> Iterator[tuple[Path, socket.socket, dict]]:
    """(socket path, open connection, hello) of each worker of this user that answers."""
    try:
        base = base or folder()
    except warm.ServerLost:
        return
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


def status(base: Path | None = None) -> list[dict]:
    """Each worker's socket, pid, key, other clients and files running."""
    found = []
    for path, sock, hello in workers(base):
        with contextlib.suppress(OSError, ValueError):
            sock.send(json.dumps({"op": "status"}).encode())
            answer = json.loads(sock.recv(MESSAGE_BYTES))
            found.append({"socket": str(path), "key": hello.get("key"), **answer})
    return found


def stop(base: Path | None = None) -> list[int]:
    """Stop every worker of this user (in ``base``): ask, then kill what did not go.  Their pids."""
    stopped = []
    for _, sock, hello in workers(base):
        pid = peer_credentials(sock)[0]
        with contextlib.suppress(OSError):
            sock.send(json.dumps({"op": "stop"}).encode())
            sock.recv(MESSAGE_BYTES)  # empty once it killed its tree and exits
        deadline = time.monotonic() + warm.ANSWER_SECONDS
        while _is_worker(pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        if _is_worker(pid):
            kill_tree(pid)
        stopped.append(pid)
    return stopped


def main(argv: list[str]) -> int:
    if argv[:1] == ["serve"] and len(argv) == 6:
        run_worker(int(argv[1]), *argv[2:])
    if argv == ["status"]:
        for worker in status():
            print(f"{worker['socket']}  pid {worker['pid']}  {worker['clients'] - 1} other clients  "
                  f"{worker['running']} files running")
        return 0
    if argv == ["stop"]:
        for pid in stop():
            print(f"stopped worker {pid}")
        return 0
    print("usage: python -m rfa_lint.sandbox.worker status|stop", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
