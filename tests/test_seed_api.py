"""The seed library's API on rfa_lint: its README examples, names, call shapes and return shapes.

Every number is derived by hand in a comment (rf_out = rf_in + (k - 1) * j_in, j_out = j_in * s),
or measured (feature-map sizes from a meta-device forward pass).  Where the seed's own numbers
are off, the test says what it returns and why ours differs (docs/seed-differences.md).
"""

import json
import math
import subprocess
import sys
import warnings

import pytest

from rfa_lint import input_resolution_range
from rfa_lint.architectures.resnet import resnet18, resnet36, resnet50, resnet101, resnet152
from rfa_lint.architectures.vgg import vgg11, vgg13, vgg16, vgg19
from rfa_lint.graphs import (
    KNOWN_FILTER_MAPPING,
    EnrichedNetworkNode,
    LayerDefinition,
    ReceptiveFieldInfo,
    filter_all_rf_info_with_infinite_receptive_field,
    naive_minmax_filter,
    noop_filter,
    receptive_field_provider_with_1x1_handling,
)
from rfa_lint.rf.analysis import Verdict, classify, kernel_covers_feature_map, kernel_fit_from
from rfa_lint.utils.graph_utils import (
    filter_layers_not_expanding_receptive_field,
    filters_non_convolutional_node,
    filters_non_infinite_rf_sizes,
    find_smallest_resolution_with_no_unproductive_layer,
    obtain_all_critical_layers,
    obtain_all_nodes,
    obtain_border_layers,
    unproductive_resolution,
)


def conv(name, preds, kernel=3, stride=1, **extra):
    layer = LayerDefinition(name, kernel, stride)
    return EnrichedNetworkNode(name=name, layer_info=layer, predecessors=preds, **extra)


def chain_3x3(n=6):
    """n 3x3 convs (rf 3, 5, ..., 2n+1), then a 1x1 "Softmax" (rf 2n+1): the seed's test chain."""
    nodes = [conv("Layer0", [])]
    for i in range(1, n):
        nodes.append(conv(f"Layer{i}", [nodes[-1]]))
    nodes.append(conv(f"Layer{n}", [nodes[-1]], kernel=1))
    return nodes


def by_name(graph):
    return {n.name: n for n in graph.all_layers}


# --- the README's examples -------------------------------------------------------------------

def readme_custom_graph():
    """The README's "Custom" graph: conv1 -> (conv2, conv3) -> conv4 -> Softmax."""
    conv1 = EnrichedNetworkNode(
        name="Conv1", layer_info=LayerDefinition(name="Conv3x3", kernel_size=3, stride_size=1, filters=64),
        predecessors=[],
    )
    conv2 = EnrichedNetworkNode(
        name="Conv2", layer_info=LayerDefinition(name="Conv3x3", kernel_size=3, stride_size=1, filters=128),
        predecessors=[conv1],
    )
    conv3 = EnrichedNetworkNode(
        name="Conv3", layer_info=LayerDefinition(name="Conv3x3", kernel_size=3, stride_size=1, filters=256),
        predecessors=[conv1],
    )
    conv4 = EnrichedNetworkNode(
        name="Conv4", layer_info=LayerDefinition(name="Conv3x3", kernel_size=3, stride_size=1, filters=256),
        predecessors=[conv2, conv3],
    )
    return EnrichedNetworkNode(
        name="Softmax", layer_info=LayerDefinition(name="Fully Connected", units=1000), predecessors=[conv4]
    )


def test_readme_custom_graph_and_its_picture():
    from rfa_lint import visualize_architecture

    out = readme_custom_graph()
    nodes = by_name(out)
    # conv1 3; conv2 and conv3 3 + 2 = 5; conv4 5 + 2 = 7 on both paths; the dense layer sees all
    assert [nodes[n].receptive_field_min for n in ("Conv1", "Conv2", "Conv3", "Conv4")] == [3, 5, 5, 7]
    assert math.isinf(out.receptive_field_min) and out.layer_info.kernel_size is None
    picture = visualize_architecture(out, "example_model", input_res=32)
    assert "example_model" in picture.source and picture.source.count("Conv3x3") == 4
    # at 32 px nothing exceeds the image: every conv is productive (white)
    assert {classify(nodes[n], 32) for n in ("Conv1", "Conv2", "Conv3", "Conv4")} == {Verdict.PRODUCTIVE}


