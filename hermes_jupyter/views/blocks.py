"""An answer's Markdown as top-level blocks: one renderer for the live view and the static rendering.

The answer is split where markdown-it's block parser starts a new top-level
block (a paragraph, a fence, a table, a list...); the blank lines and link
definitions before a block go with it. Each block is rendered on its own by
the safe renderer (markdown-it without raw HTML, then nh3), after redaction,
and its code is highlighted with Pygments. The live view renders a block once,
when the next one starts; the static rendering renders the same blocks, so a
finished turn looks exactly as its live view did. Rendered blocks are cached
for that second use.
"""
from __future__ import annotations

import html
import re
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from markdown_it import MarkdownIt
from mdit_py_plugins.dollarmath import dollarmath_plugin

from hermes_jupyter.safety.markdown import MATH_OPTIONS, escape, render_markdown
from hermes_jupyter.safety.redact import redact_for_display

# Structure only: the same block rules as the renderer (commonmark, tables, no raw HTML), no inline pass.
_parser = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"]).use(dollarmath_plugin, **MATH_OPTIONS)
_parser.core.ruler.disable(["inline", "text_join"])

_CODE = re.compile(r'<pre><code(?: class="language-([^"]*)")?>(.*?)</code></pre>\n?', re.S)
HIGHLIGHT_LIMIT = 200_000  # characters; a longer block is shown in its box without colours


@dataclass(frozen=True, slots=True)
class Block:
    """One top-level block: its kind and lines [start, end) of the parsed text (gap lines excluded)."""
    kind: str  # paragraph, fence, table, bullet_list, ordered_list, heading, blockquote, hr, code_block...
    start: int
    end: int
    info: str = ""  # a fence's info string
    items: tuple[tuple[int, int], ...] = ()  # a list's items, as line ranges


def normalize(text: str) -> str:
    """What both renderings see: no carriage returns (markdown-it counts lines without them)."""
    return text.replace("\r", "")


def parse(text: str) -> list[Block]:
    """The top-level blocks of `text`, in order."""
    blocks: list[Block] = []
    items: list[tuple[int, int]] = []
    for token in _parser.parse(text):
        if token.type == "list_item_open" and token.level == 1 and token.map:
            items.append((token.map[0], token.map[1]))
        if token.level != 0 or token.nesting < 0 or not token.map:
            continue
        if blocks and blocks[-1].kind.endswith("_list"):
            blocks[-1] = Block(blocks[-1].kind, blocks[-1].start, blocks[-1].end, items=tuple(items))
        items = []
        kind = token.type.removesuffix("_open")
        blocks.append(Block(kind, token.map[0], token.map[1], info=token.info.strip()))
    if blocks and blocks[-1].kind.endswith("_list"):
        blocks[-1] = Block(blocks[-1].kind, blocks[-1].start, blocks[-1].end, items=tuple(items))
    return blocks


def last_inline(text: str) -> int | None:
    """Where the inline text that ends `text` begins (a paragraph's or heading's lines, also inside a
    quote or a list), or None if `text` ends otherwise (in code, a table): what may be autoclosed."""
    last = None
    for token in _parser.parse(text):
        if token.map and (token.type == "inline" or token.type in ("fence", "code_block", "table_open")):
            last = token
    if last is None or last.type != "inline" or not last.map:
        return None
    offsets = line_offsets(text)
    end = offsets[last.map[1]] if last.map[1] < len(offsets) else len(text)
    return offsets[last.map[0]] if not text[end:].strip() else None


def line_offsets(text: str) -> list[int]:
    """Character offset of the start of every line (and of the end)."""
    offsets = [0]
    find = text.find
    at = find("\n")
    while at != -1:
        offsets.append(at + 1)
        at = find("\n", at + 1)
    return offsets


def split(text: str) -> list[str]:
    """The sources of the top-level blocks; the gap before a block goes with it, the rest with the last."""
    text = normalize(text)
    blocks = parse(text)
    if len(blocks) < 2:
        return [text] if text.strip() else []
    offsets = line_offsets(text)
    cuts = [offsets[b.end] if b.end < len(offsets) else len(text) for b in blocks[:-1]]
    return [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]


# ----- rendering ----------------------------------------------------------------------------

