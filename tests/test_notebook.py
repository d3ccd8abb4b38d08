"""Notebooks as modules: the code cells joined, IPython's syntax neutralised line for line, every
line mapped back to its cell, and edits written back into the cells with nbformat."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from rfa_lint import notebook

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
