"""The Keras frontend on real keras models: fixture files, inline models, keras.applications.

Receptive fields below are derived by hand: a k x k conv adds (k_eff - 1) * j to the RF, where j
is the product of the strides before it; a merge keeps the RF of every path (min and max).
"""

import importlib.util
import json
import math
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import keras  # tests/conftest.py has imported torchvision first (INSTALL-NOTES: segfault)
import pytest
from keras import layers

from rfa_lint.frontends import TraceError, base, register_layer_handler
from rfa_lint.frontends import keras as frontend
from rfa_lint.rf import LayerDefinition, graph_from_plain, input_resolution_range

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "keras_frontend"


def load(name):
    path = FIXTURES / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"keras_frontend_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def line_of(name, text):
    """The line of the fixture that contains ``text`` (exactly one)."""
    lines = (FIXTURES / f"{name}.py").read_text().splitlines()
    found = [i for i, line in enumerate(lines, 1) if text in line]
    assert len(found) == 1, (text, found)
    return found[0]


def site(name, text):
    return (str(FIXTURES / f"{name}.py"), line_of(name, text))


def analyse(build, **kwargs):
    """Build under the frontend's context; return (plain data, {node name: node})."""
    with frontend.building_context():
        model = build()
    plain = frontend.to_plain(model, **kwargs)
    json.dumps(plain)  # crosses the sandbox boundary as JSON
    graph = graph_from_plain(plain)
    return plain, {node.name: node for node in graph.all_layers}


def rf(node):
    """(min, max) RF per axis of a node."""
    return node.rf_min_per_axis, node.rf_max_per_axis


# --- fixture files ---------------------------------------------------------------------------


def test_functional_factory():
    plain, nodes = analyse(load("functional").build_functional)
    assert [n["name"] for n in plain["nodes"]] == [
        "input", "stem", "body_a", "body_b", "join", "pool", "tall", "gap", "head",
    ]
    assert plain["input_shape"] == [1, 64, 64, 3] and plain["unsupported"] == []
    assert plain["nodes"][plain["output"]]["name"] == "head"
    # stem 3; body_a 3 + 2 = 5; body_b dilated: k_eff = 2 * (3 - 1) + 1 = 5, so 5 + 4 = 9.
    assert rf(nodes["body_b"]) == ((9, 9), (9, 9))
    # The add keeps both paths {3, 9}; the 2x2/2 pool adds 1 to each, j = 2.
    assert rf(nodes["join"]) == ((3, 3), (9, 9))
    assert rf(nodes["pool"]) == ((4, 4), (10, 10))
    # A (3, 1) kernel with stride 2 grows rows only: 4 + 2 * 2 = 8, 10 + 4 = 14.
    assert rf(nodes["tall"]) == ((8, 4), (14, 10))
    assert nodes["tall"].get_maximum_scale_factor() == (4, 4)
    assert math.isinf(nodes["gap"].receptive_field_min)
    assert nodes["head"].layer_info.kind == "dense" and nodes["head"].layer_info.kernel == (1,)
    assert nodes["join"].layer_info.kind == "merge"
    assert [p.name for p in nodes["join"].predecessors] == ["stem", "body_b"]
    for name in ("stem", "body_b", "tall", "head"):
        assert nodes[name].sites[0] == site("functional", f'name="{name}"')
        assert nodes[name].module_paths == (name,)
    assert nodes["input"].sites == () and nodes["input"].layer_info.kind == "input"


def test_sequential_without_input_is_built_at_the_default_size():
    plain, nodes = analyse(load("sequential").build_sequential)
    assert plain["input_shape"] == [1, 224, 224, 3]
    # 5x5/2: 5, j 2; 3x3: 9; avg 3/3: 9 + 2 * 2 = 13, j 6; upsampling x3: j 2;
    # transposed 3x3 stride 2 runs on the 2x finer grid, j 1: 13 + 2 * 1 = 15 by the path
    # formula; by position it reads one or two neighbours of the upsampled grid, which repeats
    # each coarse position 3 times: 13 where they are one coarse position, 13 + 6 = 19 where not.
    expected = {"wide": 5, "relu": 5, "narrow": 9, "pool": 13, "up": 13, "deconv": 13}
    assert {name: nodes[name].receptive_field_min for name in expected} == {
        name: (v, v) for name, v in expected.items()
    }
    assert nodes["deconv"].receptive_field_max == (19, 19)
    assert nodes["deconv"].get_maximum_scale_factor() == (1, 1)
    assert nodes["up"].layer_info.kind == "resize"
    assert math.isinf(nodes["flatten"].receptive_field_min)
    # Each layer sits on its own line inside the multi-line keras.Sequential([...]).
    for name in expected:
        assert nodes[name].sites[0][1] == line_of("sequential", f'name="{name}"')


