"""The rule registry: every rule complete and consistent, prefix selection as flake8 does it."""

import re
from pathlib import Path

import pytest

from rfa_lint import rules
from rfa_lint.rules import HEADINGS, RULES

# The fields the linter passes for each code (the contract with lint.py).
FIELDS = {
    "RFA101": {"layer", "res", "input_rf", "own_rf", "productive_from"},
    "RFA102": {"layer", "res", "input_rf", "own_rf", "productive_from"},
    "RFA103": {"layer", "res", "own_rf", "axes"},
    "RFA104": {"layer", "res", "kernel", "feature_map", "min_res"},
    "RFA110": {"model", "res", "min_res", "max_res", "side"},
    "RFA900": {"model"},
    "RFA901": {"model", "detail"},
    "RFA902": {"model", "params"},
    "RFA903": {"model", "detail"},
    "RFA904": {"model", "detail"},
    "RFA905": {"layer", "type"},
    "RFA906": {"model", "seconds"},
    "RFA907": {"model", "limit"},
    "RFA908": {"model", "detail"},
    "RFA909": {"detail"},
    "RFA910": {"detail"},
    "RFA911": {"detail"},
    "RFA912": {"framework"},
    "RFA913": {"model", "params"},
    "RFA914": {"model", "detail"},
    "RFA915": {"res", "given", "model", "axes"},
    "RFA916": {"model", "detail"},
    "RFA999": {"detail"},
}


def test_the_registry_holds_exactly_the_documented_codes_in_order():
    assert list(RULES) == sorted(FIELDS)
    assert all(code == rule.code for code, rule in RULES.items())


def test_names_are_unique_kebab_case():
    names = [rule.name for rule in RULES.values()]
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", name) for name in names)


@pytest.mark.parametrize("code", RULES)
def test_message_takes_exactly_the_fields_the_linter_gives(code):
    rule = RULES[code]
    assert rule.fields == FIELDS[code]
    text = rule.message.format(**{field: f"<{field}>" for field in FIELDS[code]})
    assert "\n" not in text
    assert code not in text
    assert text[0].islower() or text[0] in "'{<", text  # pycodestyle's lowercase start


@pytest.mark.parametrize("code", RULES)
def test_explanation_has_every_heading_in_order_none_empty(code):
    explanation = RULES[code].explanation
    found = re.findall(r"^## (.+)$", explanation, flags=re.MULTILINE)
    assert found == list(HEADINGS)
    for heading in HEADINGS:
        body = explanation.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
        assert body.strip(), f"{code}: empty '{heading}'"


@pytest.mark.parametrize("code", RULES)
def test_summary_is_one_table_safe_line(code):
    summary = RULES[code].summary
    assert summary and "\n" not in summary and "|" not in summary


def test_messages_read_like_the_examples_of_the_issue():
    unproductive = rules.get("RFA101").message.format(
        layer="'layer4.1.conv2'", res="32", input_rf="171", own_rf="203", productive_from="203"
    )
    assert unproductive == (
        "unproductive layer 'layer4.1.conv2' at 32px (input RF 171 >= 32, own RF 203; productive from 203px)"
    )
    outside = rules.get("RFA110").message.format(
        model="ResNet", res="32", min_res="75", max_res="427", side="below the minimum"
    )
    assert outside == "resolution 32px is below the minimum of 'ResNet' (productive range 75-427px)"


@pytest.mark.parametrize(
    "code, hint",
    [
        ("RFA902", "# rfa-lint: build("),
        ("RFA904", "# rfa-lint: input("),
        ("RFA905", "register a receptive-field handler"),
        ("RFA900", "--no-exec"),
    ],
)
def test_diagnostics_say_what_to_do(code, hint):
    assert hint in RULES[code].message


def test_get_unknown_code_lists_the_known_ones():
    with pytest.raises(KeyError, match="RFA998.*RFA101, RFA102"):
        rules.get("RFA998")


def test_explain_prints_code_name_summary_message_and_explanation():
    rule = RULES["RFA902"]
    text = rules.explain("RFA902")
    assert text.startswith(f"RFA902 needs-arguments: {rule.summary}\n")
    assert rule.message in text and rule.explanation in text


def test_markdown_table_has_a_row_per_rule():
    lines = rules.markdown_table().splitlines()
    assert lines[:2] == ["| code | name | reported by default | what it reports |",
                         "| --- | --- | --- | --- |"]
    assert lines[2] == f"| RFA101 | unproductive-layer | yes | {RULES['RFA101'].summary} |"
    rfa902 = lines[2 + list(RULES).index("RFA902")]
    assert rfa902.startswith("| RFA902 | needs-arguments | no: listed as skipped |")
    assert len(lines) == 2 + len(RULES)


LAYER_CODES = {"RFA101", "RFA102", "RFA103", "RFA104"}
DIAGNOSTICS = {code for code in RULES if code.startswith("RFA9")}


@pytest.mark.parametrize(
    "select, ignore, expected",
    [
        (None, (), set(RULES) - set(rules.DEFAULT_IGNORE)),  # "not analysed" codes: off by default
        ([], (), set(RULES) - set(rules.DEFAULT_IGNORE)),
        (["RFA"], (), set(RULES)),  # naming them turns them on
        (None, ["RFA110"], set(RULES) - set(rules.DEFAULT_IGNORE) - {"RFA110"}),
        (["RFA1"], (), LAYER_CODES | {"RFA110"}),
        (["RFA10"], (), LAYER_CODES),
        (["RFA101", "RFA9"], (), {"RFA101"} | DIAGNOSTICS),
        (None, ["RFA9"], LAYER_CODES | {"RFA110"}),
        (["RFA"], ["RFA1"], DIAGNOSTICS),
        (["RFA101"], ["RFA1"], {"RFA101"}),  # the longer prefix decides
        (["RFA1"], ["RFA1"], set()),  # a tie: ignore wins
        (None, ["RFA"], set()),
        ([" rfa102 "], (), {"RFA102"}),  # as typed in a config file
        (["E501", "W"], (), set()),  # other tools' codes select nothing here
        (["RFA998"], (), set()),
    ],
)
def test_select_follows_flake8_prefix_rules(select, ignore, expected):
    assert rules.select(select, ignore) == expected


def test_readme_rule_table_is_generated_from_the_registry():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    table = readme.split("<!-- rules:start -->\n", 1)[1].split("<!-- rules:end -->", 1)[0]
    assert table.strip() == rules.markdown_table().strip()
