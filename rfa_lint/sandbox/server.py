"""A fork server: ``python -m rfa_lint.sandbox.server FD FRAMEWORK FRAMEWORKS``.

Imports the frameworks once (none for a cold server: ``FRAMEWORKS`` empty), then runs each file
in a process tree of its own, forked from this warm interpreter before any user code ran::

    linter ── server ── keeper (one per file) ── child (user code) ── whatever it starts
                                             └── init of the child's PID namespace (isolated)

The keeper is the child's parent: a file that signals it (``os.kill(os.getppid(), ...)``) stops
or kills its own keeper, never the server or the linter; in a PID namespace of its own
(:mod:`.isolation`) the child sees no parent at all.  The
server and every keeper are *subreapers* (``PR_SET_CHILD_SUBREAPER``): a process user code starts
stays in the tree whatever it does (a new session or process group, a double fork), so killing
the tree kills everything the file started.  The keeper does so as soon as its child ends, before
it reports; the server does so on a kill request, when a keeper stops, and when a keeper dies
(its orphans are the server's then).  A keeper also ends its tree when the server is gone.

Messages in: ``{"op": "run", "id", "work"}`` with four fds attached (``SCM_RIGHTS``): a file
holding the request, and the child's stdout, stderr and result pipe ends (optional keys in
:class:`Server`); ``{"op": "kill", "id"}``; ``{"op": "status"}``; ``{"op": "stop"}``.  Messages
out: ``{"ready": true}`` once warm; ``{"id", "pid"}`` when a keeper started; ``{"id", "exit",
"detail"}`` once the file's processes are all dead (``exit`` as
:attr:`subprocess.Popen.returncode`), from the keeper, or from the server when the keeper itself
stopped or died (the linter takes the first; ``"superseded": true`` when a newer request for the
file ended it).  The server exits, killing its whole tree, when the linter closes its end of the
socket.  The same server also serves many linters at once over a listening socket, as a
persistent worker (:mod:`.worker`): then a client's requests, and their ends, are its own.
"""

from __future__ import annotations

import ctypes
import json
import os
import select
import signal
import socket
import struct
import sys
import tempfile
import time
import traceback
from typing import NoReturn

from rfa_lint.sandbox import child, isolation

MESSAGE_BYTES = 65536
PR_SET_CHILD_SUBREAPER = 36
POLL_SECONDS = 0.05  # how often a keeper checks that its server still lives
REAP_SECONDS = 5.0  # how long a keeper waits for killed processes to be gone before it reports
#: Where frameworks and model hubs keep downloads, pointed into the child's work folder: the only
#: folder it may write, so a download gets as far as its connection, which the sandbox refuses
CACHE_HOMES = ("TORCH_HOME", "HF_HOME", "XDG_CACHE_HOME")


def command(module: str, *args: str) -> list[str]:
    """How a server process starts: ``-P`` keeps its working folder off ``sys.path`` (``python
    -m`` puts it first, and a module planted there, a ``json.py``, would run as the user).  Not
    ``-I``: it would drop the ``PYTHONPATH`` and user site-packages where the user's models and
    frameworks may be.  It starts in :data:`START_FOLDER`, so relative entries of ``PYTHONPATH``
    point nowhere another user can write either."""
    return [sys.executable, "-P", "-m", module, *args]


#: where servers start: a folder no other user may write (the shared temporary folder was one)
START_FOLDER = "/"


def send(sock: socket.socket, **message: object) -> None:
    sock.send(json.dumps(message).encode())


def become_subreaper() -> None:
    """Orphans of this process's descendants become its children, not init's (Linux only;
    elsewhere a daemon that double-forks escapes)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _children() -> dict[int, list[int]]:
    """Parent pid -> child pids, of every process /proc shows."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as stat:
                ppid = int(stat.read().rpartition(b")")[2].split()[1])
        except (OSError, IndexError, ValueError):  # gone meanwhile
            continue
        children.setdefault(ppid, []).append(int(name))
    return children


def descendants(root: int) -> list[int]:
    tree = _children()
    found, index = list(tree.get(root, [])), 0
    while index < len(found):
        found += tree.get(found[index], [])
        index += 1
    return found


def _children_of(root: int) -> list[int]:
    return _children().get(root, [])


