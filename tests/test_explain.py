"""rfa-lint explain: costs recorded by the frontends, the cost model, edits, suggestions, diffs,
and the reports (text, JSON, and the HTML page in a real headless Chromium).

RF figures are derived by hand in comments (``rf += (k_eff - 1) * j``, ``j *= s``); MACs by
``out_h * out_w * k_h * k_w * c_in * c_out / groups`` per conv and ``in * out`` per linear.
"""

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from torch import nn
from torchvision.models import resnet18

from rfa_lint.explain import explain_plain, with_diffs
from rfa_lint.explain.cost import node_maps, remapped, total_macs
from rfa_lint.explain.diff import suggestion_diff
from rfa_lint.explain.edits import Edit, apply, cut, downsamplings, editable, stem
from rfa_lint.explain.facts import built, census
from rfa_lint.explain.suggest import suggestions
from rfa_lint.frontends.torch import building_context, to_plain
from rfa_lint.settings import Options

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))
from render_walkthrough import resnet18_efficient  # noqa: E402

RESNET_FILE = """\
from torch import nn
from torchvision.models import resnet18


def model() -> nn.Module:
    return resnet18()
"""

SMALL_NET = """\
from torch import nn


class SmallNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 32, kernel_size=7, stride=2, padding=3)  # a 224px stem
        self.pool = nn.MaxPool2d(3, 2, 1)
        self.body = nn.Sequential(
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(),
        )
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 10))

    def forward(self, x):
        return self.head(self.body(self.pool(self.stem(x))))
"""


def plain_of(factory, side):
    with building_context():
        model = factory()
    return to_plain(model, resolution=(side,))


def node(plain, name):
    return next(spec for spec in plain["nodes"] if spec["name"] == name)


@pytest.fixture(scope="module")
def resnet16():
    return plain_of(resnet18, 16)


# --- what the frontend records -------------------------------------------------------------------

