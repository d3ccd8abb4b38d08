"""What the linter's own process does with what a child sends and with what its cache holds.

A child is user code: the graph it sends may be forged to cost the parent minutes, and the names
in it (layers, layer types) may carry line breaks and workflow commands.  A cache folder may be
shared: its entries may be wrong in type, name a FIFO, or forge findings.  Each case runs
through both front doors (the CLI and a real flake8), and the good models beside the hostile
ones keep their findings; unit tests cover what a front door adds nothing to.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from expectations import FIXTURES
from doors import DOORS, expected_in, flake8, rfa_lint, run_door

from rfa_lint import lint
from rfa_lint.cache import Cache
from rfa_lint.lint import analyse_source
from rfa_lint.results import Analysis, Finding, ModelRecord, printable
from rfa_lint.settings import options_from
from rfa_lint.rf.graph import GraphTooLarge, graph_from_plain, graph_limits
from rfa_lint.sandbox import FileOutcome, ModelOutcome

HOSTILE = FIXTURES / "hostile"
pytestmark = pytest.mark.usefixtures("warm_worker")  # one framework import per module, not per run
PRIMES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97, 101,
          103, 107, 109, 113, 127, 131, 137, 139, 149, 151)


@pytest.fixture(scope="module")
def door_tmp(tmp_path_factory) -> Path:
    """The temporary folder of the module's front-door runs: they share one worker (warm_worker),
    and each run still leaves it empty (run_door checks)."""
    return tmp_path_factory.mktemp("door-tmp")


def tree(tmp_path: Path, *files: Path) -> Path:
    """A folder of its own holding copies of ``files``."""
    folder = tmp_path / "tree"
    folder.mkdir()
    for path in files:
        shutil.copy(path, folder / path.name)
    return folder


# --- plain graphs, written by hand ---------------------------------------------------------------

def layer(kernel, stride=1, kind="conv") -> dict:
    return {"name": kind, "kernel_size": kernel, "stride_size": stride, "kind": kind}


def forged_graph(levels: int) -> dict:
    """``levels`` times: two branches with distinct prime strides, merged.  After the i-th merge
    every product of one prime of each level is a path's stride product: 2**i of them."""
    nodes = [{"name": "input", "layer": layer(1, kind="input"), "predecessors": []}]
    for i in range(levels):
        top = len(nodes) - 1
        nodes += [{"name": f"a{i}", "layer": layer(3, PRIMES[2 * i]), "predecessors": [top]},
                  {"name": f"b{i}", "layer": layer(3, PRIMES[2 * i + 1]), "predecessors": [top]},
                  {"name": f"m{i}", "layer": layer(1, kind="merge"), "predecessors": [top + 1, top + 2]}]
    return {"nodes": nodes, "output": len(nodes) - 1, "unsupported": []}


def chain_graph(path: str, lines: dict[str, int]) -> dict:
    """fixtures/lint/chain.py's convs: kernels 3, strides 2, 2, 1, 1, 1, so RFs 3, 7 (3 + 2*2),
    15 (7 + 2*4), 23, 31; at 16px conv4 is critical (input 15, own 23), conv5 unproductive."""
    nodes = [{"name": "input", "layer": layer(1, kind="input"), "predecessors": []}]
    for i, stride in enumerate((2, 2, 1, 1, 1), start=1):
        nodes.append({"name": f"conv{i}", "layer": layer(3, stride), "predecessors": [i - 1],
                      "module_paths": [f"conv{i}"], "sites": [[path, lines[f"conv{i}"]]]})
    return {"nodes": nodes, "output": len(nodes) - 1, "unsupported": []}


TWO_MODELS = """from torch import nn


class Forged(nn.Module):
    pass


class Chain(nn.Module):
    def __init__(self):
        self.conv1 = nn.Conv2d(3, 8, 3, stride=2)
        self.conv2 = nn.Conv2d(8, 8, 3, stride=2)
        self.conv3 = nn.Conv2d(8, 8, 3)
        self.conv4 = nn.Conv2d(8, 8, 3)
        self.conv5 = nn.Conv2d(8, 8, 3)
"""
CHAIN_LINES = {f"conv{i}": 9 + i for i in range(1, 6)}  # the lines of TWO_MODELS that build them


