"""Reads what a fixture model file expects: its header settings and per-line codes.

Header: ``# rfa-lint-fixture: res=16 timeout=8`` (res defaults to 224).  Codes: a comment
``# expect: RFA101, RFA104`` on the line that must raise them.  Files need not be UTF-8.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
HEADER = re.compile(r"#\s*rfa-lint-fixture:(?P<settings>[^\n]*)")
SETTING = re.compile(r"(?P<key>res|timeout)=(?P<value>\S+)")
EXPECT = re.compile(r"expect:\s*(?P<codes>RFA\d+(?:\s*,\s*RFA\d+)*)")


@dataclass(frozen=True)
class Expectation:
    res: str
    timeout: float | None
    findings: frozenset[tuple[int, str]]


def expectation(path: Path) -> Expectation:
    text = path.read_bytes().decode("utf-8", "replace")
    header = HEADER.search(text)
    settings = dict(SETTING.findall(header.group("settings"))) if header else {}
    findings = {
        (number, code.strip())
        for number, line in enumerate(text.splitlines(), start=1)
        if (match := EXPECT.search(line))
        for code in match.group("codes").split(",")
    }
    timeout = settings.get("timeout")
    return Expectation(settings.get("res", "224"), float(timeout) if timeout else None, frozenset(findings))


def fixture_files(folder: str) -> list[Path]:
    return sorted((FIXTURES / folder).glob("*.py"))
