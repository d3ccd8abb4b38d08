"""The rule registry: every rule complete and consistent, its messages typed and readable, its
pages current, prefix selection as flake8 does it.  (Its examples run in test_rule_fixtures.py.)"""

import dataclasses
import re
from pathlib import Path

import pytest

from rfa_lint import rules
from rfa_lint.rules import HEADINGS, REQUIRED_HEADINGS, RULES

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = {"str": "sample", "PerAxis": (32,), "int": 2}  # a value of each type the fields declare


def sample(kind: type[rules.Fields], **given):
    return kind(**{f.name: given.get(f.name, SAMPLE[f.type]) for f in dataclasses.fields(kind)})


def messages(rule: rules.Rule) -> list[str]:
    """The rule's message with sample values; RFA110's on both sides of the range."""
    if rule.fields is rules.OutsideRange:
        return [rule.render(rules.OutsideRange("Net", (16,), (23,), (55,))),
                rule.render(rules.OutsideRange("Net", (64,), (23,), (55,)))]
    return [rule.render(sample(rule.fields))]


def test_the_registry_holds_the_codes_in_order():
    assert list(RULES) == sorted(RULES)
    assert all(code == rule.code and re.fullmatch(r"RFA\d{3}", code) for code, rule in RULES.items())


def test_names_are_unique_kebab_case():
    names = [rule.name for rule in RULES.values()]
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", name) for name in names)


@pytest.mark.parametrize("code", RULES)
def test_a_message_reads_only_what_its_values_have(code):
    rule = RULES[code]
    assert dataclasses.is_dataclass(rule.fields) and issubclass(rule.fields, rules.Fields)
    assert all(hasattr(sample(rule.fields), name) for name in rule.placeholders)


@pytest.mark.parametrize("code", RULES)
def test_a_message_is_one_lowercase_line_without_its_code(code):
    for text in messages(RULES[code]):
        assert "\n" not in text and code not in text and "{" not in text
        assert text[0].islower() or text[0] == "'", text  # pycodestyle's lowercase start


@pytest.mark.parametrize("code", RULES)
def test_rf_is_spelled_out_at_its_first_use(code):
    for text in messages(RULES[code]):
        uses = [m.start() for m in re.finditer(r"\bRF\b", text)]
        if uses:
            assert text.count("receptive field (RF)") == 1, text
            assert text.index("receptive field (RF)") + len("receptive field (") == uses[0], text


def test_a_missing_or_misspelt_value_is_an_error_not_a_blank():
    with pytest.raises(TypeError):
        rules.Saturation("'conv5'", (16,), (23,), (31,))  # productive_from missing
    with pytest.raises(TypeError):
        rules.Detail(detial="x")
    with pytest.raises(TypeError, match="RFA101 takes Saturation"):
        RULES["RFA101"].render(rules.Detail("x"))
    misspelt = dataclasses.replace(RULES["RFA909"], message="syntax error: {detial}")
    with pytest.raises(AttributeError):
        misspelt.render(rules.Detail("x"))


def test_messages_read_like_the_examples_of_the_issue():
    # ResNet-18's minimum RFs by hand: conv1 7 and the maxpool 7 + 2*2 = 11 (jump 4); every
    # block's shortcut keeps a path at 11, so layer4.1.conv1 (jump 32) sees 11 + 2*32 = 75 and
    # layer4.1.conv2 75 + 2*32 = 139; its map at 32px is 32/32 = 1 and outgrows the 3x3 kernel
    # from 3*32 + 1 = 97px; the plain path's RF ends at 435 (... 371 + 2*32).
    unproductive = RULES["RFA101"].render(rules.Saturation(
        rules.instances("'layer4.1.conv2'", {"resnet18": 3, "resnet34": 8}), (32,), (75,), (139,), (139,)))
    assert unproductive == (
        "unproductive layer 'layer4.1.conv2' (built here; so are 2 more in resnet18 and 8 in resnet34) "
        "at 32px: its input's receptive field (RF) of 75px already covers the image, its own RF is 139px "
        "(this layer needs at least 139px)")
    below = RULES["RFA110"].render(rules.OutsideRange("ResNet", (32,), (139,), (435,)))
    assert below == ("resolution 32px is below the productive range of 'ResNet' (139-435px): the model "
                     "needs at least 139px for every layer to be productive")
    cover = RULES["RFA104"].render(rules.KernelCover("'layer4.1.conv1'", (32,), (3,), (1,), (97,)))
    assert cover.endswith("(kernel 3, map 1): it acts as a dense layer "
                          "(the map outgrows the kernel from 97px)")


def test_a_layer_is_named_with_the_instances_its_line_built():
    """Per model: 3 + 3 across two models reads as such, never as "5 more in A and 1 other model"."""
    assert rules.instances("'conv5'", {"Chain": 1}) == "'conv5'"
    assert rules.instances("'b.conv'", {"Net": 2}) == "'b.conv' (built here; so is 1 more in Net)"
    assert rules.instances("'b.conv'", {"A": 3, "B": 3}) == \
        "'b.conv' (built here; so are 2 more in A and 3 in B)"
    assert rules.instances("'b.conv'", {"A": 1, "B": 2}) == "'b.conv' (built here; so are 2 in B)"
    assert rules.instances("'b.conv'", {"A": 2, "B": 1, "C": 1, "D": 4, "E": 1}) == \
        "'b.conv' (built here; so are 1 more in A, 1 in B, 1 in C and 5 in 2 other models)"


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


