"""The linter's side of the fork servers (:mod:`rfa_lint.sandbox.server`): one per framework.

A server starts on the first file that needs its framework and lives as long as the linter
process; its children look to :func:`rfa_lint.sandbox._run_child` like plain children
(``stdout``, ``stderr``, ``finished``, ``kill_group``, ``returncode``).  When a server cannot
start or dies, :class:`ServerLost` tells the caller to use a plain child instead.
"""

from __future__ import annotations

import atexit
import itertools
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
from typing import Iterable

from rfa_lint.sandbox.slots import child_slot
from rfa_lint.sandbox.server import MESSAGE_BYTES, kill_group

#: How long a server may take to import its framework.  Not the per-file limit: that one is for
#: user code, and a short one (``--timeout 2``) would otherwise leave a whole run without servers.
START_SECONDS = 300


class ServerLost(RuntimeError):
    """The fork server could not start, or died; the file must run in a plain child."""


class WarmChild:
    """A child forked by a server, with the interface of a plain child the sandbox uses."""

    def __init__(self, server: "ForkServer", request_id: int) -> None:
        self.server, self.id = server, request_id
        self.returncode: int | None = None
        self.pid: int | None = None
        self.lost = False
        self.ended = threading.Event()
        self.stdout = self.stderr = None

    def finished(self, timeout: float | None = 0.0) -> bool:
        """Whether the child ended within ``timeout`` seconds (the server reaps it, not us)."""
        ended = self.ended.wait(timeout)
        if self.lost:
            raise ServerLost("the fork server died")
        return ended

    def kill_group(self) -> None:
        """Kill the child and everything it started; returns once the server has reaped it."""
        if not self.ended.is_set():
            self.server.send({"op": "kill", "id": self.id})
        self.finished(None)


class ForkServer:
    def __init__(self, framework: str, frameworks: tuple[str, ...], env: dict[str, str]) -> None:
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with child_slot():  # the framework import is the expensive part of a cold child
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "rfa_lint.sandbox.server", str(theirs.fileno()),
                 framework, ",".join(frameworks)],
                pass_fds=[theirs.fileno()], cwd=tempfile.gettempdir(), env=env,
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            theirs.close()
            mine.settimeout(START_SECONDS)
            try:
                ready = mine.recv(MESSAGE_BYTES)
            except OSError:
                ready = b""
        if not ready:
            mine.close()
            kill_group(self.proc.pid)
            self.proc.wait()
            raise ServerLost(f"the {framework} fork server did not start")
        mine.settimeout(None)
        self.sock, self.pending, self.ids = mine, {}, itertools.count()
        self.lost = False
        self.lock = threading.Lock()
        threading.Thread(target=self._read_replies, daemon=True).start()

    def start(self, work: str, request_path: str, result_path: str) -> WarmChild:
        """Fork a child for one request; its stdout and stderr come back as pipes."""
        child = WarmChild(self, next(self.ids))
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        child.stdout, child.stderr = os.fdopen(out_r, "rb"), os.fdopen(err_r, "rb")
        with self.lock:
            self.pending[child.id] = child
        try:
            self.send({"op": "run", "id": child.id, "work": work, "request": request_path,
                       "result": result_path}, fds=[out_w, err_w])
        finally:
            os.close(out_w)
            os.close(err_w)
        return child

    def send(self, message: dict, fds: list[int] = ()) -> None:
        try:
            socket.send_fds(self.sock, [json.dumps(message).encode()], list(fds))
        except OSError:
            self._lose_all()

    def _read_replies(self) -> None:
        while True:
            try:
                data = self.sock.recv(MESSAGE_BYTES)
            except OSError:
                data = b""
            if not data:
                self._lose_all()
                return
            reply = json.loads(data)
            if "pid" in reply:
                self.pending[reply["id"]].pid = reply["pid"]
            elif "exit" in reply:
                with self.lock:
                    child = self.pending.pop(reply["id"])
                child.returncode = reply["exit"]
                child.ended.set()

    def _lose_all(self) -> None:
        self.lost = True
        with self.lock:
            lost, self.pending = list(self.pending.values()), {}
        for child in lost:
            if child.pid is not None:  # an orphan now: nobody else would stop it
                kill_group(child.pid)
            child.lost = True
            child.ended.set()

    def close(self) -> None:
        """Closing the socket tells the server to kill what is left and exit."""
        self.sock.close()


_SERVERS: dict[tuple, ForkServer | None] = {}
_SERVERS_LOCK = threading.Lock()


def server_for(framework: str, frameworks: Iterable[str], env: dict[str, str]) -> ForkServer:
    """This process's server for the frameworks a file's models may use.

    A server preloads all of them (torch first: tensorflow first could crash a later torch
    import), so a file with torch and keras models runs in one warm child; the servers are keyed
    by that set.  A server that failed to start is not retried: the run goes on with plain
    children; one that died is replaced.
    """
    preloaded = tuple(sorted({framework} | set(frameworks)))
    key = (framework, preloaded)
    with _SERVERS_LOCK:
        if key not in _SERVERS or (_SERVERS[key] is not None and _SERVERS[key].lost):
            try:
                _SERVERS[key] = ForkServer(framework, preloaded, env)
            except ServerLost:
                _SERVERS[key] = None
        server = _SERVERS[key]
    if server is None:
        raise ServerLost(f"no {framework} fork server")
    return server


@atexit.register
def close_all() -> None:
    with _SERVERS_LOCK:
        servers = [s for s in _SERVERS.values() if s is not None]
        _SERVERS.clear()
    for server in servers:
        server.close()


def _forget_after_fork() -> None:
    """A forked linter process (flake8's workers) starts its own servers; the parent's are not its."""
    for server in _SERVERS.values():
        if server is not None:
            server.sock.close()
    _SERVERS.clear()


os.register_at_fork(after_in_child=_forget_after_fork)
