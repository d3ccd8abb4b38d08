"""GraphViz pictures of an analysed model: the seed's coloured architecture graph, kept readable.

``visualize_architecture`` keeps RFA-Toolbox's name, call shape and colours (red unproductive,
orange critical, yellow border case, white otherwise; ``color_border`` toggles red and
``color_critical`` orange and yellow, as in the seed), so ``.view()`` and ``.render()`` work as
before.  One colour differs: the seed also paints red a layer whose kernel covers its whole
feature map while its receptive field still fits the image; here that layer keeps the colour
its receptive field gives it, as the linter reports it apart (RFA104).  And only the layers the
linter judges (``rf.analysis.judged``: convolutions and pooling windows) take a verdict colour:
a BatchNorm, an activation or an add after an orange convolution stays white, so the colours,
the legend's counts and a collapsed box's counts all speak of one set of layers.  Each box says what a
reader needs to act on a colour without the code at hand: layer type, module path, filters or
units, ``r(min)`` / ``r(max)``, the feature-map size at the resolution (while the layer does not
yet see the whole image), and the source ``file:line`` that built the layer.  A legend names
the model, the resolution, the colours and how many layers have each.

Why collapsing, and how.  A full ResNet-50 is ~170 boxes in one column: at any zoom where the
labels are legible the picture is metres long, and a DenseNet-121's concatenations add hundreds
of crossing edges.  Models are built from named modules, and the module tree is the structure
their authors think in, so the picture collapses along it:

- ``depth=N`` puts every node whose tree path (its first module path; for a functional op, the
  name the frontend gave it after the calling module, ``layer4.1.add``) shares its first N
  dotted components (``layer4.1`` at depth 2) into one box.  Edges between boxes are the edges
  between their members, once each; edges inside a box disappear.
- Within that, a run of consecutive sibling boxes made of the same layers (same types, kernels,
  strides, dilations: the receptive-field structure, not the channel counts) becomes one box
  annotated ``×N`` (``layer2.1 ... layer2.3 ×3``, a dense block's 24 dense layers).
- A box with several members is drawn with a double border, filled with its *worst* colour
  (red > orange > yellow > white) and labelled with how many members have each verdict, so a
  collapse never hides a finding, only its position inside the block.
- ``max_nodes=M`` picks the deepest depth whose picture has at most M boxes (no collapse at all
  if the full graph fits), so the same call draws ResNet-18 in full and ResNet-50 or
  DenseNet-121 as a couple of dozen blocks.  ``render_to_file`` (the linter's ``--graph-dir``)
  uses ``max_nodes=DEFAULT_MAX_NODES``; ``visualize_architecture`` draws everything by default,
  as the seed does.

Boxes are named ``n<i>``, with ``i`` the index in ``all_layers`` of their first member, so the
DOT source and the SVG ``<title>`` of each box are stable from run to run.
"""

from __future__ import annotations

import html
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import graphviz

from rfa_lint import notebook
from rfa_lint.atomic import write_atomically
from rfa_lint.numbers import fmt
from rfa_lint.rf.analysis import Resolution, Verdict, classify, judged
from rfa_lint.rf.graph import EnrichedNetworkNode, PerAxis, per_axis

#: Worst first: the order in which a collapsed box takes its colour.
SEVERITY = (Verdict.UNPRODUCTIVE, Verdict.CRITICAL, Verdict.BORDER, Verdict.PRODUCTIVE)
FORMATS = ("svg", "png", "pdf", "dot")
DEFAULT_MAX_NODES = 80

_MEANING = {
    Verdict.UNPRODUCTIVE: "unproductive: its input already sees the whole image",
    Verdict.CRITICAL: "critical: pushes the receptive field past the image",
    Verdict.BORDER: "border case: past the image on some axes only",
    Verdict.PRODUCTIVE: "productive",
}


class GraphvizNotFound(RuntimeError):
    """The GraphViz ``dot`` program, needed to draw SVG / PNG / PDF, is not on PATH."""

    def __init__(self) -> None:
        super().__init__(
            "cannot draw the model picture: the GraphViz 'dot' program is not installed or not "
            "on PATH. Install it with 'apt-get install graphviz' (Debian/Ubuntu), "
            "'brew install graphviz' (macOS) or 'conda install -c conda-forge graphviz', or "
            "write the DOT source only with the 'dot' format."
        )


