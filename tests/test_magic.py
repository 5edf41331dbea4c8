"""%hermes in a real ipykernel, driven over jupyter_client like a notebook frontend."""
from __future__ import annotations

from pathlib import Path

import pytest

from hermes_jupyter.magic import split_options
from hermes_jupyter.models.scripted import wait_held

from .kernel import Kernel, fresh_kernel_fixtures

SCRIPT = Path(__file__).parent / "scripts" / "engine.yaml"
# Text mode here; the widget view has its own tests (test_widget_view.py).
SETUP = f"%load_ext hermes_jupyter\n%config Hermes.model = 'scripted:{SCRIPT}'\n%config Hermes.plain = True"


shared_kernel, kernel = fresh_kernel_fixtures(SETUP)


def test_magic_returns_at_once_and_the_kernel_stays_usable(kernel):
    model = kernel.model_url(SCRIPT)
    ask = kernel.run("%hermes -o story gated story")
    assert ask.reply["status"] == "ok"
    assert ask.idle_after < 1.0, f"the magic blocked the cell for {ask.idle_after:.2f}s"
    assert wait_held(model, "story")  # the turn is running: the rest of its answer waits for the gate
    # While the agent's turn runs, another cell runs and gets only its own output ...
    other = kernel.run("print(6 * 7)")
    assert other.stdout == "42\n"
    # ... also while the rest of the answer streams: this cell opens the gate and waits for the end.
    during = kernel.run("from hermes_jupyter.models.scripted import open_gate\n"
                        f"print(6 * 7, open_gate({model!r}, 'story'), story.wait(60))")
    assert during.stdout == "42 1 True\n"
    kernel.pump(lambda: "-- done" in ask.stdout, timeout=60)
    assert ask.stdout.count("Lorem") + ask.stdout.count("lorem") > 10  # streamed into the cell that asked
    state = kernel.run("print(story.status, len(story.text) > 1000)")
    assert state.stdout == "done True\n"


def test_a_turn_begins_its_work_after_its_cell_has_been_answered(kernel):
    """The turn's start (its history, a request that grows with the session) waits until the kernel has
    sent the cell's execute_reply: started at post_run_cell it held the GIL against the end of the cell."""
    kernel.run("""
import time, hermes_jupyter.magic as _magic
_marks = []
_session = get_ipython().kernel.session
_send = _session.send
def _recording_send(stream, msg_or_type, *args, **kwargs):
    sent = _send(stream, msg_or_type, *args, **kwargs)
    if msg_or_type == "execute_reply":
        _marks.append(("reply", sent["parent_header"]["msg_id"]))
    return sent
_session.send = _recording_send
_cell_ended = _magic.cell_ended
def _recording_cell_ended(shell):
    ended = _cell_ended(shell)
    release = ended.set
    def set_():
        _marks.append(("turn may start", None))
        release()
    ended.set = set_
    return ended
_magic.cell_ended = _recording_cell_ended
""")
    ask = kernel.run("%hermes -o t say hello")
    done = kernel.run("_session.send = _send; _magic.cell_ended = _cell_ended\nprint(t.wait(60), _marks)")
    assert done.stdout.startswith("True ")
    marks = eval(done.stdout.removeprefix("True "))
    assert ("reply", ask.msg_id) in marks and ("turn may start", None) in marks
    assert marks.index(("reply", ask.msg_id)) < marks.index(("turn may start", None))


def test_cells_still_run_after_several_turns(kernel):
    for _ in range(3):
        turn = kernel.run("%hermes --wait say hello")
        assert "Hello from the scripted model" in turn.stdout
    after = kernel.run("import sys\nprint('still fine', type(sys.stdout).__name__)")
    assert after.reply["status"] == "ok", after.error
    assert after.stdout == "still fine OutStream\n"