@pytest.mark.parametrize("code", RULES)
def test_documentation_has_ruffs_headings_in_order_none_empty(code):
    explanation = RULES[code].explanation
    found = re.findall(r"^## (.+)$", explanation, flags=re.MULTILINE)
    assert found == [h for h in HEADINGS if h in found] and set(REQUIRED_HEADINGS) <= set(found)
    assert all(RULES[code].section(heading).strip() for heading in found)


@pytest.mark.parametrize("code", RULES)
def test_summary_is_one_table_safe_line(code):
    summary = RULES[code].summary
    assert summary and "\n" not in summary and "|" not in summary


def test_get_unknown_code_lists_the_known_ones():
    with pytest.raises(KeyError, match="RFA998.*RFA101, RFA102"):
        rules.get("RFA998")


def test_explain_prints_the_rules_page():
    rule = RULES["RFA902"]
    text = rules.explain("RFA902")
    assert text.startswith(f"# RFA902 needs-arguments\n\n{rule.summary.capitalize()}.\n")
    assert rule.message in text and rule.explanation in text and "`rfa-lint rule RFA902`" in text


def test_the_docs_pages_are_generated_from_the_registry():
    """After a rule's text changes:
    python -c 'from rfa_lint import rules; rules.write_pages("docs/rules")'."""
    folder = ROOT / "docs" / "rules"
    assert sorted(p.name for p in folder.glob("*.md")) == [f"{code}.md" for code in RULES]
    for code in RULES:
        assert (folder / f"{code}.md").read_text(encoding="utf-8") == rules.explain(code), code


def test_markdown_table_has_a_row_per_rule():
    lines = rules.markdown_table().splitlines()
    assert lines[:2] == ["| code | name | reported by default | what it reports |",
                         "| --- | --- | --- | --- |"]
    assert lines[2] == f"| RFA101 | unproductive-layer | yes | {RULES['RFA101'].summary} |"
    rfa902 = lines[2 + list(RULES).index("RFA902")]
    assert rfa902.startswith("| RFA902 | needs-arguments | no: listed as skipped |")
    assert len(lines) == 2 + len(RULES)


def test_the_checks_are_the_layer_rules_and_rfa110():
    assert [r.code for r in rules.LAYER_RULES] == ["RFA101", "RFA102", "RFA103", "RFA104"]
    assert [r.code for r in rules.MODEL_RULES] == ["RFA110"]


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
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("<!-- rules:start -->\n", 1)[1].split("<!-- rules:end -->", 1)[0]
    assert table.strip() == rules.markdown_table().strip()


# --- what the pipeline and the reports read from a rule (everything about a rule is on it) ---------

def test_the_not_analysed_codes_are_the_rfa9_codes_errors_tagged_so():
    not_analysed = {code for code, rule in RULES.items() if rule.check is None}
    assert not_analysed == {code for code in RULES if code.startswith("RFA9")}
    for code, rule in RULES.items():
        expected = ("error", ("not-analysed",)) if code in not_analysed else \
            ("warning", ("receptive-field", "efficiency"))
        assert (rule.level, rule.tags) == expected, code


def test_every_sandbox_status_of_a_failure_has_one_rule_whose_values_it_makes():
    from rfa_lint.sandbox.status import Status

    assert set(rules.BY_STATUS) == {s.value for s in Status} - {Status.OK, Status.NOT_A_MODEL}
    failure = rules.Failure("Net", "depth", 2048, ("torch", "keras"))
    for status, rule in rules.BY_STATUS.items():
        assert rule.status == status and rule.check is None
        message = rule.render(rule.failure_values(failure))  # a shape without Fields.of raises here
        assert message and "{" not in message, status
    assert rules.BY_STATUS["memory-limit"].render(rules.BY_STATUS["memory-limit"].failure_values(failure)) \
        == rules.get("RFA907").render(rules.MemoryLimit("Net", "2048 MiB"))


def test_a_rule_that_does_not_say_whether_it_may_be_cached_fails_at_once():
    rule = rules.get("RFA906")
    with pytest.raises(TypeError, match="RFA906: a rule must say whether its findings may be cached"):
        dataclasses.replace(rule, cacheable=None)
    with pytest.raises(TypeError, match="missing 1 required keyword-only argument: 'cacheable'"):
        rules._not_analysed("RFA918", "new-failure", "a new failure", "model '{model}' ({detail})",
                            rules.ModelDetail, what="w", why="w", example="e", use_instead="u")
    with pytest.raises(TypeError, match="a rule with a check stands for no sandbox status and marks no"):
        dataclasses.replace(rules.get("RFA101"), status="timeout")


def test_a_shape_of_message_without_failure_values_fails_loudly():
    failure = rules.Failure("Net", "depth", 2048)
    with pytest.raises(TypeError, match="ResolutionAxes is not the message of a model that was not analysed"):
        rules.get("RFA915").failure_values(failure)


def test_what_a_machine_decides_is_never_cached_and_blocks_are_the_failures_of_a_block_alone():
    never_cached = {"RFA906", "RFA907", "RFA908", "RFA917", "RFA999"}
    assert {c for c, r in RULES.items() if not r.cacheable} == never_cached
    assert {c for c, r in RULES.items() if r.marks_block} == {"RFA902", "RFA903", "RFA904", "RFA913"}
