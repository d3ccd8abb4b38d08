"""Static facts about one source file: which models it defines, where, and how to build them.

This is the first step of the pipeline and runs in the linter's own process, so it only reads
the text: it never imports the user's code or a framework.  The sandbox child confirms every
guess made here on the real objects.

It reads the file with :mod:`ast` and resolves names through the module's own imports.  libcst
(with its position and qualified-name metadata) was the first plan, but it took ~600 ms for
torchvision's ``resnet.py`` against ~15 ms here, and its native parser crashes the process on
deeply nested brackets, which CPython's parser rejects with a ``SyntaxError``.

Candidates
    Python decides what a model is, so the sandbox child confirms every candidate on the real
    object (:mod:`rfa_lint.sandbox.discovery`); this pass only lists what might be one, cheaply:

    * module-level classes (also inside a module-level ``if`` / ``try`` / ``with`` ...) with at
      least one base.  A base that resolves here to a framework model base (``torch.nn.Module``
      and its containers, ``keras.Model`` / ``keras.Sequential``, a ``torchvision.models``
      class, directly or through classes of this file) gives the framework at once; any other
      base (a relative import, a star import, an alias) is resolved by the child;
    * module-level functions callable without arguments (every parameter has a default or is
      ``*args`` / ``**kwargs``) that carry some evidence of building a model: a return
      annotation (``-> ResNet``), a registry decorator (timm's ``@register_model``,
      ``@MODELS.register_module()``), or ``return`` statements that call something
      (``return ResNet(BasicBlock, [2, 2, 2, 2])``, ``model = Functional(...); return model``).
      Never a script: a function named like one (``main``, ``train...``, ``test...``,
      ``eval...``, ``run``, ``fit``, ``predict``, ...) or one that loops after building what
      it returns (``def main(): model = Net(); for epoch in ...``) is never called.

Directives
    A comment on the ``class`` / ``def`` header (its first line down to the ``:``), or in the
    block of comment lines directly above it or above its decorators, configures the model::

        # rfa-lint: build(18, channels=(3, 64))   constructor arguments (literals only)
        # rfa-lint: input(1, 3, 64, 64)           the example input shape to trace with
        # rfa-lint: skip                          do not analyse this model
        # rfa-lint: build(depth=50); input(2, 3, 128, 128)

    Several directives join with ``;``; each may be given once per model.  The text after
    ``rfa-lint:`` is parsed as Python statements and every argument with
    :func:`ast.literal_eval`, so nothing is ever executed; a trailing ``# noqa`` comment is
    fine.  A malformed directive never raises: its message lands in
    :attr:`Candidate.directive_error` and the well-formed directives still apply.

Lines are 1-based, columns 0-based (flake8's convention for plugins).
"""

from __future__ import annotations

import ast
import functools
import io
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Literal, Mapping

from rfa_lint.files import MODULE_BYTES, package_modules, package_of, read_regular
from rfa_lint.slices import WORK_METHODS, does_work, top_level

Framework = Literal["torch", "keras"]

# A model reaches its framework through an import that spells one of these words (a framework,
# or a model library built on one: "torchvision" contains "torch"), or through a sibling module
# (a relative or star import), so a file with none of them cannot define one.
_MODEL_LIBRARIES = ("timm", "transformers", "ultralytics", "detectron2", "monai", "kornia", "mmcv", "mmdet",
                    "mmseg", "mmpretrain")
_FRAMEWORK_WORD = re.compile(rf"torch|keras|tensorflow|{'|'.join(_MODEL_LIBRARIES)}")
_MAY_DEFINE_MODEL = re.compile(rf"{_FRAMEWORK_WORD.pattern}|^[ \t]*from[ \t]+\.|import[ \t]*\*", re.MULTILINE)
# a model registry's decorator: timm's register_model, mmdet's MODELS.register_module(), and not
# atexit.register (a registry of functions to call, not of models)
_REGISTRY = re.compile(r"(\w+\.)*(?i:\w*model\w*)|(\w+\.)*[A-Z][A-Z0-9_]*\.register\w*")
# functions named like scripts are never taken for factories on what they return alone
_SCRIPT_NAME = re.compile(r"_*(train|test|eval|(main|fit|run|predict|benchmark|demo)(_|$))", re.IGNORECASE)

