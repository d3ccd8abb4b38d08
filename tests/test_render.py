"""Pictures drawn by the real GraphViz ``dot`` and read back from the SVG it writes.

Each box's fill is compared with the analysis (``classify``) at the same resolution; graphviz
writes a node's name in its ``<title>`` and the fill on its first filled polygon.
"""

import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET

import pytest

from rfa_lint import visualize_architecture
from rfa_lint.graphs import EnrichedNetworkNode, LayerDefinition
from rfa_lint.render import GraphvizNotFound, picture_name, render_to_file
from rfa_lint.rf import Verdict, classify
from rfa_lint.rf.analysis import judged

SVG = "{http://www.w3.org/2000/svg}"
SEVERITY = [Verdict.UNPRODUCTIVE, Verdict.CRITICAL, Verdict.BORDER, Verdict.PRODUCTIVE]


def fill(node, res):
    """A box's colour: the verdict of a layer the linter judges, white for any other node."""
    return classify(node, res) if judged(node) else Verdict.PRODUCTIVE


def layer(name, preds=(), k=3, s=1, path=None, line=None, filters=None):
    kind = "x".join(map(str, k)) if isinstance(k, tuple) else f"{k}x{k}"
    return EnrichedNetworkNode(
        name=name,
        layer_info=LayerDefinition(name=f"Conv{kind}", kernel_size=k, stride_size=s, filters=filters),
        predecessors=list(preds),
        module_paths=(path,) if path else (),
        sites=(("/src/models/model.py", line),) if line else (),
    )


def chain():
    nodes, prev = [], []
    for i in range(5):
        nodes.append(layer(f"c{i}", prev, s=2 if i == 0 else 1, path=f"features.{i}", line=10 + i, filters=8))
        prev = [nodes[-1]]
    return nodes[-1]


def branches():
    stem = layer("stem")
    a, b = layer("a", [stem], k=3, s=2), layer("b", [stem], k=5, s=2)
    merge = layer("merge", [a, b])
    return layer("last", [merge])


def se_gate():
    body = layer("body", [layer("stem")])
    pool = EnrichedNetworkNode("pool", LayerDefinition("AdaptiveAvgPool2d"), [body])
    fc = layer("fc", [pool], k=1)
    gate = EnrichedNetworkNode("mul", LayerDefinition("mul", kernel_size=1, kind="merge"), [body, fc])
    return EnrichedNetworkNode("head", LayerDefinition("Linear", units=10), [gate])


def non_square():
    return layer("after", [layer("wide", k=(7, 1))])


def resnet_like():
    """conv1, layer1.0-2 (identical blocks), layer2.0 (stride 2 + downsample), layer2.1, head."""
    x = layer("conv1", k=7, s=2, path="conv1", line=1)
    for stage, blocks in ((1, 3), (2, 2)):
        for b in range(blocks):
            p = f"layer{stage}.{b}"
            s = 2 if stage == 2 and b == 0 else 1
            y = layer("c1", [x], s=s, path=f"{p}.conv1", line=20)
            y = layer("c2", [y], path=f"{p}.conv2", line=21)
            skip = layer("ds", [x], k=1, s=2, path=f"{p}.downsample", line=22) if s == 2 else x
            # a functional op: no module path, named after its module as the frontends do
            add = LayerDefinition("add", kernel_size=1, kind="merge")
            x = EnrichedNetworkNode(f"{p}.add", add, [y, skip])
    pool = EnrichedNetworkNode("pool", LayerDefinition("AdaptiveAvgPool2d"), [x], ("avgpool",))
    return EnrichedNetworkNode("fc", LayerDefinition("Linear", units=10), [pool], ("fc",))


def boxes(graph, **options):
    """{box title: (fill, [text lines])} from the SVG drawn by the real dot."""
    root = ET.fromstring(graph.pipe(format="svg"))
    found = {}
    for g in root.iter(f"{SVG}g"):
        if g.get("class") == "node":
            fill = next(p.get("fill") for p in g.iter(f"{SVG}polygon") if p.get("fill") != "none")
            found[g.find(f"{SVG}title").text] = (fill, [t.text for t in g.iter(f"{SVG}text")])
    return found


def drawn_layers(graph):
    return {title: box for title, box in boxes(graph).items() if title != "legend"}


