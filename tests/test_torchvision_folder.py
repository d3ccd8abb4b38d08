"""The real-world corpus: the installed torchvision/models/ folder linted at 32px by the CLI."""

from __future__ import annotations

import ast
import collections
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

MODELS = Path(importlib.util.find_spec("torchvision").submodule_search_locations[0]) / "models"


def conv_lines(path: Path, class_name: str) -> set[int]:
    """Lines of the class's ``nn.Conv2d(...)`` / ``conv3x3(...)`` / ``conv1x1(...)`` assignments."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name)
    return {
        node.lineno
        for node in ast.walk(cls)
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
        and ast.unparse(node.value.func).split(".")[-1] in ("Conv2d", "conv3x3", "conv1x1")
    }


@pytest.mark.integration
def test_torchvision_models_folder_at_32px(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "rfa_lint", str(MODELS), "--res", "32", "--format", "json", "--select", "RFA",
         "--output-file", str(tmp_path / "report.json")],
        capture_output=True, text=True, timeout=3000,
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    rows = json.loads((tmp_path / "report.json").read_text())["findings"]
    print(proc.stderr.splitlines()[-1])
    print(collections.Counter(r["code"] for r in rows))
    # torchvision also holds detection heads that need arguments (RFA902), modules whose forward
    # takes several inputs (RFA904) and factories that download backbone weights (RFA903, no
    # network here): diagnostics, not crashes.  A crash is a child dying or rfa-lint failing.
    crashes = [r for r in rows if r["code"] in ("RFA906", "RFA907", "RFA908", "RFA999")]
    assert crashes == []
    resnet = MODELS / "resnet.py"
    flagged = {r["line"] for r in rows if r["path"] == str(resnet) and r["code"] in ("RFA101", "RFA102")}
    for block in ("BasicBlock", "Bottleneck"):
        lines = conv_lines(resnet, block)
        assert lines and lines & flagged, (block, sorted(lines), sorted(flagged))
    # flake8 puts the same findings on the same lines
    flake8 = subprocess.run(
        [sys.executable, "-m", "flake8", "--select=RFA1", "--rfa-res=32", "--format=%(row)d:%(code)s",
         str(resnet)],
        capture_output=True, text=True, timeout=600,
    )
    ours = {f"{r['line']}:{r['code']}" for r in rows
            if r["path"] == str(resnet) and r["code"].startswith("RFA1")}
    assert set(flake8.stdout.split()) == ours