_FRAMEWORK_PACKAGES: dict[str, Framework] = {
    **dict.fromkeys(_MODEL_LIBRARIES, "torch"),
    "torch": "torch",
    "torchvision": "torch",
    "keras": "keras",
    "tensorflow": "keras",
    "tf_keras": "keras",
}

_MODEL_BASES: dict[str, Framework] = {
    "torch.nn.Module": "torch",
    "torch.nn.Sequential": "torch",
    "torch.nn.ModuleList": "torch",
    "torch.nn.ModuleDict": "torch",
    "torch.nn.modules.module.Module": "torch",
    "torch.nn.modules.container.Sequential": "torch",
    "keras.Model": "keras",
    "keras.Sequential": "keras",
    "keras.models.Model": "keras",
    "keras.models.Sequential": "keras",
}
_KERAS_ALIASES = ("tensorflow.keras.", "tf_keras.")
#: Model zoos: what their modules export builds a model.
_ZOOS = ("torchvision.models.", "keras.applications.", "segmentation_models_pytorch.")
_TORCHVISION_MODEL = re.compile(r"torchvision\.models\.(?:\w+\.)*([A-Z]\w*)")

_DIRECTIVE = re.compile(r"(?:^|\s)#\s*rfa-lint\s*:(.*)")  # a comment of its own, not a quote
_DOTTED_NAME = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")
_OWN_SCOPES = (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)

# What a module-level name stands for: an imported dotted path, or a class of this file.
_Binding = str | ast.ClassDef


Evidence = Literal["base", "class", "annotation", "registry", "returns", "assignment", "call"]
#: An input shape: positional (``input(1, 3, 64, 64)``), or per forward parameter
#: (``input(x=(1, 3, 64, 64), t=(1,))``) as ``(name, shape)`` pairs, so a candidate stays hashable.
Shape = tuple[int, ...] | tuple[tuple[str, tuple[int, ...]], ...]


@dataclass(frozen=True)
class Candidate:
    """A module-level class, zero-argument function or assignment that may be a model or build one.

    ``framework`` is known here only when a base resolves to a framework model base (evidence
    ``base``); otherwise the child finds out.  ``returns`` are the dotted names the function's
    ``return`` statements call, followed through the file's other functions; ``only_builds``
    says its body does nothing else than build what it returns (no loop after building it, no
    call that reads, writes or trains), so the child may call it to see what comes back.  An
    ``instance`` is a top-level ``model = Net(...)`` / ``keras.Sequential([...])``: its ``line``
    is the assignment's.  ``line`` / ``column`` are those of the ``class`` / ``def`` keyword (not
    of a decorator); ``build_kwargs`` is a tuple of ``(name, value)`` pairs so the candidate stays
    immutable.
    """

    name: str
    kind: Literal["class", "factory", "instance"]
    framework: Framework | None
    line: int
    column: int
    end_line: int
    evidence: Evidence = "base"
    annotation: str | None = None
    returns: tuple[str, ...] = ()
    only_builds: bool = False
    build_args: tuple[Any, ...] = ()
    build_kwargs: tuple[tuple[str, Any], ...] = ()
    input_shape: Shape | None = None
    skip: bool = False
    directive_error: str | None = None

    @property
    def directed(self) -> bool:
        """Whether a directive or the configuration says how to build it: then it is a model
        the user means, reported whatever it turns out to be."""
        return bool(self.build_args or self.build_kwargs or self.input_shape)


