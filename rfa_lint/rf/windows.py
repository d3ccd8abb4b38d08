"""Exact windows: the image pixels each output position of a layer reads, per axis, at the traced
map sizes.

A window is an interval ``(first, last)`` of image pixels (None: the position reads nothing but
padding).  The image itself is taken as unbounded, so a window is never cut at its border and an
RF may exceed the image; every map after it is finite, so a tap that reads only padding of a map
drops out (a rate-36 ASPP branch on a 32-row map is a 1x1 conv there).  Each layer says per axis
which input positions an output position reads (:class:`Reads`); a node's window at a position
is the hull of the windows of the live inputs it reads there, merged over its predecessors (a
merge sees the union of its branches' windows, so windows shifted by padding or cropping widen
it).  After an upsampling the positions differ by phase (a transposed conv's even outputs read
one input, its odd ones two), and a stride after it keeps some phases only: per-position windows
carry that without a special case.  What a global layer (an SE gate's pooling) contributes is
kept apart as a flag, so that a window says both what it sees (everything) and what its local
paths see.  The maximum RF is the widest window over the positions.  Pure Python.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Callable, Iterable, NamedTuple, Sequence

Window = tuple  # (first, last, cut, everything): image pixels, inclusive, that the local paths
# read (first > last: none, a global layer's own output); whether some tap on the way read
# padding, so that the window may be narrower than the layers'; whether a global layer feeds it
Windows = tuple  # one Window (or None) per position of a map axis; one entry broadcasts

INF = math.inf
EVERYWHERE: Windows = ((INF, -INF, False, True),)


class Reads(NamedTuple):
    """Output position ``o = m * period + q`` of one axis reads the input positions
    ``m * step + c`` for ``c`` in ``offsets[q]`` (those inside the input map: the rest is
    padding).  A conv: period 1, step = stride, offsets ``t * d - padding``."""

    period: int
    step: int
    offsets: tuple[tuple[int, ...], ...]

    @classmethod
    def of(cls, data: Sequence) -> Reads:
        """From its JSON form (lists)."""
        period, step, offsets = data
        return cls(int(period), int(step), tuple(tuple(int(c) for c in phase) for phase in offsets))


IDENTITY = Reads(1, 1, ((0,),))


def conv_reads(kernel: int, stride: int, dilation: int, padding: int) -> Reads:
    """A conv or pool: output ``o`` reads ``o * s - p + t * d`` for each tap ``t``."""
    return Reads(1, int(stride), (tuple(t * dilation - padding for t in range(kernel)),))


def transposed_reads(kernel: int, stride: int, dilation: int, padding: int) -> Reads:
    """A transposed conv: input ``i`` reaches output ``i * s - p + t * d``, so output
    ``m * s + q`` reads input ``m + (q + p - t * d) / s`` for the taps where that is whole."""
    offsets = []
    for q in range(stride):
        taps = {(q + padding - t * dilation) // stride for t in range(kernel)
                if (q + padding - t * dilation) % stride == 0}
        offsets.append(tuple(sorted(taps)))
    return Reads(int(stride), 1, tuple(offsets))


def _rational(taps: Callable[[int], Iterable[int]], scale: Fraction) -> Reads:
    """The reads of a resampling whose input coordinate grows by ``scale`` per output position:
    the pattern repeats every ``denominator`` outputs, ``numerator`` inputs on."""
    period, step = scale.denominator, scale.numerator
    return Reads(period, step, tuple(tuple(sorted(set(taps(q)))) for q in range(period)))


def adaptive_reads(n_in: int, n_out: int) -> Reads:
    """Adaptive pooling: output ``i`` reads ``floor(i * in / out)`` up to
    ``ceil((i + 1) * in / out) - 1``, integer windows of one or more positions."""
    return _rational(lambda q: range(q * n_in // n_out, -(-(q + 1) * n_in // n_out)), Fraction(n_in, n_out))


def shuffle_reads(factor: int) -> Reads:
    """Pixel shuffle by ``r``: output ``o`` reads input ``o // r``."""
    return Reads(int(factor), 1, ((0,),) * int(factor))


#: Half-width (in input positions, before antialiasing) of each interpolation filter.
_SUPPORT = {"linear": 1, "bilinear": 1, "trilinear": 1, "bicubic": 2}


def resize_reads(n_in: int, n_out: int, mode: str, align_corners: bool = False,
                 antialias: bool = False) -> Reads:
    """torch's interpolation, per axis: the input positions with a nonzero weight.

    Nearest reads ``floor(o * in / out)`` (nearest-exact at the pixel centre); linear modes the
    two neighbours of ``(o + 1/2) * in / out - 1/2`` (or ``o * (in - 1) / (out - 1)`` with
    ``align_corners``), one where that falls on an input position; bicubic the four around it,
    one on a position.  Antialiased downscaling stretches the filter by the scale.  Clamping at
    the border only repeats border pixels, which the hull of the windows already holds.
    """
    if mode in ("nearest", "nearest-exact"):
        scale = Fraction(n_in, n_out)
        centre = Fraction(1, 2) if mode == "nearest-exact" else 0
        return _rational(lambda q: [math.floor((q + centre) * scale)], scale)
    if mode == "area":
        return adaptive_reads(n_in, n_out)
    support = _SUPPORT.get(mode, 1)
    if align_corners:
        scale = Fraction(n_in - 1, n_out - 1) if n_out > 1 and n_in > 1 else Fraction(n_in, n_out)
        source = (lambda q: q * scale) if n_out > 1 and n_in > 1 else (lambda q: 0 * q)
    else:
        scale = Fraction(n_in, n_out)
        source = lambda q: (q + Fraction(1, 2)) * scale - Fraction(1, 2)  # noqa: E731
    if antialias and scale > 1:
        return _rational(lambda q: _filter_taps(q, scale, support), scale)

    def taps(q: int) -> list[int]:
        src = source(q)
        first = math.floor(src)
        if src == first:
            return [first]
        return list(range(first - support + 1, first + support + 1))

    return _rational(taps, scale)


