"""Every rule produced by a real file, through both front doors; every rule's examples run.

fixtures/rules/CODE.py (or CODE/CODE.py, where the code needs settings of its own in a
``pyproject.toml`` beside it) produces CODE.  The findings it must give are written in it, one
comment each, bugbear style: ``# RFA101 14:22 unproductive layer ...`` (line, 1-based column as
flake8 prints it, and the whole message); missing and extra findings both fail.  One flake8 and
one rfa-lint run cover the folder (``--select RFA``: the "not analysed" codes too).

RFA912 (the framework is not installed) needs an environment without torch: its file is linted
in one run whose ``PYTHONPATH`` puts a ``torch`` that cannot be imported first.  RFA999 is
rfa-lint's own failure, which no input produces unless rfa-lint has a bug: a unit test makes
``analyse_files`` fail the way a bug would.

Each rule's documented Example, linted with the options its first line states
(``# rfa-lint --res 16``), produces the rule; its Use instead does not.  All the snippets go
in one folder (each in its own project, its options in its ``pyproject.toml``) and one run.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rfa_lint import rules
from rfa_lint.cache import Cache
from rfa_lint.lint import analyse_files, lint_file
from rfa_lint.settings import options_from

FOLDER = Path(__file__).resolve().parents[1] / "fixtures" / "rules"
pytestmark = pytest.mark.usefixtures("warm_worker")  # one framework import per module, not per run
EXPECTED = re.compile(r"^# (?P<code>RFA\d{3}) (?P<line>\d+):(?P<col>\d+) (?P<message>.+)$", re.MULTILINE)
NO_TORCH = "RFA912"  # the fixture linted without torch
#: Codes no file in fixtures/rules produces, each with the test that produces it instead.
ELSEWHERE = {"RFA999": "test_an_internal_error_is_rfa999_for_that_file_only"}
#: The rules whose Example is prose, not a snippet to lint (an encoding, an environment, a bug,
#: a graph of 2^18 paths); the rules' fixtures cover them.
PROSE_EXAMPLES = {"RFA910", "RFA912", "RFA916", "RFA917", "RFA999"}


def run(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=900, env=env)


def expected_in(root: Path) -> set[tuple[str, int, int, str, str]]:
    """(file, line, column, code, message) as the fixtures under ``root`` write them; ``{here}``
    stands for the folder (a traceback names the file by its absolute path)."""
    found = set()
    for path in sorted(root.rglob("*.py")):
        text = path.read_bytes().decode("utf-8", "replace")
        name = path.relative_to(root).as_posix()
        found |= {(name, int(m["line"]), int(m["col"]), m["code"], m["message"].replace("{here}", str(root)))
                  for m in EXPECTED.finditer(text)}
    return found


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory) -> Path:
    """A copy of the folder: linting writes nothing next to the repository's files."""
    root = tmp_path_factory.mktemp("rules") / "rules"
    shutil.copytree(FOLDER, root)
    return root


def test_every_code_has_a_fixture_or_a_named_test():
    codes = {path.stem for path in FOLDER.rglob("RFA*.py")}
    assert codes | set(ELSEWHERE) == set(rules.RULES)
    assert {code for _, _, _, code, _ in expected_in(FOLDER)} >= codes  # each file says what it gives


def test_flake8_gives_exactly_the_written_findings(fixtures):
    proc = run("flake8", "--select=RFA", f"--extend-exclude={NO_TORCH}",
               "--format=%(path)s\t%(row)d\t%(col)d\t%(code)s\t%(text)s", ".", cwd=fixtures)
    found = set()
    for row in proc.stdout.splitlines():
        path, line, col, code, text = row.split("\t")
        found.add((Path(path).as_posix().removeprefix("./"), int(line), int(col), code, text))
    # flake8 runs no plugin on a file that does not parse: it reports its own E999 there
    expected = {item for item in _without_no_torch(expected_in(fixtures)) if item[3] != "RFA909"}
    assert found == expected, proc.stderr


def test_the_cli_gives_exactly_the_written_findings(fixtures):
    proc = run("rfa_lint", "--select", "RFA", "--extend-exclude", NO_TORCH, "--format", "json", "-q", ".",
               cwd=fixtures)
    rows = json.loads(proc.stdout)["findings"]
    found = {(Path(r["path"]).as_posix().removeprefix("./"), r["line"], r["column"], r["code"], r["message"])
             for r in rows}
    assert found == _without_no_torch(expected_in(fixtures)), proc.stderr


