"""The PyTorch frontend on real models: torchvision and the fixtures in fixtures/torch_frontend/.

RF figures are derived by hand in each test (``rf += (k_eff - 1) * j``, ``j *= s``); the
differential tests compare with rfa-toolbox 1.7.0 where it is right.
"""

import collections
import json
import math
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from rfa_lint.frontends import TraceError, base
from rfa_lint.frontends.torch import (
    building_context,
    create_graph_from_pytorch_model,
    is_model,
    register_layer_handler,
    to_plain,
)
from rfa_lint.graphs import LayerDefinition
from rfa_lint.rf import graph_from_plain, input_resolution_range

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "torch_frontend"
MODELS_FILE = str(FIXTURES / "models.py")
sys.path.insert(0, str(FIXTURES))
import models  # noqa: E402


def marked_line(marker):
    """The line of ``models.py`` carrying ``# site: marker``."""
    lines = Path(MODELS_FILE).read_text().splitlines()
    return next(n for n, line in enumerate(lines, 1) if line.endswith(f"# site: {marker}"))


def build(cls, *args):
    with building_context():
        return cls(*args)


def traced(model, **kwargs):
    """to_plain's data after a JSON round trip, and the graph rebuilt from it."""
    plain = json.loads(json.dumps(to_plain(model, **kwargs)))
    return plain, graph_from_plain(plain)


def node(graph, name):
    return next(n for n in graph.all_layers if n.name == name)


def largest_finite(n):
    """The largest RF among a node's paths that do not see everything (SE gates filtered)."""
    return max(i.receptive_field for i in n.receptive_field_info if math.isfinite(i.receptive_field[0]))


def rf_mins(graph, kinds=("conv", "pool", "resize")):
    return {n.name: n.receptive_field_min for n in graph.all_layers if n.layer_info.kind in kinds}


# --- building ---------------------------------------------------------------------------------

def test_sites_of_attribute_sequential_and_helper_layers():
    plain, _ = traced(build(models.Sites))
    sites = {n["name"]: [tuple(s) for s in n["sites"]] for n in plain["nodes"]}
    assert sites["conv1"][0] == (MODELS_FILE, marked_line("attribute"))
    assert sites["body.1"][0] == (MODELS_FILE, marked_line("in-sequential"))
    # the helper's line first, then the line calling the helper: the linter picks its file's
    helper = [(MODELS_FILE, marked_line("helper-return")), (MODELS_FILE, marked_line("helper-call"))]
    assert sites["helper"][:2] == helper
    # no frame of torch, of rfa_lint or of the stdlib; this test's own frame is user code
    assert all("/torch/" not in f and "/rfa_lint/" not in f for s in sites.values() for f, _ in s)
    assert sites["conv1"][1][0] == __file__
    assert not hasattr(nn.Module.__init__, "__wrapped__")  # the patch is gone after the context


def test_vgg16_built_in_building_context_allocates_no_weight_memory():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    model = build(torchvision.models.vgg16)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert {p.device.type for p in model.parameters()} == {"meta"}
    assert sum(p.numel() for p in model.parameters()) > 138_000_000
    assert grown_mib < 100  # its weights alone would be 528 MiB
    assert is_model(model) and not is_model(object())


def test_factory_code_computing_with_tensors_still_runs():
    # RegNet computes its widths with torch ops and .tolist() before any module exists: a
    # global meta device breaks that, building_context only moves constructors' tensors
    model = build(torchvision.models.regnet_x_400mf)
    assert {p.device.type for p in model.parameters()} == {"meta"}


# --- torchvision ------------------------------------------------------------------------------

def test_resnet50_range_matches_the_seed():
    with torch.device("meta"):
        model = torchvision.models.resnet50()
    plain, graph = traced(model)
    assert input_resolution_range(graph) == ((75, 75), (427, 427))
    assert input_resolution_range(graph, kernel_fit=True)[0] == (96, 96)
    assert (plain["mode"], plain["input_shape"], plain["unsupported"]) == ("eval", [1, 3, 224, 224], [])
    names = [n["name"] for n in plain["nodes"]]
    assert names[:3] == ["input", "conv1", "bn1"] and "layer1.0.relu#3" in names  # relu runs 3x
    assert len(names) == len(set(names))
    assert plain["nodes"][0]["layer"]["kind"] == "input"
    merge = node(graph, "layer1.0.add")  # out += identity
    assert merge.layer_info.kind == "merge" and len(merge.predecessors) == 2
    assert math.isinf(node(graph, "avgpool").receptive_field_min)
    fc = node(graph, "fc")
    assert fc.layer_info.kind == "dense" and fc.layer_info.kernel == (1,)
    assert graph.name == "fc"


