"""The seed library's ``rfa_toolbox.graphs`` names, so hand-built graphs port by one import."""

from rfa_lint.rf.graph import EnrichedNetworkNode, LayerDefinition, ReceptiveFieldInfo

__all__ = ["EnrichedNetworkNode", "LayerDefinition", "ReceptiveFieldInfo"]
