"""The dispatch table: layer kind (module class or functional op) -> receptive-field parameters.

A handler (:data:`rfa_lint.frontends.base.LayerHandler`) describes a layer over the spatial dims
the op itself runs on (dims ``2:`` of a channels-first tensor), from the layer's attributes and
the traced sizes of those dims in its input and output; the recorder places those dims on the
model's axes (a tensor's layout says which axis each dim is).  Each table entry has a family
saying how the layer treats positions (a class registered with
:func:`rfa_lint.frontends.base.register_layer_handler` is ``spatial``, and comes first):

- ``spatial``: torch's channels-first layers (conv, pool, resize) run a kernel on dims ``2:``;
- ``per_position``: norms, activations, dropout: positions unchanged;
- ``dense``: ``nn.Linear`` contracts the last dim (positions only when that dim holds some);
- ``attention``: every query reads the keys' token dim (see :func:`token_dim`); a recurrent
  layer reads its whole sequence the same way;
- ``reshape``: ``nn.Flatten`` moves positions without mixing them.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from dataclasses import dataclass
from fractions import Fraction
from types import SimpleNamespace
from typing import Any, Callable, Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules import pooling

from rfa_lint.frontends.base import LayerHandler, Shape, registered_handler
from rfa_lint.rf import windows as W
from rfa_lint.rf.graph import Kind, LayerDefinition


class Call(SimpleNamespace):
    """A functional op's arguments under the attribute names of its module class."""

    label: str = "call"


def label(layer: Any) -> str:
    return layer.label if isinstance(layer, Call) else type(layer).__name__


def _per_dim(value: Any, dims: int) -> tuple:
    return (value,) * dims if isinstance(value, (int, float, Fraction)) else tuple(value)


def _dims(out_shape: Shape) -> int:
    return max(len(out_shape), 1)


def _exact(value: Fraction) -> int | Fraction:
    return value.numerator if value.denominator == 1 else value


def _upsampled(taps: int, ratio: Fraction) -> tuple[Any, Any, Any]:
    """(kernel, stride, upsampling) of a layer whose output positions each read ``taps``
    neighbouring input positions, the output grid ``ratio`` times as fine as the input's.

    Upsampling runs the kernel on the finer output grid (LayerDefinition's ``upsampling``), so
    ``taps`` input positions are a fine-grid kernel of ``(taps - 1) * ratio + 1``: the RF grows by
    ``(taps - 1) * j_in``.  Downsampling reads ``taps`` positions with stride ``1 / ratio``.
    """
    if ratio > 1:
        return _exact((taps - 1) * ratio + 1), 1, _exact(ratio)
    if ratio == 1:
        return 1, 1, 1
    return taps, _exact(1 / ratio), 1


def _transposed_taps(kernel: int, stride: int, dilation: int) -> int:
    """Input positions one output position of a transposed conv reads, at most, per axis.

    Output ``o`` receives input ``i`` through tap ``t`` when ``o = i*s - p + t*d``; the taps that
    reach one ``o`` step by ``s / g`` (``g = gcd(d, s)``), so their inputs span
    ``floor((k - 1) * g / s) * d / g`` positions: ``ceil(k / s)`` taps without dilation
    (k=4, s=2 reads 2; k=2, s=2 reads 1).
    """
    g = math.gcd(dilation, stride)
    return (kernel - 1) * g // stride * (dilation // g) + 1