def test_sequential_resizing_layer_is_reported_and_reshapes_keeping_positions_are_not():
    plain, nodes = analyse(load("sequential").build_resizing)
    assert plain["unsupported"][0]["type"] == "Resizing"
    assert plain["unsupported"][0]["module_paths"] == ["shrink"]
    assert plain["unsupported"][0]["sites"][0] == list(site("sequential", 'name="shrink"'))
    assert len(plain["unsupported"]) == 1  # (32, 32) -> (1024,) -> (32, 32) keeps the positions
    assert nodes["shrink"].layer_info.kind == "passthrough"
    assert nodes["after"].receptive_field_min == (5, 5)


def test_subclassed_model_with_control_flow_helpers_and_glue_ops():
    plain, nodes = analyse(load("subclassed").SubclassedNet)
    names = [n["name"] for n in plain["nodes"]]
    # The loop calls the one pool layer after each block: two nodes.  Residual is a container:
    # its convs are nodes under its attribute path (self.blocks[0].first, as torch names it, not
    # the Keras names res0/first); its `x + ...` joins the paths without a node.
    assert names == [
        "input", "stem", "blocks.0.first", "blocks.0.second", "pool", "blocks.1.first",
        "blocks.1.second", "pool#2", "Mean", "head",
    ]
    assert [p.name for p in nodes["pool"].predecessors] == ["stem", "blocks.0.second"]
    # stem 3; res0: 5, 7; skip + pool 2/2: {3, 7} + 1 = {4, 8}, j 2; res1 adds 4 twice:
    # {8, 12} then {12, 16}; joined with the skip {4, 8}, pooled (+2): {6, ..., 18}.
    assert rf(nodes["blocks.1.second"]) == ((12, 12), (16, 16))
    assert rf(nodes["pool#2"]) == ((6, 6), (18, 18))
    # The helper's line and the line that called it both are sites, innermost first.
    assert nodes["blocks.1.first"].sites[:2] == (
        site("subclassed", "return layers.Conv2D"),
        site("subclassed", 'conv3x3(filters, "first")'),
    )
    # The site of the shared pool is where it was made, for both calls.
    assert nodes["pool#2"].sites[0] == site("subclassed", 'name="pool"')
    # keras.ops.mean over H, W is a plain op that merges every position into one: a global node
    # with its line, so the head sees everything.
    assert plain["unsupported"] == []
    mean = nodes["Mean"]
    assert mean.layer_info.kind == "global" and mean.sites[0] == site("subclassed", "keras.ops.mean")
    assert [p.name for p in mean.predecessors] == ["pool#2"] and math.isinf(nodes["head"].receptive_field_min)
    # 224 -> pool 112 -> pool 56: the mean reads a 56 x 56 map and leaves none
    assert (mean.map_in, mean.map_out) == ((56, 56), None)


def test_subclassed_model_at_a_given_input_shape():
    net = load("subclassed").SubclassedNet
    plain, _ = analyse(lambda: net(depth=3, pool_every=2), input_shape=(1, 32, 32, 1))
    assert plain["input_shape"] == [1, 32, 32, 1]
    assert [n["name"] for n in plain["nodes"]].count("pool") == 1  # pooled after the 2nd block only


def test_nested_functional_model_is_expanded():
    plain, nodes = analyse(load("nested").build_nested)
    assert [n["name"] for n in plain["nodes"]] == ["input", "pre", "encoder/conv1", "encoder/conv2", "post"]
    # pre 1x1: 1; conv1 3x3/2: 3, j 2; conv2: 3 + 2 * 2 = 7; post: 7 + 4 = 11.
    assert [nodes[n].receptive_field_min for n in ("pre", "encoder/conv1", "encoder/conv2", "post")] == [
        (1, 1), (3, 3), (7, 7), (11, 11),
    ]
    assert nodes["encoder/conv2"].module_paths == ("encoder/conv2",)
    assert nodes["encoder/conv2"].sites[:2] == (
        site("nested", 'name="conv2"'),
        site("nested", "build_encoder()(x)"),
    )


def test_shared_layer_calls_are_separate_nodes():
    plain, nodes = analyse(load("shared").build_shared)
    assert [n["name"] for n in plain["nodes"]] == ["input", "shared", "shared#2", "left", "shared#3", "cat"]
    # shared 3, shared again 5; left 5x5: 5 + 4 = 9; shared a third time: 7; concat {7, 9}.
    assert [nodes[n].receptive_field_min for n in ("shared", "shared#2", "left", "shared#3")] == [
        (3, 3), (5, 5), (9, 9), (7, 7),
    ]
    assert rf(nodes["cat"]) == ((7, 7), (9, 9))
    line = line_of("shared", 'name="shared"')
    assert {nodes[n].sites[0][1] for n in ("shared", "shared#2", "shared#3")} == {line}
    assert all(nodes[n].module_paths == ("shared",) for n in ("shared", "shared#2", "shared#3"))


