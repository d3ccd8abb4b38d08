"""Run user model code in a child process with limits, and get plain graph data back.

What it protects against: user code that raises, exits, hangs, allocates without bound,
crashes the interpreter, or prints floods of text: the child is killed (with everything it
started) at the wall-clock limit, its address space is capped, its output never reaches the
lint output, and the linter reports one clear diagnostic per model and goes on.  The child runs
in a fresh temporary working directory with a scrubbed environment and writes no bytecode.

Where the time goes: importing torch or tensorflow costs 1-2 s, analysing a file a fraction of
that.  So each framework gets a warm fork server per linter process (:mod:`.server`, driven by
:mod:`.warm`) that imports it once and forks a fresh child per file, falling back to a plain
``python -m rfa_lint.sandbox.child`` when no server can run.  Across all linter processes of a
user, at most one child per CPU runs at a time (:mod:`.slots`).

What it does not protect against: it is isolation for robustness, not a security boundary.
The child runs as the same user, with the same file-system and network access as the linter;
code that sets out to do harm can.  Use ``--no-exec`` where model code must never run.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from rfa_lint.sandbox import warm
from rfa_lint.sandbox.server import kill_group
from rfa_lint.sandbox.slots import child_slot

#: Environment variables a child keeps; everything else (tokens, credentials, ...) is dropped.
KEPT_ENV = ("PATH", "HOME", "USER", "LANG", "LANGUAGE", "TMPDIR", "VIRTUAL_ENV", "CONDA_PREFIX",
            "PYTHONPATH", "LD_LIBRARY_PATH", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "SYSTEMROOT")
CHILD_ENV = {
    "PYTHONDONTWRITEBYTECODE": "1",  # no __pycache__ written into the user's tree
    "PYTHONHASHSEED": "0",
    "PYTHONUNBUFFERED": "1",
    "OMP_NUM_THREADS": "1",
    "CUDA_VISIBLE_DEVICES": "",
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "TF_ENABLE_ONEDNN_OPTS": "0",
    "KERAS_BACKEND": "tensorflow",
}
OUTPUT_TAIL_BYTES = 2000


@dataclass(frozen=True)
class Limits:
    timeout: float = 60.0  # seconds of wall-clock time per child
    memory_mb: int = 6144  # address space of the child (the framework import alone maps ~3.5 GB)


@dataclass(frozen=True)
class ModelOutcome:
    """``status``: ok, needs-arguments, build-failed, trace-failed, timeout, memory-limit, crashed."""

    status: str
    graph: dict | None = None
    detail: str = ""


@dataclass
class FileOutcome:
    """Per-model outcomes, or a file-level failure that stopped all of them."""

    models: dict[str, ModelOutcome] = field(default_factory=dict)
    failure: ModelOutcome | None = None  # import-failed, framework-missing, timeout, crashed, ...
    instantiated: set[str] = field(default_factory=set)


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in KEPT_ENV or k.startswith("LC_")}
    env.update(CHILD_ENV)
    return env


class _Tail(threading.Thread):
    """Drains a pipe, keeping only its last bytes: floods of output cost no memory or disk."""

    def __init__(self, stream) -> None:
        super().__init__(daemon=True)
        self.stream, self.chunks = stream, collections.deque(maxlen=8)

    def run(self) -> None:
        for chunk in iter(lambda: self.stream.read1(65536), b""):
            self.chunks.append(chunk)

    def text(self) -> str:
        return b"".join(self.chunks)[-OUTPUT_TAIL_BYTES:].decode("utf-8", "replace")


def _exit_reason(returncode: int, timed_out: bool, stderr: str, limits: Limits) -> ModelOutcome:
    if timed_out:
        return ModelOutcome("timeout", detail=f"no result within {limits.timeout:g}s")
    if "bad_alloc" in stderr or "out of memory" in stderr.lower():
        return ModelOutcome("memory-limit", detail=f"ran out of memory (limit {limits.memory_mb} MiB)")
    if returncode < 0:
        name = signal.Signals(-returncode).name
        return ModelOutcome("crashed", detail=f"killed by {name}{_last_line(stderr)}")
    return ModelOutcome("crashed", detail=f"exited with code {returncode}{_last_line(stderr)}")


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return f": {lines[-1].strip()[:200]}" if lines else ""


def _run_child(request: dict, limits: Limits) -> tuple[list[dict], ModelOutcome | None]:
    """One child run: its JSON events, and why it ended early if it did.

    The child is forked from the framework's warm server when there is one, else started fresh;
    either way it holds a slot of the machine-wide cap while it runs.
    """
    with tempfile.TemporaryDirectory(prefix="rfa-lint-") as work:
        request_path, result_path = Path(work, "request.json"), Path(work, "result.jsonl")
        request_path.write_text(json.dumps(request), encoding="utf-8")
        args = (work, str(request_path), str(result_path))
        try:  # before taking a slot: starting a server takes one of its own
            start = warm.server_for(request["framework"], request["frameworks"], child_env()).start
        except warm.ServerLost:
            start = _PlainChild
        with child_slot():
            try:
                result_path.write_bytes(b"")
                returncode, timed_out, stderr = _watch(start(*args), limits)
            except warm.ServerLost:  # the server died under this child: run it afresh
                result_path.write_bytes(b"")
                returncode, timed_out, stderr = _watch(_PlainChild(*args), limits)
        events = [json.loads(line) for line in result_path.read_text(encoding="utf-8").splitlines()
                  if line.endswith("}")]
    finished = any(e["event"] in ("done", "import-failed", "framework-missing") for e in events)
    if finished:
        return events, None
    return events, _exit_reason(returncode, timed_out, stderr, limits)


class _PlainChild(subprocess.Popen):
    """A fresh ``python -m rfa_lint.sandbox.child`` in its work folder and its own session."""

    def __init__(self, work: str, request_path: str, result_path: str) -> None:
        super().__init__(
            [sys.executable, "-m", "rfa_lint.sandbox.child", request_path, result_path],
            cwd=work, env=child_env(), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
        )

    def kill_group(self) -> None:
        kill_group(self.pid)
        self.wait()


def _watch(proc: _PlainChild | warm.WarmChild, limits: Limits) -> tuple[int, bool, str]:
    """Drain the child's output until it ends or its time is up, then kill its process group.

    Returns its exit code, whether it timed out, and the tail of its stderr.
    """
    tails = [_Tail(proc.stdout), _Tail(proc.stderr)]
    for tail in tails:
        tail.start()
    timed_out = False
    try:
        proc.wait(timeout=limits.timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
    proc.kill_group()  # also whatever it started and left running
    for tail in tails:
        tail.join(timeout=5)
    return proc.returncode or 0, timed_out, tails[1].text()


def analyse_models(
    path: str, source: str, framework: str, candidates: Iterable[dict], limits: Limits,
    frameworks: Iterable[str] = (),
) -> FileOutcome:
    """Build and trace each candidate of one file in child processes.

    ``frameworks`` are all the frameworks the file imports (loaded in a safe order).  When a
    child dies while building one model, that model gets the reason and a new child carries on
    with the models after it, so one hostile class cannot hide the others' findings.
    """
    outcome, remaining = FileOutcome(), list(candidates)
    while remaining:
        request = {"path": path, "source": source, "framework": framework,
                   "frameworks": sorted(set(frameworks) | {framework}),
                   "candidates": remaining, "memory_mb": limits.memory_mb}
        events, ended_early = _run_child(request, limits)
        _collect(events, outcome)
        if outcome.failure or not ended_early:
            return outcome
        started = [e["model"] for e in events if e["event"] == "start"]
        if not any(e["event"] == "imported" for e in events) or not started:
            outcome.failure = ended_early
            return outcome
        outcome.models[started[-1]] = ended_early
        names = [c["name"] for c in remaining]
        remaining = remaining[names.index(started[-1]) + 1:]
    return outcome


def _collect(events: list[dict[str, Any]], outcome: FileOutcome) -> None:
    for event in events:
        kind = event["event"]
        if kind == "model":
            outcome.models[event["model"]] = ModelOutcome(
                event["status"], event.get("graph"), event.get("detail", "")
            )
        elif kind == "import-failed":
            outcome.failure = ModelOutcome(event["status"], detail=event["detail"])
        elif kind == "framework-missing":
            outcome.failure = ModelOutcome("framework-missing", detail=event["detail"])
        elif kind == "done":
            outcome.instantiated.update(event["instantiated"])
