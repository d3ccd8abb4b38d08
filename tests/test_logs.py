"""A trail to follow: --verbose and RFA_LINT_LOG through both front doors, and an internal error's
traceback file, each through real runs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "lint"
BUG = ("import sys, rfa_lint.lint\n"
       "def read_source(text):\n    raise RuntimeError('a bug')\n"
       "rfa_lint.lint.read_source = read_source  # a bug of rfa-lint's own, on every file with a model\n")


@pytest.fixture
def chain(tmp_path) -> Path:
    shutil.copy(FIXTURES / "chain.py", tmp_path / "chain.py")
    return tmp_path


def run(cwd: Path, *args: str, env: dict[str, str] | None = None,
        code: str = "") -> subprocess.CompletedProcess[str]:
    """``rfa-lint ARGS`` (``flake8 ARGS`` when the first is "flake8"), after ``code``, in a process."""
    main = "from flake8.main.cli import main" if args[:1] == ("flake8",) else "from rfa_lint.cli import main"
    argv = list(args[1:] if args[:1] == ("flake8",) else args)
    script = f"{code}\n{main}\nsys.argv[1:] = {argv!r}\nsys.exit(main())\n"
    return subprocess.run([sys.executable, "-c", "import sys\n" + script], cwd=cwd, capture_output=True,
                          text=True, timeout=600, env={**os.environ, **(env or {})})


def test_silent_unless_asked_and_verbose_shows_the_cache_at_work(chain):
    first = run(chain, "chain.py", "--res", "16", "--no-exec", "--select", "RFA", "-q", "-v")
    quiet = run(chain, "chain.py", "--res", "16", "--no-exec", "--select", "RFA", "-q")
    assert quiet.returncode == 1 and quiet.stderr == ""
    second = run(chain, "chain.py", "--res", "16", "--no-exec", "--select", "RFA", "-q", "--verbose")
    assert "rfa-lint: DEBUG: rfa_lint.lint: chain.py: not in the cache" in first.stderr, first.stderr
    assert "rfa-lint: DEBUG: rfa_lint.lint: chain.py: from the cache" in second.stderr, second.stderr
    assert first.stdout == second.stdout == quiet.stdout  # the report is the same


def test_rfa_lint_log_names_a_level_or_a_file_for_either_front_door(chain):
    log = chain / "rfa-lint.log"
    flake8 = run(chain, "flake8", "--select=RFA", "--rfa-res=16", "--rfa-no-exec", "chain.py",
                 env={"RFA_LINT_LOG": str(log)})
    assert flake8.returncode == 1 and "RFA900" in flake8.stdout and flake8.stderr == ""
    assert re.search(r"rfa-lint: DEBUG: rfa_lint.lint: chain.py: not in the cache", log.read_text())
    info = run(chain, "chain.py", "--res", "16", "--no-exec", "-q", env={"RFA_LINT_LOG": "INFO"})
    assert info.stderr == ""  # the cache's lines are debug
    debug = run(chain, "chain.py", "--res", "16", "--no-exec", "-q", env={"RFA_LINT_LOG": "debug"})
    assert "chain.py: from the cache" in debug.stderr


@pytest.mark.parametrize("door", ["cli", "flake8"])
def test_a_bad_rfa_lint_log_is_a_usage_error(chain, door):
    args = ("flake8", "--rfa-no-exec", "chain.py") if door == "flake8" else ("chain.py", "--no-exec")
    proc = run(chain, *args, env={"RFA_LINT_LOG": "loud"})
    assert proc.returncode == 2
    assert "RFA_LINT_LOG: expected one of debug, info, warning, error, or a file in an existing " \
           "folder, with its folder (./rfa-lint.log), got 'loud'" in proc.stderr, proc.stderr


@pytest.mark.parametrize("door", ["cli", "flake8"])
def test_an_internal_error_leaves_its_traceback_in_a_file_its_message_names(chain, door):
    args = ("flake8", "--select=RFA", "--rfa-no-exec", "chain.py") if door == "flake8" else \
        ("chain.py", "--no-exec", "-q")
    proc = run(chain, *args, code=BUG)
    found = re.search(r"RFA999 rfa-lint failed on this file \(RuntimeError: a bug; traceback in (\S+)\); "
                      r"please report it with the file attached", proc.stdout)
    assert found, proc.stdout + proc.stderr
    traceback = Path(found.group(1))
    assert traceback.parent == Path(os.environ["XDG_CACHE_HOME"]) / "rfa-lint" / "errors"
    text = traceback.read_text()
    assert text.startswith("rfa-lint internal error on chain.py\n")
    assert "in read_source" in text and text.rstrip().endswith("RuntimeError: a bug")


def test_a_worker_that_cannot_serve_is_logged_and_the_run_goes_on(chain):
    (chain / "not-a-folder").write_text("")
    env = {"RFA_LINT_WORKER_DIR": str(chain / "not-a-folder")}
    proc = run(chain, "chain.py", "--res", "16", "--no-cache", "-q", "-v", env=env)
    assert proc.returncode == 1 and "RFA101" in proc.stdout
    assert re.search(r"rfa-lint: INFO: rfa_lint.sandbox.warm: server \('worker', 'torch', \('torch',\)\) "
                     r"could not start \(no worker folder: .*\): not tried again in this process\n",
                     proc.stderr)
    assert f"rfa-lint: INFO: rfa_lint.sandbox: {chain / 'chain.py'}: the worker could not run it " \
           "(no worker could serve): running it on this process's own server" in proc.stderr, proc.stderr
