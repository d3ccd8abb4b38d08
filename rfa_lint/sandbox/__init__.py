"""Run user model code in a child process with limits, and get plain graph data back.

What it protects against: user code that raises, exits, hangs, allocates without bound,
crashes the interpreter, or prints floods of text: the child is killed (with everything it
started) when the model it is building runs out of time (each model, and the file's import,
gets the wall-clock limit of its own), its address space is capped, its output never reaches the
lint output, and the linter reports one clear diagnostic per model and goes on.  The child runs
in a fresh temporary working directory with a scrubbed environment and writes no bytecode, and
downloads nothing (:mod:`.offline`).

Where the time goes: importing torch or tensorflow costs 1-2 s, analysing a file a fraction of
that.  So each framework gets a warm fork server per linter process (:mod:`.server`, driven by
:mod:`.warm`) that imports it once and forks a fresh child per file, falling back to a plain
``python -m rfa_lint.sandbox.child`` when no server can run.  Across all linter processes of a
user, at most one child per CPU runs at a time (:mod:`.slots`).

What it does not protect against: it is isolation for robustness, not a security boundary.
The child runs as the same user, with the same file-system access as the linter; the network is
closed to its Python code only, not to C libraries or programs it starts.  Code that sets out to
do harm can.  Use ``--no-exec`` where model code must never run.
"""

from __future__ import annotations

import collections
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
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
    # the network is off in the child (:mod:`.offline`), and huggingface_hub would retry a refused
    # connection with back-off for some 20 s per file (timm's pretrained=True took 47 s); offline
    # it fails at once
    "HF_HUB_OFFLINE": "1",
}
OUTPUT_TAIL_BYTES = 2000


@dataclass(frozen=True)
class Limits:
    """What user code may use.  ``timeout``: seconds of wall-clock time per model, and for the
    file's import; a slow model spends its own time, never the next model's."""

    timeout: float = 60.0
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


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in KEPT_ENV or k.startswith("LC_")}
    env.update(CHILD_ENV)
    return env


def _exit_reason(returncode: int, timed_out: bool, stderr: str, limits: Limits) -> ModelOutcome:
    """Why a child ended without finishing.  Memory only on evidence of it: a C++ ``std::bad_alloc``
    or a Python ``MemoryError`` traceback (user code may well print "out of memory" and exit)."""
    if timed_out:
        return ModelOutcome("timeout", detail=f"no result within {limits.timeout:g}s")
    if "std::bad_alloc" in stderr or _last_line(stderr).startswith(": MemoryError"):
        return ModelOutcome("memory-limit", detail=f"ran out of memory (limit {limits.memory_mb} MiB)")
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:  # real-time signals have no name
            name = f"signal {-returncode}"
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
    models = [c["name"] for c in request["candidates"]]
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
                returncode, timed_out, stderr = _start_and_watch(start, args, models, limits)
            except warm.ServerLost:  # the server died under this child: run it afresh
                returncode, timed_out, stderr = _start_and_watch(_PlainChild, args, models, limits)
        events = parse_events(result_path, models)
    finished = any(e["event"] in ("done", "import-failed", "framework-missing") for e in events)
    if finished:
        return events, None
    return events, _exit_reason(returncode, timed_out, stderr, limits)


def _start_and_watch(start: Any, args: tuple[str, str, str], models: list[str],
                     limits: Limits) -> tuple[int, bool, str]:
    """Start a child on an empty result file, and watch it with a fresh budget."""
    result_path = Path(args[2])
    result_path.write_bytes(b"")
    return _watch(start(*args), _Budget(result_path, models, limits))


#: Each event the child sends, with the type of each field it must have.  The result file is
#: the user code's to write too (its path is no secret), and a killed child may leave half a line.
EVENT_FIELDS: dict[str, dict[str, type]] = {
    "imported": {},
    "start": {"model": str},
    "model": {"model": str, "status": str},
    "import-failed": {"status": str, "detail": str},
    "framework-missing": {"detail": str},
    "done": {},
}
STATUSES = {"model": {"ok", "not-a-model", "needs-arguments", "needs-inputs", "build-failed",
                      "download-blocked", "trace-failed", "memory-limit"},
            "import-failed": {"import-failed", "memory-limit"}}


def parse_events(result_path: Path, models: list[str]) -> list[dict[str, Any]]:
    """The well-formed events of a result file, in order; anything else is skipped, not trusted.

    ``models`` are the candidates asked for: an event about any other model is not the child's.
    """
    try:
        lines = result_path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:  # user code may delete it
        return []
    return [event for event in map(_event, lines) if event is not None and _well_formed(event, models)]


def _event(line: str) -> dict[str, Any] | None:
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) and event.get("event") in EVENT_FIELDS else None


def _well_formed(event: dict[str, Any], models: list[str]) -> bool:
    fields = EVENT_FIELDS[event["event"]]
    return (all(isinstance(event.get(key), type_) for key, type_ in fields.items())
            and ("model" not in fields or event["model"] in models)
            and ("status" not in fields or event["status"] in STATUSES[event["event"]])
            and (event.get("status") != "ok" or isinstance(event.get("graph"), dict))
            and isinstance(event.get("detail", ""), str))


PLAIN_CHILD = "import sys; from rfa_lint.sandbox.child import execute; execute(*sys.argv[1:3])"


