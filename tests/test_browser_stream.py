"""Streaming answers of every shape, live and saved, in JupyterLab and Notebook 7 (headless Chromium).

For each shape (short paragraphs, one long paragraph, a code block, a long table) the answer
streams with the turn's end held at a gate of the scripted model: the live view then shows the
whole answer, and its place and size are measured; once the gate opens the static rendering
replaces it, and must sit in the very same box (nothing jumps). Also: a page reloaded mid-turn,
the saved rendering of an untrusted notebook (styles stripped), and nbconvert's HTML.
Screenshots go to artifacts/screenshots/.
"""
from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

from hermes_jupyter.models.scripted import open_gate, wait_held
from hermes_jupyter.models.scripted.script import lorem

from .browser import (
    TIMEOUT_MS,
    VIEWPORT,
    cell_output,
    expect,
    open_notebook,
    requires_browser,
    run_cell,
    save,
    screenshot,
    write_notebook,
)
from .notebook7 import notebook7, open_in_notebook7, wait_ready  # noqa: F401  (fixture)

pytestmark = requires_browser

LONG = 60_000
CHUNK = 6
# Rows of the table shape: kept under 1,800 px, the height past which Notebook 7 puts an output that
# changes into a scroll box (its autoScrollOutputs setting), which a streaming widget never triggers.
ROWS = 60


def _paragraphs() -> str:
    paragraphs = lorem(420).split("\n\n")
    marked = [p.replace(" ", " *Rayleigh scattering* ", 1).replace(" ", " **much more** `blue` ", 3)
              for p in paragraphs]
    return "\n\n".join(marked) + "\n"


SHAPES = {
    "paragraphs": _paragraphs(),
    "one-paragraph": _paragraphs().replace("\n\n", " "),
    "code": "Here is the loader:\n\n```python\n" + "".join(
        f"def load_{i}(path: str) -> dict:\n    \"\"\"Part {i}.\"\"\"\n    return {{'rows': {i} * 2, 'path': path}}  # {i}\n"
        for i in range(30)) + "```\n",
    "table": "| id | region | growth | note |\n|---:|---|---:|---|\n" + "".join(
        f"| {i} | north-{i % 7} | {i * 1.5:.1f}% | *ok* `{i}` |\n" for i in range(ROWS)),
}
LAST_WORDS = {"paragraphs": None, "one-paragraph": None, "code": "'path': path}  # 29", "table": None}


@pytest.fixture(scope="module")
def script(tmp_path_factory) -> Path:
    """The scripted model's answers: one rule per shape, each held before its end at a gate."""
    rules = [{"match": f"[{name}]", "steps": [{"text": text, "chunk_size": CHUNK, "delay": 0.004,
                                                "gate": {"name": f"end-{name}", "after": math.ceil(len(text) / CHUNK)}}]}
             for name, text in SHAPES.items()]
    rules.append({"match": "[reload]", "steps": [{"lorem": 700, "chunk_size": 8, "delay": 0.004,
                                                   "gate": {"name": "reload", "after": 60}}]})
    rules.append({"match": "[rich]", "steps": [
        {"reasoning": "The user wants the colour physics; a quick check first.",
         "tool_calls": [{"name": "terminal", "arguments": {"command": "echo wavelength-check"}}]},
        {"text": "The sky is blue because of *Rayleigh scattering*:\n\n```python\ndef intensity(nm):\n"
                 "    return (550 / nm) ** 4  # blue wins\n```\n\n| colour | nm |\n|---|---:|\n| blue | 450 |\n"
                 "| red | 700 |\n\nThe tool said: {tool_result}"}]})
    rules.append({"default": True, "steps": [{"text": "ok"}]})
    path = tmp_path_factory.mktemp("script") / "shapes.yaml"
    path.write_text(yaml.safe_dump({"model": "shapes-model", "context_length": 128000, "rules": rules}))
    return path


def setup_cell(script: Path) -> str:
    return (f"%load_ext hermes_jupyter\n%config Hermes.model = 'scripted:{script}'\n"
            f"from hermes_jupyter.models.scripted import shared_server\nprint(shared_server({str(script)!r}).base_url)")


@pytest.fixture(params=["lab", "notebook7"])
def app(request):
    """The server and how to open a notebook in it: JupyterLab 4, then Notebook 7."""
    if request.param == "lab":
        return "lab", request.getfixturevalue("jupyterlab"), open_notebook
    return "nb7", request.getfixturevalue("notebook7"), open_in_notebook7


