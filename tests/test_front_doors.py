"""The CLI and flake8 adapters end to end, as real subprocesses: options, config, formats, exits."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from doors import flake8, rfa_lint

from rfa_lint.files import python_files
from rfa_lint.results import Finding
from rfa_lint.settings import parse_resolution
from rfa_lint.noqa import without_noqa

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "lint"
pytestmark = pytest.mark.usefixtures("warm_worker")  # one framework import per module, not per run


@pytest.fixture
def project(tmp_path):
    """A copy of the chain fixture in a project folder of its own."""
    shutil.copy(FIXTURES / "chain.py", tmp_path / "chain.py")
    return tmp_path


def test_text_format_is_flake8s(project):
    proc = rfa_lint("chain.py", "--res", "16", cwd=project)
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("chain.py:7:1: RFA110 ")
    # column 22: the layer's call, after 8 spaces and "self.conv5 = " (13 characters), counted from 1
    assert lines[2].startswith("chain.py:14:22: RFA101 ") and "'conv5'" in lines[2], lines
    assert all(number in lines[2] for number in ("16", "23", "31")), lines  # res, input RF, own RF
    assert "3 findings" in proc.stderr


PADDED = """
import torch.nn as nn


class Padded(nn.Module):  # padded 3x3 convs: RFs 3, 5, 7 on 7x7 maps; productive range 7-7
    def __init__(self):
        super().__init__()
        self.convs = nn.Sequential(*[nn.Conv2d(3, 3, 3, padding=1) for _ in range(3)])

    def forward(self, x):
        return self.convs(x)
