"""Hostile and broken model files never break a lint run (real child processes, no mocks).

Each case gets exactly its diagnostic (one that would hang, its time limit's RFA906); a whole-folder run
through flake8 and through the CLI still gives every other file its findings; and the linted
tree is byte-for-byte unchanged afterwards.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from doors import DOORS, TIMEOUT, door_expected, run_door
from expectations import FIXTURES, expectation, fixture_files

from rfa_lint.lint import lint_file
from rfa_lint.settings import options_from

HOSTILE = fixture_files("hostile")
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


@pytest.mark.parametrize("path", HOSTILE, ids=lambda p: p.name)
def test_each_case_gets_exactly_its_diagnostic(path):
    """A case that would run for ever gets its RFA906, which only the time limit gives: that the
    limit holds is shown by the finding, never by a clock (the suite's own time varies with the
    machine's load)."""
    exp = expectation(path)
    findings = lint_file(str(path), options_from({"res": exp.res, "timeout": exp.timeout or 60}))
    assert {(f.line, f.code) for f in findings} == exp.findings, [f.text for f in findings]


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
