"""Findings as reports: flake8's text lines, JSON, SARIF 2.1.0, GitHub workflow commands, GitLab
Code Quality, JUnit XML.

Every format takes the findings and the run's coverage (per file, the models analysed and
skipped); JSON carries the coverage, so CI can see what was checked, and JUnit makes each file a
test case.  Paths, messages and names arrive escaped (:func:`rfa_lint.results.printable`): no format
escapes them again, each only encodes them for its own syntax.

Positions: a finding's ``col`` is 0-based and its ``end_col`` 0-based exclusive (flake8's and
``ast``'s convention); every report counts columns from 1, so the end it shows is the column
after the span, as SARIF's ``endColumn`` and ruff's ``end_location`` are.
"""

from __future__ import annotations

import hashlib
import json
import os
import xml.etree.ElementTree as ET
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence
from urllib.parse import quote

from rfa_lint import __version__, rules
from rfa_lint.results import Finding, ModelRecord, printable

Coverage = Sequence[tuple[str, Sequence[ModelRecord]]]  # (path, its models), in run order


def _repository_url() -> str | None:
    """The repository's address as the installed package declares it (``[project.urls]
    Repository``); None until the project declares one: a report never links a guessed address."""
    try:
        declared = metadata.metadata("rfa-lint").get_all("Project-URL") or []
    except metadata.PackageNotFoundError:
        return None
    urls = dict(entry.split(", ", 1) for entry in declared if ", " in entry)
    return urls.get("Repository")


REPOSITORY_URL = _repository_url()
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SRCROOT = "%SRCROOT%"  # SARIF's conventional name for the folder relative URIs start from
GITLAB_SEVERITY = {"warning": "major", "error": "critical"}


def level(code: str) -> str:
    """Layer findings are warnings; a model that could not be analysed is an error (its rule's)."""
    return rules.get(code).level


def rule_url(code: str) -> str | None:
    """The page that explains ``code`` in the repository (``docs/rules/CODE.md``; ``rfa-lint
    rule CODE`` prints the same text), or None while the project declares no repository."""
    return f"{REPOSITORY_URL}/blob/main/docs/rules/{code}.md" if REPOSITORY_URL else None


def tags(code: str) -> list[str]:
    """Code scanning's filters: what a rule is about."""
    return list(rules.get(code).tags)


# --- text and GitHub: one line per finding ------------------------------------------------------

def text(findings: Sequence[Finding], coverage: Coverage = ()) -> str:
    """``path:line:col: CODE message`` (1-based column), what editors and problem matchers read;
    flake8's line has no room for the end."""
    return "".join(f"{where(f)}: {f.code} {f.message}\n" for f in findings)


def where(f: Finding) -> str:
    """``path:line:col``, and in a notebook ``path:cell N:line:col`` (ruff's form)."""
    cell = "" if f.cell is None else f"cell {f.cell}:"
    return f"{f.path}:{cell}{f.line}:{f.col + 1}"


def github(findings: Sequence[Finding], coverage: Coverage = ()) -> str:
    """GitHub Actions workflow commands: annotations on the pull request's lines.  Columns only
    for a span on one line: the runner drops an annotation with columns across lines."""
    return "".join(
        f"::{level(f.code)} {','.join(_github_position(f))},title={_prop(_titled(f))}::{_data(f.message)}\n"
        for f in findings
    )


def _titled(f: Finding) -> str:
    """The code, and in a notebook its cell: the lines are the cell's."""
    return f.code if f.cell is None else f"{f.code} (cell {f.cell})"


def _github_position(f: Finding) -> list[str]:
    position = [f"file={_prop(f.path)}", f"line={f.line}"]
    one_line = f.end_line in (None, f.line)
    if one_line:
        position.append(f"col={f.col + 1}")
    if f.end_line is not None:
        position.append(f"endLine={f.end_line}")
    if one_line and f.end_col is not None:
        position.append(f"endColumn={f.end_col + 1}")
    return position


def _data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _prop(value: str) -> str:
    return _data(value).replace(":", "%3A").replace(",", "%2C")


