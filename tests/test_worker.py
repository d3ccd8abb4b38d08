"""The user's persistent worker (real processes, no mocks): runs share it and find what their own
fork servers find; it survives hostile files, is replaced when killed, is ignored when its socket
is not a live worker of this user and key; a newer text of a file supersedes the running one.

Each test's workers live in its own tmp folder and are stopped after it (conftest).  Which
server ran a file is told by the file itself: a spy at its end writes its server's kind and pid.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from expectations import FIXTURES
from doors import door_env, run_door
from procs import gone, parent, survivors, zombie_children

from rfa_lint.sandbox import SERVERS, Limits, analyse_models, child_env, warm, worker

CHAIN = (FIXTURES / "lint" / "chain.py").read_text()
#: chain.py at 16px, as its comments derive: the model's range ends below 16 (RFA110), conv4's
#: RF 23 > 16 with input 15 (RFA102), conv5's input RF 23 >= 16 (RFA101)
CHAIN_FINDINGS = {(7, "RFA110"), (13, "RFA102"), (14, "RFA101")}
#: The spy looks at the keeper and server of its file through /proc and writes a file: a child
#: under the kernel's isolation can do neither, so these runs use process isolation only (the
#: worker's mechanics are the same; tests/test_isolation.py runs the worker isolated).
PROCESSES = "--isolation=processes"
SPY = """
import os as _os
_keeper = _os.getppid()
_server = int(open(f"/proc/{{_keeper}}/stat").read().rpartition(")")[2].split()[1])
_kind = "worker" if b"rfa_lint.sandbox.worker" in open(f"/proc/{{_server}}/cmdline", "rb").read() else "own"
with open({marker!r}, "a") as _f:
    _f.write(f"{{_kind}} {{_server}}\\n")
"""
MODEL = {"kind": "class", "evidence": "base", "line": 1, "directed": False, "only_builds": False,
         "build_args": "()", "build_kwargs": "{}", "input_shape": None}


def spied(tmp_path: Path, name: str, tail: str = "") -> Path:
    """chain.py with the spy, then ``tail``."""
    path = tmp_path / name
    path.write_text(CHAIN + SPY.format(marker=str(tmp_path / "servers")) + tail)
    return path


def servers(tmp_path: Path) -> list[tuple[str, int]]:
    """(kind, pid) of the server of each file run so far, in order."""
    marker = tmp_path / "servers"
    lines = marker.read_text().split("\n") if marker.exists() else []
    return [(kind, int(pid)) for kind, pid in (line.split() for line in lines if line)]


def cli(*args: str, cwd: Path, env: dict | None = None) -> set[tuple[str, int, str]]:
    proc = subprocess.run([sys.executable, "-m", "rfa_lint", *args, "--res", "16", "--select", "RFA",
                           "--no-cache", "-q", PROCESSES], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env=env)
    found = (re.match(r"(.+?):(\d+):\d+: (RFA\d+)", line) for line in proc.stdout.splitlines())
    return {(Path(m[1]).name, int(m[2]), m[3]) for m in found if m}


def flake8(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "flake8", "--select=RFA", "--rfa-res=16", "--rfa-no-cache",
                             "--format=%(path)s:%(row)d:%(code)s", f"--rfa-{PROCESSES[2:]}", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def flake8_findings(proc: subprocess.Popen) -> set[tuple[str, int, str]]:
    out, _ = proc.communicate(timeout=600)
    rows = (line.rsplit(":", 2) for line in out.split())
    return {(Path(path).name, int(row), code) for path, row, code in rows}


def chain(name: str) -> set[tuple[str, int, str]]:
    return {(name, line, code) for line, code in CHAIN_FINDINGS}


def leftovers() -> list[str]:
    """What the workers' folder holds, by name."""
    return sorted(path.name for path in worker.folder().iterdir())


def test_runs_share_the_worker_and_find_what_their_own_servers_find(tmp_path):
    spied(tmp_path, "a.py"), spied(tmp_path, "b.py")
    assert cli("a.py", cwd=tmp_path) == chain("a.py")
    assert cli("b.py", cwd=tmp_path) == chain("b.py")
    assert cli("a.py", "--no-worker", cwd=tmp_path) == chain("a.py")
    (first, pid), second, third = servers(tmp_path)
    assert first == "worker" and second == ("worker", pid) and third[0] == "own"
    assert [w["pid"] for w in worker.status()] == [pid]


