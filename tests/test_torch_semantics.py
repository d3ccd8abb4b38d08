"""What the PyTorch frontend records at the traced size, one semantic rule per test.

Every RF figure is derived by hand in a comment (``rf += (k_eff - 1) * j``, ``j *= s``); where the
network can run, the empirical oracle (tests/oracle.py: the support of an input gradient with
positive weights) measures it too.  The fixtures are in fixtures/torch_frontend/models.py.
"""

import json
import math
import sys
from fractions import Fraction
from pathlib import Path

import pytest
import torch
from torch import nn

from oracle import expected_extent, measure, positive_
from rfa_lint.frontends import TraceError
from rfa_lint.frontends.torch import building_context, to_plain
from rfa_lint.frontends.torch import layout as L
from rfa_lint.rf import graph_from_plain, input_resolution_range

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "torch_frontend"
MODELS_FILE = str(FIXTURES / "models.py")
sys.path.insert(0, str(FIXTURES))
import models  # noqa: E402


def build(cls, *args):
    with building_context():
        return cls(*args)


def traced(model, **kwargs):
    """to_plain's data after a JSON round trip, its nodes by name, and the graph."""
    plain = json.loads(json.dumps(to_plain(model, **kwargs)))
    graph = graph_from_plain(plain)
    return plain, {n["name"]: n for n in plain["nodes"]}, {n.name: n for n in graph.all_layers}


def measured(model, shape, path, phases=1):
    """The oracle's RF extent per axis of the output of ``model.<path>``."""
    model = positive_(model)
    supports = measure(model, shape, {path: model.get_submodule(path)}, phases)[path]
    return tuple(s.extent for s in supports)


def agrees(node, extents, size):
    """The analytic max RF, clipped to the image as the oracle measures it."""
    return tuple(expected_extent(r, size) for r in node.rf_max_per_axis) == extents


def marked_line(marker):
    lines = Path(MODELS_FILE).read_text().splitlines()
    return next(n for n, line in enumerate(lines, 1) if line.endswith(f"# site: {marker}"))


# --- the position algebra ---------------------------------------------------------------------

def test_window_and_grid_partitions_of_a_map():
    # a 56x56 map as tokens, partitioned MaxViT's two ways: (B, 8*8, 7*7, C) windows hold 7
    # neighbouring positions per axis; after swapping the two token dims, each attention reads
    # 7 positions 8 apart per axis, spread over the whole axis (7 * 8 = 56): global
    tokens = L.reshape(L.feature_map((1, 4, 56, 56)), (1, 4, 8, 7, 8, 7))
    windows = L.reshape(L.permute(tokens, (0, 2, 4, 3, 5, 1)), (1, 64, 49, 4))
    mix, _ = L.mixing(L.factors(windows[2]), [windows], windows, 2)
    assert (mix.kernel, mix.dilation, mix.stride) == ((7, 7), (1, 1), (1, 1))
    grid = L.permute(windows, (0, 2, 1, 3))
    mix, _ = L.mixing(L.factors(grid[2]), [grid], grid, 2)
    assert mix.kernel is None
    assert L.spatial_map(windows, 2) == L.spatial_map(grid, 2) == (56, 56)


def test_a_contraction_of_the_finest_positions_coarsens_the_grid():
    # a patch merge by reshape: (B, 28, 2, 28, 2, C) -> (B, 28, 28, 4C), then a Linear over the
    # last dim: a 2x2 kernel, and the 28x28 positions left are 2 apart: stride 2
    merged = L.reshape(L.permute(L.reshape(L.feature_map((1, 3, 56, 56)), (1, 3, 28, 2, 28, 2)),
                                 (0, 2, 4, 3, 5, 1)), (1, 28, 28, 12))
    out = merged[:-1] + (L.plain(6),)
    mix, out = L.mixing(L.factors(merged[-1]), [merged], out, 2)
    assert (mix.kernel, mix.stride) == ((2, 2), (2, 2))
    assert out[1:3] == (((L.Factor(0, 28),),), ((L.Factor(1, 28),),))  # on the new grid