def test_vision_transformer_needs_224_and_sees_everything_after_patchify():
    model = build(torchvision.models.vit_b_16)
    plain, graph = traced(model, input_res=399)  # ViT refuses 399 (the seed's size), takes 224
    assert plain["input_shape"] == [1, 3, 224, 224]
    assert node(graph, "conv_proj").receptive_field_min == (16, 16)  # 16x16 patches, stride 16
    # the reshape into tokens (and the class token before them) keeps the 14x14 positions: no
    # node of its own (the old frontend judged it global); the attention over them is global
    names = [n["name"] for n in plain["nodes"]]
    assert not any(name.startswith("reshape") for name in names)
    attention = plain["nodes"][names.index("encoder.layers.encoder_layer_0.self_attention")]
    assert (attention["layer"]["kind"], attention["layer"]["kernel_size"]) == ("attention", None)
    assert attention["map_in"] == [14, 14]
    # global attention: no largest resolution
    assert input_resolution_range(graph) == ((16, 16), (math.inf, math.inf))


def test_convnext_channels_last_linear_keeps_positions():
    plain, graph = traced(build(torchvision.models.convnext_tiny))
    fc1 = node(graph, "features.1.0.block.3")  # Linear on (N, H, W, C) after a Permute
    assert fc1.layer_info.kind == "dense" and fc1.has_finite_rf
    # stem 4x4/4, then the 7x7 depthwise conv on a 4-pixel grid adds 6 * 4
    assert node(graph, "features.1.0.block.0").receptive_field_min == (4 + 6 * 4,) * 2
    assert plain["unsupported"] == []


def test_swin_patch_merging_slices_are_strided_kernels():
    plain, graph = traced(build(torchvision.models.swin_t))
    assert plain["unsupported"] == []
    # x[..., 0::2, 0::2, :] and its three siblings, concatenated: a 2x2 block with stride 2
    sliced = node(graph, "features.2.getitem")
    assert (sliced.layer_info.kernel, sliced.layer_info.stride) == ((2, 2), (2, 2))
    # window attention is a 7x7 kernel on each stage's grid (patches 4, then j 4, 8, 16); the
    # largest minimum RF is stage 3's: its input's minimum 16 (4 + 1*4 + 1*8 after two patch
    # merges) + 6 * 16.  Stage 4's 7x7 window covers its 7x7 map: global.  (The old frontend
    # judged the first window partition global and said 32.)
    assert input_resolution_range(graph)[0] == (112, 112)
    first = node(graph, "features.1.0.attn.matmul")  # attn @ v in the first block's windows
    assert (first.layer_info.kind, first.layer_info.kernel) == ("attention", (7, 7))
    assert first.receptive_field_max == (28, 28)  # patches 4, + 6 * 4


@pytest.mark.integration
def test_maxvit_convs_after_attention_are_analysed():
    # window attention: 7x7 on the stride-4 grid of the first stage, whose input's largest RF
    # is 11 (stem 3x3/2, 3x3: 7; the MBConv's 3x3/2 at j 2: 11): 11 + 6 * 4 = 35.  Grid
    # attention spreads its 7x7 tokens over the whole map: global.
    plain, graph = traced(build(torchvision.models.maxvit_t))
    assert plain["unsupported"] == []
    window = node(graph, "blocks.0.layers.0.layers.window_attention.attn_layer.1.einsum")
    assert window.layer_info.kernel == (7, 7)
    assert largest_finite(window) == (35, 35)
    grid = node(graph, "blocks.0.layers.0.layers.grid_attention.attn_layer.1.einsum")
    assert (grid.layer_info.kind, grid.layer_info.is_infinite) == ("attention", True)
    # 61 convs: 2 in the stem, 11 MBConvs of conv_a, conv_b, conv_c and two squeeze-excitation
    # convs (on the pooled map, so infinite), 4 projections: all but the 22 SE convs are finite
    # (the old frontend judged the first window partition global: 6 finite)
    convs = [n for n in graph.all_layers if n.layer_info.kind == "conv"]
    assert (len(convs), sum(n.has_finite_rf for n in convs)) == (61, 39)


