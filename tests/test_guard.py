"""The sandbox's third audit, the guard's part: every wait has an end, settings have bounds, a
huge file is refused before it is parsed, the cache sees every file a model reads, and the
language server never lets one document's analysis hold up another's or its own fix.

Real runs throughout: both front doors as processes (tests/doors.py), real children, a real
process holding the slot locks, a real language-server session.
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from doors import DOORS, flake8, rfa_lint
from expectations import FIXTURES
from lsp_session import WAIT, opened, session
from lsprotocol import types as lsp

from rfa_lint.lint import lint_file
from rfa_lint.settings import options_from
from rfa_lint.limits import MAX_FILE_SECONDS, Limits
from rfa_lint.sandbox import slots

CHAIN = FIXTURES / "lint" / "chain.py"
CHAIN_CODES = {"RFA101", "RFA102", "RFA110"}  # chain.py at 16px
pytestmark = pytest.mark.usefixtures("warm_worker")  # one framework import per module, not per test


@pytest.fixture
def chain(tmp_path: Path) -> Path:
    model = tmp_path / "chain.py"
    model.write_bytes(CHAIN.read_bytes())
    return model


# --- 8: settings have bounds, and no absurd value reaches a wait ------------------------------------

@pytest.mark.parametrize(("option", "bound"), [
    (("--timeout", "1e300"), "1e+300s is more than a day (86400s)"),
    (("--memory-limit", "8796093022208"), "8796093022208 MiB is more than this machine's physical memory"),
])
def test_absurd_limits_are_usage_errors_naming_the_bound(chain, option, bound):
    proc = rfa_lint(str(chain), "--no-worker", "--res", "16", *option, cwd=chain.parent)
    assert proc.returncode == 2 and bound in proc.stderr, proc.stderr
    name = option[0].removeprefix("--")
    proc = flake8(f"--rfa-{name}={option[1]}", str(chain), cwd=chain.parent)
    assert proc.returncode == 2 and f"argument --rfa-{name}: {bound}" in proc.stderr, proc.stderr
    (chain.parent / "pyproject.toml").write_text(f"[tool.rfa-lint]\n{name} = {option[1]}\n")
    proc = rfa_lint(str(chain), "--res", "16", cwd=chain.parent)
    assert proc.returncode == 2 and f"[tool.rfa-lint] {name}: {bound}" in proc.stderr, proc.stderr


def test_the_largest_limits_taken_keep_every_wait_in_selects_range(chain):
    """A day per model is taken, and the most any file's children get stays a week: a count of
    models that a file could hold never makes a wait select() refuses (1e300 s killed the fork
    server, and every file got RFA908)."""
    proc = rfa_lint(str(chain), "--res", "16", "--timeout", "86400", "--select", "RFA", cwd=chain.parent)
    assert proc.returncode == 1 and "RFA101" in proc.stdout, proc.stderr
    assert Limits(timeout=86400).file_seconds(10**9) == MAX_FILE_SECONDS
    ready, writer = os.pipe()
    os.write(writer, b"x")  # readable: select returns at once, after checking its timeout
    try:
        assert select.select([ready], [], [], MAX_FILE_SECONDS + 3600)[0] == [ready]
    finally:
        os.close(ready)
        os.close(writer)


# --- 9: a huge file is refused before anything parses it -------------------------------------------

def big_model_file(path: Path, mib: int) -> Path:
    """A model file of ``mib`` MiB: a model, then a generated table (as generated code is)."""
    row = "ROW = [" + ", ".join(str(i) for i in range(200)) + "]\n"
    path.write_text(CHAIN.read_text() + row * ((mib << 20) // len(row) + 1))
    return path


def test_a_file_past_max_file_size_is_rfa917_at_once_with_little_memory(tmp_path):
    """3 MiB, past the default of 2048 KiB: reported without a parse, a tokenize or a child (a
    26 MB file cost RFA907 after minutes and 4 GB).  The run's peak memory is measured in a
    process of its own, which waits only for it."""
    big = big_model_file(tmp_path / "generated.py", 3)
    measure = ("import resource, subprocess, sys\n"
               "proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
               "print(proc.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
               "print(proc.stdout + proc.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", measure, sys.executable, "-m", "rfa_lint", str(big),
                           "--res", "16", "--select", "RFA"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)
    status, printed = proc.stdout.split("\n", 1)
    returncode, peak_kib = map(int, status.split())
    assert returncode == 1
    assert "generated.py:1:1: RFA917 the file was not analysed: 3073 KiB, more than max-file-size 2048 KiB" \
        in printed, printed
    assert "0 models analysed, 1 skipped" in printed
    assert peak_kib < 200 << 10, peak_kib  # the text a few times over, no parse tree, no framework


def test_max_file_size_is_a_setting_of_every_door(chain):
    """chain.py is 841 bytes: past a limit of 0 KiB is no setting (at least 1), and the flake8
    door reads the limit as the CLI does."""
    findings = lint_file(str(chain), options_from({"res": 16, "max-file-size": 1}))
    assert {f.code for f in findings} == CHAIN_CODES
    padded = chain.with_name("padded.py")
    padded.write_text(chain.read_text() + "# padding\n" * 30)
    proc = flake8("--rfa-max-file-size=1", "--extend-select=RFA9", padded.name, cwd=chain.parent)
    assert proc.stdout.split(": ", 1)[1].startswith("RFA917 the file was not analysed: 2 KiB"), proc.stdout
    proc = rfa_lint(padded.name, "--max-file-size", "0", cwd=chain.parent)
    assert proc.returncode == 2 and "expected a whole number of KiB, at least 1" in proc.stderr


# --- 3: a wait for a slot ends with the file's time --------------------------------------------------

HOLD_ALL = ("import fcntl, os, sys\n"
            "folder = sys.argv[1]\n"
            "os.makedirs(folder, mode=0o700, exist_ok=True)\n"
            "fds = [os.open(os.path.join(folder, f'slot-{i}'), os.O_RDWR | os.O_CREAT, 0o600)\n"
            "       for i in range(os.cpu_count() or 1)]\n"
            "for fd in fds:\n"
            "    fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print('held', flush=True)\n"
            "sys.stdin.read()\n")


@pytest.fixture
def slots_held(tmp_path, monkeypatch):
    """Every slot of this user's slot folder (in a runtime folder of the test's own) held by a
    process that never lets go, as a run suspended with Ctrl-Z would; released at the end."""
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    slots.slot_folder.cache_clear()
    folder = runtime / f"rfa-lint-slots-{os.getuid()}"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_ALL, str(folder)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        yield holder
    finally:
        holder.kill()
        holder.wait()
        slots.slot_folder.cache_clear()


def test_slots_held_for_ever_cost_a_file_its_time_then_it_runs_without_one(chain, slots_held):
    """With every slot held, a file waits as long as it may run (1 s x (1 model + 1)), then runs
    without a slot, which the run says once; its findings are its own, in both doors.  (Before,
    both doors waited for as long as the holder held.)"""
    note = "child slots in"
    for command in (
        [sys.executable, "-m", "rfa_lint", str(chain), "--res", "16", "--timeout", "1", "--select", "RFA",
         "--no-cache"],
        [sys.executable, "-m", "flake8", "--select=RFA", "--rfa-res=16", "--rfa-timeout=1", "--rfa-no-cache",
         str(chain)],
    ):
        proc = subprocess.run(command, cwd=chain.parent, capture_output=True, text=True, timeout=120)
        found = {line.split()[1] for line in proc.stdout.splitlines()}
        assert found == CHAIN_CODES, proc.stdout + proc.stderr
        assert proc.stderr.count(note) == 1, proc.stderr
        assert "stayed held for 2s" in proc.stderr


# --- 2: the cache sees every file a model reads ------------------------------------------------------

MODEL = '''\
from pathlib import Path

import yaml
from torch import nn

from guard_layers import stem  # a library on PYTHONPATH
from guard_src.heads import head  # an editable install of a src-layout project

DEPTH = yaml.safe_load(Path(__file__).with_name("net.yaml").read_text())["depth"]  # a config file


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = stem()
        self.body = nn.Sequential(*[nn.Conv2d(8, 8, 3) for _ in range(DEPTH)])
        self.head = head()

    def forward(self, x):
        return self.head(self.body(self.stem(x)))
'''


def edited(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text().replace(old, new))


@pytest.fixture
def reading_project(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A model built from a library on PYTHONPATH, a package installed editable from a src layout
    (the ``__editable__`` path file setuptools writes, in a virtual environment of its own that
    sees this one's packages), and a YAML file it reads.  (project folder, environment)."""
    lib, src, project = tmp_path / "lib", tmp_path / "srcproject" / "src" / "guard_src", tmp_path / "project"
    for folder in (lib, src, project):
        folder.mkdir(parents=True)
    (lib / "guard_layers.py").write_text("from torch import nn\n\nKERNEL = 3\n\n\ndef stem():\n"
                                         "    return nn.Conv2d(3, 8, KERNEL, stride=2)\n")
    (src / "__init__.py").write_text("")
    (src / "heads.py").write_text("from torch import nn\n\n\ndef head():\n    return nn.Conv2d(8, 8, 3)\n")
    (project / "model.py").write_text(MODEL)
    (project / "net.yaml").write_text("depth: 2\n")
    (project / "pyproject.toml").write_text("[tool.rfa-lint]\nres = 64\n")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(venv)],
                   check=True, timeout=120)
    [site_packages] = venv.glob("lib/python*/site-packages")
    ours = sysconfig.get_paths()["purelib"]
    (site_packages / "guard_parent.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    (site_packages / "__editable__.guard_src-0.1.pth").write_text(f"{src.parent}\n")
    env = {**os.environ, "PYTHONPATH": str(lib), "VIRTUAL_ENV": str(venv)}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    return project, env


def linted(door: str, project: Path, env: dict[str, str]) -> set[str]:
    """The messages of one lint of the project through a door, in the project's environment."""
    command = (["python", "-m", "flake8", "--select=RFA", "model.py"] if door == "flake8"
               else ["python", "-m", "rfa_lint", "model.py", "--select", "RFA"])
    proc = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=600)
    return {line.split(": ", 1)[1] for line in proc.stdout.splitlines()} or {proc.stderr}


