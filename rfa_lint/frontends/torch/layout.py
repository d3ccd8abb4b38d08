"""Where a traced tensor's spatial positions are: the algebra of views, permutes and contractions.

A :data:`Layout` says, for each dim of a tensor, which spatial positions of the model's input
grid it indexes.  A dim is a row-major product of :class:`Factor` s: ``(axis, count, step)``
indexes ``count`` positions of spatial ``axis``, ``step`` positions apart on the tensor's grid;
a factor without an axis indexes no positions (batch, channels, heads).  A feature map
``(B, C, H, W)`` is ``[B] [C] [(0, H, 1)] [(1, W, 1)]``; its tokens ``(B, H*W, C)`` are
``[B] [(0, H, 1) (1, W, 1)] [C]``; a Swin window partition ``(B*nW, 7*7, C)`` of a 56x56 map is
``[B (0, 8, 7) (1, 8, 7)] [(0, 7, 1) (1, 7, 1)] [C]``.  Views and permutes only move factors, so
they keep every position (no graph node).  An op that contracts or reduces dims holding
positions mixes them: :func:`mixing` turns the factors it mixes into a kernel (the window of an
attention, a pooling), global when they span whole axes.

A dim can also be a concatenation of segments (class tokens before the patch tokens); each
segment is a tuple of factors.  Pure Python: no torch here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Iterable, Sequence


@dataclass(frozen=True)
class Factor:
    """``count`` entries of a dim; with an ``axis``, positions ``step`` apart on that axis.

    ``key``: an attention's key positions (``q @ k^T`` holds the query and the key positions of
    the same axis in two dims); softmax over them is deferred, the contraction with the values
    mixes them.  ``pad``: entries of the count that are padding (F.pad), not input positions.
    ``before``: how far the entries are shifted against the positions of the map they came from
    (entry ``e`` is its position ``e - before``), None while no pad or crop placed them: F.pad's
    entries before it count up, a crop's start counts down (``x[..., 1:]``: -1), so that a
    layer reading the dim reads the right positions, and a merge of shifted and unshifted maps
    sees both.
    """

    axis: int | None
    count: int
    step: int = 1
    key: bool = False
    pad: int = 0
    before: int | None = None

    @property
    def positions(self) -> bool:
        """Indexes more than one position of an axis (a query's, not an attention key's)."""
        return self.axis is not None and self.count > 1 and not self.key


Segment = tuple[Factor, ...]
Dim = tuple[Segment, ...]  # usually one segment
Layout = tuple[Dim, ...]


def plain(size: int) -> Dim:
    """A dim without positions."""
    return ((Factor(None, size),),)


def collapsed(dim: Dim) -> Dim:
    """A dim reduced to one entry (keepdim): a map's axis stays an axis of one position."""
    fs = factors(dim)
    if len(fs) == 1 and fs[0].axis is not None:
        return ((Factor(fs[0].axis, 1),),)
    return plain(1)


def feature_map(shape: Sequence[int], first: int = 2) -> Layout:
    """Channels-first layout: dims ``first:`` are the spatial axes 0, 1, ... in order."""
    return tuple(
        plain(n) if d < first else ((Factor(d - first, n),),) for d, n in enumerate(shape)
    )


def without_positions(shape: Sequence[int]) -> Layout:
    return tuple(plain(n) for n in shape)


def factors(dim: Dim) -> list[Factor]:
    return [f for segment in dim for f in segment]


def size(dim: Dim) -> int:
    return sum(math.prod(f.count for f in segment) for segment in dim)


def sizes(layout: Layout) -> tuple[int, ...]:
    return tuple(size(dim) for dim in layout)


def has_positions(dims: Iterable[Dim]) -> bool:
    return any(f.positions for dim in dims for f in factors(dim))


def spatial_map(layout: Layout | None, axes: int) -> tuple[int, ...] | None:
    """Positions per axis (padding not counted); None when the tensor has none of any axis.

    An axis spans ``count * step`` positions for its outermost factor (a window partition's
    ``(a, 8, 7) (a, 7, 1)`` spans 56).
    """
    if layout is None or not any(f.axis is not None and not f.key for d in layout for f in factors(d)):
        return None
    spans = [1] * axes
    for dim in layout:
        for f in factors(dim):
            if f.axis is not None and not f.key and f.axis < axes:
                spans[f.axis] = max(spans[f.axis], (f.count - f.pad) * f.step)
    return tuple(spans)


