"""A warm fork server: imports a framework once, then forks one fresh child per file.

Runs as ``python -m rfa_lint.sandbox.server FD FRAMEWORK FRAMEWORKS`` where FD is one end of a
``SOCK_SEQPACKET`` socket pair (one JSON message per packet).  Importing torch costs more than a
second and most files take a fraction of that to analyse, so paying it once per run instead of
once per file is most of a cold run's time.  Every child is a fork of this process taken before
any user code ran, so each file still gets a pristine interpreter of its own, with the same
limits as a plain child (see :func:`rfa_lint.sandbox.child.execute`).

Messages in: ``{"op": "run", "id", "request", "result", "work"}`` with the child's stdout and
stderr pipe ends attached (``SCM_RIGHTS``), and ``{"op": "kill", "id"}``.  Messages out:
``{"ready": true}`` once warm, ``{"id", "pid"}`` when a child started, ``{"id", "exit"}`` when it
ended (``exit`` as :attr:`subprocess.Popen.returncode`).  The server itself never runs user
code, and it does all process control: it alone reaps its children, so it can kill a child's
process group while the child is still unreaped (alive or a zombie), never a recycled pid.  It
exits, killing what is left, when the linter closes its end of the socket.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import sys
import traceback

from rfa_lint.sandbox import child

MESSAGE_BYTES = 65536


def send(sock: socket.socket, **message: object) -> None:
    sock.send(json.dumps(message).encode())


def fork_child(sock: socket.socket, message: dict, fds: list[int], wakeup: tuple[int, int]) -> int:
    """Fork the child of one file: own session, output to the linter's pipes, then execute."""
    pid = os.fork()
    if pid:
        return pid
    try:
        os.setsid()  # its own process group: a timeout kills it with whatever it started
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.set_wakeup_fd(-1)
        devnull = os.open(os.devnull, os.O_RDONLY)
        for target, source in enumerate((devnull, *fds)):
            os.dup2(source, target)
        for fd in (devnull, *fds, *wakeup, sock.fileno()):  # user code sees none of the server's
            os.close(fd)
        os.chdir(message["work"])
        sys.path[0] = message["work"]  # as for a plain child started in its work folder
        child.execute(message["request"], message["result"])
    except BaseException:
        traceback.print_exc()  # to the child's stderr, as a plain child's interpreter would
    finally:
        os._exit(1)


def reap(sock: socket.socket, live: dict[int, int]) -> None:
    """Report every ended child, after killing what it left behind in its process group."""
    while True:
        try:
            info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return
        if info is None:
            return
        kill_group(info.si_pid)  # the unreaped leader keeps its group id from being reused
        _, status = os.waitpid(info.si_pid, 0)
        request_id = live.pop(info.si_pid, None)
        if request_id is not None:
            send(sock, id=request_id, exit=os.waitstatus_to_exitcode(status))


def kill_group(pid: int) -> None:
    """SIGKILL a process group; a group already gone is fine."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def serve(sock: socket.socket) -> None:
    wakeup = os.pipe()
    for fd in wakeup:
        os.set_blocking(fd, False)
    signal.set_wakeup_fd(wakeup[1])
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so SIGCHLD reaches the wakeup fd
    live: dict[int, int] = {}  # pid -> request id
    send(sock, ready=True)
    try:
        while True:
            readable, _, _ = select.select([sock, wakeup[0]], [], [])
            if wakeup[0] in readable:
                while os.read(wakeup[0], 4096) == 4096:
                    pass
                reap(sock, live)
            if sock in readable:
                data, fds, _, _ = socket.recv_fds(sock, MESSAGE_BYTES, 2)
                if not data:
                    return
                message = json.loads(data)
                if message["op"] == "run":
                    pid = fork_child(sock, message, fds, wakeup)
                    live[pid] = message["id"]
                    send(sock, id=message["id"], pid=pid)
                elif message["op"] == "kill":
                    for pid in [p for p, request_id in live.items() if request_id == message["id"]]:
                        kill_group(pid)
                for fd in fds:
                    os.close(fd)
    finally:
        for pid in live:
            kill_group(pid)


def main() -> None:
    fd, framework, frameworks = sys.argv[1:4]
    sock = socket.socket(fileno=int(fd))
    child.warm_up(framework, frameworks.split(","))
    serve(sock)


if __name__ == "__main__":
    main()
