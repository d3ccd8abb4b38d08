"""The sandbox against user code that meddles with it (real child processes, no mocks).

Most cases run twice: in a child forked by the warm torch server, and in one forked by the cold
server (the run's torch server marked as failed to start, which is the state a run is in when
importing torch in a server fails).  A cold child imports torch itself, seconds each: two cases
run cold in every run (``every_kind``), the others cold with the integration tests (``kind``).
"""

from __future__ import annotations

import errno
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import urllib.request
from pathlib import Path

import pytest
from procs import alive, gone

from rfa_lint.sandbox import SERVERS, FileOutcome, Limits, ModelOutcome, _blame, analyse_models, warm
from rfa_lint.sandbox.offline import DownloadBlocked, no_network

# what the static pass says of ``class Net(nn.Module)`` (arguments travel as literal text)
MODEL_CLASS = {"kind": "class", "evidence": "base", "line": 1, "directed": False, "only_builds": False}
SLOW_MODELS = Path(__file__).resolve().parents[1] / "fixtures" / "sandbox" / "slow_models.py"
DIES_AFTER_RESULTS = SLOW_MODELS.with_name("dies_after_results.py")

NET = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return self.conv(x)
"""


#: User code that finds the pipe its results travel on: the one pipe it may write to besides its
#: stdout and stderr.
RESULT_PIPE = """
import fcntl, os, stat


def _writable_pipe(fd):
    try:
        mode, flags = os.fstat(fd).st_mode, fcntl.fcntl(fd, fcntl.F_GETFL)
    except OSError:  # the listing's own fd, closed by now
        return False
    return stat.S_ISFIFO(mode) and flags & os.O_ACCMODE == os.O_WRONLY


result_pipe = next(fd for fd in sorted(map(int, os.listdir("/proc/self/fd")))
                   if fd > 2 and _writable_pipe(fd))
