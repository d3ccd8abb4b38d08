"""A fork server: ``python -m rfa_lint.sandbox.server FD FRAMEWORK FRAMEWORKS``.

Imports the frameworks once (none for a cold server: ``FRAMEWORKS`` empty), then runs each file
in a process tree of its own, forked from this warm interpreter before any user code ran::

    linter ── server ── keeper (one per file) ── child (user code) ── whatever it starts

The keeper is the process user code sees as its parent: a file that signals it (``os.kill(
os.getppid(), ...)``) stops or kills its own keeper, never the server or the linter.  The
server and every keeper are *subreapers* (``PR_SET_CHILD_SUBREAPER``): a process user code starts
stays in the tree whatever it does (a new session or process group, a double fork), so killing
the tree kills everything the file started.  The keeper does so as soon as its child ends, before
it reports; the server does so on a kill request, when a keeper stops, and when a keeper dies
(its orphans are the server's then).  A keeper also ends its tree when the server is gone.

Messages in: ``{"op": "run", "id", "work"}`` with four fds attached (``SCM_RIGHTS``): a file
holding the request, and the child's stdout, stderr and result pipe ends; ``{"op": "kill", "id"}``.
Messages out: ``{"ready": true}`` once warm; ``{"id", "pid"}`` when a keeper started; ``{"id",
"exit", "detail"}`` once the file's processes are all dead (``exit`` as
:attr:`subprocess.Popen.returncode`), from the keeper, or from the server when the keeper itself
stopped or died (the linter takes the first).  The server exits, killing its whole tree, when
the linter closes its end of the socket.
"""

from __future__ import annotations

import ctypes
import json
import os
import select
import signal
import socket
import sys
import time
import traceback
from typing import NoReturn

from rfa_lint.sandbox import child

MESSAGE_BYTES = 65536
PR_SET_CHILD_SUBREAPER = 36
POLL_SECONDS = 0.05  # how often a keeper checks that its server still lives
REAP_SECONDS = 5.0  # how long a keeper waits for killed processes to be gone before it reports


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
    """The keeper of one file: fork its child, wait for it, kill all it left, report how it ended."""
    become_subreaper()
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})  # waited for with sigtimedwait
    pid = os.fork()
    if pid == 0:
        run_child(sock, message, fds)
    for fd in fds:
        os.close(fd)
    returncode, detail = -signal.SIGKILL, "the fork server died"
    while os.getppid() == server:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WSTOPPED | os.WNOHANG)
        if info is not None:
            returncode, detail = ending(info)
            break
        signal.sigtimedwait({signal.SIGCHLD}, POLL_SECONDS)
    kill_tree(os.getpid(), with_root=False)
    _reap_all()
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


def run_child(sock: socket.socket, message: dict, fds: list[int]) -> NoReturn:
    """The file's child: own session, output to the linter's pipes, then execute the request."""
    try:
        os.setsid()  # away from the server's group: a file's killpg(0) hits its own
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        request, stdout, stderr, result = fds
        devnull = os.open(os.devnull, os.O_RDONLY)
        for target, source in enumerate((devnull, stdout, stderr)):
            os.dup2(source, target)
        for fd in (devnull, stdout, stderr, sock.fileno()):  # user code sees none of the server's
            os.close(fd)
        os.chdir(message["work"])
        sys.path[0] = message["work"]  # as for a Python started in its work folder
        child.execute(request, result)
    except BaseException:
        traceback.print_exc()  # to the child's stderr, as an interpreter would
    finally:
        os._exit(1)


class Server:
    """The server's state: which keeper serves which request, and which keepers stopped."""

    def __init__(self, sock: socket.socket, wakeup: tuple[int, int]) -> None:
        self.sock, self.wakeup = sock, wakeup
        self.keepers: dict[int, int] = {}  # pid -> request id
        self.stopped: dict[int, str] = {}  # keeper pid -> what stopped it

    def run(self, message: dict, fds: list[int]) -> None:
        pid = os.fork()
        if pid == 0:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            for fd in self.wakeup:
                os.close(fd)
            keep(self.sock, message, fds, os.getppid())
        self.keepers[pid] = message["id"]
        send(self.sock, id=message["id"], pid=pid)

    def kill(self, request_id: int) -> None:
        for pid in [p for p, known in self.keepers.items() if known == request_id]:
            kill_tree(pid)

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
            request_id = self.keepers.pop(info.si_pid, None)
            stopped = self.stopped.pop(info.si_pid, None)
            if request_id is not None and (stopped or info.si_code != os.CLD_EXITED or info.si_status):
                send(self.sock, id=request_id, exit=-signal.SIGKILL,
                     detail=f"the process that started it was {stopped or _cause(info)}")
            for pid in _children_of(os.getpid()):
                if pid not in self.keepers:
                    kill_tree(pid)


def serve(sock: socket.socket) -> None:
    wakeup = os.pipe()
    for fd in wakeup:
        os.set_blocking(fd, False)
    signal.set_wakeup_fd(wakeup[1])
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so SIGCHLD reaches the wakeup fd
    server = Server(sock, wakeup)
    send(sock, ready=True)
    try:
        while True:
            readable, _, _ = select.select([sock, wakeup[0]], [], [])
            if wakeup[0] in readable:
                while os.read(wakeup[0], 4096) == 4096:
                    pass
                server.reap()
            if sock in readable:
                data, fds, _, _ = socket.recv_fds(sock, MESSAGE_BYTES, 4)
                if not data:
                    return
                message = json.loads(data)
                if message["op"] == "run":
                    server.run(message, fds)
                elif message["op"] == "kill":
                    server.kill(message["id"])
                for fd in fds:
                    os.close(fd)
    finally:
        kill_tree(os.getpid(), with_root=False)


def main() -> None:
    fd, framework, frameworks = sys.argv[1:4]
    become_subreaper()
    sock = socket.socket(fileno=int(fd))
    if frameworks:  # a cold server leaves the imports to each child
        child.warm_up(framework, frameworks.split(","))
    serve(sock)
    os._exit(0)  # at once: a framework's interpreter teardown takes seconds


if __name__ == "__main__":
    main()