def analyse_with(monkeypatch, tmp_path, outcome: FileOutcome, cache: Cache | None = None) -> Analysis:
    """TWO_MODELS analysed at 16px with the child's part played by ``outcome``."""
    path = tmp_path / "models.py"
    path.write_text(TWO_MODELS)
    monkeypatch.setattr(lint, "analyse_models", lambda *args, **kwargs: outcome)
    return analyse_source(str(path), TWO_MODELS, options_from({"res": 16}), cache)


def chain_outcome(tmp_path, **models: ModelOutcome) -> FileOutcome:
    chain = chain_graph(str(tmp_path / "models.py"), CHAIN_LINES)
    return FileOutcome(models={"Chain": ModelOutcome("ok", chain), **models})


CHAIN_FINDINGS = {(8, "RFA110"), (13, "RFA102"), (14, "RFA101")}


# --- 5: a forged graph costs an RFA916, not minutes ----------------------------------------------

def test_a_forged_graph_gets_rfa916_and_the_good_model_keeps_its_findings(monkeypatch, tmp_path):
    outcome = chain_outcome(tmp_path, Forged=ModelOutcome("ok", forged_graph(18)))
    analysis = analyse_with(monkeypatch, tmp_path, outcome)
    assert {(f.line, f.code) for f in analysis.findings} == {(4, "RFA916")} | CHAIN_FINDINGS
    [rfa916] = [f for f in analysis.findings if f.code == "RFA916"]
    assert "128 distinct stride products meet at one layer, more than the limit of 64" in rfa916.message
    assert [(m.name, m.analysed, m.code) for m in analysis.models] == [("Forged", False, "RFA916"),
                                                                       ("Chain", True, None)]


@pytest.mark.parametrize("levels, raises", [(6, False), (7, True)])
def test_the_stride_products_at_one_node_are_bounded(levels, raises):
    # after the 6th merge 2**6 = 64 products meet (the limit), after the 7th 2**7 = 128
    with graph_limits(paths=10**9, stride_products=64):
        if raises:
            with pytest.raises(GraphTooLarge, match="128 distinct stride products"):
                graph_from_plain(forged_graph(levels))
        else:
            infos = graph_from_plain(forged_graph(levels)).receptive_field_info
            assert len({i.multiplicator for i in infos}) == 64


def test_the_paths_of_a_graph_are_bounded_and_the_limit_ends_with_its_block():
    # a chain of 10 nodes carries one entry into each (the input node's is the pixel): 10 in all
    chain = {"nodes": [{"name": "input", "layer": layer(1, kind="input"), "predecessors": []}]
             + [{"name": f"c{i}", "layer": layer(3), "predecessors": [i]} for i in range(9)]}
    with graph_limits(paths=10, stride_products=1):
        assert graph_from_plain(chain).receptive_field_min == 19  # 1 + 9 * 2
    with graph_limits(paths=9, stride_products=1), pytest.raises(GraphTooLarge, match="paths"):
        graph_from_plain(chain)
    # outside the block, no limit: one path per product (one prime of each level), 2**8 of them
    assert len(graph_from_plain(forged_graph(8)).receptive_field_info) == 2**8


@pytest.mark.parametrize("nodes, predecessors, detail", [
    (lint.GRAPH_NODES + 1, 1, f"{lint.GRAPH_NODES + 1} nodes, more than the limit of {lint.GRAPH_NODES}"),
    (1001, 60, f"{1000 * 60} edges, more than the limit of {lint.GRAPH_EDGES}"),
])
def test_nodes_and_edges_are_bounded_before_any_work(monkeypatch, tmp_path, nodes, predecessors, detail):
    big = {"nodes": [{"name": "input", "layer": layer(1, kind="input"), "predecessors": []}]
           + [{"name": f"c{i}", "layer": layer(1), "predecessors": [i] * predecessors}
              for i in range(nodes - 1)]}
    analysis = analyse_with(monkeypatch, tmp_path, chain_outcome(tmp_path, Forged=ModelOutcome("ok", big)))
    assert {(f.line, f.code) for f in analysis.findings} == {(4, "RFA916")} | CHAIN_FINDINGS
    assert detail in analysis.findings[0].message


