"""What makes runs fast, observed from outside (no timings: the benchmarks show those).

A ``sitecustomize`` probe on PYTHONPATH (which the sandbox passes on to its processes) logs every
Python process that starts, every fork, and every first ``import torch`` (a finder first in
``sys.meta_path``), each with its pid.  A cold run imports torch once, in the fork server, and
forks one child per file; a re-run of unchanged files starts no process and imports no framework.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest
from expectations import FIXTURES

from rfa_lint.lint import lint_file
from rfa_lint.settings import options_from
from rfa_lint.sandbox import SERVERS
from rfa_lint.sandbox.slots import child_slot

PROBE = """
import os, sys

def _pid():  # as the run sees it: a sandbox child is PID 1 of a namespace of its own, and NSpid
    # starts with its pid in the namespace of the /proc it forked under (the run's)
    with open("/proc/self/status") as status:
        return next((int(line.split()[1]) for line in status if line.startswith("NSpid:")), os.getpid())


def _note(*words):
    with open({log!r}, "a") as log:
        log.write(" ".join(map(str, (_pid(), *words))) + "\\n")

with open("/proc/self/cmdline") as cmdline:
    _note("start", os.getppid(), *cmdline.read().split("\\0")[1:4])  # -P -m module
_parent = [0]  # noted before each fork: a child's getppid() is 1 once its parent has exited
os.register_at_fork(before=lambda: _parent.__setitem__(0, _pid()),
                    after_in_child=lambda: _note("fork", _parent[0]))


class _TorchWatch:  # first in sys.meta_path: asked about a module only while it is not imported

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name == "torch":
            _note("torch")


sys.meta_path.insert(0, _TorchWatch)
"""


class Probe:
    def __init__(self, folder: Path) -> None:
        folder.mkdir()
        self.log = folder / "events.log"
        (folder / "sitecustomize.py").write_text(PROBE.format(log=str(self.log)))
        self.env = {**os.environ, "PYTHONPATH": str(folder)}

    def events(self) -> list[list[str]]:
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        self.log.unlink(missing_ok=True)
        return [line.split() for line in lines]


@pytest.fixture
def probe(tmp_path):
    return Probe(tmp_path / "probe")


@pytest.fixture
def models(tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    for name in ("a", "b", "c"):
        shutil.copy(FIXTURES / "lint" / "chain.py", folder / f"{name}.py")
    shutil.copy(FIXTURES / "lint" / "no_model.py", folder / "plain.py")
    return folder


def lint(folder: Path, probe: Probe, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rfa_lint", ".", "--res", "16", "--format", "json", "-j", "2", *args],
        cwd=folder, env=probe.env, capture_output=True, text=True, timeout=600,
    )


def test_cold_run_imports_torch_once_and_forks_a_child_per_file(models, probe, tmp_path):
    proc = lint(models, probe, "--cache-dir", str(tmp_path / "cache"))
    assert {(Path(r["path"]).name, r["code"]) for r in json.loads(proc.stdout)["findings"]} == {
        (f"{name}.py", code) for name in "abc" for code in ("RFA101", "RFA102", "RFA110")}
    events = probe.events()
    started = {pid: words[2:] for pid, kind, *words in events if kind == "start"}
    forked_by = {pid: words[0] for pid, kind, *words in events if kind == "fork"}

    def command(pid: str) -> list[str]:
        """What started the process, or the process it was forked from (the worker is forked
        by the process that starts it, which exits at once)."""
        return started[pid] if pid in started else command(forked_by[pid])

    importers = [pid for pid, kind, *_ in events if kind == "torch"]
    assert len(importers) == 1
    # torch is imported once, by the run's fork server or by the user's background worker
    assert {"rfa_lint.sandbox.server", "rfa_lint.sandbox.worker"} & set(command(importers[0]))
    # one keeper per model file, none for plain.py, forked by the importer; each keeper forks
    # that file's child once
    forks = Counter(forked_by.values())
    keepers = [pid for pid, parent in forked_by.items() if parent == importers[0]]
    assert len(keepers) == 3 and [forks[keeper] for keeper in keepers] == [1, 1, 1]


def test_unchanged_rerun_starts_no_process_and_imports_no_framework(models, probe, tmp_path):
    cache = ["--cache-dir", str(tmp_path / "cache")]
    first = lint(models, probe, *cache)
    probe.events()
    second = lint(models, probe, *cache)
    assert json.loads(second.stdout) == json.loads(first.stdout)
    events = probe.events()
    assert [kind for _, kind, *_ in events] == ["start"]  # the CLI itself, nothing else
    assert events[0][3:5] == ["-m", "rfa_lint"]


def test_flake8_rerun_hits_the_cache(models, probe, tmp_path):
    command = [sys.executable, "-m", "flake8", "--select=RFA", "--rfa-res=16", "-j2",
               f"--rfa-cache-dir={tmp_path / 'cache'}", "."]
    first = subprocess.run(command, cwd=models, env=probe.env, capture_output=True, text=True, timeout=600)
    probe.events()
    second = subprocess.run(command, cwd=models, env=probe.env, capture_output=True, text=True, timeout=600)
    assert sorted(second.stdout.splitlines()) == sorted(first.stdout.splitlines()) != []
    events = probe.events()
    assert not [e for e in events if e[1] == "torch"]
    assert not [e for e in events if e[1] == "start" and "rfa_lint.sandbox.server" in e]


def test_model_free_files_never_reach_the_sandbox(tmp_path, probe):
    for name in ("one", "two"):
        shutil.copy(FIXTURES / "lint" / "no_model.py", tmp_path / f"{name}.py")
    proc = lint(tmp_path, probe, "--no-cache")
    assert proc.returncode == 0, proc.stderr
    assert [kind for _, kind, *_ in probe.events()] == ["start"]


def test_a_dead_fork_server_is_replaced():
    options = options_from({"res": 16})
    path = str(FIXTURES / "lint" / "chain.py")
    expected = lint_file(path, options)
    server = SERVERS.server_for("torch", ["torch"], {})
    server.proc.kill()
    server.proc.wait()
    assert lint_file(path, options) == expected
    assert SERVERS.server_for("torch", ["torch"], {}) is not server


def test_children_wait_for_a_free_slot(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from pathlib import Path\n"
         "from rfa_lint.sandbox.slots import child_slot\n"
         f"with child_slot(1, Path({str(tmp_path)!r})):\n    print('held', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout.readline() == "held\n"
    acquired = threading.Event()

    def take() -> None:
        with child_slot(1, tmp_path):
            acquired.set()

    waiter = threading.Thread(target=take)
    waiter.start()
    assert not acquired.wait(1)  # the only slot belongs to the other process
    holder.stdin.close()
    holder.wait()
    waiter.join(30)
    assert acquired.is_set()
