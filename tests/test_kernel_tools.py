"""The notebook toolset in a real kernel: variables the model sees, code it runs with approval.

What the model received is read from the scripted server's request log inside
the kernel (``shared_server(path).requests``), so the assertions are on the
exact tool messages the agent sent back to the model.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from .frontend import Frontend
from .kernel import Kernel, fresh_kernel_fixtures

SCRIPT = Path(__file__).parent / "scripts" / "kernel_tools.yaml"
SECRET = "hunter2-very-secret-value"
SETUP = f"""\
%load_ext hermes_jupyter
%config Hermes.model = 'scripted:{SCRIPT}'
import json as _json
from hermes_jupyter.models.scripted import shared_server as _shared_server

def _tool_results(name):
    '''Every result of tool `name` the model received, in order, parsed.'''
    found, seen = [], set()
    for body in _shared_server({str(SCRIPT)!r}).requests:
        messages = body.get("messages") or []
        calls = {{c["id"]: c["function"]["name"] for m in messages if m.get("role") == "assistant"
                 for c in (m.get("tool_calls") or [])}}
        for m in messages:
            if m.get("role") == "tool" and calls.get(m.get("tool_call_id")) == name and m["tool_call_id"] not in seen:
                seen.add(m["tool_call_id"])
                found.append(_json.loads(m["content"]))
    return found
