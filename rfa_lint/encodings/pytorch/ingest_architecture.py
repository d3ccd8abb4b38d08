"""The seed's ``rfa_toolbox.encodings.pytorch.ingest_architecture`` names.

The seed parsed a ``torch.jit.trace`` graph; rfa-lint traces the live model instead, so
``make_graph`` needs the model itself (``ref_mod``) and does not read the JIT module.
"""

from __future__ import annotations

from typing import Any, Iterable

from torch import nn

from rfa_lint.frontends.torch import create_graph_from_pytorch_model as create_graph_from_model
from rfa_lint.rf.graph import InfoFilter

from .intermediate_graph import Digraph

__all__ = ["Digraph", "create_graph_from_model", "make_graph"]


def make_graph(
    traced_module: Any,
    *,
    ref_mod: nn.Module | None = None,
    classes_to_not_visit: Iterable[str] | None = None,
    filter_rf: str | InfoFilter | None = None,
) -> Digraph:
    """A :class:`Digraph` of ``ref_mod`` (the model the JIT module was traced from);
    ``classes_to_not_visit`` are the seed's custom layers (single layers, not traced into)."""
    if ref_mod is None:
        raise TypeError("rfa-lint traces the live model: pass make_graph(..., ref_mod=model)")
    return Digraph(ref_mod, filter_rf=filter_rf, custom_layers=tuple(classes_to_not_visit or ()))
