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

Node keys used here besides the plain graph's: ``traced`` ({"layer", "in_channels", "offset"},
written by :func:`rfa_lint.explain.edits.editable`) keeps what the trace saw before any edit.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any, Sequence

from rfa_lint.rf.graph import Kind, LayerDefinition, per_axis

Map = tuple[int, ...]


def node_maps(plain: dict[str, Any], resolution: Sequence[int]) -> list[Map | None]:
    """Each node's output map (per axis) with the input at ``resolution``; None without one."""
    nodes, maps = plain["nodes"], []
    found = None if all("traced" in spec for spec in nodes) else offsets(plain)
    for i, spec in enumerate(nodes):
        offset = spec["traced"]["offset"] if found is None else found[i]
        inputs = [maps[p] for p in spec.get("predecessors", ()) if maps[p] is not None]
        maps.append(_output_map(spec, inputs, offset, resolution))
    return maps


def offsets(plain: dict[str, Any]) -> list[Map | None]:
    """Per node, what lies between the map its inputs bring (their broadcast) and the map its
    layer reads, as traced: the padding (``F.pad``) or, below 0, the cropping that no node
    records.  None for a node without maps; 0 for a merge, whose input is its output."""
    nodes = plain["nodes"]
    result: list[Map | None] = []
    for spec in nodes:
        reads = _reads(spec)
        inputs = [nodes[p].get("map_out") for p in spec.get("predecessors", ())]
        brought = reads and _broadcast(inputs, len(reads))
        result.append(tuple(r - b for r, b in zip(reads, brought)) if reads and brought else None)
    return result


def _reads(spec: dict[str, Any]) -> Map | None:
    """The map the node's layer reads as traced: a merge's inputs broadcast to its output."""
    if spec["layer"].get("kind") == Kind.MERGE:
        return tuple(spec["map_out"]) if spec.get("map_out") else None
    return tuple(spec["map_in"]) if spec.get("map_in") else None


def _broadcast(maps: Sequence[Sequence[int] | None], axes: int) -> Map | None:
    """The largest size per axis of the maps there are (a gate's 1x1 spreads over the rest)."""
    known = [_stretch(m, axes) for m in maps if m]
    return tuple(max(axis) for axis in zip(*known)) if known and axes else None


def _output_map(spec: dict[str, Any], inputs: list[Map], offset: Map | None,
                resolution: Sequence[int]) -> Map | None:
    traced_out, traced_in = spec.get("map_out"), _reads(spec)
    if traced_out is None:
        return None
    if not spec.get("predecessors"):
        return tuple(_stretch(resolution, len(traced_out)))
    brought = _broadcast(inputs, len(traced_in or ()))
    if brought is None or offset is None:
        return tuple(traced_out)
    size_in = tuple(max(1, b + o) for b, o in zip(brought, offset))
    before, now = _layers(spec)
    if size_in == traced_in and before == now:
        return tuple(traced_out)
    sides = zip(size_in, traced_in, traced_out)
    return tuple(_side(before, now, axis, *side) for axis, side in enumerate(sides))


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
        positions = Fraction(_positions(maps[i]), _positions(spec.get("map_out")))
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
    now = LayerDefinition.from_dict(spec["layer"])
    traced = spec.get("traced", {}).get("layer")
    return (now if traced is None else LayerDefinition.from_dict(traced)), now


def _area(layer: LayerDefinition) -> int:
    return 1 if layer.is_infinite else math.prod(layer.kernel)


def _positions(size: Sequence[int] | None) -> int:
    return math.prod(size) if size else 1


def _at(values: Sequence, axis: int):
    return values[axis] if len(values) > axis else values[-1]


def _stretch(values: Sequence[int], axes: int) -> list[int]:
    values = list(values)
    return values * axes if len(values) == 1 else values[:axes] + [values[-1]] * (axes - len(values))
