"""The linter's side of the fork servers (:mod:`rfa_lint.sandbox.server`).

Every file runs in a child forked by a server, never in a child of the linter itself: a file
that signals its parent must not reach the linter.  The server is the user's persistent worker
(:mod:`.worker`) when the run may use one and one can serve; else this process's own: one warm
server per set of frameworks starts on the first file that needs it and lives as long as the
linter process; when it cannot start (its framework import crashes or hangs), one cold server,
which imports nothing and leaves the imports to each child, serves instead.  A server that dies
or stops answering is killed with its whole tree, the files it was running get
:class:`ServerLost`, and the next file starts a new one.  No wait here is without a time limit.
"""

from __future__ import annotations

import atexit
import itertools
import json
import logging
import os
import socket
import subprocess
import threading
from typing import BinaryIO, Callable, Iterable

from rfa_lint.sandbox.server import MESSAGE_BYTES, START_FOLDER, command, kill_tree
from rfa_lint.sandbox.slots import child_slot

log = logging.getLogger(__name__)

#: How long a server may take to import its framework.  Not the per-model limit: that one is for
#: user code, and a short one (``--timeout 2``) would otherwise leave a whole run without servers.
START_SECONDS = 300
#: How long a server may take to answer a kill: past it, it is frozen (or worse) and replaced.
ANSWER_SECONDS = 10


class ServerLost(RuntimeError):
    """The fork server could not start, died, or stopped answering."""


class Superseded(RuntimeError):
    """The worker ended a request because a newer text of the same file came (:mod:`.worker`)."""


class Child:
    """The processes of one file, as seen from the linter: its output pipes, and how it ended."""

    def __init__(self, server: Connection, request_id: int,
                 pipes: tuple[BinaryIO, BinaryIO, BinaryIO]) -> None:
        self.server, self.id = server, request_id
        self.returncode: int | None = None
        self.detail = ""  # set when something else than the child's own exit ended it
        self.superseded = False
        self.lost: str | None = None
        self.started, self.ended = threading.Event(), threading.Event()
        self.stdout, self.stderr, self.results = pipes

    def finished(self, timeout: float = 0.0) -> bool:
        """Whether the file's processes all ended within ``timeout`` seconds."""
        ended = self.ended.wait(timeout)
        if self.lost:
            raise ServerLost(self.lost)
        return ended

    def kill(self) -> None:
        """Kill the file's processes; returns once the server reports them gone, or raises
        :class:`ServerLost` when it does not answer in time (it is replaced then)."""
        if not self.ended.is_set():
            self.server.send({"op": "kill", "id": self.id})
        if not self.finished(ANSWER_SECONDS):
            self.server.abandon(f"the fork server did not answer within {ANSWER_SECONDS}s (frozen?)")
            self.finished()


class Connection:
    """A socket to a fork server whose process is ``pid``, and the requests running on it.

    The server is this process's own (:class:`ForkServer`) or the user's persistent worker
    (:mod:`.worker`); either way a server that does not answer in time is killed with its
    whole tree.
    """

    def __init__(self, sock: socket.socket, pid: int) -> None:
        self.sock, self.pid, self.ids = sock, pid, itertools.count()
        self.pending: dict[int, Child] = {}
        self.lost: str | None = None
        self.lock = threading.Lock()
        sock.settimeout(None)
        threading.Thread(target=self._read_replies, daemon=True).start()

    def start(self, work: str, request: int, **extra: object) -> Child:
        """Run one file's request (an fd to read it from) in ``work``, with the server's optional
        ``extra`` keys (:class:`rfa_lint.sandbox.server.Server`); its stdout, stderr and results
        come back as pipes.  A server that does not answer in time is replaced, and
        :class:`ServerLost` raised."""
        ends = [os.pipe() for _ in range(3)]
        stdout, stderr, results = (os.fdopen(read, "rb") for read, _ in ends)
        child = Child(self, next(self.ids), (stdout, stderr, results))
        with self.lock:
            self.pending[child.id] = child
        try:
            self.send({"op": "run", "id": child.id, "work": work, **extra},
                      fds=[request, *(write for _, write in ends)])
        finally:
            for _, write in ends:
                os.close(write)
        if not child.started.wait(ANSWER_SECONDS):
            self.abandon(f"the fork server did not answer within {ANSWER_SECONDS}s (frozen?)")
        child.finished()  # raises when lost
        return child

    def send(self, message: dict, fds: Iterable[int] = ()) -> None:
        try:
            socket.send_fds(self.sock, [json.dumps(message).encode()], list(fds))
        except OSError:
            self._lose_all("the fork server died")

    def _read_replies(self) -> None:
        while True:
            try:
                data = self.sock.recv(MESSAGE_BYTES)
            except OSError:
                data = b""
            if not data:
                self._lose_all("the fork server died")
                return
            reply = json.loads(data)
            if "pid" in reply:
                with self.lock:
                    child = self.pending.get(reply["id"])
                if child is not None:
                    child.started.set()
            elif "exit" in reply:
                with self.lock:
                    child = self.pending.pop(reply["id"], None)
                if child is not None:  # the first report wins: the keeper's, or the server's
                    child.returncode, child.detail = reply["exit"], reply["detail"]
                    child.superseded = reply.get("superseded") is True
                    child.ended.set()

    def abandon(self, why: str) -> None:
        """Kill the server with its whole tree, and fail what it was running with ``why``."""
        kill_tree(self.pid)
        self.sock.close()
        self._lose_all(why)

    def _lose_all(self, why: str) -> None:
        with self.lock:
            self.lost = self.lost or why
            lost, self.pending = list(self.pending.values()), {}
        for child in lost:
            child.lost = self.lost
            child.started.set()
            child.ended.set()

    def close(self) -> None:
        """Closing the socket tells the server to kill what is left of this process's requests
        (and this process's own server to exit)."""
        self.sock.close()


