"""Settings: one typed table behind the command line, flake8, ``[flake8]`` and ``[tool.rfa-lint]``.

Every bad value is refused where it is given, as a usage error that names the key and what it
allows; none is read as something else (``"false"`` as true, ``"RFA104"`` letter by letter, a
typo'd selector as "nothing").
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from rfa_lint import files, report, settings
from rfa_lint.cli import main
from rfa_lint.settings import BY_NAME, SETTINGS, options_from

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "lint"
# fixtures/lint/chain.py: five unpadded 3x3 convs, strides 2, 2, 1, 1, 1.  By hand, RF = previous
# RF + 2 * jump: 3, 7, 15, 23, 31.  At 16px conv4 (input RF 15, own 23) is RFA102 on line 13,
# conv5 (input RF 23 >= 16) RFA101 on line 14, and the model's range 31-31 puts 16px below it:
# RFA110 on line 7.
CHAIN_AT_16 = {(7, "RFA110"), (13, "RFA102"), (14, "RFA101")}


@pytest.fixture
def project(tmp_path):
    shutil.copy(FIXTURES / "chain.py", tmp_path / "chain.py")
    return tmp_path


def check(project: Path, *args: str):
    """``rfa-lint check`` in-process, from the project folder."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(project)
        return CliRunner().invoke(main, ["check", *args])


def found(result) -> set[tuple[int, str]]:
    return {(row["line"], row["code"]) for row in json.loads(result.stdout)["findings"]}


def flake8(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flake8", *args], cwd=project, capture_output=True,
                          text=True, timeout=600)


def one_line(text: str) -> str:
    return " ".join(text.split())


# --- the table itself -------------------------------------------------------------------------

@pytest.mark.parametrize("name, good, bad", [
    ("res", [("32", (32,)), (16, (16,)), ("32x48", (32, 48)), (" 8 x 32 x 32 ", (8, 32, 32))],
     ["0", "16x16x16x16", "thirty", "32.5", True, ""]),
    ("timeout", [("0.5", 0.5), (60, 60.0)], ["0", "-5", -5, "soon", "inf", "nan"]),
    ("memory-limit", [("256", 256), (6144, 6144)], ["255", "lots", 6144.5]),
    ("no-exec", [(True, True), ("yes", True), ("0", False), ("False", False)], ["maybe", "", "2"]),
    ("select", [("RFA101", ("RFA101",)), ("RFA1, rfa104", ("RFA1", "RFA104")),
                ("RFA1 RFA9", ("RFA1", "RFA9")), (["RFA"], ("RFA",)), ("", ())],
     ["RFA1O1", ["RFA101", "E501"], ["RFA1,RFA9"], [101]]),
    ("jobs", [("3", 3)], ["0", "two"]),
])
def test_each_setting_takes_what_it_says_and_refuses_the_rest(name, good, bad):
    setting = BY_NAME[name]
    for value, expected in good:
        assert setting.check(value) == expected, value
    for value in bad:
        with pytest.raises(ValueError, match=re.escape(setting.allowed)):
            setting.check(value)


def test_a_selector_must_be_a_prefix_of_a_known_code():
    with pytest.raises(ValueError, match="unknown rule selector 'RFA1O1'"):
        BY_NAME["select"].check("RFA1O1")
    for prefix in ("RFA", "RFA1", "RFA10", "RFA101", "rfa9"):
        assert BY_NAME["ignore"].check(prefix) == (prefix.upper(),)


def test_options_from_checks_what_it_is_given():
    assert options_from({"res": "32x48", "timeout": 9}).limits.timeout == 9.0
    assert options_from({"no-exec": "false"}).execute  # text is read as [flake8] reads it
    for bad, words in (({"no-exec": "maybe"}, "no-exec: expected true or false"),
                       ({"timeout": -5}, "timeout: expected a number of seconds above 0"),
                       ({"resolution": 32}, "unknown settings: resolution")):
        with pytest.raises(ValueError, match=words):
            options_from(bad)


def test_the_report_formats_offered_are_the_reporters():
    assert set(BY_NAME["format"].choices) == set(report.FORMATS)


