"""The project passes its own linters: flake8 (pycodestyle, pyflakes, and rfa-lint's plugin)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_flake8_passes_on_the_project() -> None:
    # --rfa-no-exec: our own code defines no model worth building; --rfa-no-cache: no .rfa_cache here
    run = subprocess.run([sys.executable, "-m", "flake8", "--rfa-no-exec", "--rfa-no-cache",
                          "rfa_lint", "tests", "benchmarks", "examples"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert (run.returncode, run.stdout, run.stderr) == (0, "", "")
