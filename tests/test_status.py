"""The sandbox's statuses: one enum, a rule code for each failure, the same strings on the wire."""

from __future__ import annotations

import json

from rfa_lint import lint, rules
from rfa_lint.lint import analyse_source
from rfa_lint.settings import options_from
from rfa_lint.sandbox import STATUSES, FileOutcome, ModelOutcome, _collect, parse_event
from rfa_lint.sandbox.status import Status


def test_every_status_of_a_model_not_analysed_has_a_code():
    # ok is analysed; not-a-model is a wrong guess of the text, never reported
    assert set(rules.BY_STATUS) == set(Status) - {Status.OK, Status.NOT_A_MODEL}


def test_a_child_may_not_claim_a_timeout_or_a_crash():
    # the sandbox decides those from how the child ended, and one never claims its own death
    claimed = set().union(*STATUSES.values())
    assert claimed <= set(Status)
    assert not claimed & {Status.TIMEOUT, Status.CRASHED, Status.FRAMEWORK_MISSING}
    line = b'{"event": "model", "model": "Net", "status": "timeout", "detail": "forged"}'
    assert parse_event(line, ["Net"]) is None


def test_statuses_cross_the_pipe_as_the_same_strings():
    sent = json.dumps({"event": "model", "model": "Net", "status": Status.NEEDS_ARGUMENTS, "detail": "depth"})
    assert sent == '{"event": "model", "model": "Net", "status": "needs-arguments", "detail": "depth"}'
    outcome = FileOutcome()
    _collect([parse_event(sent.encode(), ["Net"])], outcome)
    assert outcome.models["Net"].status is Status.NEEDS_ARGUMENTS


def test_a_timeout_says_which_limit_ran_out(monkeypatch, tmp_path):
    path, text = tmp_path / "net.py", "from torch import nn\n\n\nclass Net(nn.Module):\n    pass\n"
    path.write_text(text)
    spent = ModelOutcome(Status.TIMEOUT, detail="the file's budget of 4s ran out")
    monkeypatch.setattr(lint, "analyse_models", lambda *args: FileOutcome({"Net": spent}, clean=False))
    [finding] = analyse_source(str(path), text, options_from({"res": 32, "timeout": 2})).findings
    assert (finding.line, finding.code) == (4, "RFA906")
    assert finding.message == ("analysing 'Net' timed out (the file's budget of 4s ran out); raise the time "
                               "limit or make building lighter")
