"""A machine-wide cap on concurrent sandbox children, shared by every linter process of a user.

``flake8 -j 16`` runs 16 worker processes, each of which would start its own children; on a
2-core machine 16 framework imports at once only thrash.  A child (or a fork server while it
imports its framework) first takes one of N slots: an exclusive ``fcntl.flock`` on one of N
files in a per-user temporary folder.  The kernel drops a lock when its holder exits, however
it exits, so a crashed linter never leaves a slot taken.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import time
from pathlib import Path
from typing import Iterator

POLL_SECONDS = 0.05


def slot_folder() -> Path:
    return Path(tempfile.gettempdir(), f"rfa-lint-slots-{os.getuid()}")


@contextlib.contextmanager
def child_slot(count: int | None = None, folder: Path | None = None) -> Iterator[int]:
    """Hold one of ``count`` slots (default: the CPU count) for the duration of the block."""
    count = count or os.cpu_count() or 1
    folder = folder or slot_folder()
    folder.mkdir(mode=0o700, exist_ok=True)
    while True:
        for index in range(count):
            fd = os.open(folder / f"slot-{index}", os.O_RDWR | os.O_CREAT, 0o600)
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
