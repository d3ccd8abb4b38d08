"""The package's structure: no module imports one that imports it back, and importing a module
changes nothing outside it (signal handlers, exit and fork hooks, the layer table are installed
by the program that starts, or by the object that uses them)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "rfa_lint"
#: Import circles other helpers' modules still have, named so that a new one fails: the lead
#: asks their owners (rf: graph <-> analysis; explain: the package <-> its text and page views).
KNOWN_CIRCLES = [
    ["rfa_lint.explain", "rfa_lint.explain.page", "rfa_lint.explain.text"],
]


def module_names() -> dict[str, Path]:
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def import_graph() -> dict[str, set[str]]:
    """Each module of the package -> the package's modules it imports, anywhere in it (a function's
    import closes a circle as much as a top-level one).  ``from pkg import mod`` imports ``mod``."""
    modules, graph = module_names(), {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in _run_time_nodes(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names if alias.name in modules}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    parent = ".".join(parts[:len(parts) - node.level + 1])
                    base = ".".join(p for p in (parent, node.module) if p)
                for alias in node.names:
                    found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
        graph[name] = {dep for dep in found if dep in modules and dep != name}
    return graph


def _run_time_nodes(tree: ast.AST):
    """Every node of ``tree`` but those under ``if TYPE_CHECKING:``: imports for the type checker
    only are never run, so they close no circle."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                stack.extend(child.orelse)
            else:
                stack.append(child)


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for dep in sorted(graph[node]):
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def test_no_module_imports_one_that_imports_it_back():
    assert circles(import_graph()) == KNOWN_CIRCLES


def test_the_circle_finder_finds_a_circle_through_a_functions_import():
    # the warm <-> worker circle was a function's import: such an import closes a circle too
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


IMPORT_EVERYTHING = r"""
import atexit, importlib, json, os, signal, sys
import rfa_lint

PACKAGE = os.path.dirname(rfa_lint.__file__)
installed = []

def recording(name, real):
    def install(*args, **kwargs):
        caller = sys._getframe(1).f_code.co_filename
        if caller.startswith(PACKAGE + os.sep):
            installed.append([name, os.path.relpath(caller, PACKAGE)])
        return real(*args, **kwargs)
    return install

atexit.register = recording("atexit.register", atexit.register)
os.register_at_fork = recording("os.register_at_fork", os.register_at_fork)
signal.signal = recording("signal.signal", signal.signal)
names = sys.argv[1:]
# the frameworks first, torch before tensorflow (tensorflow first can crash torch's import)
import torch, torchvision  # noqa: E401
import tensorflow  # noqa: F401
before = {int(s): signal.getsignal(s) for s in signal.valid_signals() if signal.getsignal(s) is not None}
callbacks = atexit._ncallbacks()
for name in names:
    importlib.import_module(name)
after = {int(s): signal.getsignal(s) for s in signal.valid_signals() if signal.getsignal(s) is not None}
print(json.dumps({"installed": installed, "signals": sorted(s for s in after if after[s] != before.get(s)),
                  "atexit": atexit._ncallbacks() - callbacks}))
"""


def test_importing_every_module_changes_no_process_wide_state():
    names = sorted(name for name in module_names() if name != "rfa_lint.__main__")
    names.sort(key=lambda name: "keras" in name or "tensorflow" in name)  # torch's modules first
    proc = subprocess.run([sys.executable, "-c", IMPORT_EVERYTHING, *names], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1]) == {"installed": [], "signals": [], "atexit": 0}


def test_the_program_installs_the_interrupt_handler_once_it_starts():
    script = ("import signal\n"  # as an interactive start has it (a background job inherits SIG_IGN)
              "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
              "import rfa_lint.cli, rfa_lint.lint, rfa_lint.flake8_plugin\n"
              "print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)\n"
              "from rfa_lint.sandbox import count_interrupts\n"
              "count_interrupts()\n"
              "print(signal.getsignal(signal.SIGINT).__name__)\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)
    assert proc.stdout.split() == ["True", "_count_interrupt"], proc.stderr


def test_the_server_registry_hooks_exit_and_fork_on_its_first_server_only():
    from rfa_lint.sandbox import warm

    connected = []

    def connect(framework, frameworks, env):
        connected.append(framework)
        raise warm.ServerLost("no worker in this test")

    servers = warm.Servers(connect)
    assert not servers.hooked and servers.by_key == {}
    with pytest.raises(warm.ServerLost, match="no worker could serve"):
        servers.server_for("torch", ["torch"], {}, shared=True)
    assert connected == ["torch"] and servers.hooked
    assert servers.by_key == {(warm.WORKER, "torch", ("torch",)): None}  # failed: not retried
    with pytest.raises(warm.ServerLost):
        servers.server_for("torch", ["torch"], {}, shared=True)
    assert connected == ["torch"]


def test_opaque_layers_leave_the_layer_table_alone():
    torch = pytest.importorskip("torch")
    from rfa_lint.frontends.torch.table import LAYER_KINDS, opaque_layers, table_entry

    class Gate(torch.nn.Module):
        def forward(self, x):
            return x * x.mean((2, 3), keepdim=True).sigmoid()

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), Gate())
    table = dict(LAYER_KINDS)
    seen_elsewhere = []
    with opaque_layers(model, {"Gate"}):
        assert table_entry(Gate) is not None  # a single layer here
        other = threading.Thread(target=lambda: seen_elsewhere.append(table_entry(Gate)))
        other.start()
        other.join()
        assert LAYER_KINDS == table
    assert seen_elsewhere == [None]  # another thread's trace is not changed by this one's
    assert table_entry(Gate) is None and LAYER_KINDS == table
