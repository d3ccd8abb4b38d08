"""The result cache: what its key covers, where it lives, and that it survives its own failures.

Most tests lint with ``no-exec`` (every model gets RFA900 without a child), which exercises the
same cache path as a real run in milliseconds.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import pytest
from expectations import FIXTURES

from rfa_lint import cache as cache_module
from rfa_lint.cache import Cache, default_folder, read_regular
from rfa_lint.lint import analyse_source
from rfa_lint.settings import options_from

MODEL = "from torch import nn\n\n\nclass Net(nn.Module):\n    pass\n"
OPTIONS = options_from({"res": 32, "no-exec": True})
pytestmark = pytest.mark.usefixtures("warm_worker")  # one framework import per module, not per test


def write(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)


GRAPHS = {"Net": {"nodes": []}}


def stored(folder: Path, path: Path, findings=("found",)) -> Cache:
    """A fresh cache (as a new run would open) holding ``findings`` for ``path``."""
    Cache(folder).store(str(path), path.read_text(), OPTIONS, list(findings), GRAPHS)
    return Cache(folder)


def test_key_covers_code_path_options_and_environment(tmp_path, monkeypatch):
    cache = Cache(tmp_path)
    key = cache.key("net.py", MODEL, OPTIONS)
    assert cache.key("net.py", MODEL, OPTIONS) == key
    assert cache.key("net.py", MODEL.replace("pass", "x = 1"), OPTIONS) != key
    assert cache.key("other/net.py", MODEL, OPTIONS) != key
    assert cache.key("net.py", MODEL, options_from({"res": 16, "no-exec": True})) != key
    assert cache.key("net.py", MODEL, options_from({"res": 32, "no-exec": True, "timeout": 9})) != key
    narrower = options_from({"res": 32, "no-exec": True, "filter-kernel-size-1": True})
    assert cache.key("net.py", MODEL, narrower) != key
    assert cache.key("net.py", MODEL, options_from({"res": 32, "no-exec": True, "no-worker": True})) == key
    environment = cache_module.environment()
    monkeypatch.setattr(cache_module, "environment", lambda: {**environment, "installed": "pip installed"})
    assert cache.key("net.py", MODEL, OPTIONS) != key


CODE = "import torch  # the framework\nfrom torch import nn\n\n\nclass Net(nn.Module):\n    pass\n"


@pytest.mark.parametrize("edit", [
    ("# the framework", "# torch, of course"), ("# the framework", ""), ("\n\n\n", "\n   \n\n"),
    ("\n\n\n", "\n# a comment\n\n"), ("    pass\n", "    pass  \n"),
])
def test_comments_and_blank_space_that_keep_the_lines_are_no_part_of_the_key(edit):
    """No finding depends on them (the messages name layers, lines and numbers)."""
    cache = Cache("unused")
    assert cache.key("net.py", CODE.replace(*edit), OPTIONS) == cache.key("net.py", CODE, OPTIONS)


@pytest.mark.parametrize("edit", [
    ("class Net", "# rfa-lint: skip\nclass Net"),  # a new line: every line below moves
    ("pass", "x = 1"), ("\n\n\nclass", "\n\n\n\nclass"),
])
def test_code_and_lines_are_part_of_the_key(edit):
    cache = Cache("unused")
    assert cache.key("net.py", CODE.replace(*edit), OPTIONS) != cache.key("net.py", CODE, OPTIONS)


DIRECTED = "from torch import nn\n# rfa-lint: skip\n\nclass Net(nn.Module):  # a net\n    pass\n"


@pytest.mark.parametrize("edit", [
    ("skip", "build(1)"),  # the directive's words
    ("skip\n\n", "skip\n# more words\n"),  # a comment between it and the class joins them
    ("# a net", "# rfa-lint: input(1, 3, 8, 8)"),
])
def test_directives_stay_in_the_key(edit):
    cache = Cache("unused")
    assert cache.key("net.py", DIRECTED.replace(*edit), OPTIONS) != cache.key("net.py", DIRECTED, OPTIONS)
    assert cache.key("net.py", DIRECTED.replace("# a net", "# a fine net"), OPTIONS) == \
        cache.key("net.py", DIRECTED, OPTIONS)


def test_text_that_does_not_tokenize_is_keyed_whole():
    broken = CODE + "x = (\n"
    cache = Cache("unused")
    assert cache.key("net.py", broken + "# a", OPTIONS) != cache.key("net.py", broken + "# b", OPTIONS)


def test_the_installed_distributions_are_read_without_importing_anything(tmp_path):
    """A ``pip install`` adds or renames a metadata folder in a ``sys.path`` folder."""
    site = tmp_path / "site"
    site.mkdir()
    code = ("import sys; from rfa_lint.cache import installed; print(installed());"
            "print(sorted({'torch', 'tensorflow', 'keras'} & set(sys.modules)))")
    env = {**os.environ, "PYTHONPATH": str(site)}

    def digest() -> list[str]:
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              env=env).stdout.splitlines()

    (site / "foo-1.0.dist-info").mkdir()
    before, imported = digest()
    assert imported == "[]"
    assert digest()[0] == before
    (site / "foo-1.0.dist-info").rename(site / "foo-2.0.dist-info")
    assert digest()[0] != before


@pytest.mark.parametrize("kept", [False, True], ids=["a-run-s-cache", "a-server-s-cache"])
@pytest.mark.parametrize("layout", ["loose", "package"])
def test_a_changed_local_import_invalidates_the_entry(tmp_path, layout, kept):
    """Also through one Cache kept across the edits, as the language server keeps its own."""
    prefix, imports = ("pkg/", "from . import blocks\nfrom .deep import helper\n") if layout == "package" \
        else ("", "import blocks\nfrom deep import helper\n")
    write(tmp_path, {f"{prefix}net.py": imports + MODEL, f"{prefix}blocks.py": "from torch import nn\n",
                     f"{prefix}deep/__init__.py": "", f"{prefix}deep/helper.py": "from . import leaf\n",
                     f"{prefix}deep/leaf.py": "X = 1\n", f"{prefix}unrelated.py": "Y = 1\n"})
    if layout == "package":
        write(tmp_path, {"pkg/__init__.py": ""})
    net, cache_dir = tmp_path / prefix / "net.py", tmp_path / "cache"
    server_cache = Cache(cache_dir)

    def read():
        return (server_cache if kept else Cache(cache_dir)).load(str(net), net.read_text(), OPTIONS)

    for changed in ("unrelated.py", "blocks.py", "deep/leaf.py", "deep/__init__.py") + (
            ("__init__.py",) if layout == "package" else ()):
        stored(cache_dir, net)
        assert read() == (["found"], {})
        (tmp_path / prefix / changed).write_text("Z = 2\n")
        assert (read() is None) == (changed != "unrelated.py"), changed


def test_entries_are_replaced_atomically(tmp_path, monkeypatch):
    path = tmp_path / "net.py"
    path.write_text(MODEL)
    cache = stored(tmp_path / "cache", path, ["old"])

    def interrupted(source, target):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", interrupted)
    cache.store(str(path), MODEL, OPTIONS, ["new"], {})  # fails quietly
    assert Cache(tmp_path / "cache", graphs=True).load(str(path), MODEL, OPTIONS) == (["old"], GRAPHS)
    assert not list((tmp_path / "cache").rglob("*.tmp"))


def _hammer(folder: str, path: str, worker: int) -> list:
    cache = Cache(folder, graphs=True)
    seen = []
    for round_ in range(100):
        cache.store(path, MODEL, OPTIONS, [worker, round_, "x" * 50_000], {"Net": "y" * 50_000})
        seen.append(cache.load(path, MODEL, OPTIONS))
    return seen


def test_parallel_writers_never_show_a_torn_entry(tmp_path):
    path = tmp_path / "net.py"
    path.write_text(MODEL)
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        results = pool.starmap(_hammer, [(str(tmp_path / "cache"), str(path), w) for w in range(4)])
    assert all(len(findings) == 3 and findings[2] == "x" * 50_000 and graphs == {"Net": "y" * 50_000}
               for seen in results for findings, graphs in seen)


def test_a_corrupt_entry_is_ignored_and_rewritten(tmp_path):
    path = tmp_path / "net.py"
    path.write_text(MODEL)
    cache = Cache(tmp_path / "cache")
    fresh = analyse_source(str(path), MODEL, OPTIONS, cache)
    [entry] = (tmp_path / "cache").glob("*/*.json")
    for garbage in (b"{not json", b'{"files": {}, "findings": [[1]]}', b"[]"):
        entry.write_bytes(garbage)
        assert analyse_source(str(path), MODEL, OPTIONS, Cache(tmp_path / "cache")) == fresh
        rows = [[f.line, f.col, f.code, f.message] for f in fresh.findings]
        assert json.loads(entry.read_bytes())["findings"]["findings"] == rows


def test_graphs_come_back_only_when_asked_for(tmp_path):
    path = tmp_path / "net.py"
    path.write_text(MODEL)
    assert stored(tmp_path, path).load(str(path), MODEL, OPTIONS) == (["found"], {})
    assert Cache(tmp_path, graphs=True).load(str(path), MODEL, OPTIONS) == (["found"], GRAPHS)


def test_the_cache_folder_keeps_out_of_git(tmp_path):
    path = tmp_path / "net.py"
    path.write_text(MODEL)
    stored(tmp_path / "cache", path)
    assert (tmp_path / "cache" / ".gitignore").read_text().splitlines()[-1] == "*"


def test_default_folder_is_the_project_root_else_the_user_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RFA_LINT_CACHE_DIR", str(tmp_path / "chosen"))
    assert default_folder(tmp_path) == tmp_path / "chosen"  # the variable wins (conftest sets it)
    monkeypatch.delenv("RFA_LINT_CACHE_DIR")
    (tmp_path / "project" / "src" / "models").mkdir(parents=True)
    (tmp_path / "project" / "setup.cfg").write_text("")
    assert default_folder(tmp_path / "project" / "src" / "models") == tmp_path / "project" / ".rfa_cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_folder(tmp_path) == tmp_path / "xdg" / "rfa-lint"


def run_cli(folder: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "XDG_CACHE_HOME": str(folder / "xdg")}
    command = [sys.executable, "-m", "rfa_lint", "net.py", "--no-exec", "--format", "json", *args]
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=120)


def test_cli_writes_the_project_cache_unless_no_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("RFA_LINT_CACHE_DIR")
    write(tmp_path, {"pyproject.toml": "", "net.py": MODEL})
    report = json.loads(run_cli(tmp_path, "--no-cache", "--select", "RFA").stdout)
    assert report["findings"][0]["code"] == "RFA900"
    assert not (tmp_path / ".rfa_cache").exists()
    run_cli(tmp_path)
    assert len(list((tmp_path / ".rfa_cache").glob("*/*.json"))) == 1


def test_cli_outside_a_project_leaves_the_folder_alone(tmp_path, monkeypatch):
    monkeypatch.delenv("RFA_LINT_CACHE_DIR")
    write(tmp_path, {"net.py": MODEL})
    run_cli(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.py", "xdg"]
    assert len(list((tmp_path / "xdg" / "rfa-lint").glob("*/*.json"))) == 1


def test_flake8_cache_options(tmp_path):
    write(tmp_path, {"net.py": MODEL})
    flake8 = [sys.executable, "-m", "flake8", "--select=RFA", "--rfa-no-exec", "net.py"]
    subprocess.run([*flake8, "--rfa-no-cache", f"--rfa-cache-dir={tmp_path / 'off'}"], cwd=tmp_path,
                   timeout=120)
    subprocess.run([*flake8, f"--rfa-cache-dir={tmp_path / 'on'}"], cwd=tmp_path, timeout=120)
    assert not (tmp_path / "off").exists()
    assert len(list((tmp_path / "on").glob("*/*.json"))) == 1


def test_timeouts_are_not_cached(tmp_path):
    hang = FIXTURES / "hostile" / "hangs_in_init.py"
    options = options_from({"res": 32, "timeout": 2})
    analysis = analyse_source(str(hang), hang.read_text(), options, Cache(tmp_path))
    assert [f.code for f in analysis.findings] == ["RFA906"]
    assert not list(tmp_path.glob("*/*.json"))


def test_a_child_that_died_after_sending_its_results_is_reported_but_not_cached(tmp_path):
    dies = FIXTURES / "sandbox" / "dies_after_results.py"
    analysis = analyse_source(str(dies), dies.read_text(), options_from({"res": 32}), Cache(tmp_path))
    assert [(m.name, m.analysed) for m in analysis.models] == [("Net", True)]
    assert set(analysis.graphs) == {"Net"} and not analysis.cacheable
    assert not list(tmp_path.glob("*/*.json"))


# --- reads trust nothing: the folder may be shared ----------------------------------------------

def test_only_regular_files_within_their_size_are_read(tmp_path):
    (tmp_path / "small").write_bytes(b"12345")
    assert read_regular(tmp_path / "small", 5) == b"12345"
    os.mkfifo(tmp_path / "fifo")  # opening it for reading would wait for a writer
    for path, limit in ((tmp_path / "small", 4), (tmp_path / "fifo", 5), (Path("/dev/zero"), 5),
                        (tmp_path, 5), (tmp_path / "missing", 5)):
        with pytest.raises(OSError):
            read_regular(path, limit)


def test_an_entry_that_is_a_fifo_or_too_large_or_not_an_entry_is_a_miss(tmp_path, monkeypatch):
    path = tmp_path / "net.py"
    path.write_text(MODEL)
    cache = stored(tmp_path / "cache", path)
    [entry] = (tmp_path / "cache").glob("*/*.json")
    for content in (b"[" * 100_000 + b"]" * 100_000, b'{"files": [], "findings": []}',
                    b'{"files": {"blocks.py": [null, "absent"]}, "findings": []}', b'{"files": {}}'):
        entry.write_bytes(content)  # too deep for json; files not a dict; a relative path; no findings
        assert cache.load(str(path), MODEL, OPTIONS) is None, content[:40]
    entry.unlink()
    os.mkfifo(entry)
    assert cache.load(str(path), MODEL, OPTIONS) is None
    entry.unlink()
    stored(tmp_path / "cache", path)
    monkeypatch.setattr(cache_module, "ENTRY_BYTES", entry.stat().st_size - 1)
    assert cache.load(str(path), MODEL, OPTIONS) is None


def test_graphs_that_are_no_dict_or_too_large_are_a_miss(tmp_path, monkeypatch):
    path = tmp_path / "net.py"
    path.write_text(MODEL)
    stored(tmp_path / "cache", path)
    [graphs] = (tmp_path / "cache").glob("*/*.graphs")
    graphs.write_text("[1, 2]")
    assert Cache(tmp_path / "cache", graphs=True).load(str(path), MODEL, OPTIONS) is None
    assert Cache(tmp_path / "cache").load(str(path), MODEL, OPTIONS) == (["found"], {})  # unread
    monkeypatch.setattr(cache_module, "GRAPHS_BYTES", 10)
    Cache(tmp_path / "cache").store(str(path), MODEL, OPTIONS, ["big"], {"Net": "x" * 20})
    assert Cache(tmp_path / "cache").load(str(path), MODEL, OPTIONS) == (["found"], {})  # not written


def test_a_dependency_that_is_no_regular_file_vouches_for_nothing(tmp_path, monkeypatch):
    write(tmp_path, {"net.py": "import blocks\n" + MODEL})
    net, fifo = tmp_path / "net.py", tmp_path / "other" / "blocks.py"
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    cache = stored(tmp_path / "cache", net)
    [entry] = (tmp_path / "cache").glob("*/*.json")
    data = json.loads(entry.read_bytes())
    data["files"] = {str(fifo): [[1, 1, 1, 1], "0" * 64]}  # a poisoned entry naming a FIFO: it would hang
    entry.write_text(json.dumps(data))
    assert cache.load(str(net), net.read_text(), OPTIONS) is None
    (tmp_path / "blocks.py").write_text("X = 1\n")
    monkeypatch.setattr(cache_module, "FILE_BYTES", 5)  # blocks.py, 6 bytes, cannot be hashed whole
    entry.unlink()
    stored(tmp_path / "cache", net)
    assert not list((tmp_path / "cache").glob("*/*.json"))  # no entry vouched for by nothing


# --- what is cached: all the text, the options and the installation decide ---------------------

RAISES = """
import torch
from torch import nn
open({marker!r}, "a").write("ran\\n")
{body}


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return self.conv(x)
"""


def runs(tmp_path: Path, body: str, edits: list[str]) -> tuple[list[str], int]:
    """Lint ``body`` in a model file, then each edit of it (``old->new``), through one cache
    folder with fresh Cache objects, as runs would: the codes of the last run, and how many of
    the runs started the file's child (each writes a marker outside its work folder, which only
    the process sandbox allows: these runs are about the cache, not isolation)."""
    path, marker, cache_dir = tmp_path / "net.py", tmp_path / "ran", tmp_path / "cache"
    text = RAISES.format(marker=str(marker), body=body)
    options = options_from({"res": 32, "isolation": "processes"})
    for edit in ["->", *edits]:
        old, new = edit.split("->")
        text = text.replace(old, new) if old else text
        path.write_text(text)
        codes = [f.code for f in analyse_source(str(path), text, options, Cache(cache_dir)).findings]
    return codes, len(marker.read_text().splitlines()) if marker.exists() else 0


@pytest.mark.parametrize("body, code", [("import not_installed_anywhere", "RFA901"),
                                        ("nn.Conv2d = None", "RFA903"),
                                        ("nn.Conv2d = lambda *args: "
                                         "torch.hub.load('pytorch/vision', 'resnet18')", "RFA914")])
def test_failures_the_installation_decides_are_cached_and_comments_do_not_miss(tmp_path, body, code):
    assert runs(tmp_path, body, ["# -># a comment edited: ", "\n\n\nclass->\n   \n\nclass"]) == ([code], 1)


def test_a_pip_install_invalidates_every_entry(tmp_path, monkeypatch):
    assert runs(tmp_path, "import not_installed_anywhere", []) == (["RFA901"], 1)
    environment = cache_module.environment()
    after = {**environment, "installed": "after pip install"}
    monkeypatch.setattr(cache_module, "environment", lambda: after)
    assert runs(tmp_path, "import not_installed_anywhere", []) == (["RFA901"], 2)


def test_a_missing_local_module_created_later_invalidates_the_entry(tmp_path):
    """The import failed because ``helpers.py`` did not exist; once it does, the file runs again."""
    assert runs(tmp_path, "import helpers", []) == (["RFA901"], 1)
    (tmp_path / "helpers.py").write_text("X = 1\n")
    # analysed now: one 3x3 conv has an RF of 3, its productive range 3-3px ends below 32 (RFA110)
    assert runs(tmp_path, "import helpers", []) == (["RFA110"], 2)
    assert runs(tmp_path, "import helpers", []) == (["RFA110"], 2)  # now a hit, with helpers.py's digest


def test_an_unchanged_text_is_found_without_tokenizing(tmp_path, monkeypatch):
    path = tmp_path / "net.py"
    path.write_text(CODE)
    stored(tmp_path / "cache", path)
    edited = CODE.replace("# the framework", "# edited")
    assert Cache(tmp_path / "cache").load(str(path), edited, OPTIONS) == (["found"], {})  # tokenized once

    def no_tokenizing(text):
        raise AssertionError("tokenized")

    monkeypatch.setattr(cache_module, "code_digest", no_tokenizing)
    for text in (CODE, edited):
        assert Cache(tmp_path / "cache").load(str(path), text, OPTIONS) == (["found"], {})


@pytest.mark.parametrize("note", [b"", b"0" * 63, b"g" * 64, b"0" * 65, b"\xff" * 64])
def test_a_note_that_names_no_key_is_ignored(tmp_path, note):
    path = tmp_path / "net.py"
    path.write_text(CODE)
    cache = stored(tmp_path / "cache", path)
    [pointer] = (tmp_path / "cache").glob("*/*.key")
    pointer.write_bytes(note)
    assert cache.load(str(path), CODE, OPTIONS) == (["found"], {})  # by the code's key
    assert len(pointer.read_bytes()) == 64  # and noted again
