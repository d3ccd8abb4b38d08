"""``rfa-lint explain --diff`` through the command: literal arguments are rewritten where the
layer is built or, through helpers' parameters, at the call that gives the value; every edit the
diff cannot make is named with what to do by hand; a written diff builds the suggested model."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from doors import rfa_lint
from expectations import FIXTURES

MAKE_LAYER = FIXTURES / "explain" / "make_layer.py"
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def explain(folder: Path, name: str, *args: str) -> list[dict]:
    proc = rfa_lint("explain", name, "--res", "16", "--diff", "--format", "json", *args, cwd=folder)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_a_stride_given_to_a_helper_is_diffed_at_the_call_that_gives_it(tmp_path):
    shutil.copy(MAKE_LAYER, tmp_path / "net.py")
    before = (tmp_path / "net.py").read_text()
    (model,) = explain(tmp_path, "net.py")
    by_title = {s["title"]: s for s in model["suggestions"]}
    both = by_title["stem kernel 7 -> 3 at stem; remove the downsampling at layer2.0 (stride 2 -> 1); "
                    "remove the downsampling at layer3.0 (stride 2 -> 1)"]
    # layer2.0's conv1 and shortcut take _make_layer's stride through Block and conv3x3
    for line in ("-        self.stem = nn.Conv2d(3, 16, kernel_size=7, stride=2, padding=3, bias=False)",
                 "+        self.stem = nn.Conv2d(3, 16, kernel_size=3, stride=2, padding=1, bias=False)",
                 "-        self.layer2 = self._make_layer(32, blocks[1], stride=2)",
                 "+        self.layer2 = self._make_layer(32, blocks[1], stride=1)",
                 "+        self.layer3 = self._make_layer(64, blocks[2], stride=1)"):
        assert line in both["diff"].splitlines()
    # Block reads the same stride to decide its shortcut: said, for the user to check
    assert both["by_hand"] == [f"check: remove the downsampling at {stage}.0 (stride 2 -> 1): the changed "
                               "literal also reaches `if stride != 1 or c_in != c_out:` (net.py:22)"
                               for stage in ("layer2", "layer3")]
    assert (tmp_path / "net.py").read_text() == before  # printed, never written

    # the diff, applied with patch(1), is the model the suggestion measured
    patched = tmp_path / "patched"
    patched.mkdir()
    shutil.copy(MAKE_LAYER, patched / "net.py")
    subprocess.run(["patch", "-s", "-p1"], input=both["diff"], text=True, check=True, cwd=patched, timeout=60)
    (after,) = explain(patched, "net.py")
    layers = after["waste"]["layers"]
    assert (layers["unproductive"], layers["critical"]) == (both["unproductive_after"],
                                                            both["critical_after"])


def test_a_suggestion_with_a_cut_diffs_what_is_literal_and_says_the_rest(tmp_path):
    shutil.copy(MAKE_LAYER, tmp_path / "net.py")
    proc = rfa_lint("explain", "net.py", "--res", "16", "--diff", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    first = proc.stdout.split("    1. ")[1].split("    2. ")[0].split("  performance")[0]
    assert "+        self.stem = nn.Conv2d(3, 16, kernel_size=3, stride=2, padding=1, bias=False)" in first
    assert "by hand: the cut (remove what follows layer3.0.relu from __init__ and forward; the head" in first


def test_the_readme_example_says_why_nothing_is_diffed(tmp_path):
    # imagenet_resnet18 is torchvision's resnet18(): every literal lies in torchvision's file
    shutil.copy(EXAMPLES / "cifar_models.py", tmp_path)
    (model,) = explain(tmp_path, "cifar_models.py", "--model", "imagenet_resnet18")
    for suggestion in model["suggestions"]:
        assert suggestion["diff"] == ""
        edits = [e for e in suggestion["edits"] if e["op"] != "resolution"]
        assert len(suggestion["by_hand"]) == len(edits)
    notes = [note for s in model["suggestions"] for note in s["by_hand"]]
    assert any(note.startswith("by hand: stem kernel 7 -> 3 at conv1 (its kernel is the literal at ")
               and "torchvision/models/resnet.py:" in note and note.endswith(", not in this file)")
               for note in notes)
    assert "by hand: drop maxpool (its constructor, and its call in forward)" in notes
