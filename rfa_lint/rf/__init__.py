"""The receptive-field core: pure Python, imports neither torch nor tensorflow."""

from rfa_lint.rf.analysis import (
    Verdict,
    classify,
    input_feature_map,
    input_resolution_range,
    kernel_covers_feature_map,
    kernel_fit_from,
    productive_from,
)
from rfa_lint.rf.graph import (
    EnrichedNetworkNode,
    Kind,
    LayerDefinition,
    ReceptiveFieldInfo,
    graph_from_plain,
    graph_to_plain,
)

__all__ = [
    "EnrichedNetworkNode",
    "Kind",
    "LayerDefinition",
    "ReceptiveFieldInfo",
    "Verdict",
    "classify",
    "graph_from_plain",
    "graph_to_plain",
    "input_feature_map",
    "input_resolution_range",
    "kernel_covers_feature_map",
    "kernel_fit_from",
    "productive_from",
]
