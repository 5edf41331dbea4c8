"""%hermes /cells, in process: which code becomes cells, how it is redacted, which turn is meant.

The extraction is a pure function (views/cells.py); the command runs here in an in-process
IPython shell (terminal IPython: the cells fill the next prompt) against the scripted model.
Delivery to real frontends: tests/test_kernel_cells.py (kernel) and tests/test_browser_cells.py.
"""
from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from IPython.core.error import UsageError

from hermes_jupyter.views.cells import BROKEN_NOTE, SECRET_NOTE, TurnSource, answer_cells, ran_cells

from .secrets_corpus import corpus

SCRIPT = Path(__file__).parent / "scripts" / "cells.yaml"


def source(answer: str = "", runs: tuple[str, ...] = (), messages: list[dict] | None = None) -> TurnSource:
    return TurnSource("main", 3, answer, runs, messages or [])


def bodies(cells: list[str]) -> list[str]:
    """The code of each cell, without its header comment(s)."""
    return ["\n".join(line for line in c.splitlines() if not line.startswith("# hermes:")) for c in cells]


def parses(code: str) -> bool:
    try:
        ast.parse(code)
    except SyntaxError:
        return False
    return True


def test_python_blocks_become_cells_with_a_header_and_others_are_counted():
    answer = ("Intro\n\n````python\nx = '''\n```\nnot a fence end\n'''\n````\n\n"
              "~~~ py title=demo\ny = 2\n~~~\n\n```bash\nrm -rf /\n```\n\n```sql\nselect 1\n```\n\n"
              "```\nls\n```\n\n    indented = True\n\n- a list\n  ```python3\n  z = 3\n  ```\n\n```python\n\n```\n")
    made = answer_cells(source(answer))
    assert [c.splitlines()[0] for c in made.cells] == [
        f"# hermes: session 'main', turn 3 (block {i} of 3)" for i in (1, 2, 3)]
    assert bodies(made.cells) == ["x = '''\n```\nnot a fence end\n'''", "y = 2", "z = 3"]
    assert made.skipped_text() == "1 bash block; 1 sql block; 2 blocks without a language"
    assert made.redacted == 0
    for cell in made.cells:
        ast.parse(cell)


def test_no_python_block_gives_no_cell():
    assert answer_cells(source("Only `x = 1` inline, and ```\nplain\n```")).cells == []


def run_call(call_id: str, code: str, status: str) -> list[dict]:
    return [{"role": "assistant", "content": "", "tool_calls": [{"id": call_id, "type": "function", "function": {
                "name": "notebook_run_python", "arguments": json.dumps({"code": code})}}]},
            {"role": "tool", "tool_call_id": call_id, "content": json.dumps({"status": status})}]


def test_ran_keeps_the_runs_that_finished_in_their_order():
    messages = [{"role": "user", "content": "go"},
                *run_call("c1", "a = 1", "ok"), *run_call("c2", "1 / 0", "error"),
                *run_call("c3", "b = a + 1", "ok"), *run_call("c4", "rm()", "denied"),
                *run_call("other-turn", "c = 3", "ok")]
    made = ran_cells(source(runs=("c1", "c2", "c3", "c4", "gone"), messages=messages))
    assert bodies(made.cells) == ["a = 1", "b = a + 1"]
    assert made.cells[1].startswith("# hermes: session 'main', turn 3 (run 2 of 2)\n")
    assert made.skipped_text() == ("1 run that raised an error; 1 run that you denied; "
                                   "1 run no longer in the conversation (compressed)")


@pytest.mark.parametrize("quote,own_line", [("\'\'\'", True), ('"""', True), ('"""', False)])
def test_no_secret_of_the_corpus_reaches_a_cell_and_the_cells_still_parse(quote, own_line):
    planted = corpus(f"cells-{quote}-{own_line}")
    sep = "\n" if own_line else ""
    blocks = [f"value = r{quote}{sep}{p.line}{sep}{quote}\nprint(len(value))" for p in planted]
    answer = "\n\n".join(f"```python\n{b}\n```" for b in blocks)
    made = answer_cells(source(answer))
    assert len(made.cells) == len(planted) >= 60
    leaked = [p.shape for p, cell in zip(planted, made.cells, strict=True) if p.leaked_in(cell)]
    assert leaked == []  # a config line pasted right after a string's opening quotes included
    for p, block, cell in zip(planted, blocks, made.cells, strict=True):
        if p.shape in leaked:
            continue
        assert cell.splitlines()[1] == SECRET_NOTE, p.shape
        if BROKEN_NOTE not in cell and parses(block):
            ast.parse(cell)  # the placeholder sits inside the string literal
    broken = [p.shape for p, cell in zip(planted, made.cells, strict=True) if BROKEN_NOTE in cell]
    assert broken == ([] if own_line else ["cookie-session", "netrc"])  # they take the rest of the line
    # The same code through --ran (the code of a run, JSON in the conversation).
    messages = [m for i, b in enumerate(blocks) for m in run_call(f"r{i}", b, "ok")]
    ran = ran_cells(source(runs=tuple(f"r{i}" for i in range(len(blocks))), messages=messages))
    assert len(ran.cells) == len(planted)
    assert [p.shape for p, cell in zip(planted, ran.cells, strict=True) if p.leaked_in(cell)] == leaked