@pytest.mark.parametrize("build", [chain, branches, se_gate, non_square])
@pytest.mark.parametrize("res", [3, 5, 7, 8, 13, 32, (5, 9)])
def test_every_fill_is_the_verdict_at_the_resolution(build, res):
    out = build()
    drawn = drawn_layers(visualize_architecture(out, "m", input_res=res))
    assert {t: fill for t, (fill, _) in drawn.items()} == {
        f"n{i}": fill(n, res).value for i, n in enumerate(out.all_layers)
    }


def test_the_hand_built_graphs_cover_every_colour():
    graphs = [build() for build in (chain, branches, se_gate, non_square)]
    seen = {classify(n, r) for out in graphs for n in out.all_layers for r in (5, 7)}
    assert seen == set(Verdict)


def test_labels_carry_rf_feature_map_module_path_and_site():
    drawn = drawn_layers(visualize_architecture(chain(), "m", input_res=32))
    # c0 is a 3x3/s2 conv: rf 3, output map 16x16; c1 adds 2 * 2 = 4 -> 7
    assert drawn["n0"][1] == ["Conv3x3", "features.0", "8 filters", "r(min)=3, r(max)=3",
                              "feature map 16", "model.py:10"]
    assert "r(min)=7, r(max)=7" in drawn["n1"][1]
    rooted = drawn_layers(visualize_architecture(chain(), "m", 32, source_root="/src"))
    assert "models/model.py:14" in rooted["n4"][1]


def test_heads_show_units_and_no_feature_map_non_square_rf_per_axis():
    head = drawn_layers(visualize_architecture(se_gate(), "m", input_res=8))["n5"][1]
    assert head == ["Linear", "head", "10 units", "r(min)=inf, r(max)=inf"]
    wide = drawn_layers(visualize_architecture(non_square(), "m", input_res=5))["n0"]
    assert wide == ("yellow", ["Conv7x1", "wide", "r(min)=7x1, r(max)=7x1",
                               "feature map 5"])


def test_legend_names_the_resolution_colours_and_counts():
    legend = boxes(visualize_architecture(chain(), "tiny", input_res=6))["legend"][1]
    text = " ".join(legend)
    assert "tiny at 6px" in text
    # c0..c4: rf 3, 7, 11, 15, 19; c1 pushes past 6 (input 3): critical; the rest unproductive
    assert "3 unproductive" in text and "1 critical" in text and "1 productive" in text
    assert "r(min) / r(max)" in text
    assert "legend" not in boxes(visualize_architecture(chain(), "tiny", legend=False))


def test_layers_the_linter_does_not_judge_take_no_verdict_colour_and_are_not_counted():
    # a ReLU after c4 (rf 19 at 6px) would be red in RFA-Toolbox's pictures; here it stays white,
    # so the colours, the legend's counts and the linter's findings agree
    relu = EnrichedNetworkNode(name="relu", predecessors=[chain()],
                               layer_info=LayerDefinition(name="ReLU", kernel_size=1, kind="passthrough"))
    drawn = visualize_architecture(relu, "tiny", input_res=6)
    assert classify(relu, 6) is Verdict.UNPRODUCTIVE and drawn_layers(drawn)["n5"][0] == "white"
    text = " ".join(boxes(drawn)["legend"][1])
    assert "3 unproductive" in text and "counts: convolution and pooling layers" in text


def test_the_seed_switches_turn_colours_off():
    out = chain()
    no_red = drawn_layers(visualize_architecture(out, "m", 6, color_border=False))
    assert {f for f, _ in no_red.values()} == {"white", "orange"}
    no_orange = drawn_layers(visualize_architecture(out, "m", 6, color_critical=False))
    assert {f for f, _ in no_orange.values()} == {"white", "red"}


def worst(nodes, res):
    return min((fill(n, res) for n in nodes), key=SEVERITY.index).value


@pytest.mark.parametrize("res", [16, 32, 64])
def test_depth_collapses_modules_into_boxes_of_the_worst_colour(res):
    out = resnet_like()
    nodes = out.all_layers
    drawn = drawn_layers(visualize_architecture(out, "m", res, depth=1))
    expected = {}
    for prefix in ("conv1", "layer1", "layer2", "avgpool", "fc"):
        members = [i for i, n in enumerate(nodes) if (n.module_paths or [n.name])[0].split(".")[0] == prefix]
        expected[f"n{members[0]}"] = worst([nodes[i] for i in members], res)
    assert {t: fill for t, (fill, _) in drawn.items()} == expected
    assert len(drawn) < len(nodes)