class ForkServer(Connection):
    """This process's own server process; ``frameworks`` empty for a cold server."""

    def __init__(self, framework: str, frameworks: tuple[str, ...], env: dict[str, str]) -> None:
        self._ending = threading.Lock()
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with child_slot():  # the framework import is the expensive part of a cold child
            self.proc = subprocess.Popen(
                command("rfa_lint.sandbox.server", str(theirs.fileno()), framework, ",".join(frameworks)),
                pass_fds=[theirs.fileno()], cwd=START_FOLDER, env=env,
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
            kill_tree(self.proc.pid)
            self._wait()
            mine.close()
            raise ServerLost(f"the {framework} fork server did not start")
        super().__init__(mine, self.proc.pid)

    def _lose_all(self, why: str) -> None:
        """Also end and reap the server (it may live on when only its socket broke): a long-lived
        run (the language server with the worker off) keeps no zombie of it."""
        super()._lose_all(why)
        with self._ending:  # the reader thread and the caller may both get here
            if self.proc.returncode is None:  # not reaped, so the pid is still this server's
                kill_tree(self.proc.pid)
                self._wait()

    def _wait(self) -> None:
        try:
            self.proc.wait(ANSWER_SECONDS)
        except subprocess.TimeoutExpired:
            pass


COLD = ("", ())  # the key of the server that imports nothing
WORKER = "worker"  # the first part of the key of a connection to the user's worker
#: How a registry reaches the user's worker for (framework, preloaded frameworks, environment):
#: :func:`rfa_lint.sandbox.worker.connect`, which builds on this module.
ConnectWorker = Callable[[str, tuple[str, ...], dict[str, str]], Connection]


class Servers:
    """A process's fork servers and worker connections, by key: made by the code that uses them
    (:mod:`rfa_lint.sandbox` makes the linter's one), so a test can make its own.

    ``by_key`` maps a key to its connection, or to None for a server (or worker) that failed to
    start, which is not retried.  On its first server, the registry has the process close them
    all at exit and a forked copy of the process (flake8's workers) forget them: never on import.
    """

    def __init__(self, connect_worker: ConnectWorker) -> None:
        self.connect_worker = connect_worker
        self.by_key: dict[tuple, Connection | None] = {}
        self.lock = threading.Lock()
        self.hooked = False

    def server_for(self, framework: str, frameworks: Iterable[str], env: dict[str, str], shared: bool = False
                   ) -> Connection:
        """The server for the frameworks a file's models may use; with ``shared``, the connection
        to the user's persistent worker for them (:mod:`.worker`).

        A server preloads all of them (torch first: tensorflow first could crash a later torch
        import), so a file with torch and keras models runs in one warm child; the servers are
        keyed by that set.  A server (or worker) that failed to start is not retried: its files
        go to the cold server (this process's own servers).  One that died is replaced.  Raises
        :class:`ServerLost` when none can serve.
        """
        preloaded = tuple(sorted({framework} | set(frameworks)))
        with self.lock:
            if shared:
                server = self._running((WORKER, framework, preloaded), env)
            else:
                server = self._running((framework, preloaded), env) or self._running(COLD, env)
        if server is None:
            raise ServerLost("no worker could serve" if shared else "no fork server could start")
        return server

    def _running(self, key: tuple, env: dict[str, str]) -> Connection | None:
        """The server of ``key``: started when there is none or it was lost; None when it fails."""
        current = self.by_key.get(key)
        if key not in self.by_key or (current is not None and current.lost):
            if not self.hooked:
                atexit.register(self.close_all)
                os.register_at_fork(after_in_child=self._forget_after_fork)
                self.hooked = True
            if current is not None:
                log.info("server %s was lost (%s): starting a new one", key, current.lost)
            try:
                self.by_key[key] = self.connect_worker(key[1], key[2], env) if key[0] == WORKER else \
                    ForkServer(key[0], key[1], env)
            except ServerLost as exc:
                log.info("server %s could not start (%s): not tried again in this process", key, exc)
                self.by_key[key] = None
        return self.by_key[key]

    def close_all(self) -> None:
        """Close every connection (each server then ends what it runs for this process)."""
        with self.lock:
            servers = [s for s in self.by_key.values() if s is not None]
            self.by_key.clear()
        for server in servers:
            server.close()

    def _forget_after_fork(self) -> None:
        """A forked linter process starts its own servers; the parent's are not its."""
        for server in self.by_key.values():
            if server is not None:
                server.sock.close()
        self.by_key.clear()
        self.lock = threading.Lock()  # a copy of a lock another thread held stays held
