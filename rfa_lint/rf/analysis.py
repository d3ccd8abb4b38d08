"""Receptive-field analysis at an input resolution: the seed's colours and resolution range."""

from __future__ import annotations

import enum
import math
from typing import Sequence

from rfa_lint.rf.graph import EnrichedNetworkNode, Number, PerAxis, broadcast, per_axis

Resolution = Number | Sequence[Number]


class Verdict(enum.Enum):
    """How a layer fares at a resolution; the value is the seed's picture colour."""

    PRODUCTIVE = "white"
    UNPRODUCTIVE = "red"
    CRITICAL = "orange"
    BORDER = "yellow"


def _input_rfs(node: EnrichedNetworkNode) -> list[PerAxis]:
    """Minimum RF of each input; a node without predecessors reads the image (1 pixel)."""
    return [p.rf_min_per_axis for p in node.predecessors] or [(1,)]


def _is_kernel_size_1(node: EnrichedNetworkNode) -> bool:
    return all(k == 1 for k in node.layer_info.kernel)


def classify(
    node: EnrichedNetworkNode, resolution: Resolution, filter_kernel_size_1: bool = False
) -> Verdict:
    """The seed's rules at resolution R, per axis.

    Unproductive: every input already has a minimum RF >= R and the layer's own minimum RF > R
    (all axes).  Critical: not unproductive, own minimum RF > R on all axes.  Border case: on
    some axes only.  ``filter_kernel_size_1`` keeps 1x1 layers from being unproductive.
    """
    res = per_axis(resolution, 1)
    own_res, own = broadcast(res, node.rf_min_per_axis)
    exceeds = [rf > r for rf, r in zip(own, own_res)]
    saturated_inputs = all(
        all(rf >= r for rf, r in zip(*broadcast(inp, res))) for inp in _input_rfs(node)
    )
    if saturated_inputs and all(exceeds) and not (filter_kernel_size_1 and _is_kernel_size_1(node)):
        return Verdict.UNPRODUCTIVE
    if all(exceeds):
        return Verdict.CRITICAL
    if any(exceeds):
        return Verdict.BORDER
    return Verdict.PRODUCTIVE


def kernel_covers_feature_map(node: EnrichedNetworkNode, resolution: Resolution) -> bool:
    """The seed 1.7 code's extra condition: every input feature map fits inside the kernel.

    The input feature map is ``R // stride product`` per axis; such a layer acts like a dense
    layer over its whole input.  The dilated (effective) kernel is what covers the map.
    """
    if node.layer_info.is_infinite:
        return False
    kernel = node.layer_info.effective_kernel
    scales = [p.scale_per_axis for p in node.predecessors] or [(1,)]
    for scale in scales:
        res, s, k = broadcast(per_axis(resolution, 1), scale, kernel)
        if any(ri // si > ki for ri, si, ki in zip(res, s, k)):
            return False
    return True


def productive_from(node: EnrichedNetworkNode) -> PerAxis:
    """The smallest resolution at which the layer is neither unproductive nor critical."""
    return tuple(math.ceil(v) for v in node.rf_min_per_axis)


def _finite(values: PerAxis) -> bool:
    return not any(math.isinf(v) for v in values)


def input_resolution_range(
    graph: EnrichedNetworkNode,
    filter_all_inf_rf: bool = False,
    filter_kernel_size_1: bool = False,
    kernel_fit: bool = False,
    cardinality: int | None = None,
) -> tuple[tuple[Number, ...], tuple[Number, ...]]:
    """((min per axis), (max per axis)) of the resolutions the network uses fully.

    Over the layers whose minimum RF is finite: min is the largest minimum RF (below it some
    layer is critical or unproductive), max the largest maximum RF (above it no layer sees the
    whole image).  ``filter_all_inf_rf`` drops RF sizes with an infinite axis first (for SE
    gates); ``filter_kernel_size_1`` ignores 1x1 layers; ``kernel_fit`` raises the min so that no
    layer's kernel covers its whole feature map (kernel x stride product, as rfa-toolbox 1.7).
    ``cardinality`` is the number of axes reported (default: the graph's).
    """
    nodes = [n for n in graph.all_layers if n.has_finite_rf]
    if not nodes:
        raise ValueError("the graph has no layer with a finite receptive field")
    axes = cardinality or max(len(n.rf_min_per_axis) for n in nodes)
    kernel_bounds = [
        tuple(k * s for k, s in zip(_stretch(n.layer_info.kernel, axes), _stretch(n.scale_per_axis, axes)))
        for n in nodes
    ]
    if filter_kernel_size_1:
        nodes = [n for n in nodes if not _is_kernel_size_1(n)] or nodes
    lows, highs = [], []
    for node in nodes:
        sizes = [i.receptive_field for i in node.receptive_field_info]
        if filter_all_inf_rf:
            sizes = [s for s in sizes if _finite(s)] or sizes
        columns = list(zip(*(_stretch(s, axes) for s in sizes)))
        lows.append(tuple(min(c) for c in columns))
        highs.append(tuple(max(c) for c in columns))
    if kernel_fit:
        lows += kernel_bounds
    r_min = tuple(max(v[a] for v in lows) for a in range(axes))
    r_max = tuple(max(v[a] for v in highs) for a in range(axes))
    return r_min, r_max


def _stretch(values: PerAxis, axes: int) -> PerAxis:
    """``values`` on exactly ``axes`` axes (a single value broadcasts)."""
    return broadcast(values, (0,) * axes)[0]
