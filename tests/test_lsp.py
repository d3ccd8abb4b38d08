"""``rfa-lint server``: a real Language Server session over stdio, driven by pygls's client."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

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

        # five quick edits: one analysis of the newest text, which the noqa silences
        for version in range(2, 7):
            edited = text.replace("(input 23 >= 16)", "(input 23 >= 16)  # noqa: RFA101") + "\n" * version
            client.text_document_did_change(lsp.DidChangeTextDocumentParams(
                text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=version),
                content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=edited)]))
            await asyncio.sleep(0.05)
        changed = await asyncio.wait_for(published.get(), WAIT)
        assert changed.version == 6
        assert sorted(d.code for d in changed.diagnostics) == ["RFA102", "RFA110"]
        await asyncio.sleep(1)
        assert published.empty()  # the earlier versions were never published


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
