"""Receptive-field analysis at an input resolution: the seed's colours and resolution range."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Sequence

from rfa_lint.rf.axes import Number, PerAxis, broadcast, per_axis
from rfa_lint.rf.graph import EnrichedNetworkNode, Kind
from rfa_lint.rf.verdict import Resolution, RFProvider, Verdict, classify, input_rfs, kernel_size_1

__all__ = [  # the verdicts are this module's for callers, kept apart for the graph's sake
    "JUDGED_KINDS", "RFProvider", "Resolution", "Verdict", "classify", "has_window", "input_feature_map",
    "input_resolution_range", "input_rf", "judged", "kernel_covers_feature_map", "kernel_fit_from",
    "productive_from", "unproductive_below",
]


def input_rf(node: EnrichedNetworkNode, resolution: Resolution | None = None) -> PerAxis:
    """Per axis, the least any input of the layer sees: the RF the verdicts at ``resolution``
    judge its input by (the traced size's minimum without one)."""
    return tuple(min(axis) for axis in zip(*broadcast(*input_rfs(node, resolution=resolution))))


#: Layers with a kernel: the verdicts are about them; pass-through layers, merges and heads
#: only carry what they read.
JUDGED_KINDS = (Kind.CONV, Kind.POOL)


def judged(node: EnrichedNetworkNode) -> bool:
    """A conv or pool with a finite RF, the layers the linter reports and pictures count; a pool
    that reads one position per output (AvgPool2d(1), an adaptive pool to the size it gets) is
    no window, whatever its input sees."""
    info = node.layer_info
    if info.kind not in JUDGED_KINDS or not node.has_finite_rf:
        return False
    return info.kind != Kind.POOL or any(k > 1 for k in info.effective_kernel)


def has_window(graph: EnrichedNetworkNode) -> bool:
    """Whether some judged layer reads more than one position per output on some axis.  Without
    one (activations, norms, 1x1 projections, dense layers, a model traced without spatial
    axes) each output reads its own position, or everything: the model has no productive range
    for a resolution to be outside of."""
    return any(judged(n) and any(k > 1 for k in n.layer_info.effective_kernel) for n in graph.all_layers)


def input_feature_map(
    node: EnrichedNetworkNode, resolution: Resolution, feature_map: Sequence[int] | None = None
) -> PerAxis:
    """The map the layer's kernel runs on, per axis: ``feature_map`` (the traced input size)
    when given, else estimated as ``ceil(R / stride product)``, the largest over its inputs.

    The one place that says which map size a layer sees, for the checks and for messages.
    """
    if feature_map is not None:
        return tuple(feature_map)
    maps = [per_axis(p.compute_feature_map_size(resolution), 1) for p in node.predecessors]
    return tuple(max(axis) for axis in zip(*broadcast(*maps or [per_axis(resolution, 1)])))


def kernel_covers_feature_map(
    node: EnrichedNetworkNode, resolution: Resolution, feature_map: Sequence[int] | None = None
) -> bool:
    """The seed 1.7 code's extra condition: the (dilated) kernel covers the whole input map.

    Such a layer acts like a dense layer over its input.  The map is
    :func:`input_feature_map`'s.  A layer whose kernel is 1 on every axis never counts: it
    covers a 1-pixel map without wasting anything (1x1 convs, no-op pools such as AvgPool2d(1)).
    """
    kernel = node.layer_info.effective_kernel
    if node.layer_info.is_infinite or all(k == 1 for k in kernel):
        return False
    fmap, kernel = broadcast(input_feature_map(node, resolution, feature_map), kernel)
    return all(m <= k for m, k in zip(fmap, kernel))


def kernel_fit_from(node: EnrichedNetworkNode) -> PerAxis:
    """Per axis, the smallest resolution whose estimated input map outgrows the kernel there;
    the kernel stops covering the map once any axis reaches its value.

    ``ceil(R / s) > k`` holds from ``R = floor(k * s) + 1`` on, ``s`` the smallest input stride
    product (the largest map).  This is the hint a message gives (RFA104's "needs N px").
    """
    scales = [p.scale_per_axis for p in node.predecessors] or [(1,)]
    scale = tuple(min(axis) for axis in zip(*broadcast(*scales)))
    kernel, scale = broadcast(node.layer_info.effective_kernel, scale)
    return tuple(math.floor(k * s) + 1 for k, s in zip(kernel, scale))


def productive_from(node: EnrichedNetworkNode) -> PerAxis:
    """The smallest resolution at which the layer is neither unproductive nor critical (by the
    minimum that holds at any size, the range's)."""
    return tuple(math.ceil(v) for v in node.range_min_per_axis)


def input_resolution_range(
    graph: EnrichedNetworkNode,
    filter_all_inf_rf: bool = True,
    filter_kernel_size_1: bool = False,
    cardinality: int | None = None,
    lower_bound: bool = False,
    kernel_fit: bool = False,
) -> tuple[tuple[Number, ...], tuple[Number, ...]]:
    """((min per axis), (max per axis)) of the resolutions the network uses fully.

    Over the layers whose minimum RF is finite: min is the largest minimum RF (below it some
    layer is critical or unproductive), max the largest maximum RF (above it no layer sees the
    whole image), both from the exact windows where the sizes were traced, on maps large enough
    to show them whole (``range_min_per_axis`` / ``range_max_per_axis`` of
    :class:`~rfa_lint.rf.graph.EnrichedNetworkNode`: the path formula where padding cut every
    window at the traced size).
    ``filter_all_inf_rf`` (on by default, as in the seed's code) takes the maximum
    over the paths that do not see everything, so that an SE gate's global context does not
    make it infinite.  Global attention is different: a layer of kind ``attention`` with an
    infinite kernel sees the whole image at any size, so the max is infinite on every axis.
    ``filter_kernel_size_1`` ignores 1x1 layers.  ``lower_bound`` makes min the smallest
    resolution at which no layer with a window (kernel above 1) is unproductive
    (:func:`unproductive_below`), which critical layers may still be.  ``kernel_fit`` also adds
    rfa-toolbox 1.7's bound, kernel x the stride product after the layer, to compare with it;
    it is not where kernels stop covering their maps (that is :func:`kernel_fit_from`, the
    RFA104 check).  The arguments come in the seed's order;
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
        nodes = [n for n in nodes if not kernel_size_1(n)] or nodes
    lows = [_stretch(n.range_min_per_axis, axes) for n in nodes]
    highs = [_stretch(_largest(n, filter_all_inf_rf), axes) for n in nodes]
    if lower_bound:
        windows = [n for n in nodes if not n.layer_info.is_infinite and not kernel_size_1(n)]
        lows = [_stretch(unproductive_below(n), axes) for n in windows] or [(1,) * axes]
    if kernel_fit:
        lows += kernel_bounds
    if _mixes_all_positions(graph):
        highs.append((math.inf,) * axes)
    r_min = tuple(_plain_number(max(v[a] for v in lows)) for a in range(axes))
    r_max = tuple(_plain_number(max(v[a] for v in highs)) for a in range(axes))
    return r_min, r_max


def _largest(node: EnrichedNetworkNode, finite: bool) -> PerAxis:
    """The largest RF of a node for the range: its local paths' (on maps large enough to show
    it whole), or infinite where a global layer feeds it unless ``finite``."""
    if finite:
        return node.range_max_per_axis
    local, high = broadcast(node.range_max_per_axis, node.rf_max_per_axis)
    return tuple(h if math.isinf(h) else v for v, h in zip(local, high))


def unproductive_below(node: EnrichedNetworkNode) -> PerAxis:
    """Per axis, the smallest resolution from which :func:`classify` no longer finds the layer
    unproductive: one pixel more than its least-seeing input (then that input is no longer
    saturated), or its own minimum RF if smaller (then it no longer exceeds the image); the
    minima that hold at any size (the range's)."""
    inputs = [p.range_min_per_axis for p in node.predecessors] or [(1,)]
    *inputs, own = broadcast(*inputs, node.range_min_per_axis)
    least = tuple(min(axis) for axis in zip(*inputs))
    return tuple(min(_above(i), math.ceil(o)) for i, o in zip(least, own))


def _above(value: Number) -> Number:
    """The smallest whole number greater than ``value`` (infinity stays infinite)."""
    return value if math.isinf(value) else math.floor(value) + 1


def _mixes_all_positions(graph: EnrichedNetworkNode) -> bool:
    """Global mixing that the network goes on from with positions: attention over all of them,
    an MLP-Mixer's token mixing (positions folded into features, then back to the map), an
    autoencoder's dense bottleneck.  The model has no largest resolution then.  A global pool,
    a flatten, a dense head or an SE gate (a single position, broadcast) do not count.
    """
    return any(
        n.layer_info.is_infinite and (n.layer_info.kind == Kind.ATTENTION or _positions_after(n))
        for n in graph.all_layers
    )


def _positions_after(node: EnrichedNetworkNode) -> bool:
    """Whether a map of several positions comes out of ``node``, or out of the layers after it
    while its output has no map of its own (positions folded into features)."""
    todo, seen = [node], set()
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if current.map_out is not None:
            if math.prod(current.map_out) > 1:
                return True
            continue  # one position: a pooled summary, broadcast where it is used
        todo += current.successors
    return False


def _plain_number(value: Number) -> Number:
    """A whole Fraction as an int (an interpolation by 8/7 leaves ``Fraction(235, 1)``)."""
    return int(value) if isinstance(value, Fraction) and value.denominator == 1 else value


def _stretch(values: PerAxis, axes: int) -> PerAxis:
    """``values`` on exactly ``axes`` axes (a single value broadcasts)."""
    return broadcast(values, (0,) * axes)[0]