def shifts(layout: Layout | None, axes: int) -> tuple[int, ...] | None:
    """Per axis, the ``before`` of the dim that holds its positions (see :class:`Factor`); None
    when no pad or crop placed any."""
    found: list[int | None] = [None] * axes
    for dim in layout or ():
        for f in factors(dim):
            if f.axis is not None and not f.key and f.axis < axes and f.before is not None:
                found[f.axis] = f.before
    return None if found == [None] * axes else tuple(v or 0 for v in found)


def rescaled(dim: Dim, scale: Sequence) -> Dim | None:
    """A dim whose positions are now on a grid ``scale`` times as coarse per axis (a strided
    conv ran on other dims of the same axes; windows in the batch dim follow); None when a step
    is no longer a whole number of positions."""
    out = []
    for segment in dim:
        factors_ = []
        for f in segment:
            if f.axis is not None and f.axis < len(scale) and scale[f.axis] != 1:
                step = f.step / scale[f.axis]
                if step != int(step) or step < 1:
                    return None
                f = replace(f, step=int(step))
            factors_.append(f)
        out.append(tuple(factors_))
    return tuple(out)


def _normalised(segment: Sequence[Factor]) -> Segment:
    """Drop 1-entry factors; join neighbours that are one run (``(a, 8, 7) (a, 7, 1)`` ->
    ``(a, 56, 1)``, two non-position factors -> one)."""
    out: list[Factor] = []
    for f in segment:
        if f.count == 1:
            continue
        last = out[-1] if out else None
        if last and last.axis is None and f.axis is None:
            out[-1] = Factor(None, last.count * f.count)
        elif (
            last and f.axis is not None and last.axis == f.axis and last.key == f.key
            and not (last.pad or f.pad) and last.before is f.before is None and last.step == f.step * f.count
        ):
            out[-1] = replace(f, count=last.count * f.count)
        else:
            out.append(f)
    return tuple(out) or (Factor(None, 1),)


def reshape(layout: Layout, shape: Sequence[int]) -> Layout | None:
    """The layout after a row-major reshape to ``shape`` (view, flatten, unflatten, squeeze...).

    Factors are split (``(a, 56, 1)`` -> ``(a, 8, 7) (a, 7, 1)``) and joined as the sizes
    require; None when a factor cannot be split that way (positions scrambled).  A dim made of
    several segments moves only as a whole.
    """
    shape = tuple(shape)
    if sizes(layout) == shape:
        return layout
    stream: list = []
    for dim in layout:
        if len(dim) > 1:
            stream.append(dim)
        else:
            stream.extend(f for f in dim[0] if f.count != 1)
    result = []
    for n in shape:
        if n == 1:
            result.append(plain(1))
            continue
        if stream and isinstance(stream[0], tuple):
            if size(stream[0]) != n:
                return None
            result.append(stream.pop(0))
            continue
        taken, need = [], n
        while need > 1:
            if not stream or isinstance(stream[0], tuple):
                return None
            f = stream.pop(0)
            if need % f.count == 0:
                taken.append(f)
                need //= f.count
            elif f.count % need == 0:
                inner = f.count // need
                taken.append(replace(f, count=need, step=f.step * inner, pad=0, before=None))
                stream.insert(0, replace(f, count=inner, pad=0, before=None))
                need = 1
            else:
                return None
        result.append((_normalised(taken),))
    return tuple(result) if not stream else None


def permute(layout: Layout, order: Sequence[int]) -> Layout:
    return tuple(layout[d] for d in order)


def broadcast(operands: Sequence[tuple[Layout | None, Sequence[int]]], shape: Sequence[int]) -> Layout:
    """Elementwise result layout: dims right-aligned; each output dim takes the layout of the
    first operand that has that dim at full size with positions, else at full size."""
    result = []
    for d, n in enumerate(shape):
        chosen = None
        for layout, operand_shape in operands:
            i = d - (len(shape) - len(operand_shape))
            if layout is None or i < 0 or operand_shape[i] != n or sizes(layout)[i] != n:
                continue
            if has_positions([layout[i]]):
                chosen = layout[i]
                break
            chosen = chosen or layout[i]
        result.append(chosen or plain(n))
    return tuple(result)


