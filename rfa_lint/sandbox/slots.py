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
import time
from pathlib import Path
from typing import Iterator

POLL_SECONDS = 0.05


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
    """Hold one of ``count`` slots (default: the CPU count) for the duration of the block."""
    count = count or os.cpu_count() or 1
    folder = folder or slot_folder()
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
        time.sleep(POLL_SECONDS)