def test_a_malformed_graph_gets_rfa916_not_the_whole_files_rfa999(monkeypatch, tmp_path):
    broken = {"nodes": [{"name": "x", "layer": {"name": "x", "kernel_size": "three"}, "predecessors": [5]}]}
    analysis = analyse_with(monkeypatch, tmp_path, chain_outcome(tmp_path, Forged=ModelOutcome("ok", broken)))
    assert {(f.line, f.code) for f in analysis.findings} == {(4, "RFA916")} | CHAIN_FINDINGS
    assert "it is malformed (ValueError: node 0" in analysis.findings[0].message


@pytest.mark.parametrize("door", DOORS)
def test_a_network_forging_its_graph_through_both_front_doors(tmp_path, door, door_tmp):
    folder = tree(tmp_path, HOSTILE / "parent_forged_graph.py")
    want = expected_in(folder)
    assert sorted(code for _, _, code in want) == ["RFA101", "RFA102", "RFA110", "RFA916"]
    assert run_door(door, folder, tmp=door_tmp)[0] == want


# --- 8: names never forge output -----------------------------------------------------------------

FINDING_LINE = re.compile(r"[^\s:]+:\d+:\d+: RFA\d{3} \S.*")


def test_printable_escapes_what_does_not_print_and_keeps_the_rest():
    assert printable("layer4.1.conv2 ß 中") == "layer4.1.conv2 ß 中"
    controls = "a\nb\r\x1b[2K\t\u2028\u202e\x85\udc80"  # C0, line separator, bidi override, C1, surrogate
    assert printable(controls) == "a\\nb\\r\\x1b[2K\\t\\u2028\\u202e\\x85\\udc80"
    finding = Finding("a\nb.py", 1, 0, "RFA101", "layer 'x\n::error::y'")
    assert (finding.path, finding.message) == ("a\\nb.py", "layer 'x\\n::error::y'")
    assert ModelRecord("m", 1, False, "RFA903", "failed: \x1b[31m").reason == "failed: \\x1b[31m"


def test_layer_and_type_names_stay_inside_their_findings_in_every_format(tmp_path, door_tmp):
    folder = tree(tmp_path, HOSTILE / "parent_newline_names.py")
    want = expected_in(folder)
    text = rfa_lint(".", "--res", "16", "--select", "RFA", "-q", cwd=folder).stdout
    assert len(text.splitlines()) == len(want) and all(FINDING_LINE.fullmatch(x) for x in text.splitlines())
    forged = "\\n::error file=chain.py,line=1::forged\\nchain.py:1:1: RFA101 forged\\r\\x1b[2K\\u2028"
    assert f"'conv4{forged}'" in text and f"'conv5{forged}'" in text
    assert f"of type Stretch{forged} changes" in text
    github = rfa_lint(".", "--res", "16", "--select", "RFA", "-q", "--format", "github", cwd=folder).stdout
    assert len(github.splitlines()) == len(want)
    assert all(re.match(r"::(warning|error) file=parent_newline_names\.py,", x) for x in github.splitlines())
    for fmt in ("json", "sarif"):
        report = rfa_lint(".", "--res", "16", "--select", "RFA", "-q", "--format", fmt, cwd=folder).stdout
        assert "\\u001b" not in report and "\\\\n::error" in report  # JSON's escape of the escape
    proc = flake8("--rfa-res=16", "parent_newline_names.py", cwd=folder)
    assert len(proc.stdout.splitlines()) == len(want)
    assert all(FINDING_LINE.fullmatch(x) for x in proc.stdout.splitlines())
    assert all(run_door(door, folder, tmp=door_tmp)[0] == want for door in DOORS)