def test_efficientnet_b0_squeeze_excitation_gates():
    # The largest finite RF of the last conv goes through every block: stem 3x3/2: 3 (j 2);
    # stage 1 k3: 7; stage 2 k3/2, k3: 11 (j 4), 19; stage 3 k5/2, k5: 35 (j 8), 67; stage 4
    # k3/2, k3, k3: 83 (j 16), 115, 147; stage 5 three k5: 339; stage 6 k5/2 (j 32) then three
    # k5: 403, 787; stage 7 k3: 851.  Each SE gate adds an infinite RF, never its stride product.
    plain, graph = traced(build(torchvision.models.efficientnet_b0))
    head = node(graph, "features.8.0")
    assert largest_finite(head) == (851, 851) and head.get_maximum_scale_factor() == (32, 32)
    assert input_resolution_range(graph)[1] == (851, 851)
    gates = [n for n in plain["nodes"] if n["name"].endswith(".broadcast")]  # one per SE block
    assert len(gates) == 16 and all(n["map_out"] == [1, 1] for n in gates)


@pytest.mark.integration
def test_deeplabv3_aspp_pooling_branch_is_global():
    # ResNet-50 at output stride 8: 427 (layers 3 and 4 dilated).  ASPP's rate-36 branch:
    # 3x3 dilated 36 (effective 73) at j 8: 427 + 72 * 8 = 1003; the head's 3x3: + 2 * 8 = 1019;
    # the last 1x1 keeps it.  The output's bilinear x8 upsampling reads 2 positions: + 1 * 8.
    segmentation = torchvision.models.segmentation
    plain, graph = traced(build(lambda: segmentation.deeplabv3_resnet50(weights=None, weights_backbone=None)))
    assert plain["unsupported"] == []
    pooling = node(graph, "classifier.0.convs.4.0")  # ASPPPooling's AdaptiveAvgPool2d(1)
    assert pooling.layer_info.kind == "global"
    assert largest_finite(node(graph, "classifier.4")) == (1019, 1019)
    assert input_resolution_range(graph)[1] == (1027, 1027)


@pytest.mark.integration
def test_lraspp_scale_gate_and_bilinear_upsampling():
    segmentation = torchvision.models.segmentation
    plain, graph = traced(
        build(lambda: segmentation.lraspp_mobilenet_v3_large(weights=None, weights_backbone=None))
    )
    assert plain["unsupported"] == []
    assert node(graph, "classifier.scale.0").layer_info.kind == "global"  # AdaptiveAvgPool2d(1)
    gated = node(graph, "classifier.mul")  # cbr * scale: the gate brings no stride product
    assert gated.get_maximum_scale_factor() == (16, 16)

    # bilinear x2 from the stride-16 map reads 2 positions: + 16; the output's x8 from the
    # stride-8 sum: + 8 (a fine-grid kernel of (2 - 1) * scale + 1)
    up = node(graph, "classifier.interpolate").layer_info
    assert (up.kernel, tuple(up.upsampling)) == ((3, 3), (2, 2))
    high = largest_finite(node(graph, "classifier.high_classifier"))
    assert high[0] == largest_finite(node(graph, "classifier.cbr.0"))[0] + 16
    assert input_resolution_range(graph)[1][0] == high[0] + 8


def test_timm_regnet_channels_as_many_as_the_map_size():
    # regnety_002's second stage has 56 channels on a 56x56 map: its strided conv's output is
    # 28x28 (the old frontend read (56, 28), then the SE means as unsupported layers)
    timm = pytest.importorskip("timm")
    plain, graph = traced(build(timm.create_model, "regnety_002"))
    assert plain["unsupported"] == []
    maps = {n["name"]: n["map_out"] for n in plain["nodes"]}
    assert maps["s2.b1.conv2.conv"] == [28, 28] and maps["s4.b1.conv2.conv"] == [7, 7]
    # 13 blocks, each with two SE convs on its pooled map (infinite): 70 - 26 finite
    convs = [n for n in graph.all_layers if n.layer_info.kind == "conv"]
    assert (len(convs), sum(n.has_finite_rf for n in convs)) == (70, 44)