"""


def _use(kind: str, monkeypatch) -> str:
    if kind == "cold":
        monkeypatch.setitem(SERVERS.by_key, ("torch", ("torch",)), None)
    return kind


@pytest.fixture(params=["warm", pytest.param("cold", marks=pytest.mark.integration)])
def kind(request, monkeypatch):
    return _use(request.param, monkeypatch)


@pytest.fixture(params=["warm", "cold"])
def every_kind(request, monkeypatch):
    return _use(request.param, monkeypatch)


def analyse(path: Path, prelude: str = "", source: str | None = None, timeout: float = 60,
            models: tuple[str, ...] = ("Net",), isolation: str = "auto") -> FileOutcome:
    """Lint one file's ``models``; ``prelude`` is user code run at import, before ``Net``.

    ``isolation="processes"`` for the tests of the process tree that look at it, or write a
    file, from inside the child: the kernel's isolation forbids both (tests/test_isolation.py).
    """
    if source is None:
        source = RESULT_PIPE + textwrap.dedent(prelude) + NET
        path.write_text(source)
    candidates = [{"name": name, **MODEL_CLASS, "build_args": "()", "build_kwargs": "{}", "input_shape": None}
                  for name in models]
    limits = Limits(timeout=timeout, isolation=isolation)
    return analyse_models(str(path), source, "torch", candidates, limits, ["torch"])


def assert_net_ok(outcome: FileOutcome) -> None:
    assert outcome.failure is None, outcome.failure
    assert outcome.models["Net"].status == "ok", outcome.models["Net"]


def test_forged_result_lines_are_skipped(tmp_path, every_kind):
    junk = ['{"x": 1}', "[1, 2]", '"text"', "not json }", '{"event": "model"}',
            '{"event": "model", "model": "Ghost", "status": "ok", "graph": {}}',
            '{"event": "model", "model": "Net", "status": "weird"}',
            '{"event": "model", "model": "Net", "status": "ok", "graph": 3}',
            '{"event": "start", "model": 3}', '{"event": "done", "status": 1}',
            '{"event": "imported", "instantiated": 5}',
            '{"event": "model", "model": "Net", "status": "ok", "graph": {}, "detail": 1}',
            '{"event": "import-failed", "status": "ok", "detail": ""}',
            "[" * 100_000 + "]" * 100_000]  # json.loads: RecursionError
    outcome = analyse(tmp_path / "forges.py", f"""
        os.write(result_pipe, ("\\n".join({junk!r}) + "\\n").encode())
    """)
    assert_net_ok(outcome)
    assert set(outcome.models) == {"Net"}


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGRTMIN + 2], ids=["SIGKILL", "realtime"])
def test_half_a_line_then_death_by_signal(tmp_path, kind, signum):
    outcome = analyse(tmp_path / "dies.py", f"""
        os.write(result_pipe, b'{{"x": 1}}\\n{{"event": "model", "model": "Net", "graph": {{"a": 1}}')
        os.kill(os.getpid(), {int(signum)})
    """)
    name = "SIGKILL" if signum == signal.SIGKILL else f"signal {int(signum)}"
    assert (outcome.failure.status, outcome.failure.detail) == ("crashed", f"killed by {name}")


def test_a_child_that_dies_after_sending_all_its_results_keeps_them_but_is_not_clean(tmp_path, kind):
    assert analyse(tmp_path / "net.py").clean  # the same model, its child exiting on its own
    outcome = analyse(DIES_AFTER_RESULTS, source=DIES_AFTER_RESULTS.read_text())
    assert_net_ok(outcome)
    assert not outcome.clean


def test_printing_out_of_memory_is_no_memory_limit(tmp_path, kind):
    outcome = analyse(tmp_path / "says_oom.py", """
        import os, sys
        print("CUDA out of memory", file=sys.stderr, flush=True)
        os._exit(3)
    """)
    assert (outcome.failure.status, outcome.failure.detail) == (
        "crashed", "exited with code 3: CUDA out of memory")


def test_module_level_argparse_sees_only_the_file(tmp_path, kind):
    outcome = analyse(tmp_path / "script.py", """
        import argparse, sys
        assert sys.argv == [__file__], sys.argv
        parser = argparse.ArgumentParser()
        parser.add_argument("--lr", type=float, default=0.1)
        args = parser.parse_args()
    """)
    assert_net_ok(outcome)


def test_everything_the_file_started_dies_with_it_and_holds_nothing_of_ours(tmp_path, kind):
    """Whatever group or session they run in, even a double-forked daemon: all are dead when the
    analysis returns, and none keeps a pipe, an fd or a thread of the linter's alive."""
    analyse(tmp_path / "warm_up.py")  # a warm server's socket and reader thread are not the run's
    fds, threads = len(os.listdir("/proc/self/fd")), threading.active_count()
    pids = tmp_path / "pids"
    outcome = analyse(tmp_path / "spawns.py", f"""
        import subprocess, sys
        sleep = [sys.executable, "-c", "import time; time.sleep(120)"]
        started = [subprocess.Popen(sleep).pid,
                   subprocess.Popen(sleep, start_new_session=True).pid,  # keeps our stdout and stderr
                   subprocess.Popen(sleep, process_group=0).pid]
        read, write = os.pipe()
        if os.fork() == 0:  # the classic daemon: the middle process exits, the daemon is nobody's
            os.setsid()
            daemon = subprocess.Popen(sleep).pid
            os.write(write, str(daemon).encode())
            os._exit(0)
        started.append(int(os.read(read, 20)))
        open({str(pids)!r}, "w").write(" ".join(map(str, started)))
    """, isolation="processes")
    started = list(map(int, pids.read_text().split()))
    try:
        assert_net_ok(outcome)
        assert [pid for pid in started if alive(pid)] == []
        assert (len(os.listdir("/proc/self/fd")), threading.active_count()) == (fds, threads)
    finally:
        for pid in started:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("signum", [signal.SIGUSR1, signal.SIGKILL, signal.SIGSTOP],
                         ids=["SIGUSR1", "SIGKILL", "SIGSTOP"])
def test_a_file_that_signals_its_parent_crashes_alone(tmp_path, kind, signum):
    """The parent is the file's own keeper, never the linter (this test process would die):
    the file gets one crash that says what happened, and the next file runs as ever."""
    outcome = analyse(tmp_path / "signals.py", f"""
        import signal, time
        os.kill(os.getppid(), {int(signum)})
        time.sleep(60)
    """, isolation="processes")
    what = "stopped" if signum == signal.SIGSTOP else "killed"
    assert (outcome.failure.status, outcome.failure.detail) == (
        "crashed", f"the process that started it was {what} by {signal.Signals(signum).name}")
    assert_net_ok(analyse(tmp_path / "next.py"))