def _filter_taps(q: int, scale: Fraction, support: int) -> list[int]:
    """Antialiased downscaling (torch's ``_upsample_*_aa``): input ``i`` has weight
    ``filter((i + 1/2 - centre) / scale)``, nonzero inside the filter's support except at the
    cubic's zero crossing at 1."""
    centre = scale * (q + Fraction(1, 2))
    reach = support * scale
    found = []
    for i in range(math.floor(centre - reach) - 1, math.ceil(centre + reach) + 1):
        x = abs((i + Fraction(1, 2) - centre) / scale)
        if x < support and not (support == 2 and x == 1):
            found.append(i)
    return found


def default_reads(kernel: int, stride: int, dilation: int, upsampling: Fraction | int,
                  n_in: int | None, n_out: int | None) -> Reads:
    """What a layer known only by its kernel, stride, dilation and upsampling reads: the kernel
    runs on the input grid made ``upsampling`` times finer (nearest), with the padding the map
    sizes imply, split as TensorFlow's ``same`` splits it (the extra position after).  Without
    sizes the window is centred."""
    up = Fraction(upsampling)
    span = dilation * (kernel - 1) + 1
    if n_in is not None and n_out is not None:
        padding = ((n_out - 1) * stride + span - n_in * up) // 2
    else:
        padding = (span - 1) // 2
    padding = math.floor(padding)
    if up == 1:
        return conv_reads(kernel, stride, dilation, padding)
    scale = Fraction(stride) / up  # input positions per output position
    return _rational(
        lambda q: [math.floor((q * stride + t * dilation - padding) / up) for t in range(kernel)], scale
    )


class Image(tuple):
    """The input's windows: position ``x`` is pixel ``x``, inside the image or not (the image
    is unbounded, so that an RF is never cut at its border)."""

    def __new__(cls, size: int) -> Image:
        return super().__new__(cls, ((x, x, False, False) for x in range(size)))


def merged(inputs: Sequence[Windows], size: int) -> Windows | None:
    """Per position, the hull of the inputs' windows (an input of one position is broadcast);
    None when an input has another number of positions."""
    if len(inputs) == 1 and len(inputs[0]) == size:
        return inputs[0]
    if any(len(w) not in (1, size) for w in inputs):
        return None
    out = []
    for x in range(size):
        out.append(_hull(w[x] if len(w) > 1 else w[0] for w in inputs))
    return tuple(out)


def padded(inputs: Windows, size: int, before: int | None = None) -> Windows:
    """The windows of a map padded (or cropped) to ``size`` positions: position ``x`` is the
    input's ``x - before``.  Without ``before`` (a frontend that recorded only the sizes), the
    smaller half of the change goes before, as TensorFlow's ``same`` pads."""
    if before is None:
        before = (size - len(inputs)) // 2
    return read(Reads(1, 1, ((-before,),)), inputs, size)


def read(reads: Reads, inputs: Windows, size: int) -> Windows:
    """The windows of ``size`` output positions that read ``inputs`` as ``reads`` says."""
    if reads == IDENTITY and len(inputs) == size:
        return inputs
    n_in, period, step, offsets = len(inputs), reads.period, reads.step, reads.offsets
    out = []
    for o in range(size):
        m, q = divmod(o, period)
        base = m * step
        if isinstance(inputs, Image):
            taps = [base + c for c in offsets[q]]
            out.append((min(taps), max(taps), False, False) if taps else None)
        else:
            taps = [base + c for c in offsets[q]]
            window = _hull(inputs[i] for i in taps if 0 <= i < n_in)
            if window is not None and not window[2] and not all(0 <= i < n_in and inputs[i] for i in taps):
                window = (window[0], window[1], True, window[3])
            out.append(window)
    return tuple(out)


def _hull(windows: Iterable[Window | None]) -> Window | None:
    found = [w for w in windows if w is not None]
    if not found:
        return None
    first, last, cut, everything = zip(*found)
    return min(first), max(last), any(cut), any(everything)


def extents(windows: Windows, uncut: bool = False, local: bool = False) -> list:
    """The extent of each position's window: infinite where a global layer feeds it, or, with
    ``local``, what its local paths see (positions that only a global layer feeds left out).
    ``uncut``: only the windows no padding cut."""
    found = []
    for w in windows:
        if w is None or (uncut and w[2]):
            continue
        if w[3] and not local:
            found.append(INF)
        elif w[1] >= w[0]:
            found.append(w[1] - w[0] + 1)
    return found
