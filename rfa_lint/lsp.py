"""``rfa-lint server``: a Language Server (stdio) on pygls, for any editor that speaks LSP.

Diagnostics come on open, on save and after edits: an edit waits a moment for the next one
(``DEBOUNCE_SECONDS``).  Each document is analysed on its own, in a thread of its own: a newer
text cancels the analysis of the older one (its child is killed at once, :func:`cancelled_by`),
so a model that hangs never delays its own fix, and no document waits for another's analysis.
An analysis waits for a child slot (:mod:`rfa_lint.sandbox.slots`) at most
``SLOT_SECONDS``, then runs without one: documents whose models hang hold their slots until
their time limit, and an editor's answer matters more than the machine-wide cap.
Hover on a layer's line shows its receptive field, its verdict, its model's productive range
and the resolution used; a quick fix adds ``# noqa: CODE`` (:func:`rfa_lint.noqa.add_noqa`).

A notebook (LSP 3.17 notebook documents, as VS Code's Jupyter sends them) is one document: its
Python code cells make one module (:func:`rfa_lint.notebook.of_cells`), analysed as a file's
text is, and each finding is published on its cell's URI at its line in the cell; hover and the
quick fix work in a cell as in a file.

Settings are the file's own ``[tool.rfa-lint]`` (as on the command line, without options).
Where none sets ``res``, models are analysed at the default 224 px, which hides what a CIFAR
model wastes: the server says so once per workspace folder, and every hover names the resolution.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from rfa_lint import __version__, layers, notebook
from rfa_lint.cache import Cache, default_folder
from rfa_lint.lint import analyse_source
from rfa_lint.results import Analysis, Finding
from rfa_lint.noqa import Unparsable, add_noqa, without_noqa
from rfa_lint.numbers import fmt
from rfa_lint.positions import Span, place
from rfa_lint.sandbox import Cancelled, cancelled_by
from rfa_lint.sandbox.slots import waits_end
from rfa_lint.settings import Options, Project
from rfa_lint.source import invalidate_caches

DEBOUNCE_SECONDS = 0.3
SLOT_SECONDS = 5.0
#: Analyses at once: one per document analysed (a cancelled one ends within a poll of its child).
ANALYSES = 64
SOURCE = "rfa-lint"
#: Jupyter notebooks, their Python cells: the notebook documents the server asks the editor for
NOTEBOOK_SYNC = lsp.NotebookDocumentSyncOptions(
    notebook_selector=[lsp.NotebookDocumentFilterWithCells(
        notebook="jupyter-notebook", cells=[lsp.NotebookCellLanguage(language="python")])],
    save=True)


@dataclass(frozen=True)
class _Source:
    """What one analysis reads, and where its lines are shown: a text document's own lines, or
    a notebook's Python code cells (``module`` places each line of ``text`` in cell N of
    ``uris``, counted from 1)."""

    path: str
    text: str
    uris: tuple[str, ...]
    versions: tuple[int | None, ...]
    module: notebook.Notebook | None = None

    def shown(self, line: int) -> tuple[str, int]:
        """The URI, and the line there (from 1), of the module's ``line``."""
        if self.module is None:
            return self.uris[0], line
        cell, in_cell = self.module.place(line)
        return self.uris[cell - 1], in_cell

    def line_of(self, uri: str, line: int) -> int | None:
        """The module's line of ``line`` of ``uri``; None for no line of the module's code, or an
        IPython line (a magic, an escape) that the module has neutralised."""
        if self.module is None:
            return line if uri == self.uris[0] else None
        if uri not in self.uris:
            return None
        found = self.module.module_line(self.uris.index(uri) + 1, line)
        return None if found is None or found - 1 in self.module.neutralised else found


@dataclass
class _Document:
    """One open document's analysis state (a text document's, or a notebook's)."""

    cancel: threading.Event | None = None  # set to cancel the analysis running, if one is
    analysis: Analysis | None = None
    source: _Source | None = None  # what the analysis read
    edits: int = 0  # counts didChange notifications, for the debounce
    project: Project | None = field(default=None, repr=False)
    published: frozenset[str] = frozenset()  # the URIs its diagnostics were last published on


class RfaLanguageServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("rfa-lint", __version__, notebook_document_sync=NOTEBOOK_SYNC)
        self.documents: dict[str, _Document] = {}
        self.analyses = ThreadPoolExecutor(max_workers=ANALYSES, thread_name_prefix="rfa")
        self.cache = Cache(default_folder(), graphs=True)
        self.told: set[str] = set()  # the workspace folders told that no `res` is configured

    def document(self, uri: str) -> _Document:
        return self.documents.setdefault(uri, _Document())

    def source(self, uri: str) -> _Source:
        """The newest text of the text document or notebook ``uri``."""
        path = to_fs_path(uri) or uri
        book = self.workspace.get_notebook_document(notebook_uri=uri)
        if book is None:
            document = self.workspace.get_text_document(uri)
            return _Source(path, document.source, (uri,), (document.version,))
        cells = [self.workspace.get_text_document(cell.document) for cell in book.cells
                 if cell.kind == lsp.NotebookCellKind.Code]
        cells = [cell for cell in cells if cell.language_id in (None, "python")]
        module = notebook.of_cells((number, cell.source) for number, cell in enumerate(cells, start=1))
        return _Source(path, module.text, tuple(c.uri for c in cells), tuple(c.version for c in cells),
                       module)

    def shown_in(self, uri: str) -> str:
        """The document that ``uri`` shows: a notebook for one of its cells, else ``uri``."""
        book = None if uri in self.documents else self.workspace.get_notebook_document(cell_uri=uri)
        return uri if book is None else book.uri

    async def analyse(self, uri: str) -> None:
        """Analyse the newest text of ``uri`` and publish, cancelling its older text's analysis;
        nothing of a cancelled analysis is published (or cached)."""
        state = self.document(uri)
        if state.cancel is not None:
            state.cancel.set()
        cancel = state.cancel = threading.Event()
        source = self.source(uri)
        project = Project.load(os.path.dirname(source.path), {})
        invalidate_caches()  # other files may have changed since the last analysis
        try:
            analysis = await asyncio.get_running_loop().run_in_executor(
                self.analyses, _analyse, source.path, source.text, project.options, self.cache, cancel)
        except Cancelled:
            return
        if cancel.is_set():  # a newer text came, or the document was closed
            return
        state.cancel = None
        state.analysis, state.source, state.project = analysis, source, project
        self.publish(state, _diagnostics(analysis, source, project))
        if analysis.models:
            self.tell_default(source.path, project)

    async def edited(self, uri: str) -> None:
        """Analyse ``uri`` after an edit, unless a newer edit comes (or it closes) within
        :data:`DEBOUNCE_SECONDS`."""
        state = self.document(uri)
        state.edits += 1
        edits = state.edits
        await asyncio.sleep(DEBOUNCE_SECONDS)
        if state.edits == edits and self.documents.get(uri) is state:
            await self.analyse(uri)

    def publish(self, state: _Document, diagnostics: dict[str, list[lsp.Diagnostic]]) -> None:
        """Each shown URI's diagnostics, none for a cell without findings or one no longer there."""
        assert state.source is not None
        versions = dict(zip(state.source.uris, state.source.versions))
        for uri in [*state.source.uris, *sorted(state.published - set(versions))]:
            self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(
                uri=uri, version=versions.get(uri), diagnostics=diagnostics.get(uri, [])))
        state.published = frozenset(versions)

    def close(self, uri: str, shown: list[str]) -> None:
        """Forget a closed document, cancelling its analysis, and clear its diagnostics on
        ``shown`` (its URI, or its cells') and wherever they were published."""
        state = self.documents.pop(uri, None)
        published = set(shown)
        if state is not None:
            if state.cancel is not None:
                state.cancel.set()
            published |= state.published
        for each in sorted(published):
            self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=each, diagnostics=[]))

    def tell_default(self, path: str, project: Project) -> None:
        """Once per workspace folder, say that no ``res`` is configured, so models are analysed
        at the default resolution, and where to set it."""
        if "res" in project.configured:
            return
        folder = self.workspace_folder(path)
        if folder in self.told:
            return
        self.told.add(folder)
        where = project.config or os.path.join(folder, "pyproject.toml")
        self.window_show_message(lsp.ShowMessageParams(type=lsp.MessageType.Warning, message=(
            f"rfa-lint: no `res` is configured for {folder}, so models are analysed at "
            f"{fmt(project.options.resolution)} px, the default. Set the resolution your models "
            f"see under [tool.rfa-lint] in {where}, e.g. res = 32.")))

    def workspace_folder(self, path: str) -> str:
        """The innermost workspace folder (or root) holding ``path``, else ``path``'s folder."""
        roots = [to_fs_path(folder.uri) for folder in self.workspace.folders.values()]
        holding = [root for root in [*roots, self.workspace.root_path]
                   if root and os.path.commonpath([os.path.abspath(root), os.path.abspath(path)])
                   == os.path.abspath(root)]
        return max(holding, key=len, default=os.path.dirname(path))

    def cancel_all(self) -> None:
        """Cancel every analysis: the server is shutting down, and exits without waiting for
        the models that hang."""
        for state in self.documents.values():
            if state.cancel is not None:
                state.cancel.set()