@pytest.mark.integration
def test_every_torchvision_classification_model_traces():
    failures = {}
    for name in torchvision.models.list_models(module=torchvision.models):
        try:
            plain, graph = traced(build(torchvision.models.get_model, name))
            assert plain["unsupported"] == [], plain["unsupported"]
            input_resolution_range(graph)
        except Exception as error:  # collect them all, then fail once with the list
            failures[name] = f"{type(error).__name__}: {error}"
    assert not failures, failures


# --- layer kinds on fixtures ------------------------------------------------------------------

def test_python_control_flow_follows_the_real_path():
    # stem 3x3 (222px), then `down` (3x3/2) while the width > 40: 110, 54, 26 -> three calls
    _, graph = traced(build(models.ControlFlow))
    assert rf_mins(graph) == {"stem": (3, 3), "down": (5, 5), "down#2": (9, 9), "down#3": (17, 17)}


def test_functional_ops():
    # conv 5x5/2: 5 (j 2); max 3/2: 5 + 2*2 = 9 (j 4); avg 2/2: 9 + 1*4 = 13 (j 8);
    # interpolate x2: j 4; conv 3x3: 13 + 2*4 = 21; adaptive pooling: infinite.
    # rfa-toolbox 1.7.0 cannot build this graph (a KeyError in its JIT-graph parser).
    plain, graph = traced(build(models.Functional))
    assert rf_mins(graph) == {
        "conv2d": (5, 5), "max_pool2d": (9, 9), "avg_pool2d": (13, 13),
        "interpolate": (13, 13), "conv2d#2": (21, 21),
    }
    assert tuple(node(graph, "interpolate").layer_info.upsampling) == (2, 2)
    assert math.isinf(node(graph, "adaptive_avg_pool2d").receptive_field_min)
    conv = plain["nodes"][1]
    assert conv["module_paths"] == []
    assert tuple(conv["sites"][0]) == (MODELS_FILE, marked_line("functional-conv"))
    assert input_resolution_range(graph) == ((21, 21), (21, 21))


def test_dilation_groups_non_square_transposed_and_lp_pool():
    # dilated 3x3, d 2: effective 5 -> 5.  depthwise 3x3: 7.  (1, 7) stride (1, 2): (7, 13),
    # j (1, 2).  ConvTranspose 4/2: an output position reads ceil(4/2) = 2 input positions, so
    # + (2 - 1) * j_in -> (8, 15) and the grid halves to j (1/2, 1) (a fine-grid kernel of 3).
    # LPPool 2/2 reads fine positions 2m, 2m + 1, which read coarse inputs m - 1..m and m..m + 1
    # (kernel 4, stride 2, no padding): 3 inputs on the first axis, (1 - 1) + 3 * 1... the
    # windows give (8, 15), what the gradient oracle measures; the path formula's + 1 * j would
    # say (8.5, 16), a half pixel no position has.  The old frontend counted 3 taps (9, 17).
    # rfa-toolbox 1.7.0 ignores dilation (3, not 5) and takes the transposed conv for a strided
    # one (its figures: 3, 5, (5, 11), (8, 17), (10, 21)).
    _, graph = traced(build(models.Kinds))
    assert rf_mins(graph) == {
        "dilated": (5, 5), "depthwise": (7, 7), "wide": (7, 13), "up": (8, 15), "lp": (8, 15)
    }
    up = node(graph, "up").layer_info
    assert (up.kernel, up.stride, tuple(up.upsampling)) == ((3, 3), (1, 1), (2, 2))
    assert node(graph, "wide").layer_info.stride == (1, 2)


def test_one_and_three_spatial_axes():
    # Conv1d 5/2: 5 (j 2); MaxPool1d 3 (stride 3): 5 + 2*2 = 9 (j 6); Conv1d 3: 9 + 2*6 = 21
    plain, graph = traced(build(models.OneAxis))
    assert plain["input_shape"] == [1, 2, 224]
    assert rf_mins(graph) == {"features.0": 5, "features.1": 9, "features.2": 21}
    # Conv3d (3, 5, 7) stride (1, 2, 2): (3, 5, 7), j (1, 2, 2); Conv3d 3: + 2 * j
    plain, graph = traced(build(models.ThreeAxes), input_res=32)
    assert plain["input_shape"] == [1, 1, 16, 32, 32]  # three axes: a 16-frame clip is tried first
    assert rf_mins(graph) == {"features.0": (3, 5, 7), "features.1": (5, 9, 11)}