@pytest.mark.integration
def test_readme_resnet50_range_and_the_kernel_fit_condition():
    import torch
    import torchvision

    from rfa_lint import create_graph_from_pytorch_model

    with torch.device("meta"):
        model = torchvision.models.resnet50()
    graph = create_graph_from_pytorch_model(model)
    # torchvision's ResNet-50 (stride in the 3x3): stem 7/2 -> 7, pool 3/2 -> 11 (j 4).  The
    # least-seeing path runs through the shortcuts (min 11 at every addition); layer4's blocks
    # 1-2 run their 3x3 at j 32 on it: 11 + 2 * 32 = 75, the largest minimum RF.  The largest
    # RF is every 3x3 in turn: 11 + 3*8 + (8 + 3*16) + (16 + 5*32) + (32 + 2*64) = 427.
    # The README says (75, 75), (427, 427); the seed's code returns (96, 96) for the min.
    assert input_resolution_range(graph, filter_all_inf_rf=False) == ((75, 75), (427, 427))
    assert input_resolution_range(graph) == ((75, 75), (427, 427))  # no SE: the same
    # The seed's 96 is kernel 3 x stride product 32, which our kernel_fit reproduces ...
    assert input_resolution_range(graph, kernel_fit=True)[0] == (96, 96)
    # ... but layer4's 3x3s still cover their map at 96 px: padded stride-2 layers give
    # ceil(R / 2) each, so the map is ceil(96 / 32) = 3 <= 3, and ceil(97 / 32) = 4 > 3.
    layer4 = [n for n in graph.all_layers if n.module_paths[:1] == ("layer4.1.conv2",)][0]
    assert kernel_fit_from(layer4) == (97, 97)  # floor(3 * 32) + 1
    assert kernel_covers_feature_map(layer4, 96) and not kernel_covers_feature_map(layer4, 97)
    seen = {}
    model.layer4[1].conv2.register_forward_hook(lambda m, args, out: seen.update(size=args[0].shape[-1]))
    for size, expected in ((96, 3), (97, 4)):  # measured: the map layer4.1.conv2 reads
        model(torch.empty(1, 3, size, size, device="meta"))
        assert seen["size"] == expected


# --- LayerDefinition -------------------------------------------------------------------------

def test_layer_definition_values_are_plain_hashable_and_round_trip():
    np = pytest.importorskip("numpy")
    layer = LayerDefinition("test", 3, 1)
    # the seed's three keys, and the kind the plain graphs carry
    assert layer.to_dict() == {"name": "test", "kernel_size": 3, "stride_size": 1, "kind": "conv"}
    assert LayerDefinition.from_dict(json.loads(json.dumps(layer.to_dict()))) == layer
    from_numpy = LayerDefinition("np", [np.int64(3), np.int64(5)], np.int64(2))
    assert from_numpy.kernel_size == (3, 5) and type(from_numpy.kernel_size[0]) is int
    assert type(from_numpy.stride_size) is int and hash(from_numpy) == hash(LayerDefinition("np", (3, 5), 2))
    # None is an infinite kernel (a dense layer) and a stride of 1, as in the seed
    dense = LayerDefinition("fc", units=10)
    assert (dense.kernel_size, dense.stride_size, dense.is_infinite) == (None, 1, True)
    assert LayerDefinition.from_dict(json.loads(json.dumps(dense.to_dict(), allow_nan=False))) == dense
    # explicit kernel and stride sequences must have one length (the seed's rule)
    with pytest.raises(ValueError):
        LayerDefinition("bad", (3, 3, 3), (1,))
    with pytest.raises(ValueError):
        LayerDefinition("bad", np.int64(-3), 1)