def _analyse(path: str, text: str, options: Options, cache: Cache, cancel: threading.Event) -> Analysis:
    """One analysis, in a thread of the server's: ``cancel`` ends it (:class:`Cancelled`), and its
    waits for a child slot end after :data:`SLOT_SECONDS`."""
    with cancelled_by(cancel), waits_end(time.monotonic() + SLOT_SECONDS, cancel):
        return analyse_source(path, text, options, cache)


server = RfaLanguageServer()


@server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
async def did_open(ls: RfaLanguageServer, params: lsp.DidOpenTextDocumentParams) -> None:
    await ls.analyse(params.text_document.uri)


@server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
async def did_save(ls: RfaLanguageServer, params: lsp.DidSaveTextDocumentParams) -> None:
    await ls.analyse(params.text_document.uri)


@server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
async def did_change(ls: RfaLanguageServer, params: lsp.DidChangeTextDocumentParams) -> None:
    await ls.edited(params.text_document.uri)


@server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: RfaLanguageServer, params: lsp.DidCloseTextDocumentParams) -> None:
    ls.close(params.text_document.uri, [params.text_document.uri])


@server.feature(lsp.NOTEBOOK_DOCUMENT_DID_OPEN)
async def notebook_did_open(ls: RfaLanguageServer, params: lsp.DidOpenNotebookDocumentParams) -> None:
    await ls.analyse(params.notebook_document.uri)


@server.feature(lsp.NOTEBOOK_DOCUMENT_DID_SAVE)
async def notebook_did_save(ls: RfaLanguageServer, params: lsp.DidSaveNotebookDocumentParams) -> None:
    await ls.analyse(params.notebook_document.uri)


@server.feature(lsp.NOTEBOOK_DOCUMENT_DID_CHANGE)
async def notebook_did_change(ls: RfaLanguageServer, params: lsp.DidChangeNotebookDocumentParams) -> None:
    await ls.edited(params.notebook_document.uri)


@server.feature(lsp.NOTEBOOK_DOCUMENT_DID_CLOSE)
def notebook_did_close(ls: RfaLanguageServer, params: lsp.DidCloseNotebookDocumentParams) -> None:
    ls.close(params.notebook_document.uri, [cell.uri for cell in params.cell_text_documents])


@server.feature(lsp.SHUTDOWN)
def shutdown(ls: RfaLanguageServer, params: None) -> None:
    ls.cancel_all()


@server.feature(lsp.TEXT_DOCUMENT_HOVER)
def hover(ls: RfaLanguageServer, params: lsp.HoverParams) -> lsp.Hover | None:
    uri = params.text_document.uri
    state = ls.documents.get(ls.shown_in(uri))
    if state is None or state.analysis is None or state.source is None or state.project is None:
        return None
    line = state.source.line_of(uri, params.position.line + 1)
    if line is None:
        return None
    options = state.project.options
    found = layers.on_line(state.analysis.graphs, state.source.path, line, options.resolution)
    if not found:
        return None
    text = "\n\n".join([*(layer.markdown() for layer in found), _resolution_note(state.project)])
    return lsp.Hover(contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=text),
                     range=_range(_shown(state.source, place(state.source.text, line))[1]))