def test_squeeze_excitation_gate():
    # body 5; the pooled gate is infinite; y * gate keeps both (5 and inf); x + that: 3, 5, inf
    _, graph = traced(build(models.SqueezeExcitation))
    mul, add = node(graph, "mul"), node(graph, "add")
    assert (mul.layer_info.kind, mul.receptive_field_min) == ("merge", (5, 5))
    assert math.isinf(mul.receptive_field_max[0]) and add.receptive_field_min == (3, 3)
    (lo, hi) = input_resolution_range(graph, filter_all_inf_rf=False)
    assert lo == (5, 5) and math.isinf(hi[0])
    assert input_resolution_range(graph, filter_all_inf_rf=True) == ((5, 5), (5, 5))


def test_unsupported_custom_layer_is_reported_by_name_and_passed_through():
    plain, graph = traced(build(models.WithStretch))
    assert plain["unsupported"] == [
        {"type": "Stretch", "module_paths": ["stretch"], "sites": plain["unsupported"][0]["sites"]}
    ]
    assert tuple(plain["unsupported"][0]["sites"][0]) == (MODELS_FILE, marked_line("stretch"))
    assert node(graph, "head").receptive_field_min == (5, 5)  # 3, then + 2 as if passed through


def test_registered_handler_makes_a_custom_type_one_layer(monkeypatch):
    # without a handler the blur's own F.conv2d would be traced as "blur.conv2d"
    monkeypatch.setattr(base, "_REGISTERED", dict(base._REGISTERED))
    seen = []

    def blur(module, in_shape, out_shape):
        seen.append((in_shape, out_shape))
        return LayerDefinition("BlurPool", kernel_size=3, stride_size=2, kind="pool")

    register_layer_handler(models.BlurPool, blur)
    _, graph = traced(build(models.WithBlurPool))
    assert rf_mins(graph) == {"conv": (3, 3), "blur": (5, 5), "head": (9, 9)}  # 3; + 2; + 2*2
    # the handler gets the sizes of dims 2:, not tensors: 224 - 2 = 222 after the 3x3 conv,
    # (222 + 2 - 3) // 2 + 1 = 111 after the blur (k 3, s 2, padding 1)
    assert seen == [((222, 222), (111, 111))]
    with pytest.raises(TypeError):
        register_layer_handler(int, lambda *a: None)


def test_train_mode_when_eval_fails():
    plain, _ = traced(build(models.TrainOnly))
    assert (plain["mode"], plain["input_shape"]) == ("train", [2, 3, 224, 224])


def test_sizes_are_retried_until_the_model_accepts_one():
    plain, graph = traced(build(models.FixedSize))
    assert plain["input_shape"] == [1, 1, 32, 32]
    # the Flatten keeps the 32x32 positions (in its one dim); the Linear reading that dim sees
    # them all (the old frontend made the Flatten itself the global node)
    assert node(graph, "head.0").layer_info.kind == "passthrough"
    head = node(graph, "head.1").layer_info
    assert (head.kind, head.kernel_size) == ("dense", None)
    assert traced(build(models.FixedSize), input_shape=(1, 1, 32, 32))[0]["input_shape"] == [1, 1, 32, 32]


def test_trace_error_lists_attempts_and_the_models_own_line():
    with pytest.raises(TraceError) as caught:
        to_plain(build(models.Broken))
    message = str(caught.value)
    # every attempt failed the same way: the reason once, with the first shape and the count
    # 15 sizes x 2 modes
    assert "Broken" in message and "(input (1, 3, 224, 224) eval and 29 more shapes)" in message
    assert f"ValueError: broken on purpose (at {MODELS_FILE}:{marked_line('broken')})" in message
    assert "input_shape" in message


def test_real_weights_on_cpu_are_traced_without_computation():
    model = torchvision.models.resnet18()  # weights on the CPU, as a user may pass them
    graph = create_graph_from_pytorch_model(model)
    assert input_resolution_range(graph) == ((139, 139), (435, 435))
    assert next(model.parameters()).device.type == "cpu" and model.training  # mode restored
    seed_shape = create_graph_from_pytorch_model(model, input_res=(1, 3, 399, 399))
    assert len(seed_shape.all_layers) == len(graph.all_layers)


