"""``rfa-lint server``: a real Language Server session over stdio, driven by pygls's client."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import lsp_session
import pytest
from lsprotocol import types as lsp
from lsp_session import WAIT, opened, session
from procs import children, gone, parent, zombie_children

from rfa_lint.sandbox import worker

CHAIN = Path(__file__).resolve().parents[1] / "fixtures" / "lint" / "chain.py"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text("[tool.rfa-lint]\nres = 16\n", encoding="utf-8")
    model = tmp_path / "chain.py"
    shutil.copy(CHAIN, model)
    return model


def line_of(text: str, needle: str) -> int:
    """0-based, as LSP counts lines."""
    return next(i for i, line in enumerate(text.splitlines()) if needle in line)


def test_a_scripted_editor_session(project: Path) -> None:
    asyncio.run(_session(project))


async def _session(model: Path) -> None:
    text, uri = model.read_text(encoding="utf-8"), model.as_uri()
    document = lsp.TextDocumentIdentifier(uri=uri)
    async with session(model.parent) as (client, published, result):
        assert result.server_info.name == "rfa-lint"
        assert result.capabilities.hover_provider and result.capabilities.code_action_provider

        # didOpen -> diagnostics on the constructor calls of conv4 (critical) and conv5 (unproductive),
        # and on the class: 16 px is below the range it uses fully (its largest minimum RF, 31)
        client.text_document_did_open(opened(uri, text))
        first = await asyncio.wait_for(published.get(), WAIT)
        by_code = {d.code: d for d in first.diagnostics}
        assert set(by_code) == {"RFA101", "RFA102", "RFA110"}
        conv5 = line_of(text, "self.conv5 =")
        column = text.splitlines()[conv5].index("nn.Conv2d")
        assert by_code["RFA101"].range == lsp.Range(
            start=lsp.Position(line=conv5, character=column),
            end=lsp.Position(line=conv5, character=column + len("nn.Conv2d(8, 8, 3)")))
        assert by_code["RFA101"].source == "rfa-lint"

        # hover on conv5: RF 31 (3, 7, 15, 23, 31 through strides 2, 2, 1, 1), unproductive at 16
        hover = await client.text_document_hover_async(lsp.HoverParams(
            text_document=document, position=lsp.Position(line=conv5, character=column + 2)))
        assert "`conv5`" in hover.contents.value
        assert "min 31, max 31" in hover.contents.value
        assert "at 16 px: unproductive" in hover.contents.value
        nothing = await client.text_document_hover_async(lsp.HoverParams(
            text_document=document, position=lsp.Position(line=0, character=0)))
        assert nothing is None

        # the quick fix adds the noqa to that one line
        actions = await client.text_document_code_action_async(lsp.CodeActionParams(
            text_document=document, range=by_code["RFA101"].range,
            context=lsp.CodeActionContext(diagnostics=[by_code["RFA101"]])))
        assert [a.title for a in actions] == ["Add '# noqa: RFA101'"]
        (edit,) = actions[0].edit.changes[uri]
        assert edit.range.start.line == conv5
        assert edit.new_text.endswith("# expect: RFA101  (input 23 >= 16)  # noqa: RFA101")


#: The server with its debounce set (``python -c CODE SECONDS server``).
DEBOUNCED = ("-c", "import sys, rfa_lint.lsp\nrfa_lint.lsp.DEBOUNCE_SECONDS = float(sys.argv.pop(1))\n"
             "from rfa_lint.cli import main\nmain()")


@pytest.mark.parametrize("debounce, analyses", [(10.0, 1), (0.0, 5)], ids=["debounced", "no-debounce"])
def test_quick_edits_are_analysed_once_when_typing_pauses(project: Path, monkeypatch, debounce: float,
                                                          analyses: int) -> None:
    """Five edits, each one the server has seen (it answered a hover after it) before the next is
    sent: within the debounce only the newest text is analysed, and published; without it, each
    is.  The analyses are counted in the server's debug log, which names each one's cache lookup."""
    log = project.parent / "server.log"
    monkeypatch.setenv("RFA_LINT_LOG", str(log))
    monkeypatch.setattr(lsp_session, "SERVER", (*DEBOUNCED, str(debounce), "server"))
    asyncio.run(_quick_edits(project, log, analyses))


def _analyses(log: Path) -> int:
    lines = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
    return sum(line.endswith(("chain.py: not in the cache", "chain.py: from the cache")) for line in lines)


async def _quick_edits(model: Path, log: Path, analyses: int) -> None:
    text, uri = model.read_text(encoding="utf-8"), model.as_uri()
    async with session(model.parent) as (client, published, _):
        client.text_document_did_open(opened(uri, text))
        await asyncio.wait_for(published.get(), WAIT)
        assert _analyses(log) == 1
        for version in range(2, 7):  # one analysis of the newest text, which the noqa silences
            edited = text.replace("(input 23 >= 16)", "(input 23 >= 16)  # noqa: RFA101") + "\n" * version
            client.text_document_did_change(lsp.DidChangeTextDocumentParams(
                text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=version),
                content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=edited)]))
            await client.text_document_hover_async(lsp.HoverParams(  # answered after the edit was seen
                text_document=lsp.TextDocumentIdentifier(uri=uri),
                position=lsp.Position(line=0, character=0)))
        newest = await asyncio.wait_for(published.get(), WAIT)
        while newest.version != 6:  # without the debounce, older texts may be published first
            newest = await asyncio.wait_for(published.get(), WAIT)
        assert sorted(d.code for d in newest.diagnostics) == ["RFA102", "RFA110"]
        if analyses == 1:  # within the debounce: no older text was analysed, nor published
            assert _analyses(log) == 2 and published.empty()
        else:  # each text's analysis started (and logged its lookup), the older ones then cancelled
            assert await _eventually(lambda: _analyses(log) == 1 + analyses)


async def _eventually(condition) -> bool:
    """Whether ``condition`` holds within :data:`WAIT` (an analysis that started logs its lookup)."""
    for _ in range(WAIT * 20):
        if condition():
            return True
        await asyncio.sleep(0.05)
    return False


def test_a_worker_the_server_started_is_no_zombie_of_it_once_it_exits(project: Path) -> None:
    """The server lives as long as the editor: the worker its first analysis started exits (stopped
    here, idle in real life) and leaves no unreaped child in the server; the next edit is served."""
    asyncio.run(_worker_exits(project))


async def _worker_exits(model: Path) -> None:
    text, uri = model.read_text(encoding="utf-8"), model.as_uri()
    async with session(model.parent) as (client, published, _):
        client.text_document_did_open(opened(uri, text))
        first = await asyncio.wait_for(published.get(), WAIT)
        assert {d.code for d in first.diagnostics} == {"RFA101", "RFA102", "RFA110"}  # as in the session
        (server,) = [pid for pid in children(os.getpid()) if b"rfa_lint\0server" in _cmdline(pid)]
        (served,) = [w["pid"] for w in worker.status()]
        assert parent(served) != server
        assert worker.stop() == [served] and gone(served)
        assert zombie_children(server) == set()

        client.text_document_did_change(lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=text + "\n")]))
        changed = await asyncio.wait_for(published.get(), WAIT)
        assert changed.version == 2
        assert {d.code for d in changed.diagnostics} == {"RFA101", "RFA102", "RFA110"}


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""
