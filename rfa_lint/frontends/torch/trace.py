"""The trace: run ``forward`` once on a meta tensor and record the graph of what it did.

Forward hooks see the modules of the dispatch table (:mod:`.table`) as single layers; a
``TorchFunctionMode`` sees every other torch call (:mod:`.ops`), so functional ops, tensor
arithmetic and Python control flow follow the real data flow at the traced size.  Each traced
tensor carries the node that produced it and its :mod:`.layout` (which dims hold which
positions), so layers read the dims they act on by kind, never by matching sizes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import sys
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten, tree_map

from rfa_lint.frontends import InputsUnknown, TraceError
from rfa_lint.frontends.base import PlainGraph
from rfa_lint.rf.graph import (
    EnrichedNetworkNode, Kind, LayerDefinition, broadcast, graph_from_plain, per_axis,
)

from . import layout as L
from . import ops
from .layout import Layout
from .sites import Site, sites_of, user_file, user_stack
from .table import (
    FUNCTIONAL_FORMS, Entry, label, multiply_accumulates, parameters, table_entry, token_dim,
    unpadded,
)
from .weights import needs_values

_TRACE_SIZES = (224, 299, 256, 399, 512, 128, 64, 32, 384, 448, 336, 518, 240, 288, 320)
#: lengths tried last on a model of one spatial axis (samples of audio, steps of a signal)
_SEQUENCE_SIZES = (1024, 4096, 16384, 65536)
_VIDEO_FRAMES = 16
#: the length of a sequence input made for a model (conditioning: no position of the image)
_TOKENS = 8
_IMAGE_CHANNELS = 3
_MODES = (("eval", 1), ("train", 2))


@dataclass(frozen=True)
class _Flow:
    """What the trace knows about a tensor: its producing node and where its positions are
    (None when an op not modelled scrambled them)."""

    node: int
    layout: Layout | None


def _tensors(tree: Any) -> list[Tensor]:
    return [leaf for leaf in tree_flatten(tree)[0] if isinstance(leaf, Tensor)]


_GETTERS = {getattr(Tensor, name).__get__: name for name in ("T", "mT", "H", "mH")}


def _op_name(func: Callable) -> str:
    return _GETTERS.get(func) or getattr(func, "__name__", type(func).__name__).strip("_")


def _placed(layer: LayerDefinition, dim_axes: Sequence[int | None], axes: int) -> LayerDefinition:
    """A layer described over the op's spatial dims, on the model's axes (1 where it does not
    run: a Conv1d over the rows of a 2-D map has kernel (k, 1))."""
    if layer.is_infinite or not axes:
        return layer
    n = len(dim_axes)

    def place(values: tuple, fill: Any = 1) -> tuple:
        if len(values) not in (1, n):
            return values
        values = values * n if len(values) == 1 else values
        out = [fill] * axes
        for value, axis in zip(values, dim_axes):
            if axis is not None:
                out[axis] = value
        return tuple(out)

    return dataclasses.replace(
        layer,
        kernel_size=place(layer.kernel),
        stride_size=place(layer.stride),
        dilation=place(per_axis(layer.dilation, 1)),
        upsampling=place(per_axis(layer.upsampling, 1)),
        reads=layer.reads and place(layer.reads, None),
    )


def _pointwise(layer: LayerDefinition) -> bool:
    """A window of one position, moved one position at a time (a 1x1 conv, a pool of 1)."""
    return not layer.is_infinite and all(k == 1 for k in layer.effective_kernel) and all(
        s == 1 for s in layer.stride) and all(u == 1 for u in per_axis(layer.upsampling, 1))


def _spans_its_map(layer: LayerDefinition, module: Any, x: Tensor, y: Tensor, runs: list[L.Run]) -> bool:
    """A conv or pool whose unpadded (dilated) kernel spans its whole input map on every axis
    with positions, to one output position (VGG's fc6 as a 7x7 conv on 7x7,
    ``F.avg_pool2d(x, x.size(2))``): marked ``spans_map``, a dense head where no window follows
    (:func:`rfa_lint.rf.graph.dense_heads`).  Kernels of 1 stay per-position layers."""
    if layer.kind not in (Kind.CONV, Kind.POOL) or layer.is_infinite or not unpadded(module):
        return False
    if any(u != 1 for u in per_axis(layer.upsampling, 1)):
        return False
    on = [d for d, (axis, _) in enumerate(runs) if axis is not None]
    kernel = layer.effective_kernel
    kernel = kernel * len(runs) if len(kernel) == 1 else kernel
    if not on or all(kernel[d] == 1 for d in on):
        return False
    rows = [math.prod(f.count for f in outer) for _, outer in runs]
    return all(kernel[d] * rows[d] >= x.shape[2 + d] and y.shape[2 + d] == rows[d] for d in on)


#: The kind of a node that mixes positions, by how the op reads them: (finite, global).
_MIXING_KINDS: dict[ops.Mixer, tuple[Kind, Kind]] = {
    "attention": (Kind.ATTENTION, Kind.ATTENTION),
    "pool": (Kind.POOL, Kind.GLOBAL),  # a reduction
    "dense": (Kind.CONV, Kind.DENSE),  # a Linear over window offsets is a convolution; over all, a head
    "fold": (Kind.RESIZE, Kind.DENSE),  # positions folded into channels before a conv (space-to-depth)
}


def _mixing_layer(name: str, mix: L.Mixing, mixer: ops.Mixer, **extra: Any) -> LayerDefinition:
    """The node of an op that mixes positions (see :data:`_MIXING_KINDS`)."""
    finite, infinite = _MIXING_KINDS[mixer]
    if mix.kernel is None:
        return LayerDefinition(name, kernel_size=None, kind=infinite, **extra)
    return LayerDefinition(
        name, kernel_size=mix.kernel, dilation=mix.dilation, stride_size=mix.stride, kind=finite, **extra
    )


class _Recorder(TorchFunctionMode):
    """Records one forward pass as graph nodes in creation (topological) order."""

    def __init__(self, model: nn.Module, input_shape: tuple[int, ...],
                 inputs: Mapping[str, Any] | None = None, real: bool = False) -> None:
        super().__init__()
        self.model = model
        self.paths: dict[int, list[str]] = {}
        for path, module in model.named_modules(remove_duplicate=False):
            self.paths.setdefault(id(module), []).append(path)
        self.axes = max(len(input_shape) - 2, 0)
        self.graph = PlainGraph()
        self.flows: dict[int, tuple[Tensor, _Flow]] = {}
        self.meta_copies: dict[int, tuple[Tensor, Tensor]] = {}
        self.running: list[nn.Module] = []
        self.opaque_depth = 0
        self.shape, self.real, self.dtype = tuple(input_shape), real, _dtype(model)
        self.input = self._image()
        inputs = inputs or {}
        self.unsized: dict[int, tuple[Tensor, str]] = {}
        self.extra = {name: self._made(name, spec) for name, spec in inputs.items()}
        images = [self.extra[name] for name, spec in inputs.items() if spec and spec.get("like") == "image"]
        layout = L.feature_map(input_shape) if self.axes else L.without_positions(input_shape)
        layer = LayerDefinition("input", kernel_size=1, kind=Kind.INPUT)
        node = self._node("input", layer, [], (), (), None, layout)
        self._mark([self.input, *images], node, [layout])  # a second image: the same input

    def _image(self) -> Tensor:
        """An image of the traced shape: random when the model is real, else on meta."""
        if self.real:
            return torch.randn(self.shape, dtype=self.dtype)
        return torch.empty(self.shape, dtype=self.dtype, device="meta")

    def _made(self, name: str, spec: Mapping[str, Any] | None) -> Tensor | None:
        """An input besides the image, as ``to_plain``'s ``inputs`` describes it; a sequence
        whose width is not known yet has one value per token, until its first use says."""
        if spec is None:
            return None
        if spec.get("like") == "image":
            return self._image()
        if spec.get("like") == "tokens":
            tokens = _extra({"shape": [_TOKENS, 1], "dtype": "float", "batched": True}, self.shape[0],
                            self.dtype, self.real)
            self.unsized[id(tokens)] = (tokens, name)
            return tokens
        return _extra(spec, self.shape[0], self.dtype, self.real)

    # bookkeeping

    def _node(self, name, layer, preds, module_paths, sites, layout_in, layout_out) -> int:
        """A node whose maps are those of its input and output layouts."""
        maps = [L.spatial_map(lay, self.axes) for lay in (layout_in, layout_out)]
        return self.graph.add(name, layer, preds, module_paths, sites, *maps, L.shifts(layout_in, self.axes))

    def _mark(self, tensors: list[Tensor], node: int, layouts: Sequence[Layout | None]) -> None:
        """Give each output its node and layout (one that does not fit its shape is dropped)."""
        for i, tensor in enumerate(tensors):
            layout = layouts[min(i, len(layouts) - 1)] if layouts else None
            if layout is not None and L.sizes(layout) != tuple(tensor.shape):
                layout = None
            self.flows[id(tensor)] = (tensor, _Flow(node, layout))
            if i == 0 and not self.graph.has_channels(node):
                self.graph.set_channels(node, self._channels(tensor, layout))

    def _channels(self, tensor: Tensor, layout: Layout | None) -> int:
        """Values per position and sample: what a conv reading the tensor takes as input channels."""
        positions = math.prod(L.spatial_map(layout, self.axes) or (1,))
        return tensor.numel() // max(positions * self.input.shape[0], 1)

    def _traced(self, tensors: list[Tensor]) -> list[tuple[Tensor, _Flow]]:
        """The traced tensors among ``tensors``, each once, in argument order."""
        seen, result = set(), []
        for tensor in tensors:
            entry = self.flows.get(id(tensor))
            if entry and entry[0] is tensor and id(tensor) not in seen:
                seen.add(id(tensor))
                result.append(entry)
        return result

    def _layout_of(self, tensor: Tensor) -> Layout | None:
        entry = self.flows.get(id(tensor))
        if entry and entry[0] is tensor:
            return entry[1].layout
        return L.without_positions(tensor.shape)

    @staticmethod
    def _preds(traced: list[tuple[Tensor, _Flow]]) -> list[int]:
        return list(dict.fromkeys(flow.node for _, flow in traced))

    def _running_paths(self) -> tuple[nn.Module | None, list[str]]:
        """The innermost running module and its paths ('' for the root or outside any module)."""
        module = self.running[-1] if self.running else None
        return module, self.paths.get(id(module), [""])

    # layers of the table

    def _layer(self, entry: Entry, layer: Any, args: tuple, traced, outputs, name, paths, sites) -> None:
        """One call of a table layer (a module or a functional form) -> its node(s)."""
        x, flow = next(((t, f) for t, f in traced if t is (args[0] if args else None)), traced[0])
        self._dispatch(entry, layer, args, x, flow, traced, outputs, name, paths, sites)
        self._costs(len(self.graph.nodes) - 1, entry, layer, args, x, outputs[0])

    def _dispatch(self, entry: Entry, layer, args, x, flow, traced, outputs, name, paths, sites) -> None:
        """The node(s) of a table layer by its family; the layer's own node is made last."""
        family = entry.family
        if family == "spatial":
            self._spatial(entry, layer, x, flow, traced, outputs, name, paths, sites)
        elif family == "dense":
            self._dense(layer, x, flow, traced, outputs, name, paths, sites)
        elif family == "attention":
            self._attention(layer, args, traced, outputs, name, paths, sites)
        else:
            y = outputs[0]
            layout = flow.layout
            if family == "reshape" and layout is not None:
                layout = L.reshape(layout, y.shape)
            elif layout is not None and tuple(y.shape) != tuple(x.shape):
                layout = L.broadcast([(layout, tuple(x.shape))], y.shape)
            scrambled = flow.layout is not None and layout is None
            layer_def = LayerDefinition(label(layer), kernel_size=None if scrambled else 1,
                                        kind=Kind.GLOBAL if scrambled else Kind.PASSTHROUGH)
            out = L.without_positions(y.shape) if scrambled else layout
            node = self._node(name, layer_def, self._preds(traced), paths, sites(), flow.layout, out)
            self._mark(outputs, node, [out])

    def _costs(self, node: int, entry: Entry, layer: Any, args: tuple, x: Tensor, y: Tensor) -> None:
        """Record the weights a layer holds and its multiply-accumulates per sample on its node
        (keys left out when zero)."""
        batch = max(self.input.shape[0], 1)
        macs, pairs = multiply_accumulates(entry, layer, args, x, y)
        if self.graph.nodes[node]["layer"].get("kernel_size") is not None:
            pairs = 0  # a windowed attention: each query reads as many keys on any map
        self.graph.set_costs(node, parameters(layer), macs // batch, pairs // batch)

    def _spatial(self, entry, layer, x, flow, traced, outputs, name, paths, sites) -> None:
        """A channels-first layer: its kernel runs on dims ``2:``, which must each be one axis.

        A conv also reads every channel: positions folded into the channels (a space-to-depth
        by reshape) are mixed first, as their own node.
        """
        y, layout = outputs[0], flow.layout
        preds = self._preds(traced)
        if entry.contracts_channels and layout is not None and L.has_positions([layout[1]]):
            rest = layout[:1] + (L.plain(x.shape[1]),) + layout[2:]
            mix, rest = L.mixing(L.factors(layout[1]), [layout], rest, self.axes)
            node = self._node(f"{name}.channels", _mixing_layer("channels", mix, "fold"), preds, paths,
                              sites(), layout, rest)
            preds, layout = [node], rest
        runs = L.kernel_runs(layout, 2, x.dim(), self.axes)
        layer_def = entry.handler(layer, tuple(x.shape[2:]), tuple(y.shape[2:]))
        # a 1x1 window reads its own position wherever the positions are (a CrossFormer's
        # projections on windows of positions 8 apart): dims 2: keep their layout
        keeps = runs is None and layout is not None and _pointwise(layer_def) and x.shape[2:] == y.shape[2:]
        runs = runs or L.kernel_runs(None, 2, x.dim(), self.axes)
        placed = _placed(layer_def, [axis for axis, _ in runs], self.axes)
        out = self._spatial_output(layout, x, y, runs, entry.contracts_channels, placed)
        if keeps and out is not None:
            out = out[:2] + layout[2:]
        if out is None and layout is not None:  # windows across rows of tokens, a split factor
            self.graph.report(f"{label(layer)} on rearranged positions", paths, sites())
        node = self._node(name, placed, preds, paths, sites(), layout, out)
        if _spans_its_map(layer_def, layer, x, y, runs):  # the core decides if it is a head
            self.graph.mark_spans_map(node)
        self._mark(outputs, node, [out])

    @staticmethod
    def _spatial_output(layout, x: Tensor, y: Tensor, runs: list[L.Run], contracts: bool,
                        layer: LayerDefinition) -> Layout | None:
        """Batch dim as it came (window indices stay there, on the new grid), channels new for
        a conv and kept by a pool, dims ``2:`` the runs they ran along at their new sizes."""
        known = layout is not None
        dims = [
            layout[0] if known and y.shape[0] == x.shape[0] else L.plain(y.shape[0]),
            layout[1] if known and not contracts and y.shape[1] == x.shape[1] else L.plain(y.shape[1]),
        ]
        scale = (1,) * len(per_axis(layer.stride, 1))
        if not layer.is_infinite:
            scale = tuple(s / u for s, u in zip(*broadcast(layer.stride, per_axis(layer.upsampling, 1))))
        dims = [L.rescaled(dim, scale) for dim in dims]
        for n, (axis, outer) in zip(y.shape[2:], runs):
            rows = math.prod(f.count for f in outer)
            if axis is None:
                dims.append(L.plain(n))
            elif n % rows == 0 and (outside := L.rescaled((outer,), scale)) is not None:
                dims.append(((*outside[0], L.Factor(axis, n // rows)),))
            else:
                return None
        return None if None in dims else tuple(dims)

    def _dense(self, layer, x, flow, traced, outputs, name, paths, sites) -> None:
        """nn.Linear / F.linear: per position unless its last dim holds positions; then it mixes
        them: a Linear over patches or window offsets is a convolution, over a flattened map a
        global head."""
        y, layout = outputs[0], flow.layout
        units = int(layer.out_features)
        out, mix = None, None
        if layout is not None:
            out = layout[:-1] + (L.plain(y.shape[-1]),)
            mix, out = L.mixing(L.factors(layout[-1]), [layout], out, self.axes)
        if mix is None:
            layer_def = LayerDefinition(label(layer), kernel_size=1, units=units, kind=Kind.DENSE)
        else:
            layer_def = _mixing_layer(label(layer), mix, "dense", units=units)
        node = self._node(name, layer_def, self._preds(traced), paths, sites(), layout, out)
        self._mark(outputs, node, [out])

    def _attention(self, layer, args, traced, outputs, name, paths, sites) -> None:
        """Every query position reads every key token: a kernel spanning the positions of the
        keys' token dim (a window for window attention, everything for global attention)."""
        query = args[0]
        key = args[1] if len(args) > 1 and isinstance(args[1], Tensor) else query
        value = args[2] if len(args) > 2 and isinstance(args[2], Tensor) else key
        q_layout, k_layout, v_layout = (self._layout_of(t) for t in (query, key, value))
        y = outputs[0]
        out = None if q_layout is None else q_layout[:-1] + (L.plain(y.shape[-1]),)
        if k_layout is None:  # keys whose positions an op not modelled scrambled: any of them
            mix = L.Mixing(None, (1,), (1,))
        else:
            keys = L.factors(k_layout[token_dim(layer, key)])
            mix, out = L.mixing(keys, [k_layout, v_layout or k_layout], out, self.axes)
        if mix is None:
            layer_def = LayerDefinition(label(layer), kernel_size=1, kind=Kind.ATTENTION)
        else:
            layer_def = _mixing_layer(label(layer), mix, "attention")
        node = self._node(name, layer_def, self._preds(traced), paths, sites(), q_layout, out)
        self._mark(outputs[:1], node, [out])
        self._mark(outputs[1:], node, [None])

    # module hooks

    def enter_module(self, module: nn.Module, args: tuple) -> None:
        self.running.append(module)
        if table_entry(type(module)) is not None:
            self.opaque_depth += 1

    def leave_module(self, module: nn.Module, args: tuple, output: Any) -> None:
        self.running.pop()
        entry = table_entry(type(module))
        if entry is None:
            return
        self.opaque_depth -= 1
        traced, outputs = self._traced(_tensors(args)), _tensors(output)
        if self.opaque_depth or not traced or not outputs:
            return
        paths = self.paths.get(id(module), [""])
        sites = sites_of(module)
        self._layer(entry, module, args, traced, outputs, paths[0] or type(module).__name__, paths,
                    lambda: sites)

    # every other torch call

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        unsized = self._first_use(func, args, kwargs) if self.unsized else None
        args, kwargs = self._on_one_device(args, kwargs)
        if unsized is None:
            result = func(*args, **kwargs)
        else:
            try:
                result = func(*args, **kwargs)
            except Exception:  # a use that needs a width the input does not have yet
                raise _Unsized(unsized[1], _op_name(func)) from None
            self._passed_on(unsized, func, result)
        if not self.opaque_depth:
            self._record_call(func, args, kwargs, result)
            self._count_product(func, args, result)
        return result

    def _count_product(self, func: Callable, args: tuple, result: Any) -> None:
        """A product of tensors outside the layer table (``q @ k.transpose(-2, -1)``, einsum)
        adds its multiply-accumulates per sample to the node its output belongs to."""
        name = _op_name(func)
        outputs = _tensors(result) if name in ops.PRODUCTS else []
        if not outputs:
            return
        macs, pairs = ops.product_macs(ops.Op(name, args, {}, outputs, self._layout_of, self.axes))
        entry = self.flows.get(id(outputs[0])) if macs else None
        if entry and entry[0] is outputs[0]:
            batch = max(self.input.shape[0], 1)
            self.graph.add_macs(entry[1].node, macs // batch, pairs // batch)

    def _first_use(self, func, args: tuple, kwargs: dict) -> tuple[Tensor, str] | None:
        """The input of unknown width this call reads (raising :class:`_Sized` when the call
        is a layer that says the width: a Linear's inputs, a LayerNorm's size)."""
        for tensor in _tensors((args, kwargs)):
            entry = self.unsized.get(id(tensor))
            if entry is None or entry[0] is not tensor:
                continue
            first = args[0] if args else kwargs.get("input")
            if func is F.linear and first is tensor:
                raise _Sized(entry[1], (args[1] if len(args) > 1 else kwargs["weight"]).shape[-1])
            if func is F.layer_norm and first is tensor:
                raise _Sized(entry[1], tuple(args[1] if len(args) > 1 else kwargs["normalized_shape"])[-1])
            return entry
        return None

    def _passed_on(self, unsized: tuple[Tensor, str], func, result: Any) -> None:
        """A cast or copy of an input of unknown width is that input; a query of its size
        tells nothing; any other use cannot say its width."""
        tensor, name = unsized
        outputs = _tensors(result)
        if not outputs:
            return
        if len(outputs) == 1 and outputs[0].shape == tensor.shape:
            self.unsized[id(outputs[0])] = (outputs[0], name)
            return
        raise _Unsized(name, _op_name(func))

    def _on_one_device(self, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        """Real tensors (weights of a model built normally) meet meta ones as meta copies."""
        tensors = _tensors((args, kwargs))
        if all(t.is_meta for t in tensors) or not any(t.is_meta for t in tensors):
            return args, kwargs
        return tree_map(self._as_meta, (args, kwargs))

    def _as_meta(self, leaf: Any) -> Any:
        """A meta copy of a real tensor, made once per trace; anything else unchanged."""
        if not isinstance(leaf, Tensor) or leaf.is_meta:
            return leaf
        cached = self.meta_copies.get(id(leaf))
        if cached is None or cached[0] is not leaf:
            cached = self.meta_copies[id(leaf)] = (leaf, leaf.detach().to("meta"))
        return cached[1]

    def _call_site(self) -> tuple[Site, ...]:
        """Where a functional op is: the line that writes it (``out += identity`` in a block's
        forward, as a layer is at its constructor's line), then the sites of the module whose
        forward runs it, for a linter whose file holds the module's construction but not its
        forward (a library block built in the user's file)."""
        stack = user_stack(sys._getframe())
        module = self.running[-1] if self.running else None
        if module is None or module is self.model:
            return stack
        return stack + sites_of(module)

    def _record_call(self, func, args, kwargs, result) -> None:
        outputs = _tensors(result)
        if not outputs:
            return
        traced = self._traced(_tensors((args, kwargs)))
        if not traced:
            return
        op = _op_name(func)
        enclosing = self._running_paths()[1][0]
        name = f"{enclosing}.{op}" if enclosing else op

        def call_site() -> tuple[Site, ...]:
            return self._call_site()

        form = FUNCTIONAL_FORMS.get(func)
        if form is not None:
            bind, module_class = form
            call = bind(*args, **kwargs)
            call.label = op
            self._layer(table_entry(module_class), call, args, traced, outputs, name, (), call_site)
            return
        call = ops.Op(op, args, kwargs, outputs, self._layout_of, self.axes, func)
        effect = ops.effect(call, [t for t, _ in traced])
        if not effect.layouts:
            return
        if effect.sources is not None:
            traced = self._traced(effect.sources)
        if traced:
            self._apply(effect, op, traced, outputs, name, call_site)

    def _apply(self, effect: ops.Effect, op: str, traced, outputs, name, sites) -> None:
        """An op's effect -> a node when it is a layer, mixes positions or merges inputs."""
        preds = self._preds(traced)
        layout_in = traced[0][1].layout
        layouts = effect.layouts
        if effect.verdict == "unknown":
            self.graph.report(*self._unsupported_op(op, sites))
        if effect.verdict == "global":
            layer = LayerDefinition(op, kernel_size=None, kind=Kind.GLOBAL)
        elif effect.layer is not None:
            layer = effect.layer
        elif effect.mixed and (mixed := self._mixed(op, effect, traced)):
            layer, layouts = mixed
        elif len(preds) > 1 or effect.broadcast and self._gates(traced, layouts):
            self._merge(op, traced, outputs, layouts, name, sites, effect.broadcast)
            return
        else:
            self._mark(outputs, preds[0], layouts)
            return
        node = self._node(name, layer, preds, (), sites(), layout_in, layouts[0])
        self._mark(outputs, node, layouts)

    def _mixed(self, op: str, effect: ops.Effect, traced) -> tuple[LayerDefinition, list] | None:
        """The layer of an op that mixes positions and its outputs' layouts on the new grid."""
        inputs = [flow.layout for _, flow in traced if flow.layout is not None]
        layouts = []
        mix = None
        for layout in effect.layouts:
            if layout is None:
                layouts.append(None)
                continue
            mix, regridded = L.mixing(effect.mixed, inputs, layout, self.axes)
            layouts.append(regridded)
        if mix is None:
            return None
        return _mixing_layer(op, mix, effect.mixer), layouts

    def _merge(self, op: str, traced, outputs, layouts, name, sites, broadcast: bool) -> None:
        """Several inputs meet (add, mul, cat...): the node keeps every path's RF.

        An input with no spatial extent broadcast over a larger map is a gate (squeeze and
        excitation): it contributes everything it summarises and never its stride product, so it
        gets a global node before the merge, one position wide (its map says the gate is no map
        of positions, even when its path had folded them into features: ``x.mean((2, 3))``).
        """
        gated = self._gates(traced, layouts) if broadcast else set()
        preds = []
        for _, flow in traced:
            node = flow.node
            if id(flow) in gated:
                gate = LayerDefinition("broadcast", kernel_size=None, kind=Kind.GLOBAL)
                map_in = L.spatial_map(flow.layout, self.axes)
                node = self.graph.add(f"{name}.broadcast", gate, [node], (), sites(), map_in, [1] * self.axes)
            preds.append(node)
        merge = LayerDefinition(op, kernel_size=1, kind=Kind.MERGE)
        preds, layout_out = list(dict.fromkeys(preds)), layouts[0] if layouts else None
        node = self._node(name, merge, preds, (), sites(), traced[0][1].layout, layout_out)
        self._mark(outputs, node, layouts)

    def _gates(self, traced, layouts) -> set[int]:
        """The flows (by id) broadcast as gates over a larger map: smaller than the largest
        operand (an MLP-Mixer's token path, whose positions are folded into features, is as
        large as the map it is added to: no gate) and without positions of their own."""
        out_map = L.spatial_map(layouts[0], self.axes) if layouts else None
        if out_map is None or max(out_map, default=1) <= 1:
            return set()
        largest = max(tensor.numel() for tensor, _ in traced)
        return {id(flow) for tensor, flow in traced
                if tensor.numel() < largest and flow.layout is not None and self._no_extent(flow.layout)}

    def _no_extent(self, layout: Layout) -> bool:
        found = L.spatial_map(layout, self.axes)
        return found is None or all(n == 1 for n in found)

    def _unsupported_op(self, op: str, call_site: Callable) -> tuple:
        """How to report ``op``: inside a childless custom module, as that module's type."""
        module, paths = self._running_paths()
        if module is not None and next(module.children(), None) is None:
            return type(module).__name__, paths, sites_of(module)
        return op, paths, call_site()

    # the whole pass

    def run(self, model: nn.Module) -> int:
        """Run ``model`` on the meta input; return the index of the node of its first output."""
        with contextlib.ExitStack() as stack:
            stack.enter_context(register_module_forward_pre_hook(self.enter_module))
            stack.enter_context(register_module_forward_hook(self.leave_module))
            stack.enter_context(torch.no_grad())
            stack.enter_context(self)
            output = model(self.input, **self.extra)
        traced = self._traced(_tensors(output))
        if not traced:
            raise TraceError(f"the output of {type(model).__name__} does not depend on its input")
        return traced[0][1].node


def image_parts(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) of the children that are networks of their own (not single layers), the
    ones holding most weights first: where a detector's backbone and neck, which take the image
    before the proposals, box decoding and non-maximum suppression that need values, are."""
    children = [(name, child) for name, child in model.named_children() if next(child.children(), None)]
    return sorted(children, key=lambda item: -sum(p.numel() for p in item[1].parameters()))


def _extra(spec: Mapping[str, Any], batch: int, dtype: torch.dtype, real: bool) -> Tensor:
    """An input besides the image (``to_plain``'s ``inputs``): ones when real (steps, levels)."""
    shape = (batch,) * bool(spec["batched"]) + tuple(spec["shape"])
    dtype = torch.int64 if spec["dtype"] == "int64" else dtype
    return torch.ones(shape, dtype=dtype) if real else torch.empty(shape, dtype=dtype, device="meta")


def _dtype(model: nn.Module) -> torch.dtype:
    """The model's floating point type (a model in float64 or float16 takes that input)."""
    return next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)


def _first_layer(model: nn.Module) -> tuple[int, int]:
    """(input channels, spatial axes) of the model's first conv, else of its first linear."""
    modules = list(model.modules())
    for module in modules:
        if isinstance(module, nn.modules.conv._ConvNd):
            return module.in_channels, len(module.kernel_size)
    for module in modules:
        if isinstance(module, nn.Linear):
            return module.in_features, 0
    return 3, 2


def _sides(sides: Sequence[int] | None, axes: int) -> list[tuple[int, ...]]:
    """The spatial sizes ``sides`` stands for on a model with ``axes`` spatial axes.

    One number is the same size on every axis; with three axes a 16-frame clip comes before a
    cube (video models).  A tuple of another length fits no model of ``axes`` axes: none.
    """
    if sides is None or not axes:
        return [()] if sides is not None else []
    sides = (int(sides),) if isinstance(sides, int) else tuple(int(s) for s in sides)
    if len(sides) == axes:
        return [sides]
    if len(sides) != 1:
        return []
    size = sides[0]
    return [(_VIDEO_FRAMES, size, size), (size,) * 3] if axes == 3 else [(size,) * axes]


def _attempts(
    model: nn.Module,
    input_shape: Sequence[int] | None,
    resolution: Sequence[int] | None,
    declared: Sequence[int] | None,
    input_res: int,
    real: bool = False,
) -> list[tuple[str, tuple]]:
    """(mode, input shape) pairs to try, in order.

    First the lint ``resolution``, then the model's ``declared`` size (each in eval mode, then in
    train mode), then common sizes: all in eval mode, then all in train mode.  Train mode uses a
    batch of 2, as batch norm refuses a single value per channel there.  At each size an RGB
    image comes first, then the channels and axes of the model's first layer (a ViT whose patch
    embedding is a Linear over 3*p*p values takes an image, not a vector of that length).  A
    model whose first conv has other axes (an audio model's Conv1d, a video model's Conv3d)
    takes its own rank first, with its first conv's channels and then RGB (a video VAE whose
    first conv reads patches of 2x4x4 RGB values takes RGB clips): an image it refuses would
    only cost a failed trial.  A size whose number of axes does not fit is skipped; a model of one
    axis tries long sequences last (:data:`_SEQUENCE_SIZES`).  A model built for ``real`` runs
    real forward passes: eval mode only, at the preferred sizes and ``input_res``.
    """
    modes = _MODES[:1] if real else _MODES
    if input_shape is not None:
        return [(mode, tuple(input_shape)) for mode, _ in modes]
    channels, rank = _first_layer(model)
    own = [(channels, rank)] + [(_IMAGE_CHANNELS, rank)] * bool(rank)  # its channels, RGB at its rank
    image = [(_IMAGE_CHANNELS, 2)]
    layouts = list(dict.fromkeys(image + own if rank in (0, 2) else own + image))

    def shapes(size: Sequence[int] | None) -> list[tuple]:
        return [(channels, *sides) for channels, axes in layouts for sides in _sides(size, axes)]

    attempts = [(mode, (batch, *shape)) for size in (resolution, declared) for shape in shapes(size)
                for mode, batch in modes]
    generic = (input_res,) if real else (input_res, *_TRACE_SIZES)
    attempts += [(mode, (batch, *shape)) for mode, batch in modes for size in generic
                 for shape in shapes((size,))]
    if not real:  # a sequence model downsamples more than an image model: audio by thousands
        attempts += [(mode, (batch, channels, size)) for mode, batch in modes for channels, axes in layouts
                     if axes == 1 for size in _SEQUENCE_SIZES]
    return list(dict.fromkeys(attempts))


class _Sized(BaseException):
    """The first use of an input of unknown width says it (a BaseException: a model's own
    ``except Exception`` must not swallow it)."""

    def __init__(self, name: str, width: int) -> None:
        super().__init__(name, width)
        self.name, self.width = name, int(width)


class _Unsized(BaseException):
    """The first use of an input of unknown width says nothing of it."""

    def __init__(self, name: str, op: str) -> None:
        super().__init__(name, op)
        self.name, self.op = name, op


def _run(model: nn.Module, shape: tuple, inputs: dict[str, Any], real: bool, state: "_State") -> tuple:
    """One trial: (recorder, output).  An input whose width its first use says is made at
    that width in ``inputs`` and the trial runs again."""
    while True:
        recorder = _Recorder(model, shape, inputs, real)
        try:
            return recorder, recorder.run(model)
        except _Sized as sized:
            state.restore()
            inputs[sized.name] = {"shape": [_TOKENS, sized.width], "dtype": "float", "batched": True}
        except _Unsized as unsized:
            raise InputsUnknown([unsized.name], f"the first use of {unsized.name!r} ({unsized.op}) "
                                "does not say its shape") from None


class _State:
    """The attributes of every module of a model, as they were before its first trial.

    A forward may leave state on its modules (a causal conv's cache of the previous frames): a
    trial that failed half way must not hand it to the next one (diffusers' EasyAnimate
    encoder refused every size after an image had been tried).  What an attribute is bound to
    is restored; a container changed in place stays changed.
    """

    def __init__(self, model: nn.Module) -> None:
        self.saved = [(module, dict(vars(module))) for module in model.modules()]

    def restore(self) -> None:
        for module, attributes in self.saved:
            vars(module).clear()
            vars(module).update(attributes)


def _describe(error: BaseException) -> str:
    """The error's first line and the innermost user-code line that raised it."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if user_file(f.filename)]
    at = f" (at {user_file(frames[-1].filename)}:{frames[-1].lineno})" if frames else ""
    message = str(error).strip().splitlines()
    return f"{type(error).__name__}: {message[0] if message else ''}{at}"


def to_plain(
    model: nn.Module,
    input_shape: Sequence[int] | None = None,
    *,
    resolution: Sequence[int] | None = None,
    declared: Sequence[int] | None = None,
    input_res: int = 224,
    inputs: Mapping[str, Mapping[str, Any] | None] | None = None,
    real: bool = False,
) -> dict[str, Any]:
    """The model's graph as JSON-able data: :func:`rfa_lint.rf.graph.graph_to_plain`'s form plus
    ``unsupported`` (layer kinds that change spatial size in a way not modelled), ``input_shape``
    and ``mode`` (what the trace ran with).

    Each node also has ``map_in`` / ``map_out``: the spatial sizes of its first input and of its
    output at the traced shape (None without spatial positions); a conv or pool whose unpadded
    kernel spans its whole input map there has ``spans_map: true`` (the core decides whether it
    is a head: :func:`rfa_lint.rf.graph.dense_heads`).  ``channels`` is the number of values per
    position of a node's output (per sample); ``params`` the weights its layer holds (a module
    called twice has them on both nodes) and ``macs`` its multiply-accumulates per sample at the
    traced shape, both left out where zero.  Without ``input_shape`` the
    trace tries ``resolution`` (per-axis sizes; one number for every axis), then ``declared``
    (the model's own size), then ``input_res`` and common sizes (see :func:`_attempts`);
    :class:`TraceError` lists every attempt when none works; the first failure that needed the
    values of a meta tensor (:func:`.weights.needs_values`) ends the attempts of its mode (eval
    or train) and causes it.

    ``inputs``: the forward's other inputs by name, each passed as None or made as a tensor of
    ``{"shape": [...], "dtype": "int64" | "float", "batched": bool}`` (batched: the trace's
    batch size comes first), or ``{"like": "image"}``: a second image, traced as the input too,
    or ``{"like": "tokens"}``: a sequence of vectors whose width the first layer that reads it
    says (:class:`InputsUnknown` when its first use says none, or when no trace worked).
    ``real``: the model was built for real (its weights hold values): the trace runs it on a
    random image on the CPU, in eval mode.
    """
    was_training = model.training
    failures: dict[str, list[str]] = {}
    needing_values, given_up = None, set()
    state, inputs = _State(model), dict(inputs or {})
    try:
        for mode, shape in _attempts(model, input_shape, resolution, declared, input_res, real):
            if mode in given_up:
                continue
            model.train(mode == "train")
            try:
                recorder, output = _run(model, shape, inputs, real, state)
            except InputsUnknown:
                raise
            except Exception as error:  # the model's own failure, reported below with its line
                state.restore()
                failures.setdefault(_describe(error), []).append(f"{shape} {mode}")
                if not real and needs_values(error):  # no other size of this mode has them either
                    needing_values = needing_values or error
                    given_up.add(mode)
                continue
            return recorder.graph.to_dict(output, list(shape), mode, parameters(model))
    finally:
        model.train(was_training)
    # the model's own errors first: a one-line report cut short still says what went wrong
    reasons = "\n".join(f"  {reason} (input {_shapes(tried)})" for reason, tried in failures.items())
    unsized = [name for name, spec in inputs.items() if spec and spec.get("like") == "tokens"]
    if unsized:  # a guess of their shape that no layer confirmed: theirs to give
        raise InputsUnknown(unsized, f"no trace worked with them as sequences:\n{reasons}")
    raise TraceError(
        f"could not trace {type(model).__name__} on a {'real' if real else 'meta'} tensor:\n{reasons}\n"
        "pass input_shape=(batch, channels, *spatial sizes) that the model accepts"
    ) from needing_values


def _shapes(tried: list[str]) -> str:
    return ", ".join(tried) if len(tried) <= 2 else f"{tried[0]} and {len(tried) - 1} more shapes"


def create_graph_from_pytorch_model(
    model: nn.Module, input_res: int | Sequence[int] = 224, input_shape: Sequence[int] | None = None
) -> EnrichedNetworkNode:
    """The seed's entry point: the output node of the model's graph.

    ``input_res`` picks the first size tried; the seed's full shape ``(1, 3, 399, 399)`` is
    taken as ``input_shape``.
    """
    if not isinstance(input_res, int):
        input_shape, input_res = input_shape or tuple(input_res), 224
    return graph_from_plain(to_plain(model, input_shape, input_res=input_res))
