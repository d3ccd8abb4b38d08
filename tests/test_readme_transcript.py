"""The README's newcomer transcript is what a newcomer sees: each command runs again here.

The block between ``<!-- transcript:start -->`` and ``<!-- transcript:end -->`` is a console
session.  ``$ cat FILE`` writes its output as FILE (the model file of the session); every other
command runs in bash in a fresh folder, stderr with stdout, and must print what the README shows.
Timings (``in 2.7s``) are the only thing allowed to differ.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
TIMING = re.compile(r" in \d+(\.\d+)?s$", re.MULTILINE)


def session() -> list[tuple[str, str]]:
    """(command, expected output) pairs of the README's transcript."""
    text = README.read_text(encoding="utf-8")
    block = text.split("<!-- transcript:start -->", 1)[1].split("<!-- transcript:end -->", 1)[0]
    body = block.split("```console\n", 1)[1].rsplit("```", 1)[0]
    steps: list[tuple[str, list[str]]] = []
    for line in body.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line)
    return [(command, "\n".join(output)) for command, output in steps]


def test_the_transcript_has_a_model_findings_a_rule_a_noqa_and_a_clean_rerun() -> None:
    commands = [command for command, _ in session()]
    assert commands[0].startswith("cat ")
    assert any(c.startswith("rfa-lint rule ") for c in commands)
    assert any("--add-noqa" in c for c in commands)
    assert commands[-1] == commands[1]  # the first lint, run again after the noqa


def test_every_command_prints_what_the_readme_shows(tmp_path: Path) -> None:
    for command, expected in session():
        if command.startswith("cat "):
            (tmp_path / command.split()[1]).write_text(expected + "\n", encoding="utf-8")
        run = subprocess.run(["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True,
                             timeout=300, stdin=subprocess.DEVNULL)
        shown = TIMING.sub(" in Ns", (run.stdout + run.stderr).rstrip("\n"))
        assert shown == TIMING.sub(" in Ns", expected), command