def productive(rf: int) -> str:
    return f"above the productive range of 'Net' (exactly {rf}px)"


@pytest.mark.parametrize("door", DOORS)
def test_an_edit_of_any_file_the_model_read_is_seen_through_the_cache(reading_project, door):
    """RF by hand: stem k x s2 gives k; each body conv (k3) adds 2 x 2; the head (k h) adds (h - 1) x 2.
    Each edit changes the findings in the same run's cache (before, each gave the old ones);
    an unchanged tree and a file touched to the same bytes are hits."""
    project, env = reading_project
    lib, src = project.parent / "lib" / "guard_layers.py", project.parent / "srcproject" / "src" / "guard_src"
    assert productive(3 + 8 + 4) in str(linted(door, project, env))
    edited(lib, "KERNEL = 3", "KERNEL = 5")  # the library on PYTHONPATH
    assert productive(5 + 8 + 4) in str(linted(door, project, env))
    edited(project / "net.yaml", "depth: 2", "depth: 0")  # the YAML config
    assert productive(5 + 0 + 4) in str(linted(door, project, env))
    edited(src / "heads.py", "nn.Conv2d(8, 8, 3)", "nn.Conv2d(8, 8, 9)")  # the editable src-layout package
    assert productive(5 + 0 + 16) in str(linted(door, project, env))
    [entry] = [p for p in Path(os.environ["RFA_LINT_CACHE_DIR"]).glob("*/*.json")
               if str(src / "heads.py") in p.read_text()][-1:]
    files = json.loads(entry.read_text())["files"]
    read = {str(lib), str(project / "net.yaml"), str(src / "heads.py"), str(src / "__init__.py")}
    assert read <= set(files)
    assert not any("site-packages" in path or "/rfa_lint/" in path for path in files)
    os.utime(lib)  # a new time, the same bytes: the hash vouches for it
    before = entry.stat().st_mtime_ns
    assert productive(5 + 0 + 16) in str(linted(door, project, env))
    assert entry.stat().st_mtime_ns == before  # read, not rewritten


