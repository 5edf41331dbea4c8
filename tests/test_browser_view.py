"""The live view in a real JupyterLab, in headless Chromium: what a user sees and clicks.

Screenshots of each state go to artifacts/screenshots/.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import yaml

from hermes_jupyter.models.scripted import open_gate, wait_held

from .browser import cell_output, expect, open_notebook, requires_browser, run_all, run_cell, screenshot, write_notebook

pytestmark = requires_browser

SCRIPT = Path(__file__).parent / "scripts" / "engine.yaml"
SETUP = f"%load_ext hermes_jupyter\n%config Hermes.model = 'scripted:{SCRIPT}'"
LONG = 60_000


def notebook(server, name, cells, page):
    write_notebook(server.root, name, [SETUP, *cells])
    open_notebook(page, server, name)
    run_cell(page, 0)


def test_answer_streams_then_becomes_static(jupyterlab, page):
    notebook(jupyterlab, "stream.ipynb", ["%hermes think first", "%hermes -o t long story"], page)
    run_cell(page, 1)
    out = cell_output(page, 1)
    expect(out.locator(".hermes-turn")).to_contain_text("The answer is 42.", timeout=LONG)
    expect(out).to_contain_text("Reasoning")
    # The finished turn's output is the static rendering itself, not a widget: it survives a save.
    expect(out.locator(".hermes-live")).to_have_count(0, timeout=LONG)
    expect(out.locator(".hermes-turn style")).to_have_count(1)
    screenshot(page, "01-answer-done")
    run_cell(page, 2)
    long_out = cell_output(page, 2)
    expect(long_out.locator(".hermes-live .hermes-answer")).to_contain_text("orem", timeout=LONG)
    first = long_out.inner_text()
    expect(long_out).not_to_have_text(first, timeout=LONG)  # still growing: streamed, not all at once
    screenshot(page, "02-streaming")
    long_out.get_by_role("button", name="Stop").click()
    expect(long_out.locator(".hermes-turn:not(.hermes-live)")).to_contain_text("cancelled", timeout=LONG)
    screenshot(page, "03-stopped")


def test_deny_then_allow_once(jupyterlab, page):
    victim = jupyterlab.root / "victim"
    victim.mkdir(exist_ok=True)
    notebook(jupyterlab, "approve.ipynb", ["%hermes delete victim", "%hermes delete victim"], page)
    run_cell(page, 1)
    out = cell_output(page, 1)
    expect(out.get_by_role("button", name="Deny")).to_be_visible(timeout=LONG)
    expect(out.get_by_role("button", name="Allow session")).to_be_visible()
    expect(out.locator(".hermes-countdown")).to_contain_text("denied automatically in")
    screenshot(page, "04-approval-card")
    out.get_by_role("button", name="Deny").click()
    expect(out.locator(".hermes-turn:not(.hermes-live)")).to_contain_text("denied", timeout=LONG)
    assert victim.exists()
    screenshot(page, "05-denied")
    run_cell(page, 2)
    out = cell_output(page, 2)
    out.get_by_role("button", name="Allow once").click(timeout=LONG)
    expect(out.locator(".hermes-turn:not(.hermes-live)")).to_contain_text("allowed once", timeout=LONG)
    assert not victim.exists()
    screenshot(page, "06-allowed")


def test_allow_once_in_a_waiting_cell(jupyterlab, page):
    """A --wait cell holds the kernel's main thread until the turn ends; its buttons still act at once."""
    victim = jupyterlab.root / "victim"  # the script's dangerous command: rm -rf ./victim
    victim.mkdir(exist_ok=True)
    notebook(jupyterlab, "approve-wait.ipynb", ["%hermes --wait delete victim"], page)
    run_cell(page, 1, wait=False)
    out = cell_output(page, 1)
    allow = out.get_by_role("button", name="Allow once")
    expect(allow).to_be_visible(timeout=LONG)
    expect(page.locator(".jp-Cell").nth(1).locator(".jp-InputPrompt")).to_have_text("[*]:")  # still running
    screenshot(page, "10-waiting-cell-approval")
    allow.click()
    expect(out.locator(".hermes-turn:not(.hermes-live)")).to_contain_text("allowed once", timeout=LONG)
    expect(page.locator(".jp-Cell").nth(1).locator(".jp-InputPrompt")).not_to_have_text("[*]:", timeout=LONG)
    assert not victim.exists()
    screenshot(page, "11-waiting-cell-allowed")