def test_two_flake8_processes_share_one_worker(tmp_path):
    """Started together: one starts the worker, the other waits for it, both use it."""
    spied(tmp_path, "a.py"), spied(tmp_path, "b.py")
    runs = [flake8("a.py", cwd=tmp_path), flake8("b.py", cwd=tmp_path)]
    assert [flake8_findings(run) for run in runs] == [chain("a.py"), chain("b.py")]
    kinds = servers(tmp_path)
    assert len(kinds) == 2 and kinds[0][0] == "worker" and kinds[0] == kinds[1]
    assert [name[-5:] for name in leftovers()] == [".sock"]  # the one worker's socket, no start lock


def test_the_worker_survives_hostile_files_and_keeps_serving(tmp_path):
    """Files that kill, stop or signal their parent, double-fork, segfault, exit, flood: each gets
    its own diagnostic as without a worker, and the same worker serves the file after them."""
    tree = tmp_path / "tree"
    tree.mkdir()
    spied(tree, "before.py")
    names = ["proc_kills_parent.py", "proc_signals_parent.py", "proc_stops_parent.py", "proc_double_fork.py",
             "segfaults.py", "exits_at_import.py", "prints_a_flood.py", "proc_result_flood.py"]
    for name in names:
        (tree / name).write_bytes((FIXTURES / "hostile" / name).read_bytes())
    with_worker, _ = run_door("flake8", tree, f"--rfa-{PROCESSES[2:]}")
    without, _ = run_door("flake8", tree, "--rfa-no-worker", f"--rfa-{PROCESSES[2:]}")
    assert with_worker == without
    assert {f for f in with_worker if f[0] == "before.py"} == chain("before.py")
    assert survivors(str(tree)) == []
    spied(tree, "after.py")
    assert cli("after.py", cwd=tree, env=door_env(tree, "flake8")) == chain("after.py")  # the same TMPDIR
    ran = servers(tree)
    worker_runs = [pid for kind, pid in ran if kind == "worker"]
    assert len(worker_runs) == 2 and len(set(worker_runs)) == 1, ran


@pytest.fixture
def in_process():
    """Runs of this process that may use a worker, which neither earlier tests' connections nor
    their failures decide."""
    def forget():
        for key in [k for k in SERVERS.by_key if k[0] == warm.WORKER]:
            server = SERVERS.by_key.pop(key)
            if server is not None:
                server.close()

    forget()
    yield
    forget()


def analyse(path: Path, text: str | None = None, **limits) -> str:
    """The status of ``Chain`` in ``path`` (or ``text`` as that file), on the worker if it can."""
    text = path.read_text() if text is None else text
    outcome = analyse_models(str(path), text, "torch", [{"name": "Chain", **MODEL}],
                             Limits(worker=True, isolation="processes", **limits), ["torch"])
    assert outcome.failure is None, outcome.failure
    return outcome.models["Chain"].status


def socket_path() -> Path:
    return worker.folder() / f"{worker.key(('torch',), child_env())[:16]}.sock"