def test_pyproject_keys_are_the_settings_with_a_toml_type():
    assert set(settings.PYPROJECT) == {"res", "timeout", "memory-limit", "no-exec", "filter-kernel-size-1",
                                       "select", "ignore", "models", "per-file-ignores", "exclude",
                                       "extend-exclude", "force-exclude", "no-worker", "max-file-size",
                                       "isolation"}


def test_per_file_ignores_read_flake8s_syntax_and_ruffs_table_alike():
    setting = BY_NAME["per-file-ignores"]
    flake8_style = setting.check("tests/*.py:RFA101,RFA102 other/*:RFA  a.py b.py:RFA9 a.py:RFA1")
    assert flake8_style == {"tests/*.py": ("RFA101", "RFA102"), "other/*": ("RFA",), "a.py": ("RFA9", "RFA1"),
                            "b.py": ("RFA9",)}
    assert setting.check({"tests/*.py": ["RFA101", "rfa102"], "other/*": ["RFA"]}) == {
        "tests/*.py": ("RFA101", "RFA102"), "other/*": ("RFA",)}
    for bad in ("tests/*.py", "tests/*.py:RFA1O1", {"a.py": "RFA1"}, {"a.py": ["E501"]}, ["a.py:RFA1"]):
        with pytest.raises(ValueError, match=re.escape(setting.allowed)):
            setting.check(bad)


def test_globs_naming_a_path_are_made_absolute_from_the_folder_that_gives_them():
    values = {"exclude": ("build", "*.egg-info", "sub/gen.py", "./x"), "extend-exclude": (),
              "per-file-ignores": {"tests/*": ("RFA1",), "conftest.py": ("RFA",)}, "res": (16,)}
    assert settings.anchored(values, "/project") == {
        "exclude": ("build", "*.egg-info", "/project/sub/gen.py", "/project/x"), "extend-exclude": (),
        "per-file-ignores": {"/project/tests/*": ("RFA1",), "conftest.py": ("RFA",)}, "res": (16,)}


def test_extend_exclude_adds_to_the_projects_and_exclude_replaces_it():
    project = {"exclude": ("a",), "extend-exclude": ("b",)}
    resolved = settings.resolve({"exclude": None, "extend-exclude": ("c",)}, project)
    assert (resolved["exclude"], resolved["extend-exclude"]) == (("a",), ("b", "c"))
    resolved = settings.resolve({"exclude": ("d",)}, project)
    assert (resolved["exclude"], resolved["extend-exclude"]) == (("d",), ("b",))
    assert settings.resolve({}, {})["exclude"] == files.DEFAULT_EXCLUDE


def test_per_file_ignores_leave_codes_out_of_the_files_they_match(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.rfa-lint]\nselect = ["RFA101", "RFA110"]\n'
                                             '[tool.rfa-lint.per-file-ignores]\n"tests/*" = ["RFA1"]\n'
                                             '"conftest.py" = ["RFA110"]\n')
    project = settings.Project.load(str(tmp_path / "tests"), {})
    assert project.codes_for(tmp_path / "tests" / "test_a.py") == frozenset()  # even what select names
    assert project.codes_for(tmp_path / "tests" / "conftest.py") == frozenset()
    assert project.codes_for(tmp_path / "conftest.py") == {"RFA101"}
    assert project.codes_for(tmp_path / "sub" / "tests" / "a.py") == {"RFA101", "RFA110"}  # not sub/tests


# --- [tool.rfa-lint], through the CLI ---------------------------------------------------------