def test_clarify_card(jupyterlab, page):
    notebook(jupyterlab, "clarify.ipynb", ["%hermes ask me", "%hermes ask me"], page)
    run_cell(page, 1)
    out = cell_output(page, 1)
    expect(out.get_by_role("button", name="blue")).to_be_visible(timeout=LONG)
    screenshot(page, "07-clarify-card")
    out.get_by_role("button", name="blue").click()
    expect(out.locator(".hermes-turn:not(.hermes-live)")).to_contain_text("You chose", timeout=LONG)
    screenshot(page, "08-clarify-answered")
    run_cell(page, 2)
    out = cell_output(page, 2)
    field = out.get_by_placeholder("Or type an answer…")
    field.fill("teal, please")
    field.press("Enter")
    expect(out.locator(".hermes-turn:not(.hermes-live)")).to_contain_text("teal, please", timeout=LONG)


HOSTILE_TEXT = """Here is some *markdown* with hostile parts:

<script>window.__xss = 4</script>
<img src="x" onerror="window.__xss=5">
<svg><script>window.__xss=6</script></svg>
<a href="javascript:window.__xss=7">html link</a>
[md link](javascript:window.__xss=8) and [data link](data:text/html;base64,PHNjcmlwdD53aW5kb3cuX194c3M9OTwvc2NyaXB0Pg==)
![img](javascript:window.__xss=10)
<iframe src="javascript:window.__xss=11"></iframe>
<div onmouseover="window.__xss=12">hover</div>

```html"><script>window.__xss=13</script>
</code></pre><script>window.__xss=14</script>
```

| <img src=x onerror="window.__xss=15"> | *b |
|---|---|
| [c](javascript:window.__xss=16) | `<script>window.__xss=17</script>` |

Tool said: {tool_result}
"""


def test_hostile_model_and_tool_output_never_runs_script(jupyterlab, page, tmp_path):
    """The XSS corpus in the live view (held at a gate while it shows) and in the saved rendering."""
    command = ("printf '%s\\n' '<img src=x onerror=\"window.__xss=1\">' '<script>window.__xss=2</script>' "
               "'<svg onload=\"window.__xss=3\"></svg>'")
    steps = [{"tool_calls": [{"name": "terminal", "arguments": {"command": command}}]},
             {"text": HOSTILE_TEXT, "chunk_size": 7, "gate": {"name": "xss-end", "after": 10_000}}]
    script = tmp_path / "xss.yaml"
    script.write_text(yaml.safe_dump({"model": "xss-model", "context_length": 128000, "rules": [
        {"match": "xss please", "steps": steps}, {"default": True, "steps": [{"text": "ok"}]}]}))
    setup = (f"%load_ext hermes_jupyter\n%config Hermes.model = 'scripted:{script}'\n%config Hermes.approvals = 'allow'\n"
             f"from hermes_jupyter.models.scripted import shared_server\nprint(shared_server({str(script)!r}).base_url)")
    write_notebook(jupyterlab.root, "xss.ipynb", [setup, "%hermes xss please", "%hermes --wait xss please"])
    open_notebook(page, jupyterlab, "xss.ipynb")
    run_cell(page, 0)
    url = cell_output(page, 0).inner_text().strip().splitlines()[-1]
    page.evaluate("() => { window.__xss = undefined; }")
    run_cell(page, 1)
    out = cell_output(page, 1)
    assert wait_held(url, "xss-end")
    live = out.locator(".hermes-live")
    expect(live.locator(".hermes-answer")).to_contain_text("Tool said", timeout=LONG)  # all of it, live
    expect(live.locator("table")).to_be_visible()
    check_inert(out, page)
    screenshot(page, "09-xss-inert-live")
    assert open_gate(url, "xss-end") == 1
    expect(out.locator(".hermes-turn:not(.hermes-live)")).to_contain_text("Tool said", timeout=LONG)
    run_cell(page, 2, wait=False)
    assert wait_held(url, "xss-end")
    assert open_gate(url, "xss-end") == 1
    expect(cell_output(page, 2).locator(".hermes-turn:not(.hermes-live)")).to_contain_text("Tool said", timeout=LONG)
    for area in (out, cell_output(page, 2)):
        check_inert(area, page)
    screenshot(page, "09-xss-inert")


