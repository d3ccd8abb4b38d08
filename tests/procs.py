"""Processes as /proc shows them, for the tests about what runs, what dies and what is reaped."""

from __future__ import annotations

import os
import time
from pathlib import Path


def state(pid: int) -> str | None:
    """The process's state letter (``Z`` a zombie), None when there is no such process."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return None


def alive(pid: int) -> bool:
    """Whether a process runs (a zombie is dead)."""
    return state(pid) not in (None, "Z")


def gone(pid: int, seconds: float = 60) -> bool:
    """Whether ``pid`` is dead (or a zombie) within ``seconds``: an eventual, not a timing."""
    deadline = time.monotonic() + seconds
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not alive(pid)


def parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
    except OSError:
        return None


def children(pid: int) -> set[int]:
    return {child for child in (int(name) for name in os.listdir("/proc") if name.isdigit())
            if parent(child) == pid}


def zombie_children(pid: int) -> set[int]:
    """The children of ``pid`` that ended and that it has not reaped."""
    return {child for child in children(pid) if state(child) == "Z"}


def survivors(marker: str) -> list[int]:
    """Live processes whose command line holds ``marker``."""
    found = []
    for name in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{name}/cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline and alive(int(name)):
            found.append(int(name))
    return found