# --- 1. the lint resolution is traced first ---------------------------------------------------

def test_a_forward_branching_on_the_map_size_is_traced_at_the_lint_resolution():
    # stem 3x3 without padding: 64 -> 62 (>= 32: pooled), 16 -> 14 (not pooled)
    plain, nodes, _ = traced(build(models.ShapeBranch), resolution=(64,))
    assert plain["input_shape"] == [1, 3, 64, 64] and "pool" in nodes
    plain, nodes, graph = traced(build(models.ShapeBranch), resolution=(16,))
    assert plain["input_shape"] == [1, 3, 16, 16] and "pool" not in nodes
    # F.avg_pool2d(x, x.size()[2:]) spans the 12x12 map it is given: a global head (the old
    # frontend made it a 12x12 pool with stride 12)
    assert (nodes["avg_pool2d"]["spans_map"], nodes["avg_pool2d"]["map_in"]) == (True, [12, 12])
    assert graph["avg_pool2d"].layer_info.kind == "global"
    assert graph["head"].receptive_field_max == (5, 5)  # 3 + 2


class _Tries(nn.Module):
    """Records every input shape it is called with, and refuses them all."""

    def __init__(self, conv):
        super().__init__()
        self.conv, self.shapes = conv, []

    def forward(self, x):
        self.shapes.append((tuple(x.shape), self.training))
        raise ValueError("no size fits")


def test_resolution_then_declared_then_common_sizes():
    model = _Tries(nn.Conv2d(3, 4, 3))
    with pytest.raises(TraceError):
        to_plain(model, resolution=(40, 48), declared=(384, 384))
    assert model.shapes[:5] == [
        ((1, 3, 40, 48), False), ((2, 3, 40, 48), True),  # eval, then train with a batch of 2
        ((1, 3, 384, 384), False), ((2, 3, 384, 384), True),
        ((1, 3, 224, 224), False),  # then input_res and the common sizes, all in eval first
    ]
    assert ((1, 3, 384, 384), False) not in model.shapes[5:]  # each size once


def test_a_resolution_of_other_axes_is_skipped():
    one_axis = _Tries(nn.Conv1d(2, 4, 3))
    with pytest.raises(TraceError):
        to_plain(one_axis, resolution=(32, 48))  # a 2-D size for a 1-D model: never an error
    # an RGB image comes first at each size; the model's own layout then skips the 2-D size
    assert one_axis.shapes[0] == ((1, 3, 32, 48), False)
    assert [s for s, _ in one_axis.shapes if len(s) == 3][0] == (1, 2, 224)
    video = _Tries(nn.Conv3d(1, 4, 3))
    with pytest.raises(TraceError):
        to_plain(video, resolution=(32,))  # one number on three axes: a 16-frame clip first
    clips = [s for s, _ in video.shapes if len(s) == 5]
    assert clips[:4:2] == [(1, 1, 16, 32, 32), (1, 1, 32, 32, 32)]


# --- 2. layout by layer kind ------------------------------------------------------------------

def test_channels_as_many_as_the_map_size_are_not_taken_for_positions():
    # (1, 16, 16, 16) at 16x16: the strided conv's map is 8x8 (the old frontend matched sizes,
    # read (32, 8) and reported the final mean as unsupported)
    plain, nodes, graph = traced(build(models.ChannelsLikeSpatial), resolution=(16,))
    assert plain["unsupported"] == []
    assert (nodes["down"]["map_in"], nodes["down"]["map_out"]) == ([16, 16], [8, 8])
    assert nodes["mix"]["layer"]["kind"] == "dense" and graph["mix"].receptive_field_max == (3, 3)
    assert (nodes["mean"]["layer"]["kind"], nodes["mean"]["map_out"]) == ("global", None)
    assert graph["down"].receptive_field_max == (5, 5)  # 3 + 2 * 1


