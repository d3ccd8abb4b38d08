"""pre-commit, run for real: the shipped hook through pre-commit's own ``try-repo`` (it builds
the hook's environment from this checkout, installing rfa-lint's dependencies from the package
index) fails, naming the ``additional_dependencies`` line, where the framework is missing; the
README's ``repo: local`` / ``language: system`` hook blocks a file with findings and passes a
clean one."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAIN = ROOT / "fixtures" / "lint" / "chain.py"
pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("git") is None, reason="pre-commit needs git")]
pre_commit = pytest.importorskip("pre_commit")


def project(tmp_path: Path, files: dict[str, str]) -> tuple[Path, dict[str, str]]:
    """A git repository holding ``files`` (added), and the environment pre-commit runs in: its
    store in tmp, this environment's ``rfa-lint`` first on the PATH."""
    folder = tmp_path / "project"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"),
           "PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]),
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    subprocess.run(["git", "init", "-q"], cwd=folder, check=True, env=env, timeout=60)
    subprocess.run(["git", "add", *files], cwd=folder, check=True, env=env, timeout=60)
    return folder, env


def pre_commit_run(folder: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pre_commit", *args], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=900)


def test_try_repo_of_the_shipped_hook_fails_without_the_framework(tmp_path):
    # pre-commit's environment holds rfa-lint and its dependencies, not torch: nothing is checked,
    # so the hook fails (rfa-lint exits 2) and says which line to add
    folder, env = project(tmp_path, {"chain.py": CHAIN.read_text()})
    proc = pre_commit_run(folder, env, "try-repo", str(ROOT), "rfa-lint", "--files", "chain.py")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert re.search(r"^rfa-lint\.+Failed$", proc.stdout, re.M), proc.stdout
    assert "- exit code: 2" in proc.stdout
    assert "chain.py:1:1: RFA912 torch is not installed where rfa-lint runs" in proc.stdout
    assert ("add `additional_dependencies: [torch]` to the rfa-lint hook in .pre-commit-config.yaml"
            in proc.stdout)


def test_the_readmes_local_hook_blocks_findings_and_passes_a_clean_file(tmp_path):
    config = re.search(r"```yaml\n(repos:\n  - repo: local\n.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert config, "the README's pre-commit section shows a repo: local hook"
    folder, env = project(tmp_path, {".pre-commit-config.yaml": config[1], "chain.py": CHAIN.read_text()})
    # chain.py at the README's 32px: traced at 32px, conv5's unpadded 3x3 window spans its 3x3
    # input (a head), so the range ends at conv4's 23px, below 32 (RFA110)
    blocked = pre_commit_run(folder, env, "run", "rfa-lint", "--files", "chain.py")
    found = set(re.findall(r"^chain\.py:(\d+):\d+: (RFA\d+)", blocked.stdout, re.M))
    assert blocked.returncode == 1 and re.search(r"^rfa-lint\.+Failed$", blocked.stdout, re.M), blocked.stdout
    assert found == {("7", "RFA110")}, blocked.stdout
    (folder / "clean.py").write_text("import torch\n\n\ndef double(x):\n    return 2 * x\n")
    subprocess.run(["git", "add", "clean.py"], cwd=folder, check=True, env=env, timeout=60)
    passed = pre_commit_run(folder, env, "run", "rfa-lint", "--files", "clean.py")
    assert passed.returncode == 0 and re.search(r"^rfa-lint\.+Passed$", passed.stdout, re.M), passed.stdout
