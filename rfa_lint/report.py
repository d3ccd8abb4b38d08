"""Findings as text: flake8's line format, JSON, SARIF 2.1.0, GitHub workflow commands.

Every format takes the findings and the run's coverage (per file, the models analysed and
skipped); JSON carries the coverage, so CI can see what was checked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Sequence

from rfa_lint import __version__, rules
from rfa_lint.lint import Finding, ModelRecord

Coverage = Sequence[tuple[str, Sequence[ModelRecord]]]  # (path, its models), in run order

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://pypi.org/project/rfa-lint/"


def level(code: str) -> str:
    """Layer findings are warnings; a model that could not be analysed (RFA9xx) is an error."""
    return "error" if code.startswith("RFA9") else "warning"


def text(findings: Sequence[Finding], coverage: Coverage = ()) -> str:
    """``path:line:col: CODE message`` (1-based column), what editors and problem matchers read."""
    return "".join(f"{f.path}:{f.line}:{f.col + 1}: {f.code} {f.message}\n" for f in findings)


def as_json(findings: Sequence[Finding], coverage: Coverage = ()) -> str:
    """``{"findings": [...], "files": [{"path", "models": [...]}]}``: see the README's schema."""
    rows = [
        {"path": f.path, "line": f.line, "column": f.col + 1, "code": f.code,
         "level": level(f.code), "message": f.message}
        for f in findings
    ]
    files = [{"path": path, "models": [m.to_json() for m in models]} for path, models in coverage]
    return json.dumps({"findings": rows, "files": files}, indent=2) + "\n"


def sarif(findings: Sequence[Finding], coverage: Coverage = ()) -> str:
    codes = list(rules.RULES)
    driver = {
        "name": "rfa-lint",
        "version": __version__,
        "informationUri": INFORMATION_URI,
        "rules": [
            {
                "id": rule.code,
                "name": rule.name,
                "shortDescription": {"text": rule.summary},
                "fullDescription": {"text": rule.summary},
                "help": {"text": rule.explanation, "markdown": rule.explanation},
                "defaultConfiguration": {"level": level(rule.code)},
            }
            for rule in rules.RULES.values()
        ],
    }
    results = [
        {
            "ruleId": f.code,
            "ruleIndex": codes.index(f.code),
            "level": level(f.code),
            "message": {"text": f.message},
            "locations": [{
                "physicalLocation": {
                    "artifactLocation": {"uri": Path(f.path).as_posix()},
                    "region": {"startLine": f.line, "startColumn": f.col + 1},
                }
            }],
        }
        for f in findings
    ]
    log = {"$schema": SARIF_SCHEMA, "version": "2.1.0",
           "runs": [{"tool": {"driver": driver}, "results": results}]}
    return json.dumps(log, indent=2) + "\n"


def github(findings: Sequence[Finding], coverage: Coverage = ()) -> str:
    """GitHub Actions workflow commands: annotations on the pull request's lines."""
    return "".join(
        f"::{level(f.code)} file={_prop(f.path)},line={f.line},col={f.col + 1},"
        f"title={f.code}::{_data(f.message)}\n"
        for f in findings
    )


def _data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _prop(value: str) -> str:
    return _data(value).replace(":", "%3A").replace(",", "%2C")


FORMATS: dict[str, Callable[[Sequence[Finding], Coverage], str]] = {
    "text": text, "json": as_json, "sarif": sarif, "github": github,
}
