"""rfa-lint: receptive-field analysis of neural-network models, as a linter.

The public API keeps the seed library's names, call shapes and defaults (``rfa_lint.graphs``,
``rfa_lint.utils.graph_utils``, ``rfa_lint.architectures``, ``rfa_lint.encodings``).  Every name
loads on first use, so ``import rfa_lint`` (which each front door does, flake8's plugin on every
run over any code) imports neither torch nor tensorflow, nor the graph code.
"""

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "EnrichedNetworkNode": "rfa_lint.rf",
    "LayerDefinition": "rfa_lint.rf",
    "input_resolution_range": "rfa_lint.utils.graph_utils",
    "create_graph_from_pytorch_model": "rfa_lint.frontends.torch",
    "create_graph_from_tensorflow_model": "rfa_lint.frontends.keras",
    "visualize_architecture": "rfa_lint.render",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rfa_lint' has no attribute {name!r}")