# --- differential: rfa-toolbox 1.7.0 ----------------------------------------------------------

_SEED_CHILD = """
import collections, collections.abc, json, sys
collections.Sequence = collections.abc.Sequence
sys.modules["tensorflow"] = None  # rfa_toolbox skips its keras part: 2 s less, no segfault risk
import torch, torchvision
from rfa_toolbox import create_graph_from_pytorch_model, input_resolution_range
from rfa_toolbox.utils.graph_utils import obtain_all_nodes

def plain(value):
    return [float(v) for v in value] if hasattr(value, "__len__") else [float(value)] * 2

result = {}
for name in sys.argv[1:]:
    graph = create_graph_from_pytorch_model(torchvision.models.get_model(name).eval())
    layers = [
        [n.layer_info.name.split()[0], plain(n.receptive_field_min), plain(n.receptive_field_max)]
        for n in obtain_all_nodes(graph)
    ]
    result[name] = {"range": [plain(r) for r in input_resolution_range(graph)], "layers": layers}
print(json.dumps(result))
"""

_WEIGHTED = ("Conv2d", "MaxPool2d", "AvgPool2d")


def seed_figures(names):
    """rfa-toolbox's range and per-layer RFs, from a child (its own hash seed and imports).

    rfa-toolbox is the reference: the quick start's test line installs it, and a missing
    reference fails here rather than skipping.
    """
    env = dict(os.environ, PYTHONHASHSEED="0", TF_CPP_MIN_LOG_LEVEL="3", TF_ENABLE_ONEDNN_OPTS="0")
    out = subprocess.run(
        [sys.executable, "-c", _SEED_CHILD, *names], env=env, capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.splitlines()[-1])


def layer_multiset(layers):
    return collections.Counter(kind for kind, _, _ in layers if kind in _WEIGHTED)


def sizes(layers, which):
    """The weighted layers' minimum (which=1) or maximum (which=2) RFs, in order of size."""
    return sorted(tuple(layer[which]) for layer in layers if layer[0] in _WEIGHTED)


def no_larger(ours, theirs):
    return all(o <= t for a, b in zip(ours, theirs) for o, t in zip(a, b))


def our_figures(name):
    _, graph = traced(build(torchvision.models.get_model, name))
    layers = [
        [n.layer_info.name, [float(v) for v in n.rf_min_per_axis], [float(v) for v in n.rf_max_per_axis]]
        for n in graph.all_layers
    ]
    # rfa-toolbox 1.7.0 always adds the kernel-fit bound to its min, and its default drops
    # infinite RF sizes: our kernel_fit=True, filter_all_inf_rf=True is the same question
    ours = input_resolution_range(graph, kernel_fit=True, filter_all_inf_rf=True)
    return [[float(v) for v in r] for r in ours], layers


def compare_with_seed(names):
    seed = seed_figures(names)
    for name in names:
        our_range, our_layers = our_figures(name)
        assert our_range == seed[name]["range"], name
        assert layer_multiset(our_layers) == layer_multiset(seed[name]["layers"]), name
        # the seed keeps every tap; ours drops the taps that read only padding of a map at the
        # traced size (a 3x3 conv on resnet18's 7x7 layer4 map at 224 px), and no path is wider
        # than the widest window, so ours are the seed's or smaller
        for which in (1, 2):
            assert no_larger(sizes(our_layers, which), sizes(seed[name]["layers"], which)), name


def test_same_figures_as_rfa_toolbox_on_small_torchvision_models():
    compare_with_seed(["resnet18", "alexnet", "squeezenet1_0"])


@pytest.mark.integration
def test_same_figures_as_rfa_toolbox_on_larger_torchvision_models():
    compare_with_seed(
        ["resnet50", "vgg11", "vgg16", "densenet121", "mobilenet_v2", "googlenet", "inception_v3"]
    )


@pytest.mark.integration
def test_video_models_trace_on_a_clip_not_a_cube():
    # MViT insists on 16 frames (its positional embedding); a 224^3 cube fails, a clip works
    plain, graph = traced(build(torchvision.models.video.mvit_v1_b))
    assert plain["input_shape"] == [1, 3, 16, 224, 224]
    assert graph.all_layers[1].layer_info.kernel == (3, 7, 7)  # the patch-embedding Conv3d
