"""Feature-map sizes and multiply-accumulates of a plain graph at a resolution, edited or not.

The frontends record each node's map sizes, ``channels`` and ``macs`` (of which ``pair_macs``
multiply an attention's queries by its keys) from the shapes of the node's own inputs at the
traced size.  An edit (a stride set to 1, a smaller kernel, a pooling layer dropped, a cut)
changes the map sizes downstream, so they are walked again from the input: a node's input is
the broadcast of what its inputs bring now (a squeeze-excitation gate's 1x1 map never shrinks
the map it scales), plus the padding or cropping traced between them (:func:`offsets`); each
layer keeps the padding it had when traced (read off its traced sizes), and a layer whose kernel
shrank keeps its output size as a "same" convolution does (the padding shrinks with the kernel,
as :mod:`.diff` writes it).  A layer's MACs then scale with its output positions, its kernel
area and its input channels; the query-key products of a global attention (``pair_macs``) with
the square of its positions.  Unedited, at the traced resolution, every number is the traced one.

Node keys used here besides the plain graph's: ``traced`` ({"layer", "map_in", "map_out",
"in_channels", "offset"}, written by :func:`rfa_lint.explain.edits.editable`) keeps what the
trace saw before any edit; :func:`remapped` gives an edited graph the maps it has now.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any, Sequence

from rfa_lint.rf.graph import Kind, LayerDefinition, per_axis

Map = tuple[int, ...]


def node_maps(plain: dict[str, Any], resolution: Sequence[int]) -> list[Map | None]:
    """Each node's output map (per axis) with the input at ``resolution``; None without one."""
    return [out for _, out in _walk(plain, resolution)]


def remapped(plain: dict[str, Any], resolution: Sequence[int]) -> dict[str, Any]:
    """An edited graph as the receptive-field core must read it: each node's maps as walked at
    ``resolution``, and an edited layer without the exact reads its frontend gave for the
    traced geometry (its new geometry says them).  Costs still scale from what was traced."""
    nodes = []
    for spec, (size_in, size_out) in zip(plain["nodes"], _walk(plain, resolution)):
        layer = spec["layer"]
        if layer != _traced(spec, "layer"):
            layer = {key: value for key, value in layer.items() if key != "reads"}
        maps = {"map_in": size_in and list(size_in), "map_out": size_out and list(size_out)}
        nodes.append({**spec, "layer": layer, **maps})
    return {**plain, "nodes": nodes}


def _walk(plain: dict[str, Any], resolution: Sequence[int]) -> list[tuple[Map | None, Map | None]]:
    """(the map each node's layer reads, its output map) with the input at ``resolution``."""
    nodes, walked = plain["nodes"], []
    found = None if all("traced" in spec for spec in nodes) else offsets(plain)
    for i, spec in enumerate(nodes):
        offset = spec["traced"]["offset"] if found is None else found[i]
        inputs = [walked[p][1] for p in spec.get("predecessors", ()) if walked[p][1] is not None]
        walked.append(_output_map(spec, inputs, offset, resolution))
    return walked


def offsets(plain: dict[str, Any]) -> list[Map | None]:
    """Per node, what lies between the map its inputs bring (their broadcast) and the map its
    layer reads, as traced: the padding (``F.pad``) or, below 0, the cropping that no node
    records.  None for a node without maps; 0 for a merge, whose input is its output."""
    nodes = plain["nodes"]
    result: list[Map | None] = []
    for spec in nodes:
        reads = _reads(spec)
        inputs = [_traced(nodes[p], "map_out") for p in spec.get("predecessors", ())]
        brought = reads and _broadcast(inputs, len(reads))
        result.append(tuple(r - b for r, b in zip(reads, brought)) if reads and brought else None)
    return result


def _traced(spec: dict[str, Any], key: str) -> Any:
    """What the trace saw of a node: kept under ``traced`` once the graph is edited."""
    return spec["traced"][key] if "traced" in spec else spec.get(key)


def _reads(spec: dict[str, Any]) -> Map | None:
    """The map the node's layer reads as traced: a merge's inputs broadcast to its output."""
    key = "map_out" if spec["layer"].get("kind") == Kind.MERGE else "map_in"
    size = _traced(spec, key)
    return tuple(size) if size else None


def _broadcast(maps: Sequence[Sequence[int] | None], axes: int) -> Map | None:
    """The largest size per axis of the maps there are (a gate's 1x1 spreads over the rest)."""
    known = [_stretch(m, axes) for m in maps if m]
    return tuple(max(axis) for axis in zip(*known)) if known and axes else None


