"""``rfa-lint server``: a Language Server (stdio) on pygls, for any editor that speaks LSP.

Diagnostics come on open, on save and after edits: an edit waits a moment for the next one
(``DEBOUNCE_SECONDS``).  Each document is analysed on its own, in a thread of its own: a newer
text cancels the analysis of the older one (its child is killed at once, :func:`cancelled_by`),
so a model that hangs never delays its own fix, and no document waits for another's analysis.
An analysis waits for a child slot (:mod:`rfa_lint.sandbox.slots`) at most
``SLOT_SECONDS``, then runs without one: documents whose models hang hold their slots until
their time limit, and an editor's answer matters more than the machine-wide cap.
Hover on a layer's line shows its receptive field, its verdict and its model's productive range;
a quick fix adds ``# noqa: CODE`` (:func:`rfa_lint.noqa.add_noqa`).

Settings are the file's own ``[tool.rfa-lint]`` (as on the command line, without options).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from rfa_lint import __version__, layers
from rfa_lint.cache import Cache, default_folder
from rfa_lint.lint import analyse_source
from rfa_lint.results import Analysis, Finding
from rfa_lint.noqa import Unparsable, add_noqa, without_noqa
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


@dataclass
class _Document:
    """One open document's analysis state."""

    cancel: threading.Event | None = None  # set to cancel the analysis running, if one is
    analysis: Analysis | None = None
    text: str = ""
    edits: int = 0  # counts didChange notifications, for the debounce
    project: Project | None = field(default=None, repr=False)


class RfaLanguageServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("rfa-lint", __version__)
        self.documents: dict[str, _Document] = {}
        self.analyses = ThreadPoolExecutor(max_workers=ANALYSES, thread_name_prefix="rfa")
        self.cache = Cache(default_folder(), graphs=True)

    def document(self, uri: str) -> _Document:
        return self.documents.setdefault(uri, _Document())

    async def analyse(self, uri: str) -> None:
        """Analyse the newest text of ``uri`` and publish, cancelling its older text's analysis;
        nothing of a cancelled analysis is published (or cached)."""
        state = self.document(uri)
        if state.cancel is not None:
            state.cancel.set()
        cancel = state.cancel = threading.Event()
        text_document = self.workspace.get_text_document(uri)
        path, text, version = to_fs_path(uri) or uri, text_document.source, text_document.version
        project = Project.load(os.path.dirname(path), {})
        invalidate_caches()  # other files may have changed since the last analysis
        try:
            analysis = await asyncio.get_running_loop().run_in_executor(
                self.analyses, _analyse, path, text, project.options, self.cache, cancel)
        except Cancelled:
            return
        if cancel.is_set():  # a newer text came, or the document was closed
            return
        state.cancel = None
        state.analysis, state.text, state.project = analysis, text, project
        self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(
            uri=uri, version=version, diagnostics=_diagnostics(analysis, path, text, project)))

    def close(self, uri: str) -> None:
        """Forget a closed document, cancelling its analysis."""
        state = self.documents.pop(uri, None)
        if state is not None and state.cancel is not None:
            state.cancel.set()

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
    state = ls.document(params.text_document.uri)
    state.edits += 1
    edits = state.edits
    await asyncio.sleep(DEBOUNCE_SECONDS)
    if state.edits == edits:  # no newer edit came while waiting
        await ls.analyse(params.text_document.uri)


@server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: RfaLanguageServer, params: lsp.DidCloseTextDocumentParams) -> None:
    ls.close(params.text_document.uri)
    ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=params.text_document.uri,
                                                                      diagnostics=[]))


@server.feature(lsp.SHUTDOWN)
def shutdown(ls: RfaLanguageServer, params: None) -> None:
    ls.cancel_all()


@server.feature(lsp.TEXT_DOCUMENT_HOVER)
def hover(ls: RfaLanguageServer, params: lsp.HoverParams) -> lsp.Hover | None:
    state = ls.documents.get(params.text_document.uri)
    if state is None or state.analysis is None or state.project is None:
        return None
    path = to_fs_path(params.text_document.uri) or params.text_document.uri
    line = params.position.line + 1
    found = layers.on_line(state.analysis.graphs, path, line, state.project.options.resolution)
    if not found:
        return None
    return lsp.Hover(contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown,
                                                value="\n\n".join(layer.markdown() for layer in found)),
                     range=_range(place(state.text, line)))


@server.feature(lsp.TEXT_DOCUMENT_CODE_ACTION,
                lsp.CodeActionOptions(code_action_kinds=[lsp.CodeActionKind.QuickFix]))
def code_action(ls: RfaLanguageServer, params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
    uri = params.text_document.uri
    text = ls.workspace.get_text_document(uri).source
    actions = []
    for diagnostic in params.context.diagnostics:
        if diagnostic.source != SOURCE or not isinstance(diagnostic.code, str):
            continue
        line = diagnostic.range.start.line + 1
        edit = _noqa_edit(text, line, diagnostic.code)
        if edit is not None:
            actions.append(lsp.CodeAction(
                title=f"Add '# noqa: {diagnostic.code}'", kind=lsp.CodeActionKind.QuickFix,
                diagnostics=[diagnostic], edit=lsp.WorkspaceEdit(changes={uri: [edit]})))
    return actions


def _diagnostics(analysis: Analysis, path: str, text: str, project: Project) -> list[lsp.Diagnostic]:
    codes = project.codes_for(path)
    findings = without_noqa([f for f in analysis.findings if f.code in codes], text)
    return [_diagnostic(finding, text) for finding in findings]


def _diagnostic(finding: Finding, text: str) -> lsp.Diagnostic:
    """The finding's own span; a finding about the whole file (no end) marks its first line."""
    span = (Span(finding.line, finding.col, finding.end_line, finding.end_col)
            if finding.end_line is not None and finding.end_col is not None else place(text, finding.line))
    return lsp.Diagnostic(range=_range(span), message=finding.message,
                          severity=lsp.DiagnosticSeverity.Warning, code=finding.code, source=SOURCE)


def _range(span: Span) -> lsp.Range:
    return lsp.Range(start=lsp.Position(line=span.line - 1, character=span.col),
                     end=lsp.Position(line=span.end_line - 1, character=span.end_col))


def _noqa_edit(text: str, line: int, code: str) -> lsp.TextEdit | None:
    """The edit of the one line that :func:`add_noqa` changes, or None if it changes none."""
    try:
        edited = add_noqa(text.encode("utf-8"), {line: [code]}).source.decode("utf-8")
    except Unparsable:  # the buffer mid-edit: offer nothing rather than fail
        return None
    before, after = text.split("\n"), edited.split("\n")
    changed = [i for i, (old, new) in enumerate(zip(before, after)) if old != new]
    if len(before) != len(after) or len(changed) != 1:
        return None
    index = changed[0]
    return lsp.TextEdit(range=lsp.Range(start=lsp.Position(line=index, character=0),
                                        end=lsp.Position(line=index, character=len(before[index]))),
                        new_text=after[index])


def serve() -> None:
    """Speak LSP on stdin / stdout until the client says exit (or is gone)."""
    try:
        server.start_io()
    finally:
        server.cancel_all()
