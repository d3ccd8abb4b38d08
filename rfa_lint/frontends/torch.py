"""PyTorch frontend: a live ``nn.Module`` -> plain receptive-field graph data with source sites.

Models are built under :func:`building_context` (weights on the ``meta`` device, the source site of
every module remembered) and traced by running ``forward`` on a meta tensor.  Forward hooks see
the modules of the dispatch table as single layers; a ``TorchFunctionMode`` sees every other torch
call, so functional ops, tensor arithmetic and Python control flow follow the real data flow.
Each traced tensor carries the node that produced it and where its spatial positions are.
"""

from __future__ import annotations

import contextlib
import functools
import math
import sys
import traceback
from dataclasses import dataclass
from fractions import Fraction
from types import SimpleNamespace
from typing import Any, Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules import pooling
from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook
from torch.overrides import TorchFunctionMode
from torch.utils._device import _device_constructors
from torch.utils._pytree import tree_flatten, tree_map

import rfa_lint
from rfa_lint.frontends import TraceError, user_code
from rfa_lint.rf.graph import EnrichedNetworkNode, LayerDefinition, graph_from_plain

__all__ = [
    "TraceError",
    "building_context",
    "create_graph_from_pytorch_model",
    "is_model",
    "register_layer_handler",
    "to_plain",
]

#: A handler turns a layer (a module, or a functional call's arguments) and one call's input and
#: output tensors into the layer's RF parameters.
LayerHandler = Callable[[Any, Tensor, Tensor], LayerDefinition]

Site = tuple[str, int]
Spatial = tuple[int, ...] | None  # a tensor's spatial sizes, None when it has none (tokens)

_SITES_ATTRIBUTE = "_rfa_lint_sites"  # in the module's __dict__, so deep copies keep it
_SPATIAL_KINDS = frozenset({"conv", "pool", "resize"})
_TRACE_SIZES = (224, 299, 256, 399, 512, 128, 64, 32, 384, 448, 336, 518, 240, 288, 320)
_VIDEO_FRAMES = 16


# --- source sites ---------------------------------------------------------------------------

_user_file = user_code(torch, rfa_lint)


def _initialising(frame: Any) -> Any:
    """The object an ``__init__`` frame initialises (None for other frames)."""
    code = frame.f_code
    if code.co_name != "__init__" or not code.co_argcount:
        return None
    return frame.f_locals.get(code.co_varnames[0])


def _in_module_init(frame: Any) -> bool:
    while frame is not None:
        if isinstance(_initialising(frame), nn.Module):
            return True
        frame = frame.f_back
    return False


def _user_stack(frame: Any, constructing: nn.Module | None = None) -> tuple[Site, ...]:
    """(file, line) of every user frame from ``frame`` outwards, innermost first."""
    sites = []
    while frame is not None:
        path = _user_file(frame.f_code.co_filename)
        if path and (constructing is None or _initialising(frame) is not constructing):
            sites.append((path, frame.f_lineno))
        frame = frame.f_back
    return tuple(sites)


def _sites_of(module: nn.Module) -> tuple[Site, ...]:
    return module.__dict__.get(_SITES_ATTRIBUTE, ())


class _MetaWeights(TorchFunctionMode):
    """Tensor factories called while a module is being constructed make meta tensors.

    Only there: a factory function computing layer widths with real tensor values before the
    constructors run (torchvision's RegNet) keeps working, which a global meta device breaks.
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if (
            func in _FACTORIES
            and kwargs.get("device") is None
            and _in_module_init(sys._getframe(1))
        ):
            kwargs["device"] = "meta"
        return func(*args, **kwargs)


_FACTORIES = _device_constructors()


@contextlib.contextmanager
def building_context() -> Iterator[None]:
    """Build models in here: weights go to the ``meta`` device and every module keeps its site.

    The site of a module is the creation stack of its constructor call in user code (the
    ``self.conv = nn.Conv2d(...)`` line, a call inside ``nn.Sequential(...)``, a helper's
    ``return nn.Conv2d(...)`` and the line calling the helper), so a linter can choose the frame
    in the file it lints.  ``nn.Module.__init__`` is patched only while the context is active.
    """
    original_init = nn.Module.__init__

    @functools.wraps(original_init)
    def recording_init(self: nn.Module, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self.__dict__[_SITES_ATTRIBUTE] = _user_stack(sys._getframe(1), constructing=self)

    nn.Module.__init__ = recording_init
    try:
        with _MetaWeights():
            yield
    finally:
        nn.Module.__init__ = original_init


def is_model(obj: Any) -> bool:
    return isinstance(obj, nn.Module)


# --- the dispatch table ---------------------------------------------------------------------

class _Call(SimpleNamespace):
    """A functional op's arguments under the attribute names of its module class."""

    label: str = "call"


