"""The receptive-field core on hand-built graphs, with figures derived by hand in each test."""

import json
import math
import runpy
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rfa_lint.graphs import EnrichedNetworkNode, LayerDefinition
from rfa_lint.rf import (
    Verdict,
    classify,
    graph_from_plain,
    graph_to_plain,
    input_resolution_range,
    kernel_covers_feature_map,
    productive_from,
)


def conv(name, preds=(), k=3, s=1, d=1, **kw):
    return EnrichedNetworkNode(
        name=name,
        layer_info=LayerDefinition(name=f"Conv{k}x{k}", kernel_size=k, stride_size=s, dilation=d, **kw),
        predecessors=list(preds),
    )


def chain(*layers):
    """layers: (k, s) pairs from the input on; returns the nodes."""
    nodes, prev = [], []
    for i, (k, s) in enumerate(layers):
        nodes.append(conv(f"c{i}", prev, k=k, s=s))
        prev = [nodes[-1]]
    return nodes


def test_seed_custom_example_runs_unchanged_but_for_the_import():
    # examples/custom_graph.py is the seed README's "Custom" example with rfa_lint's import line:
    # conv1 sees 3px; conv2 and conv3 add 2 each (5); conv4 merges two 5px paths and adds 2 (7);
    # the dense Softmax sees everything.
    example = runpy.run_path(str(Path(__file__).resolve().parents[1] / "examples" / "custom_graph.py"))
    out, conv1, conv2, conv3, conv4 = (example[name] for name in ("out", "conv1", "conv2", "conv3", "conv4"))
    assert [n.name for n in out.all_layers] == ["Conv1", "Conv2", "Conv3", "Conv4", "Softmax"]
    assert [n.receptive_field_min for n in out.all_layers[:4]] == [3, 5, 5, 7]
    assert conv4.receptive_field_sizes == [7]
    assert math.isinf(out.receptive_field_min) and out.layer_info.kind == "dense"
    assert conv1.successors == [conv2, conv3]
    assert input_resolution_range(out) == ((7,), (7,))
    assert input_resolution_range(out, cardinality=2) == ((7, 7), (7, 7))


def test_chain_of_five_3x3():
    assert [n.receptive_field_min for n in chain(*[(3, 1)] * 5)] == [3, 5, 7, 9, 11]


def test_chain_with_strides_1_2_1_2_1():
    # j doubles after each stride-2 layer: 3, 3+2*1, 5+2*2, 9+2*2, 13+2*4
    nodes = chain((3, 1), (3, 2), (3, 1), (3, 2), (3, 1))
    assert [n.receptive_field_min for n in nodes] == [3, 5, 9, 13, 21]
    assert nodes[-1].get_maximum_scale_factor() == 4


def test_two_branches_merged_keep_min_and_max():
    # stem 3x3 (3, j=1); branch a 3x3/s2 (5, j=2); branch b 5x5/s2 (7, j=2);
    # the 3x3 after the merge adds 2*2 to both: 9 and 11; one more 3x3: 13 and 15.
    stem = conv("stem")
    a, b = conv("a", [stem], k=3, s=2), conv("b", [stem], k=5, s=2)
    merge = conv("merge", [a, b])
    last = conv("last", [merge])
    assert (merge.receptive_field_min, merge.receptive_field_max) == (9, 11)
    assert (last.receptive_field_min, last.receptive_field_max) == (13, 15)
    assert sorted(last.receptive_field_sizes) == [13, 15]
    assert input_resolution_range(last) == ((13,), (15,))


def test_dilated_3x3_adds_four_jumps():
    stem = conv("stem", k=3, s=2)  # rf 3, j 2
    dilated = conv("dilated", [stem], k=3, d=2)  # effective kernel 5: adds 4 * j = 8
    assert dilated.receptive_field_min == 3 + 4 * 2
    assert dilated.layer_info.effective_kernel == (5,)


