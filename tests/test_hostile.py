"""Hostile and broken model files never break a lint run (real child processes, no mocks).

Each case gets exactly its diagnostic, within its time limit plus a margin; a whole-folder run
through flake8 and through the CLI still gives every other file its findings; and the linted
tree is byte-for-byte unchanged afterwards.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from expectations import FIXTURES, expectation, fixture_files

from rfa_lint.lint import lint_file, options_from

HOSTILE = fixture_files("hostile")
TIMEOUT = 8  # the hanging fixture's limit; every other case finishes long before it
pytestmark = pytest.mark.usefixtures("warm_worker")  # one framework import per module, not per case


def tree_digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def hostile_tree(tmp_path):
    """The hostile fixtures plus one good model file, copied to a folder of their own."""
    tree = tmp_path / "tree"
    tree.mkdir()
    for path in [*HOSTILE, FIXTURES / "lint" / "chain.py"]:
        shutil.copy(path, tree / path.name)
    return tree


def expected_in(folder: Path) -> set[tuple[str, int, str]]:
    return {(p.name, line, code) for p in folder.glob("*.py") for line, code in expectation(p).findings}


@pytest.mark.parametrize("path", HOSTILE, ids=lambda p: p.name)
def test_each_case_gets_exactly_its_diagnostic(path):
    """A case that would run for ever gets its RFA906, which only the time limit gives: that the
    limit holds is shown by the finding, never by a clock (the suite's own time varies with the
    machine's load)."""
    exp = expectation(path)
    findings = lint_file(str(path), options_from({"res": exp.res, "timeout": exp.timeout or 60}))
    assert {(f.line, f.code) for f in findings} == exp.findings, [f.text for f in findings]


Findings = set[tuple[str, int, str]]


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


def run_door(door: str, folder: Path, *options: str, tmp: Path | None = None) -> tuple[Findings, str]:
    """Lint ``folder`` through a front door: its (file name, line, code) findings, and all it
    printed.  Its temporary folder (see :func:`door_env`) must hold nothing of the run's afterwards."""
    env = door_env(folder, door, tmp)
    proc = subprocess.run(door_command(door, *options), cwd=folder, capture_output=True, text=True,
                          timeout=600, env=env)
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


DOORS = ["flake8", "cli"]


@pytest.mark.parametrize("door", DOORS)
def test_a_run_over_the_hostile_folder_keeps_every_finding(hostile_tree, door):
    before = tree_digest(hostile_tree)
    found, printed = run_door(door, hostile_tree)
    assert found == door_expected(door, hostile_tree)
    assert "noise" not in printed  # the child's output never reaches the lint output
    assert tree_digest(hostile_tree) == before


@pytest.mark.integration
def test_fifty_files_ten_hostile(tmp_path):
    good = FIXTURES / "lint" / "chain.py"
    for i in range(40):
        shutil.copy(good, tmp_path / f"good_{i:02}.py")
    hostile = [p for p in HOSTILE if any(code.startswith("RFA9") for _, code in expectation(p).findings)]
    for path in hostile:
        shutil.copy(path, tmp_path / path.name)
    proc = subprocess.run(
        [sys.executable, "-m", "rfa_lint", ".", "--res", "16", "--timeout", str(TIMEOUT), "--format", "json",
         "--select", "RFA"],
        cwd=tmp_path, capture_output=True, text=True, timeout=1800,
    )
    rows = json.loads(proc.stdout)["findings"]
    per_good = {(r["path"], r["code"]) for r in rows if r["path"].startswith("good_")}
    assert len(per_good) == 40 * 3  # RFA110, RFA102, RFA101 in each good file
    assert {Path(r["path"]).name for r in rows if r["code"].startswith("RFA9")} == {p.name for p in hostile}
