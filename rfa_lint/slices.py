"""A module's statements cut down to what defines some names: a script's models without its script.

A training script makes its model at the top of the file and goes on to load data, ``fit`` and
save.  Importing it to lint the model would do all of that (for minutes, or to the end of the
memory limit).  :func:`slice_module` keeps what the model needs: every import and definition,
and the top-level statements that bind a name the kept code uses, transitively (a backward
slice over names, the way a reader follows ``model = Net(WIDTH)`` back to ``WIDTH = 64``);
``if __name__ == "__main__":`` never runs, nor any statement nothing needs (``model.fit(...)``,
``parser.parse_args()``, a loop over epochs).

Statements keep their line numbers, so what runs reports the lines of the file.  The same cut
serves any module made of statements (a notebook is its code cells joined).  Pure :mod:`ast` and
:mod:`symtable`: nothing is executed here.
"""

from __future__ import annotations

import ast
import symtable
from typing import Iterable

_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_IMPORTS = (ast.Import, ast.ImportFrom)
#: Calls of a needed object that shape it (``model.add(layer)``, ``model.build(shape)``, a
#: parser's ``add_argument``): they run with its definition.  Any other call of it (``fit``,
#: ``compile``, ``to(device)``, ``load_state_dict``) uses the model, and never runs.
SHAPING_METHODS = frozenset({"add", "append", "extend", "insert", "add_module", "register_module",
                             "register_buffer", "register_parameter", "build", "update", "setdefault",
                             "add_argument", "add_argument_group", "add_mutually_exclusive_group",
                             "set_defaults"})
#: Calls that do a script's work: train, evaluate, save, plot, read its options, fetch its data.
WORK_METHODS = frozenset({"fit", "fit_generator", "train", "train_on_batch", "evaluate", "predict", "save",
                          "save_weights", "load_weights", "backward", "parse_args", "show", "savefig",
                          "download", "load_data"})
_WORK_PREFIXES = ("train_", "fit_", "evaluate_")


def is_script(tree: ast.Module) -> bool:
    """Whether the module's top level does a script's work when imported: a call that trains,
    evaluates, saves or plots (``model.fit(...)``, ``for epoch in ...: train(...)``,
    ``history = model.fit(...)``), reads the command line (``parser.parse_args()``) or fetches
    data (``load_data()``, ``download=True``).

    Anything else at the top level (imports, definitions, assignments, registrations, and code
    that exits, hangs or signals) runs as the module is: such a module is imported whole, so
    its side effects happen as its users expect, and hostile ones meet the sandbox.
    """
    return any(isinstance(node, ast.Call) and does_work(node)
               for statement in top_level(tree.body) for node in _run_nodes(statement))


def _run_nodes(statement: ast.stmt) -> Iterable[ast.AST]:
    """The nodes of a statement that run with it: a definition's decorators, bases and defaults,
    never its body."""
    stack: list[ast.AST] = [statement]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.ClassDef):
            stack += [*node.decorator_list, *node.bases, *node.keywords]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            stack += [*getattr(node, "decorator_list", []), *node.args.defaults,
                      *(d for d in node.args.kw_defaults if d is not None)]
        else:
            stack.extend(ast.iter_child_nodes(node))


def does_work(call: ast.Call) -> bool:
    """Whether a call does a script's work (see :func:`is_script`)."""
    name = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
    return (name in WORK_METHODS or name.startswith(_WORK_PREFIXES)
            or any(k.arg == "download" and isinstance(k.value, ast.Constant) and k.value.value is True
                   for k in call.keywords))


def top_level(statements: list[ast.stmt]) -> Iterable[ast.stmt]:
    """Top-level statements, through ``if`` / ``try`` blocks, but never the ``__main__`` block."""
    for statement in statements:
        if _is_main_guard(statement):
            continue
        if isinstance(statement, (ast.If, ast.Try)):
            handlers = [s for h in getattr(statement, "handlers", ()) for s in h.body]
            yield from top_level([*statement.body, *statement.orelse, *getattr(statement, "finalbody", []),
                                  *handlers])
        else:
            yield statement


def slice_module(tree: ast.Module, names: Iterable[str] = (), *, done: Iterable[ast.stmt] = ()) -> ast.Module:
    """The statements of ``tree`` that define ``names`` and every class and function, in order.

    Kept: imports, class and function definitions (their decorators, bases and defaults run at
    definition: what those use is needed), and each top-level statement that binds or shapes a
    needed name; a needed function needs what its body uses; a kept statement needs what it uses.
    Statements in ``done`` (already executed) are left out.  Compound statements (``if``,
    ``try``, ``for``, ``with``) are kept or left out whole; one that imports or defines something
    is always kept (``try: import x except ImportError: x = None``).
    """
    statements = [s for s in tree.body if not _is_main_guard(s)]
    skip = {id(s) for s in done}
    needed = set(names)
    kept: set[int] = set()  # statements kept
    read: set[int] = set()  # statements whose every read name is needed (a function: its body)
    for statement in statements:
        if isinstance(statement, _IMPORTS) or _defines(statement):
            kept.add(id(statement))
            needed |= _used(statement, body=isinstance(statement, ast.ClassDef))
    changed = True
    while changed:
        changed = False
        for statement in statements:
            if id(statement) not in read and binds(statement) & needed:
                kept.add(id(statement))
                read.add(id(statement))
                needed |= _used(statement, body=True)
                changed = True
    body = [s for s in statements if id(s) in kept and id(s) not in skip]
    return ast.Module(body=body, type_ignores=[])