def test_non_square_layer_is_a_border_case():
    # A 7x1 kernel at 5px: the RF is 7 x 1, past 5 on the first axis only -> yellow.
    wide = conv("wide", k=(7, 1))
    assert wide.receptive_field_min == (7, 1)
    assert classify(wide, 5) is Verdict.BORDER
    assert classify(wide, (8, 8)) is Verdict.PRODUCTIVE
    assert classify(wide, (5, 0)) is Verdict.CRITICAL  # past on both axes; input (1px) is not


def test_unproductive_and_critical_in_a_chain():
    c = chain(*[(3, 1)] * 5)  # 3, 5, 7, 9, 11
    at7 = [classify(n, 7) for n in c]
    assert at7 == [Verdict.PRODUCTIVE] * 3 + [Verdict.UNPRODUCTIVE] * 2  # inputs 7, 9 >= 7
    at8 = [classify(n, 8) for n in c]
    assert at8 == [Verdict.PRODUCTIVE] * 3 + [Verdict.CRITICAL, Verdict.UNPRODUCTIVE]
    assert productive_from(c[3]) == (9,)


def test_filter_kernel_size_1_keeps_1x1_from_red():
    c = chain((3, 1), (3, 1), (1, 1))  # 3, 5, 5
    assert classify(c[2], 4) is Verdict.UNPRODUCTIVE
    assert classify(c[2], 4, filter_kernel_size_1=True) is Verdict.CRITICAL


def test_resolution_range_and_kernel_fit():
    c = chain((3, 2), (3, 2), (3, 2))  # rf 3, 7, 15; jumps 2, 4, 8
    assert input_resolution_range(c[-1], cardinality=2) == ((15, 15), (15, 15))
    # kernel fit: the last 3x3 runs on a map with stride product 8 -> needs 3 * 8 = 24px
    assert input_resolution_range(c[-1], kernel_fit=True) == ((24,), (15,))


def test_kernel_covers_feature_map():
    c = chain((3, 2), (3, 2), (3, 2), (3, 1))  # the last layer's input has stride product 8
    assert kernel_covers_feature_map(c[-1], 24)  # 24 // 8 = 3 <= 3
    assert not kernel_covers_feature_map(c[-1], 32)  # 4 > 3


def test_squeeze_excitation_gate_makes_max_infinite():
    stem = conv("stem")
    body = conv("body", [stem])  # 5
    pool = EnrichedNetworkNode("pool", LayerDefinition("AdaptiveAvgPool2d"), [body])
    fc = conv("fc", [pool], k=1)
    gate = EnrichedNetworkNode("mul", LayerDefinition("mul", kernel_size=1, kind="merge"), [body, fc])
    assert gate.receptive_field_min == 5 and math.isinf(gate.receptive_field_max)
    assert not fc.has_finite_rf and gate.has_finite_rf
    (lo,), (hi,) = input_resolution_range(gate)
    assert lo == 5 and math.isinf(hi)
    assert input_resolution_range(gate, filter_all_inf_rf=True) == ((5,), (5,))


def test_upsampling_divides_the_stride_product():
    down = chain((3, 2), (3, 2))  # rf 7, j 4
    up = EnrichedNetworkNode(
        "deconv", LayerDefinition("ConvTranspose2d", kernel_size=2, upsampling=2), [down[-1]]
    )
    assert (up.receptive_field_min, up.get_maximum_scale_factor()) == (7 + 1 * 2, 2)
    after = conv("after", [up])
    assert after.receptive_field_min == 9 + 2 * 2
    # an odd jump gives a fractional stride product, kept exact
    half = EnrichedNetworkNode("up", LayerDefinition("Upsample", kernel_size=1, upsampling=2), [conv("s")])
    assert conv("c", [half]).receptive_field_min == 3 + 2 * Fraction(1, 2)


def test_plain_round_trip_through_json():
    stem = conv("stem", k=(7, 5), s=2)
    a, b = conv("a", [stem]), conv("b", [stem], k=1)
    out = EnrichedNetworkNode("head", LayerDefinition("Linear", units=10), [a, b], module_paths=("fc",))
    a.sites = (("model.py", 12),)
    data = json.loads(json.dumps(graph_to_plain(out)))
    rebuilt = graph_from_plain(data)
    assert [n.receptive_field_sizes for n in rebuilt.all_layers] == [
        n.receptive_field_sizes for n in out.all_layers
    ]
    assert rebuilt.all_layers[1].sites == (("model.py", 12),)
    assert rebuilt.module_paths == ("fc",)