@pytest.mark.parametrize("line, words", [
    ('no-exec = "false"', "no-exec: expected true or false, got 'false' (a TOML string)"),
    ("no-exec = 1", "no-exec: expected true or false, got 1 (a TOML integer)"),
    ("timeout = -5", "timeout: expected a number of seconds above 0, got -5"),
    ("timeout = 0", "timeout: expected a number of seconds above 0, got 0"),
    ('timeout = "soon"', "timeout: expected a number of seconds above 0, got 'soon' (a TOML string)"),
    ('memory-limit = "lots"', "memory-limit: expected a whole number of MiB, at least 256"),
    ('res = "thirty"', "res: expected a resolution N or HxW"),
    ('select = ["RFA1O1"]', "select: unknown rule selector 'RFA1O1'"),
    ('ignore = "RFA1O4"', "ignore: unknown rule selector 'RFA1O4'"),
    ("[tool.rfa-lint.models.Chain]\narg = [1]", "models: models.Chain.arg = [1]"),
])
def test_a_bad_pyproject_value_is_a_usage_error_naming_file_key_and_what_is_allowed(project, line, words):
    (project / "pyproject.toml").write_text(f"[tool.rfa-lint]\n{line}\n")
    result = check(project, "chain.py")
    assert result.exit_code == 2, result.output
    message = one_line(result.stderr)
    assert f"{project / 'pyproject.toml'}: [tool.rfa-lint] {words}" in message
    assert result.stdout == ""


def test_a_string_where_a_list_is_expected_is_comma_or_space_separated_codes(project):
    (project / "pyproject.toml").write_text('[tool.rfa-lint]\nres = 16\nignore = "RFA101, RFA102"\n')
    assert settings.merged(project, {})["ignore"] == ("RFA101", "RFA102")
    ignored = check(project, "chain.py", "--format", "json", "-q")
    assert found(ignored) == CHAIN_AT_16 - {(13, "RFA102"), (14, "RFA101")}
    (project / "pyproject.toml").write_text('[tool.rfa-lint]\nres = 16\nselect = "RFA101"\n')
    selected = check(project, "chain.py", "--format", "json", "-q")
    assert (selected.exit_code, found(selected)) == (1, {(14, "RFA101")})


def test_a_real_toml_boolean_turns_execution_off(project):
    (project / "pyproject.toml").write_text("[tool.rfa-lint]\nno-exec = true\n")
    result = check(project, "chain.py", "--select", "RFA9", "--format", "json", "-q")
    assert found(result) == {(7, "RFA900")}


# --- the command line -------------------------------------------------------------------------

@pytest.mark.parametrize("args, words", [
    (["--select", "RFA1O1"], "Invalid value for '--select': unknown rule selector 'RFA1O1'"),
    (["--ignore", "RFA1,X9"], "Invalid value for '--ignore': unknown rule selector 'X9'"),
    (["--timeout", "0"], "Invalid value for '--timeout': expected a number of seconds above 0, got '0'"),
    (["--timeout", "soon"], "Invalid value for '--timeout': expected a number of seconds above 0"),
    (["--memory-limit", "100"], "Invalid value for '--memory-limit': expected a whole number of MiB"),
    (["--res", "0"], "Invalid value for '--res': expected a resolution N or HxW"),
    (["-j", "0"], "Invalid value for '-j' / '--jobs': expected a whole number, at least 1"),
    (["--output-file", "no/such/dir/out.json"], "the folder of 'no/such/dir/out.json' does not exist"),
])
def test_a_bad_option_is_a_usage_error(project, args, words):
    result = check(project, "chain.py", *args)
    assert result.exit_code == 2 and words in one_line(result.stderr), result.stderr


def test_the_command_line_wins_over_pyproject_and_takes_timeouts_below_a_second(project):
    (project / "pyproject.toml").write_text('[tool.rfa-lint]\nres = 8\nignore = ["RFA1"]\n')
    result = check(project, "chain.py", "--res", "16", "--ignore", "RFA110", "--timeout", "30.5",
                   "--format", "json", "-q")
    assert found(result) == CHAIN_AT_16 - {(7, "RFA110")}
    assert settings.merged(project, {"timeout": 0.5})["timeout"] == 0.5