# --- EnrichedNetworkNode ---------------------------------------------------------------------

def test_node_surface_successors_is_in_scale_and_feature_map():
    a = conv("a", [], kernel=3, stride=2)  # rf 3, j 2
    b = conv("b", [a], kernel=3, stride=16)  # rf 3 + 2*2 = 7, j 32
    twin = conv("b", [a], kernel=3, stride=16)  # equal fields, another node
    assert a.succecessors is a.successors and a.successors == [b, twin]
    assert b.is_in([a, b]) and b.is_in({b: 1}) and not twin.is_in([a, b])
    assert b.get_maximum_scale_factor() == 32 and b.receptive_field_min == 7
    # ceil(40 / 32) = 2 (a padded layer's map; the seed's floor says 1), ceil(20 / 32) = 1 (not 0)
    assert b.compute_feature_map_size(40) == 2 and b.compute_feature_map_size(20) == 1
    assert b.compute_feature_map_size((40, 64)) == (2, 2)


def test_is_border_is_unproductive_and_the_first_layer_reads_the_image():
    nodes = chain_3x3()  # rf 3, 5, 7, 9, 11, 13 and the 1x1 at 13
    # at 11: Layer5 reads Layer4 (11 >= 11) and sees 13 > 11: unproductive, and so is the 1x1
    # after it (reads 13); Layer4 reads 9 < 11
    assert [n.name for n in nodes if n.is_border(11)] == ["Layer5", "Layer6"]
    # at 12: Layer5 reads 11 < 12; only the 1x1 (reads 13 >= 12, sees 13 > 12) is left
    assert [n.name for n in nodes if n.is_border(12)] == ["Layer6"]
    assert not any(n.is_border(12, filter_kernel_size_1=True) for n in nodes)
    # The first layer reads the image (RF 1): at 2 px a 3x3 sees 3 > 2 but its input does not
    # fill the image, so it is critical, not unproductive (the seed's all([]) calls it a border).
    first = nodes[0]
    assert not first.is_border(2) and classify(first, 2) is Verdict.CRITICAL
    assert first.is_border(1)  # a 1-px image is already seen whole
    assert first.is_border((1, 1)) and not first.is_border((1, 2))  # all axes must be saturated


def test_is_border_takes_the_seeds_receptive_field_provider():
    a = conv("a", [], kernel=3)  # rf 3
    squeeze = conv("squeeze", [a], kernel=1)  # rf 3
    b = conv("b", [squeeze], kernel=3)  # rf 5
    # at 4: squeeze's RF 3 < 4, so b is critical; counting 1x1 layers as infinite it is saturated
    assert not b.is_border(4)
    assert b.is_border(4, receptive_field_provider=receptive_field_provider_with_1x1_handling)


# --- filters ---------------------------------------------------------------------------------

def se_like(filter_rf):
    """A 3x3 conv (rf 3) and a global pooling (rf inf), multiplied (1x1), then a 3x3 conv."""
    body = conv("body", [], receptive_field_info_filter=filter_rf)
    pool = EnrichedNetworkNode("pool", LayerDefinition("GAP", kernel_size=None), [body],
                               receptive_field_info_filter=filter_rf)
    mul = conv("mul", [body, pool], kernel=1, receptive_field_info_filter=filter_rf)
    return conv("after", [mul], receptive_field_info_filter=filter_rf)


def test_filters_by_seed_name_and_function():
    assert KNOWN_FILTER_MAPPING == {
        None: noop_filter, "inf": filter_all_rf_info_with_infinite_receptive_field
    }
    kept = se_like(noop_filter)
    # the gate's infinite RF flows on: "after" sees 3 + 2 = 5 at least and everything at most
    assert kept.receptive_field_min == 5 and math.isinf(kept.receptive_field_max)
    dropped = se_like(KNOWN_FILTER_MAPPING["inf"])
    assert dropped.receptive_field_min == 5 and dropped.receptive_field_max == 5
    assert all(n.receptive_field_info_filter is filter_all_rf_info_with_infinite_receptive_field
               for n in dropped.all_layers)
    # a node with only infinite sizes keeps them
    assert math.isinf(by_name(dropped)["pool"].receptive_field_min)
    infos = (ReceptiveFieldInfo((7,), (1,)), ReceptiveFieldInfo((3,), (1,)), ReceptiveFieldInfo((5,), (1,)))
    assert naive_minmax_filter(infos) == (infos[1], infos[0])