def test_invalid_layers_are_refused():
    with pytest.raises(ValueError, match="kernel_size"):
        LayerDefinition("bad", kernel_size=0)
    with pytest.raises(ValueError, match="different lengths"):
        LayerDefinition("bad", kernel_size=(3, 3), stride_size=(1, 1, 1))
    with pytest.raises(ValueError, match="topological"):
        graph_from_plain({"nodes": [{"name": "x", "layer": {"name": "c"}, "predecessors": [0]}]})


@st.composite
def random_dags(draw):
    n = draw(st.integers(1, 25))
    nodes = []
    for i in range(n):
        preds = draw(st.lists(st.sampled_from(nodes), min_size=1, max_size=3, unique_by=id)) if nodes else []
        k = draw(st.tuples(st.integers(1, 7), st.integers(1, 7)))
        s = draw(st.tuples(st.integers(1, 3), st.integers(1, 3)))
        d = draw(st.integers(1, 3))
        nodes.append(conv(f"n{i}", preds, k=k, s=s, d=d))
    return nodes


@settings(max_examples=150, deadline=None)
@given(random_dags(), st.integers(1, 300), st.integers(1, 300))
def test_properties_on_random_dags(nodes, r1, r2):
    low, high = sorted((r1, r2))
    for node in nodes:
        assert all(lo <= hi for lo, hi in zip(node.rf_min_per_axis, node.rf_max_per_axis))
        for pred in node.predecessors:  # RF never shrinks along a path
            assert all(n >= p for n, p in zip(node.rf_max_per_axis, pred.rf_max_per_axis))
        for axis in range(2):
            inputs = node.predecessors or [node]
            assert node.rf_min_per_axis[axis] >= min(p.rf_min_per_axis[axis] for p in inputs)
        at_low, at_high = classify(node, low), classify(node, high)
        # classification is monotone in R: what is flagged at a larger R is flagged at a smaller
        if at_high is not Verdict.PRODUCTIVE:
            assert at_low is not Verdict.PRODUCTIVE
        if at_high is Verdict.UNPRODUCTIVE:
            assert at_low is Verdict.UNPRODUCTIVE
        if at_high in (Verdict.CRITICAL, Verdict.UNPRODUCTIVE):
            assert at_low in (Verdict.CRITICAL, Verdict.UNPRODUCTIVE)


def densenet_like(blocks=40, layers_per_block=50):
    """2,000 nodes: in each block every layer reads all earlier layers of the block (concat)."""
    prev = conv("stem", k=7, s=2)
    for b in range(blocks):
        members = [prev]
        for i in range(layers_per_block - 1):
            members.append(conv(f"b{b}l{i}", members, k=3))
        prev = conv(f"t{b}", members, k=2, s=2) if b < blocks - 1 else members[-1]
    return prev


def test_densenet_like_graph_stays_bounded():
    out = densenet_like()
    assert len(out.all_layers) == 2000
    # per stride product only the extremes are kept: a node reading two blocks (two stride
    # products, finite RFs) carries at most four entries, however many paths reach it
    assert max(len(n.receptive_field_info) for n in out.all_layers) <= 4


def all_path_rfs(node):
    """Every path's (rf, jump) from the input to ``node``, enumerated without any pruning."""
    k, s = node.layer_info.kernel[0], node.layer_info.stride[0]
    incoming = [rj for p in node.predecessors for rj in all_path_rfs(p)] or [(1, 1)]
    return [(rf + (k - 1) * j, j * s) for rf, j in incoming]


def test_kept_extremes_equal_the_extremes_over_all_paths():
    out = densenet_like(blocks=3, layers_per_block=6)
    for node in out.all_layers:
        rfs = [rf for rf, _ in all_path_rfs(node)]
        assert (node.receptive_field_min, node.receptive_field_max) == (min(rfs), max(rfs))