def _without_no_torch(expected: set) -> set:
    return {item for item in expected if not item[0].startswith(f"{NO_TORCH}/")}


def test_a_finding_spans_the_call_that_built_the_layer_and_carries_its_numbers(fixtures):
    """RFA102.py's third conv is a call over lines 12-14; RFA104.py's numbers as its docstring
    derives them (kernel 3 on a 2x2 map, fits from 25px; RFs 15 in, 31 own).  The widest
    window at 16px is 17: on the 2x2 map each position's third tap reads padding, so both read
    map positions 0 and 1, which see pixels [-1, 7] and [1, 15] (the 8-, 4- and 2-maps' edge
    taps read padding too); the minimum is no wider (issue 25), and the layer is productive from
    the path formula's 31, where the maps show its windows whole."""
    options = options_from({"res": 16})
    [critical] = [f for f in lint_file(str(fixtures / "RFA102.py"), options) if f.code == "RFA102"]
    assert (critical.line, critical.col, critical.end_line, critical.end_col) == (12, 8, 14, 9)
    [cover] = [f for f in lint_file(str(fixtures / "RFA104.py"), options) if f.code == "RFA104"]
    assert (cover.line, cover.col, cover.end_line, cover.end_col) == (14, 20, 14, 49)
    assert cover.details == {"model": "Net", "layers": ["last"], "instances": 1, "rf_min": [17, 17],
                             "rf_max": [17, 17], "input_rf": [15, 15], "resolution": [16],
                             "productive_from": [31, 31], "kernel": [3, 3], "feature_map": [2, 2],
                             "fits_from": [25, 25]}


def test_a_cached_finding_keeps_its_span_and_details(fixtures, tmp_path):
    """The second run reads the entry the first wrote: the same findings, spans and details."""
    options, path = options_from({"res": 16}), str(fixtures / "RFA104.py")
    fresh = lint_file(path, options, cache=Cache(tmp_path / "cache"))
    cache = Cache(tmp_path / "cache")
    assert cache.load(path, (fixtures / "RFA104.py").read_text(), options) is not None  # a hit
    cached = lint_file(path, options, cache=cache)
    assert [(f, f.end_line, f.end_col, f.details) for f in cached] == \
        [(f, f.end_line, f.end_col, f.details) for f in fresh]
    assert len(fresh) == 3 and all(f.end_line and f.details for f in fresh)


def test_a_missing_framework_is_rfa912(fixtures, tmp_path):
    """``import torch`` fails where rfa-lint runs (a ``torch`` package that raises ImportError
    comes first on the path), as in a pre-commit environment without torch."""
    shadow = tmp_path / "shadow" / "torch"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text('raise ImportError("No module named \'torch\'")\n')
    env = {**os.environ, "PYTHONPATH": str(shadow.parent)}
    proc = run("rfa_lint", "--select", "RFA", "--format", "json", "-q", NO_TORCH, cwd=fixtures, env=env)
    rows = json.loads(proc.stdout)["findings"]
    found = {(Path(r["path"]).as_posix(), r["line"], r["column"], r["code"], r["message"]) for r in rows}
    assert found == expected_in(fixtures) - _without_no_torch(expected_in(fixtures)), proc.stderr


def _without_torch(tmp_path: Path, **extra: str) -> dict[str, str]:
    """An environment whose ``import torch`` fails (a ``torch`` that raises comes first)."""
    shadow = tmp_path / "shadow" / "torch"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text('raise ImportError("No module named \'torch\'")\n')
    return {**os.environ, "PYTHONPATH": str(shadow.parent), **extra}


