"""The kernel between model code and the user: real processes, both front doors, no mocks.

Each attack of the third audit is a fixture in fixtures/hostile/ns/ (and a module planted in the
shared temporary folder), linted through flake8 and the CLI beside good files: nothing planted
runs, nothing outlives the run, nothing reaches a loopback listener or a Unix socket, no signal
reaches a process outside, no neighbour loses a finding, the tree and the cache stay as they
were, nothing freezes.  Where the kernel refuses namespaces (simulated honestly: the run starts
inside a user namespace whose ``max_user_namespaces`` is 0, a limit the kernel keeps per user
namespace), the run says so once and still lints, the seccomp filter still holds, a result cached
under the kernel's isolation is not read, and ``isolation = "required"`` exits 2 before any model
code runs.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
from doors import DOORS, door_command, door_env, door_expected, run_door
from expectations import FIXTURES
from procs import survivors

from rfa_lint.sandbox import isolation

NS = FIXTURES / "hostile" / "ns"
CHAIN = FIXTURES / "lint" / "chain.py"
KERNEL = isolation.probe()
needs_kernel = pytest.mark.skipif(not KERNEL.full, reason=f"isolation here: {KERNEL.describe()}")


def tree_with(tmp_path: Path, *paths: Path, victims: int = 2) -> Path:
    """A folder with ``paths`` and ``victims`` copies of a good model file (3 findings each)."""
    tree = tmp_path / "tree"
    tree.mkdir()
    for path in paths:
        shutil.copy(path, tree / path.name)
    for index in range(victims):
        shutil.copy(CHAIN, tree / f"victim_{index}.py")
    return tree


@pytest.mark.parametrize("worker", [True, False], ids=["worker", "fork-server"])
@pytest.mark.parametrize("door", DOORS)
def test_a_module_planted_in_the_temporary_folder_never_runs(tmp_path, door, worker):
    """Another user's ``json.py`` in the shared temporary folder: the worker and the fork server
    started there with ``python -m``, which put it first on their ``sys.path``."""
    tree = tree_with(tmp_path)
    shared = tmp_path / "shared-tmp"
    shared.mkdir()
    shutil.copy(NS / "planted" / "json.py", shared / "json.py")
    options = [] if worker else ["--rfa-no-worker" if door == "flake8" else "--no-worker"]
    found, _ = run_door(door, tree, *options, tmp=shared)
    assert found == door_expected(door, tree)
    assert not (shared / "planted-module-ran").exists()


@needs_kernel
@pytest.mark.usefixtures("warm_worker")
@pytest.mark.parametrize("door", DOORS)
def test_a_file_cannot_leave_its_process_tree(tmp_path, door):
    """It would stop and kill its server and keeper, and leave a daemon holding the slot locks:
    it finds neither, holds no lock, and its daemon dies with its PID namespace."""
    tree = tree_with(tmp_path, NS / "ns_escapes_its_tree.py")
    try:
        found, printed = run_door(door, tree)
        assert found == door_expected(door, tree)
        assert survivors(str(tree)) == []
        if door == "cli":
            assert "signalled [], holds 0 slot locks" in printed
    finally:
        for pid in survivors(str(tree)):
            os.kill(pid, signal.SIGKILL)


@needs_kernel
@pytest.mark.usefixtures("warm_worker")
@pytest.mark.parametrize("door", DOORS)
def test_a_file_cannot_stop_the_process_reading_its_output(tmp_path, door):
    """Through /proc it would find the linter and its keeper and stop them: the run would hang."""
    tree = tree_with(tmp_path, NS / "ns_stops_its_reader.py")
    found, printed = run_door(door, tree)
    assert found == door_expected(door, tree)
    if door == "cli":
        assert "stopped []" in printed


@needs_kernel
@pytest.mark.usefixtures("warm_worker")
@pytest.mark.parametrize("door", DOORS)
def test_nothing_reaches_a_loopback_listener(tmp_path, door):
    """TCP and UDP listeners on one loopback port, which the file reads from port.txt: it tries
    the C socket type's connect and sendmsg, a name lookup, a server, and urllib (RFA914)."""
    tree = tree_with(tmp_path, NS / "ns_sends_to_loopback.py")
    with socket.create_server(("127.0.0.1", 0)) as tcp, socket.socket(type=socket.SOCK_DGRAM) as udp:
        port = tcp.getsockname()[1]
        udp.bind(("127.0.0.1", port))
        (tree / "port.txt").write_text(str(port))
        found, printed = run_door(door, tree)
        tcp.setblocking(False)
        udp.setblocking(False)
        with pytest.raises(BlockingIOError):
            tcp.accept()
        with pytest.raises(BlockingIOError):
            udp.recv(4096)
    assert found == door_expected(door, tree)
    if door == "cli":
        assert "went through" not in printed and "'tcp': 'PermissionError'" in printed


