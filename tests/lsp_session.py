"""A real ``rfa-lint server`` session over stdio, driven by pygls's client: for the tests
that talk to the language server."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path
from typing import AsyncIterator

from lsprotocol import types as lsp
from pygls.lsp.client import LanguageClient

SERVER = ("-m", "rfa_lint", "server")
WAIT = 180  # seconds for one publication: a cold child imports torch on a loaded machine


@contextlib.asynccontextmanager
async def session(folder: Path) -> AsyncIterator[tuple[LanguageClient, asyncio.Queue, lsp.InitializeResult]]:
    """A server started in ``folder`` and initialized: its client, the diagnostics it publishes,
    its answer to initialize.  Shut down and stopped at the end."""
    published: asyncio.Queue[lsp.PublishDiagnosticsParams] = asyncio.Queue()
    client = LanguageClient("rfa-lint-test", "1")

    @client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def diagnostics(params: lsp.PublishDiagnosticsParams) -> None:
        published.put_nowait(params)

    await client.start_io(sys.executable, *SERVER, cwd=str(folder))
    try:
        result = await client.initialize_async(lsp.InitializeParams(capabilities=lsp.ClientCapabilities()))
        client.initialized(lsp.InitializedParams())
        yield client, published, result
        await client.shutdown_async(None)
    finally:
        client.exit(None)
        await asyncio.wait_for(client.stop(), WAIT)


def opened(uri: str, text: str) -> lsp.DidOpenTextDocumentParams:
    return lsp.DidOpenTextDocumentParams(
        text_document=lsp.TextDocumentItem(uri=uri, language_id="python", version=1, text=text))
