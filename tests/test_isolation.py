"""The kernel between model code and the user: real processes, both front doors, no mocks.

Each attack of the third audit is a fixture in fixtures/hostile/ns/ (and a module planted in the
shared temporary folder), linted through flake8 and the CLI beside good files: nothing planted
runs, nothing outlives the run, nothing reaches a loopback listener, no neighbour loses a
finding, the tree and the cache stay as they were, nothing freezes.  Where the kernel refuses
namespaces (simulated honestly: the run starts inside a user namespace whose
``max_user_namespaces`` is 0, a limit the kernel keeps per user namespace), the run says so and
still lints, and ``isolation = "required"`` exits 2 before any model code runs.
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


# --- where the kernel refuses ---------------------------------------------------------------------

#: Runs a command in a new user namespace (root there) that may create no user namespace in turn.
WITHOUT_USER_NAMESPACES = ["unshare", "--user", "--map-root-user", "sh", "-c",
                           'echo 0 > /proc/sys/user/max_user_namespaces && exec "$@"', "sh"]


def _simulation_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    check = subprocess.run([*WITHOUT_USER_NAMESPACES, "unshare", "--user", "true"], capture_output=True,
                           text=True)
    return check.returncode != 0 and "No space left on device" in check.stderr


needs_simulation = pytest.mark.skipif(not _simulation_works(),
                                      reason="no user namespace to simulate a kernel that refuses them")


def door_without_user_namespaces(door: str, tree: Path, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run([*WITHOUT_USER_NAMESPACES, *door_command(door, *options)], cwd=tree,
                          capture_output=True, text=True, timeout=600, env=door_env(tree, door))


@needs_simulation
@pytest.mark.parametrize("door", DOORS)
def test_without_user_namespaces_the_run_says_so_and_still_lints(tmp_path, door):
    tree = tree_with(tmp_path, victims=1)
    proc = door_without_user_namespaces(door, tree)
    assert "rfa-lint: isolation: processes only (unshare: No space left on device)" in proc.stderr
    expected = {(line, code) for _, line, code in door_expected(door, tree)}
    if door == "flake8":
        rows = (line.rsplit(":", 2) for line in proc.stdout.split())
        assert {(int(row), code) for _, row, code in rows} == expected
    else:
        assert proc.returncode == 1 and '"code": "RFA101"' in proc.stdout


@needs_simulation
@pytest.mark.parametrize("door", DOORS)
def test_isolation_required_refuses_to_run_model_code_without_it(tmp_path, door):
    tree = tree_with(tmp_path, victims=1)
    option = "--rfa-isolation=required" if door == "flake8" else "--isolation=required"
    proc = door_without_user_namespaces(door, tree, option)
    assert proc.returncode == 2, proc.stderr
    assert 'isolation = "required", but the kernel refuses it: processes only' in proc.stderr
    assert "RFA1" not in proc.stdout  # refused before any file was linted


def test_show_settings_says_which_isolation_is_in_force(tmp_path):
    command = [sys.executable, "-m", "rfa_lint", ".", "--show-settings"]
    shown = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600).stdout
    assert f"# isolation: {KERNEL.describe()}\n" in shown
    if KERNEL.full:
        assert "# isolation: namespaces (user, pid, net, ipc, mount) + landlock\n" in shown
    if _simulation_works():
        refused = subprocess.run([*WITHOUT_USER_NAMESPACES, *command], cwd=tmp_path, capture_output=True,
                                 text=True, timeout=600).stdout
        assert "# isolation: processes only (unshare: No space left on device)\n" in refused


# --- as a plain user ------------------------------------------------------------------------------

PLAIN_USER = "rfa-lint-plain"
#: What a sandbox child does before user code runs, and what it then sees, as a plain user.
AS_A_CHILD = textwrap.dedent("""
    import importlib.util, os, shutil, sys, tempfile
    spec = importlib.util.spec_from_file_location("isolation", sys.argv[1])
    isolation = sys.modules["isolation"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(isolation)
    print(isolation.probe().describe())
    work = tempfile.mkdtemp()
    isolation.enter_namespaces()
    if os.fork() == 0:
        isolation.confine(work)
        seen = [os.getpid(), os.getppid(), sum(name.isdigit() for name in os.listdir("/proc"))]
        for path in (os.path.join(work, "mine"), os.path.join(os.path.dirname(work), "not-mine")):
            try:
                open(path, "w").close()
                seen.append("written")
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
    """Sessions and CI run as root; users do not.  The probe and a child's confinement, as one."""
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
        assert seen == "[1, 0, 1, 'written', 'refused']"