class Costly(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.grouped = nn.Conv2d(8, 8, 3, groups=4, bias=False)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        x = self.grouped(self.conv(x))
        return self.fc(nn.functional.adaptive_avg_pool2d(x, 1).flatten(1))


def test_params_and_macs_of_each_layer_by_hand():
    plain = plain_of(Costly, 16)
    conv, grouped, fc = (node(plain, n) for n in ("conv", "grouped", "fc"))
    # conv: 16x16 out (padding 1), 3x3 kernel, 3 -> 8 channels: 16*16*3*3*3*8 = 55,296 MACs;
    # params 3*3*3*8 weights + 8 biases = 224
    assert (conv["macs"], conv["params"], conv["channels"]) == (55_296, 224, 8)
    # grouped, unpadded: 14x14 out, 3x3, 8 -> 8 in 4 groups: 14*14*3*3*8*8/4 = 28,224; 3*3*2*8 = 144
    assert (grouped["macs"], grouped["params"]) == (28_224, 144)
    # linear 8 -> 10 on one vector: 80 MACs, 80 + 10 params
    assert (fc["macs"], fc["params"]) == (80, 90)


def test_resnet18_at_224_has_the_published_compute():
    # torchvision documents resnet18 at 1.81 GFLOPS (multiply-accumulates) and 11,689,512 params;
    # the usual figure is 1.82 G.  conv1 alone: 112*112*7*7*3*64 = 118,013,952.
    plain = plain_of(resnet18, 224)
    assert node(plain, "conv1")["macs"] == 118_013_952
    total = sum(spec.get("macs", 0) for spec in plain["nodes"])
    assert abs(total - 1.82e9) / 1.82e9 < 0.01
    assert sum(spec.get("params", 0) for spec in plain["nodes"]) == 11_689_512


# --- the cost model ------------------------------------------------------------------------------

def test_map_walk_at_another_resolution_gives_the_traced_compute(resnet16):
    # traced at 16px, walked to 224px: every map as traced at 224, so the same total
    at_224 = plain_of(resnet18, 224)
    assert total_macs(resnet16, (224,)) == total_macs(at_224, (224,))
    assert node_maps(resnet16, (224,))[-2] == (1, 1)  # the adaptive pool keeps its output


def test_macs_after_an_edit_come_from_the_edited_maps(resnet16):
    base = editable(resnet16)
    edited = apply(base, [Edit("stride", ("conv1",))])
    maps = node_maps(edited, (16,))
    conv1 = [s["name"] for s in edited["nodes"]].index("conv1")
    # stride 1 with padding 3 keeps 16x16; the max-pool (stride 2) then gives 8x8
    assert maps[conv1] == (16, 16) and maps[conv1 + 3] == (8, 8)
    # conv1: 16*16*7*7*3*64 = 2,408,448 MACs (4x the 602,112 at 8x8)
    assert node(edited, "conv1")["macs"] * 4 == 2_408_448


def test_the_suggested_efficient_resnet_costs_what_the_built_one_does(resnet16):
    """The seed's efficient ResNet-18 (3x3 stem, three blocks, the head) built by hand and traced
    measures the MACs that the edited graph's cost model predicts."""
    best = next(s for s in suggestions(resnet16, (16,)) if s.kind == "efficiency")
    assert [e.op for e in best.edits] == ["kernel", "cut"]
    built_macs = sum(spec.get("macs", 0) for spec in plain_of(resnet18_efficient, 16)["nodes"])
    assert best.macs_factor == pytest.approx(built_macs / total_macs(resnet16, (16,)))


# --- edits ---------------------------------------------------------------------------------------

def chain():
    """input -> conv 7/2 -> pool 3/2 -> conv 3 -> conv 3/2 -> conv 3 -> global pool -> dense."""
    specs = [("input", {"kernel_size": 1, "kind": "input"}, 16, 3),
             ("stem", {"kernel_size": 7, "stride_size": 2, "kind": "conv", "filters": 8}, 8, 8),
             ("pool", {"kernel_size": 3, "stride_size": 2, "kind": "pool"}, 4, 8),
             ("a", {"kernel_size": 3, "kind": "conv", "filters": 8}, 4, 8),
             ("b", {"kernel_size": 3, "stride_size": 2, "kind": "conv", "filters": 16}, 2, 16),
             ("c", {"kernel_size": 3, "kind": "conv", "filters": 16}, 2, 16),
             ("gap", {"kernel_size": None, "kind": "global"}, 1, 16),
             ("fc", {"kernel_size": 1, "kind": "dense", "units": 10}, None, 10)]  # 16*10 MACs
    nodes = []
    for i, (name, layer, side, channels) in enumerate(specs):
        previous = specs[i - 1][2] if i else None
        nodes.append({"name": name, "layer": {"name": name, **layer}, "predecessors": [i - 1] if i else [],
                      "map_in": [previous] * 2 if previous else None,
                      "map_out": [side] * 2 if side else None, "channels": channels})
    nodes[-1]["macs"] = 160
    return {"nodes": nodes, "output": len(nodes) - 1}


def test_rf_and_counts_of_the_chain_before_and_after_edits():
    plain = editable(chain())
    layers = built(plain)
    # rf: stem 7 (j 2), pool 7+2*2=11 (j 4), a 11+2*4=19, b 19+2*4=27 (j 8), c 27+2*8=43
    assert [n.range_min_per_axis[0] for n in layers[1:6]] == [7, 11, 19, 27, 43]
    before = census(layers, (16,))  # a 19 > 16 critical, b and c unproductive
    assert (before.unproductive, before.critical) == (2, 1)
    assert [e.op for e in downsamplings(layers)] == ["stride", "drop", "stride"]
    smaller = apply(plain, [stem(layers), Edit("drop", ("pool",))])
    # stem 3 (j 2), a 3+2*2=7, b 7+2*2=11 (j 4), c 11+2*4=19 > 16: critical only (judged on the
    # maps the edited graph has, as suggestions judge it)
    after = built(remapped(smaller, (16,)))
    assert [n.range_min_per_axis[0] for n in after[1:5]] == [3, 7, 11, 19]
    assert (census(after, (16,)).unproductive, census(after, (16,)).critical) == (0, 1)


def test_cut_keeps_the_head_on_the_last_productive_block():
    plain = editable(chain())
    layers = built(plain)
    shorter, edit = cut(plain, layers, census(layers, (16,)).productive)
    # the last productive window is the pool (rf 11): a, b and c go, the head reads the pool
    assert [s["name"] for s in shorter["nodes"]] == ["input", "stem", "pool", "gap", "fc"]
    assert shorter["nodes"][3]["predecessors"] == [2] and edit.layers == ("pool",)
    # the dense head now reads the pool's 8 channels, not 16: 8*10 MACs
    assert total_macs(plain, (16,)) == 160 and total_macs(shorter, (16,)) == 80


# --- the report and its diffs --------------------------------------------------------------------

def test_explanation_json_shape_and_waste(resnet16):
    e = explain_plain("model.py", "model", resnet16, Options(resolution=(16,)))
    data = json.loads(json.dumps(e.to_json()))
    assert {"model", "resolution", "range", "layers", "waste", "suggestions"} <= set(data)
    # unproductive at 16px (the seed's README): each stage's second 3x3 convs, c*c*9 weights each:
    # 2 * (64*64*9 + 128*128*9 + 256*256*9 + 512*512*9) = 6,266,880 of 11,689,512
    assert data["waste"]["params"]["unproductive"]["amount"] == 6_266_880
    assert data["waste"]["params"]["unproductive"]["total"] == 11_689_512
    assert data["waste"]["layers"] == {"unproductive": 8, "critical": 8, "judged": 21}
    conv1 = data["layers"][0]
    # conv1: rf 7; 16px -> 8x8 at stride 2; 8*8*7*7*3*64 = 602,112 MACs
    assert (conv1["path"], conv1["rf_min"], conv1["map_out"]) == ("conv1", [7, 7], [8, 8])
    assert conv1["macs"] == 602_112
    for s in data["suggestions"]:
        assert {"kind", "title", "edits", "unproductive_after", "critical_after", "macs_factor"} <= set(s)


def test_diff_rewrites_the_literal_stem_and_leaves_the_file_alone(tmp_path):
    path = tmp_path / "net.py"
    path.write_text(SMALL_NET)
    with building_context():
        namespace = {}
        exec(compile(SMALL_NET, str(path), "exec"), namespace)
        model = namespace["SmallNet"]()
    plain = json.loads(json.dumps(to_plain(model, resolution=(16,))))
    e = with_diffs(explain_plain(str(path), "SmallNet", plain, Options(resolution=(16,))), SMALL_NET)
    stem = next(s for s in e.suggestions if [x.op for x in s.edits] == ["kernel", "stride"])
    before, after = "kernel_size=7, stride=2, padding=3", "kernel_size=3, stride=1, padding=1"
    assert f"-        self.stem = nn.Conv2d(3, 32, {before})  # a 224px stem" in stem.diff
    assert f"+        self.stem = nn.Conv2d(3, 32, {after})  # a 224px stem" in stem.diff
    cut_only = next(s for s in e.suggestions if [x.op for x in s.edits] == ["cut"])
    assert cut_only.diff == ""  # a cut is no argument
    body = suggestion_diff(str(path), SMALL_NET, plain, [Edit("stride", ("body.2",))])
    assert "+            nn.Conv2d(64, 64, 3, stride=1, padding=1), nn.ReLU()," in body
    assert path.read_text() == SMALL_NET


def test_no_diff_where_one_line_builds_layers_the_edit_leaves(tmp_path):
    source = textwrap.dedent("""\
        from torch import nn


        def block(stride):
            return nn.Conv2d(8, 8, 3, stride=2, padding=1)
        """)
    plain = {"nodes": [{"name": n, "layer": {"name": "Conv2d"}, "sites": [[str(tmp_path / "m.py"), 5]]}
                       for n in ("first", "second")]}
    assert suggestion_diff(str(tmp_path / "m.py"), source, plain, [Edit("stride", ("first",))]) == ""


# --- the command, end to end ---------------------------------------------------------------------

def run_explain(tmp_path, *args):
    (tmp_path / "r18.py").write_text(RESNET_FILE)
    return subprocess.run([sys.executable, "-m", "rfa_lint", "explain", "r18.py", "--res", "16", *args],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)


def test_resnet18_at_16px_the_seed_walkthrough(tmp_path):
    """The seed README: 8 unproductive and 8 critical; removing them saves ~80% of the compute
    (efficiency), removing downsampling costs ~8x (performance)."""
    result = run_explain(tmp_path, "--format", "json")
    assert result.returncode == 0, result.stderr
    (model,) = json.loads(result.stdout)
    assert model["waste"]["layers"]["unproductive"] == 8 and model["waste"]["layers"]["critical"] == 8
    kinds = {}
    for s in model["suggestions"]:
        kinds.setdefault(s["kind"], s)
    assert kinds["efficiency"]["unproductive_after"] == 0 and kinds["efficiency"]["macs_factor"] < 0.3
    assert kinds["performance"]["unproductive_after"] == 0 and kinds["performance"]["macs_factor"] > 3
    assert kinds["resolution"]["unproductive_after"] == 0


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs chromium (apt-get install chromium)")
@pytest.mark.skipif(shutil.which("dot") is None, reason="needs GraphViz's dot (apt-get install graphviz)")
def test_html_page_renders_in_headless_chromium(tmp_path):
    result = run_explain(tmp_path, "--format", "html", "--output-file", "r18.html")
    assert result.returncode == 0, result.stderr
    page = (tmp_path / "r18.html").read_text()
    assert "<script" not in page and "<link" not in page and 'src="http' not in page
    dom = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", (tmp_path / "r18.html").as_uri()],
        capture_output=True, text=True, timeout=120,
    ).stdout
    assert '<table class="layers">' in dom
    assert dom.count("<svg") >= 2  # the architecture picture and the chart
    assert "layer4.1.conv2" in dom and "8 of 21 convolution and pooling layers" in dom
