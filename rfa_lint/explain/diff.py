"""A suggestion as a unified diff of the user's file, and what is left to do by hand.

An edit of a stride or a kernel changes a literal argument: the one in the layer's constructor
call (``nn.Conv2d(3, 64, 7, stride=2, padding=3)``), or, when the constructor passes a parameter
of the function it is in (``stride=stride``), the argument the calling line gives that parameter,
followed out through the layer's creation stack (``conv3x3(inplanes, planes, stride)`` ->
``block(self.inplanes, planes, stride, ...)`` -> ``self._make_layer(block, 512, 2, stride=2)``)
until a literal number.  The literal is rewritten with libcst, so the rest of the file keeps its
formatting; the file itself is never written.

A literal is changed only when it lies in the explained file and every layer it reaches gets
the same edit (a line that builds the same conv for eight blocks changes all eight; a
``stride=2`` given to a helper changes every layer that helper builds with it).  A smaller
kernel shrinks a literal padding of the same call, so a "same" convolution stays one.  Every
edit this cannot write (a cut, a dropped layer, a value computed or kept in another file) is
named with what to do by hand instead, and a value that also decides something else on its way
to the layers (``if stride != 1 or ...:`` builds a shortcut or not) is named for the user to check.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Sequence

import libcst as cst
from libcst.metadata import MetadataWrapper, ParentNodeProvider, PositionProvider

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

Position = tuple[str, int, int]  # (absolute path, line, column) of an expression


@dataclass(frozen=True)
class _Origin:
    """Where a layer's kernel or stride is written: a literal, or (``missing``) nowhere, in a
    pool's call that strides by its kernel; with the constructor's padding, when the literal is
    the constructor's own argument (it shrinks with the kernel)."""

    kind: str  # "literal" or "missing"
    position: Position
    padding: dict = field(default_factory=dict, compare=False)  # position -> change, for a kernel of `to`
    reads: tuple[str, ...] = field(default=(), compare=False)  # what else reads it: ``if stride != 1``


@dataclass(frozen=True)
class Patch:
    """A suggestion's unified diff ("" when nothing is literal in the file) and what is left to do
    by hand, one sentence per edit the diff does not make."""

    diff: str
    by_hand: tuple[str, ...]


def suggestion_diff(path: str, text: str, plain: dict[str, Any], edits: Sequence[Edit]) -> str:
    """The unified diff of ``text`` (the file at ``path``) that the suggestion's edits make, or
    "" when they are not all literal arguments of calls in it."""
    patch = suggestion_patch(path, text, plain, edits)
    return "" if patch.by_hand else patch.diff


def suggestion_patch(path: str, text: str, plain: dict[str, Any], edits: Sequence[Edit]) -> Patch:
    """The diff of the edits that are literal arguments in ``text`` (the file at ``path``), and a
    sentence for each of the others."""
    target = os.path.abspath(path)
    chains = _Chains(target, text, plain)
    changes: dict[Position, Callable[[int], int]] = {}
    additions: set[Position] = set()  # calls of pools that get ``stride=1``
    by_hand = []
    for edit in edits:
        if edit.op in ("cut", "drop"):
            by_hand.append(_by_hand(edit, chains.path_of(edit.layers[0])))
            continue
        found = chains.changes(edit)
        if isinstance(found, str):
            by_hand.append(f"by hand: {edit.title} ({found})")
            continue
        edit_changes, edit_additions, reads = found
        if any(changes.get(k, v) is not v for k, v in edit_changes.items()):
            by_hand.append(f"by hand: {edit.title} (another edit of this suggestion changes its literal)")
            continue
        changes.update(edit_changes)
        additions |= edit_additions
        by_hand += [f"check: {edit.title}: the changed literal also reaches {read}" for read in reads]
    if not changes and not additions:
        return Patch("", tuple(by_hand))
    wrapper = _parsed(text)
    if wrapper is None:
        return Patch("", tuple(by_hand))
    new = wrapper.visit(_Rewriter(target, changes, additions)).code
    name = os.path.relpath(path) if _under_cwd(path) else os.path.basename(path)
    diff = "".join(difflib.unified_diff(text.splitlines(keepends=True), new.splitlines(keepends=True),
                                        f"a/{name}", f"b/{name}"))
    return Patch(diff, tuple(by_hand))


