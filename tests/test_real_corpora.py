"""rfa-lint on model code nobody here wrote, installed from PyPI: timm and segmentation_models_pytorch.

Recall: every model these files define is found and analysed, or skipped with a reason that is
not a failure of rfa-lint (a model that needs arguments, takes several inputs, or whose own code
raises).  The counts are printed for the record (``pytest -s``).
"""

from __future__ import annotations

import ast
import collections
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

#: rfa-lint's own failures: a child that died or hung, or rfa-lint's code raising.
FAILURES = {"RFA906", "RFA907", "RFA908", "RFA999"}
#: unannotated factories (dla), annotations naming a sibling module's class (deit), and a
#: file of many annotated factories with a builder in between (mobilenetv3)
TIMM_FILES = ("dla.py", "deit.py", "mobilenetv3.py")
SMP_NETS = {"DeepLabV3", "DeepLabV3Plus", "DPT", "FPN", "Linknet", "MAnet", "PAN", "PSPNet", "Segformer",
            "Unet", "UnetPlusPlus", "UPerNet"}


def package_folder(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None:
        pytest.skip(f"{name} is not installed")
    return Path(spec.submodule_search_locations[0])


def lint_json(tmp_path: Path, *args: str) -> dict:
    report = tmp_path / "report.json"
    proc = subprocess.run(
        [sys.executable, "-m", "rfa_lint", *args, "--select", "RFA", "--format", "json",
         "--output-file", str(report)],
        capture_output=True, text=True, timeout=3000,
    )
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    print(proc.stderr.splitlines()[-1] if proc.stderr else "")
    return json.loads(report.read_text())


def registered_factories(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {
        node.name for node in tree.body if isinstance(node, ast.FunctionDef)
        and any(ast.unparse(d).split("(")[0].endswith("register_model") for d in node.decorator_list)
    }


def test_every_registered_timm_factory_is_analysed_or_skipped_for_a_reason(tmp_path):
    models = package_folder("timm") / "models"
    files = [models / name for name in TIMM_FILES]
    report = lint_json(tmp_path, *map(str, files), "--res", "224")
    records = {(Path(f["path"]).name, m["name"]): m for f in report["files"] for m in f["models"]}
    outcome = collections.Counter()
    for path in files:
        factories = registered_factories(path)
        assert factories, path
        for name in sorted(factories):
            record = records.get((path.name, name))
            assert record is not None, f"{path.name}: {name} was not found"
            assert record["code"] not in FAILURES, (name, record["reason"])
            outcome["analysed" if record["analysed"] else record["code"]] += 1
    print(f"timm {', '.join(TIMM_FILES)}: {sum(outcome.values())} registered factories: {dict(outcome)}")
    assert outcome["analysed"] >= 0.9 * sum(outcome.values())
    assert not [f for f in report["findings"] if f["code"] in FAILURES]


def test_every_segmentation_models_pytorch_net_is_analysed(tmp_path):
    decoders = package_folder("segmentation_models_pytorch") / "decoders"
    report = lint_json(tmp_path, str(decoders), "--res", "256")
    analysed = {m["name"] for f in report["files"] for m in f["models"] if m["analysed"]}
    assert SMP_NETS <= analysed, SMP_NETS - analysed
    assert not [f for f in report["findings"] if f["code"] in FAILURES]
