"""The ``rfa-lint check`` options that follow ruff and flake8: --add-noqa, --exclude /
--extend-exclude, --per-file-ignores, --config / --isolated, stdin, --statistics, --show-settings
and --show-files, each through the real command line.

One project is analysed once per module: its cache folder is shared, so every later run of an
unchanged file at the same settings reads the first run's result (a cache test's business is
tested elsewhere).  Runs that need no analysis say --no-exec or stop before linting.
"""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from rfa_lint.cli import main

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "lint"
CHAIN = FIXTURES / "chain.py"
# fixtures/lint/chain.py: five unpadded 3x3 convs, strides 2, 2, 1, 1, 1.  By hand, RF = previous
# RF + 2 * jump: 3, 7, 15, 23, 31.  At 16px conv4 (input RF 15, own 23) is RFA102 on line 13,
# conv5 (input RF 23 >= 16) RFA101 on line 14, and the model's range 31-31 puts 16px below it:
# RFA110 on line 7.  Nothing else (no RFA103 / RFA104) is expected of it.
CHAIN_AT_16 = {(7, "RFA110"), (13, "RFA102"), (14, "RFA101")}
RFA_LINT = shutil.which("rfa-lint") or "rfa-lint"  # the installed console script
LINTED = ["chain.py", "tests/test_chain.py"]  # what the project's walk lints: the rest is excluded
pytestmark = pytest.mark.usefixtures("warm_worker")  # one framework import per module, not per run


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def project(tmp_path_factory, cache) -> Path:
    """chain.py twice (at the top and in tests/), in copies the default excludes skip (hidden and
    build folders), and a file without models; analysed once, at 16px.  other/ has no Python file
    but settings of its own."""
    root = tmp_path_factory.mktemp("project")
    (root / "pyproject.toml").write_text("[tool.rfa-lint]\nres = 16\n")
    (root / "other").mkdir()
    (root / "other" / "pyproject.toml").write_text('[tool.rfa-lint]\nres = 16\nignore = ["RFA110"]\n')
    for name in ("chain.py", "tests/test_chain.py", ".hidden/chain.py", "build/chain.py"):
        (root / name).parent.mkdir(exist_ok=True)
        shutil.copy(CHAIN, root / name)
    (root / "plain.py").write_text("x = 1\n")
    warm = check(root, ".", "--cache-dir", cache, "--format", "json")
    assert warm.exit_code == 1 and findings(warm) == {(path, *f) for path in LINTED for f in CHAIN_AT_16}
    return root


