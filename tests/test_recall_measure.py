"""Issue 23 (recall), what the zoo measurements found wrong in the findings themselves.

A model with no window layer (activations, norms, 1x1 projections, dense heads, a model traced
without spatial axes) has no productive range: it is analysed and gets no RFA110, while a model
with windows keeps its range finding.  fixtures/recall/measure_*.py say what they must give
(``# expect:``), all at one resolution so that one run per front door lints them together.
"""

from __future__ import annotations

import shutil

import pytest
from doors import DOORS, door_expected, run_door
from expectations import FIXTURES, expectation

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
