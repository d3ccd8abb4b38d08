"""Feature-map sizes and multiply-accumulates of a plain graph at a resolution, edited or not.

The frontends record each node's map sizes, ``channels`` and ``macs`` at the traced shape.  An
edit (a stride set to 1, a smaller kernel, a pooling layer dropped, a cut) changes the map sizes
downstream, so they are walked again from the input: each layer keeps the padding it had when
traced (read off its traced sizes), and a layer whose kernel shrank keeps its output size as a
"same" convolution does (the padding shrinks with the kernel, as :mod:`.diff` writes it).  A
layer's MACs then scale with its output positions, its kernel area and its input channels.
Unedited, at the traced resolution, every number is the traced one.

Node keys used here besides the plain graph's: ``traced`` ({"layer", "in_channels"}, written by
:func:`rfa_lint.explain.edits.editable`) keeps what the trace saw before any edit.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any, Sequence

from rfa_lint.rf.graph import LayerDefinition, per_axis

Map = tuple[int, ...]


def node_maps(plain: dict[str, Any], resolution: Sequence[int]) -> list[Map | None]:
    """Each node's output map (per axis) with the input at ``resolution``; None without one."""
    maps: list[Map | None] = []
    for spec in plain["nodes"]:
        inputs = [maps[p] for p in spec.get("predecessors", ()) if maps[p] is not None]
        maps.append(_output_map(spec, inputs, resolution))
    return maps


def _output_map(spec: dict[str, Any], inputs: list[Map], resolution: Sequence[int]) -> Map | None:
    traced_out, traced_in = spec.get("map_out"), spec.get("map_in")
    if traced_out is None:
        return None
    if not spec.get("predecessors"):
        return tuple(_stretch(resolution, len(traced_out)))
    if not inputs or traced_in is None:
        return tuple(traced_out)
    size_in = tuple(max(axis) for axis in zip(*(_stretch(m, len(traced_in)) for m in inputs)))
    before, now = _layers(spec)
    if size_in == tuple(traced_in) and before == now:
        return tuple(traced_out)
    sides = zip(size_in, traced_in, traced_out)
    return tuple(_side(before, now, axis, *side) for axis, side in enumerate(sides))


def _side(before: LayerDefinition, now: LayerDefinition, axis: int, size: int, traced_in: int,
          traced_out: int) -> int:
    """One axis of a layer's output for an input of ``size`` (traced: ``traced_in`` -> ``traced_out``).

    A window of ``k`` positions, stride ``s`` and total padding ``p`` gives
    ``floor((size + p - k) / s) + 1``; ``p`` is the largest padding (at most ``2 * (k // 2)``)
    that gives the traced sizes.  Layers sized by their output (adaptive pooling, global
    layers) keep it; a layer on a finer or fractional grid scales with its input.
    """
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
        scale = Fraction(_positions(maps[i]), _positions(spec.get("map_out")))
        scale *= Fraction(_area(now), _area(before))
        preds = spec.get("predecessors", ())
        traced_in = spec.get("traced", {}).get("in_channels")
        if preds and traced_in and channels[preds[0]]:
            scale *= Fraction(channels[preds[0]]) / traced_in
        result.append(round(traced * scale))
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