@dataclass(frozen=True)
class SourceInfo:
    """What :func:`read_source` learns about a file.

    ``frameworks`` are the frameworks the file imports anywhere (sibling modules may bring
    more); ``syntax_error`` is ``(line, column, message)`` when the file does not parse, and
    then there are no candidates.  ``handoff_lines`` are the lines where a ``return`` statement returns a
    call that builds the returned object itself (``return nn.Conv2d(...)``): a layer built there
    is handed to the caller, whose line names it better.  ``stray_directives`` are the
    ``(line, column, text)`` of ``# rfa-lint:`` comments that belong to no candidate.
    """

    candidates: tuple[Candidate, ...] = ()
    frameworks: frozenset[Framework] = frozenset()
    syntax_error: tuple[int, int, str] | None = None
    handoff_lines: frozenset[int] = frozenset()
    stray_directives: tuple[tuple[int, int, str], ...] = ()


def might_define_model(text: str) -> bool:
    """Cheap pre-check without parsing: False only if the file cannot define a candidate."""
    return _MAY_DEFINE_MODEL.search(text) is not None


def may_define_model(path: Path, text: str) -> bool:
    """False when the file cannot define a model: :func:`might_define_model`, and then a file
    that names no framework itself reaches one only through its own package's modules (a loose
    file, through anything below its folder, so it is not narrowed further).

    No parse: the package's texts are read once per process (see :func:`invalidate_caches`), so
    a run over a package without models costs about one read of each of its files.
    """
    if not might_define_model(text):
        return False
    if names_framework(text):
        return True
    root, name = package_of(path)
    return "." not in name or _package_names_framework(root / name.partition(".")[0])


def invalidate_caches() -> None:
    """Forget what the packages' texts were: for a long-lived process (the language server), whose
    files change between analyses, as :func:`importlib.invalidate_caches` is for imports."""
    _package_names_framework.cache_clear()


@functools.lru_cache(maxsize=256)
def _package_names_framework(package: Path) -> bool:
    """Whether a module of the package names a framework: any import reaches only these (the
    package's folders that hold an ``__init__.py``, symbolic links followed, as imports do); a
    module that cannot be read as a regular file of bounded size may."""
    for module in package_modules(package):
        try:
            if names_framework(read_regular(module, MODULE_BYTES).decode("utf-8", "replace")):
                return True
        except OSError:
            return True
    return False


def read_source(text: str) -> SourceInfo:
    """Find the candidate models in a file's text; never raises on bad input."""
    text = text.removeprefix("\ufeff")
    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        return SourceInfo(syntax_error=(exc.lineno or 1, max((exc.offset or 1) - 1, 0), exc.msg))
    except (ValueError, RecursionError, MemoryError) as exc:  # null bytes, absurd nesting
        return SourceInfo(syntax_error=(1, 0, str(exc) or type(exc).__name__))
    statements = list(_module_level(tree.body))
    finder = _Finder(statements)
    lines = io.StringIO(text).readlines()  # only "\n" ends a line, as for ast and tokenize
    functions = [node for node in statements if isinstance(node, ast.FunctionDef)]
    returns = _through_functions({node.name: returned_calls(node) for node in functions})
    candidates: list[Candidate] = []
    used: set[int] = set()
    for node in statements:
        found = finder.candidate(node, returns.get(getattr(node, "name", ""), ()))
        if found and isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            framework, evidence, annotation = found
            comments = list(_directive_comments(node, statements, lines))
            used.update(line for line, _ in comments)
            candidates.append(
                Candidate(
                    name=node.name,
                    kind="class" if isinstance(node, ast.ClassDef) else "factory",
                    framework=framework,
                    line=node.lineno,
                    column=node.col_offset,
                    end_line=node.end_lineno or node.lineno,
                    evidence=evidence,
                    annotation=annotation,
                    returns=returns.get(node.name, ()) if isinstance(node, ast.FunctionDef) else (),
                    only_builds=isinstance(node, ast.FunctionDef) and _only_builds(node),
                    **_directives(comments),
                )
            )
    local = {c.name for c in candidates}
    for node in top_level(tree.body):
        instance = finder.instance(node, local)
        if instance and instance[0] not in {c.name for c in candidates}:  # a name is one model: its first
            name, framework, evidence = instance
            comments = list(_directive_comments(node, statements, lines))
            used.update(line for line, _ in comments)
            candidates.append(Candidate(name=name, kind="instance", framework=framework, line=node.lineno,
                                        column=node.col_offset, end_line=node.end_lineno or node.lineno,
                                        evidence=evidence, **_directives(comments)))
    return SourceInfo(tuple(candidates), _imported_frameworks(tree), handoff_lines=_handoff_lines(tree),
                      stray_directives=tuple(d for d in _all_directives(text, lines) if d[0] not in used))