def _is_main_guard(statement: ast.stmt) -> bool:
    """``if __name__ == "__main__":`` (either way round)."""
    test = statement.test if isinstance(statement, ast.If) else None
    return (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)
            and {_dotted(test.left), _dotted(test.comparators[0])} == {"__name__", "'__main__'"})


def _defines(statement: ast.stmt) -> bool:
    """A definition, or a compound statement holding an import or a definition."""
    if isinstance(statement, _DEFINITIONS):
        return True
    return isinstance(statement, (ast.If, ast.Try, ast.With)) and any(
        isinstance(node, (*_IMPORTS, *_DEFINITIONS)) for node in ast.walk(statement))


def binds(statement: ast.stmt) -> set[str]:
    """The module-level names a statement binds or whose object it shapes in place."""
    return _bound(statement) | _shaped(statement)


def _bound(statement: ast.stmt) -> set[str]:
    """The module-level names a statement binds."""
    if isinstance(statement, _DEFINITIONS):
        return {statement.name}
    if isinstance(statement, _IMPORTS):
        return {(a.asname or a.name.partition(".")[0]) for a in statement.names if a.name != "*"}
    names = set()
    for node in ast.walk(statement):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, _DEFINITIONS):
            names.add(node.name)
        elif isinstance(node, _IMPORTS):
            names |= _bound(node)
    return names


def _shaped(statement: ast.stmt) -> set[str]:
    """Names whose object the statement changes in place: ``model.fc = ...``, ``model.add(...)``."""
    if isinstance(statement, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
        targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
        return {root for t in targets if isinstance(t, (ast.Attribute, ast.Subscript)) and (root := _root(t))}
    if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call):
        func = statement.value.func
        if isinstance(func, ast.Attribute) and func.attr in SHAPING_METHODS and (root := _root(func.value)):
            return {root}
    return set()


def _root(expr: ast.expr) -> str | None:
    while isinstance(expr, (ast.Attribute, ast.Subscript)):
        expr = expr.value
    return expr.id if isinstance(expr, ast.Name) else None


def _used(statement: ast.stmt, body: bool) -> set[str]:
    """The global names a statement reads; of a function, only what its definition evaluates
    (decorators, defaults, annotations) unless ``body``."""
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)) and not body:
        parts: list[ast.AST] = [*statement.decorator_list, *statement.args.defaults,
                                *(d for d in statement.args.kw_defaults if d is not None)]
        return {n.id for part in parts for n in ast.walk(part) if isinstance(n, ast.Name)}
    try:
        table = symtable.symtable(ast.unparse(statement), "<slice>", "exec")
    except (SyntaxError, ValueError, RecursionError):  # not expected of parsed code: read every name
        return {n.id for n in ast.walk(statement) if isinstance(n, ast.Name)}
    return _globals_read(table)


def _globals_read(table: symtable.SymbolTable) -> set[str]:
    found = {s.get_name() for s in table.get_symbols()
             if s.is_referenced() and (table.get_type() == "module" or s.is_global())}
    for child in table.get_children():
        found |= _globals_read(child)
    return found


def _dotted(expr: ast.expr | None) -> str:
    """``a.b.c`` for a dotted name, the repr of a string constant, else ``""``."""
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return repr(expr.value)
    parts = []
    while isinstance(expr, ast.Attribute):
        parts.insert(0, expr.attr)
        expr = expr.value
    return ".".join([expr.id, *parts]) if isinstance(expr, ast.Name) else ""


def instance_slice(tree: ast.Module, line: int, done: Iterable[ast.stmt] = ()) -> ast.Module:
    """The statements that make the object a top-level assignment at ``line`` binds: the
    assignment, the later statements that shape that object (``model.add(...)``), and what
    they need that ``done`` did not run.  Later rebindings (``model = model.to(device)``,
    ``model = torch.compile(model)``) are uses, not part of the model, and never run.  ValueError
    when no top-level statement at ``line`` binds one name.
    """
    statements = list(top_level(tree.body))
    found = [s for s in statements if s.lineno == line and len(_bound(s)) == 1]
    if not found:
        raise ValueError(f"no top-level assignment of one name on line {line}")
    statement = found[0]
    name = next(iter(_bound(statement)))
    own = [statement, *(s for s in statements if s.lineno > line and name in _shaped(s))]
    needed = set().union(*(_used(s, body=True) for s in own)) - {name}
    before = [s for s in slice_module(tree, needed, done=done).body
              if isinstance(s, (*_IMPORTS, *_DEFINITIONS)) or name not in _bound(s)]
    body = sorted([*before, *own], key=lambda s: s.lineno)
    return ast.Module(body=body, type_ignores=[])