@server.feature(lsp.TEXT_DOCUMENT_CODE_ACTION,
                lsp.CodeActionOptions(code_action_kinds=[lsp.CodeActionKind.QuickFix]))
def code_action(ls: RfaLanguageServer, params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
    uri = params.text_document.uri
    source = ls.source(ls.shown_in(uri))
    actions = []
    for diagnostic in params.context.diagnostics:
        if diagnostic.source != SOURCE or not isinstance(diagnostic.code, str):
            continue
        line = source.line_of(uri, diagnostic.range.start.line + 1)
        edit = None if line is None else _noqa_edit(source, uri, line, diagnostic.code)
        if edit is not None:
            actions.append(lsp.CodeAction(
                title=f"Add '# noqa: {diagnostic.code}'", kind=lsp.CodeActionKind.QuickFix,
                diagnostics=[diagnostic], edit=lsp.WorkspaceEdit(changes={uri: [edit]})))
    return actions


def _diagnostics(analysis: Analysis, source: _Source, project: Project) -> dict[str, list[lsp.Diagnostic]]:
    """The diagnostics of each URI ``source`` shows."""
    codes = project.codes_for(source.path)
    shown: dict[str, list[lsp.Diagnostic]] = defaultdict(list)
    for finding in without_noqa([f for f in analysis.findings if f.code in codes], source.text):
        uri, span = _shown(source, _span(finding, source.text))
        shown[uri].append(lsp.Diagnostic(range=_range(span), message=finding.message,
                                         severity=lsp.DiagnosticSeverity.Warning, code=finding.code,
                                         source=SOURCE))
    return shown


def _span(finding: Finding, text: str) -> Span:
    """The finding's own span; a finding about the whole file (no end) marks its first line."""
    if finding.end_line is not None and finding.end_col is not None:
        return Span(finding.line, finding.col, finding.end_line, finding.end_col)
    return place(text, finding.line)


def _shown(source: _Source, span: Span) -> tuple[str, Span]:
    """The URI a span of the module is shown in, and the span there (ended at its first line's
    end, should it run on into the next cell)."""
    uri, line = source.shown(span.line)
    end_uri, end_line = source.shown(span.end_line)
    if end_uri != uri:
        return uri, Span(line, span.col, line, len(source.text.split("\n")[span.line - 1]))
    return uri, Span(line, span.col, end_line, span.end_col)


def _range(span: Span) -> lsp.Range:
    return lsp.Range(start=lsp.Position(line=span.line - 1, character=span.col),
                     end=lsp.Position(line=span.end_line - 1, character=span.end_col))


def _resolution_note(project: Project) -> str:
    """Which resolution the hover's verdicts are at, and where it comes from."""
    res = fmt(project.options.resolution)
    if "res" in project.configured:
        return f"_Analysed at {res} px: `res` in `{project.config}`._"
    return (f"_Analysed at {res} px, the default: set `res` under `[tool.rfa-lint]` in pyproject.toml "
            f"to the resolution your model sees._")


def _noqa_edit(source: _Source, uri: str, line: int, code: str) -> lsp.TextEdit | None:
    """The edit of the one line that :func:`add_noqa` changes, on ``uri``, or None if it changes
    none, or one shown elsewhere or not as it is in the module (a magic)."""
    try:
        edited = add_noqa(source.text.encode("utf-8"), {line: [code]}).source.decode("utf-8")
    except Unparsable:  # the buffer mid-edit: offer nothing rather than fail
        return None
    before, after = source.text.split("\n"), edited.split("\n")
    changed = [i for i, (old, new) in enumerate(zip(before, after)) if old != new]
    if len(before) != len(after) or len(changed) != 1:
        return None
    index = changed[0]
    shown_uri, shown = source.shown(index + 1)
    if shown_uri != uri or source.line_of(uri, shown) is None:
        return None
    return lsp.TextEdit(range=lsp.Range(start=lsp.Position(line=shown - 1, character=0),
                                        end=lsp.Position(line=shown - 1, character=len(before[index]))),
                        new_text=after[index])


def serve() -> None:
    """Speak LSP on stdin / stdout until the client says exit (or is gone)."""
    try:
        server.start_io()
    finally:
        server.cancel_all()