def kill_tree(root: int, with_root: bool = True) -> None:
    """SIGKILL every descendant of ``root`` (and ``root`` itself ``with_root``).

    All are stopped first, round after round until a round finds no new one: a stopped process
    can neither fork nor exit, so nothing slips past the walk (an orphan of a process that
    exited meanwhile goes to the nearest subreaper, still in the tree).  Then all are killed.
    """
    stopped = set()
    if with_root:
        _signal(root, signal.SIGSTOP)
    while new := [pid for pid in descendants(root) if pid not in stopped]:
        for pid in new:
            _signal(pid, signal.SIGSTOP)
        stopped.update(new)
    for pid in [*stopped, *([root] if with_root else [])]:
        _signal(pid, signal.SIGKILL)


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def ending(info: os.waitid_result) -> tuple[int, str]:
    """(returncode, what stopped it) of a waitid result; stopped counts as killed by the signal."""
    if info.si_code == os.CLD_EXITED:
        return info.si_status, ""
    if info.si_code == os.CLD_STOPPED:
        return -info.si_status, f"stopped by {_name(info.si_status)}"
    return -info.si_status, ""


def _cause(info: os.waitid_result) -> str:
    if info.si_code == os.CLD_EXITED:
        return f"ended with code {info.si_status}"
    return f"killed by {_name(info.si_status)}"


def _name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:  # real-time signals have no name
        return f"signal {signum}"


def keep(sock: socket.socket, message: dict, fds: list[int], server: int) -> NoReturn:
    """The keeper of one file: fork its child, wait for it, kill all it left, report how it ended.

    With ``"isolate"`` it first enters new namespaces and starts their init
    (:func:`isolation.enter_namespaces`, :func:`isolation.start_init`), so its child runs in a
    PID namespace of its own, where its parent is out of sight; when the kernel refuses,
    nothing runs.
    """
    become_subreaper()
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})  # waited for with sigtimedwait
    isolate = message.get("isolate") is True
    if isolate:
        try:
            isolation.enter_namespaces()
            isolation.start_init()
        except OSError as exc:
            _report(sock, message, 1, f"the kernel refused its namespaces ({exc})")
    pid = os.fork()
    if pid == 0:
        run_child(sock, message, fds, isolate)
    for fd in fds:
        os.close(fd)
    returncode, detail = -signal.SIGKILL, "the fork server died"
    while os.getppid() == server:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WSTOPPED | os.WNOHANG)
        if info is not None:
            returncode, detail = ending(info)
            break
        signal.sigtimedwait({signal.SIGCHLD}, POLL_SECONDS)
    kill_tree(os.getpid(), with_root=False)  # the namespace's init too: the kernel ends the rest
    _reap_all()
    _report(sock, message, returncode, detail)


def _report(sock: socket.socket, message: dict, returncode: int, detail: str) -> NoReturn:
    """Tell the linter how the file's processes ended, and end the keeper."""
    try:
        send(sock, id=message["id"], exit=returncode, detail=detail)
    finally:
        os._exit(0)


def _reap_all() -> None:
    """Reap the killed (all but a process stuck in the kernel die at once; the server reaps what
    is left when this keeper is gone)."""
    deadline = time.monotonic() + REAP_SECONDS
    while time.monotonic() < deadline:
        try:
            if os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG) is None:
                time.sleep(0.001)
        except ChildProcessError:
            return


def run_child(sock: socket.socket, message: dict, fds: list[int], isolate: bool = False) -> NoReturn:
    """The file's child: own session, output to the linter's pipes, confined by the kernel when
    its keeper entered namespaces (:func:`isolation.confine`), its system calls filtered with
    ``"filter"`` (:func:`isolation.restrict_calls`), temporary files in its work
    folder, then execute the request."""
    try:
        os.setsid()  # away from the server's group: a file's killpg(0) hits its own
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        request, stdout, stderr, result = fds
        devnull = os.open(os.devnull, os.O_RDONLY)
        for target, source in enumerate((devnull, stdout, stderr)):
            os.dup2(source, target)
        for fd in (devnull, stdout, stderr, sock.fileno()):  # user code sees none of the server's
            os.close(fd)
        work = message["work"]
        if isolate:
            isolation.confine(work, tuple(message.get("hide", ())))
        if message.get("filter") is True:
            isolation.restrict_calls()
        os.chdir(work)
        os.environ["TMPDIR"] = work  # the one folder it may write
        for cache in CACHE_HOMES:  # a download writes there before it connects: RFA914 names it
            os.environ[cache] = os.path.join(work, cache.lower())
        tempfile.tempdir = None  # found again from TMPDIR
        sys.path.insert(0, work)  # as for a Python started in its work folder (-P left it out)
        child.execute(request, result)
    except BaseException:
        traceback.print_exc()  # to the child's stderr, as an interpreter would
    finally:
        os._exit(1)


