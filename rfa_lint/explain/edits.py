"""What-if edits of a plain graph: a stride set to 1, a pooling layer dropped, a smaller kernel, a
cut after a stage.  Each returns an edited copy, which the receptive-field core analyses like any
graph (:func:`rfa_lint.rf.graph.graph_from_plain`), so a suggestion's numbers are measured on
the edited network, never guessed.

Edits name layers by node name, which stays valid while other edits drop nodes.  The candidates
are found on the graph as traced: :func:`downsamplings` groups the strided layers that move to
the same coarser grid together (a residual block's strided conv and its strided shortcut), as
they must change together for the block's sum to keep matching shapes.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Any, Iterable

from rfa_lint.rf.graph import EnrichedNetworkNode, Kind, LayerDefinition, broadcast

from .cost import offsets

WINDOWS = (Kind.CONV, Kind.POOL)
Layers = list[EnrichedNetworkNode]  # a plain graph's nodes, built, in its order
HEAD_KINDS = (Kind.POOL, Kind.GLOBAL, Kind.DENSE)  # where a classifier head starts
STEM_KERNEL = 3  # what a large stem kernel shrinks to


@dataclass(frozen=True)
class Edit:
    """One change: ``op`` is ``stride`` (to 1), ``drop`` (a pooling layer), ``kernel`` (to
    ``to``), ``move`` (the stride of ``layers`` to 1, theirs multiplying the strides of
    ``into``) or ``cut`` (after the block ending at the named node, the head kept)."""

    op: str
    layers: tuple[str, ...] = ()
    title: str = ""
    to: int | None = None
    into: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data = {"op": self.op, "layers": list(self.layers)}
        return data | ({"to": self.to} if self.to is not None else {}) | (
            {"into": list(self.into)} if self.into else {})


def editable(plain: dict[str, Any]) -> dict[str, Any]:
    """A deep copy whose nodes remember what was traced (``traced``: the layer, its maps, the
    channels of the first input, the padding between its inputs and its layer), which
    :mod:`.cost` needs once edits have changed them."""
    copied = copy.deepcopy(plain)
    nodes = copied["nodes"]
    for spec, offset in zip(nodes, offsets(copied)):
        preds = spec.get("predecessors", ())
        channels = nodes[preds[0]].get("channels") if preds else None
        maps = {"map_in": spec.get("map_in"), "map_out": spec.get("map_out")}
        spec["traced"] = {"layer": spec["layer"], **maps, "in_channels": channels, "offset": offset}
    return copied


def apply(plain: dict[str, Any], edits: Iterable[Edit]) -> dict[str, Any]:
    """``plain`` (an :func:`editable` copy) with ``edits`` (no cut) applied in order."""
    for edit in edits:
        plain = _APPLY[edit.op](plain, edit)
    return plain


def set_stride(plain: dict[str, Any], edit: Edit) -> dict[str, Any]:
    return _relayered(plain, edit.layers, lambda layer: dataclasses.replace(layer, stride_size=1))


def set_kernel(plain: dict[str, Any], edit: Edit) -> dict[str, Any]:
    def smaller(layer: LayerDefinition) -> LayerDefinition:
        return dataclasses.replace(layer, kernel_size=tuple(min(k, edit.to) for k in layer.kernel))
    return _relayered(plain, edit.layers, smaller)


def move(plain: dict[str, Any], edit: Edit) -> dict[str, Any]:
    """The downsampling of ``edit.layers`` moved to ``edit.into``: the first's stride (per axis)
    multiplies the strides there, and is 1 where it was."""
    first = next(spec for spec in plain["nodes"] if spec["name"] == edit.layers[0])
    factor = LayerDefinition.from_dict(first["layer"]).stride

    def strided(layer: LayerDefinition) -> LayerDefinition:
        strides = zip(*broadcast(layer.stride, factor))
        return dataclasses.replace(layer, stride_size=tuple(s * f for s, f in strides))
    return _relayered(set_stride(plain, edit), edit.into, strided)


def _relayered(plain: dict[str, Any], names: tuple[str, ...], change) -> dict[str, Any]:
    nodes = [
        {**spec, "layer": change(LayerDefinition.from_dict(spec["layer"])).to_dict()} if spec["name"] in names
        else spec
        for spec in plain["nodes"]
    ]
    return {**plain, "nodes": nodes}


def drop(plain: dict[str, Any], edit: Edit) -> dict[str, Any]:
    """The graph without the named nodes; their successors read their inputs."""
    names = set(edit.layers)
    nodes = plain["nodes"]
    gone = {i for i, spec in enumerate(nodes) if spec["name"] in names}
    inputs: dict[int, list[int]] = {}
    for i, spec in enumerate(nodes):
        preds = [q for p in spec.get("predecessors", ()) for q in (inputs[p] if p in gone else [p])]
        inputs[i] = list(dict.fromkeys(preds))
    kept = [i for i in range(len(nodes)) if i not in gone]
    return _subgraph(plain, kept, inputs, plain["output"])


def cut(plain: dict[str, Any], layers: Layers, productive: set[int]) -> tuple[dict[str, Any], Edit] | None:
    """The graph cut after the last block holding a productive window (``productive``: node
    indices; a window with a kernel above 1, as a 1x1 conv adds no context), its head
    (:func:`_head`) reading that block's output, and the edit; None when there is no head or
    nothing to cut.

    Blocks end where the whole data flow passes one node (a residual block's output): only
    there can the rest be cut without leaving a branch dangling.
    """
    head = _head(layers)
    windows = [i for i in productive if any(k > 1 for k in layers[i].layer_info.kernel)]
    if not head or not windows:
        return None
    start = min(head)
    ends = [i for i in _block_ends(plain, start) if i >= max(windows)]
    if not ends:
        return None
    point = ends[0]
    for end in ends[1:]:  # the norms and activations after the block's last window stay
        if any(_window(layers[i]) for i in range(point + 1, end + 1)):
            break
        point = end
    if point == start - 1:
        return None
    inputs = {i: list(spec.get("predecessors", ())) for i, spec in enumerate(plain["nodes"])}
    for i in head:
        inputs[i] = list(dict.fromkeys(p if p in head else point for p in inputs[i]))
    edited = _subgraph(plain, [*range(point + 1), *sorted(head)], inputs, plain["output"])
    last = layers[point]
    title = f"cut after {last.module_paths[0] if last.module_paths else last.name} " \
            f"({drops(plain, edited)} windows removed), then the head"
    return edited, Edit("cut", (layers[point].name,), title)


def _block_ends(plain: dict[str, Any], stop: int) -> list[int]:
    """The nodes before ``stop`` that every path from the input to ``stop`` passes: no edge
    jumps over them (in the graph's topological order)."""
    successors = _successors(plain)
    reach, ends = 0, []
    for i in range(stop):
        if reach <= i:
            ends.append(i)
        reach = max([reach, *successors[i]])
    return ends


def _head(layers: Layers) -> set[int]:
    """The classifier head: from the first pooling, global or dense layer after the last window
    (a conv or pool with a kernel or stride above 1) to the output.  An SE gate, which leads
    back to windows, is no head; neither is a segmentation model's last 1x1 conv."""
    index = {id(n): i for i, n in enumerate(layers)}
    tail: set[int] = set()
    for i in reversed(range(len(layers))):
        node = layers[i]
        if not _window(node) and all(index[id(s)] in tail for s in node.successors):
            tail.add(i)
    head: set[int] = set()
    for i in sorted(tail):
        node = layers[i]
        if node.layer_info.kind in HEAD_KINDS or any(index[id(p)] in head for p in node.predecessors):
            head.add(i)
    return head


def _window(node: EnrichedNetworkNode) -> bool:
    layer = node.layer_info
    return layer.kind in WINDOWS and not layer.is_infinite and (
        any(k > 1 for k in layer.kernel) or any(s > 1 for s in layer.stride))


def _successors(plain: dict[str, Any]) -> list[list[int]]:
    result: list[list[int]] = [[] for _ in plain["nodes"]]
    for i, spec in enumerate(plain["nodes"]):
        for p in spec.get("predecessors", ()):
            result[p].append(i)
    return result


def _scale(node: EnrichedNetworkNode) -> float:
    return max(float(s) for s in node.scale_per_axis)


def _subgraph(plain: dict[str, Any], kept: list[int], inputs: dict[int, list[int]],
              output: int) -> dict[str, Any]:
    """The nodes ``kept`` (in order) with edges ``inputs``, pruned to the output's ancestors."""
    needed, todo = set(), [output]
    while todo:
        i = todo.pop()
        if i not in needed and i in kept:
            needed.add(i)
            todo += inputs[i]
    order = [i for i in kept if i in needed]
    new_index = {old: new for new, old in enumerate(order)}
    nodes = []
    for i in order:
        preds = [new_index[p] for p in inputs[i] if p in new_index]
        nodes.append({**plain["nodes"][i], "predecessors": preds})
    return {**plain, "nodes": nodes, "output": new_index[output]}


_APPLY = {"stride": set_stride, "kernel": set_kernel, "drop": drop, "move": move}


# --- candidates -------------------------------------------------------------------------------

def downsamplings(layers: Layers) -> list[Edit]:
    """One edit per downsampling step: the strided windows moving from one grid to the same
    coarser grid.  A step made of one pooling layer is dropped; any other has its strides set
    to 1."""
    steps: dict[tuple, list[EnrichedNetworkNode]] = {}
    for node in layers:
        layer = node.layer_info
        if layer.kind in WINDOWS and node.has_finite_rf and any(s > 1 for s in layer.stride):
            before = max((_scale(p) for p in node.predecessors), default=1.0)
            steps.setdefault((before, _scale(node)), []).append(node)
    edits = []
    for nodes in steps.values():
        names = tuple(n.name for n in nodes)
        where = _place(nodes)
        if len(nodes) == 1 and nodes[0].layer_info.kind == Kind.POOL and len(nodes[0].predecessors) == 1:
            edits.append(Edit("drop", names, f"drop the pooling layer {where}"))
        else:
            stride = _shown(max(nodes[0].layer_info.stride))
            edits.append(Edit("stride", names, f"remove the downsampling at {where} (stride {stride} -> 1)"))
    return edits


def moves(plain: dict[str, Any], layers: Layers, steps: list[Edit], places: int) -> list[Edit]:
    """Each downsampling step (of :func:`downsamplings`) moved later, to each of the next
    ``places`` places: a later step (which then downsamples by both), or a window of stride 1
    that the whole data flow passes (a conv between blocks, where no shortcut needs the same
    change).  The final map keeps its size; the layers between run on a finer grid."""
    index = {n.name: i for i, n in enumerate(layers)}
    head, passed = _head(layers), _block_ends(plain, len(layers))
    lone = [(i, (layers[i].name,)) for i in passed
            if i not in head and _window(layers[i]) and all(s == 1 for s in layers[i].layer_info.stride)]
    later = [(min(index[name] for name in step.layers), step.layers) for step in steps]
    result = []
    for step in steps:
        after = max(index[name] for name in step.layers)
        here = _place([layers[index[name]] for name in step.layers])
        stride = _shown(max(layers[index[step.layers[0]]].layer_info.stride))
        for _, into in sorted(p for p in lone + later if p[0] > after)[:places]:
            there = _place([layers[index[name]] for name in into])
            title = f"move the downsampling at {here} to {there} (stride {stride} there)"
            result.append(Edit("move", step.layers, title, into=into))
    return result


def stem(layers: Layers) -> Edit | None:
    """A smaller kernel for the first convolution, when it is larger than :data:`STEM_KERNEL`."""
    first = next((n for n in layers if n.layer_info.kind == Kind.CONV and n.has_finite_rf), None)
    if first is None or max(first.layer_info.kernel) <= STEM_KERNEL:
        return None
    kernel = _shown(max(first.layer_info.kernel))
    return Edit("kernel", (first.name,), f"stem kernel {kernel} -> {STEM_KERNEL} at {_place([first])}",
                STEM_KERNEL)


def _place(nodes: list[EnrichedNetworkNode]) -> str:
    """The module the nodes share (``layer4.0``), or the first one's name."""
    paths = [(n.module_paths[0] if n.module_paths else n.name).split(".") for n in nodes]
    common = []
    for parts in zip(*paths):
        if len(set(parts)) > 1:
            break
        common.append(parts[0])
    return ".".join(common) or paths[0][0]


def _shown(value) -> str:
    return str(int(value)) if float(value).is_integer() else f"{float(value):g}"


def drops(before: dict[str, Any], after: dict[str, Any]) -> int:
    """How many windows (conv, pool) an edit removed."""
    def windows(plain: dict[str, Any]) -> int:
        return sum(spec["layer"].get("kind") in WINDOWS for spec in plain["nodes"])
    return windows(before) - windows(after)
