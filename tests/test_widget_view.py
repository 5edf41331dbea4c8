"""The live view in a real kernel: a view connects, reads the deltas, clicks, as a browser does (tests/frontend.py)."""
from __future__ import annotations

import json
import re
from pathlib import Path

from hermes_jupyter.models.scripted import open_gate, wait_held

from .frontend import Frontend
from .kernel import Kernel, fresh_kernel_fixtures

SCRIPT = Path(__file__).parent / "scripts" / "engine.yaml"
SETUP = f"%load_ext hermes_jupyter\n%config Hermes.model = 'scripted:{SCRIPT}'"


shared_kernel, kernel = fresh_kernel_fixtures(SETUP)


def ask(kernel: Kernel, line: str) -> Frontend:
    """Run a %hermes cell and connect a view to its widget."""
    view = Frontend(kernel, kernel.run(line))
    view.hello()
    return view


def test_answer_streams_then_the_view_becomes_the_static_rendering(kernel):
    cell = kernel.run("%hermes think first")
    view = Frontend(kernel, cell)
    view.hello()
    final = view.final()
    boot = view.boots[0]
    assert boot["js"] and boot["css"] and boot["v"]  # a page without the view's code gets it once
    assert "The answer is 42." in view.text() and "Reasoning" in view.text()
    assert "The answer is 42." in final["text/html"] and "<summary>Reasoning</summary>" in final["text/html"]
    assert "The answer is 42." in final["text/plain"]
    view.pump(lambda: view.closed)  # a finished turn holds no live widget
    count = kernel.run("from hermes_jupyter.views.live import TurnWidget\n"
                       "print(sum(isinstance(w, TurnWidget) for w in TurnWidget.widgets.values()))")
    assert count.stdout.strip() == "0"


def test_the_live_document_ends_as_the_static_rendering(kernel):
    """Nothing jumps: the parts the view ends with are the static rendering's, in order."""
    view = ask(kernel, "%hermes -o t run echo")
    final = view.final()["text/html"]
    view.pump(lambda: view.done)
    live = view.html()
    static_body = final.split("</style>", 1)[1].removesuffix('<hr class="hermes-end"></div>')
    assert live.replace(' data-slot=""', "") == static_body


def test_no_view_no_traffic(kernel):
    """A kernel nobody watches (nbclient, a closed tab) sends no deltas: a view gets everything when it connects."""
    cell = kernel.run("%hermes -o t say hello")
    kernel.run("t.wait(60)")
    kernel.pump(lambda: any(m["msg_type"] == "comm_close" for m in kernel.comm_messages))
    assert [m["msg_type"] for m in kernel.comm_messages] == ["comm_open", "comm_close"]
    [widget, saved] = [m["content"]["transient"]["display_id"] for m in cell.outputs if m["msg_type"] == "display_data"]
    updates = {m["content"]["transient"]["display_id"]: m["content"]["data"] for m in cell.outputs
               if m["msg_type"] == "update_display_data"}
    assert "Hello from the scripted model" in updates[widget]["text/html"]
    assert updates[saved] == {"text/plain": ""}  # the turn so far: blank once the turn is over


def test_a_view_that_connects_mid_turn_gets_the_turn_so_far(kernel):
    model = kernel.model_url(SCRIPT)
    cell = kernel.run("%hermes -o t gated story")
    assert wait_held(model, "story")  # 40 chunks streamed, the rest held
    first = Frontend(kernel, cell, page="page-1")
    first.hello()
    first.pump(lambda: first.boots)
    first.pump(lambda: first.text().count(" ") > 20)  # the answer so far: from the boot, or just after
    second = Frontend(kernel, cell, page="page-2")  # a reload: another page, with the code cached
    second.have = [first.boots[0]["v"]]
    second.hello()
    second.pump(lambda: second.boots)
    assert "js" not in second.boots[0]
    assert open_gate(model, "story") == 1
    final = second.final()["text/html"]
    second.pump(lambda: second.done)
    assert second.text().split("gated story", 1)[1] in re.sub(r"<[^>]+>", "", final)