@pytest.fixture
def shell(tmp_path, monkeypatch):
    """Terminal IPython in process, its notebook named so the history file is beside it in tmp_path."""
    from IPython.core.interactiveshell import InteractiveShell

    monkeypatch.chdir(tmp_path)
    shell = InteractiveShell.instance()
    shell.run_line_magic("config", "Hermes.notebook = 'cells.ipynb'")
    shell.run_line_magic("config", f"Hermes.model = 'scripted:{SCRIPT}'")
    shell.run_line_magic("load_ext", "hermes_jupyter")
    yield shell
    shell.run_line_magic("unload_ext", "hermes_jupyter")
    shell.config.pop("Hermes", None)
    shell.rl_next_input = None


def test_the_command_fills_the_terminal_prompt_and_works_on_a_resumed_session(shell, capsys):
    with pytest.raises(UsageError, match="No finished turn in session 'main' yet"):
        shell.run_line_magic("hermes", "/cells")
    shell.run_line_magic("hermes", "--wait --plain -o t two blocks")
    hint = "Python code above: %hermes /cells 1 puts it into new cells below the cell you run it in\n"
    assert capsys.readouterr().out.endswith(hint)  # the finished turn names the command
    shell.run_line_magic("hermes", "--wait --plain --approvals allow run twice")
    assert "Python code above" not in capsys.readouterr().out  # no Python block in that answer
    shell.run_line_magic("hermes", "/cells t")
    assert capsys.readouterr().out == ("[hermes] 2 cells from session 'main', turn 1: in the next prompt (terminal "
                                       "IPython has no cells) (skipped: 1 bash block; 1 block without a language)\n")
    first = shell.rl_next_input
    # `ipython --simple-prompt` (Emacs, TERM=dumb) has no prompt to fill: the code is printed to copy (found by a newcomer).
    shell.rl_next_input = None
    shell.simple_prompt = True
    try:
        shell.run_line_magic("hermes", "/cells t")
    finally:
        del shell.simple_prompt
    shown = capsys.readouterr().out
    assert shown.startswith("[hermes] 2 cells from session 'main', turn 1, to copy (") and shell.rl_next_input is None
    assert shown.endswith(first + "\n")
    assert bodies(first.split("\n\n")) == [
        "squares = [n * n for n in range(5)]", 'total = sum(squares)\nprint("total of squares:", total)']
    shell.run_line_magic("hermes", "/cells --ran")  # the last finished turn: 2
    ran = shell.rl_next_input
    assert ran.startswith("# hermes: session 'main', turn 2 (run 1 of 2)\nbase = 20\n")
    namespace: dict = {}
    exec(ran, namespace)  # the two runs, without the one that raised: what the agent left in the kernel
    assert (namespace["base"], namespace["result"]) == (20, 42)
    turn_id = shell.user_ns["t"].id

    # A new kernel (the extension loaded again) resumes the session from the history file.
    shell.run_line_magic("unload_ext", "hermes_jupyter")
    shell.run_line_magic("load_ext", "hermes_jupyter")
    shell.rl_next_input = None
    shell.run_line_magic("hermes", "/cells 1")
    assert shell.rl_next_input == first
    shell.run_line_magic("hermes", f"/cells {turn_id}")
    assert shell.rl_next_input == first
    shell.run_line_magic("hermes", "/cells 2 --ran")
    assert shell.rl_next_input == ran


@pytest.mark.parametrize("line,message", [
    ("/cells 9", "Session 'main' has 2 turns: there is no turn 9"),
    ("/cells 0", "there is no turn 0"),
    ("/cells nope", "No turn 'nope': not a variable holding a turn, nor a turn id"),
    ("/cells 1 2", r"/cells \[TURN\] \[--ran\]"),
    ("/cells --all", r"/cells \[TURN\] \[--ran\]"),
    ("/cells 2", r"session 'main', turn 2 has no Python code blocks"),
    ("/cells 1 --ran", r"session 'main', turn 1 has no code the agent ran in the kernel"),
])
def test_bad_requests_are_short_usage_errors(shell, line, message):
    shell.run_line_magic("hermes", "--wait --plain two blocks")
    shell.run_line_magic("hermes", "--wait --plain prose only")
    with pytest.raises(UsageError, match=message):
        shell.run_line_magic("hermes", line)
    assert shell.rl_next_input is None  # nothing inserted that was not asked for


def test_the_hint_names_the_session_of_a_turn_that_is_not_current(shell, capsys):
    from hermes_jupyter.views import static

    shell.run_line_magic("hermes", "--wait --plain -s other -o t two blocks")
    shell.run_line_magic("hermes", "/use main")
    bundle = static.bundle(shell.user_ns["t"])
    command = "%hermes -s other /cells 1 puts it into new cells"
    assert command in bundle["text/html"] and command in bundle["text/plain"]
    shell.run_line_magic("hermes", "-s other /cells 1")  # and that command works from the current session
    assert shell.rl_next_input.startswith("# hermes: session 'other', turn 1 (block 1 of 2)\n")


def test_a_running_turn_is_not_taken(shell):
    from hermes_jupyter.models.scripted import shared_server

    server = shared_server(str(SCRIPT))
    shell.run_line_magic("hermes", "--plain --no-wait -o t slow code")
    assert server.wait_held("slow")  # the answer is held back: the turn runs
    with pytest.raises(UsageError, match="turn 1 is still running; wait for it or %hermes /stop"):
        shell.run_line_magic("hermes", "/cells 1")
    with pytest.raises(UsageError, match="No finished turn in session 'main' yet"):
        shell.run_line_magic("hermes", "/cells")
    server.open_gate("slow")
    assert shell.user_ns["t"].wait(30)
    shell.run_line_magic("hermes", "/cells t")
    assert shell.rl_next_input == "# hermes: session 'main', turn 1 (block 1 of 1)\nslow = True"