def test_create_graph_from_pytorch_model_takes_the_seeds_filter_and_shape():
    from torch import nn

    from rfa_lint import create_graph_from_pytorch_model

    def keep(infos):
        return infos

    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2))
    graph = create_graph_from_pytorch_model(model, keep, (1, 3, 32, 32))  # the seed's order
    assert all(n.receptive_field_info_filter is keep for n in graph.all_layers)
    assert graph.receptive_field_min == (5, 5)  # 3, then 3 + 2
    graph = create_graph_from_pytorch_model(model, filter_rf="inf")
    assert all(n.receptive_field_info_filter is KNOWN_FILTER_MAPPING["inf"] for n in graph.all_layers)


# --- graph_utils ------------------------------------------------------------------------------

def test_graph_utils_on_vgg16():
    graph = vgg16()
    # VGG-16 (config D), j doubling at each 2x2/2 pool: input 1; 3, 5; pool 6 (j 2); 10, 14;
    # pool 16 (j 4); 24, 32, 40; pool 44 (j 8); 60, 76, 92; pool 100 (j 16); 132, 164, 196;
    # pool 212 (j 32); three dense layers
    rfs = [n.receptive_field_min for n in obtain_all_nodes(graph)]
    assert rfs[:19] == [1, 3, 5, 6, 10, 14, 16, 24, 32, 40, 44, 60, 76, 92, 100, 132, 164, 196, 212]
    assert all(math.isinf(v) for v in rfs[19:]) and len(rfs) == 22
    # critical at 32: the 10 layers from 40 on, and the 3 dense ones unless filtered
    assert len(obtain_all_critical_layers(graph, 32, False)) == 13
    assert len(obtain_all_critical_layers(graph, 32)) == 10
    # unproductive at 32: the conv at 40 reads 32 >= 32, and every layer after it
    assert [n.receptive_field_min for n in obtain_border_layers(graph, 32)] == rfs[9:19]
    assert len(obtain_border_layers(graph, 42000, filter_dense=False)) == 2  # two dense read a dense
    assert filters_non_convolutional_node(obtain_all_nodes(graph)) == obtain_all_nodes(graph)[:19]
    assert filters_non_infinite_rf_sizes([3, (5, math.inf), math.inf, (7, 7)]) == [3, (7, 7)]
    windows = filter_layers_not_expanding_receptive_field(obtain_all_nodes(graph))
    assert len(windows) == 13 + 5  # the 3x3 convs and the pools; not the input nor the dense


