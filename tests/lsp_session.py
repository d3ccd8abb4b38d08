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
#: what the client can do: VS Code's notebook documents included
CAPABILITIES = lsp.ClientCapabilities(notebook_document=lsp.NotebookDocumentClientCapabilities(
    synchronization=lsp.NotebookDocumentSyncClientCapabilities()))


@contextlib.asynccontextmanager
async def session(folder: Path, messages: list[lsp.ShowMessageParams] | None = None
                  ) -> AsyncIterator[tuple[LanguageClient, asyncio.Queue, lsp.InitializeResult]]:
    """A server started in ``folder``, which is its workspace, and initialized: its client, the
    diagnostics it publishes, its answer to initialize; the messages it shows go to ``messages``.
    Shut down and stopped at the end."""
    published: asyncio.Queue[lsp.PublishDiagnosticsParams] = asyncio.Queue()
    client = LanguageClient("rfa-lint-test", "1")

    @client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def diagnostics(params: lsp.PublishDiagnosticsParams) -> None:
        published.put_nowait(params)

    @client.feature(lsp.WINDOW_SHOW_MESSAGE)
    def show(params: lsp.ShowMessageParams) -> None:
        if messages is not None:
            messages.append(params)

    await client.start_io(sys.executable, *SERVER, cwd=str(folder))
    try:
        result = await client.initialize_async(lsp.InitializeParams(
            capabilities=CAPABILITIES, root_uri=folder.as_uri(),
            workspace_folders=[lsp.WorkspaceFolder(uri=folder.as_uri(), name=folder.name)]))
        client.initialized(lsp.InitializedParams())
        yield client, published, result
        await client.shutdown_async(None)
    finally:
        client.exit(None)
        await asyncio.wait_for(client.stop(), WAIT)


def opened(uri: str, text: str) -> lsp.DidOpenTextDocumentParams:
    return lsp.DidOpenTextDocumentParams(
        text_document=lsp.TextDocumentItem(uri=uri, language_id="python", version=1, text=text))


def notebook_opened(path: Path) -> tuple[lsp.DidOpenNotebookDocumentParams, dict[int, str]]:
    """The didOpen of the notebook at ``path`` with every cell (markdown ones too, which a
    client may send), and each cell's URI by its number as Jupyter counts them (VS Code's form:
    ``vscode-notebook-cell:`` the notebook's path, ``#`` a cell id)."""
    import nbformat

    cells = nbformat.read(path, as_version=4).cells
    uris = {n: f"vscode-notebook-cell:{path.as_posix()}#C{n}" for n in range(1, len(cells) + 1)}
    languages = {"code": "python", "markdown": "markdown", "raw": "raw"}
    documents = [lsp.TextDocumentItem(uri=uris[n], language_id=languages[cell.cell_type], version=1,
                                      text=cell.source) for n, cell in enumerate(cells, start=1)]
    book = lsp.NotebookDocument(uri=path.as_uri(), notebook_type="jupyter-notebook", version=1, cells=[
        lsp.NotebookCell(kind=lsp.NotebookCellKind.Markup if cell.cell_type == "markdown" else
                         lsp.NotebookCellKind.Code, document=uris[n])
        for n, cell in enumerate(cells, start=1)])
    return lsp.DidOpenNotebookDocumentParams(notebook_document=book, cell_text_documents=documents), uris


def cell_edited(notebook_uri: str, version: int, cell_uri: str,
                text: str) -> lsp.DidChangeNotebookDocumentParams:
    """A notebook's didChange that replaces one cell's text."""
    return lsp.DidChangeNotebookDocumentParams(
        notebook_document=lsp.VersionedNotebookDocumentIdentifier(uri=notebook_uri, version=version),
        change=lsp.NotebookDocumentChangeEvent(cells=lsp.NotebookDocumentCellChanges(text_content=[
            lsp.NotebookDocumentCellContentChanges(
                document=lsp.VersionedTextDocumentIdentifier(uri=cell_uri, version=version),
                changes=[lsp.TextDocumentContentChangeWholeDocument(text=text)])])))