def check(cwd: Path, *args: str, stdin: bytes | None = None):
    """``rfa-lint check ARGS`` in-process, from ``cwd``."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(cwd)
        return CliRunner().invoke(main, ["check", *args], input=stdin)


def rfa_lint(cwd: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    """The installed ``rfa-lint`` command, as a user runs it."""
    proc = subprocess.run([RFA_LINT, *args], cwd=cwd, input=stdin, capture_output=True, timeout=600)
    proc.stdout, proc.stderr = proc.stdout.decode(), proc.stderr.decode()
    return proc


def findings(result) -> set[tuple[str, int, str]]:
    return {(Path(row["path"]).as_posix(), row["line"], row["code"])
            for row in json.loads(result.stdout)["findings"]}


def lines(text: str) -> list[str]:
    return text.splitlines()


# --- usability ------------------------------------------------------------------------------------

def test_the_rule_command_is_summed_up_whole_in_the_help():
    listed = CliRunner().invoke(main, ["--help"]).stdout
    assert "rule     Explain a rule, or list them all." in listed and "(e.g." not in listed


def test_a_clean_single_file_run_still_says_its_model_was_analysed(project, cache):
    result = check(project, "chain.py", "--cache-dir", cache, "--select", "RFA103")  # none expected at 16px
    assert (result.exit_code, result.stdout) == (0, "")
    assert "rfa-lint: 1 file, 1 model analysed, 0 skipped, 0 findings at 16px" in result.stderr


# --- --add-noqa -----------------------------------------------------------------------------------

@pytest.fixture
def editable(project, tmp_path) -> Path:
    """A copy of the project to edit (a new path: analysed anew)."""
    shutil.copytree(project, tmp_path / "edit")
    return tmp_path / "edit"


def test_add_noqa_silences_every_reported_finding_and_touches_nothing_else(editable, cache):
    chain, plain = editable / "chain.py", editable / "plain.py"
    chain.chmod(0o750)
    plain_inode = plain.stat().st_ino
    result = check(editable, "chain.py", "plain.py", "--cache-dir", cache, "--add-noqa")
    assert (result.exit_code, result.stdout) == (0, "")
    assert "rfa-lint: added 3 noqa comments to 1 file\n" == result.stderr
    before, after = lines(CHAIN.read_text()), lines(chain.read_text())
    changed = {n for n, (old, new) in enumerate(zip(before, after), start=1) if old != new}
    assert len(before) == len(after) and changed == {7, 13, 14}
    for line, code in CHAIN_AT_16:
        assert after[line - 1] == f"{before[line - 1]}  # noqa: {code}"  # after the line's own comment
    assert stat.S_IMODE(chain.stat().st_mode) == 0o750
    assert plain.stat().st_ino == plain_inode and plain.read_text() == "x = 1\n"
    assert not [p.name for p in editable.iterdir() if p.name.startswith(".chain")]  # no temporary left
    again = check(editable, "chain.py", "--cache-dir", cache, "--format", "json")
    assert (again.exit_code, findings(again)) == (0, set())


def test_add_noqa_adds_only_the_codes_reported_and_follows_a_link(editable, cache):
    (editable / "link.py").symlink_to("chain.py")
    result = rfa_lint(editable, "link.py", "--cache-dir", cache, "--add-noqa", "--select", "RFA101")
    assert result.returncode == 0 and result.stderr == "rfa-lint: added 1 noqa comment to 1 file\n"
    assert (editable / "link.py").is_symlink()
    assert lines((editable / "chain.py").read_text())[13].endswith("(input 23 >= 16)  # noqa: RFA101")
    assert "noqa" not in (editable / "chain.py").read_text().replace("# noqa: RFA101", "")


def test_add_noqa_leaves_a_file_libcst_cannot_parse_alone_and_says_so(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_bytes(b"from torch import nn\n\n\nclass Net(nn.Module:\n    pass\n")
    result = check(tmp_path, "broken.py", "--no-exec", "--add-noqa")  # RFA909: a syntax error
    assert result.exit_code == 1
    assert "broken.py: left alone: libcst cannot parse it" in result.stderr
    assert "added 0 noqa comments to 0 files" in result.stderr
    assert broken.read_bytes() == b"from torch import nn\n\n\nclass Net(nn.Module:\n    pass\n"


# --- --exclude / --extend-exclude ---------------------------------------------------------------

def shown(result) -> list[str]:
    assert result.exit_code == 0, result.output
    return sorted(Path(line).as_posix() for line in lines(result.stdout))


def test_the_default_excludes_are_the_walkers_old_skips(project):
    assert shown(check(project, ".", "--show-files")) == sorted([*LINTED, "plain.py"])


@pytest.mark.parametrize("args, left", [
    (["--extend-exclude", "tests"], ["chain.py", "plain.py"]),  # a name, at any depth
    (["--extend-exclude", "test_*.py,plain.py"], ["chain.py"]),
    (["--extend-exclude", "./chain.py"], ["plain.py", "tests/test_chain.py"]),  # a path, from here
    (["--exclude", "plain.py"], [".hidden/chain.py", "build/chain.py", "chain.py", "tests/test_chain.py"]),
])
def test_exclude_globs_match_names_and_paths_and_extend_exclude_keeps_the_defaults(project, args, left):
    assert shown(check(project, ".", "--show-files", *args)) == left


def test_pyproject_excludes_are_relative_to_its_folder_and_a_named_file_is_always_linted(tmp_path):
    for name in ("chain.py", "sub/skip.py", "sub/deep/skip.py", "sub/keep.py"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("x = 1\n")
    (tmp_path / "pyproject.toml").write_text('[tool.rfa-lint]\nextend-exclude = ["sub/skip.py", "deep"]\n')
    assert shown(check(tmp_path / "sub", ".", "--show-files")) == ["keep.py"]
    assert shown(check(tmp_path, ".", "--show-files", "--extend-exclude", "chain.py")) == ["sub/keep.py"]
    assert shown(check(tmp_path / "sub", "skip.py", "--show-files")) == ["skip.py"]  # as ruff, not flake8


def test_force_exclude_excludes_named_paths_too_as_pre_commit_needs(tmp_path):
    for name in ("keep.py", "gen/made.py", "gen/deep/made.py", ".venv/lib.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x = 1\n")
    (tmp_path / "pyproject.toml").write_text('[tool.rfa-lint]\nextend-exclude = ["gen"]\n')
    named = ["keep.py", "gen/made.py", "gen/deep/made.py", ".venv/lib.py", "gen"]
    assert shown(check(tmp_path, *named, "--show-files")) == sorted(named[:4])  # gen/ named: walked
    assert shown(check(tmp_path, *named, "--show-files", "--force-exclude")) == ["keep.py"]
    (tmp_path / "pyproject.toml").write_text('[tool.rfa-lint]\nextend-exclude = ["gen"]\n'
                                             'force-exclude = true\n')
    proc = rfa_lint(tmp_path / "gen" / "deep", "made.py", "../../keep.py", "--show-files")
    assert (proc.returncode, proc.stdout) == (0, "../../keep.py\n")  # folders up to the project's count
    (tmp_path / "pyproject.toml").write_text('[tool.rfa-lint]\nextend-exclude = ["*_*"]\n'
                                             'force-exclude = true\n')  # tmp_path's own name has a "_"
    assert shown(check(tmp_path, "keep.py", "--show-files")) == ["keep.py"]  # not the folders above the root


def test_excluded_files_are_not_linted_by_the_real_command(project, cache):
    proc = rfa_lint(project, ".", "--cache-dir", cache, "--extend-exclude", "tests")
    assert proc.returncode == 1
    assert sorted(line.split(":")[0] for line in lines(proc.stdout)) == ["chain.py"] * 3
    assert "rfa-lint: 2 files, 1 model analysed" in proc.stderr  # chain.py and plain.py


# --- --per-file-ignores -------------------------------------------------------------------------

def test_per_file_ignores_in_flake8s_syntax(project, cache):
    result = check(project, ".", "--cache-dir", cache, "--format", "json",
                   "--per-file-ignores", "tests/*.py:RFA101,RFA102 chain.py:RFA110")
    assert findings(result) == {("chain.py", 13, "RFA102"), ("chain.py", 14, "RFA101"),
                                ("tests/test_chain.py", 7, "RFA110")}


def test_per_file_ignores_as_ruffs_table_and_beating_select(project, cache, tmp_path):
    config = tmp_path / "rfa-lint.toml"  # --config: its globs are relative to the working folder
    config.write_text('[tool.rfa-lint]\nres = 16\nselect = ["RFA101"]\n'
                      '[tool.rfa-lint.per-file-ignores]\n"tests/*" = ["RFA1"]\n')
    proc = rfa_lint(project, ".", "--cache-dir", cache, "--config", str(config), "--format", "json")
    assert (proc.returncode, findings(proc)) == (1, {("chain.py", 14, "RFA101")})


@pytest.mark.parametrize("value, words", [
    ("tests/*.py:RFA1O1", "Invalid value for '--per-file-ignores': cannot read 'tests/*.py:RFA1O1'"),
    ("tests/*.py:E501", "Invalid value for '--per-file-ignores': tests/*.py: unknown rule selector 'E501'"),
])
def test_per_file_ignores_codes_are_checked_as_select_and_ignores_are(project, value, words):
    result = check(project, ".", "--per-file-ignores", value)
    assert result.exit_code == 2 and words in " ".join(result.stderr.split())


def test_a_bad_per_file_ignores_table_names_its_file(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.rfa-lint.per-file-ignores]\n"tests/*" = ["RFA1O1"]\n')
    result = check(tmp_path, ".", "--show-files")
    assert result.exit_code == 2
    assert (f"{tmp_path / 'pyproject.toml'}: [tool.rfa-lint] per-file-ignores: tests/*: unknown rule "
            "selector 'RFA1O1'") in " ".join(result.stderr.split())


# --- --config / --isolated ----------------------------------------------------------------------

@pytest.fixture
def nested(tmp_path) -> Path:
    """A project whose sub/ folder has its own pyproject; each excludes its skip.py."""
    for folder, res in (tmp_path, 16), (tmp_path / "sub", 8):
        folder.mkdir(exist_ok=True)
        (folder / "pyproject.toml").write_text(f"[tool.rfa-lint]\nres = {res}\nexclude = [\"skip.py\"]\n")
        shutil.copy(CHAIN, folder / "chain.py")
        (folder / "skip.py").write_text("x = 1\n")
    return tmp_path


def settings_of(result) -> dict[str, dict[str, str]]:
    """--show-settings' output: {folder: {"from": its config, name: value}}."""
    assert result.exit_code == 0, result.output
    blocks = {}
    for block in result.stdout.split("\n\n"):
        head, *rows = lines(block)
        folder, _, source = head.partition(":")
        values = dict(row.strip().split(" = ", 1) for row in rows if " = " in row)
        blocks[folder] = {"from": source.strip(), **values}
    return blocks