def _all_directives(text: str, lines: list[str]) -> Iterator[tuple[int, int, str]]:
    """(line, column, text) of every ``# rfa-lint:`` comment of the file."""
    if "rfa-lint" not in text:
        return
    try:
        for token in tokenize.generate_tokens(iter(lines).__next__):
            if token.type == tokenize.COMMENT and _DIRECTIVE.search(token.string):
                yield token.start[0], token.start[1], token.string
    except (tokenize.TokenError, SyntaxError):  # read_source never raises
        return


#: Calls that read, write, train or ask: a function making them does more than build a model.
_WORK_CALLS = frozenset({"open", "input", "exec", "eval", "print", "system", "urlopen", "load", "save",
                         "download", "savefig", "show", "load_state_dict", "load_weights"}) | WORK_METHODS


def _only_builds(function: ast.FunctionDef) -> bool:
    """Whether a function's body only builds what it returns: no loop after building it, no call
    that does work (:data:`_WORK_CALLS`), no ``yield``."""
    if _loops_after_building(function):
        return False
    for node in _own_nodes(function):
        if isinstance(node, (ast.Yield, ast.YieldFrom, ast.Await)):
            return False
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in _WORK_CALLS or does_work(node):
                return False
    return True


def _through_functions(returns: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    """Each function's returned calls, followed through the file's other functions: for
    keras.applications' ``ResNet50() -> ResNet(...)`` and ``ResNet -> Functional(...)``, ResNet50
    returns calls of ``ResNet`` and ``Functional``."""
    closed = {}
    for name in returns:
        seen: dict[str, None] = {}
        todo = list(returns[name])
        while todo:
            callee = todo.pop(0)
            if callee not in seen:
                seen[callee] = None
                todo += returns.get(callee, ())
        closed[name] = tuple(seen)
    return closed


def _own_nodes(function: ast.FunctionDef) -> Iterator[ast.AST]:
    """The nodes of a function's body, not those of functions or classes nested in it."""
    stack: list[ast.AST] = list(function.body)
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, (*_OWN_SCOPES, ast.Lambda)):
            stack.extend(ast.iter_child_nodes(node))


def returned_calls(function: ast.FunctionDef) -> tuple[str, ...]:
    """Dotted names called by the function's ``return`` statements, directly or through a name
    assigned from a call (``model = Functional(inputs, x); ...; return model``)."""
    return tuple(dict.fromkeys(name for name, _ in _returned_call_sites(function)))


def _returned_call_sites(function: ast.FunctionDef) -> list[tuple[str, int]]:
    """(dotted callee, line of the call) for each call whose result the function returns."""
    assigned: dict[str, list[tuple[str, int]]] = {}
    returned: list[ast.expr] = []
    for node in _own_nodes(function):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            for target in node.targets:
                if isinstance(target, ast.Name) and (callee := _dotted(node.value.func)):
                    assigned.setdefault(target.id, []).append((callee, node.lineno))
        elif isinstance(node, ast.Return) and node.value is not None:
            returned.append(node.value)
    sites: list[tuple[str, int]] = []
    for value in returned:
        if isinstance(value, ast.Call) and (callee := _dotted(value.func)):
            sites.append((callee, value.lineno))
        elif isinstance(value, ast.Name):
            sites += assigned.get(value.id, [])
    return sites