# --- JSON ---------------------------------------------------------------------------------------

def as_json(findings: Sequence[Finding], coverage: Coverage = ()) -> str:
    """``{"findings": [...], "files": [{"path", "models": [...]}]}``, as :data:`JSON_SCHEMA`
    describes."""
    files = [{"path": path, "models": [m.to_json() for m in models]} for path, models in coverage]
    return json.dumps({"findings": [_json_finding(f) for f in findings], "files": files}, indent=2) + "\n"


def _json_finding(f: Finding) -> dict[str, Any]:
    return {"path": f.path, "cell": f.cell, "line": f.line, "column": f.col + 1, "end_line": f.end_line,
            "end_column": None if f.end_col is None else f.end_col + 1, "code": f.code,
            "name": rules.get(f.code).name, "level": level(f.code), "url": rule_url(f.code),
            "message": f.message, "details": dict(f.details)}


#: Per-axis numbers: height, width (frames first for video); null for an infinite size.
_AXES = {"type": "array", "items": {"type": ["number", "null"], "minimum": 0}, "minItems": 1}
_LINE = {"type": "integer", "minimum": 1}

JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "rfa-lint --format json",
    "type": "object",
    "required": ["findings", "files"],
    "additionalProperties": False,
    "properties": {
        "findings": {"type": "array", "items": {"$ref": "#/$defs/finding"}},
        "files": {"type": "array", "items": {"$ref": "#/$defs/file"}},
    },
    "$defs": {
        "finding": {
            "type": "object",
            "additionalProperties": False,
            "required": ["path", "cell", "line", "column", "end_line", "end_column", "code", "name", "level",
                         "url",
                         "message", "details"],
            "properties": {
                "path": {"type": "string", "description": "as given on the command line"},
                "cell": {"type": ["integer", "null"], "minimum": 1,
                         "description": "in a notebook, the cell (from 1, as Jupyter counts them) whose "
                                        "lines 'line' and 'end_line' are; null in a Python file"},
                "line": _LINE,
                "column": {**_LINE, "description": "1-based, in characters"},
                "end_line": {"type": ["integer", "null"], "minimum": 1},
                "end_column": {"type": ["integer", "null"], "minimum": 1,
                               "description": "the column after the span (1-based)"},
                "code": {"type": "string", "pattern": "^RFA[0-9]{3}$"},
                "name": {"type": "string", "description": "the rule's name, e.g. unproductive-layer"},
                "level": {"enum": ["warning", "error"],
                          "description": "error: a model or file that could not be analysed (RFA9xx)"},
                "url": {"type": ["string", "null"],
                        "description": "the rule's page; null while the project declares no repository"},
                "message": {"type": "string"},
                "details": {"$ref": "#/$defs/details"},
            },
        },
        "details": {
            "type": "object",
            "additionalProperties": False,
            "description": "what the message says, as data",
            "properties": {
                "model": {"type": "string", "description": "the model class or factory"},
                "layers": {"type": "array", "items": {"type": "string"},
                           "description": "module paths of the layer's instances on this line"},
                "instances": {"type": "integer", "minimum": 1, "description": "how many the line builds"},
                "rf_min": {**_AXES, "description": "the layer's smallest receptive field, per axis"},
                "rf_max": {**_AXES, "description": "its largest receptive field (paths differ)"},
                "input_rf": {**_AXES, "description": "the smallest receptive field at its input"},
                "resolution": {**_AXES, "description": "the resolution linted, as given (one number: all)"},
                "productive_from": {**_AXES, "description": "from here on every instance is productive"},
                "kernel": {**_AXES, "description": "RFA104: the kernel, dilated"},
                "feature_map": {**_AXES, "description": "RFA104: the map the kernel runs on"},
                "fits_from": {**_AXES, "description": "RFA104: from this resolution the map outgrows it"},
                "range": {"type": "array", "prefixItems": [_AXES, _AXES], "minItems": 2, "maxItems": 2,
                          "description": "RFA110: the model's productive range, [lowest, highest]"},
                "reason": {"type": "string", "description": "why the model was not analysed"},
            },
        },
        "file": {
            "type": "object",
            "additionalProperties": False,
            "required": ["path", "models"],
            "properties": {
                "path": {"type": "string"},
                "models": {"type": "array", "items": {"$ref": "#/$defs/model"}},
            },
        },
        "model": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name", "line", "analysed", "code", "reason", "traced", "builds", "built", "cell"],
            "properties": {
                "name": {"type": "string"},
                "line": _LINE,
                "analysed": {"type": "boolean"},
                "code": {"type": ["string", "null"], "description": "the RFA9xx code of a skipped model"},
                "reason": {"type": "string"},
                "traced": {"type": ["array", "null"], "items": {"type": "integer", "minimum": 1},
                           "description": "the spatial size the graph was traced at"},
                "builds": {"type": "array",
                           "items": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "string"}],
                                     "minItems": 2, "maxItems": 2},
                           "description": "[file, class] of the model classes of your code it is made of"},
                "built": {"enum": ["meta", "cpu", None],
                          "description": "how an analysed model was built: weights on the meta device, or "
                                         "for real on the CPU (its constructor read its weights)"},
                "cell": {"type": ["integer", "null"], "minimum": 1,
                         "description": "in a notebook, the cell whose line 'line' is; null in a .py file"},
            },
        },
    },
}