def test_each_folder_shows_its_nearest_pyproject(nested):
    shown = settings_of(check(nested, ".", "--show-settings"))
    assert shown["."]["from"] == str(nested / "pyproject.toml") and shown["."]["res"] == "16"
    assert shown["sub"]["from"] == str(nested / "sub" / "pyproject.toml") and shown["sub"]["res"] == "8"
    assert shown["run (command line and defaults)"]["show-settings"] == "true"


def test_config_applies_one_file_to_every_folder(nested, tmp_path_factory):
    config = tmp_path_factory.mktemp("elsewhere") / "rfa-lint.toml"
    config.write_text("[tool.rfa-lint]\nres = 32\nno-exec = true\n")
    shown = settings_of(check(nested, ".", "--show-settings", "--config", str(config)))
    assert {shown[f]["from"] for f in (".", "sub")} == {str(config)}
    assert {shown[f]["res"] for f in (".", "sub")} == {"32"}
    proc = rfa_lint(nested, ".", "--config", str(config), "--select", "RFA9", "--format", "json")
    # no-exec from the config: each model is RFA900 on its class line; skip.py is linted now
    assert findings(proc) == {("chain.py", 7, "RFA900"), ("sub/chain.py", 7, "RFA900")}
    assert "4 files" in proc.stderr


