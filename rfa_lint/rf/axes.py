"""Per-axis values: one number per spatial axis, where a single value stands for every axis (the
seed's scalar kernels and strides)."""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Sequence, Union

Number = Union[int, float, Fraction]
PerAxis = tuple  # one value per spatial axis; length 1 broadcasts to any number of axes


def per_axis(value: Number | Sequence[Number] | None, default: Number) -> PerAxis:
    """Normalise an int / float / sequence (or None -> ``default``) to a per-axis tuple."""
    if value is None:
        return (default,)
    if isinstance(value, (int, float, Fraction)):
        return (value,)
    values = tuple(value)
    if not values:
        raise ValueError("a per-axis value needs at least one axis")
    return values


def broadcast(*values: PerAxis) -> tuple[PerAxis, ...]:
    """Stretch length-1 tuples to the common number of axes; refuse incompatible lengths."""
    n = max(len(v) for v in values)
    out = []
    for v in values:
        if len(v) == n:
            out.append(v)
        elif len(v) == 1:
            out.append(v * n)
        else:
            raise ValueError(f"per-axis values of different lengths: {values}")
    return tuple(out)


def public(values: PerAxis) -> Any:
    """The seed's convention: a scalar for one axis, a tuple for several."""
    return values[0] if len(values) == 1 else values
