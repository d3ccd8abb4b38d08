"""The frontend contract: one layer-handler signature and one plain-graph builder.

Both frontends describe a layer of their dispatch table the same way,
``handler(layer, in_shape, out_shape) -> LayerDefinition``, consult the same registry of the
user's own layer classes first, and record what they find through :class:`PlainGraph`; only how
a live model is walked (torch's trace, keras's recorded calls) and where a framework keeps its
spatial dims differ.  Nothing here imports a framework.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

from rfa_lint.rf.graph import LayerDefinition

#: The spatial sizes of one tensor, one per dim the op runs on (dims ``2:`` of a torch tensor;
#: the dims between batch and channels of a keras tensor, as its ``data_format`` says); None
#: where the size is unknown, ``()`` for a tensor without spatial dims.
Shape = tuple[int | None, ...]

#: A handler turns a layer (a module or a keras layer; for torch's functional ops, the call's
#: arguments) and the spatial sizes of one call's input and output into the layer's RF
#: parameters, one value per dim the op runs on, or one value for all of them.
LayerHandler = Callable[[Any, Shape, Shape], LayerDefinition]

#: Each framework's base class of every layer, by module and name, so that this module can tell
#: a layer class without importing the framework.
_LAYER_BASES = frozenset({("torch.nn.modules.module", "Module"), ("keras.src.ops.operation", "Operation")})

_REGISTERED: dict[type, LayerHandler] = {}


def register_layer_handler(layer_type: type, handler: LayerHandler) -> None:
    """Describe your own layer class (and its subclasses) by ``handler``, in either framework.

    Its layers become single nodes, nothing inside them traced; a registered class comes
    before the frontend's own table (it can redefine a built-in layer).  A torch module is
    described over the input's dims ``2:`` (channels first), a keras layer over its spatial
    dims.  Example: ``register_layer_handler(BlurPool, lambda layer, in_shape, out_shape:
    LayerDefinition("BlurPool", kernel_size=3, stride_size=2, kind="pool"))``.
    """
    if not _is_layer_class(layer_type):
        raise TypeError(
            f"register_layer_handler needs an nn.Module or keras.Layer subclass, got {layer_type!r}"
        )
    _REGISTERED[layer_type] = handler


def registered_handler(layer_type: type) -> LayerHandler | None:
    """The handler registered for exactly ``layer_type`` (frontends walk the MRO themselves, so
    that a registered class and a table class meet in MRO order)."""
    return _REGISTERED.get(layer_type)


def _is_layer_class(layer_type: Any) -> bool:
    return isinstance(layer_type, type) and any(
        (cls.__module__, cls.__qualname__) in _LAYER_BASES for cls in layer_type.__mro__
    )


class PlainGraph:
    """A model's graph as it is recorded: JSON-able nodes in topological order, and the layer
    kinds that change positions in a way the frontend does not model (``unsupported``).

    The node form is :func:`rfa_lint.rf.graph.graph_to_plain`'s plus the traced facts both
    frontends record: ``map_in`` / ``map_out``, ``channels``, ``params`` / ``macs`` / ``pair_macs`` and
    ``spans_map`` (see :func:`rfa_lint.frontends.torch.to_plain`).
    """

    def __init__(self) -> None:
        self.nodes: list[dict[str, Any]] = []
        self.unsupported: list[dict[str, Any]] = []
        self._names: set[str] = set()

    def add(
        self,
        name: str,
        layer: LayerDefinition,
        predecessors: Iterable[int],
        module_paths: Iterable[str],
        sites: Iterable[Sequence],
        map_in: Sequence[int] | None,
        map_out: Sequence[int] | None,
        shift_in: Sequence[int] | None = None,
    ) -> int:
        """A node, by index; ``map_in`` / ``map_out`` are the spatial sizes of its first input
        and of its output (None or empty: no positions); ``shift_in`` how far that input was
        shifted by pads and crops since it was made (None: not at all)."""
        self.nodes.append(
            {
                "name": self._unique(name),
                "layer": layer.to_dict(),
                "predecessors": list(predecessors),
                "module_paths": list(module_paths),
                "sites": [list(site) for site in sites],
                "map_in": list(map_in) if map_in else None,
                "map_out": list(map_out) if map_out else None,
                **({"shift_in": list(shift_in)} if shift_in else {}),
            }
        )
        return len(self.nodes) - 1

    def _unique(self, name: str) -> str:
        """``name``, or ``name#2``, ``name#3``... when taken (a layer called again)."""
        unique, count = name, 1
        while unique in self._names:
            count += 1
            unique = f"{name}#{count}"
        self._names.add(unique)
        return unique

    def has_channels(self, node: int) -> bool:
        return "channels" in self.nodes[node]

    def set_channels(self, node: int, channels: int | None) -> None:
        """The values per position (per sample) of the node's output, when known."""
        if channels is not None:
            self.nodes[node]["channels"] = int(channels)

    def set_costs(self, node: int, params: int, macs: int, pair_macs: int = 0) -> None:
        """The weights the node's layer holds and its multiply-accumulates per sample, of which
        ``pair_macs`` multiply pairs of positions of the whole map (a global attention's queries
        by its keys: they grow with the square of the positions); each left out when zero (most
        nodes hold none)."""
        costs = {"params": params, "macs": macs, "pair_macs": pair_macs}
        self.nodes[node].update({key: int(value) for key, value in costs.items() if value})

    def add_macs(self, node: int, macs: int, pair_macs: int = 0) -> None:
        """Multiply-accumulates per sample of an op that made no node of its own or that adds to
        the node its output belongs to (a product of tensors)."""
        costs = {"macs": macs, "pair_macs": pair_macs}
        for key, value in costs.items():
            if value:
                self.nodes[node][key] = self.nodes[node].get(key, 0) + int(value)

    def mark_spans_map(self, node: int) -> None:
        """An unpadded kernel as large as its input map: the core decides whether it is a
        dense head (:func:`rfa_lint.rf.graph.dense_heads`)."""
        self.nodes[node]["spans_map"] = True

    def report(self, kind: str, module_paths: Iterable[str], sites: Iterable[Sequence]) -> None:
        """A layer kind not modelled, listed once per kind and place."""
        entry = {"type": kind, "module_paths": list(module_paths), "sites": [list(s) for s in sites]}
        if entry not in self.unsupported:
            self.unsupported.append(entry)

    def to_dict(self, output: int, input_shape: list, mode: str, params: int | None = None) -> dict[str, Any]:
        """The plain graph: nodes, the index of the output node, what is unsupported, the input
        shape and mode (``"eval"`` / ``"train"``) the model was traced with, and ``params``: every
        weight of the model, counted where it was built (its layers' sum misses class tokens and
        position embeddings)."""
        plain = {
            "nodes": self.nodes,
            "output": output,
            "unsupported": self.unsupported,
            "input_shape": input_shape,
            "mode": mode,
        }
        return plain if params is None else {**plain, "params": int(params)}