def test_isolated_reads_no_config_even_a_broken_one(nested):
    (nested / "pyproject.toml").write_text('[tool.rfa-lint]\ntimeout = "soon"\n')
    assert check(nested, ".", "--show-files").exit_code == 2
    shown = settings_of(check(nested, ".", "--show-settings", "--isolated"))
    assert shown["sub"] == {**shown["sub"], "from": "no configuration file (--isolated)", "res": "224"}
    proc = rfa_lint(nested, ".", "--isolated", "--no-exec", "--select", "RFA9", "--format", "json")
    assert proc.returncode == 1 and len(findings(proc)) == 2


@pytest.mark.parametrize("make, args, words", [
    (lambda d: d / "pyproject.toml", ["--isolated"], "--config and --isolated contradict each other"),
    (lambda d: d / "chain.py", [], "is not a .toml file"),
    (lambda d: d / "empty.toml", [], "empty.toml: no [tool.rfa-lint] table"),
])
def test_config_mistakes_are_usage_errors(nested, make, args, words):
    (nested / "empty.toml").write_text("[tool.other]\nx = 1\n")
    result = check(nested, ".", "--config", str(make(nested)), *args)
    assert result.exit_code == 2 and words in " ".join(result.stderr.split()), result.stderr


# --- stdin --------------------------------------------------------------------------------------

