"""What a notebook saved at any moment of a turn keeps: the output beside the live view holds the turn as
far as it went (views/snapshot.py), before the first token, mid-answer, while an approval waits; at the
end it is blank and the live view's output is the final rendering. A real kernel, a view played by
tests/frontend.py."""
from __future__ import annotations

import math
from pathlib import Path

from hermes_jupyter.views import snapshot

from .frontend import Frontend
from .kernel import Execution, Kernel, fresh_kernel_fixtures

SCRIPT = Path(__file__).parent / "scripts" / "engine.yaml"
SETUP = f"%load_ext hermes_jupyter\n%config Hermes.model = 'scripted:{SCRIPT}'\n%config Hermes.notebook = 'nb.ipynb'"
KEPT = "nb.hermes.json"

shared_kernel, kernel = fresh_kernel_fixtures(SETUP)


def saved_outputs(cell: Execution) -> tuple[dict, list[dict]]:
    """The saved-so-far output as first displayed, and its updates in order."""
    [first] = [m["content"] for m in cell.outputs if m["msg_type"] == "display_data"
               and "hermes-snapshot" in m["content"]["data"].get("text/html", "")]
    display_id = first["transient"]["display_id"]
    updates = [m["content"]["data"] for m in cell.outputs if m["msg_type"] == "update_display_data"
               and m["content"]["transient"]["display_id"] == display_id]
    return first["data"], updates


def turn_id(kernel: Kernel, name: str = "t") -> str:
    return kernel.run(f"print({name}.id)").stdout.strip()


def test_before_the_first_token_the_saved_output_names_the_turn_and_where_it_is_kept(kernel):
    cell = kernel.run("%hermes -o t gated story")
    first, _ = saved_outputs(cell)
    tid = turn_id(kernel)
    for text in (first["text/html"], first["text/plain"]):
        assert "gated story" in text and KEPT in text and f"%hermes /show {tid}" in text
    assert f"hermes-snapshot-{tid}" in first["text/html"]  # the class the live view hides it by
    kernel.run("t.cancel()")


def test_mid_answer_the_saved_output_grows_with_the_answer_at_a_linear_cost(kernel):
    view = Frontend(kernel, kernel.run("%hermes -o t steady story"))
    view.hello()
    view.final()
    kernel.pump(lambda: saved_outputs(view.cell)[1][-1] == {"text/plain": ""})  # blanked just after
    _first, updates = saved_outputs(view.cell)
    *during, last = updates
    assert last == {"text/plain": ""}  # the turn is over: its final rendering is the live view's output
    answer = kernel.run("print(len(t.text))")
    length = int(answer.stdout)
    assert "Lorem" in during[-1]["text/html"] and "Lorem" in during[-1]["text/plain"]
    growth = math.ceil(math.log(length / snapshot.FIRST, snapshot.GROWTH)) + 1
    assert len(during) <= growth + 2, f"{len(during)} snapshots for {length} characters"  # + its start, + a spare
    answers = [len(u["text/plain"]) for u in during]
    assert sum(answers) <= 4 * length  # all of them together: a few times the answer, not its square


def test_while_an_approval_waits_the_saved_output_shows_the_card(kernel, tmp_path):
    (tmp_path / "victim").mkdir()
    view = Frontend(kernel, kernel.run("%hermes -o t delete victim"))
    view.hello()
    view.wait_button("Deny")
    kernel.pump(lambda: any("rm -rf ./victim" in u.get("text/plain", "") for u in saved_outputs(view.cell)[1]))
    card = next(u for u in saved_outputs(view.cell)[1] if "rm -rf ./victim" in u.get("text/plain", ""))
    assert "rm -rf ./victim" in card["text/html"] and KEPT in card["text/plain"]
    view.click("Deny")
    assert "denied" in view.final()["text/html"]
    assert (tmp_path / "victim").exists()


def test_show_brings_a_turn_back_from_this_kernel_and_from_the_history(kernel):
    kernel.run("%hermes --wait -o t say hello")
    tid = turn_id(kernel)
    here = kernel.run(f"%hermes /show {tid}")
    [shown] = [m["content"]["data"] for m in here.outputs if m["msg_type"] == "display_data"]
    assert "Hello from the scripted model" in shown["text/html"]
    kernel.restart()  # a new kernel: it reads the turn from the history beside the notebook
    kernel.run(f"import os\nos.chdir({str(kernel.cwd)!r})\n{SETUP}")
    later = kernel.run(f"%hermes /show {tid}")
    [shown] = [m["content"]["data"] for m in later.outputs if m["msg_type"] == "display_data"]
    assert "Hello from the scripted model" in shown["text/html"] and "say hello" in shown["text/plain"]
    missing = kernel.run("%hermes /show nope-1")
    assert missing.reply["status"] == "error" and "No turn 'nope-1'" in missing.stderr + str(missing.reply)
