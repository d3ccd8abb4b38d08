"""``# noqa`` comments: what silences a finding, and adding them as users write them."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from rfa_lint.noqa import add_noqa, without_noqa


@dataclass(frozen=True)
class Found:
    line: int
    code: str


SOURCE = '''\
import torch.nn as nn
net = nn.Sequential(
    nn.Conv2d(3, 8, 3),  # the stem
    nn.Conv2d(8, 8, 3),
    nn.Conv2d(8, 8,
              3))  # noqa: E501
x = nn.Conv2d(1, 1, 1)  # type: ignore  # noqa
s = """a
b"""; y = nn.Conv2d(1, 1, 1)
z = 1 + \\
    nn.Conv2d(1, 1, 1)
w = nn.Conv2d(1, 1, 1)  # noqa: RFA1
'''


def added(codes_by_line: dict[int, list[str]], source: str = SOURCE) -> str:
    return add_noqa(source.encode(), codes_by_line).source.decode()


def test_a_bare_line_gets_a_noqa_two_spaces_after_the_code() -> None:
    line = added({4: ["RFA102", "RFA101"]}).splitlines()[3]
    assert line == "    nn.Conv2d(8, 8, 3),  # noqa: RFA101, RFA102"


def test_an_existing_comment_is_kept_and_the_noqa_follows_it() -> None:
    assert added({3: ["RFA101"]}).splitlines()[2] == "    nn.Conv2d(3, 8, 3),  # the stem  # noqa: RFA101"


def test_codes_merge_into_an_existing_noqa_list() -> None:
    assert added({6: ["RFA101"]}).splitlines()[5] == "              3))  # noqa: E501, RFA101"


@pytest.mark.parametrize("line", [7, 12], ids=["bare noqa", "prefix already listed"])
def test_a_line_already_silenced_is_left_as_it_is(line: int) -> None:
    assert added({line: ["RFA101"]}) == SOURCE


def test_a_line_inside_a_multi_line_string_gets_its_comment_where_the_string_ends() -> None:
    assert added({8: ["RFA104"]}).splitlines()[8] == 'b"""; y = nn.Conv2d(1, 1, 1)  # noqa: RFA104'


def test_a_backslash_continued_line_gets_its_comment_on_the_last_line() -> None:
    lines = added({10: ["RFA101"]}).splitlines()
    assert lines[9:11] == ["z = 1 + \\", "    nn.Conv2d(1, 1, 1)  # noqa: RFA101"]


def test_everything_else_is_left_byte_for_byte() -> None:
    source = "# -*- coding: latin-1 -*-\r\nname = 'caf\xe9'\r\nconv = f(1)   \r\n"
    result = add_noqa(source.encode("latin-1"), {3: ["RFA101"]})
    expected = "# -*- coding: latin-1 -*-\r\nname = 'caf\xe9'\r\nconv = f(1)  # noqa: RFA101\r\n"
    assert result.source == expected.encode("latin-1")


def test_a_line_past_the_end_of_the_file_is_reported_not_invented() -> None:
    result = add_noqa(SOURCE.encode(), {4: ["RFA101"], 99: ["RFA101"]})
    assert (result.placed, result.unplaceable) == ({4}, {99})


def test_what_add_noqa_writes_is_what_silences_the_findings() -> None:
    findings = [Found(line, "RFA101") for line in range(2, 12)]
    edited = added({f.line: [f.code] for f in findings})
    assert without_noqa(findings, SOURCE) != []
    assert without_noqa(findings, edited) == []