# --- inline models ---------------------------------------------------------------------------


def test_attention_sees_everything_and_its_dense_layers_stay_inside():
    def build():
        inputs = keras.Input(shape=(8, 8, 4))
        x = layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
        x = layers.MultiHeadAttention(2, 4, name="mha")(x, x)
        return keras.Model(inputs, layers.Dense(3, name="dense")(x))

    plain, nodes = analyse(build)
    assert [n["name"] for n in plain["nodes"]] == ["input", "conv", "mha", "dense"]
    assert nodes["mha"].layer_info.kind == "attention" and math.isinf(nodes["dense"].receptive_field_min)


def test_several_inputs_and_a_layer_that_returns_its_input():
    def build():
        image, mask = keras.Input(shape=(16, 16, 3)), keras.Input(shape=(16, 16, 1))
        x = layers.Concatenate(name="cat")([image, mask])
        x = layers.Dropout(0.5, name="drop")(x)  # at inference: returns its input tensor
        return keras.Model([image, mask], layers.Conv2D(2, 3, name="conv")(x))

    plain, nodes = analyse(build)
    assert [n["name"] for n in plain["nodes"]] == ["input_0", "input_1", "cat", "drop", "conv"]
    assert plain["input_shape"] == [[1, 16, 16, 3], [1, 16, 16, 1]]
    assert [p.name for p in nodes["cat"].predecessors] == ["input_0", "input_1"]
    assert [p.name for p in nodes["conv"].predecessors] == ["drop"]


def test_conv1d_3d_and_channels_first():
    def conv1d():
        inputs = keras.Input(shape=(100, 2))
        x = layers.Conv1D(4, 5, strides=2)(inputs)
        return keras.Model(inputs, layers.MaxPooling1D(3)(x))

    def conv3d_channels_first():
        inputs = keras.Input(shape=(2, 16, 16, 16))
        x = layers.Conv3D(4, (1, 3, 5), data_format="channels_first", name="c3")(inputs)
        x = layers.Cropping3D(1, data_format="channels_first")(x)
        return keras.Model(inputs, x)

    _, nodes = analyse(conv1d)
    assert nodes["max_pooling1d"].rf_min_per_axis == (5 + 2 * 2,)
    plain, nodes = analyse(conv3d_channels_first)
    assert nodes["c3"].receptive_field_min == (1, 3, 5) and plain["unsupported"] == []