def _label(layer: Any) -> str:
    return layer.label if isinstance(layer, _Call) else type(layer).__name__


def _per_axis(value: Any, axes: int) -> tuple:
    return (int(value),) * axes if isinstance(value, (int, float)) else tuple(int(v) for v in value)


def _spatial_axes(y: Tensor) -> int:
    return max(y.dim() - 2, 1)


def _conv(layer: Any, x: Tensor, y: Tensor) -> LayerDefinition:
    """A transposed conv with stride s upsamples by s, then runs its kernel on the finer grid."""
    axes = _spatial_axes(y)
    stride = _per_axis(layer.stride, axes)
    transposed = isinstance(layer, nn.modules.conv._ConvTransposeNd)
    return LayerDefinition(
        _label(layer),
        kernel_size=_per_axis(layer.kernel_size, axes),
        stride_size=1 if transposed else stride,
        upsampling=stride if transposed else 1,
        dilation=_per_axis(layer.dilation, axes),
        filters=int(layer.out_channels),
        kind="conv",
    )


def _pool(layer: Any, x: Tensor, y: Tensor) -> LayerDefinition:
    axes = _spatial_axes(y)
    kernel = _per_axis(layer.kernel_size, axes)
    return LayerDefinition(
        _label(layer),
        kernel_size=kernel,
        stride_size=_per_axis(layer.stride, axes) if layer.stride else kernel,
        dilation=_per_axis(getattr(layer, "dilation", 1), axes),
        kind="pool",
    )


def _space_to_depth(layer: Any, x: Tensor, y: Tensor) -> LayerDefinition:
    factor = (int(layer.downscale_factor),) * _spatial_axes(y)
    return LayerDefinition(_label(layer), kernel_size=factor, stride_size=factor, kind="resize")


def _resize(layer: Any, x: Tensor, y: Tensor) -> LayerDefinition:
    """Upsample / interpolate / pixel shuffle: the scale is read from the shapes, per axis."""
    ratios = [Fraction(o, i) for o, i in zip(y.shape[2:], x.shape[2:])]
    return LayerDefinition(
        _label(layer),
        kernel_size=1,
        stride_size=tuple(_exact(max(1 / r, 1)) for r in ratios),
        upsampling=tuple(_exact(max(r, 1)) for r in ratios),
        kind="resize",
    )


def _exact(value: Fraction) -> int | Fraction:
    return value.numerator if value.denominator == 1 else value


def _dense(layer: Any, x: Tensor, y: Tensor) -> LayerDefinition:
    """Linear acts per position (a 1x1 conv); only a flatten or pooling before it sees all."""
    return LayerDefinition(_label(layer), kernel_size=1, units=int(layer.out_features), kind="dense")


def _kind(kind: str) -> LayerHandler:
    kernel = None if kind in ("global", "attention") else 1
    return lambda layer, x, y: LayerDefinition(_label(layer), kernel_size=kernel, kind=kind)


_global, _attention, _passthrough = _kind("global"), _kind("attention"), _kind("passthrough")

