"""Issue 23, recall while finding models: no model vanishes, factories of library models,
models made at module level (a script's model without its script), namespace folders, directive
values with their types.

The fixtures under fixtures/recall/discover_* hold the expected findings; both front doors lint
a copy of them.  The pure parts (the module slice, the text's candidates, a namespace module's
name, the settings) are checked on their own below.
"""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import pytest
from doors import door_command, door_env, rfa_lint, run_folders_in
from expectations import FIXTURES, expectation

from rfa_lint.files import module_name
from rfa_lint.settings import options_from
from rfa_lint.slices import instance_slice, is_script, slice_module
from rfa_lint.source import read_source, shape_json

RECALL = FIXTURES / "recall"
RES, LIMIT = "32", "120"  # a limit far above what the cases take, far below the script's sleep


def _copy(tmp_path: Path) -> Path:
    folder = tmp_path / "recall"
    folder.mkdir()
    for item in sorted(RECALL.glob("discover_*")):
        (shutil.copytree if item.is_dir() else shutil.copy)(item, folder / item.name)
    return folder


def _expected(folder: Path) -> set[tuple[str, int, str]]:
    return {(p.name, line, code) for p in folder.rglob("*.py") for line, code in expectation(p).findings}


@pytest.fixture(scope="module")
def door_runs(tmp_path_factory):
    """Each door's run over one copy of the fixtures: (door, folder, process)."""
    import subprocess

    runs = {}
    for door in ("flake8", "cli"):
        folder = _copy(tmp_path_factory.mktemp(door))
        options = ("--rfa-res=" + RES, "--rfa-timeout=" + LIMIT) if door == "flake8" else \
            ("--res", RES, "--timeout", LIMIT)
        env = door_env(folder, door)
        proc = subprocess.run(door_command(door, *options), cwd=folder, capture_output=True, text=True,
                              timeout=1200, env=env)
        assert run_folders_in(Path(env["TMPDIR"])) == [], "a run left its working folders behind"
        runs[door] = (folder, proc)
    return runs


@pytest.mark.parametrize("door", ["flake8", "cli"])
def test_every_door_finds_what_the_fixtures_expect(door_runs, door):
    folder, proc = door_runs[door]
    if door == "flake8":
        rows = (line.rsplit(":", 2) for line in proc.stdout.split())
        found = {(Path(path).name, int(row), code) for path, row, code in rows}
    else:
        found = {(Path(r["path"]).name, r["line"], r["code"]) for r in json.loads(proc.stdout)["findings"]}
    assert found == _expected(folder), proc.stdout + proc.stderr


@pytest.mark.parametrize("door", ["flake8", "cli"])
def test_a_script_that_trains_at_import_never_trains(door_runs, door):
    folder, _ = door_runs[door]
    assert not list(folder.glob("*.trained")), "the script's model.fit ran"


def test_a_base_class_is_listed_with_its_reason_and_subclasses(door_runs):
    _, proc = door_runs["cli"]
    models = {m["name"]: m for f in json.loads(proc.stdout)["files"] for m in f["models"]}
    for base, subclass in (("UNetModel", "SuperResModel"), ("Backbone", "SmallBackbone")):
        assert models[base]["code"] == "RFA902" and not models[base]["analysed"]
        assert f"a base class of {subclass}" in models[base]["reason"]
        assert models[subclass]["analysed"]
    for made_at_top in ("net", "model"):  # module-level models are models of the list too
        assert models[made_at_top]["analysed"]


# --- the module slice -------------------------------------------------------------------------

SCRIPT = '''\
import argparse
import numpy as np
from torch import nn
parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True)
args = parser.parse_args()
WIDTH = 8
data = np.load(args.data)
def block(n):
    return nn.Conv2d(WIDTH, WIDTH, 3)
class Net(nn.Module):
    scale = SCALE
SCALE = 2
model = nn.Sequential(nn.Conv2d(3, WIDTH, 3), block(1))
model.add_module("head", nn.Flatten())
model = model.to(args.data)
model.fit(data)
if __name__ == "__main__":
    main()
'''