def digests(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@needs_kernel
@pytest.mark.usefixtures("warm_worker")
@pytest.mark.parametrize("door", DOORS)
def test_a_file_cannot_rewrite_the_cache_or_the_tree(tmp_path, door):
    """The neighbours' results are cached first; then the file would empty their findings in the
    cache and plant a file in the tree.  Nothing it could write changes, and a third run still
    reads every finding."""
    tree = tree_with(tmp_path)
    cache = tree / ".rfa_cache"
    option = f"--rfa-cache-dir={cache}" if door == "flake8" else f"--cache-dir={cache}"
    run_door(door, tree, option)
    shutil.copy(NS / "ns_rewrites_cache.py", tree)
    before = digests(tree)
    second, printed = run_door(door, tree, option)
    after = digests(tree)
    assert {name: after.get(name) for name in before} == before
    assert not (tree / "planted.py").exists()
    assert second == run_door(door, tree, option)[0] == door_expected(door, tree)
    if door == "cli":
        assert "forged 0 cached results, planted a file: False" in printed


# --- with namespaces and without: the seccomp filter ----------------------------------------------

#: Runs a command in a new user namespace (root there) that may create no user namespace in turn.
WITHOUT_USER_NAMESPACES = ["unshare", "--user", "--map-root-user", "sh", "-c",
                           'echo 0 > /proc/sys/user/max_user_namespaces && exec "$@"', "sh"]


def _simulation_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    check = subprocess.run([*WITHOUT_USER_NAMESPACES, "unshare", "--user", "true"], capture_output=True,
                           text=True)
    return check.returncode != 0 and "No space left on device" in check.stderr


SIMULATION = _simulation_works()
SIMULATION_MISSING = "no user namespace to simulate a kernel that refuses them"
needs_simulation = pytest.mark.skipif(not SIMULATION, reason=SIMULATION_MISSING)
#: How a run is started under each isolation: as it is, or where the kernel refuses namespaces.
UNDER = {"namespaces": [], "processes only": WITHOUT_USER_NAMESPACES}


def lint_under(isolation: str, door: str, tree: Path, *options: str) -> tuple[set, str]:
    """:func:`run_door` under ``isolation`` (one of :data:`UNDER`), skipped where it cannot be had."""
    if isolation == "namespaces" and not KERNEL.full:
        pytest.skip(f"isolation here: {KERNEL.describe()}")
    if isolation == "processes only" and not SIMULATION:
        pytest.skip(SIMULATION_MISSING)
    return run_door(door, tree, *options, prefix=UNDER[isolation])


@pytest.mark.usefixtures("warm_worker")
@pytest.mark.parametrize("isolation", UNDER)
@pytest.mark.parametrize("door", DOORS)
def test_kill_minus_one_reaches_no_process(tmp_path, door, isolation):
    """``kill(-1, SIGSTOP)`` then ``SIGKILL``: without a PID namespace, every process of the user.
    Refused, the model builds and the run ends with every finding.  (The file sends no real
    signal beyond its PID namespace, should the filter be missing: ``pidns.txt`` names ours.)"""
    tree = tree_with(tmp_path, NS / "ns_kills_everyone.py")
    (tree / "pidns.txt").write_text(os.readlink("/proc/self/ns/pid"))
    found, _ = lint_under(isolation, door, tree)
    assert found == door_expected(door, tree)


@pytest.mark.usefixtures("warm_worker")
@pytest.mark.parametrize("isolation", UNDER)
@pytest.mark.parametrize("door", DOORS)
def test_nothing_reaches_a_unix_socket_of_the_file_system(tmp_path, door, isolation):
    """Stream and datagram listeners on paths outside the tree, which Landlock does not guard
    (as the Docker daemon's socket or a session bus): the file connects, sends, sends through a
    datagram pair, and starts a program that connects."""
    tree = tree_with(tmp_path, NS / "ns_connects_to_unix_sockets.py")
    paths = [str(tmp_path / "stream"), str(tmp_path / "datagram")]
    stream, datagram = socket.socket(socket.AF_UNIX), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    with stream, datagram:
        stream.bind(paths[0])
        stream.listen()
        datagram.bind(paths[1])
        (tree / "sockets.txt").write_text(" ".join(paths))
        found, printed = lint_under(isolation, door, tree)
        stream.setblocking(False)
        datagram.setblocking(False)
        with pytest.raises(BlockingIOError):
            stream.accept()
        with pytest.raises(BlockingIOError):
            datagram.recv(4096)
    assert found == door_expected(door, tree)
    if door == "cli":
        assert "went through" not in printed and "'stream': 'PermissionError" in printed


# --- where the kernel refuses ---------------------------------------------------------------------

def door_without_user_namespaces(door: str, tree: Path, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run([*WITHOUT_USER_NAMESPACES, *door_command(door, *options)], cwd=tree,
                          capture_output=True, text=True, timeout=600, env=door_env(tree, door))


FALLBACK = "processes only + seccomp (unshare: No space left on device)"


@needs_simulation
@pytest.mark.parametrize("door", DOORS)
def test_without_user_namespaces_the_run_says_so_once_and_still_lints(tmp_path, door):
    """Once per run: flake8 ``-j2`` lints in two worker processes, each of which runs models
    (four files), the CLI in threads of one."""
    tree = tree_with(tmp_path, victims=4)
    proc = door_without_user_namespaces(door, tree)  # flake8 with -j2
    assert proc.stderr.count("rfa-lint: isolation:") == 1, proc.stderr
    assert f"rfa-lint: isolation: {FALLBACK}: model code runs as you" in proc.stderr
    if door == "flake8":
        rows = (line.rsplit(":", 2) for line in proc.stdout.split())
        assert {(Path(path).name, int(row), code) for path, row, code in rows} == door_expected(door, tree)
    else:
        assert proc.returncode == 1 and proc.stdout.count('"code": "RFA101"') == 4


@needs_simulation
@pytest.mark.parametrize("door", DOORS)
def test_isolation_required_refuses_to_run_model_code_without_it(tmp_path, door):
    tree = tree_with(tmp_path, victims=1)
    option = "--rfa-isolation=required" if door == "flake8" else "--isolation=required"
    proc = door_without_user_namespaces(door, tree, option)
    assert proc.returncode == 2, proc.stderr
    assert f'isolation = "required", but the kernel refuses it: {FALLBACK}' in proc.stderr
    assert "RFA1" not in proc.stdout  # refused before any file was linted


@needs_kernel
@needs_simulation
@pytest.mark.parametrize("door", DOORS)
def test_a_result_cached_under_one_isolation_is_no_hit_under_another(tmp_path, door):
    """A model whose library writes beside it builds under processes only and fails under
    Landlock (RFA903): the run with the kernel's isolation must not read the result cached
    without it, nor the other way round.  Both runs use the same cache and settings."""
    tree = tree_with(tmp_path, NS / "ns_writes_beside_itself.py", victims=1)
    under_landlock = door_expected(door, tree)
    lines = (NS / "ns_writes_beside_itself.py").read_text().splitlines()
    line = {name: next(n for n, text in enumerate(lines, 1) if name in text)
            for name in ("class WritesBesideItself", "self.conv4 =", "self.conv5 =")}
    built = {f for f in under_landlock if f[0] != "ns_writes_beside_itself.py"} | {
        ("ns_writes_beside_itself.py", line["class WritesBesideItself"], "RFA110"),
        ("ns_writes_beside_itself.py", line["self.conv4 ="], "RFA102"),
        ("ns_writes_beside_itself.py", line["self.conv5 ="], "RFA101")}
    assert lint_under("processes only", door, tree)[0] == built
    assert lint_under("namespaces", door, tree)[0] == under_landlock
    assert lint_under("processes only", door, tree)[0] == built


def test_show_settings_says_which_isolation_is_in_force(tmp_path):
    command = [sys.executable, "-m", "rfa_lint", ".", "--show-settings"]
    shown = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600).stdout
    assert f"# isolation: {KERNEL.describe()}\n" in shown
    if KERNEL.full:
        assert "# isolation: namespaces (user, pid, net, ipc, mount) + landlock + seccomp\n" in shown
    if SIMULATION:
        refused = subprocess.run([*WITHOUT_USER_NAMESPACES, *command], cwd=tmp_path, capture_output=True,
                                 text=True, timeout=600).stdout
        assert f"# isolation: {FALLBACK}\n" in refused
    asked = subprocess.run([*command, "--isolation", "processes"], cwd=tmp_path, capture_output=True,
                           text=True, timeout=600).stdout
    assert "# isolation: processes only" in asked and 'isolation = "processes"' in asked


# --- as a plain user ------------------------------------------------------------------------------

PLAIN_USER = "rfa-lint-plain"
#: What a sandbox child does before user code runs, and what it then sees, as a plain user.
AS_A_CHILD = textwrap.dedent("""
    import importlib.util, os, shutil, socket, sys, tempfile
    spec = importlib.util.spec_from_file_location("isolation", sys.argv[1])
    isolation = sys.modules["isolation"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(isolation)
    print(isolation.probe().describe())
    work = tempfile.mkdtemp()
    isolation.enter_namespaces()
    if os.fork() == 0:
        isolation.confine(work)
        isolation.restrict_calls()
        seen = [os.getpid(), os.getppid(), sum(name.isdigit() for name in os.listdir("/proc"))]
        attempts = [lambda: open(os.path.join(work, "mine"), "w").close(),
                    lambda: open(os.path.join(os.path.dirname(work), "not-mine"), "w").close(),
                    lambda: socket.socket(socket.AF_UNIX).close(), lambda: os.kill(-1, 0)]
        for attempt in attempts:
            try:
                attempt()
                seen.append("done")
            except PermissionError:
                seen.append("refused")
        print(seen, flush=True)
        os._exit(0)
    os.wait()
    shutil.rmtree(work)
""")


@pytest.fixture
def plain_user():
    if os.geteuid() != 0 or shutil.which("useradd") is None or shutil.which("runuser") is None:
        pytest.skip("making a plain user takes root")
    made = subprocess.run(["useradd", "--system", "--no-create-home", PLAIN_USER],
                          capture_output=True).returncode == 0
    try:
        yield PLAIN_USER
    finally:
        if made:
            subprocess.run(["userdel", PLAIN_USER], capture_output=True)


def test_a_plain_user_gets_the_same_isolation(plain_user):
    """Sessions and CI run as root; users do not.  The probe and a child's confinement and
    filter, as one: it writes its work folder only, makes no Unix socket, signals no one."""
    python = shutil.which("python3", path="/usr/bin:/bin") or sys.executable
    # a copy the user may read: the checkout may lie in a folder only root can enter (a clone in
    # a 0700 temporary folder), as may pytest's own temporary folders
    readable = Path(tempfile.mkdtemp(prefix="rfa-lint-plain-", dir="/tmp"))
    try:
        readable.chmod(0o755)
        module = shutil.copy(isolation.__file__, readable / "isolation.py")
        os.chmod(module, 0o644)
        run = subprocess.run(["runuser", "-u", plain_user, "--", python, "-c", AS_A_CHILD, str(module)],
                             capture_output=True, text=True, timeout=600, cwd="/")
    finally:
        shutil.rmtree(readable, ignore_errors=True)
    assert run.returncode == 0, run.stderr
    described, seen = run.stdout.splitlines()
    assert described == KERNEL.describe()
    if KERNEL.full:
        assert seen == "[1, 0, 1, 'done', 'refused', 'refused', 'refused']"
