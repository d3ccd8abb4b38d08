"""The sandbox against user code that meddles with it (real child processes, no mocks).

Most cases run twice: in a child forked by the warm torch server, and in a plain child (the
run's torch server marked as failed to start, which is the state a run without servers is in).
"""

from __future__ import annotations

import errno
import http.client
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from rfa_lint.sandbox import FileOutcome, Limits, ModelOutcome, _blame, analyse_models, warm
from rfa_lint.sandbox.offline import DownloadBlocked, no_network

MODEL_CLASS = {"kind": "class", "evidence": "base"}  # what the static pass says of ``class Net(nn.Module)``
SLOW_MODELS = Path(__file__).resolve().parents[1] / "fixtures" / "sandbox" / "slow_models.py"

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


@pytest.fixture(params=["warm", "plain"])
def kind(request, monkeypatch):
    if request.param == "plain":
        monkeypatch.setitem(warm._SERVERS, ("torch", ("torch",)), None)
    return request.param


def analyse(path: Path, prelude: str = "", source: str | None = None, timeout: float = 60) -> FileOutcome:
    """Lint one file's ``Net``; ``prelude`` is user code run at import, before the model."""
    if source is None:
        source = textwrap.dedent(prelude) + NET
        path.write_text(source)
    candidate = {"name": "Net", **MODEL_CLASS, "build_args": [], "build_kwargs": {}, "input_shape": None}
    return analyse_models(str(path), source, "torch", [candidate], Limits(timeout=timeout), ["torch"])


def assert_net_ok(outcome: FileOutcome) -> None:
    assert outcome.failure is None, outcome.failure
    assert outcome.models["Net"].status == "ok", outcome.models["Net"]


def test_forged_result_lines_are_skipped(tmp_path, kind):
    junk = ['{"x": 1}', "[1, 2]", '"text"', "not json }", '{"event": "model"}',
            '{"event": "model", "model": "Ghost", "status": "ok", "graph": {}}',
            '{"event": "model", "model": "Net", "status": "weird"}',
            '{"event": "model", "model": "Net", "status": "ok", "graph": 3}',
            '{"event": "start", "model": 3}', '{"event": "done", "status": 1}',
            '{"event": "imported", "instantiated": 5}',
            '{"event": "model", "model": "Net", "status": "ok", "graph": {}, "detail": 1}',
            '{"event": "import-failed", "status": "ok", "detail": ""}']
    outcome = analyse(tmp_path / "forges.py", f"""
        with open("result.jsonl", "a") as result:  # the child's working folder holds it
            result.write("\\n".join({junk!r}) + "\\n")
    """)
    assert_net_ok(outcome)
    assert set(outcome.models) == {"Net"}


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGRTMIN + 2], ids=["SIGKILL", "realtime"])
def test_half_a_line_then_death_by_signal(tmp_path, kind, signum):
    outcome = analyse(tmp_path / "dies.py", f"""
        import os
        with open("result.jsonl", "a") as result:
            result.write('{{"x": 1}}\\n{{"event": "model", "model": "Net", "graph": {{"a": 1}}')
        os.kill(os.getpid(), {int(signum)})
    """)
    name = "SIGKILL" if signum == signal.SIGKILL else f"signal {int(signum)}"
    assert (outcome.failure.status, outcome.failure.detail) == ("crashed", f"killed by {name}")


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


def gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_group_is_killed_and_an_escaped_grandchild_holds_nothing_of_ours(tmp_path, kind):
    analyse(tmp_path / "warm_up.py")  # a warm server's socket and reader thread are not the run's
    fds, threads = len(os.listdir("/proc/self/fd")), threading.active_count()
    pids = tmp_path / "pids"
    start = time.monotonic()
    outcome = analyse(tmp_path / "spawns.py", f"""
        import subprocess, sys
        sleep = [sys.executable, "-c", "import time; time.sleep(120)"]
        in_group = subprocess.Popen(sleep)
        escaped = subprocess.Popen(sleep, start_new_session=True)  # keeps our stdout and stderr
        open({str(pids)!r}, "w").write(f"{{in_group.pid}} {{escaped.pid}}")
    """)
    seconds = time.monotonic() - start
    in_group, escaped = map(int, pids.read_text().split())
    try:
        assert_net_ok(outcome)
        # not waiting on the pipes the escaped grandchild keeps open for its 120 s (a loaded CI
        # machine may take a few seconds for the run itself)
        assert seconds < 30
        assert (len(os.listdir("/proc/self/fd")), threading.active_count()) == (fds, threads)
        deadline = time.monotonic() + 5
        while not gone(in_group) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert gone(in_group)
        assert not gone(escaped)
    finally:
        os.kill(escaped, signal.SIGKILL)


def test_a_timeout_kills_the_group(tmp_path, kind):
    outcome = analyse(tmp_path / "hangs.py", """
        import time
        time.sleep(60)
    """, timeout=3)
    assert outcome.failure.status == "timeout"


def analyse_slow(names: list[str], timeout: float) -> FileOutcome:
    candidates = [{"name": name, **MODEL_CLASS, "build_args": [], "build_kwargs": {}, "input_shape": None}
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


def test_forged_announcements_buy_no_time():
    """The fixture forges a start event every 0.2 s for 20 s; a 2 s limit for one model caps the
    child at 2 x (1 model + 1) = 4 s, so it times out instead of building."""
    outcome = analyse_slow(["ForgesStarts"], timeout=2)
    assert outcome.failure is None, outcome.failure
    assert outcome.models["ForgesStarts"].status == "timeout"


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
        from rfa_lint.sandbox import Limits, analyse_models, warm
        hard = 16 * 2**30
        resource.setrlimit(resource.RLIMIT_AS, (hard, hard))
        candidate = {{"name": "Net", **{MODEL_CLASS!r}, "build_args": [], "build_kwargs": {{}},
                     "input_shape": None}}
        for kind in ("warm", "plain"):
            outcome = analyse_models({str(path)!r}, open({str(path)!r}).read(), "torch", [candidate],
                                     Limits(timeout=60, memory_mb=64 * 1024), ["torch"])
            print(kind, outcome.failure, outcome.models["Net"].status if outcome.models else None)
            warm.close_all()
            warm._SERVERS[("torch", ("torch",))] = None
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
        assert_net_ok(analyse(init, source=source))
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
    assert used.parent == Path(os.environ.get("TMPDIR", "/tmp")) and used.name.startswith("rfa-lint-slots-")
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