def start(page, app, name: str, cells: list[str], script: Path) -> str:
    """Write and open a notebook, run its setup cell; the scripted model's URL."""
    _, server, opener = app
    write_notebook(server.root, name, [setup_cell(script), *cells])
    opener(page, server, name)
    run_cell(page, 0)
    expect(cell_output(page, 0)).to_contain_text("http://127.0.0.1:")
    return cell_output(page, 0).inner_text().strip().splitlines()[-1]


def box(locator) -> dict:
    """Where the turn sits in its cell (the page may scroll when a tall output is replaced)."""
    return locator.evaluate("el => { const r = el.getBoundingClientRect();"
                            " const c = el.closest('.jp-Cell').getBoundingClientRect();"
                            " return {x: r.x - c.x, y: r.y - c.y, width: r.width, height: r.height}; }")


def visible_text(locator) -> str:
    """What a reader sees (the live view's copy buttons aside)."""
    return locator.evaluate("el => { const copy = [...el.querySelectorAll('.hermes-copy')];"
                            " copy.forEach(b => b.style.display = 'none'); const text = el.innerText;"
                            " copy.forEach(b => b.style.display = ''); return text; }")


@pytest.fixture(scope="module", params=["lab", "notebook7"])
def shapes_page(request, chromium_browser, script):
    """One notebook per frontend for every shape: a cell per shape after the set-up and the agent's
    first turn (which pays its start-up), so the shape tests share one page, kernel and warm agent."""
    label = "lab" if request.param == "lab" else "nb7"
    server = request.getfixturevalue("jupyterlab" if label == "lab" else "notebook7")
    opener = open_notebook if label == "lab" else open_in_notebook7
    expect.set_options(timeout=TIMEOUT_MS)
    context = chromium_browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    cells = ["%hermes --plain --wait warm up", *(f"%hermes [{shape}]" for shape in SHAPES)]
    url = start(page, (label, server, opener), f"shapes-{label}.ipynb", cells, script)
    run_cell(page, 1, timeout=LONG)
    yield label, page, url
    page.evaluate("() => window.jupyterapp?.serviceManager.sessions.shutdownAll()")
    context.close()


@pytest.mark.parametrize("shape", list(SHAPES))
def test_each_shape_streams_and_ends_in_the_same_box(shapes_page, shape):
    label, page, url = shapes_page
    index = 2 + list(SHAPES).index(shape)
    run_cell(page, index)
    out = cell_output(page, index)
    live = out.locator(".hermes-turn.hermes-live")
    expect(live.locator(".hermes-answer")).to_be_visible(timeout=LONG)
    assert wait_held(url, f"end-{shape}")  # everything streamed; the turn's end is held
    text = SHAPES[shape]
    last = LAST_WORDS[shape] or " ".join(text.split()[-5:])  # the very end of the answer
    if shape == "table":
        expect(live.locator("table tbody tr")).to_have_count(ROWS, timeout=LONG)
    else:
        expect(live.locator(".hermes-answer")).to_contain_text(last, timeout=LONG)
    shown = visible_text(live.locator(".hermes-answer"))
    assert not re.search(r"\*\w|\w\*|`", shown), "a Markdown marker shows as text"
    if shape == "code":
        expect(live.locator("pre.hermes-code .k").first).to_be_visible()  # highlighted while it streams
        live.locator("pre.hermes-code").hover()
        expect(live.locator("pre.hermes-code button.hermes-copy")).to_be_visible()
    screenshot(page, f"stream-{shape}-{label}-live")
    before = box(out.locator(".hermes-turn"))
    assert open_gate(url, f"end-{shape}") == 1
    final = out.locator(".hermes-turn:not(.hermes-live)")
    expect(final).to_be_visible(timeout=LONG)
    expect(out.locator(".hermes-live")).to_have_count(0)
    if shape == "code":  # the one line a finished answer with Python blocks gains: the /cells command
        hint = final.locator(".hermes-notice", has_text="/cells")
        expect(hint).to_contain_text(re.compile(r"%hermes /cells \d+ puts it into new cells"))
        hint.evaluate("el => el.remove()")
    after = box(final)
    for key in ("x", "y", "width"):
        assert abs(after[key] - before[key]) <= 1, (key, before, after)
    assert abs(after["height"] - before["height"]) <= 2, (before, after)  # nothing jumps when the turn ends
    assert visible_text(final.locator(".hermes-answer")) == shown
    if shape == "code":
        expect(final.locator("pre.hermes-code .k").first).to_be_visible()
        color = final.locator("pre.hermes-code .k").first.evaluate("el => getComputedStyle(el).color")
        assert color != final.locator("pre.hermes-code").evaluate("el => getComputedStyle(el).color")
    if shape == "table":
        expect(final.locator("table tbody tr")).to_have_count(ROWS)
        border = final.locator("td").first.evaluate("el => getComputedStyle(el).borderTopStyle")
        assert border == "solid"
    screenshot(page, f"stream-{shape}-{label}-done")