@dataclass
class _Box:
    """One drawn box: the indices (into ``all_layers``) of the nodes it stands for."""

    members: list[int]
    keys: list[str] = field(default_factory=list)  # tree-path prefixes; several for a run of repeats
    signature: tuple = ()


def visualize_architecture(
    output_node: EnrichedNetworkNode,
    model_name: str,
    input_res: Resolution = 224,
    color_critical: bool = True,
    color_border: bool = True,
    include_rf_info: bool = True,
    filter_kernel_size_1: bool = False,
    include_fm_info: bool = True,
    *,
    depth: int | None = None,
    max_nodes: int | None = None,
    source_root: str | os.PathLike | None = None,
    legend: bool = True,
) -> graphviz.Digraph:
    """The model's graph coloured by the verdict of each layer at ``input_res``.

    ``depth`` / ``max_nodes`` collapse large models along their module tree (see the module
    docstring).  Source sites are shown relative to ``source_root`` when they lie under it, by
    file name otherwise.
    """
    nodes = output_node.all_layers
    shown = [
        _shown(classify(n, input_res, filter_kernel_size_1), color_critical, color_border)
        if judged(n) else Verdict.PRODUCTIVE
        for n in nodes
    ]
    boxes = _layout(nodes, depth, max_nodes)
    box_of = {id(nodes[i]): b for b, box in enumerate(boxes) for i in box.members}
    dot = graphviz.Digraph(model_name)
    dot.attr(rankdir="TB")
    dot.attr("node", shape="rectangle", style="filled", fontsize="11")
    if legend:
        counted = [v for n, v in zip(nodes, shown) if judged(n)]
        dot.node("legend", _legend(model_name, input_res, boxes, counted), shape="plaintext", style="")
    judged_at = {i for i, n in enumerate(nodes) if judged(n)}
    details = (input_res, include_rf_info, include_fm_info, source_root)
    for box in boxes:
        verdict = min((shown[i] for i in box.members), key=SEVERITY.index)
        if len(box.members) == 1:
            dot.node(_box_id(box), _node_label(nodes[box.members[0]], *details), fillcolor=verdict.value)
        else:
            label = _box_label(box, nodes, shown, judged_at, *details)
            dot.node(_box_id(box), label, fillcolor=verdict.value, peripheries="2")
    edges = {(box_of[id(p)], box_of[id(n)]) for n in nodes for p in n.predecessors}
    for tail, head in sorted(e for e in edges if e[0] != e[1]):
        dot.edge(_box_id(boxes[tail]), _box_id(boxes[head]))
    return dot


def render_to_file(
    output_node: EnrichedNetworkNode,
    path_without_suffix: str | os.PathLike,
    fmt: str = "svg",
    input_res: Resolution = 224,
    max_nodes: int | None = DEFAULT_MAX_NODES,
    **options,
) -> Path:
    """Write the picture to ``<path_without_suffix>.<fmt>`` and return that path.

    The model is named after the file.  ``fmt="dot"`` writes the DOT source and needs no
    GraphViz program; the other formats raise :class:`GraphvizNotFound` without ``dot``.  The
    file appears whole or not at all (written beside, then renamed), so a linter interrupted
    mid-way, or two running in parallel, never leave a truncated picture.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown picture format {fmt!r}; one of {', '.join(FORMATS)}")
    target = Path(f"{os.fspath(path_without_suffix)}.{fmt}")
    graph = visualize_architecture(output_node, target.stem, input_res, max_nodes=max_nodes, **options)
    if fmt == "dot":
        data = graph.source.encode()
    else:
        try:
            data = graph.pipe(format=fmt)
        except graphviz.ExecutableNotFound as error:
            raise GraphvizNotFound() from error
    return write_atomically(target, data)


def picture_name(path: str | os.PathLike, model: str, root: str | os.PathLike | None = None) -> str:
    """``models/resnet.py`` + ``resnet18`` -> ``"resnet.resnet18"``: a file-system-safe name.

    With ``root``, the folders below it are kept (``models.resnet.resnet18``) so that models of
    equally named files in different folders do not overwrite each other's pictures.
    """
    source = Path(path).with_suffix("")
    if root is not None and _is_under(source, root):
        parts = source.resolve().relative_to(Path(root).resolve()).parts
    else:
        parts = (source.name,)
    return re.sub(r"[^A-Za-z0-9._-]+", "_", ".".join((*parts, model))).strip("._") or "model"


def _shown(verdict: Verdict, color_critical: bool, color_border: bool) -> Verdict:
    """The verdict as drawn: the seed's switches turn red, or orange and yellow, to white."""
    if verdict is Verdict.UNPRODUCTIVE and not color_border:
        return Verdict.PRODUCTIVE
    if verdict in (Verdict.CRITICAL, Verdict.BORDER) and not color_critical:
        return Verdict.PRODUCTIVE
    return verdict


