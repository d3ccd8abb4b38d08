"""The seed's colours: how a layer fares at an input resolution, from its minimum RF and its
inputs'.  Apart from the graph so that a node can answer the seed's ``is_border`` without the
graph module importing the analysis built on it."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any, Callable, Sequence

from rfa_lint.rf.axes import Number, PerAxis, broadcast, per_axis

if TYPE_CHECKING:
    from rfa_lint.rf.graph import EnrichedNetworkNode

Resolution = Number | Sequence[Number]
RFProvider = Callable[["EnrichedNetworkNode"], Any]


class Verdict(enum.Enum):
    """How a layer fares at a resolution; the value is the seed's picture colour."""

    PRODUCTIVE = "white"
    UNPRODUCTIVE = "red"
    CRITICAL = "orange"
    BORDER = "yellow"


def input_rfs(node: EnrichedNetworkNode, provider: RFProvider | None = None,
              resolution: Resolution | None = None) -> list[PerAxis]:
    """The RF each input is judged by (its minimum at ``resolution``, see
    :meth:`~rfa_lint.rf.graph.EnrichedNetworkNode.rf_min_at`, or what ``provider`` says); a
    node without predecessors reads the image, whose RF is 1 pixel, so it is never saturated
    above 1px."""
    if provider is None:
        return [p.rf_min_per_axis if resolution is None else p.rf_min_at(resolution)
                for p in node.predecessors] or [(1,)]
    return [per_axis(provider(p), 1) for p in node.predecessors] or [(1,)]


def kernel_size_1(node: EnrichedNetworkNode) -> bool:
    return all(k == 1 for k in node.layer_info.kernel)


def classify(
    node: EnrichedNetworkNode,
    resolution: Resolution,
    filter_kernel_size_1: bool = False,
    receptive_field_provider: RFProvider | None = None,
) -> Verdict:
    """The seed's rules at resolution R, per axis.

    Unproductive: every input already has a minimum RF >= R and the layer's own minimum RF > R
    (all axes).  Critical: not unproductive, own minimum RF > R on all axes.  Border case: on
    some axes only.  ``filter_kernel_size_1`` keeps 1x1 layers from being unproductive;
    ``receptive_field_provider`` (the seed's) gives the RF an input is judged by instead of its
    minimum.  The minima are those at the traced size when the graph was traced at R, else the
    ones that hold at any size (a graph traced at 16px judged at 76px).
    """
    res = per_axis(resolution, 1)
    own_res, own = broadcast(res, node.rf_min_at(resolution))
    exceeds = [rf > r for rf, r in zip(own, own_res)]
    saturated_inputs = all(
        all(rf >= r for rf, r in zip(*broadcast(inp, res)))
        for inp in input_rfs(node, receptive_field_provider, resolution)
    )
    if saturated_inputs and all(exceeds) and not (filter_kernel_size_1 and kernel_size_1(node)):
        return Verdict.UNPRODUCTIVE
    if all(exceeds):
        return Verdict.CRITICAL
    if any(exceeds):
        return Verdict.BORDER
    return Verdict.PRODUCTIVE