def listener(path: Path, hello: dict | None) -> socket.socket:
    """A socket listening at ``path`` that greets each client with ``hello`` (None: no one accepts)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sock.bind(str(path))
    sock.listen()
    os.chmod(path, 0o700)

    def greet():
        while True:
            try:
                client, _ = sock.accept()
                client.send(json.dumps(hello).encode())
            except BrokenPipeError:  # the run looked, refused it and hung up first
                continue
            except OSError:
                return

    if hello is not None:
        threading.Thread(target=greet, daemon=True).start()
    return sock


@pytest.mark.parametrize("case", ["another user's", "writable by others", "another version's"])
def test_a_socket_that_is_not_our_worker_is_ignored(tmp_path, in_process, case):
    """The run goes on with its own servers, and finds the same."""
    path = socket_path()
    sock = listener(path, {"ready": True, "key": "another", "pid": 1} if case == "another version's" else
                    {"ready": True, "key": worker.key(("torch",), child_env()), "pid": 1})
    with sock:
        if case == "another user's":
            os.chown(path, 12345, 12345, follow_symlinks=False)
        elif case == "writable by others":
            os.chmod(path, 0o722)
        assert analyse(spied(tmp_path, "a.py")) == "ok"
    assert servers(tmp_path)[0][0] == "own"


def test_a_dead_workers_socket_is_replaced(tmp_path, in_process):
    listener(socket_path(), None).close()  # a socket file nothing listens on, as a killed worker leaves
    assert analyse(spied(tmp_path, "a.py")) == "ok"
    assert servers(tmp_path)[0][0] == "worker"


def test_a_killed_worker_is_replaced_and_its_leftovers_removed(tmp_path):
    """A worker killed with SIGKILL leaves its socket; a run of another key's killed worker left its
    start lock too.  The next run finds the right result on a new worker and removes both."""
    spied(tmp_path, "a.py")
    assert cli("a.py", cwd=tmp_path) == chain("a.py")
    (_, pid), = servers(tmp_path)
    assert [name[-5:] for name in leftovers()] == [".sock"]
    os.kill(pid, signal.SIGKILL)
    assert gone(pid)
    listener(worker.folder() / "0123456789abcdef.sock", None).close()
    (worker.folder() / "0123456789abcdef.lock").touch()
    assert cli("a.py", cwd=tmp_path) == chain("a.py")
    (kind, new) = servers(tmp_path)[1]
    assert kind == "worker" and new != pid
    left = leftovers()
    (alive,) = worker.status()
    assert alive["pid"] == new and left == [Path(alive["socket"]).name]  # the new worker's socket only


def test_status_removes_what_dead_workers_left_but_not_what_a_starting_one_holds(tmp_path):
    """A socket nothing listens on is a dead worker's, unless a run holds its lock: that run is
    starting the worker, which binds its socket before it listens.  A lock no one holds is a
    run's that ended (or was killed) while it started a worker."""
    folder = worker.folder()
    for name in ("dead", "starting"):
        listener(folder / f"{name}.sock", None).close()
    (folder / "ended.lock").touch()
    held = os.open(folder / "starting.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert worker.status() == []
        assert leftovers() == ["starting.lock", "starting.sock"]
    finally:
        os.close(held)
    assert worker.status() == []
    assert leftovers() == []


def test_a_worker_that_exits_is_no_zombie_of_the_run_that_started_it(tmp_path, in_process):
    """A long-lived run (the language server, this test process) starts the worker; once the
    worker exits, the run has no child left unreaped: neither the worker nor whatever started it."""
    zombies = zombie_children(os.getpid())
    assert analyse(spied(tmp_path, "a.py")) == "ok"
    ((kind, pid),) = servers(tmp_path)
    assert kind == "worker" and parent(pid) != os.getpid()
    assert worker.stop() == [pid] and gone(pid)
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    assert zombie_children(os.getpid()) <= zombies


def test_a_newer_text_supersedes_the_running_one(tmp_path, in_process):
    """The first text's child hangs (only the first time it runs), the second text comes: the
    first run is told, its child killed, and it runs again to its own right result."""
    marker, path = tmp_path / "runs", tmp_path / "a.py"
    hangs_once = CHAIN + f"""
import time
with open({str(marker)!r}, "a") as _f:
    _f.write("first\\n")
if open({str(marker)!r}).read().count("first") == 1:
    time.sleep(600)
"""
    first: list[str] = []
    thread = threading.Thread(target=lambda: first.append(analyse(path, hangs_once, timeout=900)))
    thread.start()
    deadline = time.monotonic() + 120
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert analyse(path, CHAIN) == "ok"
    thread.join(600)
    assert first == ["ok"]
    assert marker.read_text() == "first\nfirst\n"


def test_a_run_that_goes_away_takes_its_files_with_it(tmp_path):
    spied(tmp_path, "a.py", f"open({str(tmp_path / 'pid')!r}, 'w').write(str(_os.getpid()))\n"
                            "__import__('time').sleep(600)\n")
    run = subprocess.Popen([sys.executable, "-m", "rfa_lint", "a.py", "--timeout", "900", "--no-cache", "-q",
                            PROCESSES],
                           cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "pid").exists() or not (tmp_path / "pid").read_text():
            assert time.monotonic() < deadline and run.poll() is None
            time.sleep(0.05)
    finally:
        run.kill()
        run.wait()
    assert gone(int((tmp_path / "pid").read_text()))
    (kind, pid), = servers(tmp_path)
    assert kind == "worker" and not gone(pid, seconds=0)


def test_no_worker_in_every_front_door(tmp_path):
    spied(tmp_path, "a.py")
    assert cli("a.py", "--no-worker", cwd=tmp_path) == chain("a.py")
    assert flake8_findings(flake8("--rfa-no-worker", "a.py", cwd=tmp_path)) == chain("a.py")
    (tmp_path / "pyproject.toml").write_text("[tool.rfa-lint]\nno-worker = true\n")
    assert cli("a.py", cwd=tmp_path) == chain("a.py")
    assert [kind for kind, _ in servers(tmp_path)] == ["own"] * 3
    assert worker.status() == []


def second_environment(tmp_path: Path) -> Path:
    """The python of another environment: a venv over the same base interpreter (its frameworks
    through ``--system-site-packages``) with this checkout on its path."""
    folder = tmp_path / "venv2"
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", "--system-site-packages",
                    str(folder)], check=True, timeout=120)
    (site,) = folder.glob("lib/python*/site-packages")
    (site / "rfa_lint_checkout.pth").write_text(str(Path(worker.__file__).parents[2]) + "\n")
    return folder / "bin" / "python"