def test_a_page_reloaded_mid_turn_shows_the_turn_so_far(app, page, script):
    label, server, _ = app
    name = f"reload-{label}.ipynb"
    url = start(page, app, name, ["%hermes [reload]"], script)
    run_cell(page, 1)
    out = cell_output(page, 1)
    assert wait_held(url, "reload")
    expect(out.locator(".hermes-live .hermes-answer")).to_contain_text("Lorem", timeout=LONG)
    save(page)
    assert "application/vnd.jupyter.widget-view+json" in (server.root / name).read_text()
    page.reload()
    wait_ready(page, name)
    out = cell_output(page, 1)
    live = out.locator(".hermes-live .hermes-answer")
    expect(live).to_contain_text("Lorem", timeout=LONG)  # the turn so far, from the kernel
    screenshot(page, f"reload-{label}-mid-turn")
    assert open_gate(url, "reload") == 1
    final = out.locator(".hermes-turn:not(.hermes-live)")
    expect(final).to_contain_text("done", timeout=LONG)
    expect(final.locator(".hermes-answer")).to_contain_text(lorem(700).split()[-1])
    screenshot(page, f"reload-{label}-done")


def run_headless(folder: Path, name: str, cells: list[str]) -> Path:
    """Execute a notebook as nbclient does (Run All with nobody watching) and save it: untrusted on opening."""
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells], metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}})
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(folder)}}).execute()
    path = folder / name
    nbformat.write(nb, path)
    return path


@pytest.fixture(scope="module")
def rich_notebook(tmp_path_factory, script) -> Path:
    """A notebook of one rich turn (reasoning, a tool, code, a table), run headless once for the module."""
    return run_headless(tmp_path_factory.mktemp("rich"), "rich.ipynb", [
        f"%load_ext hermes_jupyter\n%config Hermes.model = 'scripted:{script}'", "%hermes --wait [rich]"])


def test_an_untrusted_notebook_still_reads_well(app, page, rich_notebook):
    """Opened fresh from disk, a notebook is untrusted: the frontend strips <style> and inline styles."""
    label, server, opener = app
    name = f"untrusted-{label}.ipynb"
    shutil.copy(rich_notebook, server.root / name)
    saved = json.loads((server.root / name).read_text())
    assert any("hermes-turn" in "".join(o.get("data", {}).get("text/html", "")) for o in saved["cells"][1]["outputs"])
    opener(page, server, name)
    out = cell_output(page, 1)
    turn = out.locator(".hermes-turn")
    expect(turn).to_be_visible(timeout=LONG)
    expect(turn.locator("style")).to_have_count(0)  # stripped: what follows reads without our stylesheet
    expect(turn.locator("summary", has_text="Reasoning")).to_be_visible()
    expect(turn.locator("details summary", has_text="terminal")).to_be_visible()
    expect(turn.locator("pre.hermes-code")).to_contain_text("return (550 / nm) ** 4")
    expect(turn.locator("table td", has_text="blue")).to_be_visible()
    expect(turn.locator("meter")).to_have_count(1)
    assert turn.locator("meter").evaluate("el => el.getBoundingClientRect().width") > 40  # a gauge, not a dot
    screenshot(page, f"untrusted-{label}")
    run_cell(page, 0)  # run again: outputs made in this session are trusted
    run_cell(page, 1, timeout=LONG)
    expect(out.locator(".hermes-turn:not(.hermes-live) style")).to_have_count(1, timeout=LONG)
    screenshot(page, f"trusted-{label}")


def test_nbconvert_html_reads_well(page, rich_notebook, tmp_path):
    path = Path(shutil.copy(rich_notebook, tmp_path / "export.ipynb"))
    subprocess.run([sys.executable, "-m", "nbconvert", "--to", "html", str(path)], check=True, capture_output=True)
    page.goto(path.with_suffix(".html").as_uri())
    turn = page.locator(".hermes-turn")
    expect(turn).to_be_visible()
    expect(turn.locator("pre.hermes-code .k").first).to_be_visible()
    screenshot(page, "nbconvert-html")
    # What GitHub shows: the same HTML with every <style> and style attribute removed.
    page.evaluate("() => { document.querySelectorAll('.hermes-turn style').forEach(s => s.remove());"
                  " document.querySelectorAll('.hermes-turn [style]').forEach(e => e.removeAttribute('style')); }")
    expect(turn.locator("summary", has_text="Reasoning")).to_be_visible()
    screenshot(page, "nbconvert-html-unstyled")
