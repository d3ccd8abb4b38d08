"""The receptive-field core on hand-built graphs, with figures derived by hand in each test."""

import json
import math
import runpy
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from synthetic_graphs import conv, densenet_like

from rfa_lint.graphs import EnrichedNetworkNode, LayerDefinition
from rfa_lint.rf import (
    Kind,
    Verdict,
    classify,
    graph_from_plain,
    graph_to_plain,
    input_feature_map,
    input_resolution_range,
    kernel_covers_feature_map,
    kernel_fit_from,
    productive_from,
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
    assert kernel_covers_feature_map(c[-1], 24)  # ceil(24 / 8) = 3 <= 3
    assert not kernel_covers_feature_map(c[-1], 32)  # 4 > 3
    # padded layers round up: a 25px input gives maps 13, 7, 4 -> 4 > 3 (the floor said 3)
    assert input_feature_map(c[-1], 25) == (4,)
    assert not kernel_covers_feature_map(c[-1], 25)
    assert kernel_fit_from(c[-1]) == (3 * 8 + 1,)
    # a traced map wins over the estimate (a valid-padded net: 25 -> 12 -> 5 -> 2)
    assert kernel_covers_feature_map(c[-1], 25, feature_map=(2, 2))
    assert input_feature_map(c[-1], 25, feature_map=[2, 2]) == (2, 2)


def test_kernel_covers_needs_all_axes_and_a_map_of_at_least_one():
    # below the stride product the map is 1, never 0: ceil(5 / 8) = 1
    c = chain((3, 2), (3, 2), (3, 2), (3, 1))
    assert input_feature_map(c[-1], 5) == (1,)
    wide = conv("wide", [c[2]], k=(7, 1))  # on a (ceil(48/8), ceil(16/8)) = (6, 2) map
    assert input_feature_map(wide, (48, 16)) == (6, 2)
    assert not kernel_covers_feature_map(wide, (48, 16))  # 2 > 1 on the second axis
    assert kernel_fit_from(wide) == (7 * 8 + 1, 1 * 8 + 1)


def test_kernel_1_layers_never_cover_their_map():
    # On a 1x1 map (R = 8 at stride 8) a 1x1 conv and a kernel-1 stride-1 pool (AvgPool2d(1))
    # are not dense layers in disguise; a 3x3 there is.
    c = chain((3, 2), (3, 2), (3, 2))
    one = conv("one", [c[-1]], k=1)
    avg1 = LayerDefinition("AvgPool2d", kernel_size=1, stride_size=1, kind="pool")
    noop = EnrichedNetworkNode("noop", avg1, [c[-1]])
    three = conv("three", [c[-1]])
    assert input_feature_map(one, 8) == (1,)
    assert not kernel_covers_feature_map(one, 8) and not kernel_covers_feature_map(noop, 8)
    assert kernel_covers_feature_map(three, 8)
    # the effective kernel counts: a 2x2 dilated by 2 (k_eff 3) covers ceil(24 / 8) = 3, not 4
    dilated = conv("dil", [c[-1]], k=2, d=2)
    assert kernel_covers_feature_map(dilated, 24) and not kernel_covers_feature_map(dilated, 25)


def test_squeeze_excitation_gate_makes_max_infinite():
    stem = conv("stem")
    body = conv("body", [stem])  # 5
    pool = EnrichedNetworkNode("pool", LayerDefinition("AdaptiveAvgPool2d"), [body])
    fc = conv("fc", [pool], k=1)
    gate = EnrichedNetworkNode("mul", LayerDefinition("mul", kernel_size=1, kind="merge"), [body, fc])
    assert gate.receptive_field_min == 5 and math.isinf(gate.receptive_field_max)
    assert not fc.has_finite_rf and gate.has_finite_rf
    (lo,), (hi,) = input_resolution_range(gate, filter_all_inf_rf=False)
    assert lo == 5 and math.isinf(hi)
    # the default (the seed code's) drops the gate's infinite size: the body's 5 remains
    assert input_resolution_range(gate) == ((5,), (5,))


def test_global_attention_means_no_upper_bound():
    # A ViT: a 16x16/16 patch conv (rf 16) then global attention (inf) and a head.  The min is
    # the patch conv's 16; nothing limits the max, whatever filter_all_inf_rf says.
    patch = conv("patch", k=16, s=16)
    attn = EnrichedNetworkNode("attn", LayerDefinition("MultiheadAttention", kind="attention"), [patch])
    head = EnrichedNetworkNode("head", LayerDefinition("Linear", kernel_size=1, units=10), [attn])
    for flag in (True, False):
        assert input_resolution_range(head, filter_all_inf_rf=flag, cardinality=2) == (
            (16, 16), (math.inf, math.inf),
        )
    # window attention (a finite kernel: 7 tokens at j 16) is a conv-like layer: 16 + 6 * 16 = 112
    window = EnrichedNetworkNode(
        "win", LayerDefinition("WindowAttention", kernel_size=7, kind="attention"), [conv("p", k=16, s=16)]
    )
    assert input_resolution_range(window) == ((112,), (112,))


def test_a_broadcast_gate_never_passes_its_stride_product_on():
    # body: 3x3/2 then 3x3/2, j = 4.  The gate branch pools globally (j resets to 1), then a
    # strided 1x1 on the 1x1 vector (j 8 on that path, as a frontend may record it).  The
    # multiply's map is the body's: scale 4, not 8.
    body = chain((3, 2), (3, 2))[-1]
    pool = EnrichedNetworkNode("pool", LayerDefinition("pool", kernel_size=None), [body])
    squeeze = conv("squeeze", [pool], k=1, s=8)
    assert squeeze.scale_per_axis == (8,)  # only infinite paths: their own stride product
    gate = EnrichedNetworkNode("mul", LayerDefinition("mul", kernel_size=1, kind="merge"), [body, squeeze])
    assert gate.scale_per_axis == (4,)
    assert gate.compute_feature_map_size(32) == 8


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
    assert [n.layer_info for n in rebuilt.all_layers] == [n.layer_info for n in out.all_layers]


def test_traced_map_sizes_travel_with_the_plain_graph():
    stem = EnrichedNetworkNode(
        "stem", LayerDefinition("Conv3x3", kernel_size=3, stride_size=2), map_in=[25, 24], map_out=(13, 12)
    )
    head = EnrichedNetworkNode("head", LayerDefinition("Linear", units=10), [stem])
    assert (stem.map_in, stem.map_out, head.map_in) == ((25, 24), (13, 12), None)
    data = json.loads(json.dumps(graph_to_plain(head)))
    assert data["nodes"][0]["map_in"] == [25, 24] and data["nodes"][1]["map_out"] is None
    rebuilt = graph_from_plain(data).all_layers[0]
    assert (rebuilt.map_in, rebuilt.map_out) == ((25, 24), (13, 12))


def test_plain_data_of_older_versions_still_loads():
    # no map keys; layers written with per-axis lists and a fractional upsampling as a float
    old = {
        "nodes": [
            {"name": "c", "layer": {"name": "Conv", "kernel_size": [3], "stride_size": [2],
                                    "filters": 8, "units": None, "dilation": [1],
                                    "upsampling": [1], "kind": "conv"}, "predecessors": []},
            {"name": "up", "layer": {"name": "Upsample", "kernel_size": [1], "stride_size": [1],
                                     "upsampling": [1.5], "kind": "resize"}, "predecessors": [0]},
        ],
        "output": 1,
    }
    out = graph_from_plain(old)
    assert out.map_in is None and out.predecessors[0].layer_info.kernel_size == (3,)
    assert out.scale_per_axis == (2 / 1.5,)
    hash(out.layer_info)


def test_layers_are_hashable_values():
    # a list given by the caller is stored as a tuple: equal layers hash equal
    a = LayerDefinition("Conv", kernel_size=[3, 5], stride_size=[1, 2])
    b = LayerDefinition("Conv", kernel_size=(3, 5), stride_size=(1, 2))
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a.kernel_size == (3, 5) and LayerDefinition("C", kernel_size=3).kernel_size == 3
    # an infinite scalar kernel is the seed's None
    assert LayerDefinition("GAP", kernel_size=math.inf) == LayerDefinition("GAP", kernel_size=None)


def test_fractions_and_infinite_axes_survive_strict_json():
    layer = LayerDefinition("Upsample", kernel_size=(1, math.inf), upsampling=(Fraction(3, 2), 2))
    text = json.dumps(layer.to_dict(), allow_nan=False)  # no Infinity / NaN tokens
    back = LayerDefinition.from_dict(json.loads(text))
    assert back == layer and back.upsampling == (Fraction(3, 2), 2)
    assert isinstance(back.upsampling[0], Fraction)


scalars = st.one_of(
    st.integers(1, 64),
    st.fractions(min_value=1, max_value=64, max_denominator=12),
    st.floats(1, 64, allow_nan=False, allow_infinity=False),
)


def geometry(values):
    return st.one_of(values, st.lists(values, min_size=1, max_size=3).map(tuple))


@st.composite
def layers(draw):
    kernel = draw(st.one_of(st.none(), geometry(st.one_of(scalars, st.just(math.inf)))))
    sizes = {"kernel_size": kernel, "stride_size": draw(st.one_of(st.none(), geometry(scalars))),
             "dilation": draw(geometry(st.integers(1, 4))), "upsampling": draw(geometry(scalars))}
    per = [v for v in sizes.values() if isinstance(v, tuple)]
    if len({len(v) for v in per}) > 1:  # per-axis values of different lengths are refused
        n = len(per[0])
        sizes = {k: v[:1] * n if isinstance(v, tuple) else v for k, v in sizes.items()}
    return LayerDefinition(
        draw(st.text(max_size=8)),
        filters=draw(st.one_of(st.none(), st.integers(1, 512))),
        units=draw(st.one_of(st.none(), st.integers(1, 512))),
        kind=draw(st.one_of(st.none(), st.sampled_from(["conv", "pool", "resize", "attention"]))),
        **sizes,
    )


@settings(max_examples=300, deadline=None)
@given(layers())
def test_layer_round_trips_through_strict_json(layer):
    back = LayerDefinition.from_dict(json.loads(json.dumps(layer.to_dict(), allow_nan=False)))
    assert back == layer and hash(back) == hash(layer)
    # exact types too: a Fraction stays a Fraction, a float a float (2 == Fraction(2) == 2.0)
    assert value_types(back) == value_types(layer)


def value_types(layer):
    values = (layer.kernel_size, layer.stride_size, layer.dilation, layer.upsampling)
    return [tuple(map(type, v)) if isinstance(v, tuple) else type(v) for v in values]


def test_invalid_layers_are_refused():
    with pytest.raises(ValueError, match="kernel_size"):
        LayerDefinition("bad", kernel_size=0)
    with pytest.raises(ValueError, match="different lengths"):
        LayerDefinition("bad", kernel_size=(3, 3), stride_size=(1, 1, 1))
    with pytest.raises(ValueError, match="topological"):
        graph_from_plain({"nodes": [{"name": "x", "layer": {"name": "c"}, "predecessors": [0]}]})


def test_kinds_are_one_vocabulary_written_as_plain_strings():
    layer = LayerDefinition("c", kernel_size=3, kind="pool")
    assert layer.kind is Kind.POOL
    assert json.dumps(layer.to_dict()) == '{"name": "c", "kernel_size": 3, "stride_size": 1, "kind": "pool"}'
    assert LayerDefinition("d", units=8).kind is Kind.DENSE  # inferred: units make a dense layer
    with pytest.raises(ValueError, match="unknown kind 'convolution'"):
        LayerDefinition("bad", kind="convolution")


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


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from([1, 3, 5, 7]), st.integers(1, 3)), min_size=1, max_size=8),
    st.integers(1, 400),
)
def test_estimated_maps_are_those_of_padded_convs(layers_ks, res):
    # A conv with an odd kernel k padded by (k - 1) / 2 maps n to floor((n + k - 1 - k) / s) + 1,
    # i.e. ceil(n / s); ceil(ceil(R / a) / b) = ceil(R / ab), so the estimate is exact there.
    nodes, size = chain(*layers_ks), res
    for node, (k, s) in zip(nodes, layers_ks):
        assert input_feature_map(node, res) == (size,)
        size = (size - 1) // s + 1
        assert kernel_covers_feature_map(node, res) == (k > 1 and input_feature_map(node, res)[0] <= k)
        if kernel_covers_feature_map(node, res) and res > 1:  # covered at R: covered below it too
            assert kernel_covers_feature_map(node, res - 1)
        assert kernel_covers_feature_map(node, res) == (k > 1 and res < kernel_fit_from(node)[0])