def _output_map(spec: dict[str, Any], inputs: list[Map], offset: Map | None,
                resolution: Sequence[int]) -> tuple[Map | None, Map | None]:
    """(the map the node's layer reads, its output map) for inputs of ``inputs``."""
    traced_out, traced_in = _traced(spec, "map_out"), _reads(spec)
    if traced_out is None:
        return None, None
    if not spec.get("predecessors"):
        return None, tuple(_stretch(resolution, len(traced_out)))
    brought = _broadcast(inputs, len(traced_in or ()))
    if brought is None or offset is None:
        return traced_in, tuple(traced_out)
    size_in = tuple(max(1, b + o) for b, o in zip(brought, offset))
    before, now = _layers(spec)
    if size_in == traced_in and before == now:
        return size_in, tuple(traced_out)
    sides = zip(size_in, traced_in, traced_out)
    return size_in, tuple(_side(before, now, axis, *side) for axis, side in enumerate(sides))


def _side(before: LayerDefinition, now: LayerDefinition, axis: int, size: int, traced_in: int,
          traced_out: int) -> int:
    """One axis of a layer's output for an input of ``size`` (traced: ``traced_in`` -> ``traced_out``).

    A window of ``k`` positions, stride ``s`` and total padding ``p`` gives
    ``floor((size + p - k) / s) + 1``; ``p`` is the largest padding (at most ``2 * (k // 2)``)
    that gives the traced sizes.  Layers sized by their output (adaptive pooling, global
    pooling) keep it, a global attention keeps its queries' map; a layer on a finer or
    fractional grid scales with its input.
    """
    if before.is_infinite and traced_in == traced_out:  # a global attention: on its queries' map
        return size
    if before.is_infinite or before.name.startswith("Adaptive"):
        return traced_out
    geometry = (before.effective_kernel, before.stride, per_axis(before.upsampling, 1))
    k, s, u = (_at(values, axis) for values in geometry)
    if u != 1 or s != int(s):
        return max(1, round(traced_out * Fraction(size, traced_in)))
    s = int(s)
    least = (traced_out - 1) * s + k - traced_in
    padding = max(least, min(least + s - 1, 2 * (k // 2)))
    k_now, s_now = _at(now.effective_kernel, axis), int(_at(now.stride, axis))
    padding -= k - k_now  # a smaller kernel keeps the output size: "same" stays "same"
    return max(1, (size + padding - k_now) // s_now + 1)


def node_macs(plain: dict[str, Any], resolution: Sequence[int]) -> list[int]:
    """Each node's multiply-accumulates per sample with the input at ``resolution``."""
    maps, channels = node_maps(plain, resolution), _channels(plain)
    result = []
    for i, spec in enumerate(plain["nodes"]):
        traced = spec.get("macs", 0)
        if not traced:
            result.append(0)
            continue
        before, now = _layers(spec)
        positions = Fraction(_positions(maps[i]), _positions(_traced(spec, "map_out")))
        scale = Fraction(_area(now), _area(before))
        preds = spec.get("predecessors", ())
        traced_in = spec.get("traced", {}).get("in_channels")
        if preds and traced_in and channels[preds[0]]:
            scale *= Fraction(channels[preds[0]]) / traced_in
        pairs = spec.get("pair_macs", 0)  # queries by keys, both every position of the map
        result.append(round((traced - pairs + pairs * positions) * positions * scale))
    return result


def total_macs(plain: dict[str, Any], resolution: Sequence[int]) -> int:
    return sum(node_macs(plain, resolution))


def _channels(plain: dict[str, Any]) -> list[Fraction | None]:
    """Each node's output channels after the edits: a layer with filters or units keeps its own;
    any other follows its first input's (a cut gives the head fewer)."""
    result: list[Fraction | None] = []
    for spec in plain["nodes"]:
        own, preds = spec.get("channels"), spec.get("predecessors", ())
        layer, traced_in = spec["layer"], spec.get("traced", {}).get("in_channels")
        if own is None or not preds or layer.get("filters") or layer.get("units"):
            result.append(None if own is None else Fraction(own))
        elif traced_in and result[preds[0]] is not None:
            result.append(Fraction(own) * result[preds[0]] / traced_in)
        else:
            result.append(Fraction(own))
    return result


def _layers(spec: dict[str, Any]) -> tuple[LayerDefinition, LayerDefinition]:
    """(the layer as traced, the layer now)."""
    return LayerDefinition.from_dict(_traced(spec, "layer")), LayerDefinition.from_dict(spec["layer"])


def _area(layer: LayerDefinition) -> int:
    return 1 if layer.is_infinite else math.prod(layer.kernel)


def _positions(size: Sequence[int] | None) -> int:
    return math.prod(size) if size else 1


def _at(values: Sequence, axis: int):
    return values[axis] if len(values) > axis else values[-1]


def _stretch(values: Sequence[int], axes: int) -> list[int]:
    values = list(values)
    return values * axes if len(values) == 1 else values[:axes] + [values[-1]] * (axes - len(values))