class _PlainChild(subprocess.Popen):
    """A fresh Python running :func:`.child.execute` in its work folder and its own session.

    Not ``-m rfa_lint.sandbox.child``: this package imports that module already, and runpy's
    warning about it would end up in every crash report.
    """

    def __init__(self, work: str, request_path: str, result_path: str) -> None:
        super().__init__(
            [sys.executable, "-c", PLAIN_CHILD, request_path, result_path],
            cwd=work, env=child_env(), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
        )

    def finished(self, timeout: float = 0.0) -> bool:
        """Whether the child ended within ``timeout`` seconds, leaving it unreaped.

        An unreaped child (a zombie) keeps its pid, and with it its process group id, from being
        reused, so :meth:`kill_group` can never hit some other process's group.
        """
        deadline, delay = time.monotonic() + timeout, 0.001
        while os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
            if time.monotonic() >= deadline:
                return False
            time.sleep(min(delay, max(deadline - time.monotonic(), 0)))
            delay = min(delay * 2, POLL_SECONDS)
        return True

    def kill_group(self) -> None:
        """Kill the child's group (whatever it started and left running), then reap the child."""
        kill_group(self.pid)
        self.wait()


POLL_SECONDS = 0.05  # how often a running child is checked on while its pipes stay open
READ_BYTES = 65536
RESULT_BYTES_PER_LOOK = 1 << 20  # what one look at the result file reads at most (graphs are long)
START_LINE_BYTES = 4096  # an unfinished result line longer than this is no start event


class _Budget:
    """A child's time: one limit for the file's import, and one more each time the child announces
    a model (a new ``start`` event in the result file), so a model never spends another's time.

    Never past ``timeout x (models + 1)`` from the start: the result file is the user code's to
    write too, and forged announcements must not keep a hanging child alive.
    """

    def __init__(self, result_path: Path, models: list[str], limits: Limits) -> None:
        self.path, self.models, self.seconds = result_path, models, limits.timeout
        now = time.monotonic()
        self.deadline = now + self.seconds
        self.end = now + self.seconds * (len(models) + 1)
        self.offset, self.unfinished = 0, b""

    def left(self) -> float:
        """Seconds left for what the child is doing now (0 when its time is up)."""
        if self._announced():
            self.deadline = time.monotonic() + self.seconds
        return max(min(self.deadline, self.end) - time.monotonic(), 0.0)

    def _announced(self) -> bool:
        """Whether the result file gained a well-formed start event since the last look."""
        try:
            with open(self.path, "rb") as result:
                result.seek(self.offset)
                chunk = result.read(RESULT_BYTES_PER_LOOK)
        except OSError:  # user code may delete it
            return False
        self.offset += len(chunk)
        *lines, self.unfinished = (self.unfinished + chunk).split(b"\n")
        self.unfinished = self.unfinished[-START_LINE_BYTES:]  # a start line fits in what is kept
        return any(_is_start(line, self.models) for line in lines)


def _is_start(line: bytes, models: list[str]) -> bool:
    if len(line) > START_LINE_BYTES:  # a graph, or junk: not worth parsing
        return False
    event = _event(line.decode("utf-8", "replace"))
    return event is not None and event["event"] == "start" and _well_formed(event, models)


def _watch(proc: _PlainChild | warm.WarmChild, budget: _Budget) -> tuple[int, bool, str]:
    """Drain the child's output until it ends or its time is up, then kill its process group.

    Returns its exit code, whether it timed out, and the tail of its stderr.  The output is read
    here rather than by reader threads, and the pipes are closed before returning: a grandchild
    that left the group and holds them open must not keep a thread or an fd of ours alive.
    """
    tails = {proc.stdout: collections.deque(maxlen=8), proc.stderr: collections.deque(maxlen=8)}
    try:
        open_pipes = list(tails)
        while not proc.finished() and (left := budget.left()) > 0:
            wait = min(POLL_SECONDS, left)
            if not open_pipes:  # output closed: nothing to read while waiting for the end
                proc.finished(wait)
                continue
            for pipe in select.select(open_pipes, [], [], wait)[0]:
                if not _read_into(pipe, tails[pipe]):
                    open_pipes.remove(pipe)
        timed_out = not proc.finished()
        proc.kill_group()  # also whatever it started and left running
        for pipe in open_pipes:  # what the group wrote before it died; an escaped writer may go on
            os.set_blocking(pipe.fileno(), False)
            while _read_into(pipe, tails[pipe]):
                pass
    finally:
        for pipe in tails:
            pipe.close()
    stderr = b"".join(tails[proc.stderr])[-OUTPUT_TAIL_BYTES:].decode("utf-8", "replace")
    return proc.returncode or 0, timed_out, stderr


def _read_into(pipe, tail: collections.deque) -> bool:
    """Read what a pipe has into ``tail`` (only its last chunks are kept: floods cost no memory);
    False at its end, or when a non-blocking pipe has nothing more for now."""
    try:
        chunk = os.read(pipe.fileno(), READ_BYTES)
    except BlockingIOError:
        return False
    tail.append(chunk)
    return bool(chunk)


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
        remaining = _blame(events, ended_early, remaining, outcome)
    return outcome


def _blame(events: list[dict[str, Any]], ended_early: ModelOutcome, remaining: list[dict],
           outcome: FileOutcome) -> list[dict]:
    """Give why a child ended early to the model it was building, and return the models after it.

    A model whose result had come keeps it (the child may die between two models); a child that
    never got to a model fails the whole file.
    """
    starts = [i for i, e in enumerate(events) if e["event"] == "start"]
    if not any(e["event"] == "imported" for e in events) or not starts:
        outcome.failure = ended_early
        return []
    last = events[starts[-1]]["model"]
    if not any(e["event"] == "model" and e["model"] == last for e in events[starts[-1]:]):
        outcome.models[last] = ended_early
    names = [c["name"] for c in remaining]
    return remaining[names.index(last) + 1:]


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
