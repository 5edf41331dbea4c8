"""Streaming at a chunk boundary and math, seen in JupyterLab and Notebook 7 (headless Chromium).

* A code block whose closing fence arrives in the same delta as the blank line after it: the prose
  after it is drawn as prose, outside the code box, while the turn is still running.
* Math is typeset while it streams, as MathML, the same as in the saved rendering: the output keeps
  its height at Done. A hostile formula stays inert. In an untrusted notebook (MathML and styles
  stripped by the frontend) the formula's TeX source shows, typeset by the frontend's MathJax.
Screenshots go to artifacts/screenshots/.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from hermes_jupyter.models.scripted import open_gate, wait_held

from .browser import cell_output, expect, open_notebook, requires_browser, run_cell, screenshot
from .notebook7 import notebook7, open_in_notebook7  # noqa: F401  (fixture)
from .test_browser_stream import LONG, box, run_headless, start, visible_text

pytestmark = requires_browser

CHUNK = 5
_OPENING = "Here:\n\n```python\nx = 1"
# Padded so that one streamed chunk is exactly the closing fence and the blank line after it.
FENCE = (_OPENING + " " * (-(len(_OPENING) + 1) % CHUNK) + "\n" + "```\n\n"
         + "After the block, prose.\n\nAnd a last paragraph.\n")
assert "```\n\n" in [FENCE[i:i + CHUNK] for i in range(0, len(FENCE), CHUNK)]

MATH = ("The monthly growth is $(r_{Jun}/r_{Jan})^{1/5} - 1$, about $4\\%$ here.\n\n"
        "$$\n\\sum_{i=1}^{n} i = \\frac{n(n+1)}{2}\n$$\n\n"
        "A hostile one stays inert: $\\href{javascript:alert(1)}{click}$ and $\\htmlData{x=1}{y}$.\n")


@pytest.fixture(params=["lab", "notebook7"])
def app(request):
    """The server and how to open a notebook in it: JupyterLab 4, then Notebook 7."""
    if request.param == "lab":
        return "lab", request.getfixturevalue("jupyterlab"), open_notebook
    return "nb7", request.getfixturevalue("notebook7"), open_in_notebook7


@pytest.fixture(scope="module")
def script(tmp_path_factory) -> Path:
    rules = [
        # A delta every 0.25 s: the live view flushes after each one (at most 0.14 s apart).
        {"match": "[fence]", "steps": [{"text": FENCE, "chunk_size": CHUNK, "delay": 0.25,
                                        "gate": {"name": "fence", "after": -(-len(FENCE) // CHUNK)}}]},
        {"match": "[math]", "steps": [{"text": MATH, "chunk_size": 7, "delay": 0.01,
                                       "gate": {"name": "math", "after": -(-len(MATH) // 7)}}]},
        {"default": True, "steps": [{"text": "ok"}]},
    ]
    path = tmp_path_factory.mktemp("script") / "boundaries.yaml"
    path.write_text(yaml.safe_dump({"model": "boundaries-model", "context_length": 128000, "rules": rules}))
    return path


def test_prose_after_a_fence_closed_with_its_blank_line_is_prose_before_done(app, page, script):
    label = app[0]
    url = start(page, app, f"fence-{label}.ipynb", ["%hermes [fence]"], script)
    run_cell(page, 1)
    out = cell_output(page, 1)
    live = out.locator(".hermes-turn.hermes-live .hermes-answer")
    assert wait_held(url, "fence")  # all of the answer streamed; the turn is not done
    expect(live).to_contain_text("And a last paragraph.", timeout=LONG)
    expect(live.locator("pre.hermes-code")).to_have_count(1)
    expect(live.locator("pre.hermes-code")).not_to_contain_text("After the block")
    expect(live.locator("p", has_text="After the block, prose.")).to_be_visible()
    assert "```" not in visible_text(live)
    screenshot(page, f"fence-boundary-{label}-live")
    assert open_gate(url, "fence") == 1
    final = out.locator(".hermes-turn:not(.hermes-live) .hermes-answer")
    expect(final.locator("p", has_text="After the block, prose.")).to_be_visible(timeout=LONG)
    screenshot(page, f"fence-boundary-{label}-done")


def test_math_is_typeset_live_as_saved_and_nothing_moves_at_done(app, page, script):
    label = app[0]
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    url = start(page, app, f"math-{label}.ipynb", ["%hermes [math]"], script)
    run_cell(page, 1)
    out = cell_output(page, 1)
    live = out.locator(".hermes-turn.hermes-live")
    assert wait_held(url, "math")
    expect(live.locator(".hermes-answer")).to_contain_text("stays inert", timeout=LONG)
    expect(live.locator(".hermes-mml > math")).to_have_count(5)  # typeset while the turn runs
    expect(live.locator("math[display=block]")).to_be_visible()
    assert live.locator("math").first.evaluate("el => el.getBoundingClientRect().height") > 10
    expect(live.locator(".hermes-tex").first).to_be_hidden()  # the TeX source is for frontends without MathML
    shown = visible_text(live.locator(".hermes-answer"))
    assert "$" not in shown and "\\frac" not in shown
    screenshot(page, f"math-{label}-live")
    before = box(out.locator(".hermes-turn"))
    assert open_gate(url, "math") == 1
    final = out.locator(".hermes-turn:not(.hermes-live)")
    expect(final).to_be_visible(timeout=LONG)
    expect(out.locator(".hermes-live")).to_have_count(0)
    after = box(final)
    screenshot(page, f"math-{label}-done")
    print(f"math turn height live {before['height']:.1f} px, saved {after['height']:.1f} px")
    assert abs(after["height"] - before["height"]) <= 2, (before, after)  # nothing jumps at Done
    assert abs(after["width"] - before["width"]) <= 1, (before, after)
    expect(final.locator(".hermes-mml > math")).to_have_count(5)  # (MathJax typesets the hidden TeX too: no matter)
    assert visible_text(final.locator(".hermes-answer")) == shown
    assert page.locator("a[href^='javascript'], [onclick], [href*='javascript:']").count() == 0
    final.locator(".hermes-math").nth(3).click()  # the \href formula: nothing to follow
    assert not dialogs


@pytest.fixture(scope="module")
def math_notebook(tmp_path_factory, script) -> Path:
    return run_headless(tmp_path_factory.mktemp("math"), "math.ipynb", [
        f"%load_ext hermes_jupyter\n%config Hermes.model = 'scripted:{script}'",
        f"from hermes_jupyter.models.scripted import shared_server, open_gate\nshared_server({str(script)!r}).open_gate('math')",
        "%hermes --wait [math]"])


def test_math_in_an_untrusted_notebook_shows_its_source_typeset_by_the_frontend(app, page, math_notebook):
    label, server, opener = app
    name = f"math-untrusted-{label}.ipynb"
    shutil.copy(math_notebook, server.root / name)
    opener(page, server, name)
    turn = cell_output(page, 2).locator(".hermes-turn")
    expect(turn).to_be_visible(timeout=LONG)
    expect(turn.locator("style")).to_have_count(0)  # stripped by the frontend's sanitizer
    expect(turn.locator(".hermes-mml math")).to_have_count(0)  # MathML too
    expect(turn.locator(".hermes-mml").first).to_be_hidden()  # its remains hidden by their inline style
    expect(turn.locator("span.hermes-tex").first).to_be_visible()
    expect(turn.locator("span.hermes-tex mjx-container").first).to_be_visible(timeout=LONG)  # MathJax typeset it
    expect(turn.locator("code.hermes-tex", has_text="\\href")).to_be_visible()  # never handed to MathJax
    assert page.locator(".hermes-turn a[href^='javascript']").count() == 0
    screenshot(page, f"math-untrusted-{label}")