@pytest.mark.parametrize("signum", [signal.SIGSTOP, signal.SIGKILL], ids=["SIGSTOP", "SIGKILL"])
def test_a_frozen_or_dead_server_is_replaced(tmp_path, monkeypatch, signum):
    """A file that signals the server itself (its parent's parent): the next file finds it
    frozen or dead, and runs on a new one; a frozen server is killed, not left behind."""
    monkeypatch.setattr(warm, "ANSWER_SECONDS", 1)
    pid_file = tmp_path / "server.pid"
    analyse(tmp_path / "signals_server.py", f"""
        server = int(open(f"/proc/{{os.getppid()}}/stat").read().rpartition(")")[2].split()[1])
        open({str(pid_file)!r}, "w").write(str(server))
        os.kill(server, {int(signum)})
    """, isolation="processes")
    assert_net_ok(analyse(tmp_path / "next.py"))
    assert gone(int(pid_file.read_text()))


def test_a_timeout_kills_the_file(tmp_path, every_kind):
    outcome = analyse(tmp_path / "hangs.py", """
        import time
        time.sleep(60)
    """, timeout=3)
    assert outcome.failure.status == "timeout"


def analyse_slow(names: list[str], timeout: float) -> FileOutcome:
    candidates = [{"name": name, **MODEL_CLASS, "build_args": "()", "build_kwargs": "{}", "input_shape": None}
                  for name in names]
    return analyse_models(str(SLOW_MODELS), SLOW_MODELS.read_text(), "torch", candidates,
                          Limits(timeout=timeout), ["torch"])


def test_each_model_gets_a_time_limit_of_its_own():
    """Four builds of 1 s each (the fixture's BUILD_SECONDS) take 4 s, more than the 2.5 s limit;
    each one alone is well within it."""
    outcome = analyse_slow(["SlowA", "SlowB", "SlowC", "SlowD"], timeout=2.5)
    assert outcome.failure is None, outcome.failure
    assert {name: result.status for name, result in outcome.models.items()} == dict.fromkeys(
        ["SlowA", "SlowB", "SlowC", "SlowD"], "ok")


def test_a_model_that_hangs_times_out_alone():
    outcome = analyse_slow(["SlowA", "Forever", "SlowB"], timeout=2.5)
    assert outcome.failure is None, outcome.failure
    assert {name: result.status for name, result in outcome.models.items()} == {
        "SlowA": "ok", "Forever": "timeout", "SlowB": "ok"}


FORGER = """
import time
from torch import nn


class Forger(nn.Module):
    \"\"\"Announces itself again and again for 20 s: each announcement restarts its own time.\"\"\"

    def __init__(self):
        super().__init__()
        for _ in range(100):
            os.write(result_pipe, b'{"event": "start", "model": "Forger"}\\n')
            time.sleep(0.2)

    def forward(self, x):
        return x
"""


def test_forged_announcements_buy_no_more_than_the_files_budget(tmp_path):
    """Two models with a 2 s limit: the file's budget is 2 x (2 models + 1) = 6 s.  The forger
    keeps itself alive until the budget runs out, and then none is left for the model after it."""
    path = tmp_path / "forges_starts.py"
    path.write_text(RESULT_PIPE + FORGER + NET)
    outcome = analyse(path, source=path.read_text(), timeout=2, models=("Forger", "Net"))
    assert outcome.failure is None, outcome.failure
    assert outcome.models == {"Forger": ModelOutcome("timeout", detail="no result within 2s"),
                              "Net": ModelOutcome("timeout", detail="the file's budget of 6s ran out")}


def test_a_child_that_dies_between_two_models_keeps_the_finished_one():
    events = [{"event": "imported"}, {"event": "start", "model": "A"},
              {"event": "model", "model": "A", "status": "ok", "graph": {}}]
    remaining = [{"name": "A"}, {"name": "B"}]
    outcome = FileOutcome()
    outcome.models["A"] = ModelOutcome("ok", {})
    assert _blame(events, ModelOutcome("timeout"), remaining, outcome) == [{"name": "B"}]
    assert (outcome.failure, outcome.models) == (None, {"A": ModelOutcome("ok", {})})


