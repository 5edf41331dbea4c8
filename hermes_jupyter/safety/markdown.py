"""Model output is untrusted: Markdown to HTML that can never run script in the page.

Two independent layers: markdown-it-py with raw HTML disabled (so any HTML the
model writes is shown as text) and a link validator that allows only http(s),
mailto and relative links; then nh3 (the ammonia sanitizer) with a strict
allowlist, which would catch anything the first layer let through.

Nor can it make the page load anything: a Markdown image is shown as a link the
reader may click, never as an <img>, and <img> is not in the allowlist. Else the
model (or a file that prompt-injected it) picks a URL the browser fetches, with
whatever data in it, on every opening of the notebook.
"""
from __future__ import annotations

import html
import re
from collections.abc import Sequence

import nh3
from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict

_SAFE_URL = re.compile(r"^(https?:|mailto:|#|/|\./|\.\./|[\w.-]+(/|$|\.))", re.I)
_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "del", "details", "div", "em", "h1", "h2", "h3",
    "h4", "h5", "h6", "hr", "i", "kbd", "li", "ol", "p", "pre", "s", "span", "strong",
    "sub", "summary", "sup", "table", "tbody", "td", "th", "thead", "tr", "ul",
}
_ATTRIBUTES = {
    "a": {"href", "title"}, "code": {"class"},
    "td": {"style"}, "th": {"style"}, "span": {"style"}, "div": {"style"}, "details": {"open"},
}
_URL_SCHEMES = {"http", "https", "mailto"}
# Properties that take no URL: a style's url() would load it (code outputs' HTML has styles).
_STYLES = {"text-align", "color", "background-color", "font-weight", "font-style"}


def _is_safe_link(url: str) -> bool:
    url = url.strip()
    return bool(_SAFE_URL.match(url)) and not re.match(r"^\s*(javascript|vbscript|data|file):", url, re.I)


class _SafeMarkdownIt(MarkdownIt):
    def validateLink(self, url: str) -> bool:  # markdown-it's hook for every link and image URL
        return _is_safe_link(url)


_WEB_URL = re.compile(r"^https?://", re.I)


def _image_as_link(self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict,
                   env: EnvType) -> str:
    """An image as "[image: alt]", linked to its URL if that is a web page to open, never loaded.

    Only http(s) URLs get a link. A data: image is not shown either (validateLink leaves it as
    text): it needs no network, but its picture is whatever the model wrote, e.g. an approval
    card or text the reader would take for the notebook's own. A relative URL would resolve
    against the Jupyter server's pages, which is not where the model's picture is.
    """
    token = tokens[idx]
    alt = escape(self.renderInlineAsText(token.children or [], options, env))
    label = f"[image: {alt}]" if alt else "[image]"
    url = str(token.attrGet("src") or "")
    # Inside a link the label is already linked there: a nested <a> is not valid HTML.
    opened = sum(1 if t.type == "link_open" else -1 for t in tokens[:idx] if t.type in ("link_open", "link_close"))
    if opened or not _WEB_URL.match(url):
        return label
    title = token.attrGet("title")
    title_attr = f' title="{escape(str(title))}"' if title else ""
    return f'<a href="{escape(url)}"{title_attr}>{label}</a>'


_md = _SafeMarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
_md.enable(["table", "strikethrough"])
_md.add_render_rule("image", _image_as_link)


def sanitize_html(fragment: str) -> str:
    """The last line of defence for any HTML that carries untrusted text."""
    return nh3.clean(fragment, tags=_TAGS, attributes=_ATTRIBUTES, url_schemes=_URL_SCHEMES,
                     filter_style_properties=_STYLES, link_rel="noopener noreferrer nofollow", strip_comments=True)


def render_markdown(source: str) -> str:
    """Safe HTML for a piece of (possibly incomplete, streaming) Markdown."""
    return sanitize_html(_md.render(source))


def escape(text: str) -> str:
    return html.escape(str(text), quote=True)


def split_settled(source: str, min_size: int = 400) -> tuple[str, str]:
    """Split streaming Markdown into (settled, open) at the last blank line outside a code fence.

    The settled part will not change any more, so a view can render it once
    and keep updating only the open tail: the bytes sent stay linear in the
    answer's length.
    """
    if len(source) < min_size:
        return "", source
    in_fence = False
    cut = 0
    offset = 0
    for line in source.splitlines(keepends=True):
        stripped = line.lstrip()
        if stripped.startswith(("```", "~~~")):
            in_fence = not in_fence
        offset += len(line)
        if not in_fence and line.strip() == "" and offset < len(source):
            cut = offset
    if cut < min_size // 2:
        return "", source
    return source[:cut], source[cut:]


def fenced_blocks(source: str) -> list[tuple[str, str]]:
    """(info string, content) of each code block, in order, as CommonMark reads them: nested and
    tilde fences, and indented blocks (info ""), come out right where a regex would not."""
    return [(t.info.strip() if t.type == "fence" else "", t.content)
            for t in _md.parse(source) if t.type in ("fence", "code_block")]