def _by_hand(edit: Edit, layer: str) -> str:
    """What to do for an edit that is no argument: a cut after ``layer``, or ``layer`` dropped."""
    if edit.op == "cut":
        return (f"by hand: the cut (remove what follows {layer} from __init__ and forward; "
                f"the head reads {layer})")
    return f"by hand: drop {layer} (its constructor, and its call in forward)"


class _Chains:
    """Where each layer's kernel or stride comes from: a literal in some file, or why not."""

    def __init__(self, path: str, text: str, plain: dict[str, Any]) -> None:
        self.path, self.text = path, text
        self.nodes = {spec["name"]: spec for spec in plain["nodes"]}
        self.known: dict[tuple[str, str], _Origin | str] = {}

    def path_of(self, name: str) -> str:
        """The module path of the node ``name``, as the titles name layers."""
        return (self.nodes[name].get("module_paths") or [name])[0]

    def changes(self, edit: Edit) -> tuple[dict[Position, Callable[[int], int]], set[Position], list[str]] \
            | str:
        """The literals to change for ``edit``, the pool calls to give ``stride=1`` and what else
        reads the changed values on their way to the layers; or why it cannot be written here."""
        param = "kernel" if edit.op == "kernel" else "stride"
        changes: dict[Position, Callable[[int], int]] = {}
        additions: set[Position] = set()
        reads: list[str] = []
        for name in edit.layers:
            origin = self.origin(name, param)
            if isinstance(origin, str):
                return origin
            position = origin.position
            if position[0] != self.path:
                return f"its {param} is the literal at {_shown(position)}, not in this file"
            others = [other for other in self.nodes if other not in edit.layers
                      and self.origin(other, param) == origin]
            if others:
                return f"the literal at {_shown(position)} also builds {others[0]}, which this edit leaves"
            reads += origin.reads
            if origin.kind == "missing":
                additions.add(position)
            elif param == "stride":
                changes[position] = lambda s: 1
            else:
                new = edit.to or 1
                changes[position] = lambda k, new=new: min(k, new)
                changes.update({at: shrink(new) for at, shrink in origin.padding.items()})
        return changes, additions, list(dict.fromkeys(reads))

    def origin(self, name: str, param: str) -> _Origin | str:
        """Where the layer ``name``'s ``param`` (kernel or stride) is written, or why nowhere."""
        key = (name, param)
        if key not in self.known:
            self.known[key] = self._origin(self.nodes[name], param)
        return self.known[key]

    def _origin(self, spec: dict[str, Any], param: str) -> _Origin | str:
        layer_class = spec["layer"].get("name", "")
        signature = SIGNATURES.get(layer_class)
        frames = [(os.path.abspath(f), int(line)) for f, line in spec.get("sites", ())]
        if signature is None or not frames:
            return f"rfa-lint does not rewrite {layer_class or 'this layer'}'s arguments"
        wanted = next(n for n in signature if n in (("kernel_size", "pool_size") if param == "kernel"
                                                    else ("stride", "strides")))
        source = _source(frames[0][0], self.text if frames[0][0] == self.path else None)
        call = source and source.call_on(frames[0][1], lambda c: _callee(c) == layer_class)
        if call is None:
            return f"no {layer_class}(...) call at {_shown(frames[0])}"
        at = source.position(call)
        index = _find(list(call.args), signature, wanted)
        if index is None:
            if param == "stride" and signature in (_TORCH_POOL, _KERAS_POOL):
                return _Origin("missing", at)  # a pool without one strides by its kernel
            return f"{layer_class} at {_shown(at)} has no {wanted} argument"
        value = call.args[index].value
        old = _literal(value)
        if old is not None:
            return _Origin("literal", source.position(value), _padding(source, call, signature, old))
        reads: list[str] = []
        for depth in range(1, len(frames)):
            given = self._caller_value(source, value, frames[depth])
            if isinstance(given, str):
                return given
            reads += source.reads(value)
            source, value = given
            if _literal(value) is not None:
                return _Origin("literal", source.position(value), reads=tuple(dict.fromkeys(reads)))
        where = _shown(source.position(value))
        return f"it is `{source.code(value)}` at {where}, and no caller of it was seen"

    def _caller_value(self, source: _Source, value: cst.BaseExpression,
                      caller: tuple[str, int]) -> tuple[_Source, cst.BaseExpression] | str:
        """What the calling line ``caller`` gives the parameter ``value`` names: the source and
        the expression; or why that is not known."""
        where = _shown(source.position(value))
        if not isinstance(value, cst.Name):
            return f"it is `{source.code(value)}` at {where}, no literal"
        name, function = value.value, source.function_of(value)
        if function is None or name not in _parameters(function):
            return f"it is `{name}` at {where}, no parameter of the function there"
        if _assigned(function, name):
            return f"it is `{name}` at {where}, which {function.name.value} may assign besides its parameter"
        calling = _source(caller[0], self.text if caller[0] == self.path else None)
        index = _parameters(function).index(name) - source.is_method(function)
        names = {function.name.value, *source.class_names(function)}

        def gives(call: cst.Call) -> bool:
            return _argument(call, name, index) is not None

        call = calling and (calling.call_on(caller[1], lambda c: gives(c) and _callee(c) in names)
                            or calling.call_on(caller[1], gives))
        if call is None or calling is None:
            default = next((p.default for p in function.params.params if p.name.value == name), None)
            if default is not None:
                return f"`{name}` keeps its default at {where}, which other calls share"
            return f"no call giving `{name}` at {_shown(caller)}"
        given = _argument(call, name, index)
        assert given is not None
        return calling, given