#: Layer kind -> handler, looked up along the module class's MRO.  ``None``: judged by shapes
#: (a flatten merging spatial positions sees everything; one that keeps them passes through).
_LAYER_KINDS: dict[type, LayerHandler | None] = {
    nn.modules.conv._ConvNd: _conv,  # transposed convs too
    pooling._MaxPoolNd: _pool,
    pooling._AvgPoolNd: _pool,
    pooling._LPPoolNd: _pool,
    pooling._AdaptiveAvgPoolNd: _global,
    pooling._AdaptiveMaxPoolNd: _global,
    nn.Flatten: None,
    nn.Linear: _dense,
    nn.MultiheadAttention: _attention,
    nn.Upsample: _resize,
    nn.PixelShuffle: _resize,
    nn.PixelUnshuffle: _space_to_depth,
    **dict.fromkeys(
        [
            nn.modules.batchnorm._NormBase,
            nn.LayerNorm,
            nn.GroupNorm,
            nn.LocalResponseNorm,
            nn.modules.dropout._DropoutNd,
            nn.Identity,
            *(
                getattr(nn.modules.activation, name)
                for name in nn.modules.activation.__all__
                if name != "MultiheadAttention"
            ),
        ],
        _passthrough,
    ),
}


def _conv_args(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return _Call(
        kernel_size=weight.shape[2:], stride=stride, dilation=dilation, out_channels=weight.shape[0]
    )


def _conv_transpose_args(
    input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1
):
    return _Call(
        kernel_size=weight.shape[2:], stride=stride, dilation=dilation, out_channels=weight.shape[1] * groups
    )


def _max_pool_args(input, kernel_size, stride=None, padding=0, dilation=1, *_, **__):
    return _Call(kernel_size=kernel_size, stride=stride, dilation=dilation)


def _avg_pool_args(input, kernel_size, stride=None, *_, **__):
    return _Call(kernel_size=kernel_size, stride=stride)


def _lp_pool_args(input, norm_type, kernel_size, stride=None, *_, **__):
    return _Call(kernel_size=kernel_size, stride=stride)


def _linear_args(input, weight, bias=None):
    return _Call(out_features=weight.shape[0])


def _pixel_unshuffle_args(input, downscale_factor):
    return _Call(downscale_factor=downscale_factor)


def _no_args(*_, **__):
    return _Call()


#: Functional forms: each binds its call's arguments, then the module class's entry applies.
_FUNCTIONAL_FORMS: dict[Callable, tuple[Callable[..., _Call], Any]] = {
    **dict.fromkeys((torch.conv1d, torch.conv2d, torch.conv3d), (_conv_args, nn.modules.conv._ConvNd)),
    **dict.fromkeys(
        (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d),
        (_conv_transpose_args, nn.modules.conv._ConvTransposeNd),
    ),
    **dict.fromkeys((F.max_pool1d, F.max_pool2d, F.max_pool3d), (_max_pool_args, pooling._MaxPoolNd)),
    **dict.fromkeys((F.avg_pool1d, F.avg_pool2d, F.avg_pool3d), (_avg_pool_args, pooling._AvgPoolNd)),
    **dict.fromkeys((F.lp_pool1d, F.lp_pool2d, F.lp_pool3d), (_lp_pool_args, pooling._LPPoolNd)),
    **dict.fromkeys(
        (
            F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d,
            F.adaptive_max_pool1d, F.adaptive_max_pool2d, F.adaptive_max_pool3d,
        ),
        (_no_args, pooling._AdaptiveAvgPoolNd),
    ),
    F.linear: (_linear_args, nn.Linear),
    F.interpolate: (_no_args, nn.Upsample),
    F.pixel_shuffle: (_no_args, nn.PixelShuffle),
    F.pixel_unshuffle: (_pixel_unshuffle_args, nn.PixelUnshuffle),
    F.multi_head_attention_forward: (_no_args, nn.MultiheadAttention),
    F.scaled_dot_product_attention: (_no_args, nn.MultiheadAttention),
    F.pad: (_no_args, nn.Identity),
}


def register_layer_handler(module_type: type[nn.Module], handler: LayerHandler) -> None:
    """Map your own layer type: ``handler(module, input, output) -> LayerDefinition``.

    Modules of that type (and its subclasses) become single layers; nothing inside them is traced.
    """
    if not (isinstance(module_type, type) and issubclass(module_type, nn.Module)):
        raise TypeError(f"register_layer_handler needs an nn.Module subclass, got {module_type!r}")
    _LAYER_KINDS[module_type] = handler
    _table_entry.cache_clear()


_TRANSPARENT = object()  # no table entry: the module's own torch calls are traced


@functools.lru_cache(maxsize=None)
def _table_entry(module_type: type) -> Any:
    for cls in module_type.__mro__:
        if cls in _LAYER_KINDS:
            return _LAYER_KINDS[cls]
    return _TRANSPARENT


# --- shapes ---------------------------------------------------------------------------------

def _find(shape: Sequence[int], spatial: tuple[int, ...]) -> int | None:
    """Where ``spatial`` sits as consecutive dims of ``shape`` (ignoring the batch dim)."""
    n = len(spatial)
    for start in range(1, len(shape) - n + 1):
        if tuple(shape[start:start + n]) == spatial:
            return start
    return None


def _follow(spatial: Spatial, x: Tensor, y: Tensor, channels_first: bool) -> Spatial:
    """The spatial sizes of a layer's output ``y``: unchanged, at the same dims as in ``x``, or
    (for convs, pools and resizes, whose layout torch fixes) the dims after batch and channels."""
    if spatial is not None:
        if _find(y.shape, spatial) is not None:
            return spatial
        start = _find(x.shape, spatial)
        if start is not None and x.dim() == y.dim():
            return tuple(y.shape[start:start + len(spatial)])
    return (tuple(y.shape[2:]) or None) if channels_first else None


def _judge(spatial: tuple[int, ...] | None, x: Tensor, y: Tensor) -> str:
    """An uninterpreted op by its shapes: ``keep`` positions, see them all (``global``), or unknown.

    A rearrangement (same number of elements) that loses the spatial dims merges positions
    (flatten, reshape into tokens or windows); a result no larger than one position's worth is a
    reduction over positions.  Anything else changed the spatial size in a way not modelled.
    """
    if spatial is None or _find(y.shape, spatial) is not None:
        return "keep"
    if y.numel() == x.numel() or y.numel() * math.prod(spatial) <= x.numel():
        return "global"
    return "unknown"


def _spatial_slice(index: Any, x: Tensor, flow: Any, y: Tensor) -> LayerDefinition | None:
    """``x[..., ::2, ::2, :]``-style basic slicing of the spatial dims, else None.

    A step s keeps one position in s.  PatchMerging (Swin) and Focus layers concatenate all s x s
    offsets, which together see an s x s block, so the step is the kernel as well as the stride
    (for a lone subsampling slice that overestimates the RF by s - 1 jumps).  A crop (step 1)
    keeps the RF, like padding.
    """
    start = _find(x.shape, flow.spatial) if flow.spatial and _find(y.shape, flow.spatial) is None else None
    items = index if isinstance(index, tuple) else (index,)
    if start is None or not all(isinstance(i, (slice, int)) or i is Ellipsis for i in items):
        return None
    if any(i is Ellipsis for i in items):
        at = next(n for n, i in enumerate(items) if i is Ellipsis)
        items = items[:at] + (slice(None),) * (x.dim() - len(items) + 1) + items[at + 1:]
    items += (slice(None),) * (x.dim() - len(items))
    spatial_items = items[start:start + len(flow.spatial)]
    if any(isinstance(i, int) for i in items[:start + len(flow.spatial)]) or len(items) != x.dim():
        return None
    steps = tuple(i.step or 1 for i in spatial_items)
    kind = "resize" if any(s > 1 for s in steps) else "passthrough"
    return LayerDefinition("getitem", kernel_size=steps, stride_size=steps, kind=kind)


# --- the trace ------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Flow:
    """What the trace knows about a tensor: its producing node and its spatial sizes."""

    node: int
    spatial: tuple[int, ...] | None


def _tensors(tree: Any) -> list[Tensor]:
    return [leaf for leaf in tree_flatten(tree)[0] if isinstance(leaf, Tensor)]


def _op_name(func: Callable) -> str:
    return getattr(func, "__name__", type(func).__name__).strip("_")


class _Recorder(TorchFunctionMode):
    """Records one forward pass as graph nodes in creation (topological) order."""

    def __init__(self, model: nn.Module, input_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.paths: dict[int, list[str]] = {}
        for path, module in model.named_modules(remove_duplicate=False):
            self.paths.setdefault(id(module), []).append(path)
        self.nodes: list[dict[str, Any]] = []
        self.names: set[str] = set()
        self.unsupported: list[dict[str, Any]] = []
        self.flows: dict[int, tuple[Tensor, _Flow]] = {}
        self.meta_copies: dict[int, tuple[Tensor, Tensor]] = {}
        self.running: list[nn.Module] = []
        self.opaque_depth = 0
        self.input = torch.empty(input_shape, device="meta")
        spatial = tuple(input_shape[2:]) or None
        layer = LayerDefinition("input", kernel_size=1, kind="input")
        node = self._add_node("input", layer, [], (), (), (None, spatial))
        self._mark([self.input], _Flow(node, spatial))

    # bookkeeping

    def _add_node(self, name, layer, predecessors, module_paths, sites, maps) -> int:
        unique, count = name, 1
        while unique in self.names:
            count += 1
            unique = f"{name}#{count}"
        self.names.add(unique)
        self.nodes.append(
            {
                "name": unique,
                "layer": layer.to_dict(),
                "predecessors": predecessors,
                "module_paths": list(module_paths),
                "sites": [list(site) for site in sites],
                "map_in": list(maps[0]) if maps[0] else None,
                "map_out": list(maps[1]) if maps[1] else None,
            }
        )
        return len(self.nodes) - 1

    def _mark(self, tensors: list[Tensor], flow: _Flow) -> None:
        for tensor in tensors:
            self.flows[id(tensor)] = (tensor, flow)

    def _flows_of(self, tensors: list[Tensor]) -> list[tuple[Tensor, _Flow]]:
        """The traced inputs, one per producing node, in argument order."""
        seen, result = set(), []
        for tensor in tensors:
            entry = self.flows.get(id(tensor))
            if entry and entry[0] is tensor and entry[1].node not in seen:
                seen.add(entry[1].node)
                result.append((tensor, entry[1]))
        return result

    def _running_paths(self) -> tuple[nn.Module | None, list[str]]:
        """The innermost running module and its paths ('' for the root or outside any module)."""
        module = self.running[-1] if self.running else None
        return module, self.paths.get(id(module), [""])

    def _record(self, name, layer, inputs, outputs, module_paths, sites) -> None:
        preds = [flow.node for _, flow in inputs]
        x, first = inputs[0]
        spatial = None
        if not layer.is_infinite:
            spatial = _follow(first.spatial, x, outputs[0], layer.kind in _SPATIAL_KINDS)
        node = self._add_node(name, layer, preds, module_paths, sites, (first.spatial, spatial))
        self._mark(outputs, _Flow(node, spatial))

    def _judged(self, layer, inputs, outputs, name, paths, sites, unsupported) -> None:
        """A layer or op without RF parameters of its own, named by what its shapes show.

        A module gets a node either way; a plain op only when it sees all positions, otherwise
        its outputs stay with their producer's node.  ``sites`` and ``unsupported`` are called
        only when needed (walking the stack is the costly part).
        """
        x, flow = inputs[0]
        verdict = _judge(flow.spatial, x, outputs[0])
        if verdict == "unknown":
            entry = dict(zip(("type", "module_paths", "sites"), unsupported()))
            entry["module_paths"] = list(entry["module_paths"])
            entry["sites"] = [list(site) for site in entry["sites"]]
            if entry not in self.unsupported:
                self.unsupported.append(entry)
            self._mark(outputs, _Flow(flow.node, None))
        elif verdict == "global" or isinstance(layer, nn.Module):
            handler = _global if verdict == "global" else _passthrough
            self._record(name, handler(layer, x, outputs[0]), inputs, outputs, paths, sites())
        else:
            self._mark(outputs, flow)

    # modules of the table: one node per call

    def enter_module(self, module: nn.Module, args: tuple) -> None:
        self.running.append(module)
        if _table_entry(type(module)) is not _TRANSPARENT:
            self.opaque_depth += 1

    def leave_module(self, module: nn.Module, args: tuple, output: Any) -> None:
        self.running.pop()
        entry = _table_entry(type(module))
        if entry is _TRANSPARENT:
            return
        self.opaque_depth -= 1
        inputs, outputs = self._flows_of(_tensors(args)), _tensors(output)
        if self.opaque_depth or not inputs or not outputs:
            return
        paths = self.paths.get(id(module), [""])
        name = paths[0] or type(module).__name__
        sites = _sites_of(module)
        if entry is None:
            self._judged(
                module, inputs, outputs, name, paths,
                sites=lambda: sites, unsupported=lambda: (type(module).__name__, paths, sites),
            )
        else:
            self._record(name, entry(module, inputs[0][0], outputs[0]), inputs, outputs, paths, sites)

    # every other torch call

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        args, kwargs = self._on_one_device(args, kwargs)
        result = func(*args, **kwargs)
        if not self.opaque_depth:
            self._record_call(func, args, kwargs, result)
        return result

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

    def _record_call(self, func, args, kwargs, result) -> None:
        outputs = _tensors(result)
        if not outputs:
            return
        inputs = self._flows_of(_tensors((args, kwargs)))
        if not inputs:
            return
        op = _op_name(func)
        enclosing = self._running_paths()[1][0]
        name = f"{enclosing}.{op}" if enclosing else op

        def call_site() -> tuple[Site, ...]:
            return _user_stack(sys._getframe())

        form = _FUNCTIONAL_FORMS.get(func)
        if form is not None:
            bind, module_class = form
            call = bind(*args, **kwargs)
            call.label = op
            layer = _LAYER_KINDS[module_class](call, inputs[0][0], outputs[0])
            self._record(name, layer, inputs, outputs, (), call_site())
        elif len(inputs) > 1:
            merge = LayerDefinition(op, kernel_size=1, kind="merge")
            self._record(name, merge, inputs, outputs, (), call_site())
        elif func is Tensor.__getitem__ and (sliced := _spatial_slice(args[1], *inputs[0], outputs[0])):
            self._record(name, sliced, inputs, outputs, (), call_site())
        else:
            unsupported = self._unsupported_op(op, call_site)
            self._judged(_Call(label=op), inputs, outputs, name, (), call_site, unsupported)

    def _unsupported_op(self, op: str, call_site: Callable) -> Callable[[], tuple]:
        """How to report ``op``: inside a childless custom module, as that module's type."""
        module, paths = self._running_paths()
        if module is not None and next(module.children(), None) is None:
            return lambda: (type(module).__name__, paths, _sites_of(module))
        return lambda: (op, paths, call_site())

    # the whole pass

    def run(self, model: nn.Module) -> int:
        """Run ``model`` on the meta input; return the index of the node of its first output."""
        with contextlib.ExitStack() as stack:
            stack.enter_context(register_module_forward_pre_hook(self.enter_module))
            stack.enter_context(register_module_forward_hook(self.leave_module))
            stack.enter_context(torch.no_grad())
            stack.enter_context(self)
            output = model(self.input)
        traced = self._flows_of(_tensors(output))
        if not traced:
            raise TraceError(f"the output of {type(model).__name__} does not depend on its input")
        return traced[0][1].node


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


def _attempts(
    model: nn.Module,
    input_shape: Sequence[int] | None,
    resolution: Sequence[int] | None,
    declared: Sequence[int] | None,
    input_res: int,
) -> list[tuple[str, tuple]]:
    """(mode, input shape) pairs to try, in order.

    First the lint ``resolution``, then the model's ``declared`` size (each in eval mode, then in
    train mode), then common sizes: all in eval mode, then all in train mode.  Train mode uses a
    batch of 2, as batch norm refuses a single value per channel there.  A size whose number of
    axes does not fit the model is skipped.
    """
    if input_shape is not None:
        return [(mode, tuple(input_shape)) for mode in ("eval", "train")]
    channels, axes = _first_layer(model)
    preferred = dict.fromkeys(s for sides in (resolution, declared) for s in _sides(sides, axes))
    generic = dict.fromkeys(s for size in (input_res, *_TRACE_SIZES) for s in _sides((size,), axes))
    attempts = [(mode, (batch, channels, *sides)) for sides in preferred for mode, batch in _MODES]
    attempts += [(mode, (batch, channels, *sides)) for mode, batch in _MODES for sides in generic]
    return list(dict.fromkeys(attempts))


_MODES = (("eval", 1), ("train", 2))


def _sides(sides: Sequence[int] | None, axes: int) -> list[tuple[int, ...]]:
    """The spatial sizes ``sides`` stands for on a model with ``axes`` spatial axes.

    One number is the same size on every axis; with three axes a 16-frame clip comes before a
    cube (video models).  A tuple of another length fits no model of ``axes`` axes: none.
    """
    if sides is None or not axes:
        return [()] if sides is not None else []
    sides = tuple(int(s) for s in sides)
    if len(sides) == axes:
        return [sides]
    if len(sides) != 1:
        return []
    size = sides[0]
    return [(_VIDEO_FRAMES, size, size), (size,) * 3] if axes == 3 else [(size,) * axes]


def _describe(error: BaseException) -> str:
    """The error's first line and the innermost user-code line that raised it."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if _user_file(f.filename)]
    at = f" (at {_user_file(frames[-1].filename)}:{frames[-1].lineno})" if frames else ""
    message = str(error).strip().splitlines()
    return f"{type(error).__name__}: {message[0] if message else ''}{at}"


def to_plain(
    model: nn.Module,
    input_shape: Sequence[int] | None = None,
    *,
    resolution: Sequence[int] | None = None,
    declared: Sequence[int] | None = None,
    input_res: int = 224,
) -> dict[str, Any]:
    """The model's graph as JSON-able data: :func:`rfa_lint.rf.graph.graph_to_plain`'s form plus
    ``unsupported`` (layer kinds that change spatial size in a way not modelled), ``input_shape``
    and ``mode`` (what the trace ran with).

    Each node also has ``map_in`` / ``map_out``: the spatial sizes of its first input and of its
    output at the traced shape (None without spatial positions).  Without ``input_shape`` the
    trace tries ``resolution`` (per-axis sizes; one number for every axis), then ``declared``
    (the model's own size), then ``input_res`` and common sizes (see :func:`_attempts`);
    :class:`TraceError` lists every attempt when none works.
    """
    was_training = model.training
    failures: dict[str, list[str]] = {}
    try:
        for mode, shape in _attempts(model, input_shape, resolution, declared, input_res):
            model.train(mode == "train")
            recorder = _Recorder(model, shape)
            try:
                output = recorder.run(model)
            except Exception as error:  # the model's own failure, reported below with its line
                failures.setdefault(_describe(error), []).append(f"{shape} {mode}")
                continue
            return {
                "nodes": recorder.nodes,
                "output": output,
                "unsupported": recorder.unsupported,
                "input_shape": list(shape),
                "mode": mode,
            }
    finally:
        model.train(was_training)
    # the model's own errors first: a one-line report cut short still says what went wrong
    reasons = "\n".join(f"  {reason} (input {_shapes(tried)})" for reason, tried in failures.items())
    raise TraceError(
        f"could not trace {type(model).__name__} on a meta tensor:\n{reasons}\n"
        "pass input_shape=(batch, channels, *spatial sizes) that the model accepts"
    )


def _shapes(tried: list[str]) -> str:
    return ", ".join(tried) if len(tried) <= 2 else f"{tried[0]} and {len(tried) - 1} more shapes"


def create_graph_from_pytorch_model(
    model: nn.Module, input_res: int | Sequence[int] = 224, input_shape: Sequence[int] | None = None
) -> EnrichedNetworkNode:
    """The seed's entry point: the output node of the model's graph.

    ``input_res`` picks the first size tried; the seed's full shape ``(1, 3, 399, 399)`` is
    taken as ``input_shape``.  The graph does not depend on the analysis resolution.
    """
    if not isinstance(input_res, int):
        input_shape, input_res = input_shape or tuple(input_res), 224
    return graph_from_plain(to_plain(model, input_shape, input_res=input_res))