def test_positions_folded_into_channels_are_a_space_to_depth():
    # 4x4 blocks into channels by view/permute (TResNet's stem): a 4x4/4 block merge, then
    # the 3x3 conv on the 4-pixel grid: 4 + 2 * 4 = 12
    model = models.SpaceToDepth()
    _, nodes, graph = traced(model, input_shape=(1, 3, 32, 32))
    merge = nodes["conv.channels"]["layer"]
    assert (merge["kind"], merge["kernel_size"], merge["stride_size"]) == ("resize", [4, 4], [4, 4])
    assert graph["conv"].receptive_field_max == (12, 12) and nodes["conv"]["map_in"] == [8, 8]
    assert agrees(graph["conv"], measured(model, (1, 3, 32, 32), "conv"), 32)


def test_unfold_windows_stay_positions():
    # unfold into 8x8 patches and a Linear: the Linear reads each patch, an 8x8/8 convolution
    # (the old frontend judged the unfold global); the 3x3 conv after it: 8 + 2 * 8 = 24
    model = models.UnfoldPatches()
    plain, nodes, graph = traced(model, input_shape=(1, 2, 64, 64))
    embed = nodes["embed"]["layer"]
    assert (embed["kind"], embed["kernel_size"], embed["stride_size"]) == ("conv", [8, 8], [8, 8])
    assert graph["head"].receptive_field_max == (24, 24) and nodes["head"]["map_in"] == [8, 8]
    assert agrees(graph["head"], measured(model, (1, 2, 64, 64), "head"), 64)
    # F.unfold(x, 3, padding=1, stride=2) and a Linear: a 3x3/2 convolution
    model = models.Im2col()
    _, nodes, graph = traced(model, input_shape=(1, 2, 16, 16))
    embed = nodes["embed"]
    assert (embed["layer"]["kernel_size"], embed["layer"]["stride_size"]) == ([3, 3], [2, 2])
    assert (embed["map_in"], embed["map_out"]) == ([16, 16], [8, 8])


# --- 3. adaptive pooling ----------------------------------------------------------------------

def test_adaptive_pooling_reads_windows_at_the_traced_size():
    # 14 -> 7: windows of 2, stride 2: 3 + 1 = 4 (j 2); conv 3x3: 4 + 2 * 2 = 8
    model = models.AdaptiveThenConvs()
    _, nodes, graph = traced(model, resolution=(14,))
    pool = nodes["pool"]["layer"]
    assert (pool["kind"], pool["kernel_size"], pool["stride_size"]) == ("pool", [2, 2], [2, 2])
    assert graph["conv"].receptive_field_max == (8, 8)
    assert agrees(graph["conv"], measured(model, (1, 3, 14, 14), "conv"), 14)
    # 7 -> 7 reads one position; 10 -> 7: output 2 reads floor(2*10/7) = 2 to
    # ceil(3*10/7) - 1 = 4, three positions, windows 10/7 apart
    _, nodes, graph = traced(model, resolution=(7,))
    assert nodes["pool"]["layer"]["kernel_size"] == [1, 1] and graph["conv"].receptive_field_max == (5, 5)
    _, _, graph = traced(model, resolution=(10,))
    pool = graph["pool"].layer_info
    assert (pool.kernel, pool.stride) == ((3, 3), (Fraction(10, 7), Fraction(10, 7)))


# --- 4. kernels spanning their map ------------------------------------------------------------

