"""The sandbox's statuses: one enum, a rule code for each failure, the same strings on the wire."""

from __future__ import annotations

import json

from rfa_lint import rules
from rfa_lint.lint import STATUS_CODES
from rfa_lint.sandbox import STATUSES, FileOutcome, _collect, parse_event
from rfa_lint.sandbox.status import Status


def test_every_status_of_a_model_not_analysed_has_a_code():
    # ok is analysed; not-a-model is a wrong guess of the text, never reported
    assert set(STATUS_CODES) == set(Status) - {Status.OK, Status.NOT_A_MODEL}
    assert all(code in rules.RULES for code in STATUS_CODES.values())


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