def _loops_after_building(function: ast.FunctionDef) -> bool:
    """Whether a loop runs after the returned object is built: ``model = Net(); for epoch in
    ...: train(model); return model`` is a script, while keras.applications' factories loop
    over blocks *before* ``model = Functional(inputs, x)``.  A loop over the model's own parts
    (``for m in model.modules(): init(m)``) is building it."""
    sites = _returned_call_sites(function)
    built = min((line for _, line in sites), default=0)
    names = {target.id for node in _own_nodes(function) if isinstance(node, ast.Assign)
             for target in node.targets if isinstance(target, ast.Name)}
    return any(
        isinstance(node, (ast.For, ast.While, ast.AsyncFor)) and node.lineno > built
        and not (isinstance(node, (ast.For, ast.AsyncFor)) and _over_parts_of(node.iter, names))
        for node in _own_nodes(function)
    )


def _over_parts_of(iterable: ast.expr, names: set[str]) -> bool:
    """``model.modules()``, ``model.parameters()``, ``model.children()``: a walk over parts."""
    return (isinstance(iterable, ast.Call) and isinstance(iterable.func, ast.Attribute)
            and isinstance(iterable.func.value, ast.Name) and iterable.func.value.id in names)


def _handoff_lines(tree: ast.Module) -> frozenset[int]:
    """Lines of ``return CALL`` whose call is the only one starting on that line.

    The creation stack names the line where a call starts; when a container call holds others
    on the same line (``return nn.Sequential(nn.Conv2d(...))``), the line does not say which
    object was built, so it is not handed to the caller.
    """
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Return) and isinstance(node.value, ast.Call):
            line = node.value.lineno
            calls = [n for n in ast.walk(node.value) if isinstance(n, ast.Call) and n.lineno == line]
            if len(calls) == 1:
                lines.add(line)
    return frozenset(lines)