def test_border_layers_leave_kernels_on_tiny_maps_to_rfa104():
    graph = resnet18()
    nodes = by_name(graph)
    # Every addition has min RF 11 (the stem: 7, then the 3x3/2 pool: 7 + 2*2, j 4) through the
    # shortcuts.  A block's first 3x3 reads 11; its second reads the first.  Unproductive at 32
    # (input >= 32): Stage2-Block1-1 reads 11 + 2*16 = 43; Stage3-Block0-1 reads 11 + 2*16 = 43
    # (j 16 before its stride); Stage3-Block1-1 reads 11 + 2*32 = 75.
    assert {n.name for n in obtain_border_layers(graph, 32)} == {
        "Stage2-Block1-1-Conv3x3-BatchNorm-ReLU",
        "Stage3-Block0-1-Conv3x3-BatchNorm-ReLU",
        "Stage3-Block1-1-Conv3x3-BatchNorm-ReLU",
    }
    # The seed also counts (10 layers) the kernels covering their map, ceil(32 / j_in) <= k: the
    # 3x3s at j_in 16 (map 2: Stage2-Block0-1, -Block1-0, -Block1-1, Stage3-Block0-0) and 32
    # (map 1: Stage3-Block0-1, -Block1-0, -Block1-1), plus 1x1 layers on a 1-px map.
    covering = {n.name for n in graph.all_layers if kernel_covers_feature_map(n, 32)}
    convs = [(2, 0, 1), (2, 1, 0), (2, 1, 1), (3, 0, 0), (3, 0, 1), (3, 1, 0), (3, 1, 1)]
    assert covering == {f"Stage{s}-Block{b}-{c}-Conv3x3-BatchNorm-ReLU" for s, b, c in convs}
    assert nodes["Stage3-Block1-Addition"].receptive_field_max == 435
    # critical at 32 (min RF > 32): stage 1's second convs 35, 43; stage 2's 59, 43, 75;
    # stage 3's 43, 107, 75, 139: nine, as the seed counts
    assert len(obtain_all_critical_layers(graph, 32)) == 9


def test_resolution_range_defaults_and_lower_bound():
    out = chain_3x3()[-1]
    # the seed's defaults: two axes; min = the largest minimum RF (13), max the largest RF (13)
    assert input_resolution_range(out) == ((13, 13), (13, 13))
    assert input_resolution_range(out, cardinality=3) == ((13,) * 3, (13,) * 3)
    # lower_bound: Layer5 (3x3) reads 11, so it is unproductive up to 11 and fine from 12 (the
    # seed returns 11, where its own is_border still flags Layer5: see the is_border test)
    assert input_resolution_range(out, lower_bound=True) == ((12, 12), (13, 13))
    assert find_smallest_resolution_with_no_unproductive_layer(out) == (12,)
    assert unproductive_resolution(out.predecessors[0]) == 11
    # non-square kernels: (3, 5) six times grows (2, 4) per layer: (13, 25)
    rect = [conv("r0", [], kernel=(3, 5))]
    for i in range(1, 6):
        rect.append(conv(f"r{i}", [rect[-1]], kernel=(3, 5)))
    assert input_resolution_range(rect[-1]) == ((13, 25), (13, 25))


def test_architectures_from_the_papers_tables():
    # VGG-11 (config A): 1; 3; pool 4 (j 2); 8; pool 10 (j 4); 18, 26; pool 30 (j 8); 46, 62;
    # pool 70 (j 16); 102, 134; pool 150
    assert [n.receptive_field_min for n in vgg11().all_layers][:14] == [
        1, 3, 4, 8, 10, 18, 26, 30, 46, 62, 70, 102, 134, 150]
    # convs + 5 pools + input + 3 dense: 8, 10, 13, 16 convs
    assert [len(f().all_layers) for f in (vgg11, vgg13, vgg16, vgg19)] == [17, 19, 22, 25]
    # ResNets: stem conv + pool, blocks (2 convs + add, or 3 convs + add), projections where the
    # shape changes (stages 2-4; a bottleneck's first block too), pooling and fc
    assert len(resnet18().all_layers) == 2 + 8 * 3 + 3 + 2
    assert len(resnet36().all_layers) == 2 + 16 * 3 + 3 + 2
    assert [len(f().all_layers) for f in (resnet50, resnet101, resnet152)] == [
        2 + 16 * 4 + 4 + 2, 2 + 33 * 4 + 4 + 2, 2 + 50 * 4 + 4 + 2]
    # a bottleneck strides in its first 1x1 (the paper's released models): stage 2's first 3x3
    # then runs at j 8 on 11 -> 27 (torchvision's v1.5, striding in the 3x3, gives 19)
    assert by_name(resnet50())["Stage1-Block0-1-Conv3x3-BatchNorm-ReLU"].receptive_field_min == 27


# --- PyTorch encodings -----------------------------------------------------------------------

