"""The project passes its own checks: flake8 (pycodestyle, pyflakes, and rfa-lint's plugin), mypy and
ruff, each over the scope pyproject.toml configures."""

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


def test_mypy_passes_on_its_configured_modules(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "mypy", "--no-error-summary", "--cache-dir", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert (run.returncode, run.stdout, run.stderr) == (0, "", "")


def test_ruff_passes_on_its_configured_files() -> None:
    run = subprocess.run([sys.executable, "-m", "ruff", "check", "--quiet", "--no-cache"], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert (run.returncode, run.stdout, run.stderr) == (0, "", "")