def _layout(nodes: Sequence[EnrichedNetworkNode], depth: int | None, max_nodes: int | None) -> list[_Box]:
    """The boxes to draw: one per node, per tree-path prefix at ``depth``, or as ``max_nodes`` allows."""
    if depth is not None:
        return _collapse(nodes, depth)
    boxes = [_Box([i]) for i in range(len(nodes))]
    if max_nodes is None or len(boxes) <= max_nodes:
        return boxes
    deepest = max(_tree_path(n).count(".") + 1 for n in nodes)
    for candidate in range(deepest, 0, -1):
        boxes = _collapse(nodes, candidate)
        if len(boxes) <= max_nodes:
            break
    return boxes


def _collapse(nodes: Sequence[EnrichedNetworkNode], depth: int) -> list[_Box]:
    """Group by the first ``depth`` components of each node's tree path, then merge runs.

    Boxes are in the order of their first member.
    """
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    groups: dict[str, _Box] = {}
    for i, node in enumerate(nodes):
        key = ".".join(_tree_path(node).split(".")[:depth])
        groups.setdefault(key, _Box([], [key])).members.append(i)
    boxes: list[_Box] = []
    for box in groups.values():
        box.signature = tuple(_rf_signature(nodes[i]) for i in box.members)
        if boxes and _repeats(boxes[-1], box):
            boxes[-1].members += box.members
            boxes[-1].keys += box.keys
        else:
            boxes.append(box)
    return boxes


def _tree_path(node: EnrichedNetworkNode) -> str:
    """Where the node sits in the model's module tree: its first module path, else its name.

    The frontends name a functional op after the module whose ``forward`` called it
    (``layer1.0.add``, a second call ``layer1.0.add#2``); hand-built graphs have only names.
    """
    return (node.module_paths[0] if node.module_paths else "") or node.name.partition("#")[0]


def _repeats(run: _Box, box: _Box) -> bool:
    """Whether ``box`` is one more sibling module of the same layers as the run before it."""
    parent = run.keys[0].rpartition(".")[0]
    return box.keys[0].rpartition(".")[0] == parent and box.signature == run.signature


def _rf_signature(node: EnrichedNetworkNode) -> tuple:
    """What makes two layers the same for the receptive field (channel counts do not)."""
    layer = node.layer_info
    return (layer.name, layer.kind, layer.kernel, layer.stride, per_axis(layer.dilation, 1),
            per_axis(layer.upsampling, 1))


def _box_id(box: _Box) -> str:
    return f"n{box.members[0]}"


def _node_label(
    node: EnrichedNetworkNode,
    input_res: Resolution,
    include_rf_info: bool,
    include_fm_info: bool,
    source_root: str | os.PathLike | None,
) -> str:
    layer = node.layer_info
    lines = [layer.name]
    where = _paths(node.module_paths) or node.name
    if where != layer.name:
        lines.append(where)
    if layer.filters is not None:
        lines.append(f"{layer.filters} filters")
    elif layer.units is not None:
        lines.append(f"{layer.units} units")
    if include_rf_info:
        lines.append(f"r(min)={fmt(node.rf_min_per_axis)}, r(max)={fmt(node.rf_max_per_axis)}")
    if include_fm_info and node.has_finite_rf:
        lines.append(f"feature map {_feature_map(node, input_res)}")
    if node.sites:
        lines.append(_site(*node.sites[0], source_root))
    return _plain(lines)


