"""Windows as intervals (rfa_lint/rf/windows.py): what each layer reads, derived by hand, and
the Keras frontend's pads, crops and ``same`` paddings (the torch frontend is judged by the
gradient oracle in tests/test_oracle.py)."""

from __future__ import annotations

import pytest

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
    # conv 4/4 on 64 -> 16 positions; rate 36 with padding 36: the outer taps never land on the map
    conv = LayerDefinition("c", 4, 4, reads=[W.conv_reads(4, 4, 1, 0)])
    aspp = LayerDefinition("aspp", 3, 1, dilation=36, reads=[W.conv_reads(3, 1, 36, 36)])
    graph = _chain((conv, 16), (aspp, 16), size=64)
    assert graph.rf_max_per_axis == (4,)
    assert max(i.receptive_field for i in graph.receptive_field_info) == (4 + 72 * 4,)  # the path formula
    # on a 64-map the outer taps are live, but never both at one position: 4 + 36 * 4
    assert _chain((conv, 64), (aspp, 64), size=256).rf_max_per_axis == (148,)


def test_the_traced_sizes_bound_the_work():
    from rfa_lint.rf.graph import graph_limits

    conv = LayerDefinition("c", 3, 1, reads=[W.conv_reads(3, 1, 1, 1)])
    with graph_limits(10_000, 64, taps=10):  # too few taps: the path formula's maximum stays
        assert _chain((conv, 32), size=32).windows is None
    assert _chain((conv, 32), size=32).rf_max_per_axis == (3,)


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
