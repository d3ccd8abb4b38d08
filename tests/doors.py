"""Lint runs through both front doors, flake8 and the ``rfa-lint`` command, as real processes:
for the tests about what a whole run reports and leaves behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Sequence

from expectations import expectation

TIMEOUT = 8  # the hanging fixture's limit; every other case finishes long before it
DOORS = ["flake8", "cli"]
Findings = set[tuple[str, int, str]]


def rfa_lint(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rfa_lint", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def flake8(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flake8", "--select=RFA", *args], cwd=cwd, input=stdin,
                          capture_output=True, text=True, timeout=600)


def expected_in(folder: Path) -> set[tuple[str, int, str]]:
    return {(p.name, line, code) for p in folder.glob("*.py") for line, code in expectation(p).findings}


def door_command(door: str, *options: str) -> list[str]:
    """The command that lints the working folder through a front door (``flake8`` or ``cli``),
    every code selected, at 16px with the hanging fixture's limit (``options`` come last, and win)."""
    if door == "flake8":
        return [sys.executable, "-m", "flake8", "--select=RFA,E999", "--rfa-res=16",
                f"--rfa-timeout={TIMEOUT}", "-j2", "--format=%(path)s:%(row)d:%(code)s", *options, "."]
    return [sys.executable, "-m", "rfa_lint", ".", "--res", "16", "--timeout", str(TIMEOUT),
            "--format", "json", "--select", "RFA", *options]


def door_env(folder: Path, door: str, tmp: Path | None = None) -> dict[str, str]:
    """The environment of a run over ``folder``: a temporary folder of its own, beside it, unless
    ``tmp`` names one that several runs share (and with it the worker they start: its key
    holds the folder)."""
    tmp = tmp or folder.parent / f"tmp-{door}"
    tmp.mkdir(exist_ok=True)
    return {**os.environ, "TMPDIR": str(tmp)}


def run_door(door: str, folder: Path, *options: str, tmp: Path | None = None,
             prefix: Sequence[str] = ()) -> tuple[Findings, str]:
    """Lint ``folder`` through a front door: its (file name, line, code) findings, and all it
    printed.  Its temporary folder (see :func:`door_env`) must hold nothing of the run's afterwards.
    ``prefix`` is a command the door runs under (``unshare ...``)."""
    env = door_env(folder, door, tmp)
    proc = subprocess.run([*prefix, *door_command(door, *options)], cwd=folder, capture_output=True,
                          text=True, timeout=600, env=env)
    assert run_folders_in(Path(env["TMPDIR"])) == [], "a run left its working folders behind"
    if door == "flake8":
        rows = (line.rsplit(":", 2) for line in proc.stdout.split())
        found = {(Path(path).name, int(row), code) for path, row, code in rows}
    else:
        found = {(Path(r["path"]).name, r["line"], r["code"]) for r in json.loads(proc.stdout)["findings"]}
    return found, proc.stdout + proc.stderr


def run_folders_in(tmp: Path) -> list[str]:
    """What rfa-lint left in a temporary folder, but the user's shared slot folder (torch keeps
    caches of its own there)."""
    return sorted(name for name in os.listdir(tmp)
                  if name.startswith("rfa-lint-") and name != f"rfa-lint-slots-{os.getuid()}")


def door_expected(door: str, folder: Path) -> Findings:
    """A tree's expected findings as a door reports them: flake8 reports a syntax error itself
    (E999), and then runs no plugin on that file."""
    expected = expected_in(folder)
    if door == "flake8":
        return {f if f[2] != "RFA909" else (f[0], f[1], "E999") for f in expected}
    return expected