def test_register_layer_handler_makes_a_user_layer_one_node(monkeypatch):
    class Patchify(layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.proj = layers.Conv2D(8, 4, strides=4)

        def call(self, x):
            return self.proj(x)

    def build():
        inputs = keras.Input(shape=(32, 32, 3))
        return keras.Model(inputs, Patchify(name="patchify")(inputs))

    _, nodes = analyse(build)
    assert any(name.startswith("patchify/") for name in nodes)  # a container until registered
    monkeypatch.setattr(base, "_REGISTERED", dict(base._REGISTERED))
    seen = []

    def patchify(layer, in_shape, out_shape):
        seen.append((in_shape, out_shape))
        return LayerDefinition("Patchify", kernel_size=4, stride_size=4, kind="conv")

    register_layer_handler(Patchify, patchify)
    plain, nodes = analyse(build)
    assert [n["name"] for n in plain["nodes"]] == ["input", "patchify"]
    assert nodes["patchify"].rf_min_per_axis == (4,)
    # the handler gets the spatial sizes, not tensors: 32x32 in, (32 - 4) / 4 + 1 = 8 out
    assert seen == [((32, 32), (8, 8))]


def test_create_graph_from_tensorflow_model_is_the_seed_entry_point():
    import rfa_lint

    with frontend.building_context():
        model = load("functional").build_functional()
    graph = rfa_lint.create_graph_from_tensorflow_model(model)
    assert graph.name == "head"
    # Largest own minimum: body_b (9, 9); largest RF: tall (14, 10).
    assert input_resolution_range(graph) == ((9, 9), (14, 10))


# --- exact windows of resizing layers and heads -----------------------------------------------


def test_upsampling_and_transposed_convs_read_their_taps():
    # "down" 3x3/2: rf 3, j 2.  An upsampling by 2 (j 2 -> 1) reading t input positions per
    # axis adds (t - 1) * j_in = (t - 1) * 2: nearest t = 1: 3; bilinear 2: 5; bicubic 4: 9.
    # A transposed conv reads ceil(k / s): k=4, s=2 -> 2 positions: 5; k=2, s=2 -> 1: 3.
    # (2, 4) bilinear: j (1, 1/2), rf 5 on both axes; a 3x3 after: (5 + 2 * 1, 5 + 2 * 1/2) by
    # the path formula; by position, three neighbours of the x4 grid read one input pair (5) or
    # two (7): the narrowest is 5.
    def build():
        inputs = keras.Input(shape=(16, 16, 3))
        x = layers.Conv2D(4, 3, strides=2, padding="same", name="down")(inputs)
        outs = [
            layers.UpSampling2D(2, name="near")(x),
            layers.UpSampling2D(2, interpolation="bilinear", name="bilinear")(x),
            layers.UpSampling2D(2, interpolation="bicubic", name="bicubic")(x),
            layers.Conv2DTranspose(4, 4, strides=2, padding="same", name="deconv4")(x),
            layers.Conv2DTranspose(4, 2, strides=2, name="deconv2")(x),
            layers.Conv2D(4, 3, padding="same", name="after")(
                layers.UpSampling2D((2, 4), interpolation="bilinear", name="wide")(x)
            ),
        ]
        return keras.Model(inputs, outs)

    _, nodes = analyse(build)
    expected = {"near": 3, "bilinear": 5, "bicubic": 9, "deconv4": 5, "deconv2": 3}
    assert {name: nodes[name].rf_max_per_axis for name in expected} == {
        name: (v, v) for name, v in expected.items()
    }
    assert all(nodes[name].scale_per_axis == (1, 1) for name in expected)
    assert nodes["after"].rf_min_per_axis == (7, 5) and nodes["after"].rf_max_per_axis == (7, 7)
    assert nodes["after"].scale_per_axis == (1, Fraction(1, 2))
    assert nodes["wide"].map_out == (16, 32) and nodes["down"].map_out == (8, 8)


def whole_map_pool_head():
    inputs = keras.Input(shape=(8, 8, 3))
    x = layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    x = layers.MaxPooling2D(2, name="pool")(x)
    x = layers.AveragePooling2D(4, name="whole")(x)  # unpadded, on the 4 x 4 map: global
    x = layers.Flatten(name="flat")(x)
    return keras.Model(inputs, layers.Dense(10, name="head")(x))


def test_an_unpadded_kernel_spanning_its_map_is_a_head_only_with_no_window_after_it():
    _, nodes = analyse(whole_map_pool_head)
    # conv 3, pool 2/2: 4 (j 2); the 4x4 average pool reads the whole 4 x 4 map: a dense head
    assert nodes["pool"].rf_min_per_axis == (4, 4) and nodes["whole"].map_in == (4, 4)
    assert nodes["whole"].layer_info.kind == "global" and math.isinf(nodes["whole"].receptive_field_min)

    def conv_head():
        inputs = keras.Input(shape=(8, 8, 3))
        x = layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
        return keras.Model(inputs, layers.Conv2D(10, 8, name="fc")(x))  # 8x8 on the 8 x 8 map

    _, nodes = analyse(conv_head)
    assert nodes["fc"].layer_info.kind == "dense" and nodes["fc"].layer_info.kernel_size is None

    def squash_then_conv():
        inputs = keras.Input(shape=(8, 8, 3))
        x = layers.MaxPooling2D(8, name="squash")(inputs)  # spans the map, but a 3x3 follows
        return keras.Model(inputs, layers.Conv2D(3, 3, padding="same", name="late")(x))

    _, nodes = analyse(squash_then_conv)
    # no head: the pool stays a window, so the 3x3 keeps its RF where its taps land, 8 + 2 * 8 =
    # 24 (the productive range's); on the 1x1 map traced here they read only padding: 8
    assert nodes["squash"].layer_info.kind == "pool" and nodes["late"].range_min_per_axis == (24, 24)
    assert nodes["late"].rf_min_per_axis == nodes["late"].rf_max_per_axis == (8, 8)


# --- tracing sizes and feature maps -----------------------------------------------------------


def test_a_fully_convolutional_model_is_traced_at_the_lint_resolution():
    def build():
        inputs = keras.Input(shape=(32, 32, 3))
        x = layers.Conv2D(4, 3, strides=2, padding="same", name="same")(inputs)
        return keras.Model(inputs, layers.Conv2D(4, 3, name="valid")(x))

    with frontend.building_context():
        model = build()
    plain = frontend.to_plain(model, resolution=(48,))
    nodes = {n.name: n for n in graph_from_plain(plain).all_layers}
    # same 3x3/2: ceil(48 / 2) = 24; valid 3x3: 24 - 2 = 22
    assert plain["input_shape"] == [1, 48, 48, 3] and nodes["input"].map_out == (48, 48)
    maps = (nodes["same"].map_in, nodes["same"].map_out, nodes["valid"].map_out)
    assert maps == ((48, 48), (24, 24), (22, 22))
    assert frontend.to_plain(model, resolution=(48, 20))["input_shape"] == [1, 48, 20, 3]
    assert frontend.to_plain(model)["input_shape"] == [1, 32, 32, 3]
    # the model still checks its own input shape afterwards
    assert model.input_spec[0].shape == (None, 32, 32, 3)


def test_a_model_that_refuses_the_resolution_is_traced_at_its_own_size():
    with frontend.building_context():
        model = whole_map_pool_head()
    # at 16 the flattened map has 4 positions and the Dense was built for 1: its own 8 is traced
    plain = frontend.to_plain(model, resolution=(16,))
    assert plain["input_shape"] == [1, 8, 8, 3]
    assert plain["nodes"][0]["map_out"] == [8, 8]


def test_declared_size_comes_after_the_resolution_and_before_the_default():
    class Picky(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = layers.Conv2D(4, 3, name="conv")

        def call(self, x):
            if x.shape[1] != 48:
                raise ValueError(f"this model takes 48px images, not {x.shape[1]}px")
            return self.conv(x)

    plain = frontend.to_plain(Picky(), resolution=(32,), declared=(48, 48))
    assert plain["input_shape"] == [1, 48, 48, 3]
    with pytest.raises(TraceError) as error:
        frontend.to_plain(Picky(), resolution=(32,))
    # every size tried is named: the resolution, then the default side of an undefined input
    assert "[[1, 32, 32, 3]]" in str(error.value) and "[[1, 224, 224, 3]]" in str(error.value)
    assert "not 224px" in str(error.value)


def test_a_resolution_of_other_axes_is_skipped_and_the_layout_comes_from_the_layers():
    def conv1d():
        inputs = keras.Input(shape=(100, 2))
        return keras.Model(inputs, layers.Conv1D(4, 5, strides=2, name="c1")(inputs))

    def conv3d_channels_first():
        inputs = keras.Input(shape=(2, 16, 16, 16))
        x = layers.Conv3D(4, (1, 3, 5), data_format="channels_first", name="c3")(inputs)
        return keras.Model(inputs, layers.Cropping3D(1, data_format="channels_first", name="crop")(x))

    with frontend.building_context():
        model = conv1d()
    assert frontend.to_plain(model, resolution=(40, 30))["input_shape"] == [1, 100, 2]
    plain = frontend.to_plain(model, resolution=(40,))
    # 40 positions, 5-tap stride 2 unpadded: (40 - 5) // 2 + 1 = 18
    assert plain["input_shape"] == [1, 40, 2] and plain["nodes"][1]["map_out"] == [18]
    with frontend.building_context():
        model = conv3d_channels_first()
    plain = frontend.to_plain(model, resolution=(8, 12, 10))
    nodes = {n.name: n for n in graph_from_plain(plain).all_layers}
    # channels stay on axis 1; the unpadded (1, 3, 5) kernel: (8, 10, 6); cropping 1: (6, 8, 4)
    assert plain["input_shape"] == [1, 2, 8, 12, 10]
    maps = (nodes["c3"].map_in, nodes["c3"].map_out, nodes["crop"].map_out)
    assert maps == ((8, 12, 10), (8, 10, 6), (6, 8, 4))


def test_vit_like_model_has_no_upper_bound():
    build = load("attention").build_vit
    plain, nodes = analyse(build)
    # patchify 8x8/8: rf 8 (j 8) on a 32 -> 4 x 4 map, 16 tokens; attention sees them all
    assert nodes["patchify"].rf_min_per_axis == (8, 8) and nodes["patchify"].map_out == (4, 4)
    assert nodes["attention"].layer_info.kind == "attention" and nodes["attention"].map_in == (16,)
    assert rf(nodes["skip"]) == ((8, 8), (math.inf, math.inf))
    graph = graph_from_plain(plain)
    assert input_resolution_range(graph) == ((8, 8), (math.inf, math.inf))
    assert nodes["attention"].sites[0] == site("attention", 'name="attention"')
    # the token reshape takes any size: traced at 64, 64 tokens; a fixed token count cannot be
    with frontend.building_context():
        free, fixed = build(), build(tokens_fixed=True)
    traced = frontend.to_plain(free, resolution=(64,))
    assert traced["input_shape"] == [1, 64, 64, 3]
    assert [n["map_in"] for n in traced["nodes"] if n["name"] == "attention"] == [[64]]
    assert frontend.to_plain(fixed, resolution=(64,))["input_shape"] == [1, 32, 32, 3]


def test_a_gate_from_a_glue_mean_sees_everything_but_keeps_no_stride_product():
    plain = frontend.to_plain(load("gates").GatedNet(), resolution=(32,))
    nodes = {n.name: n for n in graph_from_plain(plain).all_layers}
    # stem 3x3/2: 3 (j 2) on 32 -> 16; body: 3 + 2 * 2 = 7; the mean over H, W is a global node
    # whose output has one position; the 1x1 squeeze on it sees everything.
    assert plain["input_shape"] == [1, 32, 32, 3] and plain["unsupported"] == []
    assert nodes["Mean"].layer_info.kind == "global" and nodes["Mean"].map_out == (1, 1)
    assert nodes["squeeze"].map_in == (1, 1) and nodes["squeeze"].rf_min_per_axis == (math.inf, math.inf)
    # y * gate: "after" reads body (7, j 2) and the gate (inf): 7 + 2 * 2 = 11 .. inf, j 2
    assert [p.name for p in nodes["after"].predecessors] == ["body", "squeeze"]
    assert rf(nodes["after"]) == ((11, 11), (math.inf, math.inf))
    assert nodes["after"].scale_per_axis == (2, 2) and nodes["after"].compute_feature_map_size(32) == (16, 16)
    graph = graph_from_plain(plain)
    assert input_resolution_range(graph) == ((11, 11), (11, 11))
    assert input_resolution_range(graph, filter_all_inf_rf=False) == ((11, 11), (math.inf, math.inf))


def test_an_efficientnet_style_excite_multiplies_by_a_global_operand():
    with frontend.building_context():
        model = load("gates").build_excite()
    plain = frontend.to_plain(model, resolution=(64,))
    nodes = {n.name: n for n in graph_from_plain(plain).all_layers}
    # stem 3x3/2: 3 (j 2), 64 -> 32; depthwise 5x5/2: 3 + 4 * 2 = 11 (j 4), 32 -> 16;
    # the squeeze pools globally; Multiply keeps {11, inf} on the depthwise's 16 x 16 grid;
    # project 3x3: 11 + 2 * 4 = 19.
    assert plain["input_shape"] == [1, 64, 64, 3] and plain["unsupported"] == []
    excite = nodes["se_excite"]
    assert [p.name for p in excite.predecessors] == ["depthwise", "se_expand"]
    assert rf(excite) == ((11, 11), (math.inf, math.inf)) and excite.scale_per_axis == (4, 4)
    assert (excite.map_in, excite.map_out, nodes["se_expand"].map_in) == ((16, 16), (16, 16), (1, 1))
    assert input_resolution_range(graph_from_plain(plain)) == ((19, 19), (19, 19))
    assert frontend.to_plain(model)["input_shape"] == [1, 224, 224, 3]  # undefined: the default


# --- failures and the patches' lifetime ------------------------------------------------------


def test_no_declared_shape_and_a_failing_call_raise_trace_error():
    class Bare(keras.Model):
        def __init__(self):
            super().__init__()
            self.scale = layers.Rescaling(0.5)

        def call(self, x):
            return self.scale(x)

    with pytest.raises(TraceError, match="pass input_shape"):
        frontend.to_plain(Bare())
    assert frontend.to_plain(Bare(), input_shape=(1, 8, 8, 3))["input_shape"] == [1, 8, 8, 3]
    with pytest.raises(TraceError, match=r"encoder.*\[\[1, 2, 2, 3\]\].*Negative dimension size") as error:
        frontend.to_plain(load("nested").build_encoder(), input_shape=(1, 2, 2, 3))
    assert "\x1b" not in str(error.value) and "Arguments received" not in str(error.value)


def test_patches_are_active_only_inside_and_nothing_downloads():
    original_new, original_call = keras.Operation.__dict__["__new__"], keras.Operation.__call__
    with frontend.building_context():
        assert keras.Operation.__dict__["__new__"] is not original_new
        with pytest.raises(RuntimeError, match="downloads nothing"):
            keras.applications.MobileNetV2(alpha=0.35, input_shape=(96, 96, 3))  # imagenet weights
    assert keras.Operation.__dict__["__new__"] is original_new
    frontend.to_plain(load("shared").build_shared())
    assert keras.Operation.__call__ is original_call
    # Built outside the context, layers have no sites; the graph is the same.
    plain = frontend.to_plain(load("shared").build_shared())
    assert all(node["sites"] == [] for node in plain["nodes"])


# --- keras.applications ----------------------------------------------------------------------

# Hand derivations (RF at the end of each stage, "j" the stride product; a k x k conv adds
# (k - 1) * j).  "max" is the largest RF of any layer; "min" the largest among the layers' own
# smallest RF (the min over their input paths): below it some layer is critical.
#
# VGG16: 2, 2, 3, 3, 3 convs 3x3 per block, each block closed by a 2x2/2 pool (adds j):
#   3, 5 | pool 6 (j 2) | 10, 14 | 16 (j 4) | 24, 32, 40 | 44 (j 8) | 60, 76, 92 | 100 (j 16)
#   | 132, 164, 196 | 212 (j 32).  One path: min = max = 212.
# VGG19: 2, 2, 4, 4, 4 convs: 3, 5 | 6 | 10, 14 | 16 | 24 .. 48 | 52 | 68 .. 116 | 124
#   | 156 .. 252 | 268.
# ResNet50 (Keras: ResNet v1, the stride on the first 1x1 of stages 3-5, so the block's 3x3
#   already runs at the new j): conv1 7x7/2: 7 (j 2); maxpool 3x3/2: 11 (j 4).
#   max, one 3x3 per bottleneck: stage 2, 3 blocks at j 4: 11 + 3 * 8 = 35; stage 3, 4 blocks
#   at j 8: 35 + 4 * 16 = 99; stage 4, 6 blocks at j 16: 99 + 6 * 32 = 291; stage 5, 3 blocks
#   at j 32: 291 + 3 * 64 = 483 (torchvision's v1.5 strides the 3x3: 427).
#   min: the 1x1 shortcuts keep 11 at every stage output; the 3x3 of a stage-5 block reads a
#   1x1 of such an output: 11 + 2 * 32 = 75 (the same as v1.5).
# MobileNetV2: stem 3x3/2: 3 (j 2); each inverted residual adds 2 * j_in at its depthwise 3x3.
#   Stages (repeats, stride): (1,1) (2,2) (3,2) (4,2) (3,1) (3,2) (1,1).
#   max: 3 +4 = 7 | +4, +8 = 19 (j 4) | +8, +16, +16 = 59 (j 8) | +16, 3 * 32 = 171 (j 16)
#   | 3 * 32 = 267 | +32, +64, +64 = 427 (j 32) | +64 = 491.
#   min: skips only within a stage, so a stage output keeps its first block's min:
#   7 | 11 | 19 | 35 | 67 (64 -> 96 channels: no skip) | 99 | last block: 99 + 64 = 163.
# DenseNet121: conv 7x7/2 and pool 3x3/2: 11 (j 4); dense layers (1x1, 3x3) per block: 6, 12,
#   24, 16; transitions (1x1, 2x2/2 avg pool).  max: 11 + 6 * 8 = 59, +4 = 63 (j 8); +12 * 16
#   = 255, +8 = 263 (j 16); +24 * 32 = 1031, +16 = 1047 (j 32); +16 * 64 = 2071.
#   min: the concatenations keep each block input's min: 11 | pool +4 = 15 | +8 = 23 | +16 = 39;
#   a 3x3 of block 4 reads a 1x1 of that: 39 + 2 * 32 = 103.
# InceptionV3: stem 3x3/2, 3x3, 3x3, pool 3/2, 1x1, 3x3, pool 3/2: 3, 7, 11, 15 (j 4), 23,
#   31 (j 8).  max: mixed0-2, double 3x3 at j 8: +32 each = 127; mixed3 double 3x3 (second /2):
#   +32 = 159 (j 16); mixed4-7, the double-7 branch has two 7-long kernels per axis, +2 * 6 * 16
#   = 192 each: 159 + 4 * 192 = 927; mixed8, 1x7, 7x1, 3x3/2: +96 +32 = 1055 (j 32); mixed9-10, 3x3 then
#   1x3 / 3x1: +64 +64 each = 1311.  min: the 1x1 branches keep 31, then 47 after mixed3 (pool
#   3/2 at j 8); mixed4's double-7 branch on 47: 47 + 2 * 96 = 239.
# EfficientNetB0: stem 3x3/2: 3 (j 2); MBConv stages (kernel, repeats, stride): (3,1,1) (3,2,2)
#   (5,2,2) (3,3,2) (5,3,1) (5,4,2) (3,1,1); a depthwise k adds (k - 1) * j_in.  max: 7 | 11,
#   19 | 35, 67 | 83, 115, 147 | 211, 275, 339 | 403, 531, 659, 787 | 851.  min (skips within
#   stages; the squeeze-excite branches see everything, dropped by filter_all_inf_rf, the
#   default): 7 | 11 | 27 | 43
#   | 107 | the first stage-6 block 107 + 4 * 16 = 171 (j 32), the next blocks' 5x5: 171 + 4 * 32
#   = 299.
APPLICATIONS = {
    "VGG16": (212, 212),
    "VGG19": (268, 268),
    "ResNet50": (75, 483),
    "MobileNetV2": (163, 491),
    "DenseNet121": (103, 2071),
    "InceptionV3": (239, 1311),
    "EfficientNetB0": (299, 851),
}


@pytest.mark.integration
@pytest.mark.parametrize("name", list(APPLICATIONS))
def test_keras_applications_resolution_ranges(name):
    plain, nodes = analyse(lambda: getattr(keras.applications, name)(weights=None))
    low, high = APPLICATIONS[name]
    graph = graph_from_plain(plain)
    assert input_resolution_range(graph) == ((low, low), (high, high))
    assert plain["unsupported"] == []
    assert plain["nodes"][plain["output"]]["name"] == "predictions"
    assert all(node.sites and node.sites[0][0] == __file__ for node in graph.all_layers[1:])


@pytest.mark.integration
def test_keras_resnet50_stage_figures():
    # at 224px the 14x14 and 7x7 maps of stages 4 and 5 are smaller than their windows: padding
    # cuts every window there, the widest reads 229 pixels (the image, its 3-pixel stem padding
    # and a stride's overhang); one RF number per layer said 291, 355 and 483
    _, nodes = analyse(lambda: keras.applications.ResNet50(weights=None))
    for name, (low, high) in {
        "pool1_pool": (11, 11),
        "conv2_block3_out": (11, 35),
        "conv3_block4_out": (11, 99),
        "conv4_block6_out": (11, 229),
        "conv5_block1_2_conv": (75, 229),
        "conv5_block3_out": (11, 229),
    }.items():
        assert rf(nodes[name]) == ((low, low), (high, high)), name


@pytest.mark.integration
def test_mobilenet_v2_without_top_is_traced_at_the_lint_resolution():
    # Built for 96px; without its Flatten-free top every layer takes any size.  Maps: Conv1 3x3/2
    # "same": 48; each stride-2 depthwise is unpadded after ZeroPadding2D((0, 1)) (fixed when the
    # model was built at an even size): n + 1 -> floor((n + 1 - 3) / 2) + 1.  At 96: 48 -> 24
    # -> 12 -> 6 -> 3 (block_13's padded input is 7).  At 40: 20 -> 10 -> 5 -> 2 -> 1, block_13
    # reads a padded 3 x 3 map, where the estimate ceil(40 / 16) happens to agree.
    with frontend.building_context():
        model = keras.applications.MobileNetV2(weights=None, include_top=False, input_shape=(96, 96, 3))
    for res, padded13, out13 in ((96, 7, 3), (40, 3, 1)):
        plain = frontend.to_plain(model, resolution=(res,))
        graph = graph_from_plain(plain)
        nodes = {n.name: n for n in graph.all_layers}
        assert plain["input_shape"] == [1, res, res, 3] and plain["unsupported"] == []
        assert nodes["block_13_depthwise"].map_in == (padded13, padded13)
        assert nodes["block_13_depthwise"].map_out == nodes["Conv_1"].map_in == (out13, out13)
        # the top adds no receptive field: the range of the full model above
        assert input_resolution_range(graph) == ((163, 163), (491, 491))
    assert model.input_spec[0].shape == (None, 96, 96, 3)


@pytest.mark.integration
def test_efficientnet_b0_at_a_lint_resolution():
    # Built for 224 (its top has a global pool, so any size is traced).  Stride-2 depthwise
    # convs are unpadded after correct_pad, fixed at build time for even sizes: (0, 1) for 3x3,
    # (1, 2) for 5x5.  At 64: stem 64 + 1 -> 32; block2a 33 -> 16; block3a (5x5) 19 -> 8;
    # block4a 9 -> 4; block6a (5x5) 7 -> 2.
    plain, nodes = analyse(lambda: keras.applications.EfficientNetB0(weights=None), resolution=(64,))
    assert plain["input_shape"] == [1, 64, 64, 3]
    assert {name: (nodes[name].map_in, nodes[name].map_out) for name in (
        "stem_conv", "block2a_dwconv", "block3a_dwconv", "block4a_dwconv", "block6a_dwconv",
    )} == {
        "stem_conv": ((65, 65), (32, 32)), "block2a_dwconv": ((33, 33), (16, 16)),
        "block3a_dwconv": ((19, 19), (8, 8)), "block4a_dwconv": ((9, 9), (4, 4)),
        "block6a_dwconv": ((7, 7), (2, 2)),
    }
    # block2a's gate: the squeeze pools globally, so the multiply keeps the depthwise's grid
    # (j 4: stem 2 x dwconv 2) and its RFs: stem 3, block1a's 3x3 3 + 2 * 2 = 7, block2a's
    # 3x3/2 7 + 2 * 2 = 11 .. inf
    excite = nodes["block2a_se_excite"]
    assert excite.scale_per_axis == (4, 4) and rf(excite) == ((11, 11), (math.inf, math.inf))
    assert excite.map_out == (16, 16) and nodes["block2a_se_reduce"].map_in == (1, 1)
    assert input_resolution_range(graph_from_plain(plain)) == ((299, 299), (851, 851))


def test_findings_name_subclassed_layers_by_their_attributes(tmp_path):
    """Through the CLI: ``self.blocks = [Block(8), ...]`` holding ``self.c2`` is 'blocks.1.c2', and
    ``self.c3`` is 'c3', never Keras's generated 'conv2d_4' / 'block_1/conv2d_3'."""
    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "lint" / "keras_attribute_names.py"
    command = [sys.executable, "-m", "rfa_lint", str(fixture), "--res", "16", "--no-cache",
               "--format", "json", "-q"]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    layers_named = {f["code"]: f["details"].get("layers") for f in json.loads(proc.stdout)["findings"]}
    assert layers_named == {"RFA110": None, "RFA102": ["blocks.1.c2"], "RFA101": ["c3"]}, proc.stderr