def crop(dim: Dim, start: int, stop: int) -> Dim | None:
    """Entries ``start:stop`` of a dim (a crop keeps the positions it keeps); None when that
    cuts through a segment of several factors."""
    kept, offset = [], 0
    for segment in dim:
        n = math.prod(f.count for f in segment)
        lo, hi = max(start - offset, 0), min(stop - offset, n)
        offset += n
        if hi <= lo:
            continue
        if (lo, hi) == (0, n):
            kept.append(segment)
        elif len(segment) == 1:
            f = segment[0]
            pad = max(0, f.pad - (n - (hi - lo)))
            kept.append((replace(f, count=hi - lo, pad=pad, before=(f.before or 0) - lo),))
        else:
            return None
    return tuple(kept) or plain(0)


def concatenate(dims: Sequence[Dim]) -> Dim | None:
    """Dims joined end to end (torch.cat along them); None when two of them hold positions
    of the same axis side by side (two maps glued together)."""
    segments = [segment for dim in dims for segment in dim]
    axes = [f.axis for s in segments for f in s if f.axis is not None]
    if len(axes) != len(set(axes)):
        return None
    merged: list[Segment] = []
    for segment in segments:
        if merged and all(f.axis is None for f in merged[-1] + segment):
            merged[-1] = (Factor(None, size((merged[-1],)) + size((segment,))),)
        else:
            merged.append(segment)
    return tuple(merged)


def padded(dim: Dim, before: int, after: int) -> Dim | None:
    """F.pad on one dim (negative pads crop).  A dim of one axis grows by padding entries (they
    count as positions of the map, not of the input); on other dims the pads are segments
    without positions (a token dim padded for class tokens).  None when a crop cuts a factor."""
    if before < 0 or after < 0:
        dim = crop(dim, max(-before, 0), size(dim) - max(-after, 0))
        before, after = max(before, 0), max(after, 0)
    if dim is None or before == after == 0:
        return dim
    fs = factors(dim)
    if len(dim) == 1 and len(fs) == 1 and fs[0].axis is not None and fs[0].step == 1 and not fs[0].key:
        f = fs[0]
        grown = replace(f, count=f.count + before + after, pad=f.pad + before + after,
                        before=(f.before or 0) + before)
        return ((grown,),)
    return concatenate([d for d, n in ((plain(before), before), (dim, 1), (plain(after), after)) if n])


@dataclass(frozen=True)
class Mixing:
    """What an op that mixes positions does, per model axis (see :func:`mixing`)."""

    kernel: tuple | None  # None: every position of every axis (global)
    dilation: tuple
    stride: tuple


def mixing(
    mixed: Iterable[Factor], inputs: Sequence[Layout], output: Layout | None, axes: int
) -> tuple[Mixing | None, Layout | None]:
    """The kernel of an op that mixes the positions ``mixed`` of its ``inputs``, and its output
    layout on the new grid.  None when it mixes no positions.

    Per axis: the mixed positions are offsets ``sum(o_i * step_i)``.  When they reach across the
    whole axis (``count * step >= map size`` for some factor: all tokens, a window as large as the
    map, MaxViT's grid partition whose dilated offsets miss less than one step of the map) the
    axis is covered; an op covering every axis that has positions is global.  Otherwise the
    kernel is the offsets' extent (one factor: ``count`` taps dilated by ``step``), so window
    attention is a kernel of the window on the token grid.  When the output keeps only coarser
    positions of an axis (the mixed ones were the finest, as in a patch merge or a pooling over
    window tokens), the grid coarsens: stride = the smallest remaining step.
    """
    by_axis: dict[int, set[tuple[int, int]]] = {}
    for f in mixed:
        if f.axis is not None and f.count > 1 and f.axis < axes:
            by_axis.setdefault(f.axis, set()).add((f.count, f.step))
    if not by_axis:
        return None, output
    maps = [max((spatial_map(layout, axes) or (1,) * axes)[a] for layout in inputs) for a in range(axes)]
    kernel, dilation, stride, covered = [], [], [], []
    for a in range(axes):
        taps = sorted(by_axis.get(a, ()), key=lambda t: t[1])
        if not taps:
            kernel.append(1)
            dilation.append(1)
            covered.append(maps[a] <= 1)
        elif len(taps) == 1:
            kernel.append(taps[0][0])
            dilation.append(taps[0][1])
            covered.append(taps[0][0] * taps[0][1] >= maps[a])
        else:
            kernel.append(sum((n - 1) * s for n, s in taps) + 1)
            dilation.append(1)
            covered.append(max(n * s for n, s in taps) >= maps[a])
        stride.append(_coarsening(output, a))
    output = _regridded(output, stride)
    if all(covered):
        return Mixing(None, (1,) * axes, tuple(stride)), output
    return Mixing(tuple(kernel), tuple(dilation), tuple(stride)), output


