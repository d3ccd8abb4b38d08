"""``rfa-lint server``: a real Language Server session over stdio, driven by pygls's client."""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

import pytest
from lsprotocol import types as lsp
from pygls.lsp.client import LanguageClient

CHAIN = Path(__file__).resolve().parents[1] / "fixtures" / "lint" / "chain.py"
SERVER = ("-m", "rfa_lint", "server")
WAIT = 180  # seconds for one publication: a cold child imports torch on a loaded machine


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
    published: asyncio.Queue[lsp.PublishDiagnosticsParams] = asyncio.Queue()
    client = LanguageClient("rfa-lint-test", "1")

    @client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def diagnostics(params: lsp.PublishDiagnosticsParams) -> None:
        published.put_nowait(params)

    await client.start_io(sys.executable, *SERVER, cwd=str(model.parent))
    try:
        result = await client.initialize_async(lsp.InitializeParams(capabilities=lsp.ClientCapabilities()))
        assert result.server_info.name == "rfa-lint"
        assert result.capabilities.hover_provider and result.capabilities.code_action_provider
        client.initialized(lsp.InitializedParams())

        # didOpen -> diagnostics on the constructor calls of conv4 (critical) and conv5 (unproductive),
        # and on the class: 16 px is below the range it uses fully (its largest minimum RF, 31)
        client.text_document_did_open(lsp.DidOpenTextDocumentParams(
            text_document=lsp.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)))
        opened = await asyncio.wait_for(published.get(), WAIT)
        by_code = {d.code: d for d in opened.diagnostics}
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

        await client.shutdown_async(None)
    finally:
        client.exit(None)
        await asyncio.wait_for(client.stop(), WAIT)
