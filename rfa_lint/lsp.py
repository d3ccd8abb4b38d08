"""``rfa-lint server``: a Language Server (stdio) on pygls, for any editor that speaks LSP.

Diagnostics come on open, on save and after edits: an edit waits a moment for the next one
(``DEBOUNCE_SECONDS``), and a document has at most one analysis running; edits that arrive
meanwhile are coalesced into one more run on the newest text, so a fast typist never queues up
analyses.  Hover on a layer's line shows its receptive field, its verdict and its model's
productive range; a quick fix adds ``# noqa: CODE`` (:func:`rfa_lint.noqa.add_noqa`).

Settings are the file's own ``[tool.rfa-lint]`` (as on the command line, without options).
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from rfa_lint import __version__, layers
from rfa_lint.cache import Cache, default_folder
from rfa_lint.lint import Analysis, Finding, analyse_source
from rfa_lint.noqa import Unparsable, add_noqa, without_noqa
from rfa_lint.positions import Span, place
from rfa_lint.settings import Project
from rfa_lint.source import invalidate_caches

DEBOUNCE_SECONDS = 0.3
SOURCE = "rfa-lint"


@dataclass
class _Document:
    """One open document's analysis state."""

    running: bool = False
    stale: bool = False  # edited while an analysis ran: run once more when it ends
    analysis: Analysis | None = None
    text: str = ""
    edits: int = 0  # counts didChange notifications, for the debounce
    project: Project | None = field(default=None, repr=False)


class RfaLanguageServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("rfa-lint", __version__)
        self.documents: dict[str, _Document] = {}
        self.analyses = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="rfa")
        self.cache = Cache(default_folder(), graphs=True)

    def document(self, uri: str) -> _Document:
        return self.documents.setdefault(uri, _Document())

    async def analyse(self, uri: str) -> None:
        """Analyse the newest text of ``uri`` and publish; coalesce edits that arrive meanwhile."""
        state = self.document(uri)
        if state.running:
            state.stale = True
            return
        state.running = True
        try:
            while True:
                state.stale = False
                text_document = self.workspace.get_text_document(uri)
                path, text, version = to_fs_path(uri) or uri, text_document.source, text_document.version
                project = Project.load(os.path.dirname(path), {})
                invalidate_caches()  # other files may have changed since the last analysis
                analysis = await asyncio.get_running_loop().run_in_executor(
                    self.analyses, analyse_source, path, text, project.options, self.cache)
                if not state.stale:
                    state.analysis, state.text, state.project = analysis, text, project
                    self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(
                        uri=uri, version=version, diagnostics=_diagnostics(analysis, path, text, project)))
                    return
        finally:
            state.running = False


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
    ls.documents.pop(params.text_document.uri, None)
    ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=params.text_document.uri,
                                                                      diagnostics=[]))


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
    """Speak LSP on stdin / stdout until the client says exit."""
    server.start_io()