def test_a_typo_in_select_stops_the_real_command_with_exit_2(project):
    proc = subprocess.run([sys.executable, "-m", "rfa_lint", "chain.py", "--res", "16", "--select", "RFA1O1"],
                          cwd=project, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2 and proc.stdout == ""
    assert "Invalid value for '--select': unknown rule selector 'RFA1O1'" in one_line(proc.stderr)


# --- flake8 -----------------------------------------------------------------------------------

@pytest.mark.parametrize("line, words", [
    ("rfa-res = thirty", "argument --rfa-res: expected a resolution N or HxW"),
    ("rfa-timeout = soon", "argument --rfa-timeout: expected a number of seconds above 0, got 'soon'"),
    ("rfa-timeout = 0", "argument --rfa-timeout: expected a number of seconds above 0, got '0'"),
    ("rfa-memory-limit = lots", "argument --rfa-memory-limit: expected a whole number of MiB"),
    ("rfa-no-exec = maybe", "argument --rfa-no-exec: expected true or false, got 'maybe'"),
    ("rfa-cache-dir = chain.py", "argument --rfa-cache-dir: expected a folder"),
])
def test_a_bad_flake8_config_value_is_flake8s_usage_error(project, line, words):
    (project / ".flake8").write_text(f"[flake8]\n{line}\n")
    proc = flake8(project, "--select=RFA", "chain.py")
    assert proc.returncode == 2 and proc.stdout == "", proc.stdout
    assert "flake8: error: " + words in one_line(proc.stderr)


def test_flake8_options_on_the_command_line_are_checked_the_same_way(project):
    proc = flake8(project, "--select=RFA", "--rfa-timeout=-1", "chain.py")
    assert proc.returncode == 2
    assert "argument --rfa-timeout: expected a number of seconds above 0" in proc.stderr
    typo = flake8(project, "--select=RFA1O1", "--rfa-res=16", "chain.py")
    assert typo.returncode == 2 and "flake8: error: --select: unknown rule selector 'RFA1O1'" in typo.stderr
    (project / "setup.cfg").write_text("[flake8]\nextend-ignore = E501,RFA105\n")  # no such code
    ignored = flake8(project, "--select=RFA", "chain.py")
    assert ignored.returncode == 2 and "--extend-ignore: unknown rule selector 'RFA105'" in ignored.stderr


def test_flake8_reads_config_booleans_as_configparser_does(project):
    (project / "setup.cfg").write_text("[flake8]\nrfa-no-exec = yes\nrfa-timeout = 0.5\n")
    proc = flake8(project, "--select=RFA9", "--format=%(row)d:%(code)s", "chain.py")
    assert (proc.returncode, proc.stdout.split()) == (1, ["7:RFA900"])


def test_a_bad_pyproject_under_flake8_is_a_usage_error_not_rfa999_on_every_file(project):
    (project / "pyproject.toml").write_text('[tool.rfa-lint]\ntimeout = "soon"\n')
    proc = flake8(project, "--select=RFA", "chain.py")
    assert proc.returncode == 2 and "RFA999" not in proc.stdout
    assert (f"{project / 'pyproject.toml'}: [tool.rfa-lint] timeout: expected a number of seconds above 0"
            in one_line(proc.stderr))


def test_a_bad_pyproject_below_the_paths_given_stops_flake8_with_its_message(project):
    (project / "sub").mkdir()
    (project / "sub" / "pyproject.toml").write_text('[tool.rfa-lint]\nno-exec = "false"\n')
    shutil.copy(FIXTURES / "chain.py", project / "sub" / "chain.py")
    proc = flake8(project, "--select=RFA", ".")
    assert proc.returncode != 0 and "RFA999" not in proc.stdout
    said = one_line(proc.stdout + proc.stderr)
    assert "[tool.rfa-lint] no-exec: expected true or false, got 'false'" in said


# --- one table, both front doors --------------------------------------------------------------

def test_both_front_doors_offer_every_setting_of_the_table_with_its_help(project):
    cli_help = one_line(CliRunner().invoke(main, ["check", "--help"]).stdout)
    flake8_help = one_line(flake8(project, "--help").stdout)
    for setting in SETTINGS:
        help_text = one_line(setting.help_text)
        assert (f"--{setting.name}" in cli_help and help_text in cli_help) == setting.cli, setting.name
        assert (f"--rfa-{setting.name}" in flake8_help and f"rfa-lint: {help_text}" in flake8_help) \
            == setting.flake8, setting.name


def test_readme_settings_table_is_generated_from_the_table():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    if "<!-- settings:start -->" not in readme:
        pytest.skip("README has no generated settings table yet")
    table = readme.split("<!-- settings:start -->\n", 1)[1].split("<!-- settings:end -->", 1)[0]
    assert table.strip() == settings.markdown_table().strip()