class Server:
    """The server's state: its clients (the linters connected), which keeper serves which request
    of which client, which keepers stopped, when each keeper's time is up, and which keeper runs
    each file (for :meth:`supersede`).

    A client's requests are ``{"op": "run", "id", "work"}`` with the four fds, optionally
    ``"seconds"`` (past them, and :data:`GRACE_SECONDS`, the keeper's tree is killed even when the
    client never asks: a linter stopped with SIGSTOP holds no file forever) and ``"file"`` with
    ``"text"`` (a digest): a run of the same file with another text supersedes this one.
    """

    def __init__(self, wakeup: tuple[int, int], listener: socket.socket | None = None) -> None:
        self.wakeup, self.listener = wakeup, listener
        self.clients: list[socket.socket] = []
        self.keepers: dict[int, tuple[socket.socket, int]] = {}  # pid -> (client, request id)
        self.stopped: dict[int, str] = {}  # keeper pid -> what stopped it
        self.deadlines: dict[int, float] = {}  # keeper pid -> when its tree is killed
        self.files: dict[str, tuple[int, str]] = {}  # file -> (keeper pid, text digest)
        self.worked_at = time.monotonic()  # when a file last started or ended (``status``'s idle)
        self.working: set[socket.socket] = set()  # clients that ran a file: they keep a worker up

    def run(self, client: socket.socket, message: dict, fds: list[int]) -> None:
        self.supersede(message)
        pid = os.fork()
        if pid == 0:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            for fd in self.wakeup:
                os.close(fd)
            for other in (self.listener, *self.clients):  # user code holds no other linter's socket
                if other is not None and other is not client:
                    other.close()
            keep(client, message, fds, os.getppid())
        self.keepers[pid] = (client, message["id"])
        self.working.add(client)
        self.worked_at = time.monotonic()
        if isinstance(message.get("seconds"), (int, float)):
            self.deadlines[pid] = time.monotonic() + message["seconds"] + GRACE_SECONDS
        if isinstance(message.get("file"), str):
            self.files[message["file"]] = (pid, str(message.get("text")))
        tell(client, id=message["id"], pid=pid)

    def supersede(self, message: dict) -> None:
        """A run of a file whose older text still runs ends the older one: its client is told
        first (``"superseded": true``, it runs the request again or drops it), then its tree
        is killed.  Editors send a request per keystroke; only the newest text matters."""
        running = self.files.get(message.get("file"))
        if running is None or running[1] == str(message.get("text")) or running[0] not in self.keepers:
            return
        client, request_id = self.keepers.pop(running[0])
        tell(client, id=request_id, exit=-signal.SIGKILL, detail="superseded by a newer text of the file",
             superseded=True)
        kill_tree(running[0])

    def kill(self, client: socket.socket, request_id: int | None = None) -> None:
        """Kill the trees of a client's request (all its requests when ``request_id`` is None)."""
        for pid, (owner, known) in list(self.keepers.items()):
            if owner is client and request_id in (None, known):
                kill_tree(pid)

    def expire(self) -> float | None:
        """Kill the trees whose time is up; the seconds until the next one's is (None: none)."""
        now = time.monotonic()
        for pid, deadline in list(self.deadlines.items()):
            if deadline <= now:
                del self.deadlines[pid]
                kill_tree(pid)
        return min(self.deadlines.values(), default=now) - now if self.deadlines else None

    def drop(self, client: socket.socket) -> None:
        """A client that closed its socket: everything it was running dies."""
        self.kill(client)
        self.clients.remove(client)
        self.working.discard(client)
        client.close()

    def reap(self) -> None:
        """Handle every child that ended or stopped: a keeper's end is reported, and what it left
        (its orphans, now the server's children) is killed."""
        while True:
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WSTOPPED | os.WNOHANG)
            except ChildProcessError:
                return
            if info is None:
                return
            if info.si_code == os.CLD_STOPPED:
                self.stopped[info.si_pid] = ending(info)[1]
                kill_tree(info.si_pid)
                continue
            client, request_id = self.keepers.pop(info.si_pid, (None, None))
            self.worked_at = time.monotonic()
            stopped = self.stopped.pop(info.si_pid, None)
            self.deadlines.pop(info.si_pid, None)
            self.files = {file: run for file, run in self.files.items() if run[0] != info.si_pid}
            if client is not None and (stopped or info.si_code != os.CLD_EXITED or info.si_status):
                tell(client, id=request_id, exit=-signal.SIGKILL,
                     detail=f"the process that started it was {stopped or _cause(info)}")
            for pid in _children_of(os.getpid()):
                if pid not in self.keepers:
                    kill_tree(pid)

    def receive(self, client: socket.socket) -> bool:
        """Handle one message of a client; False when it closed its socket."""
        try:
            data, fds, _, _ = socket.recv_fds(client, MESSAGE_BYTES, 4)
        except OSError:
            data, fds = b"", []
        try:
            if not data:
                return False
            message = json.loads(data)
            if message["op"] == "run" and len(fds) == 4:
                self.run(client, message, fds)
            elif message["op"] == "kill":
                self.kill(client, message["id"])
            elif message["op"] == "status":
                idle = 0.0 if self.keepers else time.monotonic() - self.worked_at
                tell(client, pid=os.getpid(), clients=len(self.clients), running=len(self.keepers), idle=idle)
            elif message["op"] == "stop":
                raise Stop
            return True
        except (ValueError, KeyError, TypeError):  # not a message a linter sends: drop the client
            return False
        finally:
            for fd in fds:
                os.close(fd)


