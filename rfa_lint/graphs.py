"""The seed library's ``rfa_toolbox.graphs`` names, so hand-built graphs port by one import."""

from rfa_lint.rf.graph import (
    KNOWN_FILTER_MAPPING,
    EnrichedNetworkNode,
    LayerDefinition,
    ReceptiveFieldInfo,
    filter_all_rf_info_with_infinite_receptive_field,
    naive_minmax_filter,
    noop_filter,
    receptive_field_provider,
    receptive_field_provider_with_1x1_handling,
)

__all__ = [
    "KNOWN_FILTER_MAPPING",
    "EnrichedNetworkNode",
    "LayerDefinition",
    "ReceptiveFieldInfo",
    "filter_all_rf_info_with_infinite_receptive_field",
    "naive_minmax_filter",
    "noop_filter",
    "receptive_field_provider",
    "receptive_field_provider_with_1x1_handling",
]
