"""Math in answers: $...$ and $$...$$ typeset as MathML by the kernel, the same live and saved, and inert."""
from __future__ import annotations

import re
import time

import pytest

from hermes_jupyter.safety.markdown import render_markdown
from hermes_jupyter.views.blocks import render_answer
from tests.test_views import assert_inert, live_strings


def test_inline_and_display_math_become_mathml_with_their_source_beside():
    html = render_answer("Growth $(r_{Jun}/r_{Jan})^{1/5} - 1$ per month.\n\n$$\n\\frac{a}{b}\n$$\n")
    assert html.count("<math") == 2 and '<math display="block">' in html and "<mfrac>" in html
    assert "<msub><mi>r</mi>" in html
    assert '<span class="hermes-tex">$(r_{Jun}/r_{Jan})^{1/5} - 1$</span>' in html  # for frontends without MathML


@pytest.mark.parametrize("text", ["Prices: $5 and $10.", "cost $ 3 $ each", "`$x$` is code", "a \\$x\\$ b"])
def test_money_code_and_escaped_dollars_are_not_math(text):
    assert "<math" not in render_markdown(text)


HOSTILE_TEX = [
    r"\href{javascript:alert(1)}{click}", r"\url{javascript:alert(1)}", r"\htmlData{onclick=alert(1)}{x}",
    r"\class{x}{y}", r"\style{position:fixed;top:0}{x}", r"\cssId{a}{b}", r"\unicode{x}", r"\require{html}",
    "<script>alert(1)</script>", '"><img src=x onerror=alert(1)>', r"\text{<svg onload=alert(1)>}",
    r"\mathrm{" + "{" * 5000 + "x" + "}" * 5000 + "}", "x^" * 3000 + "y", r"\frac{" * 400 + "1" + "}{2}" * 400,
]


@pytest.mark.parametrize("tex", HOSTILE_TEX, ids=range(len(HOSTILE_TEX)))
def test_hostile_math_renders_inert_live_and_saved(tex):
    started = time.monotonic()
    text = f"Look: ${tex}$ and\n\n$$\n{tex}\n$$\n"
    saved = render_answer(text)
    assert_inert(saved)
    for shown in live_strings(text):
        assert_inert(shown)
    mathml = " ".join(re.findall(r"<math.*?</math>", saved, re.S))
    assert not re.search(r"\s(href|style|class|id|on\w+)=", mathml), mathml  # layout attributes only
    # TeX that makes links or HTML is never handed to a frontend's MathJax as $...$: it stays code.
    if re.search(r"\\(href|url|html|class|style|cssId|unicode|require)", tex):
        assert '<span class="hermes-tex">' not in saved and '<code class="hermes-tex' in saved  # MathJax skips code
    assert time.monotonic() - started < 10


def test_a_placeholder_written_by_the_model_is_just_dropped():
    html = render_markdown("a \ue0000\ue001 b $x$")
    assert html.count("<math") == 1 and "\ue000" not in html
