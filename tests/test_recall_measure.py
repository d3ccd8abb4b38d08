"""Issue 23 (recall), what the zoo measurements found wrong in the findings themselves.

A model with no window layer (activations, norms, 1x1 projections, dense heads, a model traced
without spatial axes) has no productive range: it is analysed and gets no RFA110, while a model
with windows keeps its range finding.  A 1x1 conv on positions grouped far apart (CrossFormer's
long-distance attention) keeps their layout, so the conv after the round trip is an ordinary
conv (no RFA905) with the RF the gradient oracle measures.  fixtures/recall/measure_*.py say
what they must give (``# expect:``), all at one resolution so that one run per front door
lints them together.
"""

from __future__ import annotations

import importlib.util
import shutil

import pytest
from doors import DOORS, door_expected, run_door
from expectations import FIXTURES, expectation
from oracle import analytic, disagreement, measure, node_of, positive_

from rfa_lint.lint import analyse_file
from rfa_lint.settings import options_from

pytestmark = pytest.mark.usefixtures("warm_worker")  # one framework import per module, not per run
FILES = sorted((FIXTURES / "recall").glob("measure_*.py"))
RES = "32"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """The fixtures, copied: linting writes nothing next to the repository's files."""
    root = tmp_path_factory.mktemp("recall") / "recall"
    root.mkdir()
    for path in FILES:
        assert expectation(path).res == RES, f"{path.name}: the run lints every fixture at {RES}px"
        shutil.copy(path, root)
    return root


@pytest.mark.parametrize("door", DOORS)
def test_front_doors_give_exactly_the_written_findings(door, folder):
    if door == "flake8":
        options = [f"--rfa-res={RES}", "--rfa-timeout=120"]
    else:
        options = ["--res", RES, "--timeout", "120"]
    found, output = run_door(door, folder, *options)
    assert found == door_expected(door, folder), output


def test_models_without_a_window_are_analysed_with_nothing_to_say():
    path = FIXTURES / "recall" / "measure_no_window.py"
    analysis = analyse_file(str(path), options_from({"res": RES, "timeout": 120}))
    assert {m.name: m.analysed for m in analysis.models} == {
        "SiLUOnly": True, "Mish": True, "L2Norm": True, "GEGLU": True, "MLPHead": True, "VectorMLP": True,
        "TwoConvs": True}
    assert [(f.code, f.details["model"], f.details["range"]) for f in analysis.findings] == [
        ("RFA110", "TwoConvs", [[5, 5], [5, 5]])]


def test_a_conv_after_a_long_distance_round_trip_has_the_measured_rf():
    path = FIXTURES / "recall" / "measure_rearranged.py"
    spec = importlib.util.spec_from_file_location("measure_rearranged", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model, shape = module.LongDistance(), (1, 3, 64, 64)
    plain, graph = analytic(model, shape)
    assert plain["unsupported"] == []
    node = node_of(graph, "next_stage")
    assert node.rf_max_per_axis == (16, 16)  # 4 + (4 - 1) * 4
    supports = measure(positive_(model), shape, {"next_stage": model.next_stage})["next_stage"]
    assert disagreement(node, supports) is None


def test_an_unsupported_layer_several_models_share_is_said_once():
    """Three models of one file run the same Detect: one RFA905 at the line of its cat (the doors
    compare sets; this counts)."""
    path = FIXTURES / "recall" / "measure_shared_unsupported.py"
    analysis = analyse_file(str(path), options_from({"res": RES, "timeout": 120}))
    assert {m.name for m in analysis.models if m.analysed} >= {"Net", "Pose", "Segment"}
    lines = path.read_text().splitlines()
    line = next(n for n, text in enumerate(lines, 1) if text.endswith("# expect: RFA905"))
    assert [(f.line, f.code) for f in analysis.findings if f.code == "RFA905"] == [(line, "RFA905")]