def _box_label(
    box: _Box,
    nodes: Sequence[EnrichedNetworkNode],
    shown: Sequence[Verdict],
    judged_at: set[int],
    input_res: Resolution,
    include_rf_info: bool,
    include_fm_info: bool,
    source_root: str | os.PathLike | None,
) -> str:
    """A collapsed box: its key, then how many of its members the linter judges (convolutions
    and pooling windows, as the legend counts) and their verdicts."""
    members = [nodes[i] for i in box.members]
    lines = [box.keys[0] if len(box.keys) == 1 else f"{box.keys[0]} ... {box.keys[-1]} ×{len(box.keys)}"]
    judged_members = [i for i in box.members if i in judged_at]
    counts = {v: sum(shown[i] is v for i in judged_members) for v in SEVERITY[:3]}
    found = ", ".join(f"{c} {v.name.lower()}" for v, c in counts.items() if c) or "all productive"
    lines.append(f"{_plural(len(judged_members), 'conv/pool layer')} of {len(members)} nodes: {found}"
                 if judged_members else f"{len(members)} nodes, no conv/pool layer")
    if include_rf_info:
        low = _span([n.rf_min_per_axis for n in members])
        high = _span([n.rf_max_per_axis for n in members])
        lines.append(f"r(min)={low}, r(max)={high}")
    finite = [n for n in members if n.has_finite_rf]
    if include_fm_info and finite:
        lines.append(f"feature map {_feature_map(finite[-1], input_res)} (output)")
    lines += _site_spans([n.sites[0] for n in members if n.sites], source_root)
    return _plain(lines)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _legend(model_name: str, input_res: Resolution, boxes: list[_Box], counted: Sequence[Verdict]) -> str:
    """An HTML-like table: the resolution, each colour with its meaning and how many convolution
    and pooling layers have it (the layers the linter judges; the others take the colour of what
    they read, as in RFA-Toolbox's pictures, and are not counted)."""
    rows = [f'<TR><TD COLSPAN="2"><B>{html.escape(model_name)} at {fmt(input_res)}px</B></TD></TR>']
    for verdict in SEVERITY:
        count = sum(v is verdict for v in counted)
        rows.append(
            f'<TR><TD BGCOLOR="{verdict.value}" WIDTH="18"> </TD>'
            f'<TD ALIGN="LEFT">{count} {html.escape(_MEANING[verdict])}</TD></TR>'
        )
    notes = ["counts: convolution and pooling layers",
             "r(min) / r(max): smallest / largest receptive field over all paths, in px"]
    if any(len(b.members) > 1 for b in boxes):
        notes.append("double border: collapsed module, filled with its worst colour")
    rows += [f'<TR><TD COLSPAN="2" ALIGN="LEFT">{html.escape(n)}</TD></TR>' for n in notes]
    return f'<<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" CELLPADDING="3">{"".join(rows)}</TABLE>>'


def _plain(lines: list[str]) -> str:
    """A plain (non-HTML) label: user text taken literally, one line each."""
    return graphviz.nohtml("\\n".join(graphviz.escape(line) for line in lines))


def _paths(paths: Sequence[str]) -> str:
    shown = ", ".join(paths[:2])
    return f"{shown} (+{len(paths) - 2} more)" if len(paths) > 2 else shown


def _span(values: list[PerAxis]) -> str:
    low, high = min(values, key=_sort_key), max(values, key=_sort_key)
    return fmt(low) if low == high else f"{fmt(low)}..{fmt(high)}"


def _sort_key(values: PerAxis) -> tuple:
    return (max(values), tuple(values))


def _feature_map(node: EnrichedNetworkNode, input_res: Resolution) -> str:
    return fmt([max(int(s), 1) for s in per_axis(node.compute_feature_map_size(input_res), 1)])


def _site(path: str, line: int, root: str | os.PathLike | None) -> str:
    return notebook.site(_short(path, root), path, line)


def _site_spans(sites: list[tuple[str, int]], root: str | os.PathLike | None) -> list[str]:
    """``resnet.py:60-75`` per file (``nb.ipynb:cell 4:2-9`` per notebook cell), in order of
    first appearance."""
    lines: dict[str, list[int]] = {}
    for path, line in sites:
        cell, shown = notebook.cell_of(path, line)
        name = _short(path, root)
        lines.setdefault(name if cell is None else f"{name}:cell {cell}", []).append(shown)
    return [
        f"{name}:{min(ls)}" if min(ls) == max(ls) else f"{name}:{min(ls)}-{max(ls)}"
        for name, ls in lines.items()
    ]


def _short(path: str, root: str | os.PathLike | None) -> str:
    if root is not None and _is_under(Path(path), root):
        return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
    return Path(path).name


def _is_under(path: Path, root: str | os.PathLike) -> bool:
    return path.resolve().is_relative_to(Path(root).resolve())