def test_deny_click_stops_the_command(kernel, tmp_path):
    (tmp_path / "victim").mkdir()
    view = ask(kernel, "%hermes -o t delete victim")
    part, _ = view.wait_button("Deny")
    labels = [b[0] for b in view.controls[part]["buttons"]]
    assert labels == ["Allow once", "Allow session", "Always allow", "Deny"]
    assert "denied automatically in" in view.controls[part]["countdown"]
    assert view.controls[part]["attend"] == "your approval"  # brought into view once; named in a chip while out of it
    view.click("Deny")
    assert "denied</b> (by you)" in view.final()["text/html"]
    assert (tmp_path / "victim").exists()
    check = kernel.run("print([(e.choice, e.by) for e in t.events if e.kind == 'approval_resolved'])")
    assert check.stdout.strip() == "[('deny', 'user')]"


def test_the_approval_card_shows_the_command_as_it_will_run(kernel, tmp_path):
    """Bidi isolates would show "echo cleaning up # rm -rf ./victim ; old logs": rm as if commented out."""
    (tmp_path / "victim").mkdir()
    view = ask(kernel, "%hermes -o t trojan cleanup")
    part, _ = view.wait_button("Deny")
    shown = r"<pre>echo cleaning up \u2067; rm -rf ./victim #\u2069 old logs</pre>"
    assert shown in view.parts[part]
    view.click("Deny")
    final = view.final()
    assert shown in final["text/html"]
    assert r"$ echo cleaning up \u2067; rm -rf ./victim #\u2069 old logs" in final["text/plain"]
    assert not re.search("[\u2067\u2069]", json.dumps(final, ensure_ascii=False) + view.parts[part])
    assert (tmp_path / "victim").exists()


def test_allow_once_click_runs_the_command_and_a_second_click_is_harmless(kernel, tmp_path):
    (tmp_path / "victim").mkdir()
    view = ask(kernel, "%hermes -o t delete victim")
    part, _ = view.wait_button("Allow once")
    view.act(part, "approve", "once")
    view.act(part, "approve", "once")  # a double click: two messages
    view.act(part, "deny")
    assert "allowed once</b> (by you)" in view.final()["text/html"]
    assert not (tmp_path / "victim").exists()
    check = kernel.run("print([(e.choice, e.by) for e in t.events if e.kind == 'approval_resolved'])")
    assert check.stdout.strip() == "[('once', 'user')]"


def test_clarify_choice_button(kernel):
    view = ask(kernel, "%hermes -o t ask me")
    view.click("blue")
    assert "<b>blue</b>" in view.final()["text/html"]
    check = kernel.run("print(t.text)")
    assert check.stdout.startswith("You chose:") and "blue" in check.stdout


def test_clarify_free_text_is_sent_with_the_click(kernel):
    view = ask(kernel, "%hermes ask me")
    part, _ = view.wait_button("red")
    assert view.controls[part]["input"] == "Or type an answer…"
    assert view.controls[part]["attend"] == "your answer"
    view.act(part, "answer", "  green, please  ")
    assert "<b>green, please</b>" in view.final()["text/html"]


def test_clicks_act_while_a_wait_cell_holds_the_kernel(kernel, tmp_path):
    """A --wait cell keeps the main thread busy; the card's buttons still act, at once (ipykernel 7.4)."""
    (tmp_path / "victim").mkdir()
    cell = kernel.send("%hermes --wait -o t delete victim", allow_stdin=True)
    kernel.pump(lambda: any(m["msg_type"] == "display_data" for m in cell.outputs))
    view = Frontend(kernel, cell)
    view.hello()  # answered at once too: the view shows the turn while the cell runs
    part, _ = view.wait_button("Allow once")
    assert not cell.idle_after
    view.act(part, "approve", "once")
    kernel.pump(lambda: bool(cell.idle_after), 60)
    assert not (tmp_path / "victim").exists()
    static = [m["content"]["data"] for m in cell.outputs if m["msg_type"] == "display_data"][-1]
    assert "allowed once</b> (by you)" in static["text/html"]