def _coarsening(layout: Layout | None, axis: int) -> int:
    """The smallest step of ``axis``' positions left in ``layout`` when all steps share it."""
    if layout is None:
        return 1
    steps = [f.step for d in layout for f in factors(d) if f.axis == axis and f.count > 1]
    if not steps:
        return 1
    smallest = min(steps)
    return smallest if all(s % smallest == 0 for s in steps) else 1


def _regridded(layout: Layout | None, stride: Sequence[int]) -> Layout | None:
    if layout is None or all(s == 1 for s in stride):
        return layout
    return tuple(
        tuple(
            tuple(
                replace(f, step=f.step // stride[f.axis])
                if f.axis is not None and f.axis < len(stride) else f
                for f in segment
            )
            for segment in dim
        )
        for dim in layout
    )


def contract(
    operands: Sequence[tuple[Layout, str]], output: str
) -> tuple[Layout, list[Factor]]:
    """einsum's layout algebra: ``operands`` are (layout, subscripts) with one letter per dim.

    Returns the output layout (each letter's dim from the first operand holding it at full size)
    and the factors of the contracted letters.  Positions that a later operand brings into the
    output along an axis the first operand's output dims already hold are attention keys.
    """
    sources: dict[str, tuple[int, Dim]] = {}
    for index, (layout, letters) in enumerate(operands):
        for letter, dim in zip(letters, layout):
            held = sources.get(letter)
            if held is None or (size(held[1]) == 1 < size(dim)):
                sources[letter] = (index, dim)
    first_axes = {
        f.axis for letter in output if sources[letter][0] == 0
        for f in factors(sources[letter][1]) if f.positions
    }
    result = []
    for letter in output:
        index, dim = sources[letter]
        if index and first_axes:
            dim = tuple(
                tuple(replace(f, key=True) if f.positions and f.axis in first_axes else f for f in seg)
                for seg in dim
            )
        result.append(dim)
    mixed = [
        f for layout, letters in operands for letter, dim in zip(letters, layout)
        if letter not in output for f in factors(dim)
    ]
    return tuple(result), mixed


Run = tuple[int | None, Segment]  # (axis a kernel runs along, the dim's factors outside it)


def kernel_runs(layout: Layout | None, first: int, ndim: int, axes: int) -> list[Run] | None:
    """What a conv / pool / resize runs along in each dim ``first:``: the model axis (None for
    a dim without positions) and the factors outside it; None when a dim is not usable.

    A dim of one axis is the usual case.  On a dim of several factors (tokens ``H*W``, as an
    ``AvgPool1d`` over tokens) the kernel runs along the innermost one, ``W``: rows stay apart
    (a window crossing a row end, only possible with padding, is not counted).  A tensor whose
    layout is unknown is taken as torch's convention: dims 2: are the axes in order.
    """
    if layout is None:
        return [(d if d < axes else None, ()) for d in range(ndim - first)]
    result: list[Run] = []
    for dim in layout[first:]:
        fs = factors(dim)
        inner = fs[-1]
        if not has_positions([dim]) and not (len(fs) == 1 and inner.axis is not None):
            result.append((None, ()))
        elif len(dim) == 1 and inner.axis is not None and not inner.key and 1 in (inner.step, inner.count):
            result.append((inner.axis, tuple(fs[:-1])))
        else:
            return None
    named = [a for a, _ in result if a is not None]
    return result if len(named) == len(set(named)) else None