def test_a_file_name_with_line_breaks_is_escaped_where_rfa_lint_prints_it(tmp_path):
    name = "broken\n::error file=x,line=1::forged.py"
    (tmp_path / name).write_text("import not_installed_anywhere_xyz\nfrom torch import nn\n\n\n"
                                 "class Net(nn.Module):\n    pass\n")
    shutil.copy(FIXTURES / "lint" / "chain.py", tmp_path / "chain.py")
    escaped = "broken\\n::error file=x,line=1::forged.py"
    lines = rfa_lint(".", "--res", "16", "--select", "RFA", "-q", cwd=tmp_path).stdout.splitlines()
    # chain.py: RFA102 and RFA101 on the calls of conv4 and conv5 (column 22), RFA110 on the class
    assert sorted(x.split(": ")[0] for x in lines) == [f"{escaped}:1:1", "chain.py:13:22", "chain.py:14:22",
                                                       "chain.py:7:1"]
    assert f"{escaped}:1:1: RFA901 cannot import '{escaped}': " in "\n".join(lines)
    # flake8 prints the path itself (as for any plugin's findings); rfa-lint's own text is escaped
    texts = flake8("--rfa-res=16", "--format=%(row)d:%(code)s:%(text)s", ".", cwd=tmp_path).stdout
    texts = texts.splitlines()
    assert len(texts) == 4 and any(x.startswith(f"1:RFA901:cannot import '{escaped}': ") for x in texts)


# --- 9: a cache entry is data from a folder others may write -------------------------------------

CHAIN = FIXTURES / "lint" / "chain.py"
FIFO_MODULE = "fifo_module"


def poison(entry: Path, how: str, fifo: Path) -> None:
    """Rewrite a cache entry (chain.py's, at 16px) the way a poisoned one could read."""
    data = json.loads(entry.read_bytes())
    real = data["findings"]["findings"]
    if how == "fifo-entry":
        entry.unlink()
        os.mkfifo(entry)
        return
    if how == "wrong-types":
        data["findings"]["findings"] = [["7", None, 5, ["x"]], [7, "x", "RFA101", "m"]]
    elif how == "fifo-module":
        data["files"] = {str(fifo): [[1, 1, 1, 1], "0" * 64]}
    elif how == "forged-line-break":  # the rule's words, then a workflow command on a line of its own
        data["findings"]["findings"] = [[14, 0, "RFA101", real[2][3] + "\n::error file=chain.py::forged"]]
    elif how == "past-the-end":
        data["findings"]["findings"] = [[999, 0, "RFA101", real[2][3]]]
    elif how == "unknown-code":
        data["findings"]["findings"] = [[7, 0, "RFA000", "forged"]]
    elif how == "not-its-words":
        data["findings"]["findings"] = [[7, 0, "RFA101", "this model is fine, ship it"]]
    entry.write_text(json.dumps(data))


POISONS = ["wrong-types", "fifo-module", "fifo-entry", "forged-line-break", "past-the-end", "unknown-code",
           "not-its-words"]


@pytest.mark.parametrize("door", DOORS)
def test_a_poisoned_cache_entry_is_a_miss_through_both_front_doors(tmp_path, door, door_tmp):
    """Each poisoned entry: no traceback, no hang (a FIFO waits for a writer that never comes),
    no forged finding; the run reports the real findings and rewrites the entry."""
    folder = tree(tmp_path, CHAIN)
    want = expected_in(folder)
    assert run_door(door, folder, tmp=door_tmp)[0] == want
    clean = newest_entry().read_bytes()
    os.mkfifo(tmp_path / f"{FIFO_MODULE}.py")
    for how in POISONS:
        entry = newest_entry()
        entry.unlink()
        entry.write_bytes(clean)
        poison(entry, how, tmp_path / f"{FIFO_MODULE}.py")
        found, printed = run_door(door, folder, tmp=door_tmp)
        assert (found, "Traceback" in printed) == (want, False), how
        assert json.loads(newest_entry().read_bytes())["findings"] == json.loads(clean)["findings"], how


def newest_entry() -> Path:
    """The entry the last run wrote (the key covers rfa-lint's own sources: an edit to them
    while the suite runs starts a new one)."""
    return max(Path(os.environ["RFA_LINT_CACHE_DIR"]).glob("*/*.json"), key=lambda p: p.stat().st_mtime_ns)


def test_a_forged_graph_in_the_cache_is_a_miss_for_pictures(tmp_path):
    folder = tree(tmp_path, CHAIN)
    pictures = ["--graph-dir", "pictures", "--graph-format", "dot", "-q"]
    assert rfa_lint(".", "--res", "16", *pictures, cwd=folder).returncode == 1
    [graphs] = Path(os.environ["RFA_LINT_CACHE_DIR"]).glob("*/*.graphs")
    for forged in ({"Chain": forged_graph(18)}, {"Chain": {"nodes": 5}}, ["not", "a", "dict"]):
        graphs.write_text(json.dumps(forged))
        (folder / "pictures" / "chain.Chain.dot").unlink()
        proc = rfa_lint(".", "--res", "16", *pictures, cwd=folder)
        assert (proc.returncode, proc.stderr) == (1, ""), forged
        assert "conv5" in (folder / "pictures" / "chain.Chain.dot").read_text()