def check_inert(area, page) -> None:
    area.locator("text=hover").first.hover()
    links = area.locator("a")
    for i in range(links.count()):
        href = links.nth(i).get_attribute("href") or ""
        assert not href.lower().startswith(("javascript:", "data:")), href
        links.nth(i).click(modifiers=["Control"], no_wait_after=True)  # would run a script URL
    found = area.locator(".hermes-turn").locator("script, iframe, svg, object, embed, [onerror], [onload], [onmouseover]")
    assert found.count() == 0, found.first.evaluate("el => el.outerHTML")
    assert page.evaluate("window.__xss") is None


DEMOS = Path(__file__).resolve().parents[1] / "notebooks"


def test_run_all_brings_a_waiting_approval_into_view(jupyterlab, page):
    """Run All of the approvals demo: its `--wait` cell blocks on an approval while every cell below waits
    with [*]; the card is scrolled into view once, so its buttons are where the user looks."""
    name = "02-approvals-and-clarify.ipynb"
    shutil.copy(DEMOS / name, jupyterlab.root / name)
    shutil.copytree(DEMOS / "scripts", jupyterlab.root / "scripts", dirs_exist_ok=True)
    open_notebook(page, jupyterlab, name)
    cells = page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell")
    waiting = next(i for i in range(cells.count())
                   if cells.nth(i).locator(".jp-InputArea").inner_text().strip().endswith(
                       "%hermes --wait Please delete scratch/old-build."))
    run_all(page, wait=False)
    out = cell_output(page, waiting)
    deny = out.get_by_role("button", name="Deny")
    expect(deny).to_be_attached(timeout=LONG)
    expect(cells.last.locator(".jp-InputPrompt")).to_have_text("[*]:")  # the cells below wait for the click
    expect(deny).to_be_in_viewport()
    expect(out.get_by_role("button", name="Allow once")).to_be_in_viewport()
    screenshot(page, "12-run-all-approval-in-view")
    chip = page.locator("body > .hermes-waiting-list > .hermes-waiting")
    expect(chip).to_be_hidden()  # the card is in view: nothing more to say
    # The user scrolls back to the top to read: a chip says where a click is awaited.
    cells.first.evaluate("""cell => { for (let el = cell.parentElement; el; el = el.parentElement)
                                        if (el.scrollHeight > el.clientHeight) { el.scrollTop = 0; return; } }""")
    expect(deny).not_to_be_in_viewport()
    expect(chip).to_be_visible()
    expect(chip).to_have_text(f"⚠ Hermes is waiting for your approval in cell {waiting + 1}Show")
    screenshot(page, "12b-run-all-approval-chip")
    chip.get_by_role("button", name="Show").click()
    expect(deny).to_be_in_viewport()
    expect(chip).to_be_hidden()
    deny.click()
    expect(out.locator(".hermes-turn:not(.hermes-live)")).to_contain_text("denied", timeout=LONG)
    expect(cells.last.locator(".jp-InputPrompt")).to_have_text(re.compile(r"^\[\d+\]:$"), timeout=LONG)
    assert (jupyterlab.root / "scratch" / "notes.txt").exists()
    expect(chip).to_have_count(0)  # answered: the chip is gone
    screenshot(page, "13-run-all-finished")


