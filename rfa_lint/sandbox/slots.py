"""A machine-wide cap on concurrent sandbox children, shared by every linter process of a user.

``flake8 -j 16`` runs 16 worker processes, each of which would start its own children; on a
2-core machine 16 framework imports at once only thrash.  A child (or a fork server while it
imports its framework) first takes one of N slots: an exclusive ``fcntl.flock`` on one of N
files in a per-user folder.  The kernel drops a lock when its holder exits, however it exits, so
a crashed linter never leaves a slot taken.

The folder is ``rfa-lint-slots-UID`` in ``$XDG_RUNTIME_DIR`` (private to the user) or else in the
shared temporary folder, where its name is predictable: another user could create it first and
then hold or swap the slot files.  So it is used only when it is ours and no one else can write
to it; otherwise this process (and the workers it forks) gets a private folder of its own: the
cap then holds per run instead of per user, and the lint goes on.

The same folder notes what a run has said (:func:`once_per_run`): flake8 ``-j`` lints in
several processes, and a run's notice is said once, not once per process.

No wait is without an end.  A holder may be stuck (a run suspended with Ctrl-Z holds its slots
for as long as it stays suspended), so a wait ends by a deadline, and the child then runs
without a slot, saying so on stderr (once per process): the cap is there for speed, and a
file's findings never depend on it.  The deadline is the one the thread's run set
(:func:`waits_end`: a file waits no longer than its models may run), else
:data:`WAIT_SECONDS`; a run that is cancelled stops waiting at once (:class:`Cancelled`).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import functools
import os
import shutil
import stat
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterator

POLL_SECONDS = 0.05
#: How long a wait lasts that no run bounds (:func:`waits_end`).
WAIT_SECONDS = 300.0


class Cancelled(Exception):
    """The run that waited was cancelled (its file has a newer text to analyse)."""


_WAITS = threading.local()  # the (deadline, cancel event) of the run this thread is doing


@contextlib.contextmanager
def waits_end(deadline: float, cancel: threading.Event | None = None) -> Iterator[None]:
    """Every slot wait of this thread in the block ends by ``deadline`` (``time.monotonic``), and
    at once when ``cancel`` is set: the fork server's start, made on behalf of a file, included.
    Nested, the earlier deadline holds, and the outer block's ``cancel`` unless given."""
    saved = getattr(_WAITS, "limit", None)
    if saved is not None:
        deadline, cancel = min(deadline, saved[0]), cancel or saved[1]
    _WAITS.limit = deadline, cancel
    try:
        yield
    finally:
        _WAITS.limit = saved


@functools.lru_cache(maxsize=None)
def slot_folder() -> Path:
    """The shared slot folder when it is safe to use, else a private one (decided once)."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = runtime if runtime and os.path.isdir(runtime) else tempfile.gettempdir()
    folder = Path(base, f"rfa-lint-slots-{os.getuid()}")
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        if _private(folder):
            return folder
    except OSError:
        pass
    print(f"rfa-lint: {folder} is not a private folder of this user; the cap on concurrent "
          "model children applies to this run only", file=sys.stderr)
    return _private_folder()


def _private(folder: Path) -> bool:
    """A real folder (not a link), owned by this user, that no group or other user can write."""
    info = os.lstat(folder)
    return (stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid()
            and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH))


def _private_folder() -> Path:
    owner = os.getpid()
    folder = tempfile.mkdtemp(prefix=f"rfa-lint-{owner}-slots-")  # a killed run's is removed later
    atexit.register(lambda: os.getpid() == owner and shutil.rmtree(folder, ignore_errors=True))
    return Path(folder)


@contextlib.contextmanager
def child_slot(count: int | None = None, folder: Path | None = None) -> Iterator[int]:
    """Hold one of ``count`` slots (default: the CPU count) for the duration of the block; none
    (-1) when none came free by the thread's deadline.  :class:`Cancelled` when its run was
    cancelled meanwhile (see :func:`waits_end`)."""
    count = count or os.cpu_count() or 1
    folder = folder or slot_folder()
    start = time.monotonic()
    deadline, cancel = getattr(_WAITS, "limit", None) or (start + WAIT_SECONDS, None)
    while True:
        for index in range(count):
            try:
                fd = os.open(folder / f"slot-{index}", os.O_RDWR | os.O_CREAT, 0o600)
            except OSError:  # the folder vanished (a tmp cleaner): run uncapped, never fail the lint
                yield -1
                return
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            try:
                yield index
            finally:
                os.close(fd)  # closing the file releases its lock
            return
        if cancel is not None and cancel.is_set():
            raise Cancelled("a newer text of the file came")
        left = deadline - time.monotonic()
        if left <= 0:
            _say_uncapped(folder, count, time.monotonic() - start)
            yield -1
            return
        time.sleep(min(POLL_SECONDS, left))


_SAID: list[bool] = []  # whether this process said that a wait ran out


def _say_uncapped(folder: Path, count: int, waited: float) -> None:
    """Once per process: the first wait that ran out, and why the run goes on anyway."""
    if _SAID:
        return
    _SAID.append(True)
    print(f"rfa-lint: all {count} child slots in {folder} stayed held for {waited:.0f}s (another rfa-lint "
          "run is stopped or slow); running without a slot", file=sys.stderr)


def once_per_run(notice: str) -> bool:
    """Whether this process is the first of its run to say ``notice``.  A run is its first
    process (the parent :mod:`multiprocessing` names in a worker of flake8 ``-j``, else this
    process), known by its pid and start time: the first to make the file ``NOTICE-PID-START`` in
    the slot folder says it, and removes the notes of runs that ended.  Where there is no such
    folder or no ``/proc``, each process says it."""
    import multiprocessing  # flake8 has it loaded; a run says a notice rarely

    parent = multiprocessing.parent_process()
    first = parent.pid if parent is not None and parent.pid is not None else os.getpid()
    started = _start_time(first)
    if started is None:
        return True
    folder = slot_folder()
    try:
        os.close(os.open(folder / f"{notice}-{first}-{started}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        return False
    except OSError:
        return True
    for note in folder.glob(f"{notice}-*-*"):
        pid, _, start = note.name.removeprefix(f"{notice}-").partition("-")
        with contextlib.suppress(OSError, ValueError):
            if _start_time(int(pid)) != start:
                note.unlink()
    return True


def _start_time(pid: int) -> str | None:
    """When the process started (clock ticks after boot, from ``/proc``); None: no such process."""
    try:
        return Path(f"/proc/{pid}/stat").read_bytes().rpartition(b")")[2].split()[19].decode()
    except (OSError, IndexError):
        return None
