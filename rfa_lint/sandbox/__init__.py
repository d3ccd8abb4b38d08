"""Run user model code in a child process with limits, and get plain graph data back.

What it protects against: user code that raises, exits, hangs, allocates without bound,
crashes the interpreter, prints floods of text, signals the process that started it, or leaves
programs running: the child is killed, with everything it started (new sessions, process groups
and double-forked daemons included), when the model it is building runs out of time, its
address space is capped, its output never reaches the lint output, and the linter reports one
clear diagnostic per model and goes on.  The child runs in a fresh temporary working directory
(removed afterwards, and at the next run's start when a run was killed) with a scrubbed
environment, writes no bytecode, and downloads nothing (:mod:`.offline`).

Time: each model gets ``timeout`` seconds of wall-clock time, and the file's import another
``timeout``: a slow model spends its own time, never the next model's.  A file's models together
never get more than ``timeout x (models + 1)``, counted from its first child's start: that is
the most one file can take, however its children die and restart.  Ctrl-C ends a run at once,
killing the children that run.

Where the time goes: importing torch or tensorflow costs 1-2 s, analysing a file a fraction of
that.  So each framework gets a warm fork server per linter process (:mod:`.server`, driven by
:mod:`.warm`) that imports it once and forks a fresh process tree per file.  No file ever runs in
a child of the linter itself: its parent is a keeper process of its own, so a signal it sends its
parent never reaches the linter.  Across all linter processes of a user, at most one child per
CPU runs at a time (:mod:`.slots`).

Results come back on a pipe only that child holds (never a file another program could write
to), read as they arrive up to :data:`RESULT_BYTES`; each line is parsed on its own, and a line
that is not a well-formed event is skipped.

Where the kernel allows it, each child also runs in namespaces of its own under Landlock
(:mod:`.isolation`): it sees and signals none of the user's other processes, reaches no
network, and writes only its work folder.  Where the kernel refuses, the same tree runs without
them and the run says so: then it is isolation for robustness, not a security boundary (the
child runs as the same user, with the same file-system access, and the network is closed to its
Python code only).  Use ``--no-exec`` where model code must never run.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import hashlib
import json
import logging
import os
import re
import select
import shutil
import signal
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Iterable, Iterator, NamedTuple

from rfa_lint.limits import Limits
from rfa_lint.sandbox import isolation, warm
from rfa_lint.sandbox.slots import Cancelled, child_slot, slot_folder, waits_end
from rfa_lint.sandbox.status import Status

log = logging.getLogger(__name__)

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
class ModelOutcome:
    """What became of one model (or, as a file's ``failure``, of its import); ``detail`` says
    why, for any other status than ok."""

    status: Status
    graph: dict | None = None
    detail: str = ""


@dataclass
class FileOutcome:
    """Per-model outcomes, or a file-level failure that stopped all of them.

    ``clean``: every child of the file ended on its own, with code 0, after sending all its
    results and the complete list of the files it read.  A child that died, even once its
    results were all sent (killed, crashed in its
    last steps, out of time), leaves what it sent standing, but how it ended is the machine's
    doing: such an outcome is reported, never cached.
    """

    models: dict[str, ModelOutcome] = field(default_factory=dict)
    failure: ModelOutcome | None = None  # import-failed, framework-missing, timeout, crashed, ...
    clean: bool = True
    #: the files its children read (:mod:`.reads`): path -> version as first read, None when absent
    reads: dict[str, tuple[int, ...] | None] = field(default_factory=dict)


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in KEPT_ENV or k.startswith("LC_")}
    env.update(CHILD_ENV)
    return env


@dataclass(frozen=True)
class _Ending:
    """How a child's processes ended, as the watcher saw it."""

    returncode: int
    detail: str  # set when something else than the child's own exit ended it
    timed_out: bool
    flooded: bool
    stderr: str

    @property
    def clean(self) -> bool:
        """Exited on its own with code 0, in time, having sent no more than it may."""
        return self.returncode == 0 and not (self.detail or self.timed_out or self.flooded)


class _Run(NamedTuple):
    """One child's run: its events, why it ended before finishing if it did, and whether it
    ended cleanly (:attr:`_Ending.clean`, after finishing)."""

    events: list[dict]
    ended_early: ModelOutcome | None
    clean: bool


def _exit_reason(ending: _Ending, limits: Limits) -> ModelOutcome:
    """Why a child ended without finishing.  Memory only on evidence of it: a C++ ``std::bad_alloc``
    or a Python ``MemoryError`` traceback (user code may well print "out of memory" and exit)."""
    if ending.flooded:
        return ModelOutcome(Status.CRASHED, detail=f"sent more than {RESULT_BYTES >> 20} MiB of results")
    if ending.timed_out:
        return ModelOutcome(Status.TIMEOUT, detail=f"no result within {limits.timeout:g}s")
    stderr = ending.stderr
    if "std::bad_alloc" in stderr or _last_line(stderr).startswith(": MemoryError"):
        return ModelOutcome(Status.MEMORY_LIMIT, detail=f"ran out of memory (limit {limits.memory_mb} MiB)")
    if ending.detail:
        return ModelOutcome(Status.CRASHED, detail=f"{ending.detail}{_last_line(stderr)}")
    if ending.returncode < 0:
        try:
            name = signal.Signals(-ending.returncode).name
        except ValueError:  # real-time signals have no name
            name = f"signal {-ending.returncode}"
        return ModelOutcome(Status.CRASHED, detail=f"killed by {name}{_last_line(stderr)}")
    return ModelOutcome(Status.CRASHED, detail=f"exited with code {ending.returncode}{_last_line(stderr)}")


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return f": {lines[-1].strip()[:200]}" if lines else ""


def _run_child(request: dict, limits: Limits, budget: _Budget) -> _Run:
    """One child run, within the file's ``budget``; a wait for a slot ends with the file's time
    (the child then runs without one, :mod:`.slots`).

    On the user's worker when ``limits`` allow it: a request there that a newer text of the file
    supersedes runs again, on the worker but never superseding or superseded; a worker that is
    lost (missing, frozen, killed) is no fault of the file, which runs again on this process's
    own server.
    """
    with waits_end(budget.waits_end, _cancel_event()):
        return _run_somewhere(request, limits, budget)


def _run_somewhere(request: dict, limits: Limits, budget: _Budget) -> _Run:
    if limits.worker:
        try:
            try:
                return _run_on(request, limits, budget, shared=True, supersede=True)
            except warm.Superseded:
                return _run_on(request, limits, budget, shared=True, supersede=False)
        except warm.ServerLost as lost:
            log.info("%s: the worker could not run it (%s): running it on this process's own server",
                     request["path"], lost)
    return _run_on(request, limits, budget)


def _run_on(request: dict, limits: Limits, budget: _Budget, shared: bool = False,
            supersede: bool = False) -> _Run:
    """One child run on this process's server, or with ``shared`` on the worker (whose loss
    raises :class:`warm.ServerLost`, and a supersession :class:`warm.Superseded`).

    The child is forked by a fork server (:mod:`.warm`) and holds a slot of the machine-wide cap
    while it runs.  A server of this process that dies or freezes under it is replaced for the
    next child; this one's file gets the crash.
    """
    results = _Results([c["name"] for c in request["candidates"]])
    data = json.dumps(request).encode("utf-8")
    extra = {"seconds": budget.file_seconds, **_isolation_request(limits.isolation)}
    if supersede:
        extra.update(file=request["path"], text=hashlib.sha256(data).hexdigest())
    with _work_folder() as work, tempfile.TemporaryFile() as request_file:
        request_file.write(data)
        try:
            ending = _start_and_watch(request, work, request_file, budget, results, shared, extra)
        except warm.ServerLost as lost:
            if shared:
                raise
            log.info("%s: its fork server was lost (%s)", request["path"], lost)
            return _Run(results.events, ModelOutcome(Status.CRASHED, detail=str(lost)), False)
    if results.finished:
        return _Run(results.events, None, ending.clean and results.recorded)
    return _Run(results.events, _exit_reason(ending, limits), False)


def _start_and_watch(request: dict, work: str, request_file: BinaryIO, budget: _Budget,
                     results: _Results, shared: bool, extra: dict, retry: bool = True) -> _Ending:
    """Start the child on the server, and watch it.  A server of this process found dead or
    frozen when the child is to start is replaced once: the file is not to blame."""
    # the server before the slot: starting a server takes one of its own
    server = SERVERS.server_for(request["framework"], request["frameworks"], child_env(), shared)
    with child_slot():
        request_file.seek(0)
        try:
            child = server.start(work, request_file.fileno(), **extra)
        except warm.ServerLost:
            if shared or not retry:
                raise
        else:
            budget.child_started()
            ending = _watch(child, budget, results)
            if child.superseded:
                raise warm.Superseded(child.detail)
            return ending
    return _start_and_watch(request, work, request_file, budget, results, shared, extra, retry=False)


def _isolation_request(mode: str) -> dict[str, object]:
    """What a fork server's run request adds for this isolation (:class:`.server.Server`): the
    folders of this run's slots and of the user's workers stay hidden from the child."""
    from rfa_lint.sandbox import worker  # the user's worker: loaded when a run may use one

    in_force = isolation.for_run(mode)
    extra: dict[str, object] = {"filter": True} if in_force.seccomp else {}
    if not in_force.namespaces:
        log.debug("isolation %s: children run without namespaces (%s)", mode, in_force.describe())
        return extra
    return {**extra, "isolate": True,
            "hide": list(isolation.hidden_folders(slot_folder(), worker.folder_path()))}


@contextlib.contextmanager
def _work_folder() -> Iterator[str]:
    """A fresh working folder for one child, named after this process so that a later run can
    tell it from a live run's (:func:`_remove_stale_folders`), and removed with all it holds."""
    _remove_stale_folders()
    folder = tempfile.mkdtemp(prefix=f"{WORK_PREFIX}{os.getpid()}-")
    try:
        yield folder
    finally:
        _remove(folder)


WORK_PREFIX = "rfa-lint-"
WORK_FOLDER = re.compile(r"rfa-lint-(\d+)-.*")  # also the slot folders of a run (:mod:`.slots`)


@functools.cache
def _remove_stale_folders() -> None:
    """Remove the folders that killed runs of this user left in the temporary folder (once per
    process): only ours, only of processes that are gone."""
    base = tempfile.gettempdir()
    for name in os.listdir(base):
        match = WORK_FOLDER.fullmatch(name)
        path = os.path.join(base, name)
        try:
            ours = os.lstat(path).st_uid == os.getuid() and os.path.isdir(path) and not os.path.islink(path)
        except OSError:
            continue
        if match and ours and not _alive(int(match.group(1))):
            _remove(path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        pass
    return True


def _remove(folder: str) -> None:
    """Remove a child's folder, even one whose sub-folders user code made unwritable."""
    for root, dirs, _ in os.walk(folder):
        for name in dirs:
            path = os.path.join(root, name)
            with contextlib.suppress(OSError):
                if not os.path.islink(path):
                    os.chmod(path, 0o700)
    shutil.rmtree(folder, ignore_errors=True)


#: Each event the child sends, with the type of each field it must have.  The pipe is the user
#: code's to write too (it runs in that child), and a killed child may leave half a line.
EVENT_FIELDS: dict[str, dict[str, type]] = {
    "imported": {},
    "start": {"model": str},
    "model": {"model": str, "status": str},
    "import-failed": {"status": str, "detail": str},
    "framework-missing": {"detail": str},
    "done": {},
    "reads": {"files": list, "complete": bool},
}
#: The statuses each event may carry: a timeout or a crash only the sandbox decides, never a child.
STATUSES = {"model": frozenset({Status.OK, Status.NOT_A_MODEL, Status.NEEDS_ARGUMENTS, Status.NEEDS_INPUTS,
                                Status.BAD_DIRECTIVE,
                                Status.BUILD_FAILED, Status.DOWNLOAD_BLOCKED, Status.TRACE_FAILED,
                                Status.MEMORY_LIMIT}),
            "import-failed": frozenset({Status.IMPORT_FAILED, Status.MEMORY_LIMIT})}
#: The most a child may send on its result pipe (a big model's graph is a few MiB); past it the
#: child is killed and the model it was building gets the crash.
RESULT_BYTES = 64 << 20


class _Results:
    """The well-formed events of a child's result pipe, parsed line by line as they arrive.

    ``models`` are the candidates asked for: an event about any other model is not the child's.
    """

    def __init__(self, models: list[str]) -> None:
        self.models = models
        self.events: list[dict[str, Any]] = []
        self.size = 0
        self.unfinished: list[bytes] = []  # the pieces of the line still being received

    @property
    def full(self) -> bool:
        return self.size > RESULT_BYTES

    @property
    def recorded(self) -> bool:
        """Whether the child said, completely, which files it read (:mod:`.reads`)."""
        return any(e["event"] == "reads" and e["complete"] for e in self.events)

    @property
    def finished(self) -> bool:
        return any(e["event"] in ("done", "import-failed", "framework-missing") for e in self.events)

    def feed(self, chunk: bytes) -> bool:
        """Take the next bytes; True when they completed a start event."""
        self.size += len(chunk)
        *ends, rest = chunk.split(b"\n")
        started = False
        for end in ends:
            event = parse_event(b"".join([*self.unfinished, end]), self.models)
            self.unfinished = []
            if event is not None:
                self.events.append(event)
                started |= event["event"] == "start"
        if rest and not self.full:
            self.unfinished.append(rest)
        return started


def parse_event(line: bytes, models: list[str]) -> dict[str, Any] | None:
    """A well-formed event, or None: whatever else a line holds, it is skipped, not trusted (any
    failure to parse, a RecursionError on deep nesting included, is one bad line)."""
    try:
        event = json.loads(line.decode("utf-8", "replace"))
        return event if _well_formed(event, models) else None
    except Exception:
        return None


def _well_formed(event: Any, models: list[str]) -> bool:
    if not isinstance(event, dict) or event.get("event") not in EVENT_FIELDS:
        return False
    fields = EVENT_FIELDS[event["event"]]
    return (all(isinstance(event.get(key), type_) for key, type_ in fields.items())
            and ("model" not in fields or event["model"] in models)
            and ("status" not in fields or event["status"] in STATUSES[event["event"]])
            and (event.get("status") != Status.OK or isinstance(event.get("graph"), dict))
            and isinstance(event.get("detail", ""), str)
            and (event["event"] != "reads" or all(map(_file_read, event["files"]))))


def _file_read(item: Any) -> bool:
    """``[absolute path, [mtime, ctime, size, inode]]``, or ``[path, None]`` for an absent file."""
    path = item[0] if isinstance(item, list) and len(item) == 2 else None
    if not (isinstance(path, str) and os.path.isabs(path)):
        return False
    stamp = item[1]
    return stamp is None or (isinstance(stamp, list) and len(stamp) == 4
                             and all(type(v) is int and v >= 0 for v in stamp))


POLL_SECONDS = 0.05  # how often a running child is checked on while its pipes stay open
READ_BYTES = 65536


class _Budget:
    """A file's time: one limit for its import in each child, and one more each time a child
    announces a model (a start event), so a model never spends another's time; never past the
    file's budget (:meth:`Limits.file_seconds`), counted from its first child's start, so
    forged announcements buy a hanging child nothing."""

    def __init__(self, limits: Limits, models: int) -> None:
        self.seconds, self.file_seconds = limits.timeout, limits.file_seconds(models)
        self.end: float | None = None
        self.waits_end = time.monotonic() + self.file_seconds  # for a slot: no longer than it may run

    def child_started(self) -> None:
        if self.end is None:
            self.end = time.monotonic() + self.file_seconds
        self.model_started()

    def model_started(self) -> None:
        self.deadline = time.monotonic() + self.seconds

    def left(self) -> float:
        """Seconds left for what the child is doing now (0 when its time is up)."""
        end = self.deadline if self.end is None else min(self.deadline, self.end)
        return max(end - time.monotonic(), 0.0)

    @property
    def spent(self) -> bool:
        return self.end is not None and time.monotonic() >= self.end


def _watch(child: warm.Child, budget: _Budget, results: _Results) -> _Ending:
    """Read the child's output and results until its processes all ended, its time is up, it
    sent too much, or the run is interrupted; then kill them all.

    Only the tail of stdout and stderr is kept (floods cost no memory).  The pipes are read here,
    not by reader threads, and closed before returning.
    """
    tails: dict[BinaryIO, collections.deque[bytes]] = {
        child.stdout: collections.deque(maxlen=8), child.stderr: collections.deque(maxlen=8)}
    pipes = [child.stdout, child.stderr, child.results]
    interrupts, cancel = _interrupts(), _cancel_event()
    try:
        while not child.finished() and budget.left() > 0 and not results.full:
            if _interrupts() != interrupts:
                raise KeyboardInterrupt
            if cancel is not None and cancel.is_set():
                raise Cancelled("a newer text of the file came")
            for pipe in select.select(pipes, [], [], min(POLL_SECONDS, budget.left()))[0]:
                if not _read(pipe, tails, results, budget):
                    pipes.remove(pipe)
            if not pipes:  # all closed: nothing to read while waiting for the end
                child.finished(min(POLL_SECONDS, budget.left()))
        timed_out = not child.finished()
        child.kill()  # everything the file started, if anything is left
        for pipe in pipes:  # what they wrote before they died; an escaped writer may go on
            os.set_blocking(pipe.fileno(), False)
            while not results.full and _read(pipe, tails, results, budget):
                pass
    except BaseException:  # an interrupt, or a lost server: nothing the file started lives on
        with contextlib.suppress(warm.ServerLost):
            child.kill()
        raise
    finally:
        for pipe in (child.stdout, child.stderr, child.results):
            pipe.close()
    stderr = b"".join(tails[child.stderr])[-OUTPUT_TAIL_BYTES:].decode("utf-8", "replace")
    return _Ending(child.returncode or 0, child.detail, timed_out and not results.full, results.full,
                   stderr)


def _read(pipe: BinaryIO, tails: dict, results: _Results, budget: _Budget) -> bool:
    """Read what a pipe has: output into its tail, results into ``results`` (a start event restarts
    the budget).  False at its end, or when a non-blocking pipe has nothing more for now."""
    try:
        chunk = os.read(pipe.fileno(), READ_BYTES)
    except BlockingIOError:
        return False
    if pipe in tails:
        tails[pipe].append(chunk)
    elif results.feed(chunk):
        budget.model_started()
    return bool(chunk)


_CANCEL = threading.local()  # the event that cancels the run this thread is doing


@contextlib.contextmanager
def cancelled_by(event: threading.Event) -> Iterator[None]:
    """Runs of this thread in the block end when ``event`` is set: the child running is killed,
    a wait for a slot given up, and :class:`Cancelled` raised (the language server's analysis of
    a text that a newer one replaced; nothing of it is reported or cached)."""
    saved = getattr(_CANCEL, "event", None)
    _CANCEL.event = event
    try:
        yield
    finally:
        _CANCEL.event = saved


def _cancel_event() -> threading.Event | None:
    return getattr(_CANCEL, "event", None)


_INTERRUPTS = [0]  # Ctrl-Cs seen by this process


def _interrupts() -> int:
    return _INTERRUPTS[0]


def _count_interrupt(signum: int, frame: Any) -> None:
    """Python's own Ctrl-C handler, which also tells the watchers in other threads (each kills
    its children and raises KeyboardInterrupt in its thread, so the run ends at once)."""
    _INTERRUPTS[0] += 1
    signal.default_int_handler(signum, frame)


def count_interrupts() -> None:
    """Make Ctrl-C end a run at once, in every thread: called where a program starts (the CLI,
    the flake8 plugin's first file), never on import.  Only in the main thread, and only over
    Python's own handler: a host that installed its own keeps it."""
    if threading.current_thread() is threading.main_thread() and (
            signal.getsignal(signal.SIGINT) is signal.default_int_handler):
        signal.signal(signal.SIGINT, _count_interrupt)


def _connect_worker(framework: str, frameworks: tuple[str, ...], env: dict[str, str]) -> warm.Connection:
    from rfa_lint.sandbox import worker  # the user's worker: loaded when a run may use one

    return worker.connect(framework, frameworks, env)


#: This process's fork servers and worker connections (:class:`warm.Servers`).
SERVERS = warm.Servers(_connect_worker)


def analyse_models(
    path: str, source: str, framework: str, candidates: Iterable[dict], limits: Limits,
    frameworks: Iterable[str] = (),
) -> FileOutcome:
    """Build and trace each candidate of one file in child processes.

    ``frameworks`` are all the frameworks the file imports (loaded in a safe order).  When a
    child dies while building one model, that model gets the reason and a new child carries on
    with the models after it, so one hostile class cannot hide the others' findings; all of
    them within the file's budget (:meth:`Limits.file_seconds`).
    """
    outcome, remaining = FileOutcome(), list(candidates)
    budget = _Budget(limits, len(remaining))
    while remaining:
        if budget.spent:
            spent = ModelOutcome(Status.TIMEOUT,
                                 detail=f"the file's budget of {budget.file_seconds:g}s ran out")
            outcome.models.update(dict.fromkeys((c["name"] for c in remaining), spent))
            return outcome
        request = {"path": path, "source": source, "framework": framework,
                   "frameworks": sorted(set(frameworks) | {framework}),
                   "candidates": remaining, "memory_mb": limits.memory_mb}
        run = _run_child(request, limits, budget)
        _collect(run.events, outcome)
        outcome.clean &= run.clean
        if outcome.failure or not run.ended_early:
            return outcome
        remaining = _blame(run.events, run.ended_early, remaining, outcome)
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
                Status(event["status"]), event.get("graph"), event.get("detail", "")
            )
        elif kind == "import-failed":
            outcome.failure = ModelOutcome(Status(event["status"]), detail=event["detail"])
        elif kind == "framework-missing":
            outcome.failure = ModelOutcome(Status.FRAMEWORK_MISSING, detail=event["detail"])
        elif kind == "reads":
            for path, stamp in event["files"]:
                outcome.reads.setdefault(path, tuple(stamp) if stamp else None)