def _lines(module: ast.Module) -> list[int]:
    return [s.lineno for s in module.body]


def test_a_script_is_told_from_a_module():
    assert is_script(ast.parse(SCRIPT))
    quiet = "import torch\nfrom torch import nn\nWIDTH = 8\nclass Net(nn.Module): pass\n" \
            "if __name__ == '__main__':\n    train()\n"
    assert not is_script(ast.parse(quiet))
    assert is_script(ast.parse("import torch\nfor epoch in range(3):\n    train_one_epoch(model)\n"))
    assert is_script(ast.parse("import keras\nhistory = model.fit(x)\n"))
    assert is_script(ast.parse("import torchvision\ndata = torchvision.datasets.MNIST('.', download=True)\n"))
    # what a definition's body would do is no work of the import, nor is a near name (fits)
    assert not is_script(ast.parse("def main():\n    model.fit(x)\nclass T:\n    def f(self):\n"
                                   "        self.train()\nok = bound.fits(3)\n"))
    assert is_script(ast.parse("@register(model.fit(x))\ndef f():\n    pass\n"))
    # code that exits, hangs or signals at import is no script's work: it runs, and meets the sandbox
    assert not is_script(ast.parse("import sys, os\nsys.path.insert(0, '.')\nos.kill(os.getpid(), 9)\n"
                                   "while True:\n    pass\n"))


def test_the_import_slice_keeps_definitions_and_what_they_use_only():
    tree = ast.parse(SCRIPT)
    # imports, the definitions, and SCALE (the class body reads it at definition); never the
    # options, the data, the model, fit, nor the __main__ block
    assert _lines(slice_module(tree)) == [1, 2, 3, 9, 11, 13]
    # a factory's body is needed when it is asked for: block() reads WIDTH
    assert _lines(slice_module(tree, {"block"})) == [1, 2, 3, 7, 9, 11, 13]


def test_a_module_level_model_runs_its_assignment_what_it_needs_and_what_shapes_it():
    tree = ast.parse(SCRIPT)
    done = slice_module(tree).body
    # WIDTH (line 7) for the call and block's body, the assignment, add_module; never the
    # rebinding to a device (line 16), nor what it would need (the options)
    assert _lines(instance_slice(tree, 14, done)) == [7, 14, 15]


# --- what the text shows ------------------------------------------------------------------------

def test_module_level_models_are_candidates_at_their_assignment():
    info = read_source(
        "import keras, timm, torch, torchvision\nfrom torch import nn\nclass Net(nn.Module): pass\n"
        "net = Net(depth=18)\nseq = keras.Sequential([keras.layers.Conv2D(8, 3)])\n"
        "tv = torchvision.models.resnet18().eval()\nx = torch.randn(3)\nloss = nn.CrossEntropyLoss()\n"
        "tm = timm.create_model('resnet18')\n"
    )
    instances = {c.name: (c.line, c.framework, c.evidence) for c in info.candidates if c.kind == "instance"}
    # a model library's call may make a model (a guess the child settles): no framework claimed
    assert instances == {"net": (4, "torch", "assignment"), "seq": (5, "keras", "assignment"),
                         "tv": (6, "torch", "assignment"), "tm": (9, None, "call")}


def test_a_module_level_model_built_as_its_class_is_built_is_that_class_not_a_second_model():
    """``model = Net()`` (a notebook's training cell) makes the model the candidate ``Net`` is:
    one model, not two with every finding counted twice; ``Net(depth=18)`` is a model of its own."""
    info = read_source("from torch import nn\nclass Net(nn.Module): pass\ndef make(): return Net()\n"
                       "model = Net()\nmoved = Net().to('cpu').eval()\nmade = make()\ndeep = Net(depth=18)\n")
    assert [(c.name, c.kind) for c in info.candidates] == [("Net", "class"), ("make", "factory"),
                                                           ("deep", "instance")]