class Stop(Exception):
    """A client asked the server to exit."""


#: How long past a request's own ``seconds`` its tree lives when its client does not kill it.
GRACE_SECONDS = 30.0


def tell(client: socket.socket, **message: object) -> None:
    """Send to a client that may be gone (its end is seen when its socket is next read)."""
    try:
        send(client, **message)
    except OSError:
        pass


def serve(server: Server, idle_seconds: float | None = None, hello: dict | None = None) -> None:
    """Serve the clients until the last one is gone (a fork server of one linter: it starts with
    its client, ``idle_seconds`` None), or until nothing ran for ``idle_seconds`` and no client
    that ran a file is connected (a worker listening for linters, :mod:`.worker`: a run that only
    checks it listens keeps it no longer), or a client asks it to stop; then kill the whole tree.

    ``hello`` is sent to every client first (:func:`send` of ``ready`` and whatever it holds).
    """
    signal.set_wakeup_fd(server.wakeup[1])
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so SIGCHLD reaches the wakeup fd
    for client in server.clients:
        tell(client, ready=True, **(hello or {}))
    idle_since = time.monotonic()
    try:
        while server.clients or idle_seconds is not None:
            waits = [server.expire()]
            if idle_seconds is not None:
                busy = server.working or server.keepers  # not a run's check that it listens
                idle_since = time.monotonic() if busy else idle_since
                waits.append(idle_since + idle_seconds - time.monotonic())
                if waits[-1] <= 0:
                    return
            wait = min((w for w in waits if w is not None), default=None)
            sources = [server.wakeup[0], *server.clients, *([server.listener] if server.listener else [])]
            readable, _, _ = select.select(sources, [], [], None if wait is None else max(wait, 0))
            if server.wakeup[0] in readable:
                while os.read(server.wakeup[0], 4096) == 4096:
                    pass
                server.reap()
            if server.listener in readable:
                _accept(server, hello)
            for client in [c for c in server.clients if c in readable]:
                if not server.receive(client):
                    server.drop(client)
    except Stop:
        return
    finally:
        kill_tree(os.getpid(), with_root=False)


def _accept(server: Server, hello: dict | None) -> None:
    """A new client, served only when it runs as this user (the socket's folder is private too)."""
    try:
        client, _ = server.listener.accept()
    except OSError:
        return
    if peer_uid(client) != os.getuid():
        client.close()
        return
    server.clients.append(client)
    tell(client, ready=True, **(hello or {}))


def peer_credentials(sock: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process at the other end of a Unix socket (Linux)."""
    return struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))


def peer_uid(sock: socket.socket) -> int | None:
    try:
        return peer_credentials(sock)[1]
    except (OSError, AttributeError):  # no SO_PEERCRED: not Linux
        return None


def wakeup_pipe() -> tuple[int, int]:
    wakeup = os.pipe()
    for fd in wakeup:
        os.set_blocking(fd, False)
    return wakeup


def main() -> None:
    fd, framework, frameworks = sys.argv[1:4]
    become_subreaper()
    sock = socket.socket(fileno=int(fd))
    if frameworks:  # a cold server leaves the imports to each child
        child.warm_up(framework, frameworks.split(","))
    server = Server(wakeup_pipe())
    server.clients.append(sock)
    serve(server)
    os._exit(0)  # at once: a framework's interpreter teardown takes seconds


if __name__ == "__main__":
    main()
