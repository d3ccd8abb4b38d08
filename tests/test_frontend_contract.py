"""The frontend contract (rfa_lint/frontends/base.py), without a framework: the handler registry
and the plain-graph builder both frontends record their nodes with."""

import subprocess
import sys

import pytest

from rfa_lint.frontends import base
from rfa_lint.rf import LayerDefinition, graph_from_plain


def test_importing_the_contract_imports_no_framework():
    code = ("import sys, rfa_lint.frontends; "
            "print(sorted(m for m in ('torch', 'tensorflow', 'keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_only_layer_classes_of_a_framework_can_be_registered(monkeypatch):
    monkeypatch.setattr(base, "_REGISTERED", {})
    for not_a_layer in (int, object, "Conv2d", base.PlainGraph):
        with pytest.raises(TypeError):
            base.register_layer_handler(not_a_layer, lambda layer, in_shape, out_shape: None)
    assert base._REGISTERED == {}
    # a subclass of a framework's layer base, told by module and name (no framework imported)
    for module, name in (("torch.nn.modules.module", "Module"), ("keras.src.ops.operation", "Operation")):
        layer_base = type(name, (), {"__module__": module})
        layer_class = type("Blur", (layer_base,), {})
        base.register_layer_handler(layer_class, print)
        assert base.registered_handler(layer_class) is print
        assert base.registered_handler(layer_base) is None  # its bases are not registered


def conv(name):
    return LayerDefinition(name, kernel_size=3, kind="conv")


def test_plain_graph_nodes_get_unique_names_and_their_maps():
    graph = base.PlainGraph()
    source = LayerDefinition("input", kernel_size=1, kind="input")
    first = graph.add("input", source, [], [], [], None, [8, 8])
    a = graph.add("block", conv("a"), [first], ["block"], [("m.py", 3)], (8, 8), (8, 8))
    b = graph.add("block", conv("b"), [a], ["block"], [], [8, 8], ())
    literal = graph.add("block#3", conv("c"), [b], [], [], None, None)
    again = graph.add("block", conv("d"), [literal], [], [], None, None)
    # a name taken gets the next free count, even one a literal name took
    assert [n["name"] for n in graph.nodes] == ["input", "block", "block#2", "block#3", "block#4"]
    assert graph.nodes[a]["sites"] == [["m.py", 3]] and graph.nodes[a]["map_in"] == [8, 8]
    assert graph.nodes[b]["map_out"] is None  # no positions: no map
    assert graph.nodes[first]["map_in"] is None and again == 4


def test_plain_graph_facts_and_reports():
    graph = base.PlainGraph()
    node = graph.add("conv", conv("conv"), [], [], [], [5, 5], [3, 3])
    assert not graph.has_channels(node)
    graph.set_channels(node, None)
    assert not graph.has_channels(node)
    graph.set_channels(node, 16)
    graph.set_costs(node, params=0, macs=1296)  # zero weights are left out
    graph.mark_spans_map(node)
    assert {k: graph.nodes[node][k] for k in ("channels", "macs", "spans_map")} == {
        "channels": 16, "macs": 1296, "spans_map": True}
    assert "params" not in graph.nodes[node]
    for _ in range(2):  # once per kind and place
        graph.report("Stretch", ["stretch"], [("m.py", 9)])
    graph.report("Stretch", ["other"], [("m.py", 9)])
    assert graph.unsupported == [
        {"type": "Stretch", "module_paths": ["stretch"], "sites": [["m.py", 9]]},
        {"type": "Stretch", "module_paths": ["other"], "sites": [["m.py", 9]]},
    ]


def test_plain_graph_to_dict_is_what_the_core_reads():
    graph = base.PlainGraph()
    first = graph.add("input", LayerDefinition("input", kernel_size=1, kind="input"), [], [], [], None, [9])
    out = graph.add("conv", conv("conv"), [first], [], [], [9], [7])
    plain = graph.to_dict(out, [1, 3, 9], "eval")
    assert (plain["output"], plain["input_shape"], plain["mode"]) == (1, [1, 3, 9], "eval")
    assert plain["unsupported"] == []
    assert graph_from_plain(plain).receptive_field_min == 3  # one 3-wide kernel (scalar: all axes)
