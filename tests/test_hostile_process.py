"""Files that go after the linter's processes, through both front doors (real processes, no mocks).

Each case lints a tree of its own through flake8 and the CLI (the helpers of doors.py):
the other files keep every finding, nothing a file started outlives the run, and no run, not
even a killed one, leaves its working folders in the temporary folder.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from expectations import FIXTURES
from doors import DOORS, door_command, door_env, door_expected, run_door, run_folders_in
from procs import alive, gone, survivors

from rfa_lint import files

HOSTILE = FIXTURES / "hostile"
CHAIN = FIXTURES / "lint" / "chain.py"


def tree_of(tmp_path: Path, *paths: Path, goods: int = 0) -> Path:
    """A folder with ``paths`` and ``goods`` copies of a good model file named after them (the
    hostile files run first, and are alive while the good ones run)."""
    tree = tmp_path / "tree"
    tree.mkdir()
    for path in paths:
        shutil.copy(path, tree / path.name)
    for index in range(goods):
        shutil.copy(CHAIN, tree / f"victim_{index}.py")
    return tree


@pytest.mark.parametrize("door", DOORS)
def test_a_daemon_cannot_forge_other_files_results(tmp_path, door):
    """It would write "Chain is no model" into every result file under the temporary folder,
    for 30 s: the six good files after it keep their 3 findings each."""
    tree = tree_of(tmp_path, HOSTILE / "proc_daemon_forges.py", goods=6)
    found, _ = run_door(door, tree)
    assert found == door_expected(door, tree)
    assert len({f for f in found if f[0].startswith("victim_")}) == 6 * 3


@pytest.mark.parametrize("door", DOORS)
def test_nothing_a_file_started_outlives_the_run(tmp_path, door):
    """A double-forked daemon and a child in a process group of its own: both gone at the end."""
    tree = tree_of(tmp_path, HOSTILE / "proc_double_fork.py")
    try:
        found, _ = run_door(door, tree)
        assert found == door_expected(door, tree)
        assert survivors(str(tree)) == []
    finally:
        for pid in survivors(str(tree)):
            os.kill(pid, signal.SIGKILL)


def test_fifos_and_devices_are_skipped(tmp_path):
    """A FIFO would block the run, a link to /dev/zero read until memory runs out: only regular
    files are read, named or found.  CLI only: flake8 reads every file itself, before any
    plugin runs, and blocks on the FIFO."""
    tree = tree_of(tmp_path, CHAIN)
    expected = door_expected("cli", tree)  # before the FIFO: reading it would block the test too
    os.mkfifo(tree / "x.py")
    (tree / "zero.py").symlink_to("/dev/zero")
    assert files.python_files([tree]) == [tree / "chain.py"]
    assert run_door("cli", tree)[0] == expected
    proc = subprocess.run([sys.executable, "-m", "rfa_lint", "x.py", "zero.py", "chain.py", "--res", "16"],
                          cwd=tree, capture_output=True, text=True, timeout=600, env=door_env(tree, "cli"))
    assert "x.py: skipped, not a regular file (a FIFO)" in proc.stderr
    assert "zero.py: skipped, not a regular file (a device)" in proc.stderr


def test_no_exec_runs_no_program_and_git_never_runs_a_hook(tmp_path, monkeypatch):
    """A repository's core.fsmonitor is a program git would start: never; and when the run must
    start no program at all, git is not even asked."""
    hook_ran = tmp_path / "hook-ran"
    hook = tmp_path / "fsmonitor.sh"
    hook.write_text(f"#!/bin/sh\ntouch {hook_ran}\nexit 1\n")
    hook.chmod(0o755)
    tree = tree_of(tmp_path, CHAIN)
    subprocess.run(["git", "init", "-q"], cwd=tree, check=True)
    subprocess.run(["git", "config", "core.fsmonitor", str(hook)], cwd=tree, check=True)
    (tree / ".gitignore").write_text("ignored.py\n")
    shutil.copy(CHAIN, tree / "ignored.py")
    assert files.python_files([tree]) == [tree / "chain.py"]
    assert not hook_ran.exists()

    def no_program(*args, **kwargs):
        raise AssertionError(f"started {args[0]}")

    monkeypatch.setattr(subprocess, "run", no_program)
    monkeypatch.setattr(subprocess, "Popen", no_program)
    # without git, nothing git would ignore is left out
    assert files.python_files([tree], run_git=False) == [tree / "chain.py", tree / "ignored.py"]


HANGS = """
import os
from torch import nn


class Hangs(nn.Module):
    def __init__(self):
        super().__init__()
        with open({started!r}, "w") as started:
            started.write(str(os.getpid()))
        while True:
            pass

    def forward(self, x):
        return x
"""


def start_hanging_run(tmp_path: Path, door: str) -> tuple[subprocess.Popen, int]:
    """A run over a good file and one whose model hangs (with a limit of 10 minutes), in a session
    of its own as a terminal would start it: the run, and the pid of the child that hangs, once
    it hangs."""
    tree = tree_of(tmp_path, CHAIN)
    started = tmp_path / "started"
    (tree / "hangs.py").write_text(HANGS.format(started=str(started)))
    # the hanging file writes its pid outside its work folder: the kernel's isolation refuses that
    options = ["--rfa-timeout=600", "--rfa-isolation=processes"] if door == "flake8" else \
        ["--timeout=600", "--isolation=processes"]
    proc = subprocess.Popen(door_command(door, *options), cwd=tree, env=door_env(tree, door),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            preexec_fn=_interruptible)
    while not started.exists() or not started.read_text():
        assert proc.poll() is None, "the run ended before its model hanged"
        time.sleep(0.05)
    return proc, int(started.read_text())


def _interruptible() -> None:
    """SIGINT at its default, as a terminal starts a command: a test run started in the
    background of a script inherits it ignored, and Python then never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("door", DOORS)
def test_ctrl_c_ends_the_run_at_once_and_kills_its_children(tmp_path, door):
    """Ctrl-C (SIGINT to the terminal's process group) ends a run whose model would hang for
    10 minutes; the child that hangs dies with it."""
    proc, hanging = start_hanging_run(tmp_path, door)
    try:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=120)
        assert gone(hanging)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if alive(hanging):
            os.kill(hanging, signal.SIGKILL)


def test_a_killed_runs_folders_are_removed_by_the_next_run(tmp_path):
    """A run killed outright cannot clean up: its server kills what it ran, and the next run
    removes the working folder it left (the temporary folder is the same for both)."""
    proc, hanging = start_hanging_run(tmp_path, "cli")
    tmp = Path(door_env(tmp_path / "tree", "cli")["TMPDIR"])
    try:
        proc.kill()
        proc.wait(timeout=60)
        assert gone(hanging)
        assert run_folders_in(tmp) != []
    finally:
        if alive(hanging):
            os.kill(hanging, signal.SIGKILL)
    (tmp_path / "tree" / "hangs.py").unlink()
    found, _ = run_door("cli", tmp_path / "tree")  # which checks that the folder is empty after it
    assert found == door_expected("cli", tmp_path / "tree")