def test_memory_limit_above_the_hard_limit_is_clamped(tmp_path):
    """A linter started under a hard address-space limit (a shell's ``ulimit -v``) still builds."""
    path = tmp_path / "net.py"
    path.write_text(NET)
    script = textwrap.dedent(f"""
        import resource
        from rfa_lint.sandbox import SERVERS, Limits, analyse_models
        hard = 16 * 2**30
        resource.setrlimit(resource.RLIMIT_AS, (hard, hard))
        candidate = {{"name": "Net", **{MODEL_CLASS!r}, "build_args": "()", "build_kwargs": "{{}}",
                     "input_shape": None}}
        for kind in ("warm", "plain"):
            outcome = analyse_models({str(path)!r}, open({str(path)!r}).read(), "torch", [candidate],
                                     Limits(timeout=60, memory_mb=64 * 1024), ["torch"])
            print(kind, outcome.failure, outcome.models["Net"].status if outcome.models else None)
            SERVERS.close_all()
            SERVERS.by_key[("torch", ("torch",))] = None
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.stdout.splitlines() == ["warm None ok", "plain None ok"], proc.stderr


PACKAGE_INIT = """
from pathlib import Path
with open(Path(__file__).parent.parent / "runs.log", "a") as log:
    log.write("run\\n")
from .blocks import block
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = block()

    def forward(self, x):
        return self.conv(x)
"""


def test_a_package_init_runs_once(tmp_path, kind):
    """``pkg/__init__.py`` is the package ``pkg``: run once, on disk or as an unsaved buffer."""
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "blocks.py").write_text("from torch import nn\ndef block():\n    return nn.Conv2d(3, 4, 3)\n")
    init = package / "__init__.py"
    init.write_text(PACKAGE_INIT)
    runs = tmp_path / "runs.log"
    for source in (PACKAGE_INIT, PACKAGE_INIT + "\n# an unsaved edit\n"):
        runs.unlink(missing_ok=True)
        assert_net_ok(analyse(init, source=source, isolation="processes"))  # runs.log is outside
        assert runs.read_text() == "run\n"


def slot_folder_in(runtime: Path) -> subprocess.CompletedProcess:
    script = ("from rfa_lint.sandbox.slots import child_slot, slot_folder\n"
              "with child_slot(1):\n    print(slot_folder())")
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)})


def test_slots_live_in_the_runtime_folder(tmp_path):
    proc = slot_folder_in(tmp_path)
    folder = tmp_path / f"rfa-lint-slots-{os.getuid()}"
    assert (proc.stdout, proc.stderr) == (f"{folder}\n", "")
    assert folder.stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize("hijack", ["writable", "symlink", "other-owner"])
def test_a_slot_folder_that_is_not_ours_is_not_used(tmp_path, hijack):
    folder = tmp_path / f"rfa-lint-slots-{os.getuid()}"
    if hijack == "symlink":
        (tmp_path / "elsewhere").mkdir()
        folder.symlink_to(tmp_path / "elsewhere")
    else:
        folder.mkdir()
        folder.chmod(0o777 if hijack == "writable" else 0o700)
    if hijack == "other-owner":
        if os.getuid() != 0:
            pytest.skip("giving a folder to another user needs root")
        os.chown(folder, 65534, 65534)
    proc = slot_folder_in(tmp_path)
    assert proc.returncode == 0, proc.stderr
    used = Path(proc.stdout.strip())
    assert used.parent == Path(os.environ.get("TMPDIR", "/tmp"))
    assert re.fullmatch(r"rfa-lint-\d+-slots-\w+", used.name)  # a killed run's is removed later
    assert used != folder and not used.exists()  # a private folder, removed at exit
    assert "is not a private folder" in proc.stderr
    assert not list(folder.iterdir())


def test_a_vanished_slot_folder_runs_the_child_uncapped(tmp_path):
    from rfa_lint.sandbox.slots import child_slot

    with child_slot(1, folder=tmp_path / "removed-by-a-tmp-cleaner") as slot:
        assert slot == -1


# No network while models are built.  Every name and address below is reserved and never
# routed (.invalid: RFC 2606; 203.0.113.0/24, 2001:db8::/32: RFC 5737, 3849), and every raw socket
# is non-blocking: a guard that failed to act would fail its test at once, never wait on a network.

@pytest.fixture
def nonblocking():
    """Opens non-blocking sockets, and closes them after the test."""
    opened = []

    def open_socket(family: int, kind: int = socket.SOCK_STREAM) -> socket.socket:
        opened.append(socket.socket(family, kind))
        opened[-1].setblocking(False)
        return opened[-1]

    yield open_socket
    for sock in opened:
        sock.close()


def test_a_download_through_urllib_is_refused_by_its_url():
    url = "https://example.invalid/x.pth"
    with no_network() as network:
        with pytest.raises(DownloadBlocked):
            urllib.request.urlopen(url)
    assert network.attempts == [url]
    assert issubclass(DownloadBlocked, ConnectionError)


def test_a_raw_connect_is_refused_before_any_packet(nonblocking):
    sock = nonblocking(socket.AF_INET)
    with no_network() as network:
        with pytest.raises(DownloadBlocked):
            sock.connect(("203.0.113.1", 443))
        with pytest.raises(OSError) as not_connected:
            sock.getpeername()
    assert not_connected.value.errno == errno.ENOTCONN
    assert network.attempts == ["203.0.113.1:443"]


@pytest.mark.parametrize("attempt, name", [
    (lambda _: socket.getaddrinfo("example.invalid", 443), "example.invalid:443"),
    (lambda _: socket.gethostbyname("example.invalid"), "example.invalid"),
    (lambda _: socket.create_connection(("example.invalid", 80)), "example.invalid:80"),
    (lambda _: http.client.HTTPSConnection("example.invalid").request("GET", "/"), "example.invalid:443"),
    (lambda open_socket: open_socket(socket.AF_INET6).connect_ex(("2001:db8::1", 80, 0, 0)),
     "[2001:db8::1]:80"),
    (lambda open_socket: open_socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("203.0.113.1", 53)),
     "203.0.113.1:53"),
], ids=["getaddrinfo", "gethostbyname", "create_connection", "http.client", "connect_ex", "sendto"])
def test_every_way_out_is_refused_and_named(attempt, name, nonblocking):
    with no_network() as network:
        with pytest.raises(DownloadBlocked):
            attempt(nonblocking)
    assert network.attempts == [name]


def test_a_swallowed_refusal_is_still_recorded():
    with no_network() as network:
        for url in ("https://example.invalid/a.pth", "https://example.invalid/b.pth"):
            try:
                urllib.request.urlopen(url)
            except OSError:  # what a library that goes on offline does
                pass
    assert network.attempts == ["https://example.invalid/a.pth", "https://example.invalid/b.pth"]


def test_torch_hub_downloads_are_refused_by_their_url(tmp_path):
    hub = pytest.importorskip("torch.hub")
    url = "https://example.invalid/rfa-lint/resnet18.pth"
    with no_network() as network:
        with pytest.raises(DownloadBlocked):
            hub.load_state_dict_from_url(url, model_dir=str(tmp_path), progress=False)
    assert network.attempts == [url]


def test_unix_sockets_and_local_files_keep_working(tmp_path):
    with no_network() as network:
        left, right = socket.socketpair()
        with left, right:
            left.sendall(b"ping")
            assert right.recv(4) == b"ping"
        with socket.socket(socket.AF_UNIX) as server, socket.socket(socket.AF_UNIX) as client:
            server.bind(str(tmp_path / "socket"))
            server.listen()
            client.connect(str(tmp_path / "socket"))
        (tmp_path / "weights.txt").write_text("local")
        assert urllib.request.urlopen((tmp_path / "weights.txt").as_uri()).read() == b"local"
        with pytest.raises(ValueError, match="unknown url type"):  # urllib's own answer
            urllib.request.urlopen("weights.txt")
    assert network.attempts == []


def test_everything_is_restored_on_exit():
    patched = [(socket.socket, "connect"), (socket.socket, "connect_ex"), (socket.socket, "sendto"),
               (socket, "create_connection"), (socket, "getaddrinfo"), (socket, "gethostbyname"),
               (socket, "gethostbyname_ex"), (urllib.request.OpenerDirector, "open")]
    before = [getattr(owner, name) for owner, name in patched]
    with pytest.raises(RuntimeError), no_network():
        assert socket.getaddrinfo is not before[4]
        raise RuntimeError("user code fails inside the block")
    assert [getattr(owner, name) for owner, name in patched] == before
    assert not {"connect", "connect_ex", "sendto"} & set(vars(socket.socket))  # inherited again