# --- SARIF --------------------------------------------------------------------------------------

def sarif(findings: Sequence[Finding], coverage: Coverage = (), root: str | None = None) -> str:
    """SARIF 2.1.0 for code scanning.  Paths inside ``root`` (the working folder) are URIs
    relative to ``%SRCROOT%``, which the log resolves to ``root``; others are absolute."""
    root = os.path.abspath(root or os.getcwd())
    codes = list(rules.RULES)
    driver = {
        "name": "rfa-lint",
        "version": __version__,
        **({"informationUri": REPOSITORY_URL} if REPOSITORY_URL else {}),
        "rules": [_sarif_rule(rule) for rule in rules.RULES.values()],
    }
    results = [
        {
            "ruleId": f.code,
            "ruleIndex": codes.index(f.code),
            "level": level(f.code),
            "message": {"text": f.message},
            "locations": [{"physicalLocation": {"artifactLocation": _artifact(f.path, root),
                                                "region": _region(f)}}],
            "partialFingerprints": {"rfaLint/v1": fingerprint},
            **({"properties": _properties(f)} if f.details or f.cell else {}),
        }
        for f, fingerprint in zip(findings, fingerprints(findings))
    ]
    run = {"tool": {"driver": driver},
           "originalUriBaseIds": {SRCROOT: {"uri": Path(root).as_uri().rstrip("/") + "/"}},  # a folder: '/'
           "columnKind": "unicodeCodePoints", "results": results}
    return json.dumps({"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}, indent=2) + "\n"


def _sarif_rule(rule: rules.Rule) -> dict[str, Any]:
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": " ".join(rule.section("What it does").split())},  # one paragraph
        **({"helpUri": rule_url(rule.code)} if REPOSITORY_URL else {}),
        "help": {"text": rule.explanation, "markdown": rule.explanation},
        "defaultConfiguration": {"level": level(rule.code)},
        "properties": {"tags": tags(rule.code)},
    }


def _artifact(path: str, root: str) -> dict[str, str]:
    relative = _under(path, root)
    if relative is None:
        return {"uri": Path(os.path.abspath(path)).as_uri()}
    return {"uri": quote(relative), "uriBaseId": SRCROOT}


def _under(path: str, root: str) -> str | None:
    """``path`` relative to ``root`` with '/' separators; None when it lies outside."""
    absolute = Path(os.path.abspath(path))
    return absolute.relative_to(root).as_posix() if absolute.is_relative_to(root) else None


def _properties(f: Finding) -> dict[str, Any]:
    """A result's details, and in a notebook the cell its region's lines are in."""
    return {**f.details, **({"cell": f.cell} if f.cell is not None else {})}


def _region(f: Finding) -> dict[str, int]:
    region = {"startLine": f.line, "startColumn": f.col + 1}
    if f.end_line is not None:
        region["endLine"] = f.end_line
    if f.end_col is not None:
        region["endColumn"] = f.end_col + 1
    return region


# --- fingerprints ----------------------------------------------------------------------------

def fingerprints(findings: Iterable[Finding]) -> list[str]:
    """One stable hash per finding: its file, code and model and layers (or, for a finding about a
    file, its message), never its line, so an alert survives code moving above it; repeats of
    the same identity are told apart by their order."""
    seen: dict[str, int] = {}
    result = []
    for f in findings:
        identity = json.dumps([f.path, f.code, f.details.get("model"), f.details.get("layers")]
                              if "model" in f.details else [f.path, f.code, f.message])
        seen[identity] = seen.get(identity, -1) + 1
        result.append(hashlib.md5(f"{identity}#{seen[identity]}".encode(), usedforsecurity=False).hexdigest())
    return result


# --- GitLab Code Quality ------------------------------------------------------------------------

def gitlab(findings: Sequence[Finding], coverage: Coverage = (), root: str | None = None) -> str:
    """GitLab's Code Quality report: a JSON array of issues with paths relative to the
    repository (``root``, the working folder) and fingerprints that survive moved lines."""
    root = os.path.abspath(root or os.getcwd())
    issues = [
        {
            "description": f"{_titled(f)} {f.message}",
            "check_name": f.code,
            "fingerprint": fingerprint,
            "severity": GITLAB_SEVERITY[level(f.code)],
            "location": {"path": _under(f.path, root) or Path(f.path).as_posix(),
                         "lines": {"begin": f.line, "end": f.end_line or f.line}},
        }
        for f, fingerprint in zip(findings, fingerprints(findings))
    ]
    return json.dumps(issues, indent=2) + "\n"


# --- JUnit XML ----------------------------------------------------------------------------------

def junit(findings: Sequence[Finding], coverage: Coverage = ()) -> str:
    """JUnit XML, as GitLab's and Jenkins's test reports read it: one test suite, one test case per
    file, failed by its findings.  One ``<failure>`` per case lists them all: readers show only
    a case's first failure.  A file whose every model was skipped checked nothing: a skipped
    case that says why, never a pass (a framework missing where rfa-lint runs is a finding,
    RFA912, so that case fails)."""
    by_path: dict[str, list[Finding]] = {printable(path): [] for path, _ in coverage}
    for f in findings:
        by_path.setdefault(f.path, []).append(f)
    unchecked = {printable(path): models for path, models in coverage
                 if models and not any(m.analysed for m in models)}
    failed = sum(bool(found) for found in by_path.values())
    skipped = sum(not found and path in unchecked for path, found in by_path.items())
    counts = {"tests": str(len(by_path)), "failures": str(failed), "errors": "0"}
    suites = ET.Element("testsuites", {"name": "rfa-lint", **counts})
    suite = ET.SubElement(suites, "testsuite", {"name": "rfa-lint", "skipped": str(skipped), **counts})
    for path, found in by_path.items():
        case = ET.SubElement(suite, "testcase", classname="rfa-lint", name=path, file=path)
        if found:
            codes = ", ".join(sorted({f.code for f in found}))
            failure = ET.SubElement(case, "failure", type=codes,
                                    message=f"{len(found)} finding{'s' * (len(found) > 1)}: {codes}")
            failure.text = text(found)
        elif path in unchecked:
            models = unchecked[path]
            reason = ET.SubElement(case, "skipped", message=f"no model analysed: {len(models)} skipped")
            reason.text = "".join(f"{path}:{m.line}: {m.code} {m.reason}\n" for m in models)
    ET.indent(suites)
    # the declaration by hand: ElementTree's names the locale's encoding; the report is written as UTF-8
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


FORMATS: dict[str, Callable[[Sequence[Finding], Coverage], str]] = {
    "text": text, "json": as_json, "sarif": sarif, "github": github, "gitlab": gitlab, "junit": junit,
}
