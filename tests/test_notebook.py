"""Notebooks as modules: the code cells joined, IPython's syntax neutralised line for line, every
line mapped back to its cell, and edits written back into the cells with nbformat."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from rfa_lint import notebook
from rfa_lint.cache import Cache
from rfa_lint.lint import analyse_file
from rfa_lint.report import JSON_SCHEMA
from rfa_lint.settings import options_from

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "notebooks"


def module_of(*cells) -> notebook.Notebook:
    return notebook.read(nbformat.writes(new_notebook(cells=list(cells))).encode())


@pytest.mark.parametrize("name", ["cifar_torch.ipynb", "keras_functional.ipynb", "define_then_train.ipynb"])
def test_every_fixture_is_a_module_python_compiles(name):
    nb = notebook.read((FIXTURES / name).read_bytes())
    compile(nb.text, name, "exec")
    assert len(nb.text.splitlines()) == len(nb.places)


def test_lines_map_to_cells_counted_as_jupyter_shows_them():
    """Cell 1 is markdown and cell 2 a shell escape: the class starts at cell 4, line 1."""
    nb = notebook.read((FIXTURES / "cifar_torch.ipynb").read_bytes())
    lines = nb.text.splitlines()
    class_line = lines.index("class Net(nn.Module):  # expect: RFA110") + 1
    assert nb.place(class_line) == (4, 1)
    critical = next(i for i, line in enumerate(lines, 1) if "expect: RFA102" in line)
    assert nb.place(critical) == (4, 9)


def test_magics_escapes_and_help_are_neutralised_in_place():
    nb = module_of(
        new_markdown_cell("text"),
        new_code_cell("!pip install timm\n%matplotlib inline\nimport os\nfiles = !ls\nos.path?\n??os"),
        new_code_cell("%%time\nx = 1\n%timeit x + 1\nif x:\n    !echo yes"),
        new_code_cell("%%bash\necho hi\nexit 1"),
        new_code_cell("y = x != 2\nz = x % 2"),
    )
    assert nb.text.splitlines() == [
        "pass", "pass", "import os", "files = None", "pass", "pass",
        "pass", "x = 1", "pass", "if x:", "    pass",
        "# %%bash", "# echo hi", "# exit 1",
        "y = x != 2", "z = x % 2",
    ]
    assert nb.places[0] == (2, 1) and nb.places[6] == (3, 1) and nb.places[-1] == (5, 2)
    compile(nb.text, "nb", "exec")


def test_an_edit_goes_back_into_its_cell_keeping_outputs_metadata_and_format():
    path = FIXTURES / "cifar_torch.ipynb"
    before = nbformat.reads(path.read_text(), as_version=nbformat.NO_CONVERT)
    nb = notebook.read(path.read_bytes())
    lines = nb.text.splitlines(keepends=True)
    target = next(i for i, line in enumerate(lines) if "expect: RFA101" in line)
    lines[target] = lines[target].rstrip("\n") + "  # noqa: RFA101\n"
    written = nb.with_module_text("".join(lines))
    after = nbformat.reads(written, as_version=nbformat.NO_CONVERT)
    nbformat.validate(after)
    assert after.metadata == before.metadata and after.nbformat == before.nbformat
    changed = [i for i, (a, b) in enumerate(zip(before.cells, after.cells)) if a != b]
    assert changed == [3]  # cell 4 only, outputs of every other cell as they were
    assert after.cells[3].source.splitlines()[9].endswith("# expect: RFA101 (35 -> 51)  # noqa: RFA101")
    assert after.cells[3].source == before.cells[3].source.replace(
        "(35 -> 51)", "(35 -> 51)  # noqa: RFA101")
    assert [c.get("outputs") for c in after.cells] == [c.get("outputs") for c in before.cells]
    assert notebook.read(written.encode()).text == "".join(lines)


def test_a_neutralised_line_is_never_written_back():
    nb = module_of(new_code_cell("%matplotlib inline\nimport os"))
    written = json.loads(nb.with_module_text("pass  # noqa: RFA101\nimport os\n"))
    assert "".join(written["cells"][0]["source"]) == "%matplotlib inline\nimport os"
    with pytest.raises(ValueError):
        nb.with_module_text("pass\n")


@pytest.mark.parametrize("data", [b"", b"{}", b"not json", b'{"cells": 3}', b"\xff\xfe"])
def test_what_nbformat_refuses_is_not_a_notebook(data):
    with pytest.raises(notebook.NotANotebook):
        notebook.read(data)


# --- through the command line ---------------------------------------------------------------------

EXPECT = re.compile(r"#\s*expect:\s*(?P<codes>RFA\d{3}(?:\s*,\s*RFA\d{3})*)")


def expected(folder: Path) -> set[tuple[str, int, int, str]]:
    """(notebook, cell, line, code) as the ``# expect: CODES`` comments in the cells write them."""
    found = set()
    for path in sorted(folder.glob("*.ipynb")):
        cells = notebook.read(path.read_bytes())
        for number, line in enumerate(cells.text.splitlines(), start=1):
            match = EXPECT.search(line)
            for code in re.split(r"\s*,\s*", match["codes"]) if match else ():
                found.add((path.name, *cells.place(number), code))
    return found


