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
from typing import Any

import nh3
from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from mdit_py_plugins.dollarmath import dollarmath_plugin

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


# ----- math: $...$ and $$...$$ typeset as MathML here, so live and saved look the same ----------------
# Pandoc's rules: no space inside the dollars, no digit after the closing one ("$5 and $10" is money).
MATH_OPTIONS: dict[str, Any] = {"allow_space": False, "allow_digits": False, "double_inline": True,
                                "allow_labels": False}
MATH_LONGEST = 4000  # characters of TeX; a longer formula is shown as its source
MATH_DEEPEST = 40  # braces deep; deeper is shown as its source (the converter recurses)
_MATH_TAGS = {
    "math", "semantics", "mrow", "mi", "mn", "mo", "ms", "mtext", "mspace", "msub", "msup", "msubsup", "mfrac",
    "msqrt", "mroot", "munder", "mover", "munderover", "mtable", "mtr", "mtd", "mstyle", "mpadded", "mphantom",
    "menclose", "merror", "mmultiscripts", "mprescripts", "none",
}
# Layout attributes only: no href (\href), no style or class (a formula can't restyle or cover the page).
_MATH_ATTRIBUTES = {tag: {
    "display", "displaystyle", "scriptlevel", "mathvariant", "mathsize", "stretchy", "fence", "separator", "form",
    "lspace", "rspace", "minsize", "maxsize", "largeop", "movablelimits", "accent", "accentunder", "symmetric",
    "linethickness", "width", "height", "depth", "voffset", "notation", "columnalign", "columnlines",
    "columnspacing", "rowalign", "rowlines", "rowspacing", "frame", "align", "columnspan", "rowspan",
} for tag in _MATH_TAGS}
_MATH_SLOT = re.compile("\ue000(\\d+)\ue001")  # a formula's place in the sanitized HTML
# TeX a frontend's MathJax could turn into links, classes, styles or HTML: never handed to it.
_TEX_ACTIVE = re.compile(r"\\(?:href|url|html|class|style|cssId|data|unicode|require|mmlToken|bbox|tag|label)",
                         re.I)


def _math_placeholder(self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict,
                      env: EnvType) -> str:
    token = tokens[idx]
    formulas = env.setdefault("math", [])
    formulas.append((token.content.strip(), token.type != "math_inline"))
    slot = f"\ue000{len(formulas) - 1}\ue001"
    return f"{slot}\n" if token.type.startswith("math_block") else slot


def math_html(tex: str, display: bool) -> str:
    """A formula as MathML (sanitized), with its TeX source beside it for frontends that strip MathML.

    The stylesheet shows the MathML and hides the source. Where a frontend strips both the stylesheet
    and MathML (an untrusted notebook in JupyterLab), the MathML's inline style hides its remains
    and the source shows instead, as $TeX$ its MathJax typesets (unless it has commands that make
    links or HTML: then as code). Bad or huge TeX is shown as its source only.
    """
    kind = "hermes-math hermes-math-display" if display else "hermes-math"
    source = f"$${tex}$$" if display else f"${tex}$"
    if _TEX_ACTIVE.search(tex):
        fallback = f'<code class="hermes-tex">{escape(source)}</code>'
    else:
        fallback = f'<span class="hermes-tex">{escape(source)}</span>'
    mathml = _mathml(tex, display)
    if mathml is None:
        return f'<code class="hermes-tex-error">{escape(source)}</code>'
    return f'<span class="{kind}"><span class="hermes-mml" style="display: none">{mathml}</span>{fallback}</span>'


def _mathml(tex: str, display: bool) -> str | None:
    if len(tex) > MATH_LONGEST or _depth(tex) > MATH_DEEPEST:
        return None
    from latex2mathml.converter import convert

    try:
        mathml = convert(tex, display="block" if display else "inline")
    except Exception:  # any TeX the converter can't read (or a recursion it can't finish): shown as source
        return None
    return nh3.clean(mathml, tags=_MATH_TAGS, attributes=_MATH_ATTRIBUTES, url_schemes=set(), strip_comments=True)


def _depth(tex: str) -> int:
    depth = deepest = 0
    for ch in tex:
        if ch in "{[(":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "}])":
            depth -= 1
    return deepest


_md = _SafeMarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
_md.enable(["table", "strikethrough"])
_md.use(dollarmath_plugin, **MATH_OPTIONS)
_md.add_render_rule("image", _image_as_link)
for _kind in ("math_inline", "math_inline_double", "math_block"):
    _md.add_render_rule(_kind, _math_placeholder)


def sanitize_html(fragment: str) -> str:
    """The last line of defence for any HTML that carries untrusted text."""
    return nh3.clean(fragment, tags=_TAGS, attributes=_ATTRIBUTES, url_schemes=_URL_SCHEMES,
                     filter_style_properties=_STYLES, link_rel="noopener noreferrer nofollow", strip_comments=True)


def render_markdown(source: str) -> str:
    """Safe HTML for a piece of (possibly incomplete, streaming) Markdown."""
    env: dict[str, Any] = {}
    clean = sanitize_html(_md.render(source.replace("\ue000", "").replace("\ue001", ""), env))
    formulas = env.get("math")
    if not formulas:
        return clean
    # The formulas go in after nh3, as MathML cleaned by its own allowlist (the page's stays without it).
    return _MATH_SLOT.sub(lambda m: math_html(*formulas[int(m.group(1))]), clean)


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
