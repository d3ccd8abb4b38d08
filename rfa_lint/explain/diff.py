"""A suggestion as a unified diff of the user's file: the literal arguments of the constructor
calls it changes (``kernel_size=7, stride=2, padding=3`` -> ``kernel_size=3, stride=1,
padding=1``), rewritten with libcst so the rest of the file keeps its formatting.  Printed only.

A call is changed only when every layer built on its line gets the same edit (a line that
builds the same conv for eight blocks changes all eight), and only when the values are literal
numbers; otherwise, or for edits that are no arguments (a dropped layer, a cut), there is no
diff.  A smaller kernel shrinks a literal padding with it, so a "same" convolution stays one.
"""

from __future__ import annotations

import difflib
import os
from typing import Any, Sequence

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from rfa_lint.lint import site_line
from rfa_lint.positions import call_span
from rfa_lint.source import read_source

from .edits import Edit

_TORCH_CONV = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation")
_TORCH_POOL = ("kernel_size", "stride", "padding")
_KERAS_CONV = ("filters", "kernel_size", "strides", "padding")
_KERAS_POOL = ("pool_size", "strides", "padding")

#: Layer class -> its positional parameters (enough of them to find kernel, stride, padding).
SIGNATURES: dict[str, tuple[str, ...]] = {
    **{f"Conv{n}d": _TORCH_CONV for n in (1, 2, 3)},
    **{f"{kind}Pool{n}d": _TORCH_POOL for kind in ("Max", "Avg") for n in (1, 2, 3)},
    **{f"{kind}{n}D": _KERAS_CONV for kind in ("Conv", "SeparableConv") for n in (1, 2, 3)},
    **{f"{kind}{n}D": _KERAS_POOL for kind in ("MaxPooling", "AveragePooling") for n in (1, 2, 3)},
}
_EQUAL = cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace(""))

Change = dict[str, int]  # "kernel" (the new kernel), "stride" (the new stride)


def suggestion_diff(path: str, text: str, plain: dict[str, Any], edits: Sequence[Edit]) -> str:
    """The unified diff of ``text`` (the file at ``path``) that the suggestion's edits make, or
    "" when they are not all literal arguments of calls in it."""
    changes = _calls(path, text, plain, [e for e in edits if e.op in ("stride", "kernel")])
    if not changes:
        return ""
    try:
        wrapper = MetadataWrapper(cst.parse_module(text))
    except cst.ParserSyntaxError:
        return ""
    rewriter = _Rewriter(changes)
    new = wrapper.visit(rewriter).code
    if rewriter.failed or rewriter.done != set(changes):
        return ""
    name = os.path.relpath(path) if _under_cwd(path) else os.path.basename(path)
    return "".join(difflib.unified_diff(text.splitlines(keepends=True), new.splitlines(keepends=True),
                                        f"a/{name}", f"b/{name}"))


def _calls(path: str, text: str, plain: dict[str, Any], edits: list[Edit]) -> dict[tuple, tuple]:
    """(line, column) of each call to change -> (layer class, change); {} when an edit is not
    on a call of this file, or the call's line builds layers of its class the edit leaves
    alone."""
    if not edits:
        return {}
    handoff = read_source(text).handoff_lines
    nodes = {spec["name"]: spec for spec in plain["nodes"]}
    lines = {spec["name"]: site_line(spec.get("sites", ()), path, handoff) for spec in plain["nodes"]}
    result: dict[tuple[int, int], tuple] = {}
    for edit in edits:
        for name in edit.layers:
            line, layer_class = lines.get(name), nodes[name]["layer"]["name"]
            span = call_span(text, line) if line else None
            built_there = {other for other, at in lines.items()
                           if at == line and nodes[other]["layer"]["name"] == layer_class}
            if span is None or not built_there <= set(edit.layers):
                return {}
            key = (span.line, span.col)
            known = result.get(key, (layer_class, {}))
            change = dict(known[1])
            change["stride" if edit.op == "stride" else "kernel"] = 1 if edit.op == "stride" else edit.to
            result[key] = (layer_class, change)
    return result