class _Cache:
    """Rendered blocks by source, least recently used first out, bounded in characters."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._items: OrderedDict[str, str] = OrderedDict()
        self._size = 0

    def get(self, key: str) -> str | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: str, value: str) -> None:
        if len(key) + len(value) > self.budget // 4:
            return
        self._items[key] = value
        self._size += len(key) + len(value)
        while self._size > self.budget:
            old_key, old = self._items.popitem(last=False)
            self._size -= len(old_key) + len(old)


_cache = _Cache(1_000_000)


def render_block(source: str) -> str:
    """Safe HTML of one block (redacted, sanitized, code highlighted): what live and static show."""
    cached = _cache.get(source)
    if cached is None:
        safe = redact_for_display(source)
        cached = plain_paragraph(safe) or code_boxes(render_markdown(safe))
        _cache.put(source, cached)
    return cached


# Text that Markdown would only wrap in <p>: letters, digits, spaces and punctuation that is never
# markup, in one paragraph. Prose often is; skipping the parser for it keeps streaming cheap.
_PLAIN = re.compile(r"(?:[^\W_]|[ ,.;:?!'\"()/%\n\u2019\u201c\u201d\u2013\u2014\u2026-])*")
_NOT_PLAIN_LINE = re.compile(r"^(?: {4}| *(?:[-+](?: |$)|\d+[.)]|-+ *$))", re.M)


def plain_paragraph(text: str) -> str | None:
    """markdown-it's (and nh3's) HTML for plain prose, without parsing; None if `text` is not plain."""
    body = text.strip("\n ")
    if (not body or text.lstrip("\n").startswith("    ") or not _PLAIN.fullmatch(body) or "\n\n" in body or "  \n" in body
            or _NOT_PLAIN_LINE.search(body) or "\n \n" in body):
        return None
    return "<p>" + "\n".join(line.strip(" ") for line in body.split("\n")) + "</p>\n"


def render_answer(text: str) -> str:
    return "".join(render_block(block) for block in split(text))


def render_inline(source: str, redact: bool = True) -> str | None:
    """A piece of a paragraph as inline HTML (no <p>), or None if it would not render as one paragraph."""
    safe = redact_for_display(source) if redact else source
    rendered = plain_paragraph(safe) or render_markdown(safe)
    if not rendered.startswith("<p>") or not rendered.endswith("</p>\n") or rendered.count("<p>") != 1:
        return None if rendered.strip() else ""
    return rendered[3:-5]


def code_boxes(rendered: str) -> str:
    """Every <pre><code> of sanitized HTML as a highlighted code box; empty ones disappear."""
    return _CODE.sub(_code_box, rendered) if "<pre><code" in rendered else rendered


def _code_box(match: re.Match[str]) -> str:
    lang = html.unescape(match.group(1) or "")
    code = html.unescape(match.group(2))
    if not code.strip():
        return ""
    return code_open(lang) + highlight(code, lang) + CODE_CLOSE


def code_open(lang: str) -> str:
    cls = f' class="language-{escape(lang)}"' if lang else ""
    return f'<pre class="hermes-code highlight"><code{cls}>'


CODE_CLOSE = "</code></pre>\n"


@lru_cache(maxsize=64)
def _lexer(lang: str) -> Any:
    from pygments.lexers import get_lexer_by_name
    from pygments.util import ClassNotFound

    try:
        return get_lexer_by_name(lang, stripnl=False, ensurenl=False) if lang else None
    except ClassNotFound:
        return None


def highlight(code: str, lang: str) -> str:
    """Code as escaped text in Pygments' short token classes (the ones jupyterlab_pygments styles)."""
    lexer = _lexer(lang.split()[0].lower()) if lang.strip() else None
    if lexer is None or len(code) > HIGHLIGHT_LIMIT:
        return escape(code)
    from pygments.token import STANDARD_TYPES

    out: list[str] = []
    last_cls, run = "", list[str]()
    try:
        tokens = list(lexer.get_tokens(code))
    except Exception:  # a lexer that fails on odd input: the code still shows
        return escape(code)
    for ttype, value in tokens:
        cls = STANDARD_TYPES.get(ttype)
        while cls is None and ttype.parent is not None:
            ttype = ttype.parent
            cls = STANDARD_TYPES.get(ttype)
        cls = "" if cls in (None, "w", "n", "p") else cls  # plain text, names and punctuation keep the text colour
        if cls != last_cls and run:
            out.append(_span(last_cls, "".join(run)))
            run = []
        last_cls = cls
        run.append(value)
    if run:
        out.append(_span(last_cls, "".join(run)))
    return "".join(out)


def _span(cls: str, text: str) -> str:
    text = html.escape(text, quote=False)
    return f'<span class="{cls}">{text}</span>' if cls else text
