"""Shared by the ``bench_lint_*`` scripts: time commands the same way on both sides of a ratio."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

PYTHON = sys.executable


def seconds(command: list[str], **kwargs) -> float:
    """Wall-clock seconds of one run of ``command`` (output captured, never printed)."""
    start = time.perf_counter()
    subprocess.run(command, capture_output=True, **kwargs)
    return time.perf_counter() - start


def median_seconds(command: list[str], runs: int, **kwargs) -> float:
    return statistics.median(seconds(command, **kwargs) for _ in range(runs))


def python(code: str, *args: str) -> list[str]:
    """A command running ``code`` with ``args`` as ``sys.argv[1:]``."""
    return [PYTHON, "-c", code, *args]


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"