def test_a_kernel_spanning_its_whole_map_is_a_head():
    # VGG's fc6 as a 7x7 conv without padding on the 7x7 map: dense over it (not a 7x7 kernel)
    _, nodes, graph = traced(build(models.AdaptiveThenConvs), resolution=(14,))
    assert nodes["fc6"]["spans_map"]  # the frontend marks it; the graph makes the head dense
    assert (graph["fc6"].layer_info.kind, graph["fc6"].layer_info.kernel_size) == ("dense", None)
    # CifarSENet's F.avg_pool2d(out, 8): global on the 8x8 map of 32x32, an 8x8/8 pool on the
    # 16x16 map of 64x64
    _, _, graph = traced(build(models.CifarSENet), resolution=(32,))
    assert graph["avg_pool2d"].layer_info.kind == "global"
    _, nodes, graph = traced(build(models.CifarSENet), resolution=(64,))
    assert graph["avg_pool2d"].layer_info.kind == "pool"
    pool = nodes["avg_pool2d"]["layer"]
    assert (pool["kind"], pool["kernel_size"], pool["stride_size"]) == ("pool", [8, 8], [8, 8])


# --- 5. broadcast gates -----------------------------------------------------------------------

def test_cifar_se_gates_are_global_and_keep_no_stride_product():
    # F.avg_pool2d(out, out.size(2)) spans each block's map: global.  The body: stem 3, then
    # 3x3 convs: 5 (j 1), 7 (j 2), 11 (j 4).  The old frontend took the gates for finite pools
    # with strides 32, 16, 8 and reached a stride product of 131072.
    _, nodes, graph = traced(build(models.CifarSENet), resolution=(32,))
    for block in ("layer1", "layer2", "layer3"):
        assert graph[f"{block}.avg_pool2d"].layer_info.kind == "global"
        assert graph[f"{block}.mul"].layer_info.kind == "merge"
    assert graph["layer3.mul"].get_maximum_scale_factor() == (4, 4)
    assert input_resolution_range(graph["linear"]) == ((11, 11), (11, 11))


def test_a_finite_path_broadcast_over_the_map_becomes_global():
    # x * x[:, :, :1, :1]: the top-left position (RF 3) multiplies every position
    _, nodes, graph = traced(build(models.CornerGate), resolution=(16,))
    gate = nodes["mul.broadcast"]
    assert (gate["layer"]["kind"], gate["map_in"]) == ("global", [1, 1])
    assert graph["mul"].receptive_field_min == (3, 3) and math.isinf(graph["mul"].receptive_field_max[0])
    assert graph["mul"].get_maximum_scale_factor() == (1, 1)


# --- 6. upsampling reads exactly its taps -----------------------------------------------------

UPSAMPLERS = {
    # a 3x3 conv (RF 3, j 1 or, with stride 2, j 2), then the upsampling layer:
    # ConvTranspose2d(k=4, s=2) reads ceil(4/2) = 2 inputs: + 1 * j
    "transposed k4 s2": (nn.ConvTranspose2d(2, 2, 4, 2, 1), 1, 4),
    "transposed k4 s2 on j 2": (nn.ConvTranspose2d(2, 2, 4, 2, 1), 2, 5),
    "transposed k2 s2": (nn.ConvTranspose2d(2, 2, 2, 2), 1, 3),  # one input each: + 0
    "transposed k3 s2": (nn.ConvTranspose2d(2, 2, 3, 2, 1, output_padding=1), 1, 4),  # 2: + 1
    # dilation 3, k 2, s 2: taps 3 apart reach one output only when 3t is even: one input
    "transposed k2 s2 d3": (nn.ConvTranspose2d(2, 2, 2, 2, dilation=3), 1, 3),
    "nearest x2": (nn.Upsample(scale_factor=2), 1, 3),  # 1 tap: + 0
    "bilinear x2": (nn.Upsample(scale_factor=2, mode="bilinear"), 1, 4),  # 2 taps: + 1 * j
    "bilinear x2 on j 2": (nn.Upsample(scale_factor=2, mode="bilinear"), 2, 5),
    "bicubic x2": (nn.Upsample(scale_factor=2, mode="bicubic"), 1, 6),  # 4 taps: + 3 * j
    "bicubic x3 on j 2": (nn.Upsample(scale_factor=3, mode="bicubic"), 2, 9),
}