def _padding(layer: Any, kernel: tuple, dilation: tuple) -> tuple:
    """The positions of padding before the map, per dim (``"same"`` pads ``d * (k - 1)`` in
    all, the smaller half before)."""
    padding = getattr(layer, "padding", 0)
    if padding == "same":
        return tuple(d * (k - 1) // 2 for k, d in zip(kernel, dilation))
    if padding == "valid":
        return (0,) * len(kernel)
    return _per_dim(padding, len(kernel))


def conv(layer: Any, in_shape: Shape, out_shape: Shape) -> LayerDefinition:
    """A conv; a transposed conv upsamples by its stride and reads :func:`_transposed_taps`."""
    dims = _dims(out_shape)
    kernel, stride, dilation = (
        _per_dim(v, dims) for v in (layer.kernel_size, layer.stride, layer.dilation)
    )
    padding = _padding(layer, kernel, dilation)
    if not getattr(layer, "transposed", False):
        return LayerDefinition(
            label(layer), kernel_size=kernel, stride_size=stride, dilation=dilation,
            filters=int(layer.out_channels), kind=Kind.CONV,
            reads=tuple(map(W.conv_reads, kernel, stride, dilation, padding)),
        )
    shapes = [
        _upsampled(_transposed_taps(k, s, d), Fraction(s)) for k, s, d in zip(kernel, stride, dilation)
    ]
    return LayerDefinition(
        label(layer),
        kernel_size=tuple(k for k, _, _ in shapes),
        upsampling=tuple(u for _, _, u in shapes),
        filters=int(layer.out_channels),
        kind=Kind.CONV,
        reads=tuple(map(W.transposed_reads, kernel, stride, dilation, padding)),
    )


def pool(layer: Any, in_shape: Shape, out_shape: Shape) -> LayerDefinition:
    dims = _dims(out_shape)
    kernel = _per_dim(layer.kernel_size, dims)
    stride = _per_dim(layer.stride, dims) if layer.stride else kernel
    dilation = _per_dim(getattr(layer, "dilation", 1), dims)
    return LayerDefinition(
        label(layer),
        kernel_size=kernel,
        stride_size=stride,
        dilation=dilation,
        kind=Kind.POOL,
        reads=tuple(map(W.conv_reads, kernel, stride, dilation, _padding(layer, kernel, dilation))),
    )


def adaptive_window(size_in: int, size_out: int) -> int:
    """The largest window of adaptive pooling from ``size_in`` to ``size_out`` positions:
    output ``i`` reads ``floor(i*in/out)`` to ``ceil((i+1)*in/out) - 1``."""
    return max(
        -(-(i + 1) * size_in // size_out) - i * size_in // size_out for i in range(size_out)
    )


def adaptive(layer: Any, in_shape: Shape, out_shape: Shape) -> LayerDefinition:
    """Adaptive pooling at the traced sizes, by its integer windows
    (:func:`rfa_lint.rf.windows.adaptive_reads`): to ``n`` per axis from ``m > n`` it reads
    windows of up to ``ceil(m / n)`` (+1 when ``n`` does not divide ``m``) positions, ``m / n``
    apart; to one position per axis it is global.  To ``n >= m`` positions each output reads
    one or two inputs: no pooling window, a finer grid (a resize when no axis shrinks)."""
    sizes = list(zip(in_shape, out_shape))
    if all(n == 1 for _, n in sizes) and any(m > 1 for m, _ in sizes):
        return LayerDefinition(label(layer), kernel_size=None, kind=Kind.GLOBAL)
    shapes = [(adaptive_window(m, n), _exact(Fraction(m, n)), 1) if m > n else (1, 1, _exact(Fraction(n, m)))
              for m, n in sizes]
    kind = Kind.RESIZE if any(m < n for m, n in sizes) and all(m <= n for m, n in sizes) else Kind.POOL
    return _per_axis(label(layer), shapes, kind, tuple(W.adaptive_reads(m, n) for m, n in sizes))


def _per_axis(name: str, shapes: list[tuple], kind: Kind, reads: tuple) -> LayerDefinition:
    """A layer from per-axis ``(kernel, stride, upsampling)`` triples and reads."""
    kernel, stride, upsampling = zip(*shapes)
    return LayerDefinition(name, kernel_size=kernel, stride_size=stride, upsampling=upsampling, kind=kind,
                           reads=reads)


def resize(layer: Any, in_shape: Shape, out_shape: Shape) -> LayerDefinition:
    """Interpolation / nn.Upsample at the traced scale, per axis (read from the shapes).

    Each output position reads the taps of its mode around its place on the input grid
    (:func:`rfa_lint.rf.windows.resize_reads`): an upsampling adds ``(taps - 1) * j_in``
    (nearest 0, bilinear 1, bicubic 3) and makes the grid ``scale`` times finer; a downsampling
    reads ``taps`` positions (more with ``antialias``) with stride ``1 / scale``.  A map of fewer
    positions than taps is read whole.  ``area`` is adaptive average pooling.
    """
    mode = getattr(layer, "mode", "nearest")
    if mode == "area":
        return adaptive(layer, in_shape, out_shape)
    corners, antialias = (bool(getattr(layer, key, False)) for key in ("align_corners", "antialias"))
    reads = tuple(W.resize_reads(i, o, mode, corners, antialias) for o, i in zip(out_shape, in_shape))
    taps = [max(max(c) - min(c) + 1 for c in r.offsets) for r in reads]
    shapes = [_upsampled(min(t, i), Fraction(o, i)) for t, o, i in zip(taps, out_shape, in_shape)]
    return _per_axis(label(layer), shapes, Kind.RESIZE, reads)


def pixel_shuffle(layer: Any, in_shape: Shape, out_shape: Shape) -> LayerDefinition:
    """Channels become an r-times finer grid; each position reads one input position."""
    ratios = [Fraction(o, i) for o, i in zip(out_shape, in_shape)]
    return LayerDefinition(
        label(layer), kernel_size=1, upsampling=tuple(_exact(r) for r in ratios), kind=Kind.RESIZE,
        reads=tuple(W.shuffle_reads(r.numerator) for r in ratios),
    )


def space_to_depth(layer: Any, in_shape: Shape, out_shape: Shape) -> LayerDefinition:
    factor = (int(layer.downscale_factor),) * _dims(out_shape)
    return LayerDefinition(label(layer), kernel_size=factor, stride_size=factor, kind=Kind.RESIZE,
                           reads=tuple(W.conv_reads(f, f, 1, 0) for f in factor))


def unpadded(layer: Any) -> bool:
    """The layer's own padding is zero (a conv or pool whose kernel spans an unpadded map)."""
    padding = getattr(layer, "padding", None)
    if isinstance(padding, str):
        return padding == "valid"
    return padding is not None and all(p == 0 for p in _per_dim(padding, 1))


@dataclass(frozen=True)
class Entry:
    """A table entry: how the layer treats positions, and its handler (``spatial`` only)."""

    family: str
    handler: LayerHandler | None = None
    contracts_channels: bool = False  # a conv reads all channels, a pool one


_CONV = Entry("spatial", conv, contracts_channels=True)
_PER_POSITION = Entry("per_position")


def parameters(layer: Any) -> int:
    """The weights a layer holds: a module's own (its submodules' too), a functional call's
    weight and bias.  Meta tensors have sizes like any other."""
    if isinstance(layer, nn.Module):
        return sum(p.numel() for p in layer.parameters())
    return sum(t.numel() for t in (getattr(layer, "weight", None), getattr(layer, "bias", None))
               if isinstance(t, Tensor))


def multiply_accumulates(entry: Entry, layer: Any, args: tuple, x: Tensor, y: Tensor) -> tuple[int, int]:
    """Multiply-accumulates of one call over its whole batch (biases not counted), and the part
    of them that multiplies pairs of positions (an attention's queries by its keys).

    Every weight of a conv meets each output position once (each input position, for a
    transposed conv): ``positions * c_out * c_in / groups * prod(k)``; every weight of a linear
    meets each vector of its output.  An attention is counted from its operands' shapes
    (:func:`attention_macs`).  Other layers multiply no weights.
    """
    if entry.family == "attention":
        return attention_macs(layer, args)
    weight = getattr(layer, "weight", None)
    if not isinstance(weight, Tensor):
        return 0, 0
    if entry.family == "dense":
        return y.numel() // max(y.shape[-1], 1) * weight.numel(), 0
    if entry.contracts_channels:
        grid = x if getattr(layer, "transposed", False) else y
        channels = grid.shape[grid.dim() - weight.dim() + 1]  # (N, C, *sizes), or unbatched (C, *sizes)
        return grid.numel() // max(channels, 1) * weight.numel(), 0
    return 0, 0


def attention_macs(layer: Any, args: tuple) -> tuple[int, int]:
    """(all, pairs) multiply-accumulates of an attention, which the framework runs inside one call.

    Scaled dot-product attention multiplies each query by each key (``L * S * E`` per batch and
    head) and each weight by each value (``L * S * Ev``): both are pairs.
    ``nn.MultiheadAttention`` projects its queries, keys and values on the way in
    (``L * E * E + S * kdim * E + S * vdim * E``) and its output on the way out (``L * E * E``);
    between them its heads split ``E``, so the two products cost ``L * S * E`` each.
    A recurrent layer, its weights per step: ``L * gates * hidden * (input + hidden)`` per
    layer and direction.
    """
    if isinstance(layer, nn.RNNBase):
        return _recurrent_macs(layer, args[0]) if args and isinstance(args[0], Tensor) else 0, 0
    if isinstance(layer, nn.MultiheadAttention):
        query = args[0]
        key = args[1] if len(args) > 1 and isinstance(args[1], Tensor) else query
        value = args[2] if len(args) > 2 and isinstance(args[2], Tensor) else key
        e, kdim, vdim = layer.embed_dim, layer.kdim, layer.vdim
    else:  # the functional forms' calls
        query, key, value = layer.query, layer.key, layer.value
        if not hasattr(layer, "embed_dim"):  # F.scaled_dot_product_attention: (..., L, E)
            pairs = query.numel() // query.shape[-1] * key.shape[-2] * (query.shape[-1] + value.shape[-1])
            return pairs, pairs
        e = kdim = vdim = int(layer.embed_dim)  # F.multi_head_attention_forward
    queries, keys = query.numel() // e, key.numel() // kdim  # over the batch
    pairs = 2 * queries * key.shape[token_dim(layer, query)] * e
    return 2 * queries * e * e + keys * (kdim + vdim) * e + pairs, pairs


def _recurrent_macs(layer: nn.RNNBase, x: Tensor) -> int:
    gates = {"LSTM": 4, "GRU": 3}.get(layer.mode, 1)
    steps = x.numel() // layer.input_size  # over the batch
    hidden, directions = layer.hidden_size, 2 if layer.bidirectional else 1
    total, width = 0, layer.input_size
    for _ in range(layer.num_layers):
        total += directions * steps * gates * hidden * (width + (layer.proj_size or hidden))
        if layer.proj_size:
            total += directions * steps * hidden * layer.proj_size
        width = directions * (layer.proj_size or hidden)
    return total


#: Layer kind -> entry, looked up along the module class's MRO.
LAYER_KINDS: dict[type, Entry] = {
    nn.modules.conv._ConvNd: _CONV,  # transposed convs too
    pooling._MaxPoolNd: Entry("spatial", pool),
    pooling._AvgPoolNd: Entry("spatial", pool),
    pooling._LPPoolNd: Entry("spatial", pool),
    pooling._AdaptiveAvgPoolNd: Entry("spatial", adaptive),
    pooling._AdaptiveMaxPoolNd: Entry("spatial", adaptive),
    nn.Upsample: Entry("spatial", resize),
    nn.PixelShuffle: Entry("spatial", pixel_shuffle),
    nn.PixelUnshuffle: Entry("spatial", space_to_depth),
    nn.Flatten: Entry("reshape"),
    nn.Linear: Entry("dense"),
    nn.MultiheadAttention: Entry("attention"),
    nn.RNNBase: Entry("attention"),
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
        _PER_POSITION,
    ),
}


def token_dim(layer: Any, query: Tensor) -> int:
    """The dim of the tokens an attention attends over: ``nn.MultiheadAttention`` and recurrent
    layers take (L, N, E) unless ``batch_first``; the functional forms take (..., L, E)."""
    if isinstance(layer, (nn.MultiheadAttention, nn.RNNBase)):
        return 1 if layer.batch_first and query.dim() == 3 else 0
    return getattr(layer, "token_dim", query.dim() - 2)


def _conv_args(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return Call(
        kernel_size=weight.shape[2:], stride=stride, padding=padding, dilation=dilation,
        out_channels=weight.shape[0], weight=weight, bias=bias,
    )


def _conv_transpose_args(
    input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1
):
    return Call(
        kernel_size=weight.shape[2:], stride=stride, padding=padding, dilation=dilation,
        out_channels=weight.shape[1] * groups, transposed=True, weight=weight, bias=bias,
    )


def _max_pool_args(input, kernel_size, stride=None, padding=0, dilation=1, *_, **__):
    return Call(kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation)


def _avg_pool_args(input, kernel_size, stride=None, padding=0, *_, **__):
    return Call(kernel_size=kernel_size, stride=stride, padding=padding)


def _lp_pool_args(input, norm_type, kernel_size, stride=None, *_, **__):
    return Call(kernel_size=kernel_size, stride=stride, padding=0)


def _linear_args(input, weight, bias=None):
    return Call(out_features=weight.shape[0], weight=weight, bias=bias)


def _interpolate_args(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                      recompute_scale_factor=None, antialias=False):
    return Call(mode=mode, align_corners=align_corners, antialias=antialias)


def _pixel_unshuffle_args(input, downscale_factor):
    return Call(downscale_factor=downscale_factor)


def _mha_args(query, key, value, embed_dim_to_check, *_, **__):
    return Call(token_dim=0, query=query, key=key, value=value, embed_dim=embed_dim_to_check)


def _sdpa_args(query, key, value, *_, **__):
    return Call(query=query, key=key, value=value)


def _no_args(*_, **__):
    return Call()


#: Functional forms: each binds its call's arguments, then the module class's entry applies.
FUNCTIONAL_FORMS: dict[Callable, tuple[Callable[..., Call], type]] = {
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
    F.interpolate: (_interpolate_args, nn.Upsample),
    F.pixel_shuffle: (_no_args, nn.PixelShuffle),
    F.pixel_unshuffle: (_pixel_unshuffle_args, nn.PixelUnshuffle),
    F.multi_head_attention_forward: (_mha_args, nn.MultiheadAttention),
    F.scaled_dot_product_attention: (_sdpa_args, nn.MultiheadAttention),
}


#: Handlers by module class name, used for the classes a caller names (the seed's
#: ``add_custom_layer_handler`` and ``custom_layers``).
NAMED_HANDLERS: dict[str, LayerHandler] = {}


#: The classes :func:`opaque_layers` makes single layers, for the block it runs (per context, so
#: the table itself is never changed: a trace in another thread sees none of them).
_OPAQUE: contextvars.ContextVar[dict[type, Entry] | None] = contextvars.ContextVar(
    "opaque_layers", default=None)


@contextlib.contextmanager
def opaque_layers(model: nn.Module, names: Iterable[str]) -> Iterator[None]:
    """Within the block, the modules of ``model`` whose class is named in ``names`` (and not in
    the table already) are single layers: described by their :data:`NAMED_HANDLERS` entry, else
    as acting per position."""
    names = set(names)
    added = {
        cls: Entry("spatial", NAMED_HANDLERS[cls.__name__]) if cls.__name__ in NAMED_HANDLERS
        else _PER_POSITION
        for cls in {type(m) for m in model.modules()}
        if cls.__name__ in names and table_entry(cls) is None
    }
    token = _OPAQUE.set({**(_OPAQUE.get() or {}), **added})
    try:
        yield
    finally:
        _OPAQUE.reset(token)


def table_entry(module_type: type) -> Entry | None:
    """The entry of a module class (None: not a layer; its own torch calls are traced): of its
    nearest class along the MRO that is registered, in the table or made opaque, registered first."""
    opaque = _OPAQUE.get() or {}
    for cls in module_type.__mro__:
        handler = registered_handler(cls)
        if handler is not None:
            return Entry("spatial", handler)
        entry = LAYER_KINDS.get(cls) or opaque.get(cls)
        if entry is not None:
            return entry
    return None