class _Source:
    """One parsed file: its calls by line, and the function around an expression."""

    def __init__(self, path: str, wrapper: MetadataWrapper) -> None:
        self.path, self.module = path, wrapper.module
        self.positions = wrapper.resolve(PositionProvider)
        self.parents = wrapper.resolve(ParentNodeProvider)
        self.calls: dict[int, list[cst.Call]] = {}
        for node, place in self.positions.items():
            if isinstance(node, cst.Call):
                self.calls.setdefault(place.start.line, []).append(node)

    def call_on(self, line: int, accept: Callable[[cst.Call], bool]) -> cst.Call | None:
        """The innermost call starting on ``line`` that ``accept`` takes."""
        found = [c for c in self.calls.get(line, ()) if accept(c)]
        return min(found, key=lambda c: len(self.code(c)), default=None)

    def position(self, node: cst.CSTNode) -> Position:
        start = self.positions[node].start
        return self.path, start.line, start.column

    def code(self, node: cst.CSTNode) -> str:
        return self.module.code_for_node(node)

    def reads(self, parameter: cst.Name) -> list[str]:
        """Where the function around ``parameter`` reads it other than as a call's argument (the
        way to the layers): ``if stride != 1 ...`` decides more than a layer's stride."""
        function = self.function_of(parameter)
        lines = self.module.code.splitlines()
        found = []
        for node in _names(function, parameter.value) if function is not None else ():
            if not isinstance(self.parents.get(node), cst.Arg):
                line = self.positions[node].start.line
                found.append(f"`{lines[line - 1].strip()}` ({_shown((self.path, line))})")
        return found

    def function_of(self, node: cst.CSTNode) -> cst.FunctionDef | None:
        while node in self.parents:
            node = self.parents[node]
            if isinstance(node, cst.FunctionDef):
                return node
        return None

    def class_names(self, function: cst.FunctionDef) -> set[str]:
        """The class of an ``__init__`` (how a caller calls it), else nothing."""
        owner = self._class_of(function)
        return {owner.name.value} if function.name.value == "__init__" and owner is not None else set()

    def is_method(self, function: cst.FunctionDef) -> bool:
        """Whether a call passes one argument less than ``function``'s parameters (``self``)."""
        static = any(isinstance(d.decorator, cst.Name) and d.decorator.value == "staticmethod"
                     for d in function.decorators)
        return self._class_of(function) is not None and not static

    def _class_of(self, function: cst.FunctionDef) -> cst.ClassDef | None:
        owner = self.parents.get(self.parents.get(function))  # FunctionDef -> IndentedBlock -> ClassDef
        return owner if isinstance(owner, cst.ClassDef) else None


@lru_cache(maxsize=32)
def _source(path: str, text: str | None) -> _Source | None:
    """The file at ``path`` parsed (``text`` when given: the explained file as read), or None."""
    if text is None:
        try:
            with open(path, encoding="utf-8") as file:
                text = file.read()
        except (OSError, UnicodeDecodeError):
            return None
    wrapper = _parsed(text)
    return None if wrapper is None else _Source(path, wrapper)


