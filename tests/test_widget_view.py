"""The widget view in a real kernel: read the widget messages, click as a browser does."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from hermes_jupyter.models.scripted import open_gate, wait_held

from .kernel import Kernel, module_kernel

SCRIPT = Path(__file__).parent / "scripts" / "engine.yaml"
SETUP = f"%load_ext hermes_jupyter\n%config Hermes.model = 'scripted:{SCRIPT}'"


@pytest.fixture(scope="module")
def shared_kernel(tmp_path_factory):
    with module_kernel(tmp_path_factory.mktemp("kernel")) as k:
        yield k


@pytest.fixture
def kernel(shared_kernel, tmp_path):
    setup = shared_kernel.fresh(tmp_path, SETUP)
    assert setup.reply["status"] == "ok", setup.error
    return shared_kernel


def final_html(kernel: Kernel, timeout: float = 60) -> str:
    """The static rendering the view turns into when the turn ends."""
    def rendered():
        return [st["value"] for st in kernel.widgets.values()
                if st.get("_model_name") == "HTMLModel" and "class='hermes-turn'" in str(st.get("value"))]
    kernel.pump(lambda: bool(rendered()), timeout)
    return rendered()[0]


def test_answer_streams_into_widgets(kernel):
    cell = kernel.run("%hermes say hello")
    assert cell.idle_after < 1.0
    outputs = [m for m in cell.outputs if m["msg_type"] == "display_data"]
    assert "application/vnd.jupyter.widget-view+json" in outputs[0]["content"]["data"]
    html = final_html(kernel)
    assert "Hello from the scripted model, streamed in small chunks." in html
    assert "say hello" in html and "done" in html


def test_deny_click_stops_the_command(kernel, tmp_path):
    (tmp_path / "victim").mkdir()
    kernel.run("%hermes -o t delete victim")
    deny = kernel.wait_widget("ButtonModel", description="Deny")
    assert kernel.find_widgets("ButtonModel", description="Allow once")
    assert kernel.find_widgets("ButtonModel", description="Always allow")
    kernel.click(deny)
    html = final_html(kernel)
    assert "denied</b> (by you)" in html
    assert (tmp_path / "victim").exists()
    check = kernel.run("print([(e.choice, e.by) for e in t.events if e.kind == 'approval_resolved'])")
    assert check.stdout.strip() == "[('deny', 'user')]"


def test_allow_once_click_runs_the_command(kernel, tmp_path):
    (tmp_path / "victim").mkdir()
    kernel.run("%hermes delete victim")
    kernel.click(kernel.wait_widget("ButtonModel", description="Allow once"))
    assert "allowed once</b> (by you)" in final_html(kernel)
    assert not (tmp_path / "victim").exists()


def test_clarify_choice_button(kernel):
    kernel.run("%hermes -o t ask me")
    kernel.click(kernel.wait_widget("ButtonModel", description="blue"))
    html = final_html(kernel)
    assert "<b>blue</b>" in html
    check = kernel.run("print(t.text)")
    assert check.stdout.startswith("You chose:") and "blue" in check.stdout


def test_clarify_free_text(kernel):
    kernel.run("%hermes ask me")
    field = kernel.wait_widget("TextModel", placeholder="Or type an answer…")
    kernel.set_value(field, "green, please")
    kernel.click(kernel.wait_widget("ButtonModel", description="Send"))
    assert "<b>green, please</b>" in final_html(kernel)


def test_stop_button_cancels_a_long_answer(kernel):
    kernel.run("%hermes -o t gated story")  # held at its gate: it cannot end before the click
    stop = kernel.wait_widget("ButtonModel", description="Stop")
    kernel.pump(lambda: any("Lorem" in str(st.get("value")) or "lorem" in str(st.get("value"))
                            for st in kernel.widgets.values() if st.get("_model_name") == "HTMLMathModel"))
    kernel.click(stop)
    html = final_html(kernel)
    assert "cancelled" in html
    check = kernel.run("print(t.status, 0 < len(t.text) < 20000)")
    assert check.stdout == "cancelled True\n"


def test_wait_leaves_a_static_rendering_in_the_cell(kernel):
    cell = kernel.run("%hermes --wait think first")
    displays = [m["content"]["data"] for m in cell.outputs if m["msg_type"] == "display_data"]
    updates = [m["content"]["data"] for m in cell.outputs if m["msg_type"] == "update_display_data"]
    assert displays[0]["text/plain"] == ""  # the live view, blanked by the update below
    assert updates == [{"text/plain": ""}]
    static = displays[1]
    assert "The answer is 42." in static["text/html"] and "<summary>Reasoning</summary>" in static["text/html"]
    assert "The answer is 42." in static["text/plain"]


def test_widget_traffic_is_coalesced(kernel):
    kernel.run("%hermes -o t steady story")  # streams steadily for about 5 s
    final_html(kernel)
    duration = kernel.run("print(t.events[-1].time)")
    seconds = float(duration.stdout)
    updates = [m for m in kernel.comm_messages if m["msg_type"] == "comm_msg"]
    answer_bytes = len(kernel.run("print(len(t.text))").stdout)
    per_second = len(updates) / seconds
    assert per_second <= 25, f"{len(updates)} comm messages in {seconds:.1f}s"
    total = sum(len(json.dumps(m["content"])) for m in updates)
    text_len = int(kernel.run("print(len(t.text))").stdout)
    assert total < 12 * text_len, f"{total} bytes on the wire for {text_len} characters"
    assert answer_bytes


def test_turns_in_several_cells_at_once_while_the_user_runs_other_cells(kernel):
    model = kernel.model_url(SCRIPT)
    kernel.run("%hermes -s one -o a gated story")
    kernel.run("%hermes -s two -o b say hello")
    assert wait_held(model, "story")  # turn a is running, and stays so until the gate opens
    busy = kernel.run("total = sum(range(10**6)); print(total)")
    assert busy.stdout == "499999500000\n"
    ended = kernel.run("b.wait(60); print(b.status, a.status)")
    assert ended.stdout == "done running\n"  # b ended while a was still running
    assert open_gate(model, "story") == 1
    check = kernel.run("a.wait(60); b.wait(60); print(a.status, b.status, a.session.name, b.session.name)")
    assert check.stdout == "done done one two\n"
    # each view ended as its own static rendering, with its own answer
    kernel.pump(lambda: len([s for s in kernel.widgets.values()
                             if "class='hermes-turn'" in str(s.get("value"))]) == 2, 30)
    finals = [s["value"] for s in kernel.widgets.values() if "class='hermes-turn'" in str(s.get("value"))]
    assert sum("Hello from the scripted model" in f for f in finals) == 1
    assert sum("orem" in f and "Hello from the scripted model" not in f for f in finals) == 1