def test_stdin_is_linted_in_the_sandbox_as_a_file_would_be(project, cache):
    result = check(project, "-", "--cache-dir", cache, "--format", "json", stdin=CHAIN.read_bytes())
    assert (result.exit_code, findings(result)) == (1, {("-", *f) for f in CHAIN_AT_16})
    assert "rfa-lint: 1 file, 1 model analysed" in result.stderr


def test_stdin_filename_names_it_for_the_report_settings_and_per_file_ignores(project, cache):
    proc = rfa_lint(project, "--stdin-filename", "other/new.py", "--cache-dir", cache,
                    "--per-file-ignores", "other/*:RFA102", stdin=CHAIN.read_bytes())
    # other/pyproject.toml ignores RFA110, --per-file-ignores RFA102: RFA101 is left
    assert proc.returncode == 1
    assert [line.split(" ")[:2] for line in lines(proc.stdout)] == [["other/new.py:14:22:", "RFA101"]]


@pytest.mark.parametrize("args, words", [
    (["-", "chain.py"], "'-' (stdin) is linted alone"),
    (["chain.py", "--stdin-filename", "x.py"], "--stdin-filename names the source read from stdin"),
    (["-", "--add-noqa"], "--add-noqa edits files: it cannot edit stdin"),
    ([], "Missing argument 'PATHS...'"),
])
def test_stdin_mistakes_are_usage_errors(project, args, words):
    result = check(project, *args, stdin=b"")
    assert result.exit_code == 2 and words in result.stderr, result.stderr


# --- --statistics -------------------------------------------------------------------------------

STATISTICS = ["2     RFA101 unproductive-layer", "2     RFA102 critical-layer",
              "2     RFA110 resolution-outside-range"]  # CHAIN_AT_16, in both linted files


def test_statistics_follow_a_text_report(project, cache):
    proc = rfa_lint(project, ".", "--cache-dir", cache, "--statistics")
    assert proc.returncode == 1 and lines(proc.stdout)[-3:] == STATISTICS
    assert len(lines(proc.stdout)) == 6 + 3


def test_statistics_go_to_stderr_when_stdout_is_a_json_document(project, cache):
    result = check(project, ".", "--cache-dir", cache, "--statistics", "--format", "json", "-q")
    assert len(findings(result)) == 6 and lines(result.stderr) == STATISTICS


# --- --show-settings / --show-files -------------------------------------------------------------

def test_show_files_and_show_settings_exit_0_without_linting(project, tmp_path):
    for option in ("--show-files", "--show-settings"):
        proc = rfa_lint(project, ".", option, "--cache-dir", str(tmp_path / "unused"))
        assert (proc.returncode, proc.stderr) == (0, ""), proc.stderr
        assert not (tmp_path / "unused").exists()  # nothing was analysed, nothing cached
    assert sorted(lines(rfa_lint(project, ".", "--show-files").stdout)) == sorted([*LINTED, "plain.py"])


def test_show_settings_prints_every_setting_once_per_block(project):
    shown = settings_of(check(project, ".", "--show-settings", "--per-file-ignores", "tests/*:RFA1"))
    assert shown["tests"]["per-file-ignores"] == json.dumps({f"{project}/tests/*": ["RFA1"]})
    assert json.loads(shown["."]["exclude"]) == [".*", "__pycache__", "CVS", "node_modules", "build", "dist",
                                                 "*.egg-info"]
    assert "jobs" in shown["run (command line and defaults)"] and "jobs" not in shown["."]