def test_a_run_that_could_check_nothing_fails_with_what_to_install(fixtures, tmp_path):
    """Without torch, the default run (no --select) does not pass: exit 2, one message naming
    torch; under pre-commit (which sets PRE_COMMIT), the hook's line to add.  flake8 reports
    RFA912 without being asked, so its run fails too."""
    env = _without_torch(tmp_path, PRE_COMMIT="1")
    proc = run("rfa_lint", NO_TORCH, cwd=fixtures, env=env)
    assert proc.returncode == 2, proc.stderr
    assert "RFA912 torch is not installed where rfa-lint runs" in proc.stdout
    assert "error: torch is not installed where rfa-lint runs" in proc.stderr
    assert "the models of 1 file were not checked" in proc.stderr
    assert "`additional_dependencies: [torch]`" in proc.stderr
    plain = run("rfa_lint", "--exit-zero", NO_TORCH, cwd=fixtures, env={**env, "PRE_COMMIT": ""})
    assert plain.returncode == 2 and "additional_dependencies" not in plain.stderr
    flake8 = run("flake8", NO_TORCH, cwd=fixtures, env=env)
    assert flake8.returncode == 1 and "RFA912 torch is not installed" in flake8.stdout, flake8.stderr


def test_an_internal_error_is_rfa999_for_that_file_only(tmp_path):
    """A bug of rfa-lint's (here: reading a file's settings raises) costs that file an RFA999
    at its start, not the run: the other file is analysed."""
    good, bad = tmp_path / "good.py", tmp_path / "bad.py"
    good.write_text("x = 1\n")
    bad.write_text("x = 2\n")

    def options_for(path: str):
        if path == str(bad):
            raise RuntimeError("a bug")
        return options_from({"res": 16})

    analysed = analyse_files([str(good), str(bad)], options_for)
    results = {Path(path).name: analysis.findings for path, analysis, _ in analysed}
    assert results["good.py"] == []
    [finding] = results["bad.py"]
    assert (finding.line, finding.col, finding.code, finding.end_line) == (1, 0, "RFA999", None)
    reason = finding.details["reason"]  # the traceback is in a file the message names (test_logs.py)
    assert reason.startswith("RuntimeError: a bug; traceback in ")
    assert Path(reason.rpartition(" ")[2]).is_file()
    assert finding.message == f"rfa-lint failed on this file ({reason}); please report it with the file " \
                              "attached"
    assert finding.details == {"model": "bad.py", "reason": reason}


# --- the rules' examples -------------------------------------------------------------------------

SNIPPET = re.compile(r"```python\n(# rfa-lint(?P<options>[^\n]*)\n.*?)```", re.DOTALL)


def snippets(code: str, heading: str) -> list[tuple[str, str]]:
    """(options, source) of each runnable snippet of the rule's section: a python block whose
    first line is the command it is linted with."""
    return [(m["options"], m.group(1)) for m in SNIPPET.finditer(rules.get(code).section(heading))]


def pyproject(options: str) -> str:
    """``--res 16 --no-exec`` -> the ``[tool.rfa-lint]`` table saying the same."""
    table, words = [], shlex.split(options)
    while words:
        name = words.pop(0).removeprefix("--")
        value = words.pop(0) if words and not words[0].startswith("--") else "true"
        literal = value in ("true", "false") or value.isdigit()
        table.append(f"{name} = {value if literal else json.dumps(value)}")
    return "[tool.rfa-lint]\n" + "\n".join(table) + "\n"


def test_every_rule_with_a_snippet_example_says_how_it_is_linted():
    for code in rules.RULES:
        assert bool(snippets(code, "Example")) == (code not in PROSE_EXAMPLES), code


def test_each_example_gives_its_rule_and_each_use_instead_does_not(tmp_path):
    cases = {}
    for code in rules.RULES:
        for heading, gives in (("Example", True), ("Use instead", False)):
            for number, (options, source) in enumerate(snippets(code, heading)):
                folder = tmp_path / f"{code}-{heading.replace(' ', '-')}-{number}"
                folder.mkdir()
                (folder / "pyproject.toml").write_text(pyproject(options))
                (folder / "snippet.py").write_text(source)
                cases[folder.name] = (code, gives)
    proc = run("rfa_lint", "--select", "RFA", "--format", "json", "-q", ".", cwd=tmp_path)
    codes = {name: set() for name in cases}
    for row in json.loads(proc.stdout)["findings"]:
        codes[Path(row["path"]).parent.name].add(row["code"])
    wrong = {name: sorted(codes[name]) for name, (code, gives) in cases.items()
             if (code in codes[name]) != gives}
    assert not wrong, wrong
