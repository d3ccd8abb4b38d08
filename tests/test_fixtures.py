"""Every fixture model file through the real pipeline, flake8 and the CLI: exact (line, code) sets.

Each fixture states its resolution and the codes each line must raise (see expectations.py).
Missing and extra findings both fail.  Both front doors select every code (``RFA``), the
"model not analysed" ones included, to see the same findings as the pipeline.
fixtures/discovery/ holds the shapes of real repositories' model files (star and relative
imports, unannotated and registered factories, weights that download, keras.applications).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from expectations import FIXTURES, expectation, fixture_files

from rfa_lint.lint import lint_file
from rfa_lint.settings import options_from

LINT_FIXTURES = fixture_files("lint") + sorted((FIXTURES / "discovery").rglob("*.py"))
pytestmark = pytest.mark.usefixtures("warm_worker")  # one framework import per module, not per file


def _id(path: Path) -> str:
    return str(path.relative_to(FIXTURES))


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("path", LINT_FIXTURES, ids=_id)
def test_pipeline(path):
    res, expected = expectation(path).res, expectation(path).findings
    findings = lint_file(str(path), options_from({"res": res}), noqa=True)
    assert {(f.line, f.code) for f in findings} == expected, [f.text for f in findings]


@pytest.mark.parametrize("path", LINT_FIXTURES, ids=_id)
def test_flake8(path):
    res, expected = expectation(path).res, expectation(path).findings
    proc = run("flake8", "--select=RFA", f"--rfa-res={res}", "--format=%(row)d:%(code)s", path.name,
               cwd=path.parent)
    assert proc.returncode == (1 if expected else 0), proc.stderr
    assert {(int(row), code) for row, code in (x.split(":") for x in proc.stdout.split())} == expected


@pytest.mark.parametrize("path", LINT_FIXTURES, ids=_id)
def test_cli(path):
    res, expected = expectation(path).res, expectation(path).findings
    proc = run("rfa_lint", "--res", res, "--select", "RFA", "--format", "json", "-q", path.name,
               cwd=path.parent)
    assert proc.returncode == (1 if expected else 0), proc.stderr
    assert {(row["line"], row["code"]) for row in json.loads(proc.stdout)["findings"]} == expected