class _Rewriter(cst.CSTTransformer):
    """Changes the literal arguments of the calls at the given positions."""

    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, changes: dict[tuple[int, int], tuple]) -> None:
        super().__init__()
        self.changes, self.done, self.failed = changes, set(), False

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.Call:
        start = self.get_metadata(PositionProvider, original).start
        key = (start.line, start.column)
        if key not in self.changes:
            return updated
        layer_class, change = self.changes[key]
        called = updated.func.attr.value if isinstance(updated.func, cst.Attribute) else \
            getattr(updated.func, "value", None)
        signature = SIGNATURES.get(layer_class)
        if called != layer_class or signature is None:
            self.failed = True
            return updated
        result = _rewritten(updated, signature, change)
        if result is None:
            self.failed = True
            return updated
        self.done.add(key)
        return result


def _rewritten(call: cst.Call, signature: tuple[str, ...], change: Change) -> cst.Call | None:
    """The call with its kernel, stride and padding arguments changed; None if one that must
    change is not a literal."""
    kernel_name = next(n for n in signature if n in ("kernel_size", "pool_size"))
    stride_name = next(n for n in signature if n in ("stride", "strides"))
    args = list(call.args)
    if "kernel" in change:
        index = _find(args, signature, kernel_name)
        old = None if index is None else _literal(args[index].value)
        if old is None:
            return None
        shrink = max(old) - change["kernel"]
        smaller = _replaced(args[index].value, lambda k: min(k, change["kernel"]))
        args[index] = args[index].with_changes(value=smaller)
        padding = _find(args, signature, "padding")
        if padding is not None and _literal(args[padding].value) is not None:
            args[padding] = args[padding].with_changes(
                value=_replaced(args[padding].value, lambda p: max(p - shrink // 2, 0)))
    if "stride" in change:
        index = _find(args, signature, stride_name)
        if index is None:
            if signature in (_TORCH_POOL, _KERAS_POOL):  # a pool without one strides by its kernel
                args.append(cst.Arg(cst.Integer("1"), keyword=cst.Name(stride_name), equal=_EQUAL))
        elif _literal(args[index].value) is None:
            return None
        else:
            args[index] = args[index].with_changes(value=_replaced(args[index].value, lambda s: 1))
    return call.with_changes(args=args)


def _find(args: list[cst.Arg], signature: tuple[str, ...], name: str) -> int | None:
    """The index of the argument for parameter ``name``, by keyword or by position."""
    for i, arg in enumerate(args):
        if arg.keyword is not None and arg.keyword.value == name:
            return i
    position = signature.index(name)
    positional = [i for i, arg in enumerate(args) if arg.keyword is None and not arg.star]
    return positional[position] if position < len(positional) else None


def _literal(value: cst.BaseExpression) -> tuple[int, ...] | None:
    """The whole numbers of ``3`` or ``(3, 3)``; None for anything else."""
    if isinstance(value, cst.Integer):
        return (int(value.value, 0),)
    if isinstance(value, (cst.Tuple, cst.List)) and value.elements:
        numbers = [e.value for e in value.elements]
        if all(isinstance(n, cst.Integer) for n in numbers):
            return tuple(int(n.value, 0) for n in numbers)
    return None


def _replaced(value: cst.BaseExpression, change) -> cst.BaseExpression:
    """``value`` (a literal) with each number mapped by ``change``, formatting kept."""
    if isinstance(value, cst.Integer):
        return value.with_changes(value=str(change(int(value.value, 0))))
    return value.with_changes(elements=[
        e.with_changes(value=e.value.with_changes(value=str(change(int(e.value.value, 0)))))
        for e in value.elements
    ])


def _under_cwd(path: str) -> bool:
    return os.path.abspath(path).startswith(os.getcwd() + os.sep)