def _plain(*layers: tuple) -> dict:
    """Plain graph data: (name, LayerDefinition, predecessors, spans_map) per node, in order."""
    return {"nodes": [{"name": name, "layer": layer.to_dict(), "predecessors": list(preds),
                       "spans_map": spans} for name, layer, preds, spans in layers]}


@pytest.mark.parametrize(
    "after, head",
    [
        ([], True),  # the whole-map pool ends the net: a head
        ([("fc", LayerDefinition("fc", kernel_size=1, kind="dense"), [2])], True),  # per position after
        ([("late", LayerDefinition("late", kernel_size=3), [2])], False),  # a window reads it: no head
        # an SE gate: 1x1, a global broadcast, then the main path's 3x3 after the merge
        ([("fc", LayerDefinition("fc", kernel_size=1), [2]),
          ("bc", LayerDefinition("bc", kernel_size=None, kind="global"), [3]),
          ("mul", LayerDefinition("mul", kernel_size=1, kind="merge"), [1, 4]),
          ("late", LayerDefinition("late", kernel_size=3), [5])], True),
    ],
)
def test_a_kernel_spanning_its_map_is_a_global_head_only_when_no_window_reads_it(after, head):
    data = _plain(
        ("input", LayerDefinition("input", kernel_size=1, kind="input"), [], False),
        ("conv", LayerDefinition("conv", kernel_size=3), [0], False),  # rf 3
        ("whole", LayerDefinition("whole", kernel_size=4, stride_size=4, kind="pool"), [1], True),
        *[(name, layer, preds, False) for name, layer, preds in after],
    )
    whole = next(n for n in graph_from_plain(data).all_layers if n.name == "whole")
    # a head is global like the AdaptiveAvgPool2d(1) it stands for; else a 4x4 pool: 3 + 3 = 6
    expected = ("global", math.inf) if head else ("pool", 6)
    assert (whole.layer_info.kind, whole.receptive_field_min) == expected