def test_custom_layer_handler_by_class_name():
    from torch import nn

    from rfa_lint import create_graph_from_pytorch_model
    from rfa_lint.encodings.pytorch import add_custom_layer_handler, toggle_coerce_torch_functional
    from rfa_lint.frontends.torch.table import NAMED_HANDLERS

    class Blur(nn.Module):
        def forward(self, x):
            return nn.functional.avg_pool2d(x, 3, 1, 1)

    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), Blur(), nn.Conv2d(4, 4, 3, padding=1))
    add_custom_layer_handler("Blur", name_handler=lambda m, name: f"{name} 8x8 / 2",
                             kernel_size_provider=lambda m: 8, stride_size_provider=lambda m: 2)
    try:
        graph = create_graph_from_pytorch_model(model, custom_layers=["Blur"])
    finally:
        del NAMED_HANDLERS["Blur"]
    blur = graph.predecessors[0]
    # conv 3; Blur as described: 3 + 7 = 10 (j 2); conv 10 + 2*2 = 14
    assert blur.layer_info.name == "Blur 8x8 / 2" and blur.receptive_field_min == (10, 10)
    assert graph.receptive_field_min == (14, 14)
    # not named: traced into (a 3x3/1 average pool): 3, 5, 7
    assert create_graph_from_pytorch_model(model).receptive_field_min == (7, 7)
    with pytest.warns(DeprecationWarning):
        toggle_coerce_torch_functional()


def test_se_modules_shown_or_not():
    from torch import nn
    from torchvision.ops import SqueezeExcitation

    from rfa_lint import create_graph_from_pytorch_model

    model = nn.Sequential(nn.Conv2d(3, 8, 3), SqueezeExcitation(8, 2), nn.Conv2d(8, 8, 3))
    hidden = create_graph_from_pytorch_model(model)
    # the SE module is one per-position layer: 3, then 5, nothing infinite
    assert (hidden.receptive_field_min, hidden.receptive_field_max) == ((5, 5), (5, 5))
    shown = create_graph_from_pytorch_model(model, display_se_modules=True)
    # traced into: the gate's global pooling reaches the last conv, whose max becomes infinite
    assert shown.receptive_field_min == (5, 5) and math.isinf(shown.rf_max_per_axis[0])
    assert len(shown.all_layers) > len(hidden.all_layers)


def test_seed_ingest_paths():
    from torch import nn

    from rfa_lint.encodings.pytorch.ingest_architecture import create_graph_from_model, make_graph
    from rfa_lint.encodings.pytorch.intermediate_graph import Digraph

    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a connected graph has no lone node
        graph = make_graph(None, ref_mod=model).to_graph()
    assert graph.receptive_field_min == (5, 5) == create_graph_from_model(model).receptive_field_min
    lone = EnrichedNetworkNode(name="node", layer_info=LayerDefinition(name="conv"), predecessors=[])
    with pytest.warns(UserWarning, match="no predecessors and no successors"):
        Digraph(model)._check_for_lone_node({"node": lone})


@pytest.mark.integration
def test_keras_entry_points_take_the_seeds_filter():
    import keras

    from rfa_lint import create_graph_from_tensorflow_model
    from rfa_lint.encodings.tensorflow_keras.ingest_architecture import create_graph_from_model

    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(4, 3), keras.layers.Conv2D(4, 3)])
    graph = create_graph_from_model(model, filter_rf="inf")
    assert all(n.receptive_field_info_filter is KNOWN_FILTER_MAPPING["inf"] for n in graph.all_layers)
    assert graph.receptive_field_min == (5, 5)  # 3, then 3 + 2
    assert create_graph_from_tensorflow_model(model).receptive_field_min == (5, 5)


def test_import_rfa_lint_loads_no_framework():
    code = (
        "import sys, rfa_lint, rfa_lint.graphs, rfa_lint.utils.graph_utils, rfa_lint.architectures.resnet, "
        "rfa_lint.architectures.vgg, rfa_lint.encodings\n"
        "print(sorted(m for m in ('torch', 'tensorflow', 'keras') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