# --- 4: the language server analyses documents independently, and a newer text cancels ----------------

HANGS = '''\
from torch import nn


class Forever(nn.Module):
    def __init__(self):
        super().__init__()
        while True:
            pass

    def forward(self, x):
        return x
'''


def changed(uri: str, version: int, text: str) -> lsp.DidChangeTextDocumentParams:
    return lsp.DidChangeTextDocumentParams(
        text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=version),
        content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=text)])


async def next_for(published: asyncio.Queue, uri: str) -> lsp.PublishDiagnosticsParams:
    """The next publication for ``uri``; any other document's before it fails the test."""
    params = await asyncio.wait_for(published.get(), WAIT)
    assert params.uri == uri, f"{params.uri} published before {uri}"
    return params


def test_a_hanging_document_delays_neither_another_nor_its_own_fix(tmp_path):
    """Two documents whose model hangs (with a time limit of an hour), then a good one: its
    diagnostics come (it waits for no slot the hangers hold past SLOT_SECONDS); then the first
    hanging one is fixed: the fix's diagnostics come, its hanging child killed.  Before, the
    good one waited for the hangers' hour, and the fix behind the hang it replaced.  A 3 MiB
    document then gets its RFA917 (before: nothing was published in 120 s)."""
    (tmp_path / "pyproject.toml").write_text('[tool.rfa-lint]\nres = 16\ntimeout = 3600\nselect = ["RFA"]\n')
    hanging = [tmp_path / "hangs_a.py", tmp_path / "hangs_b.py"]
    for path in hanging:
        path.write_text(HANGS)
    good = tmp_path / "chain.py"
    good.write_bytes(CHAIN.read_bytes())
    asyncio.run(_hang_then_fix(hanging, good, big_model_file(tmp_path / "generated.py", 3)))


async def _hang_then_fix(hanging: list[Path], good: Path, big: Path) -> None:
    async with session(good.parent) as (client, published, _):
        for path in hanging:
            client.text_document_did_open(opened(path.as_uri(), HANGS))
        client.text_document_did_open(opened(good.as_uri(), good.read_text()))
        first = await next_for(published, good.as_uri())
        assert {d.code for d in first.diagnostics} == CHAIN_CODES

        fixed = hanging[0].as_uri()
        client.text_document_did_change(changed(fixed, 2, good.read_text()))
        after = await next_for(published, fixed)
        assert after.version == 2 and {d.code for d in after.diagnostics} == CHAIN_CODES

        client.text_document_did_open(opened(big.as_uri(), big.read_text()))  # 3 MiB: RFA917, unparsed
        refused = await next_for(published, big.as_uri())
        assert [(d.code, d.range.start.line) for d in refused.diagnostics] == [("RFA917", 0)]