@pytest.mark.parametrize(
    "mixer_map_out, merged_map, unbounded",
    [
        (None, [14, 14], True),  # MLP-Mixer: positions folded into features, then back on the map
        ([1, 1], [14, 14], False),  # an SE gate: one pooled position broadcast over the map
        (None, None, False),  # a head: flattened, never a map again
    ],
)
def test_global_mixing_that_the_network_goes_on_from_has_no_upper_bound(
    mixer_map_out, merged_map, unbounded
):
    # patch embedding 16/16 (rf 16), a global layer, a per-position layer, a residual merge
    data = {"nodes": [
        {"name": "input", "layer": LayerDefinition("input", kernel_size=1, kind="input").to_dict(),
         "predecessors": [], "map_out": [224, 224]},
        {"name": "embed", "layer": LayerDefinition("embed", kernel_size=16, stride_size=16).to_dict(),
         "predecessors": [0], "map_in": [224, 224], "map_out": [14, 14]},
        {"name": "mix", "layer": LayerDefinition("mix", kernel_size=None, kind="dense").to_dict(),
         "predecessors": [1], "map_in": [14, 14], "map_out": mixer_map_out},
        {"name": "fc", "layer": LayerDefinition("fc", kernel_size=1, kind="dense").to_dict(),
         "predecessors": [2], "map_in": mixer_map_out, "map_out": mixer_map_out},
        {"name": "add", "layer": LayerDefinition("add", kernel_size=1, kind="merge").to_dict(),
         "predecessors": [1, 3], "map_in": [14, 14], "map_out": merged_map},
    ]}
    low, high = input_resolution_range(graph_from_plain(data), cardinality=2)
    assert low == (16, 16) and high == ((math.inf,) * 2 if unbounded else (16, 16))


def _imports(path: Path, package: str) -> set[str]:
    """The modules of ``package`` a file imports, anywhere in it but under ``if TYPE_CHECKING``."""
    import ast

    found = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)  # `from pkg import module`
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return {name for name in found if name == package or name.startswith(package + ".")}


def test_the_rf_core_imports_without_a_circle():
    # issue 27: graph imported analysis (is_border) and analysis graph; graph took windows
    # through the package, whose __init__ imports graph.  A module's edges go to the modules it
    # names; the package itself is named by `from rfa_lint.rf import ...`.
    folder = Path(__file__).resolve().parents[1] / "rfa_lint" / "rf"
    modules = {("rfa_lint.rf" if p.stem == "__init__" else f"rfa_lint.rf.{p.stem}"): p
               for p in folder.glob("*.py")}
    edges = {name: _imports(path, "rfa_lint.rf") & set(modules) - {name} for name, path in modules.items()}

    def reaches(start: str, goal: str, seen: set) -> bool:
        return any(n == goal or (n not in seen and not seen.add(n) and reaches(n, goal, seen))
                   for n in edges[start])

    assert [name for name in modules if reaches(name, name, set())] == []
