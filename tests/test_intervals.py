"""Windows as intervals (rfa_lint/rf/windows.py): what each layer reads, derived by hand, and
the Keras frontend's pads, crops and ``same`` paddings (the torch frontend is judged by the
gradient oracle in tests/test_oracle.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rfa_lint.rf import input_resolution_range
from rfa_lint.rf import windows as W
from rfa_lint.rf.graph import LayerDefinition, graph_from_plain


def test_a_transposed_conv_reads_by_phase():
    # k3 s2 p1: output o = 2i - 1 + t, so even outputs read i = o/2 (t = 1), odd ones two
    assert W.transposed_reads(3, 2, 1, 1) == W.Reads(2, 1, ((0,), (0, 1)))
    # k4 s2 p1: every output reads two inputs, the pair shifted by phase
    assert W.transposed_reads(4, 2, 1, 1) == W.Reads(2, 1, ((-1, 0), (0, 1)))


def test_resampling_reads():
    assert W.adaptive_reads(6, 7).offsets[3] == (2, 3)  # [floor(18/7), ceil(24/7)) = [2, 4)
    assert W.adaptive_reads(14, 7) == W.Reads(1, 2, ((0, 1),))
    # bilinear x2, half-pixel centres: o = 2m reads m - 1, m; o = 2m + 1 reads m, m + 1
    assert W.resize_reads(8, 16, "bilinear") == W.Reads(2, 1, ((-1, 0), (0, 1)))
    # x3: every third output falls on an input position and reads it alone
    assert W.resize_reads(8, 24, "bilinear").offsets[1] == (0,)
    # antialiased halving: a triangle two inputs wide on each side reads four
    assert W.resize_reads(16, 8, "bilinear", antialias=True) == W.Reads(1, 2, ((-1, 0, 1, 2),))


def _chain(*layers, size=32):
    """A plain graph of a chain of layers on a 1-D map of ``size``, each with its map sizes."""
    nodes = [{"name": "input", "layer": LayerDefinition("input", 1, kind="input").to_dict(),
              "predecessors": [], "map_out": [size]}]
    for i, (layer, n_out) in enumerate(layers):
        nodes.append({"name": f"l{i}", "layer": layer.to_dict(), "predecessors": [i],
                      "map_in": nodes[-1]["map_out"], "map_out": [n_out]})
    return graph_from_plain({"nodes": nodes})


def test_taps_reading_only_padding_drop_out():
    # conv 4/4 on 64 -> 16 positions; rate 36 with padding 36: the outer taps never land on the
    # map, so at this size the branch is a 1x1 conv, for the maximum and the minimum alike
    conv = LayerDefinition("c", 4, 4, reads=[W.conv_reads(4, 4, 1, 0)])
    aspp = LayerDefinition("aspp", 3, 1, dilation=36, reads=[W.conv_reads(3, 1, 36, 36)])
    graph = _chain((conv, 16), (aspp, 16), size=64)
    assert (graph.rf_min_per_axis, graph.rf_max_per_axis) == ((4,), (4,))
    # the productive range takes the layer on maps where the taps land: the path formula's
    assert input_resolution_range(graph) == ((4 + 72 * 4,), (4 + 72 * 4,))
    # on a 64-map the outer taps land, but never both at one position: 4 + 36 * 4; every
    # position reads padding, so the minimum is no wider than that maximum
    wide = _chain((conv, 64), (aspp, 64), size=256)
    assert (wide.rf_min_per_axis, wide.rf_max_per_axis) == ((148,), (148,))


def test_the_minimum_is_the_narrowest_window_of_the_phases():
    """Conv 8/8, then two transposed convs 4/2 padding 1 (simplepose's head): on the coarse
    grid the first reads m - 1, m (phase 0) or m, m + 1 (phase 1): 8 + 1 * 8 = 16 everywhere;
    the second adds [m' - 1, m'] or [m', m' + 1] of those, which overlap by phase: positions
    read 16 or 24 pixels (the path formula: 16 + 1 * 4 = 20, neither)."""
    conv = LayerDefinition("c", 8, 8, reads=[W.conv_reads(8, 8, 1, 0)])
    up = LayerDefinition("t", 4, 1, upsampling=2, reads=[W.transposed_reads(4, 2, 1, 1)])
    graph = _chain((conv, 32), (up, 64), (up, 128), size=256)
    assert sorted(set(W.extents(graph.windows[0], uncut=True))) == [16, 24]
    assert (graph.rf_min_per_axis, graph.rf_max_per_axis) == ((16,), (24,))
    assert input_resolution_range(graph) == ((16,), (24,))  # RFA110 said (20, 20)


def test_the_traced_sizes_bound_the_work():
    from rfa_lint.rf.graph import graph_limits

    conv = LayerDefinition("c", 3, 1, reads=[W.conv_reads(3, 1, 1, 1)])
    with graph_limits(10_000, 64, taps=10):  # too few taps: the path formula's maximum stays
        assert _chain((conv, 32), size=32).windows is None
    assert _chain((conv, 32), size=32).rf_max_per_axis == (3,)


@st.composite
def _small_graphs(draw):
    """Random 1-D graphs on small maps, where padding cuts many windows and taps drop out:
    convs (dilated, padded, strided), transposed convs, adaptive pools, and adds of two earlier
    nodes of one size."""
    size = draw(st.integers(1, 24))
    nodes = [{"name": "input", "layer": LayerDefinition("input", 1, kind="input").to_dict(),
              "predecessors": [], "map_out": [size]}]
    for i in range(draw(st.integers(1, 8))):
        pick = draw(st.integers(0, len(nodes) - 1))
        n = nodes[pick]["map_out"][0]
        kind = draw(st.sampled_from(["conv", "conv", "transposed", "adaptive", "add"]))
        if kind == "add":
            same = [j for j, node in enumerate(nodes) if node["map_out"] == [n] and j != pick]
            if not same:
                continue
            layer, n_out = LayerDefinition("add", 1, kind="merge"), n
            preds = [pick, draw(st.sampled_from(same))]
        elif kind == "adaptive":
            n_out = draw(st.integers(1, 8))
            reads = W.adaptive_reads(n, n_out)
            layer = LayerDefinition("pool", max(map(len, reads.offsets)), kind="pool", reads=[reads])
            preds = [pick]
        else:
            k, s, d = draw(st.integers(1, 5)), draw(st.integers(1, 3)), draw(st.integers(1, 4))
            p = draw(st.integers(0, d * (k - 1)))
            if kind == "conv":
                n_out = (n + 2 * p - d * (k - 1) - 1) // s + 1
                layer = LayerDefinition("conv", k, s, dilation=d, reads=[W.conv_reads(k, s, d, p)])
            else:
                n_out = (n - 1) * s - 2 * p + d * (k - 1) + 1
                layer = LayerDefinition("up", max(1, -(-(d * (k - 1) + 1) // s)), 1, upsampling=s,
                                        reads=[W.transposed_reads(k, s, d, p)])
            if n_out < 1:
                continue
            preds = [pick]
        nodes.append({"name": f"n{i}", "layer": layer.to_dict(), "predecessors": preds,
                      "map_in": [n], "map_out": [n_out]})
    return {"nodes": nodes}


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(_small_graphs())
def test_the_minimum_never_exceeds_the_maximum(plain):
    """rf_min <= rf_max at every node, whatever padding cuts or drops (issue 25: an ASPP branch
    on a small map had a minimum of 292 and a maximum of 4)."""
    graph = graph_from_plain(plain)
    wrong = {n.name: (n.rf_min_per_axis, n.rf_max_per_axis) for n in graph.all_layers
             if any(lo > hi for lo, hi in zip(n.rf_min_per_axis, n.rf_max_per_axis))}
    assert wrong == {}


keras = pytest.importorskip("keras")


def _keras_graph(build):
    from rfa_lint.frontends.keras import to_plain

    inputs = keras.Input((32, 32, 1))
    return graph_from_plain(to_plain(keras.Model(inputs, build(inputs))))


def test_keras_pad_and_crop_shift_a_branch_as_nasnet_adjusts_it():
    """NASNet's adjust block: one half pools even pixels, the other, padded after and cropped
    before, odd ones; their concat sees both: a 3x3 conv's [2m - 1, 2m + 1] and
    [2m, 2m + 2], 4 pixels (one RF number per layer said 3); a 3x3 conv after: 4 + 2 * 2 = 8."""
    from keras import layers

    def build(x):
        x = layers.Conv2D(2, 3, padding="same", name="stem")(x)
        even = layers.AveragePooling2D(1, strides=2, name="even")(x)
        odd = layers.ZeroPadding2D(((0, 1), (0, 1)))(x)
        odd = layers.Cropping2D(((1, 0), (1, 0)))(odd)
        odd = layers.AveragePooling2D(1, strides=2, name="odd")(odd)
        joined = layers.Concatenate(name="joined")([even, odd])
        return layers.Conv2D(2, 3, padding="same", name="after")(joined)

    graph = _keras_graph(build)
    found = {n.name: n.rf_max_per_axis for n in graph.all_layers}
    assert (found["even"], found["odd"], found["joined"], found["after"]) == ((3, 3), (3, 3), (4, 4), (8, 8))


def test_keras_same_padding_of_a_strided_conv_pads_after():
    """TensorFlow pads a 3x3 stride-2 conv on an even map by one position after only: output m
    reads 2m..2m+2.  Padded by one on both sides first (as torch pads), a valid one reads
    2m-1..2m+1; their sum sees 2m-1..2m+2, 4 pixels, where one RF number per layer says 3."""
    from keras import layers

    def build(x):
        same = layers.Conv2D(2, 3, strides=2, padding="same", name="same")(x)
        padded = layers.ZeroPadding2D(1)(x)
        valid = layers.Conv2D(2, 3, strides=2, name="valid")(padded)
        return layers.Add(name="sum")([same, valid])

    found = {n.name: n.rf_max_per_axis for n in _keras_graph(build).all_layers}
    assert (found["same"], found["valid"], found["sum"]) == ((3, 3), (3, 3), (4, 4))