def _parsed(text: str) -> MetadataWrapper | None:
    try:
        return MetadataWrapper(cst.parse_module(text))
    except cst.ParserSyntaxError:
        return None


def _callee(call: cst.Call) -> str | None:
    func = call.func
    return func.attr.value if isinstance(func, cst.Attribute) else getattr(func, "value", None)


def _parameters(function: cst.FunctionDef) -> list[str]:
    """The names a call binds by position (``self`` included: :func:`_argument` skips it)."""
    return [p.name.value for p in (*function.params.posonly_params, *function.params.params)]


def _argument(call: cst.Call, name: str, index: int) -> cst.BaseExpression | None:
    """The expression ``call`` gives the parameter ``name``, by keyword or as its ``index``-th
    positional argument; None when it gives none (or a ``*args`` hides which)."""
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == name:
            return arg.value
    positional = [arg for arg in call.args if arg.keyword is None]
    if any(arg.star for arg in positional[:index + 1]):
        return None
    return positional[index].value if 0 <= index < len(positional) else None


def _names(function: cst.FunctionDef, name: str) -> list[cst.Name]:
    """The uses of ``name`` in ``function``'s body."""
    class Finder(cst.CSTVisitor):
        found: list[cst.Name] = []

        def visit_Name(self, node: cst.Name) -> None:
            if node.value == name:
                self.found.append(node)

    finder = Finder()
    finder.found = []
    function.body.visit(finder)
    return finder.found


def _assigned(function: cst.FunctionDef, name: str) -> bool:
    """Whether ``name`` is assigned in ``function``'s body (then it is no longer the argument)."""
    class Finder(cst.CSTVisitor):
        found = False

        def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
            self.found |= isinstance(node.target, cst.Name) and node.target.value == name

        def visit_AugAssign(self, node: cst.AugAssign) -> None:
            self.found |= isinstance(node.target, cst.Name) and node.target.value == name

    finder = Finder()
    function.body.visit(finder)
    return finder.found


class _Rewriter(cst.CSTTransformer):
    """Maps the literals at the given positions, and gives the pool calls at others ``stride=1``."""

    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, path: str, changes: dict[Position, Callable[[int], int]],
                 additions: set[Position]) -> None:
        super().__init__()
        self.path, self.changes, self.additions = path, changes, additions

    def _at(self, node: cst.CSTNode) -> Position:
        start = self.get_metadata(PositionProvider, node).start
        return self.path, start.line, start.column

    def leave_Integer(self, original: cst.Integer, updated: cst.Integer) -> cst.BaseExpression:
        change = self.changes.get(self._at(original))
        return updated if change is None else _replaced(updated, change)

    def leave_Tuple(self, original: cst.Tuple, updated: cst.Tuple) -> cst.BaseExpression:
        change = self.changes.get(self._at(original))
        return updated if change is None else _replaced(updated, change)

    leave_List = leave_Tuple

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        if self._at(original) not in self.additions:
            return updated
        keyword = next(n for n in SIGNATURES[str(_callee(original))] if n in ("stride", "strides"))
        stride = cst.Arg(cst.Integer("1"), keyword=cst.Name(keyword), equal=_EQUAL)
        return updated.with_changes(args=[*updated.args, stride])


def _padding(source: _Source, call: cst.Call, signature: tuple[str, ...],
             kernel: tuple[int, ...]) -> dict[Position, Callable[[int], Callable[[int], int]]]:
    """The constructor's literal padding, and how a kernel of ``new`` in place of ``kernel``
    changes it: by half the shrink, so a "same" convolution stays one."""
    index = _find(list(call.args), signature, "padding")
    if index is None or _literal(call.args[index].value) is None:
        return {}

    def shrink(new: int) -> Callable[[int], int]:
        return lambda p: max(p - (max(kernel) - new) // 2, 0)
    return {source.position(call.args[index].value): shrink}


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


def _shown(position: tuple) -> str:
    """``file:line`` as a user reads it: relative to the working folder when under it."""
    path, line = position[0], position[1]
    return f"{os.path.relpath(path) if _under_cwd(path) else path}:{line}"


def _under_cwd(path: str) -> bool:
    return os.path.abspath(path).startswith(os.getcwd() + os.sep)