def test_repeated_identical_blocks_become_one_box():
    out = resnet_like()
    drawn = drawn_layers(visualize_architecture(out, "m", 12, depth=2))
    labels = [lines[0] for _, lines in drawn.values()]
    # layer1.0-2 are the same layers; layer2.0 has a stride and a downsample, so it differs
    assert labels == ["Conv7x7", "layer1.0 ... layer1.2 ×3", "layer2.0", "layer2.1",
                      "AdaptiveAvgPool2d", "Linear"]
    run = next(lines for _, lines in drawn.values() if lines[0].endswith("×3"))
    # conv1 gives rf 7 at stride 2; each block's conv2 reaches a min of 15 > 12 from an input of
    # 11 (critical); the identity skip keeps every add at a min of 7; the max grows by 8 a block
    # 9 nodes: each block's two convs and its add; the counts are of the six convs, as the legend's
    assert run[1:] == ["6 conv/pool layers of 9 nodes: 3 critical", "r(min)=7..15, r(max)=11..31",
                       "feature map 6 (output)", "model.py:20-21"]


def test_max_nodes_picks_the_deepest_depth_that_fits():
    out = resnet_like()
    full = drawn_layers(visualize_architecture(out, "m", 32, max_nodes=100))
    assert len(full) == len(out.all_layers)
    assert drawn_layers(visualize_architecture(out, "m", 32, max_nodes=6)) == drawn_layers(
        visualize_architecture(out, "m", 32, depth=2)
    )


@pytest.mark.parametrize("fmt, magic", [("svg", b"<?xml"), ("png", b"\x89PNG"), ("pdf", b"%PDF"),
                                        ("dot", b"digraph")])
def test_render_to_file_writes_one_whole_file(tmp_path, fmt, magic):
    path = render_to_file(chain(), tmp_path / "pics" / "model.chain", fmt, input_res=7)
    assert path == tmp_path / "pics" / f"model.chain.{fmt}"
    assert path.read_bytes().startswith(magic)
    assert os.listdir(path.parent) == [path.name]


def test_render_to_file_refuses_unknown_formats(tmp_path):
    with pytest.raises(ValueError, match="svg, png, pdf, dot"):
        render_to_file(chain(), tmp_path / "m", "jpeg")


def test_without_dot_a_clear_error_and_no_file_but_dot_source_still_works(tmp_path):
    script = textwrap.dedent(
        """
        import os, sys
        from rfa_lint.graphs import EnrichedNetworkNode, LayerDefinition
        from rfa_lint.render import GraphvizNotFound, render_to_file
        out = EnrichedNetworkNode("c", LayerDefinition("Conv3x3", kernel_size=3))
        try:
            render_to_file(out, "pics/m", "png")
        except GraphvizNotFound as error:
            print(error)
        print(render_to_file(out, "pics/m", "dot"))
        print(sorted(os.listdir("pics")))
        """
    )
    empty = tmp_path / "bin"
    empty.mkdir()
    run = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env={**os.environ, "PATH": str(empty)},
                         capture_output=True, text=True, check=True)
    message, dot_path, listing = run.stdout.splitlines()
    assert "'dot' program is not installed" in message and "apt-get install graphviz" in message
    assert "brew install graphviz" in message
    assert (dot_path, listing) == ("pics/m.dot", "['m.dot']")


def test_graphviz_not_found_is_a_runtime_error():
    assert issubclass(GraphvizNotFound, RuntimeError)


@pytest.mark.parametrize("path, model, root, name", [
    ("models/resnet.py", "resnet18", None, "resnet.resnet18"),
    ("models/resnet.py", "resnet18", ".", "models.resnet.resnet18"),
    ("my nets/net v2.py", "Net<2>", None, "net_v2.Net_2"),
    ("/elsewhere/x.py", "M", ".", "x.M"),
])
def test_picture_name(path, model, root, name):
    assert picture_name(path, model, root) == name


@pytest.mark.integration
def test_torchvision_resnet18_at_32px_every_fill_is_the_verdict():
    import torchvision

    from rfa_lint.frontends.torch import building_context, create_graph_from_pytorch_model

    with building_context():
        model = torchvision.models.resnet18()
    out = create_graph_from_pytorch_model(model)
    drawn = drawn_layers(visualize_architecture(out, "resnet18", input_res=32))
    expected = {f"n{i}": fill(n, 32).value for i, n in enumerate(out.all_layers)}
    assert {t: fill for t, (fill, _) in drawn.items()} == expected
    assert {"white", "orange", "red"} <= set(expected.values())
    last_conv = next(lines for _, lines in drawn.values() if "layer4.1.conv2" in lines)
    assert any(line.startswith("resnet.py:") for line in last_conv)
