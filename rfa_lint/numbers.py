"""How rfa-lint writes numbers: one form for findings, explanations, tables and pictures."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any, Iterable


def fmt(values: Iterable[Any] | Any) -> str:
    """Per-axis numbers as people write them: ``203``, ``7x1``, ``inf``, ``12.5``."""
    values = tuple(values) if isinstance(values, (tuple, list)) else (values,)
    texts = [_number(v) for v in values]
    return texts[0] if len(set(texts)) == 1 else "x".join(texts)


def _number(value: Any) -> str:
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    if isinstance(value, Fraction) and value.denominator != 1:
        return f"{float(value):.1f}"
    return str(int(value)) if float(value).is_integer() else f"{float(value):.1f}"