@pytest.mark.parametrize("line,message", [
    ("%hermes --bogus hi", "Unknown option --bogus"),
    ("%hermes --approvals maybe hi", "invalid choice"),
    ("%hermes", "Nothing to ask"),
    ("%hermes /frobnicate", "Unknown command /frobnicate"),
    ("%hermes --approval-timeout -5 hi", "--approval-timeout -5: give the seconds"),
    ("%hermes --clarify-timeout 0 hi", "--clarify-timeout 0: give the seconds"),
    # A session's name goes into its history and hermes-agent's logs: refused before anything runs.
    ("%hermes -s AKIACULUTPVG8FPOBPZE hi", "looks like a secret"),
    ("%hermes /use ghp_Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7c", "looks like a secret"),
    ("%hermes /rename main xoxb-1234567890-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "looks like a secret"),
])
def test_bad_input_is_a_short_usage_error(kernel, line, message):
    cell = kernel.run(line)
    assert cell.reply["status"] == "error"
    # IPython shows a UsageError as one line on stderr, without a traceback.
    assert cell.stderr.startswith("UsageError: ") and message in cell.stderr
    assert "Traceback" not in cell.stderr and len(cell.stderr.splitlines()) <= 3
    if "secret" in message:
        sessions = kernel.run("%hermes /sessions").stdout
        assert "AKIA" not in sessions and "ghp_" not in sessions and "xoxb" not in sessions and "main" in sessions
        assert "AKIA" not in cell.stderr and "ghp_" not in cell.stderr  # the error shows it redacted


def test_headless_wait_denies_dangerous_commands_visibly(kernel, tmp_path):
    (tmp_path / "victim").mkdir()
    cell = kernel.run("%hermes --wait delete victim", timeout=60)
    assert (tmp_path / "victim").exists()
    assert "[approval needed]" in cell.stdout
    assert "denied because nobody can answer in this run" in cell.stdout


def test_interrupting_a_waiting_cell_stops_the_turn(kernel):
    cell = kernel.send("%hermes --wait -o t gated story")  # held at its gate: it cannot end first
    kernel.pump(lambda: len(cell.stdout) > 200, timeout=60)
    kernel.manager.interrupt_kernel()
    kernel.pump(lambda: bool(cell.idle_after), timeout=30)
    assert "stopped (kernel interrupt)" in cell.stdout
    state = kernel.run("print(t.status)")
    assert state.stdout == "cancelled\n"


def test_sessions_commands(kernel):
    kernel.run("%hermes --wait -s alpha remember alpha")
    kernel.run("%hermes --wait -s beta remember beta")
    listing = kernel.run("%hermes /sessions")
    assert "* beta" in listing.stdout and "  alpha" in listing.stdout
    assert kernel.run("%hermes -s alpha").stdout == "[hermes] session 'alpha' is current\n"
    kernel.run("%hermes --wait remember more")
    sent = kernel.run("import hermes_jupyter as h\n"
                      "print([m['content'] for m in h.get_engine().session('alpha').messages if m['role']=='user'])")
    assert sent.stdout.strip() == "['remember alpha', 'remember more']"
    fresh = kernel.run("%hermes /new")
    assert "new session" in fresh.stdout
    stop = kernel.run("%hermes /stop")
    assert "nothing is running" in stop.stdout
    # Deleting 'main' while it is current leaves a new, empty 'main' ("deleted 'main'; current is 'main'" read oddly).
    kernel.run("%hermes -s main")
    assert kernel.run("%hermes /delete main").stdout == "[hermes] deleted session 'main'; a new, empty 'main' is current\n"
    assert kernel.run("%hermes /delete beta").stdout == "[hermes] deleted session 'beta'; current is 'main'\n"


def test_approve_command_answers_a_pending_request(kernel, tmp_path):
    (tmp_path / "victim").mkdir()
    kernel.run("%hermes -o t delete victim")
    kernel.run("t.wait_for(lambda: bool(t.pending_approvals), 30)")
    answer = kernel.run("%hermes /approve once")
    assert answer.reply["status"] == "ok", answer.error
    done = kernel.run("t.wait(30); print(t.status)")
    assert done.stdout == "done\n"
    assert not (tmp_path / "victim").exists()


def test_config_command_shows_the_resolved_model(kernel):
    cell = kernel.run("%hermes /config")
    assert "scripted-test" in cell.stdout and "approvals" in cell.stdout
    # The scripted model needs no key: /config said "api_key set" for it (found by a newcomer).
    assert "api_key           none needed (the model runs in the kernel)" in cell.stdout


@pytest.mark.parametrize("line,options,prompt,literal", [
    ("what's -rf for?", "", "what's -rf for?", False),
    ("-s a -m 'scripted:x y.yaml' it's fine", "-s a -m 'scripted:x y.yaml'", "it's fine", False),
    ("--approvals=deny go", "--approvals=deny", "go", False),
    ("-- /not a command", "", "/not a command", True),
    ("/stop all", "", "/stop all", False),
])
def test_options_are_split_from_a_verbatim_prompt(line, options, prompt, literal):
    from hermes_jupyter.magic import HermesMagics
    parser = HermesMagics.hermes.parser
    assert split_options(line, parser) == (options, prompt, literal)


def test_the_users_hermes_configuration_is_the_default(tmp_path):
    """No %config at all: model, provider and endpoint come from HERMES_HOME/config.yaml."""
    from hermes_jupyter.models.scripted import ScriptedServer

    with ScriptedServer(SCRIPT).start() as server:
        home = tmp_path / "home"
        home.mkdir()
        (home / "config.yaml").write_text(
            "model:\n"
            f"  default: {server.model}\n  provider: custom\n  base_url: {server.base_url}\n"
            "  api_key: not-a-real-key-1234\n"
            "approvals:\n  mode: smart\n  timeout: 60\n")
        (tmp_path / "victim").mkdir()
        k = Kernel(tmp_path, env={"HERMES_HOME": str(home)})
        try:
            k.run("%load_ext hermes_jupyter\n%config Hermes.plain = True")
            config = k.run("%hermes /config")
            assert "scripted-test" in config.stdout and "Hermes configuration" in config.stdout
            answer = k.run("%hermes --wait say hello")
            assert "Hello from the scripted model" in answer.stdout
            # Hermes' own 'smart' mode would let the model approve: the notebook asks a human instead.
            denied = k.run("%hermes --wait delete victim")
            assert "[approval needed]" in denied.stdout and (tmp_path / "victim").exists()
        finally:
            k.close()
        assert any(r["messages"][-1].get("content") == "say hello" for r in server.requests)


def test_a_question_mark_at_the_end_is_part_of_the_prompt(kernel):
    # IPython reads a trailing `word?` as a help request; %hermes prompts are questions.
    cell = kernel.run("%hermes --wait -o q remember is this a question?")
    assert cell.reply["status"] == "ok", cell.error
    assert kernel.run("print(q.prompt)").stdout == "remember is this a question?\n"
    assert "Object `question` not found" not in cell.stdout
    help_cell = kernel.run("%hermes?")
    assert help_cell.reply["status"] == "ok"