NO_EXEC = options_from({"res": 16, "no-exec": True})
MODEL = "from torch import nn\n\n\nclass Net(nn.Module):\n    pass\n"


@pytest.mark.parametrize("rows", [
    [], {"findings": "abcd", "models": []}, {"findings": [[1, 0, "RFA900"]], "models": []},
    {"findings": [[True, 0, "RFA900", "m"]], "models": []}, {"findings": [], "models": [{"name": "Net"}]},
    {"findings": [], "models": [{"name": "Net", "line": 4, "analysed": "yes", "code": None, "reason": "",
                                 "traced": None, "builds": []}]},
    {"findings": [], "models": [{"name": ["Net"], "line": 4, "analysed": False, "code": "RFA900",
                                 "reason": "", "traced": None, "builds": []}]},
    {"findings": [], "models": [{"name": "Net", "line": 4, "analysed": True, "code": None, "reason": "",
                                 "traced": [16, "16"], "builds": [["a.py"]]}]},
], ids=repr)
def test_a_malformed_entry_is_analysed_again_and_rewritten(tmp_path, rows):
    path = tmp_path / "net.py"
    path.write_text(MODEL)
    fresh = analyse_source(str(path), MODEL, NO_EXEC)
    Cache(tmp_path / "cache").store(str(path), MODEL, NO_EXEC, rows, {})
    assert analyse_source(str(path), MODEL, NO_EXEC, Cache(tmp_path / "cache")) == fresh
    assert Cache(tmp_path / "cache").load(str(path), MODEL, NO_EXEC)[0]["findings"] == [
        [4, 0, "RFA900", fresh.findings[0].message]]


def test_a_well_formed_entry_is_read_back_as_written(tmp_path):
    path = tmp_path / "net.py"
    path.write_text(MODEL)
    fresh = analyse_source(str(path), MODEL, NO_EXEC, Cache(tmp_path / "cache"))
    assert analyse_source(str(path), MODEL, NO_EXEC, Cache(tmp_path / "cache")) == fresh
    assert [f.code for f in fresh.findings] == ["RFA900"]


# --- 3: only clean outcomes reach the cache ------------------------------------------------------

@pytest.mark.parametrize("outcome, cached", [
    ({}, True),
    ({"Forged": ModelOutcome("needs-arguments", detail="levels")}, True),
    ({"Forged": ModelOutcome("ok", forged_graph(18))}, True),  # RFA916: the graph decides it
    ({"Forged": ModelOutcome("timeout", detail="no result within 8s")}, False),
    ({"Forged": ModelOutcome("memory-limit", detail="ran out of memory")}, False),
    ({"Forged": ModelOutcome("crashed", detail="killed by SIGKILL")}, False),
    ({"Forged": ModelOutcome("build-failed", detail="ImportError: x")}, True),  # the code decides it
], ids=lambda value: value if isinstance(value, bool) else ",".join(m.status for m in value.values()))
def test_only_clean_outcomes_are_cached(monkeypatch, tmp_path, outcome, cached):
    analysis = analyse_with(monkeypatch, tmp_path, chain_outcome(tmp_path, **outcome), Cache(tmp_path / "c"))
    assert CHAIN_FINDINGS <= {(f.line, f.code) for f in analysis.findings}
    assert analysis.cacheable == cached
    assert len(list((tmp_path / "c").glob("*/*.json"))) == cached


@pytest.mark.parametrize("status", ["timeout", "crashed", "memory-limit"])
def test_a_file_whose_child_died_is_never_cached(monkeypatch, tmp_path, status):
    outcome = FileOutcome(failure=ModelOutcome(status, detail="died"))
    analysis = analyse_with(monkeypatch, tmp_path, outcome, Cache(tmp_path / "c"))
    assert [f.line for f in analysis.findings] == [1] and not analysis.cacheable
    assert not list((tmp_path / "c").glob("*/*.json"))