def run_in(python: str, folder: Path) -> subprocess.CompletedProcess:
    """``rfa-lint a.py`` at 16px with the ``python`` of an environment."""
    return subprocess.run([python, "-m", "rfa_lint", "a.py", "--res", "16", "--no-cache", "-q", PROCESSES],
                          cwd=folder, capture_output=True, text=True, timeout=600)


def test_status_and_stop_tell_environments_apart(tmp_path):
    """Two environments' runs each start their worker; ``status`` lists both with their Python,
    version, frameworks and idle time; ``stop`` in one stops its own, ``stop --all`` every one."""
    other = second_environment(tmp_path)
    spied(tmp_path, "a.py")
    for python in (sys.executable, str(other)):
        proc = run_in(python, tmp_path)
        assert proc.returncode == 1, proc.stderr
    (_, ours), (_, theirs) = servers(tmp_path)
    assert {kind for kind, _ in servers(tmp_path)} == {"worker"} and ours != theirs

    def worker_command(python, *args):
        return subprocess.run([python, "-m", "rfa_lint.sandbox.worker", *args], capture_output=True,
                              text=True, timeout=120).stdout

    shown = worker_command(sys.executable, "status")
    torch_version = __import__("torch").__version__
    assert re.search(rf"pid {ours}  0 other clients  0 files running  idle \d+s\n"
                     rf"    this environment: {re.escape(sys.executable)}  rfa-lint \S+  "
                     rf"torch {re.escape(torch_version)} loaded",
                     shown), shown
    assert re.search(rf"pid {theirs}  .*\n    another environment: {re.escape(str(other))}  ", shown), shown
    assert str(worker.folder()) in shown
    left = "1 worker(s) of other Python environments left running (stop --all stops them)\n"
    assert worker_command(str(other), "stop") == f"stopped worker {theirs}\n{left}"
    assert gone(theirs) and not gone(ours, seconds=0)
    assert [w["pid"] for w in worker.status()] == [ours]
    assert worker_command(str(other), "stop") == left
    assert not gone(ours, seconds=0)
    run_in(str(other), tmp_path)
    theirs = servers(tmp_path)[-1][1]
    assert theirs != ours and not gone(theirs, seconds=0)
    stopped = worker_command(str(other), "stop", "--all")
    assert sorted(stopped.split("\n")) == sorted(["", f"stopped worker {ours}", f"stopped worker {theirs}"])
    assert gone(ours) and gone(theirs)
    assert worker_command(sys.executable, "status") == f"no worker runs (looked in {worker.folder()})\n"
    assert leftovers() == []


def test_an_idle_worker_exits_and_removes_its_socket(tmp_path):
    """Nothing connected, nothing running for IDLE_SECONDS (one, here): it exits on its own."""
    path = tmp_path / "w.sock"
    code = ("import os, sys; from rfa_lint.sandbox import worker; worker.IDLE_SECONDS = 1; "
            "ready, end = os.pipe(); worker.run_worker(end, sys.argv[1], 'key', 'torch', 'torch')")
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert not path.exists()


def test_runs_that_only_check_a_worker_listens_do_not_keep_it_up(tmp_path):
    """Every run sweeps the worker folder, connecting to each socket to see whether a worker
    listens there: on a busy machine those checks came more often than IDLE_SECONDS, and
    workers never exited.  Swept every 0.2 s, an idle worker still exits."""
    path = tmp_path / "w.sock"
    code = ("import os, sys; from rfa_lint.sandbox import worker; worker.IDLE_SECONDS = 1; "
            "ready, end = os.pipe(); worker.run_worker(end, sys.argv[1], 'key', 'torch', 'torch')")
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            worker.sweep(tmp_path)
            time.sleep(0.2)
        assert proc.poll() == 0, proc.stderr.read() if proc.poll() is not None else "still running"
        assert not path.exists()
    finally:
        proc.kill()
        proc.wait()


def test_a_fork_server_that_dies_on_its_own_is_reaped(tmp_path):
    """With the worker off, a long-lived run replaces its own fork server when it dies; the dead
    one is waited for at once, not left a zombie until some later subprocess call reaps it."""
    server = warm.ForkServer("", (), child_env())
    try:
        zombies = zombie_children(os.getpid())
        os.kill(server.pid, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while server.proc.returncode is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.lost and server.proc.returncode == -signal.SIGKILL
        assert server.pid not in zombie_children(os.getpid()) - zombies
    finally:
        server.close()