@pytest.mark.parametrize("case", list(UPSAMPLERS))
def test_upsampling_reads_exactly_its_taps(case):
    up, stride, rf = UPSAMPLERS[case]
    model = models.Upsampler(up, stride)
    _, _, graph = traced(model, input_shape=(1, 2, 24, 24))
    assert graph["up"].receptive_field_max == (rf, rf)
    assert agrees(graph["up"], measured(model, (1, 2, 24, 24), "up", phases=3), 24)


class FunctionalTransposed(nn.Module):
    """``F.conv_transpose2d`` with its own weight: k 4, s 2, p 1."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(2, 2, 4, 4))

    def forward(self, x):
        return nn.functional.conv_transpose2d(x, self.weight, stride=2, padding=1)


def test_functional_transposed_conv_reads_its_taps_like_the_module():
    # the 3x3 conv (RF 3, j 1), then k 4 s 2 reads ceil(4/2) = 2 inputs: 3 + 1 * 1 = 4
    model = models.Upsampler(FunctionalTransposed())
    _, _, graph = traced(model, input_shape=(1, 2, 24, 24))
    up = graph["up.conv_transpose2d"]
    assert up.receptive_field_max == (4, 4)
    assert agrees(up, measured(model, (1, 2, 24, 24), "up", phases=3), 24)


# --- 7. attention -----------------------------------------------------------------------------

def test_window_attention_is_a_kernel_of_the_window_and_global_attention_global():
    # patches 2x2/2: RF 2, j 2; attention in 4x4 windows of the 16x16 patch grid: + 3 * 2 = 8
    model = models.Attentions()
    plain, nodes, graph = traced(model, input_shape=(1, 2, 32, 32))
    window = nodes["window.matmul"]["layer"]
    assert (window["kind"], window["kernel_size"], window["stride_size"]) == ("attention", [4, 4], [1, 1])
    assert graph["window.matmul"].receptive_field_max == (8, 8)
    assert nodes["window.matmul"]["map_in"] == [16, 16]  # windows in the batch dim counted
    sdpa = nodes["globally.scaled_dot_product_attention"]["layer"]
    assert (sdpa["kind"], sdpa["kernel_size"]) == ("attention", None)
    assert plain["unsupported"] == []
    assert agrees(graph["window.matmul"], measured(model, (1, 2, 32, 32), "window"), 32)


def test_a_recurrent_layer_reads_its_whole_sequence():
    # patches 2x2/2 (RF 2, j 2), then a bidirectional LSTM along each row of the 8x8 patch
    # grid: a kernel of the row, (1, 8): 2 + 7 * 2 = 16 across, 2 down
    model = models.RowLSTM()
    plain, nodes, graph = traced(model, input_shape=(1, 1, 16, 16))
    rnn = nodes["rnn"]["layer"]
    assert (plain["unsupported"], rnn["kind"], rnn["kernel_size"]) == ([], "attention", [1, 8])
    assert graph["head"].receptive_field_max == (2, 16)
    assert agrees(graph["head"], measured(model, (1, 1, 16, 16), "head"), 16)


# --- 8. sites of functional ops ---------------------------------------------------------------

def test_functional_ops_in_a_forward_are_sited_where_they_are_written():
    # Block.forward's max_pool2d and cat run in both blocks: each node is at the forward's line,
    # as a layer is at its constructor's; its own block's line follows, for a file that holds the
    # block's construction but not its forward
    _, nodes, _ = traced(build(models.TwoBlocks), input_shape=(1, 4, 16, 16))
    for block in ("first", "second"):
        for op in ("max_pool2d", "cat"):
            sites = [tuple(site) for site in nodes[f"{block}.{op}"]["sites"]]
            assert sites[0] == (MODELS_FILE, marked_line("block-forward"))
            assert (MODELS_FILE, marked_line(f"block-{block}")) in sites[1:]