"""


def test_exit_codes_select_ignore_and_exit_zero(project):
    (project / "padded.py").write_text(PADDED)
    clean = rfa_lint("padded.py", "--res", "7", "-q", cwd=project)
    assert (clean.returncode, clean.stdout) == (0, "")
    assert rfa_lint("chain.py", "--res", "16", "--exit-zero", "-q", cwd=project).returncode == 0
    ignored = rfa_lint("chain.py", "--res", "16", "--ignore", "RFA1", "-q", cwd=project)
    assert (ignored.returncode, ignored.stdout) == (0, "")
    selected = rfa_lint("chain.py", "--res", "16", "--select", "RFA101", "-q", cwd=project)
    assert [line.split()[1] for line in selected.stdout.splitlines()] == ["RFA101"]
    usage = rfa_lint("chain.py", "--res", "thirty", cwd=project)
    assert usage.returncode == 2 and "resolution" in usage.stderr


def test_github_format_and_output_file(project):
    proc = rfa_lint("chain.py", "--res", "16", "--format", "github", "--output-file", "out.txt", "-q",
                    cwd=project)
    assert proc.returncode == 1 and proc.stdout == ""
    first = (project / "out.txt").read_text().splitlines()[0]
    assert first.startswith("::warning file=chain.py,line=7,col=1,endLine=7,endColumn=42,title=RFA110::")


def test_graph_dir_draws_every_model_even_when_the_lint_is_clean(project):
    (project / "padded.py").write_text(PADDED)
    proc = rfa_lint("padded.py", "--res", "7", "--graph-dir", "pictures", "-q", cwd=project)
    assert (proc.returncode, proc.stdout) == (0, "")
    svg = (project / "pictures" / "padded.Padded.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "convs.2" in svg


def test_graph_dir_without_dot_says_how_to_get_it_and_still_lints(project, tmp_path):
    no_dot = tmp_path / "bin"
    no_dot.mkdir()
    env = dict(os.environ, PATH=str(no_dot))  # no dot (and no git) on PATH
    proc = rfa_lint("chain.py", "--res", "16", "--graph-dir", "pictures", "--graph-format", "png", "-q",
                    cwd=project, env=env)
    assert proc.returncode == 1 and "RFA101" in proc.stdout
    assert "apt-get install graphviz" in proc.stderr
    assert not list((project / "pictures").glob("*.png"))


def test_pyproject_table_sets_the_resolution(project):
    (project / "pyproject.toml").write_text('[tool.rfa-lint]\nres = 16\nignore = ["RFA110"]\n')
    proc = rfa_lint(".", "--format", "json", "-q", cwd=project)
    assert sorted(row["code"] for row in json.loads(proc.stdout)["findings"]) == ["RFA101", "RFA102"]
    (project / "pyproject.toml").write_text("[tool.rfa-lint]\nresolution = 16\n")
    bad = rfa_lint(".", cwd=project)
    assert bad.returncode == 2 and "unknown [tool.rfa-lint] keys: resolution" in bad.stderr


def test_flake8_reads_rfa_res_from_setup_cfg_and_runs_in_parallel(project):
    shutil.copy(FIXTURES / "sequential.py", project / "sequential.py")
    (project / "setup.cfg").write_text("[flake8]\nrfa-res = 16\n")
    proc = flake8("-j2", "--format=%(path)s:%(row)d:%(code)s", ".", cwd=project)
    got = sorted(proc.stdout.split())
    assert "./chain.py:14:RFA101" in got and "./chain.py:13:RFA102" in got
    assert any(line.startswith("./sequential.py:") for line in got)


def test_flake8_default_resolution_is_224(project):
    # at 224px no layer of the chain (largest RF 31) is flagged; only the range summary speaks
    proc = flake8("--format=%(row)d:%(code)s:%(text)s", "chain.py", cwd=project)
    assert proc.stdout.splitlines() == [
        "7:RFA110:resolution 224px is above the productive range of 'Chain' (exactly 31px): "
        "past 31px no layer's receptive field (RF) covers the whole image"
    ]


def test_flake8_lints_the_stdin_buffer_not_the_file_on_disk(project):
    disk = (project / "chain.py").read_text()
    buffer = disk.replace("self.conv5 = nn.Conv2d(8, 8, 3)", "self.conv5 = nn.Identity()")
    before = sorted(p.name for p in project.iterdir())
    args = ("--rfa-res=16", "--stdin-display-name=chain.py", "--format=%(row)d:%(code)s", "-")
    from_buffer = flake8(*args, cwd=project, stdin=buffer).stdout.split()
    from_disk = flake8(*args, cwd=project, stdin=disk).stdout.split()
    assert "14:RFA101" in from_disk and "14:RFA101" not in from_buffer  # conv5 is gone in the buffer
    assert "13:RFA102" in from_buffer
    assert sorted(p.name for p in project.iterdir()) == before  # nothing written next to the file


def test_rule_explanations():
    proc = rfa_lint("rule", "RFA101", cwd=FIXTURES)
    assert proc.returncode == 0 and "Why is this bad?" in proc.stdout
    listing = rfa_lint("rule", cwd=FIXTURES)
    assert "RFA101" in listing.stdout and "RFA904" in listing.stdout
    assert rfa_lint("rule", "RFA000", cwd=FIXTURES).returncode == 2


def test_folder_walk_skips_hidden_and_gitignored(tmp_path):
    for name in ("a.py", "sub/b.py", ".hidden/c.py", "ignored/d.py", "notes.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x = 1\n")
    assert sorted(p.relative_to(tmp_path).as_posix() for p in python_files([tmp_path])) == [
        "a.py", "ignored/d.py", "sub/b.py"
    ]
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / ".gitignore").write_text("ignored/\n")
    visible = sorted(p.relative_to(tmp_path).as_posix() for p in python_files([tmp_path]))
    assert visible == ["a.py", "sub/b.py"]
    assert python_files([tmp_path / "ignored" / "d.py"]) == [tmp_path / "ignored" / "d.py"]


def test_parse_resolution():
    assert parse_resolution("32") == (32,) and parse_resolution("32x48") == (32, 48)
    assert parse_resolution(64) == (64,) and parse_resolution("8x32x32") == (8, 32, 32)
    for bad in ("0", "16x16x16x16", "thirty"):
        with pytest.raises(ValueError):
            parse_resolution(bad)


def test_each_file_gets_its_own_projects_settings_and_flake8_honours_pyproject_ignore(tmp_path):
    for name, table in (("a", "res = 16"), ("b", 'res = 16\nignore = ["RFA1"]')):
        (tmp_path / name).mkdir()
        shutil.copy(FIXTURES / "chain.py", tmp_path / name / "chain.py")
        (tmp_path / name / "pyproject.toml").write_text(f"[tool.rfa-lint]\n{table}\n")
    for order in (("a", "b"), ("b", "a")):
        files = [f"{folder}/chain.py" for folder in order]
        proc = rfa_lint(*files, "--format", "json", "-q", "--no-cache", cwd=tmp_path)
        assert {(Path(r["path"]).parent.name, r["code"]) for r in json.loads(proc.stdout)["findings"]} == {
            ("a", "RFA110"), ("a", "RFA102"), ("a", "RFA101")
        }
    ignored = flake8("--rfa-no-cache", "chain.py", cwd=tmp_path / "b")
    assert (ignored.returncode, ignored.stdout) == (0, "")


def test_output_file_in_a_missing_folder_is_a_usage_error_before_any_work(project):
    proc = rfa_lint("chain.py", "--output-file", "no/such/dir/out.json", cwd=project)
    assert proc.returncode == 2 and "does not exist" in proc.stderr


def test_noqa_matches_flake8_semantics():
    text = 'a = 1  # noqa\nb = f(  # noqa: RFA1\n    2,\n)  # noqa: RFA101\nc = 3  # noqa: E501\nd = """\n"""  # noqa\n'
    findings = [Finding("x.py", line, 0, "RFA101", "m") for line in (1, 2, 3, 5, 6)]
    # 1: bare noqa; 2: prefix RFA1; 3: the statement's closing line does not cover line 3;
    # 5: another code; 6: a multi-line string token is covered by the noqa after it
    assert [f.line for f in without_noqa(findings, text)] == [3, 5]
    # a form feed is no line break for Python (str.splitlines would shift every later line)
    shifted = "# page\x0cbreak\nx = 1\ny = 2  # noqa: RFA101\n"
    assert [f.line for f in without_noqa([Finding("x.py", 3, 0, "RFA101", "m")], shifted)] == []


def test_a_fixed_import_is_seen_on_the_next_run_despite_the_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("RFA_LINT_CACHE_DIR")  # the project's own cache, as users have it
    (tmp_path / "pyproject.toml").write_text("[tool.rfa-lint]\nres = 16\n")  # the cache lives here
    text = (FIXTURES / "chain.py").read_text()
    (tmp_path / "chain.py").write_text(text.replace("import torch\n", "import torch\nimport helpers  # noqa\n"))
    first = rfa_lint("chain.py", "--format", "json", "-q", "--select", "RFA", cwd=tmp_path)
    assert [row["code"] for row in json.loads(first.stdout)["findings"]] == ["RFA901"]
    (tmp_path / "helpers.py").write_text("WIDTH = 8\n")
    second = rfa_lint("chain.py", "--format", "json", "-q", "--select", "RFA", cwd=tmp_path)
    codes = sorted(row["code"] for row in json.loads(second.stdout)["findings"])
    assert codes == ["RFA101", "RFA102", "RFA110"]
    assert (tmp_path / ".rfa_cache").is_dir()


# --- coverage: what a run analysed and skipped -------------------------------------------------

UNET = FIXTURES.parent / "discovery" / "unet"


def test_skipped_models_do_not_fail_the_run_but_the_summary_names_them_with_their_fix(tmp_path):
    shutil.copytree(UNET, tmp_path / "unet")
    proc = rfa_lint("unet/parts.py", "--res", "16", cwd=tmp_path)
    assert (proc.returncode, proc.stdout) == (0, "")  # RFA902 is off unless selected
    lines = proc.stderr.splitlines()
    assert lines[0].startswith("rfa-lint: 1 file, 0 models analysed, 2 skipped, 0 findings at 16px in ")
    assert lines[1] == "rfa-lint: not analysed (select RFA9 to report these as findings):"
    assert lines[2].startswith("  unet/parts.py:10: RFA902 model 'DoubleConv' needs constructor arguments "
                               "(cin, cout); give them with '# rfa-lint: build(...)'")
    selected = rfa_lint("unet/parts.py", "--res", "16", "--select", "RFA9", "-q", cwd=tmp_path)
    assert selected.returncode == 1 and selected.stdout.count("RFA902") == 2


def test_blocks_that_an_analysed_model_of_the_run_builds_are_not_skipped_models(tmp_path):
    shutil.copytree(UNET, tmp_path / "unet")
    proc = rfa_lint("unet", "--res", "16", "--select", "RFA", "--format", "json", cwd=tmp_path)
    report_ = json.loads(proc.stdout)
    models = {(Path(f["path"]).name, m["name"]): m for f in report_["files"] for m in f["models"]}
    assert list(models) == [("model.py", "UNet")]  # DoubleConv and Down are UNet's blocks
    unet = models["model.py", "UNet"]
    assert unet["analysed"] and unet["traced"] == [16, 16]
    assert {(Path(file).name, name) for file, name in unet["builds"]} == {
        ("model.py", "UNet"), ("parts.py", "DoubleConv"), ("parts.py", "Down")}
    assert {(Path(f["path"]).name, f["code"]) for f in report_["findings"]} == {
        ("model.py", "RFA110"), ("model.py", "RFA101")}
    assert "3 files, 1 model analysed, 0 skipped, 2 findings at 16px" in proc.stderr  # with __init__.py


def test_the_quick_starts_example_finds_the_imagenet_resnet_and_passes_the_cifar_net(tmp_path):
    """README's quick start: ResNet-18 (a factory annotated ``-> nn.Module``) at 32px has
    findings on the line that builds it; CifarNet, whose RF grows to exactly 32px, has none."""
    shutil.copy(FIXTURES.parents[1] / "examples" / "cifar_models.py", tmp_path / "cifar_models.py")
    proc = rfa_lint("cifar_models.py", "--res", "32", "--format", "json", cwd=tmp_path)
    report_ = json.loads(proc.stdout)
    assert proc.returncode == 1
    assert {(f["line"], f["code"]) for f in report_["findings"]} == {
        (15, "RFA110"), (16, "RFA101"), (16, "RFA102"), (16, "RFA104")}
    assert [(m["name"], m["analysed"]) for m in report_["files"][0]["models"]] == [
        ("imagenet_resnet18", True), ("CifarNet", True)]


def test_flake8_reports_skipped_models_only_when_selected_even_with_an_ignore_list(tmp_path):
    # flake8 drops its default ignore list when a config sets ``ignore``: the plugin decides
    shutil.copytree(UNET, tmp_path / "unet")
    (tmp_path / "setup.cfg").write_text("[flake8]\nignore = E203,W503\nrfa-res = 16\n")
    run = [sys.executable, "-m", "flake8", "--format=%(row)d:%(code)s", "unet/parts.py"]
    quiet = subprocess.run(run, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert "RFA" not in quiet.stdout
    shown = subprocess.run([*run, "--extend-select=RFA9"], cwd=tmp_path, capture_output=True, text=True,
                           timeout=600)
    assert {line for line in shown.stdout.split() if "RFA" in line} == {"10:RFA902", "21:RFA902"}


def test_flake8_over_code_without_models_loads_no_analysis_and_writes_no_cache(tmp_path):
    """flake8 loads the plugin for every run: where no file can hold a model (click's modules:
    relative imports and classes, no framework in the package), it costs the plugin's settings
    and a look at the texts, nothing more: no linter, sandbox, rule registry or graph code is
    imported, and no cache folder is made."""
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "core.py").write_text("from .base import Base\n\n\nclass Context(Base):\n    pass\n")
    (package / "base.py").write_text("class Base:\n    pass\n")
    probe = ("import sys\nfrom flake8.main import cli\nstatus = cli.main(['-j1', '--select=F', 'pkg'])\n"
             "print(status, *sorted(m for m in sys.modules if m.startswith('rfa_lint')))")
    run = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True,
                         timeout=600)
    status, *loaded = run.stdout.split()
    assert (status, run.stderr) == ("0", "")
    assert "rfa_lint.flake8_plugin" in loaded  # the plugin ran (flake8 runs them all, then selects)
    assert set(loaded) <= {"rfa_lint", "rfa_lint.flake8_plugin", "rfa_lint.settings", "rfa_lint.config",
                           "rfa_lint.files", "rfa_lint.limits", "rfa_lint.logs", "rfa_lint.source",
                           "rfa_lint.slices"}
    assert not Path(os.environ["RFA_LINT_CACHE_DIR"]).exists()
    assert not (tmp_path / ".rfa_cache").exists()
