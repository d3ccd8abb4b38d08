"""Tensor operations that are not layers: how each one moves, mixes or drops positions.

:func:`effect` reads one torch call (its arguments, its outputs and the layouts of its traced
inputs) and says what the call does to positions: views and permutes move them (no node),
reductions and contractions over dims holding positions mix them (a pooling, an attention),
an op without rules keeps them when its shapes say it is elementwise.  ``torch.roll`` is one
of those: Swin's shifted windows move which positions share a window, not how many, so a
shifted window is the same kernel.  Layouts are :mod:`.layout`'s; the recorder turns an
:class:`Effect` into graph nodes.
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils._pytree import tree_flatten

from rfa_lint.rf.graph import Kind, LayerDefinition

from . import layout as L
from .layout import Factor, Layout


#: How an op mixes the positions it reads (not a layer :class:`~rfa_lint.rf.graph.Kind`: the
#: tracer turns a mixer into one, see ``trace._MIXING_KINDS``); "fold" is the tracer's own.
Mixer = Literal["attention", "pool", "dense", "fold"]


@dataclass
class Effect:
    """What one call does to positions.

    ``layouts``: one per output tensor (None: positions unknown); empty when the outputs do not
    carry the inputs' data (``new_zeros``, ``zeros_like``).  ``mixed``: the positions the call
    mixes, read as ``mixer`` ("attention", "pool" or "dense").  ``layer``: the call is a layer of
    its own (a strided slice).  ``verdict``: "global" (it sees every position, judged by shapes)
    or "unknown" (it changes positions in a way not modelled).  ``sources``: the tensors that are
    data inputs (default: every traced argument).  ``broadcast``: the inputs meet elementwise,
    so one without spatial extent is spread over every position of the others (a gate).
    """

    layouts: list[Layout | None]
    mixed: list[Factor] = field(default_factory=list)
    mixer: Mixer = "pool"
    layer: LayerDefinition | None = None
    verdict: Literal["keep", "global", "unknown"] = "keep"
    sources: list[Tensor] | None = None
    broadcast: bool = False


UNTRACED = Effect([])


@dataclass
class Op:
    """One torch call as :func:`effect` sees it."""

    name: str
    args: tuple
    kwargs: dict
    outputs: list[Tensor]
    layout_of: Callable[[Tensor], Layout | None]  # an untraced tensor has no positions
    axes: int
    func: Callable | None = None

    def arg(self, name: str, position: int, default: Any = None) -> Any:
        if name in self.kwargs:
            return self.kwargs[name]
        return self.args[position] if len(self.args) > position else default


def _norm(dim: int, ndim: int) -> int:
    return dim % ndim if ndim else 0


def _unknown(op: Op) -> Effect:
    """Outputs of an input whose positions are already unknown (reported where they were lost)."""
    return Effect([None] * len(op.outputs))


# --- moving positions ------------------------------------------------------------------------

def _reshape(op: Op) -> Effect | None:
    """view / reshape / flatten / unflatten / squeeze / unsqueeze: a row-major regrouping."""
    layout = op.layout_of(op.args[0])
    if layout is None:
        return Effect([None] * len(op.outputs), sources=[op.args[0]])
    out = [L.reshape(layout, y.shape) for y in op.outputs]
    return None if any(o is None for o in out) else Effect(out, sources=[op.args[0]])


def _permutation(op: Op) -> list[int] | None:
    """The dim order of a permute-like call, from its arguments (never from the sizes)."""
    x = op.args[0]
    n = x.dim()
    order = list(range(n))
    name = op.name
    if name == "permute":
        dims = op.args[1:] if len(op.args) > 1 else op.kwargs.get("dims")
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = dims[0]
        return [_norm(d, n) for d in dims]
    if name in ("transpose", "swapaxes", "swapdims"):
        a = _norm(op.arg("dim0", 1, op.kwargs.get("axis0")), n)
        b = _norm(op.arg("dim1", 2, op.kwargs.get("axis1")), n)
    elif name in ("t", "mT", "mH", "adjoint"):
        if n < 2:
            return order
        a, b = n - 2, n - 1
    elif name in ("T", "H"):
        return order[::-1]
    elif name in ("movedim", "moveaxis"):
        source, destination = op.arg("source", 1), op.arg("destination", 2)
        source = [source] if isinstance(source, int) else list(source)
        destination = [destination] if isinstance(destination, int) else list(destination)
        source, destination = [_norm(d, n) for d in source], [_norm(d, n) for d in destination]
        rest = iter(d for d in order if d not in source)
        placed = dict(zip(destination, source))
        return [placed[i] if i in placed else next(rest) for i in range(n)]
    else:
        return None
    order[a], order[b] = order[b], order[a]
    return order


def _permute(op: Op) -> Effect | None:
    layout = op.layout_of(op.args[0])
    order = _permutation(op)
    if layout is None:
        return _unknown(op)
    return None if order is None else Effect([L.permute(layout, order)])


def _index(layout: Layout, shape: Sequence[int], index: Any, axes: int) -> Effect | None:
    """Basic indexing: ints drop a dim, None adds one, slices crop; a step ``s`` on a dim of one
    axis keeps one position in ``s``.

    PatchMerging (Swin) and Focus layers concatenate all s x s offsets, which together see an
    s x s block, so a step is a kernel as well as a stride (a ``resize`` layer; for a lone
    subsampling slice that overestimates the RF by s - 1 jumps).  A crop keeps the RF, like
    padding.  One advanced (tensor or list) index picks entries of a dim without positions (a
    channel selection); any other advanced indexing: None.
    """
    items = index if isinstance(index, tuple) else (index,)
    advanced = [i for i in items if not (isinstance(i, (int, slice)) or i is None or i is Ellipsis)]
    if len(advanced) > 1 or any(isinstance(i, Tensor) and i.dtype == torch.bool for i in advanced):
        return None
    consumed = sum(1 for i in items if i is not None and i is not Ellipsis)
    if Ellipsis in items:
        at = items.index(Ellipsis)
        items = items[:at] + (slice(None),) * (len(shape) - consumed) + items[at + 1:]
    items += (slice(None),) * (len(shape) - sum(1 for i in items if i is not None))
    out, steps, d = [], [1] * axes, 0
    for item in items:
        if item is None:
            out.append(L.plain(1))
            continue
        dim, n = layout[d], shape[d]
        d += 1
        if isinstance(item, int):
            continue
        if not isinstance(item, slice):  # the advanced index
            if L.has_positions([dim]):
                return None
            out.extend(L.plain(k) for k in (item.shape if isinstance(item, Tensor) else (len(item),)))
            continue
        start, stop, step = item.indices(n)
        if step == 1:
            cropped = L.crop(dim, start, stop)
            if cropped is None:
                return None
            out.append(cropped)
            continue
        count = len(range(start, stop, step))
        fs = L.factors(dim)
        if not L.has_positions([dim]):
            out.append(L.plain(count))
        elif len(dim) == 1 and len(fs) == 1 and fs[0].step == 1 and not fs[0].key and fs[0].axis < axes:
            steps[fs[0].axis] = step
            out.append(((Factor(fs[0].axis, count),),))
        else:
            return None
    layer = None
    if any(s > 1 for s in steps):
        layer = LayerDefinition("getitem", kernel_size=steps, stride_size=steps, kind=Kind.RESIZE)
    return Effect([tuple(out)], layer=layer)


def _getitem(op: Op) -> Effect | None:
    layout = op.layout_of(op.args[0])
    if layout is None:
        return _unknown(op)
    return _index(layout, op.args[0].shape, op.args[1], op.axes)


def _cat(op: Op) -> Effect | None:
    """Concatenation: along a dim without positions the inputs merge; along tokens, untraced
    pieces (class tokens) become segments without positions."""
    tensors = [t for t in (op.args[0] if op.args else op.kwargs["tensors"]) if isinstance(t, Tensor)]
    y = op.outputs[0]
    d = _norm(op.arg("dim", 1, 0), y.dim())
    stack = op.name == "stack"
    layouts = [op.layout_of(t) for t in tensors]
    if any(lay is None for lay in layouts):
        return Effect([None])
    if stack:
        layouts = [lay[:d] + (L.plain(1),) + lay[d:] for lay in layouts]
    shapes = [L.sizes(lay) for lay in layouts]
    joined = L.concatenate([lay[d] for lay in layouts])
    if joined is None:
        return Effect([None], verdict="unknown")
    out = list(L.broadcast(list(zip(layouts, shapes)), y.shape))
    out[d] = joined
    return Effect([tuple(out)])


def _split(op: Op) -> Effect | None:
    """split / chunk / tensor_split / narrow crop consecutive ranges; unbind / select drop the
    dim."""
    x = op.args[0]
    layout = op.layout_of(x)
    if layout is None:
        return _unknown(op)
    name = op.name
    position = 1 if name in ("unbind", "narrow", "select") else 2
    d = _norm(op.arg("dim", position, 0), x.dim())
    if name in ("unbind", "select"):
        return Effect([layout[:d] + layout[d + 1:]] * len(op.outputs))
    start = int(op.arg("start", 2, 0)) % x.shape[d] if name == "narrow" else 0
    out = []
    for y in op.outputs:
        cropped = L.crop(layout[d], start, start + y.shape[d])
        if cropped is None:
            return None
        out.append(layout[:d] + (cropped,) + layout[d + 1:])
        start += y.shape[d]
    return Effect(out)


def _pad(op: Op) -> Effect | None:
    """F.pad: padded dims grow by padding entries (their positions stay where they were)."""
    x = op.args[0]
    layout = op.layout_of(x)
    if layout is None:
        return _unknown(op)
    pad = op.arg("pad", 1)
    out = list(layout)
    for i in range(len(pad) // 2):
        d = x.dim() - 1 - i
        out[d] = L.padded(out[d], int(pad[2 * i]), int(pad[2 * i + 1]))
        if out[d] is None:
            return Effect([None], verdict="unknown")
    return Effect([tuple(out)])


def _run(dim: L.Dim) -> Factor | None:
    """The factor of a dim that is one run of positions of one axis, else None."""
    fs = L.factors(dim)
    if len(dim) == 1 and len(fs) == 1 and fs[0].axis is not None and not fs[0].key:
        return fs[0]
    return None


def _pair(value: Any, n: int) -> tuple[int, ...]:
    return (int(value),) * n if isinstance(value, int) else tuple(int(v) for v in value)


def _unfold(op: Op) -> Effect | None:
    """Sliding windows as dims of their own; the window offsets stay positions, so the layer
    that contracts them (a Linear on patches) is the window's kernel.

    ``x.unfold(d, size, step)`` turns dim ``d`` into window starts ``step`` apart plus a new last
    dim of ``size`` offsets; ``F.unfold`` (im2col) puts each window's offsets into the channel
    dim and the window starts, row-major, into the last dim.
    """
    x = op.args[0]
    layout = op.layout_of(x)
    if layout is None:
        return _unknown(op)
    y = op.outputs[0]
    if op.func is F.unfold:
        n = x.dim() - 2
        kernel, dilation, padding, stride = (
            _pair(op.arg(name, i, default), n)
            for i, (name, default) in enumerate(
                (("kernel_size", 1), ("dilation", 1), ("padding", 0), ("stride", 1)), start=1
            )
        )
        runs = [_run(dim) for dim in layout[2:]]
        if None in runs:
            return None
        sizes = [
            (m + 2 * p - d * (k - 1) - 1) // s + 1
            for m, k, d, p, s in zip(x.shape[2:], kernel, dilation, padding, stride)
        ]
        offsets = tuple(Factor(f.axis, k, d * f.step) for f, k, d in zip(runs, kernel, dilation))
        starts = tuple(Factor(f.axis, c, s * f.step) for f, c, s in zip(runs, sizes, stride))
        return Effect([(layout[0], ((Factor(None, x.shape[1]),) + offsets,), (starts,))])
    d = _norm(op.arg("dimension", 1), x.dim())
    size, step = int(op.arg("size", 2)), int(op.arg("step", 3))
    run = _run(layout[d])
    if run is None:
        if L.has_positions([layout[d]]):
            return None
        return Effect([layout[:d] + (L.plain(y.shape[d]),) + layout[d + 1:] + (L.plain(size),)])
    starts = ((Factor(run.axis, y.shape[d], step * run.step),),)
    offsets = ((Factor(run.axis, size, run.step),),)
    return Effect([layout[:d] + (starts,) + layout[d + 1:] + (offsets,)])


# --- mixing positions ------------------------------------------------------------------------

def _reduced_dims(op: Op, ndim: int) -> list[int]:
    if op.name == "norm":
        dim = op.arg("dim", 2)
    elif op.name == "mode":
        dim = op.arg("dim", 1, -1)
    else:
        dim = op.kwargs.get("dim")
        if dim is None and len(op.args) > 1:
            candidate = op.args[1]
            ints = candidate if isinstance(candidate, (tuple, list)) else [candidate]
            if all(isinstance(i, int) and not isinstance(i, bool) for i in ints):
                dim = candidate
    if dim is None:
        return list(range(ndim))
    return sorted({_norm(d, ndim) for d in ([dim] if isinstance(dim, int) else dim)})


def _reduce(op: Op) -> Effect | None:
    """mean / sum / amax / max(dim) / std ...: a pooling over the positions of the reduced dims."""
    x = op.args[0]
    if op.name in ("max", "min") and len(op.args) > 1 and isinstance(op.args[1], Tensor):
        return None  # elementwise max of two tensors
    layout = op.layout_of(x)
    if layout is None:
        return _unknown(op)
    dims = _reduced_dims(op, x.dim())
    y = op.outputs[0]
    if y.dim() == x.dim():
        out = tuple(L.collapsed(dim) if i in dims else dim for i, dim in enumerate(layout))
    else:
        out = tuple(dim for i, dim in enumerate(layout) if i not in dims)
    if L.sizes(out) != tuple(y.shape):
        return None
    mixed = [f for i in dims for f in L.factors(layout[i])]
    return Effect([out] * len(op.outputs), mixed=mixed, mixer="pool")


def _along(op: Op) -> Effect | None:
    """softmax / normalize / cumsum along one dim: every entry reads the whole dim.

    Over an attention's key positions the mixing is left to the contraction with the values
    (counted once there)."""
    x = op.args[0]
    layout = op.layout_of(x)
    if layout is None:
        return _unknown(op)
    if op.name == "normalize":
        dim = op.arg("dim", 2, 1)
    else:
        dim = op.arg("dim", 1)
        if dim is None:  # softmax's legacy implicit dim
            dim = 0 if x.dim() in (0, 1, 3) else 1
    mixed = [f for f in L.factors(layout[_norm(dim, x.dim())]) if f.positions]
    return Effect([layout] * len(op.outputs), mixed=mixed, mixer="attention")


def _matmul_subscripts(na: int, nb: int) -> tuple[str, str, str]:
    """einsum subscripts of ``a @ b`` for operands of ``na`` and ``nb`` dims (broadcast batch)."""
    batch = "abcdefgh"[: max(na, nb, 2) - 2]
    a = batch[len(batch) - (na - 2):] + "IJ" if na >= 2 else "J"
    b = batch[len(batch) - (nb - 2):] + "JK" if nb >= 2 else "J"
    out = batch + ("I" if na >= 2 else "") + ("K" if nb >= 2 else "")
    return a, b, out


def _contraction(op: Op, operands: list[tuple[Tensor, str]], output: str) -> Effect | None:
    """A product of tensors (matmul, einsum): contracted letters that hold positions mix them,
    read as an attention (``q @ k^T`` makes key positions; ``attn @ v`` mixes them)."""
    layouts = [op.layout_of(t) for t, _ in operands]
    if any(lay is None for lay in layouts):
        return Effect([None])
    out, mixed = L.contract([(lay, letters) for lay, (_, letters) in zip(layouts, operands)], output)
    if L.sizes(out) != tuple(op.outputs[0].shape):
        return None
    return Effect([out], mixed=mixed, mixer="attention")


def _matmul(op: Op) -> Effect | None:
    a, b = op.args[0], op.args[1]
    if op.name == "rmatmul":
        a, b = b, a
    if not (isinstance(a, Tensor) and isinstance(b, Tensor)) or not a.dim() or not b.dim():
        return None
    sa, sb, out = _matmul_subscripts(a.dim(), b.dim())
    return _contraction(op, [(a, sa), (b, sb)], out)


def _einsum(op: Op) -> Effect | None:
    parsed = _einsum_subscripts(op.args)
    if parsed is None:
        return None
    operands, subscripts, output = parsed
    return _contraction(op, list(zip(operands, subscripts)), output)


def _einsum_subscripts(args: tuple) -> tuple[Sequence[Tensor], list[str], str] | None:
    """(operands, their subscripts, the output's) of an einsum call, ``...`` spelled out in
    letters of its own; None for a form not read (sublists)."""
    if not args or not isinstance(args[0], str):
        return None
    equation = args[0].replace(" ", "")
    operands = args[1:]
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = operands[0]
    inputs, arrow, output = equation.partition("->")
    subscripts = inputs.split(",")
    if len(subscripts) != len(operands):
        return None
    spare = [c for c in string.ascii_letters if c not in equation]
    widths = [t.dim() - (len(s) - 3) for s, t in zip(subscripts, operands) if "..." in s]
    ellipsis = "".join(spare[: max(widths, default=0)])
    subscripts = [
        s.replace("...", ellipsis[len(ellipsis) - (t.dim() - (len(s) - 3)):]) if "..." in s else s
        for s, t in zip(subscripts, operands)
    ]
    if arrow:
        output = output.replace("...", ellipsis)
    else:
        letters = "".join(subscripts).replace(ellipsis, "") if ellipsis else "".join(subscripts)
        output = ellipsis + "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    return operands, subscripts, output


# --- multiply-accumulates --------------------------------------------------------------------

#: Products of tensors outside the layer table, by op name: where their two factors start
#: (after ``input`` in ``addmm(input, a, b)``-like calls).
_PRODUCTS = {
    **dict.fromkeys(("matmul", "rmatmul", "mm", "bmm", "mv", "dot", "inner"), 0),
    **dict.fromkeys(("addmm", "baddbmm", "addbmm", "addmv"), 1),
}


#: The ops :func:`product_macs` counts.
PRODUCTS = frozenset({*_PRODUCTS, "einsum"})


def product_macs(op: Op) -> tuple[int, int]:
    """Multiply-accumulates of a product of tensors (matmul and its kin, einsum) over its whole
    batch, and the part that multiplies pairs of positions of the whole map (``q @ k^T`` and
    ``attn @ v`` of a global attention, not of a windowed one): each output entry sums one
    product per entry of the contracted dims (its inner dim; an einsum's letters missing from
    the output).  (0, 0) for any other op."""
    if op.name == "einsum":
        parsed = _einsum_subscripts(op.args)
        if parsed is None:
            return 0, 0
        operands = list(zip(parsed[0], parsed[1]))
    elif op.name in _PRODUCTS:
        tensors = [t for t in op.args[_PRODUCTS[op.name]:][:2] if isinstance(t, Tensor)]
        if len(tensors) != 2 or not all(t.dim() for t in tensors):
            return 0, 0
        a, b = tensors[::-1] if op.name == "rmatmul" else tensors
        letters = _matmul_subscripts(a.dim(), b.dim())
        operands = [(a, letters[0]), (b, letters[1])]
    else:
        return 0, 0
    sizes: dict[str, int] = {}
    for tensor, letters in operands:
        for letter, n in zip(letters, tensor.shape):
            sizes[letter] = max(sizes.get(letter, 1), n)
    macs = math.prod(sizes.values())
    return macs, macs if _pairs_the_map(op, operands) else 0


def _pairs_the_map(op: Op, operands: list[tuple[Tensor, str]]) -> bool:
    """Two letters of a product each index every position of the map (queries and keys)."""
    layouts = [(op.layout_of(t), letters) for t, letters in operands]
    whole = max((math.prod(L.spatial_map(lay, op.axes) or (1,)) for lay, _ in layouts), default=1)
    spanning = {letter for lay, letters in layouts if lay is not None
                for letter, dim in zip(letters, lay)
                if math.prod(f.count - f.pad for f in L.factors(dim) if f.axis is not None) == whole}
    return whole > 1 and len(spanning) >= 2


# --- the table and the default ---------------------------------------------------------------

def _first_only(op: Op) -> Effect | None:
    """``x.type_as(y)``, ``x.expand_as(y)``, ``x.to(y)``: y gives a dtype or a shape only."""
    x = op.args[0]
    layout = op.layout_of(x)
    if layout is None:
        return Effect([None] * len(op.outputs), sources=[x])
    effect = _broadcast(op, [x])
    if effect is not None:
        effect.sources = [x]
    return effect


def _untraced(op: Op) -> Effect:
    return UNTRACED


_RESHAPES = (
    "view", "reshape", "flatten", "unflatten", "ravel", "squeeze", "unsqueeze", "view_as", "reshape_as",
)
_PERMUTES = (
    "permute", "transpose", "swapaxes", "swapdims", "t", "T", "mT", "H", "mH", "adjoint", "movedim",
    "moveaxis",
)
_REDUCTIONS = (
    "mean", "sum", "nansum", "nanmean", "amax", "amin", "max", "min", "std", "var", "std_mean",
    "var_mean", "logsumexp", "prod", "median", "nanmedian", "mode", "all", "any", "argmax", "argmin",
    "count_nonzero", "aminmax", "norm",
)
_ALONG = (
    "softmax", "log_softmax", "softmin", "normalize", "cumsum", "cumprod", "logcumsumexp", "cummax", "cummin",
)
_CONSTANTS = (
    "new_zeros", "new_ones", "new_empty", "new_full", "new_tensor", "zeros_like", "ones_like",
    "empty_like", "full_like", "rand_like", "randn_like", "randint_like",
)

_OPS: dict[str, Callable[[Op], Effect | None]] = {
    **dict.fromkeys(_RESHAPES, _reshape),
    **dict.fromkeys(_PERMUTES, _permute),
    **dict.fromkeys(_REDUCTIONS, _reduce),
    **dict.fromkeys(_ALONG, _along),
    **dict.fromkeys(_CONSTANTS, _untraced),
    **dict.fromkeys(("cat", "concat", "concatenate", "stack"), _cat),
    **dict.fromkeys(
        ("split", "split_with_sizes", "chunk", "tensor_split", "unbind", "narrow", "select"), _split
    ),
    **dict.fromkeys(("matmul", "rmatmul", "mm", "bmm"), _matmul),
    **dict.fromkeys(("type_as", "expand_as", "to"), _first_only),
    "einsum": _einsum,
    "unfold": _unfold,
    "getitem": _getitem,
    "pad": _pad,
}


def _tensor_args(op: Op) -> list[Tensor]:
    return [t for t in tree_flatten((op.args, op.kwargs))[0] if isinstance(t, Tensor)]


def _broadcasts(shape: Sequence[int], target: Sequence[int]) -> bool:
    if len(shape) > len(target):
        return False
    return all(n in (1, m) for n, m in zip(shape[::-1], target[::-1]))


def _broadcast(op: Op, tensors: list[Tensor]) -> Effect | None:
    """Elementwise (with broadcasting) when every input broadcasts to every output."""
    if not all(_broadcasts(t.shape, y.shape) for t in tensors for y in op.outputs):
        return None
    operands = [(op.layout_of(t), tuple(t.shape)) for t in tensors]
    if all(layout is None for layout, _ in operands):
        return Effect([None] * len(op.outputs))
    return Effect([L.broadcast(operands, y.shape) for y in op.outputs], broadcast=True)


def _judged(op: Op, x: Tensor) -> Effect:
    """An op without rules whose shapes are not elementwise, judged by its shapes.

    A result no larger than one position's worth reduced over positions, and a rearrangement
    (as many elements) not understood may have merged any of them: both see everything.
    Anything else changed the positions in a way not modelled.
    """
    layout = op.layout_of(x)
    if layout is None:
        return Effect([None] * len(op.outputs))
    if not L.has_positions(layout):
        return Effect([L.without_positions(y.shape) for y in op.outputs])
    y = op.outputs[0]
    positions = math.prod(L.spatial_map(layout, op.axes) or (1,))
    plain = [L.without_positions(t.shape) for t in op.outputs]
    if y.numel() == x.numel() or y.numel() * positions <= x.numel():
        return Effect(plain, verdict="global")
    return Effect([None] * len(op.outputs), verdict="unknown")


def effect(op: Op, traced: list[Tensor]) -> Effect:
    """What ``op`` does to the positions of its ``traced`` inputs.

    A call whose arguments its rule cannot read (a signature it does not know, such as einsum's
    sublist form or a tensor-valued start) is judged by its shapes, like an op without rules.
    """
    rule = _OPS.get(op.name)
    result = None
    if rule is not None and op.args:
        try:
            result = rule(op)
        except (TypeError, ValueError, IndexError, AttributeError):
            result = None
    if result is None:
        result = _broadcast(op, _tensor_args(op)) or _judged(op, traced[0])
    return result