"""
DATA = f"""\
import pandas as pd, numpy as np
sales = pd.DataFrame({{"region": ["north", "south", "east"], "units": [3, 5, 7]}})
grid = np.arange(12).reshape(3, 4)
api_key = {SECRET!r}
"""


shared_kernel, kernel = fresh_kernel_fixtures(SETUP, DATA)


def tool_results(kernel: Kernel, name: str) -> list[dict]:
    cell = kernel.run(f"print(_json.dumps(_tool_results({name!r})))")
    assert cell.reply["status"] == "ok", cell.error
    return json.loads(cell.stdout)


def everything_the_model_got(kernel: Kernel) -> str:
    return kernel.run(f"print(_json.dumps(_shared_server({str(SCRIPT)!r}).requests))").stdout


def ask(kernel: Kernel, line: str) -> Frontend:
    """Run a %hermes cell and connect a view to its widget, as a browser does (tests/frontend.py)."""
    view = Frontend(kernel, kernel.run(line))
    view.hello()
    return view


def test_a_dataframe_is_listed_and_described_and_secrets_stay_hidden(kernel):
    listed = kernel.run("%hermes --wait --plain list my variables")
    assert "Listed." in listed.stdout
    [variables] = tool_results(kernel, "notebook_list_variables")
    entries = {v["name"]: v for v in variables["variables"]}
    assert entries["sales"] == {"name": "sales", "type": "pandas.DataFrame", "shape": "3 rows x 2 columns"}
    assert entries["grid"]["shape"] == "shape (3, 4), dtype int64"
    assert set(entries) == {"sales", "grid"}  # no modules (pd, np), no IPython names, no api_key
    assert "1 variable(s)" in variables["hidden"]

    kernel.run("%hermes --wait --plain describe sales")
    [described] = tool_results(kernel, "notebook_describe_variable")
    text = described["description"]
    assert text.startswith("pandas.DataFrame: 3 rows x 2 columns")
    assert "units: int64, 0 nulls" in text and "north" in text  # dtypes, nulls, head()
    assert "mean     5.0" in text  # describe()

    kernel.run("%hermes --wait --plain describe the key")
    [refused] = tool_results(kernel, "notebook_describe_variable")[1:]
    assert "hidden" in refused["error"]

    kernel.run("%hermes --wait --plain --approvals allow leak the key")
    [leak] = tool_results(kernel, "notebook_run_python")
    assert leak["output"] == "the key is [REDACTED]\n"
    assert SECRET not in everything_the_model_got(kernel)


def test_an_approved_run_defines_a_variable_and_shows_a_figure(kernel):
    view = ask(kernel, "%hermes -o t make a total")
    part, _ = view.wait_button("Allow once")
    assert "Run Python in your kernel" in view.parts[part] and "total = int(sales[" in view.parts[part]
    view.click("Allow once")
    html = view.final()["text/html"]
    assert "allowed once</b> (by you)" in html and "total is 15" in html
    assert kernel.run("print(total)").stdout == "15\n"  # the next user cell sees it
    [result] = tool_results(kernel, "notebook_run_python")
    assert result == {"status": "ok", "output": "total is 15\n", "result": "30"}

    view = ask(kernel, "%hermes -o p plot it")
    view.click("Allow session")
    html = view.final()["text/html"]
    assert '<img src="data:image/png;base64,' in html and "plotted" in html
    shown = json.dumps([batch["ops"] for batch in view.batches])
    assert '<img src=\\"data:image/png;base64,' in shown  # the live view showed it while the turn ran
    after = kernel.run("print('after')")  # nothing of the agent's run leaks into the user's cells
    assert after.stdout == "after\n"
    assert not [m for m in after.outputs if m["msg_type"] in ("display_data", "execute_result")]
    plot = tool_results(kernel, "notebook_run_python")[-1]
    assert plot == {"status": "ok", "output": "plotted\n[figure shown: image/png]\n"}

    # "Allow session" above: the next run in this session is not asked about.
    html = ask(kernel, "%hermes make a total again").final()["text/html"]
    assert "total is 15" in html and "Approval" not in html


def test_a_denied_run_changes_nothing(kernel):
    kernel.run("total = 'untouched'")
    view = ask(kernel, "%hermes -o t make a total")
    view.click("Deny")
    html = view.final()["text/html"]
    assert "denied</b> (by you)" in html
    assert kernel.run("print(total)").stdout == "untouched\n"
    [result] = tool_results(kernel, "notebook_run_python")
    assert result["status"] == "denied" and "did not run" in result["message"]


def test_an_exception_is_reported_to_the_model(kernel):
    # --wait: the cell blocks on its turn, so it runs the agent's code itself (no deadlock).
    cell = kernel.run("%hermes --wait --plain --approvals allow break things")
    assert "It failed." in cell.stdout
    assert "ZeroDivisionError: division by zero" in cell.stdout  # shown to the user too
    [result] = tool_results(kernel, "notebook_run_python")
    assert result["status"] == "error"
    assert result["error"] == "ZeroDivisionError: division by zero"
    assert result["output"] == "before the error\n"
    trace = result["traceback"]
    assert 'File "<agent code>", line 2, in helper' in trace and "notebook/runner" not in trace and "notebook/capture" not in trace


def test_the_stop_button_interrupts_a_long_run(kernel):
    view = ask(kernel, "%hermes -o t --approvals allow spin forever")
    view.wait_text("spinning")  # in the live view's output area
    # The main thread is busy in the agent's code; the click still gets through.
    view.click("Stop")
    html = view.final()["text/html"]
    assert "cancelled" in html
    assert kernel.run("print(t.status)").stdout == "cancelled\n"
    # The session keeps what the agent got back: the model sees it on the next turn.
    kept = kernel.run("print([m['content'] for m in t.session.messages if m['role'] == 'tool'][-1])")
    result = json.loads(kept.stdout)
    assert result["status"] == "interrupted" and result["output"] == "spinning\n"
    assert kernel.run("print(6 * 7)").stdout == "42\n"  # the kernel is fine


def test_a_kernel_interrupt_stops_the_run_and_the_model_is_told(kernel):
    cell = kernel.send("%hermes --plain -o t --approvals allow spin forever")
    # The run's own output (the approval text shows the code, which says 'spinning' too).
    kernel.pump(lambda: "spinning" in cell.stdout.splitlines(), timeout=60)
    kernel.manager.interrupt_kernel()
    kernel.pump(lambda: "-- done" in cell.stdout, timeout=60)
    [result] = tool_results(kernel, "notebook_run_python")
    assert result["status"] == "interrupted" and result["output"] == "spinning\n"
    assert "interrupted by the user" in result["message"]
    assert kernel.run("print(t.status)").stdout == "done\n"


def test_agent_code_waits_for_a_running_cell(kernel):
    # The turn starts from a thread while the async cell below runs. While that cell
    # awaits, the event loop is free, yet the agent's code must not run inside it.
    kernel.run("import asyncio, threading, hermes_jupyter\n"
               "from hermes_jupyter.notebook.runner import runner_for\n"
               "runner, log, go, turns = runner_for(get_ipython()), [], threading.Event(), []\n"
               "def ask():\n"
               "    go.wait(60)\n"
               "    turns.append(hermes_jupyter.get_engine().submit('record order', approvals='allow'))\n"
               "threading.Thread(target=ask, daemon=True).start()")
    cell = kernel.run("log.append('cell start')\n"
                      "go.set()\n"
                      "for _ in range(1200):  # wait until the agent's code is queued\n"
                      "    if turns and runner._pending:\n"
                      "        break\n"
                      "    await asyncio.sleep(0.05)\n"
                      "log.append('agent code queued' if runner._pending else 'nothing queued')\n"
                      "for _ in range(200):  # many turns of the event loop: a chance to run it, wrongly\n"
                      "    await asyncio.sleep(0)\n"
                      "turns[0].wait_for(lambda: any(e.kind == 'status' for e in turns[0].events), 30)\n"
                      "log.append('cell end')", timeout=90)
    assert cell.reply["status"] == "ok", cell.error
    done = kernel.run("turns[0].wait(60)\nprint(log, turns[0].status)")
    assert done.stdout == "['cell start', 'agent code queued', 'cell end', 'agent'] done\n"
    waited = kernel.run("print([e.text for e in turns[0].events if e.kind == 'status'])")
    assert "Waiting for the running cell to finish" in waited.stdout


def test_vars_attaches_summaries_to_the_prompt(kernel):
    cell = kernel.run("%hermes --wait --plain --vars sales,grid look at attached")
    assert "I was given: look at attached" in cell.stdout
    sent = everything_the_model_got(kernel)
    assert "### sales" in sent and "3 rows x 2 columns" in sent and "### grid" in sent
    for line, message in [("%hermes --vars nope look at attached", "no variable named nope"),
                          ("%hermes --vars api_key look at attached", "looks like a secret")]:
        bad = kernel.run(line)
        assert bad.reply["status"] == "error"
        assert bad.stderr.startswith("UsageError: ") and message in bad.stderr


def test_read_cells_reads_the_saved_notebook(kernel, tmp_path):
    notebook = tmp_path / "analysis.ipynb"
    notebook.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "markdown", "metadata": {}, "source": ["# Sales\n", "by region"]},
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
         "source": f"token = {SECRET!r}\nsales.groupby('region').sum()"},
    ]}))
    kernel.run(f"%config Hermes.notebook = {str(notebook)!r}")
    kernel.run("%hermes --wait --plain read my cells")
    [result] = tool_results(kernel, "notebook_read_cells")
    assert "analysis.ipynb" in result["source"] and result["total"] == 2
    assert result["cells"][0] == {"index": 0, "type": "markdown", "source": "# Sales\nby region"}
    assert "sales.groupby('region').sum()" in result["cells"][1]["source"]
    assert SECRET not in everything_the_model_got(kernel)


# ----- in-process: what the model gets is bounded, secrets are recognised ---------------------------

@pytest.mark.parametrize("name,secret", [
    ("api_key", True), ("OPENAI_API_KEY", True), ("githubToken", True), ("db_password", True),
    ("credentials", True), ("aws_secret", True), ("key", True), ("apikey", True), ("api", True),
    ("tokenizer", False), ("max_tokens", False), ("monkey", False), ("capital", False),
    ("keyboard_layout", False), ("sales", False), ("df2", False),
])
def test_secret_looking_names(name, secret):
    from hermes_jupyter.notebook.tools import secret_name
    assert secret_name(name) is secret


def test_a_value_that_is_a_key_is_secret_but_text_mentioning_one_is_not():
    from hermes_jupyter.notebook.tools import looks_secret
    assert looks_secret("x", "sk-proj-abc123def456ghi789jkl012mno345")
    assert not looks_secret("notes", "set api_key='sk-proj-abc123def456ghi789jkl012mno345' later")
    assert not looks_secret("path", "data/rentals-2024.csv")


def test_descriptions_of_huge_objects_are_bounded():
    import numpy as np
    import pandas as pd

    from hermes_jupyter.notebook.tools import OUTPUT_CHARS, describe, shape_of

    huge = [0] * 10_000_000
    text = describe(huge)
    assert text.startswith("list: length 10000000") and len(text) <= OUTPUT_CHARS
    assert shape_of(huge) == "length 10000000"
    array = np.zeros(20_000_000, dtype=np.int8)
    text = describe(array)
    assert "min 0, max 0, mean 0.0 (on a sample of 1,000,000 elements)" in text and len(text) <= OUTPUT_CHARS
    frame = pd.DataFrame({"a": np.arange(1_200_000, dtype=np.int32), "b": np.ones(1_200_000, dtype=np.int8)})
    text = describe(frame)
    assert "describe() (on a sample of 100,000 rows):" in text and len(text) <= OUTPUT_CHARS
    wide = pd.DataFrame(np.zeros((3, 300)), columns=[f"column_{i}" for i in range(300)])
    assert "… 260 more columns" in describe(wide)
    assert len(describe("x" * 1_000_000)) <= OUTPUT_CHARS
    assert len(describe(10 ** 5000)) <= OUTPUT_CHARS  # an int too long for str() by default


def test_bounded_text_keeps_the_start_and_the_end():
    from hermes_jupyter.notebook.capture import BoundedText

    text = BoundedText(head=10, tail=5)
    for i in range(1000):
        text.add(f"{i},")
    kept = text.text()
    assert kept.startswith("0,1,2,3,4,") and kept.endswith(",999,")
    assert f"[… {len(''.join(f'{i},' for i in range(1000))) - 15} characters omitted …]" in kept


def test_code_outputs_render_safely():
    from hermes_jupyter.notebook.outputs import outputs_html

    html = outputs_html([
        {"output_type": "stream", "name": "stdout", "text": "<b>not bold</b>\n"},
        {"output_type": "display_data", "data": {"text/html": "<table><tr><td onclick='x()'>1</td></tr></table>"
                                                              "<script>alert(1)</script>"}},
        {"output_type": "display_data", "data": {"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"}},
        {"output_type": "display_data", "data": {"image/png": "\" onerror=\"alert(1)", "text/plain": "bad"}},
        {"output_type": "clear_output"},
        {"output_type": "stream", "name": "stdout", "text": "after the clear\n"},
    ])
    assert "after the clear" in html and "not bold" not in html  # only what follows the last clear
    html = outputs_html([
        {"output_type": "stream", "name": "stdout", "text": "<b>not bold</b>\n"},
        {"output_type": "display_data", "data": {"text/html": "<table><tr><td onclick='x()'>1</td></tr></table>"
                                                              "<script>alert(1)</script>"}},
        {"output_type": "display_data", "data": {"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"}},
        {"output_type": "display_data", "data": {"image/png": "\" onerror=\"alert(1)", "text/plain": "bad"}},
    ])
    assert "&lt;b&gt;not bold&lt;/b&gt;" in html
    assert "<td>1</td>" in html and "onclick" not in html and "<script" not in html
    assert '<img src="data:image/png;base64,iVBORw0KGgo="' in html
    assert "onerror" not in html and "bad" in html  # an invalid image falls back to its text


def test_the_tools_are_offered_whether_or_not_a_shell_existed_when_first_listed():
    """hermes-agent caches each tool's availability check for 30 s and the tool list it leads to for the
    whole process. A check on get_ipython() made an agent built before any shell existed (an engine in
    plain Python, a warm-up) hide the notebook tools from every later agent: the model's calls to
    notebook_run_python were then refused as unknown tools. A fresh process, so no shell exists yet."""
    import subprocess
    import sys

    code = """if True:
        import json
        from hermes_jupyter.agent import hosting
        hosting.ensure_installed()
        import model_tools
        from IPython import get_ipython
        from IPython.core.interactiveshell import InteractiveShell
        def names():
            return sorted(t["function"]["name"] for t in model_tools.get_tool_definitions(
                enabled_toolsets=["notebook"], quiet_mode=True))
        before = (get_ipython() is None, names())
        InteractiveShell.instance()
        print(json.dumps([before, names()]))
    """
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    (no_shell, before), after = json.loads(out.stdout.strip().splitlines()[-1])
    tools = ["notebook_describe_variable", "notebook_list_variables", "notebook_read_cells", "notebook_run_python"]
    assert no_shell and before == tools and after == tools