def test_a_factory_that_only_builds_may_be_called_and_a_script_never():
    info = read_source(
        "import timm\ndef a():\n    return timm.create_model('resnet18')\n"
        "def b():\n    model = timm.create_model('resnet18')\n    model.load_state_dict(open('w'))\n"
        "    return model\n"
    )
    assert {c.name: c.only_builds for c in info.candidates} == {"a": True, "b": False}


def test_named_input_shapes_and_typed_values():
    info = read_source(
        "import torch\n# rfa-lint: build(depths=(2, 2), widths=[8]); input(x=(1, 3, 64, 64), t=(1,))\n"
        "class Net(torch.nn.Module): pass\n"
    )
    (net,) = info.candidates
    assert dict(net.build_kwargs) == {"depths": (2, 2), "widths": [8]}
    assert shape_json(net.input_shape) == {"x": [1, 3, 64, 64], "t": [1]}
    assert shape_json((1, 3, 8, 8)) == [1, 3, 8, 8]


def test_a_directive_on_no_model_is_stray_and_a_quoted_one_is_no_directive():
    text = ("import torch\n# rfa-lint: skip\nWIDTH = 8\ndef f(a):  # rfa-lint: input(1, 3, 8, 8)\n    pass\n"
            "# the fix: '# rfa-lint: build(...)'\n# rfa-lint: build(1)\nclass Net(torch.nn.Module): pass\n")
    info = read_source(text)
    assert [line for line, _, _ in info.stray_directives] == [2, 4]
    assert info.candidates[0].build_args == (1,)


# --- namespace folders and settings --------------------------------------------------------------

def test_a_module_that_imports_relatively_from_a_folder_without_init_is_in_a_namespace_package(tmp_path):
    path = tmp_path / "repo" / "models" / "convnext.py"
    assert module_name(path, "from .blocks import down\n") == (tmp_path / "repo", "models.convnext")
    assert module_name(path, "from ..utils import x\n") == (tmp_path, "repo.models.convnext")
    assert module_name(path, "import torch\n") == (tmp_path / "repo" / "models", "convnext")


def test_the_models_setting_takes_named_input_shapes():
    shapes = {"x": [1, 3, 64, 64], "t": [1]}
    options = options_from({"models": {"UNet": {"input-shape": shapes}}})
    assert options.models["UNet"]["input-shape"] == shapes
    with pytest.raises(ValueError, match="input-shape"):
        options_from({"models": {"UNet": {"input-shape": {"x": [1, 0]}}}})


def test_a_models_table_that_names_nothing_of_the_project_is_a_usage_error(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.rfa-lint.models.UNett]\nargs = [1]\n"
                                             "[tool.rfa-lint.models.Net]\nargs = [1]\n")
    (tmp_path / "net.py").write_text("import torch\nclass Net(torch.nn.Module):\n    pass\n")
    (tmp_path / "other.py").write_text("import torch\n")
    proc = rfa_lint("other.py", "--no-exec", cwd=tmp_path)  # Net is defined by a file not linted
    assert proc.returncode == 2
    assert "[tool.rfa-lint.models.UNett] names no class, function or assignment" in proc.stderr
    assert "models.Net]" not in proc.stderr
    (tmp_path / "unet.py").write_text("UNett = None\n")
    assert rfa_lint("other.py", "--no-exec", cwd=tmp_path).returncode == 0


def test_the_bases_of_a_models_parts_are_its_blocks_and_its_own_bases_are_not():
    from torch import nn

    from rfa_lint.sandbox import discovery

    class Head(nn.Module):  # ultralytics' Segment: built only as its subclass
        def __init__(self, channels=()):
            super().__init__()
            self.conv = nn.Conv2d(channels[0], 4, 1)

    class Head26(Head):
        def __init__(self):
            super().__init__((8,))

    class Base(nn.Module):  # a model of its own that fails alone: listed, never a block
        pass

    class Model(Base):
        def __init__(self):
            super().__init__()
            self.stem, self.head = nn.Conv2d(3, 8, 3), Head26()

    assert {name for _, name in discovery.built_classes(Model())} == {"Model", "Head26", "Head"}