def rfa_lint(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rfa_lint", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(scope="module")
def notebooks(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("notebooks")
    for path in FIXTURES.glob("*.ipynb"):
        shutil.copy(path, folder)
    return folder


@pytest.fixture(scope="module")
def report(notebooks) -> dict:
    """One JSON run over the three notebooks (the folder walked, as a user runs it)."""
    proc = rfa_lint(".", "--res", "32", "--format", "json", "--no-cache", cwd=notebooks)
    assert proc.returncode == 1, proc.stderr
    return json.loads(proc.stdout)


def test_findings_land_on_the_cell_and_line_the_cells_say_and_training_never_runs(notebooks, report):
    """Every expected (cell, line, code) and nothing else.  The training cells download CIFAR-10,
    fit, or step a real optimizer through a meta model: had any run, the notebook would be
    RFA901/RFA914, not analysed."""
    found = {(Path(f["path"]).name, f["cell"], f["line"], f["code"]) for f in report["findings"]}
    assert found == expected(notebooks)
    assert jsonschema.Draft202012Validator(JSON_SCHEMA).is_valid(report)
    models = {(Path(f["path"]).name, m["name"], m["cell"], m["analysed"])
              for f in report["files"] for m in f["models"]}
    assert models == {("cifar_torch.ipynb", "Net", 4, True), ("keras_functional.ipynb", "model", 3, True),
                      ("define_then_train.ipynb", "model", 3, True)}
    assert not (notebooks / "TRAINED").exists()


def test_text_output_names_the_cell_as_ruff_does(notebooks):
    proc = rfa_lint("cifar_torch.ipynb", "--res", "32", "--no-cache", cwd=notebooks)
    assert "cifar_torch.ipynb:cell 4:9:13: RFA102 critical layer 'features.4' at 32px" in proc.stdout
    assert "cifar_torch.ipynb:cell 4:10:13: RFA101 unproductive layer 'features.5'" in proc.stdout


def test_add_noqa_writes_into_the_cells_and_keeps_the_rest_of_the_notebook(tmp_path):
    shutil.copy(FIXTURES / "cifar_torch.ipynb", tmp_path)
    before = nbformat.read(tmp_path / "cifar_torch.ipynb", as_version=nbformat.NO_CONVERT)
    added = rfa_lint("cifar_torch.ipynb", "--res", "32", "--no-cache", "--add-noqa", cwd=tmp_path)
    assert added.returncode == 0 and "added 3 noqa comments to 1 file" in added.stderr, added.stderr
    after = nbformat.read(tmp_path / "cifar_torch.ipynb", as_version=nbformat.NO_CONVERT)
    nbformat.validate(after)
    strip = re.compile(r"  # noqa: RFA\d{3}(,RFA\d{3})*$", re.MULTILINE)
    assert [strip.sub("", c.source) for c in after.cells] == [c.source for c in before.cells]
    assert [c.get("outputs") for c in after.cells] == [c.get("outputs") for c in before.cells]
    assert after.metadata == before.metadata
    rerun = rfa_lint("cifar_torch.ipynb", "--res", "32", "--no-cache", cwd=tmp_path)
    assert rerun.returncode == 0 and rerun.stdout == "", rerun.stdout


def test_new_outputs_leave_the_cache_entry_valid(tmp_path):
    """The cache keys a notebook by its code: a re-run that only changed outputs is a hit."""
    path = tmp_path / "nb.ipynb"
    shutil.copy(FIXTURES / "define_then_train.ipynb", path)
    options, cache = options_from({"res": 32}), Cache(tmp_path / "cache")
    first = analyse_file(str(path), options, cache=cache)
    executed = nbformat.read(path, as_version=4)
    executed.cells[3].outputs = [nbformat.v4.new_output("stream", name="stdout", text="step 0 loss 1.2\n")]
    nbformat.write(executed, path)
    code = notebook.read(path.read_bytes()).text
    assert Cache(tmp_path / "cache").load(str(path), code, options) is not None
    assert analyse_file(str(path), options, cache=Cache(tmp_path / "cache")).findings == first.findings


# --- explain and pictures: sites in cells ----------------------------------------------------------

def test_explain_gives_each_layers_site_as_its_cell_and_line(notebooks):
    """Each layer row's site is ``nb.ipynb:cell N:L``, the line of the cell that built it: a
    conv or pool layer's line constructs one.  The CIFAR net is checked row by row."""
    proc = rfa_lint("explain", ".", "--res", "32", "--format", "json", "--no-cache", cwd=notebooks)
    assert proc.returncode == 0, proc.stderr
    explained = json.loads(proc.stdout)
    assert {(Path(e["path"]).name, e["model"]) for e in explained} == {
        ("cifar_torch.ipynb", "Net"), ("keras_functional.ipynb", "model"),
        ("define_then_train.ipynb", "model")}
    for e in explained:
        cells = nbformat.read(notebooks / e["path"], as_version=4).cells
        for row in e["layers"]:
            name, cell, line = re.fullmatch(r"(.+):cell (\d+):(\d+)", row["site"]).groups()
            assert name == Path(e["path"]).name
            if row["kind"] in ("conv", "pool"):
                assert re.search(r"Conv|Pool", cells[int(cell) - 1].source.splitlines()[int(line) - 1]), row
    net = next(e for e in explained if e["model"] == "Net")
    assert {row["path"]: row["site"] for row in net["layers"]} == {
        **{f"features.{i}": f"cifar_torch.ipynb:cell 4:{5 + i}" for i in range(6)},
        "head": "cifar_torch.ipynb:cell 4:12", "mean": "cifar_torch.ipynb:cell 4:15"}
    text = rfa_lint("explain", "cifar_torch.ipynb", "--res", "32", "--no-cache", "--diff", cwd=notebooks)
    assert re.search(r"^features\.5 +cifar_torch\.ipynb:cell 4:10 +conv ", text.stdout, re.MULTILINE)
    assert "rfa-lint: --diff shows no diff of a notebook yet: cifar_torch.ipynb" in text.stderr


def test_pictures_of_a_notebooks_models_name_cells(notebooks, tmp_path):
    proc = rfa_lint("define_then_train.ipynb", "--res", "32", "--no-cache", "--graph-dir", str(tmp_path),
                    "--graph-format", "dot", "-q", cwd=notebooks)
    assert proc.returncode == 1, proc.stderr
    (picture,) = tmp_path.iterdir()
    dot = picture.read_text(encoding="utf-8")
    assert "define_then_train.ipynb:cell 2:13" in dot  # the stem
    assert "define_then_train.ipynb:cell 2:4" in dot  # a Block's conv
    assert not re.search(r"define_then_train\.ipynb:\d", dot)  # no line of the joined module