def test_tool_cards_and_a_long_prompt_as_a_person_reads_them(jupyterlab, page, tmp_path):
    """A pasted 200 KB prompt shows its first lines and a fold; a tool card its code, highlighted, when unfolded."""
    from .test_tool_cards import SCRIPT as CARDS

    script = tmp_path / "cards.yaml"
    script.write_text(yaml.safe_dump(CARDS))
    pasted = "\n".join(f"{i:05d} region north sales {i * 7 % 100} growth, month over month" for i in range(4000))
    setup = f"%load_ext hermes_jupyter\n%config Hermes.model = 'scripted:{script}'\n%config Hermes.approvals = 'allow'"
    write_notebook(jupyterlab.root, "cards.ipynb", [setup, f"%%hermes cards please, with this log:\n{pasted}"])
    open_notebook(page, jupyterlab, "cards.ipynb")
    run_cell(page, 0)
    run_cell(page, 1)
    out = cell_output(page, 1)
    more = out.locator(".hermes-live .hermes-prompt-more > summary")
    expect(more).to_contain_text("… 3,993 more lines", timeout=LONG)
    expect(out.get_by_role("button", name="Line chart")).to_be_visible(timeout=LONG)  # held at the question
    more.click()
    rest = out.locator(".hermes-live .hermes-prompt-rest")
    expect(rest).to_contain_text("03999 region north sales 93 growth")  # the whole prompt, live
    assert rest.bounding_box()["height"] < 500  # in a box of its own that scrolls
    screenshot(page, "14a-long-prompt-live-unfolded")
    out.get_by_role("button", name="Line chart").click(timeout=LONG)
    saved = out.locator(".hermes-turn:not(.hermes-live)")
    expect(saved).to_contain_text("Done.", timeout=LONG)
    expect(saved.locator(".hermes-prompt-more")).to_contain_text("the whole prompt is in the history")
    assert out.bounding_box()["height"] < 900  # the prompt no longer fills pages
    card = saved.locator("details.hermes-tool", has=page.locator("summary", has_text="✓ notebook_run_python"))
    expect(card.locator("summary")).to_contain_text("code: labels = ['first', 'last'] (+2 lines)")
    card.locator("summary").click()
    code = card.locator("pre.hermes-code")
    expect(code).to_be_visible()
    assert code.inner_text().splitlines()[1] == "readings = {'north': [3, 5, 4], 'south': [7, 6, 8]}"
    expect(saved.locator("details.hermes-tool > summary", has_text="✓ clarify")).to_contain_text(
        "choices: Bar chart / Line chart / Heatmap by weekday")
    card.scroll_into_view_if_needed()
    screenshot(page, "14-tool-cards-and-long-prompt")


def test_a_request_does_not_pull_the_page_away_from_a_cell_being_typed_in(jupyterlab, page, tmp_path):
    """The card is not scrolled to while the user types in another cell; the chip says where it waits."""
    script = tmp_path / "typing.yaml"
    script.write_text(yaml.safe_dump({"model": "typing-model", "context_length": 128000, "rules": [
        {"match": "delete victim", "steps": [
            {"tool_calls": [{"name": "terminal", "arguments": {"command": "rm -rf ./victim"}}], "gate": "ask"},
            {"text": "Done."}]},
        {"default": True, "steps": [{"text": "ok"}]}]}))
    setup = (f"%load_ext hermes_jupyter\n%config Hermes.model = 'scripted:{script}'\n"
             f"from hermes_jupyter.models.scripted import shared_server\nprint(shared_server({str(script)!r}).base_url)")
    filler = [f"# a cell of the notebook, {i}\nx = {i}" for i in range(30)]
    write_notebook(jupyterlab.root, "typing.ipynb", [setup, "%hermes delete victim", *filler, "y = "])
    open_notebook(page, jupyterlab, "typing.ipynb")
    run_cell(page, 0)
    url = cell_output(page, 0).inner_text().strip().splitlines()[-1]
    run_cell(page, 1)
    assert wait_held(url, "ask")
    editor = page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell").last.locator(".cm-content")
    editor.click()
    page.keyboard.type("x + 1")
    assert open_gate(url, "ask") == 1
    out = cell_output(page, 1)
    deny = out.get_by_role("button", name="Deny")
    expect(deny).to_be_attached(timeout=LONG)
    chip = page.locator("body > .hermes-waiting-list > .hermes-waiting")
    expect(chip).to_have_text("⚠ Hermes is waiting for your approval in cell 2Show")
    expect(deny).not_to_be_in_viewport()
    expect(editor).to_be_focused()
    expect(editor).to_be_in_viewport()
    screenshot(page, "15-request-while-typing")
    chip.get_by_role("button", name="Show").click()
    expect(deny).to_be_in_viewport()
    deny.click()
    expect(out.locator(".hermes-turn:not(.hermes-live)")).to_contain_text("denied", timeout=LONG)
    expect(chip).to_have_count(0)