def _module_level(statements: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements whose names land in the module namespace, nested blocks included."""
    for statement in statements:
        yield statement
        if isinstance(statement, _OWN_SCOPES):
            continue
        for block in ("body", "orelse", "finalbody"):
            yield from _module_level(getattr(statement, block, []))
        for clause in (*getattr(statement, "handlers", ()), *getattr(statement, "cases", ())):
            yield from _module_level(clause.body)


def defined(text: str, names: Iterable[str]) -> set[str]:
    """Which of ``names`` the text defines at any indentation, without parsing: a ``class``, a
    ``def`` or an assignment of that name (what ``[tool.rfa-lint.models.NAME]`` may name)."""
    return {name for name in names if re.search(
        rf"^[ \t]*(?:(?:async[ \t]+)?def|class)[ \t]+{re.escape(name)}\b"  # def NAME, class NAME
        rf"|^[ \t]*{re.escape(name)}[ \t]*(?::[^=]*)?=(?!=)",  # NAME = ..., NAME: type = ...
        text, re.MULTILINE)}


def names_framework(text: str) -> bool:
    """Whether the text spells a framework or a model library: False for a file that cannot
    import one (most sibling modules of code without models), found without parsing."""
    return _FRAMEWORK_WORD.search(text) is not None


def imported_frameworks(text: str) -> frozenset[Framework]:
    """The frameworks a file's text imports anywhere (empty when it does not parse)."""
    if not names_framework(text):
        return frozenset()
    try:
        return _imported_frameworks(ast.parse(text))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return frozenset()


def _imported_frameworks(tree: ast.Module) -> frozenset[Framework]:
    modules = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            modules.append(node.module)
    found = (_FRAMEWORK_PACKAGES.get(module.partition(".")[0]) for module in modules)
    return frozenset(framework for framework in found if framework)


class _Finder:
    """Resolves names through the module's imports and follows same-file bases."""

    def __init__(self, statements: list[ast.stmt]) -> None:
        self._bindings: dict[str, _Binding] = {}  # in source order, a rebinding wins
        for node in statements:
            if isinstance(node, ast.ClassDef):
                self._bindings[node.name] = node
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    head = alias.name.partition(".")[0]
                    self._bindings[alias.asname or head] = alias.name if alias.asname else head
            elif isinstance(node, ast.ImportFrom) and not node.level:
                for alias in node.names:
                    self._bindings[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        self._class_frameworks: dict[str, Framework | None] = {}

    def candidate(
        self, node: ast.stmt, returns: tuple[str, ...]
    ) -> tuple[Framework | None, Evidence, str | None] | None:
        """(static framework, evidence, dotted return annotation) when ``node`` may be a model."""
        if isinstance(node, ast.ClassDef):
            if not node.bases:
                return None
            framework = self.framework(node)
            return framework, "base" if framework else "class", None
        if not isinstance(node, ast.FunctionDef) or _params_without_default(node.args):
            return None
        if _SCRIPT_NAME.match(node.name) or _loops_after_building(node):
            return None  # a script that builds a model and goes on to use it: never called
        annotation = _dotted(node.returns) if node.returns else None
        if annotation and node.returns:
            return self._first_framework([node.returns]), "annotation", annotation
        if returns and any(_REGISTRY.fullmatch(_dotted(_called(d)) or "") for d in node.decorator_list):
            return None, "registry", None
        if returns:
            return None, "returns", None
        return None

    def instance(self, node: ast.stmt, local: set[str]) -> tuple[str, Framework | None, Evidence] | None:
        """(name, framework, evidence) of a top-level ``name = CALL`` that makes a model, maybe
        moved or switched (``Net().to(device).eval()``): ``assignment`` for a call of a class
        known to make one (this file's model class, ``keras.Sequential``, ``nn.Sequential``, a
        zoo's ``torchvision.models.resnet18``), ``call`` for a call that may (this file's
        factory, a model library's ``timm.create_model(...)``): only a model coming back says."""
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            return None
        while isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) \
                and isinstance(value.func.value, ast.Call):
            value = value.func.value
        if not isinstance(target, ast.Name) or not isinstance(value, ast.Call):
            return None
        callee = _dotted(value.func)
        if callee in local and not (value.args or value.keywords):
            return None  # ``model = Net()``: the candidate ``Net`` is that very model, built alike
        if callee in local:
            binding = self._bindings.get(callee)
            if isinstance(binding, ast.ClassDef):
                return target.id, self._class_framework(binding), "assignment"
            return target.id, None, "call"
        path = self._resolve(value.func)
        if not isinstance(path, str) or not _library_model(path):
            return None
        if _model_base(path) or path.startswith(_ZOOS):
            framework = _model_base(path) or _FRAMEWORK_PACKAGES.get(path.partition(".")[0])
            return target.id, framework, "assignment"
        return target.id, None, "call"

    def framework(self, node: ast.stmt) -> Framework | None:
        """The framework of a class whose bases resolve here to a framework model base."""
        return self._first_framework(node.bases) if isinstance(node, ast.ClassDef) else None

    def _first_framework(self, expressions: Iterable[ast.expr]) -> Framework | None:
        for expr in expressions:
            target = self._resolve(expr)
            found = self._class_framework(target) if isinstance(target, ast.ClassDef) else _model_base(target)
            if found:
                return found
        return None

    def _class_framework(self, node: ast.ClassDef) -> Framework | None:
        if node.name not in self._class_frameworks:
            self._class_frameworks[node.name] = None  # breaks cycles (class A(B), class B(A))
            self._class_frameworks[node.name] = self.framework(node)
        return self._class_frameworks[node.name]

    def _resolve(self, expr: ast.expr) -> _Binding | None:
        """A dotted name (or a string annotation of one) as an imported path or a local class."""
        dotted = _dotted(expr)
        if dotted is None:
            return None
        head, _, rest = dotted.partition(".")
        binding = self._bindings.get(head)
        if isinstance(binding, str):
            return f"{binding}.{rest}" if rest else binding
        return binding if not rest else None


def _dotted(expr: ast.expr) -> str | None:
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        text = expr.value.strip()
        return text if _DOTTED_NAME.fullmatch(text) else None
    parts: list[str] = []
    while isinstance(expr, ast.Attribute):
        parts.insert(0, expr.attr)
        expr = expr.value
    return ".".join([expr.id, *parts]) if isinstance(expr, ast.Name) else None


def _called(expr: ast.expr) -> ast.expr:
    """``f`` for a decorator written ``@f(...)``, else the decorator itself."""
    return expr.func if isinstance(expr, ast.Call) else expr


def _model_base(path: str | None) -> Framework | None:
    """The framework of an imported class known to be a model, else None."""
    if path is None:
        return None
    for alias in _KERAS_ALIASES:
        if path.startswith(alias):
            path = "keras." + path.removeprefix(alias)
    match = _TORCHVISION_MODEL.fullmatch(path)
    if match and "Weights" not in match.group(1):
        return "torch"
    return _MODEL_BASES.get(path)


def _library_model(path: str) -> bool:
    """Whether an imported callable makes a model: a framework's model class, a model zoo's
    constructor (torchvision, keras.applications) or a model library's (timm, transformers ...)."""
    for alias in _KERAS_ALIASES:
        if path.startswith(alias):
            path = "keras." + path.removeprefix(alias)
    return (_model_base(path) is not None or path.partition(".")[0] in _MODEL_LIBRARIES
            or path.startswith(_ZOOS))


def _params_without_default(args: ast.arguments) -> tuple[str, ...]:
    positional = [*args.posonlyargs, *args.args]
    required = positional[: len(positional) - len(args.defaults)]
    required += [arg for arg, default in zip(args.kwonlyargs, args.kw_defaults) if default is None]
    return tuple(arg.arg for arg in required)


def _directive_comments(
    node: ast.stmt, statements: list[ast.stmt], lines: list[str]
) -> Iterator[tuple[int, str]]:
    """(line, text) of the comments that may carry a definition's (or an assignment's) directives,
    in order: those right above it, and those of its header (an assignment's first line)."""
    decorators = getattr(node, "decorator_list", [])
    first = min((d.lineno for d in decorators), default=node.lineno)
    # Only comments and blank lines lie between one statement's end and the next one's start,
    # so a line there that starts with '#' is a comment, not the inside of a string.
    previous_end = max((s.end_lineno or 0 for s in statements if (s.end_lineno or 0) < first), default=0)
    yield from _comment_block_above(first, previous_end, lines)
    if decorators:
        decorators_end = max(d.end_lineno or d.lineno for d in decorators)
        yield from _comment_block_above(node.lineno, decorators_end, lines)
    # The header's comments: tokens of the logical line that starts with class / def.
    readline = iter(lines[node.lineno - 1:]).__next__
    header_only = not isinstance(node, _OWN_SCOPES)  # an assignment's layers carry their own comments
    try:
        for token in tokenize.generate_tokens(readline):
            if header_only and token.start[0] > 1:
                return
            if token.type == tokenize.COMMENT:
                yield node.lineno + token.start[0] - 1, token.string
            elif token.type == tokenize.NEWLINE:
                return
    except (tokenize.TokenError, SyntaxError):  # read_source never raises
        return


def _comment_block_above(line: int, floor: int, lines: list[str]) -> list[tuple[int, str]]:
    """The run of comment-only lines ending right above ``line`` and below ``floor``."""
    block: list[tuple[int, str]] = []
    while line - 1 > floor and lines[line - 2].lstrip().startswith("#"):
        line -= 1
        block.insert(0, (line, lines[line - 1].strip()))
    return block


class _DirectiveError(ValueError):
    """A directive that cannot be read; its message says why."""


def _directives(comments: Iterable[tuple[int, str]]) -> dict[str, Any]:
    """The Candidate fields that ``# rfa-lint:`` comments set (see the module docstring)."""
    fields: dict[str, Any] = {}
    given: set[str] = set()
    errors = []
    for line, comment in comments:
        match = _DIRECTIVE.search(comment)
        if not match:
            continue
        try:
            for name, values in _parse_directive(match.group(1).strip()):
                if name in given:
                    raise _DirectiveError(f"{name} given more than once")
                given.add(name)
                fields.update(values)
        except _DirectiveError as exc:
            errors.append(f"line {line}: {exc}")
    if errors:
        fields["directive_error"] = "; ".join(errors)
    return fields


def _parse_directive(text: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(directive name, Candidate fields) for each ``;``-separated directive of a comment."""
    try:
        statements = ast.parse(text).body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise _DirectiveError(f"cannot parse {text!r}") from None
    if not statements:
        raise _DirectiveError("empty directive")
    for statement in statements:
        expr = statement.value if isinstance(statement, ast.Expr) else None
        if isinstance(expr, ast.Name) and expr.id == "skip":
            yield "skip", {"skip": True}
            continue
        name = expr.func.id if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) else None
        if not isinstance(expr, ast.Call) or name not in ("build", "input"):
            raise _DirectiveError(
                f"unknown directive {ast.unparse(statement)!r} (expected build(...), input(...) or skip)"
            )
        args = tuple(_literal(arg) for arg in expr.args)
        if any(kw.arg is None for kw in expr.keywords):
            raise _DirectiveError(f"{name}(...) takes literal arguments, not **mapping")
        kwargs = tuple((kw.arg, _literal(kw.value)) for kw in expr.keywords if kw.arg is not None)
        if name == "build":
            yield name, {"build_args": args, "build_kwargs": kwargs}
        else:
            yield name, {"input_shape": input_shape(args, dict(kwargs))}


def input_shape(args: Iterable[Any], named: Mapping[str, Any]) -> Shape:
    """The shape of ``input(1, 3, 64, 64)`` or of ``input(x=(1, 3, 64, 64), t=(1,))``; ValueError
    for anything else (the message says what is expected)."""
    args = tuple(args)
    if args and not named and _is_shape(args):
        return args
    if named and not args and all(_is_shape(v) for v in named.values()):
        return tuple((key, tuple(value)) for key, value in named.items())
    raise _DirectiveError("input(...) takes the shape as positive integers, e.g. input(1, 3, 64, 64), or "
                          "one per forward parameter, e.g. input(x=(1, 3, 64, 64), t=(1,))")


def shape_of(value: Any) -> Shape | None:
    """The shape ``[tool.rfa-lint.models.NAME] input-shape`` gives: a list of positive integers,
    or a table of forward parameter -> such a list; ValueError for anything else."""
    if value is None:
        return None
    return input_shape((), value) if isinstance(value, Mapping) else input_shape(value, {})


def _is_shape(value: Any) -> bool:
    return (isinstance(value, (tuple, list)) and bool(value)
            and all(type(v) is int and v > 0 for v in value))


def shape_json(shape: Shape | None) -> list[int] | dict[str, list[int]] | None:
    """A shape as the child's request carries it: a list of ints, or name -> list of ints."""
    if not shape:
        return None
    if all(isinstance(v, tuple) for v in shape):
        return {str(name): list(dims) for name, dims in shape}  # type: ignore[misc]
    return list(shape)  # type: ignore[arg-type]


def _literal(node: ast.expr) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
        raise _DirectiveError(f"{ast.unparse(node)} is not a literal") from None