def test_free_text_answers_a_wait_cell(kernel):
    cell = kernel.send("%hermes --wait -o t ask me", allow_stdin=True)
    kernel.pump(lambda: any(m["msg_type"] == "display_data" for m in cell.outputs))
    view = Frontend(kernel, cell)
    view.hello()
    part, _ = view.wait_button("red")
    view.act(part, "answer", "teal")
    kernel.pump(lambda: bool(cell.idle_after), 60)
    assert kernel.run("print(t.text)").stdout.startswith("You chose: teal")


def test_stop_button_cancels_a_long_answer(kernel):
    view = ask(kernel, "%hermes -o t gated story")  # held at its gate: it cannot end before the click
    # The cell has returned while its turn runs: the notebook stays usable (by behaviour, not by a timing).
    assert kernel.run("print(t.status)").stdout == "running\n"
    view.pump(lambda: "orem" in view.text() or "olor" in view.text())
    view.click("Stop")
    assert "cancelled" in view.final()["text/html"]
    check = kernel.run("print(t.status, 0 < len(t.text) < 20000)")
    assert check.stdout == "cancelled True\n"


def test_wait_leaves_a_static_rendering_in_the_cell(kernel):
    cell = kernel.run("%hermes --wait think first")
    displays = [m["content"]["data"] for m in cell.outputs if m["msg_type"] == "display_data"]
    updates = [m["content"]["data"] for m in cell.outputs if m["msg_type"] == "update_display_data"]
    assert displays[0]["text/plain"] == ""  # the live view, blanked by the update below
    assert "Saved while the turn was running" in displays[1]["text/plain"]  # the turn so far, blanked too
    assert updates == [{"text/plain": ""}, {"text/plain": ""}]
    static = displays[2]
    assert "The answer is 42." in static["text/html"] and "<summary>Reasoning</summary>" in static["text/html"]
    assert "The answer is 42." in static["text/plain"]


def test_widget_traffic_is_a_few_small_messages_a_second(kernel):
    view = ask(kernel, "%hermes -o t steady story")  # streams for about 3 s
    view.final()
    seconds = float(kernel.run("print(t.events[-1].time)").stdout)
    text_len = int(kernel.run("print(len(t.text))").stdout)
    ours = [m for m in kernel.comm_messages if m["msg_type"] == "comm_msg"][1:]  # after the boot
    assert len(ours) / seconds <= 12, f"{len(ours)} messages in {seconds:.1f}s"
    total = sum(len(json.dumps(m["content"])) for m in ours)
    assert total < 6 * text_len, f"{total} bytes on the wire for {text_len} characters"


def test_turns_in_several_cells_at_once_while_the_user_runs_other_cells(kernel):
    model = kernel.model_url(SCRIPT)
    one = ask(kernel, "%hermes -s one -o a gated story")
    two = ask(kernel, "%hermes -s two -o b say hello")
    assert wait_held(model, "story")  # turn a is running, and stays so until the gate opens
    busy = kernel.run("total = sum(range(10**6)); print(total)")
    assert busy.stdout == "499999500000\n"
    ended = kernel.run("b.wait(60); print(b.status, a.status)")
    assert ended.stdout == "done running\n"  # b ended while a was still running
    assert open_gate(model, "story") == 1
    check = kernel.run("a.wait(60); b.wait(60); print(a.status, b.status, a.session.name, b.session.name)")
    assert check.stdout == "done done one two\n"
    first, second = one.final()["text/html"], two.final()["text/html"]
    assert "Hello from the scripted model" in second and "Hello from the scripted model" not in first
    assert "orem" in first or "olor" in first
    assert "Hello from the scripted model" not in one.text()


def test_views_connecting_one_after_another_all_end_with_each_part_once(kernel):
    """Several views (tabs, reloads) connecting while a turn streams each end as the static rendering."""
    cell = kernel.run("%hermes -o t think first")
    views = [Frontend(kernel, cell, page=f"page-{i}") for i in range(6)]
    for view in views:  # connect one after another while the turn streams
        view.hello()
    final = views[-1].final()["text/html"]
    for view in views:
        view.pump(lambda v=view: v.done)
        assert view.html().replace(' data-slot=""', "") == final.split("</style>", 1)[1].removesuffix(
            '<hr class="hermes-end"></div>')
