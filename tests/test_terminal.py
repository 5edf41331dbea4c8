"""%hermes in terminal IPython, on a real pseudo-terminal: plain text, waits, asks with input()."""
from __future__ import annotations

import sys
from pathlib import Path

import pexpect
import pytest

SCRIPT = Path(__file__).parent / "scripts" / "engine.yaml"


@pytest.fixture
def ipython(tmp_path):
    child = pexpect.spawn(sys.executable, ["-m", "IPython", "--no-banner", "--colors=NoColor",
                                           "--no-confirm-exit", "--simple-prompt"],
                          cwd=str(tmp_path), encoding="utf-8", timeout=60, dimensions=(50, 200))
    child.expect(r"In \[1\]: ")
    child.sendline("%load_ext hermes_jupyter")
    child.expect(r"In \[2\]: ")
    child.sendline(f"%config Hermes.model = 'scripted:{SCRIPT}'")
    child.expect(r"In \[3\]: ")
    yield child
    child.sendline("exit")
    child.expect(pexpect.EOF)


def test_answer_streams_as_plain_text(ipython):
    ipython.sendline("%hermes say hello")
    ipython.expect("Hello from the scripted model, streamed in small chunks.")
    ipython.expect(r"-- done · \d+ in / \d+ out tokens")
    ipython.expect(r"In \[4\]: ")  # the magic waited for the turn: the prompt comes back after it


def test_approval_is_asked_at_the_prompt(ipython, tmp_path):
    (tmp_path / "victim").mkdir()
    ipython.sendline("%hermes delete victim")
    ipython.expect(r"Allow `rm -rf ./victim`\? \[once/session/always/deny\]")
    ipython.sendline("deny")
    ipython.expect("denied by you")
    ipython.expect(r"In \[4\]: ")
    assert (tmp_path / "victim").exists()
    ipython.sendline("%hermes delete victim")
    ipython.expect(r"Allow `rm -rf ./victim`\?")
    ipython.sendline("once")
    ipython.expect(r"allowed \(once\) by you")
    ipython.expect(r"In \[5\]: ")
    assert not (tmp_path / "victim").exists()


def test_clarify_is_asked_at_the_prompt(ipython):
    ipython.sendline("%hermes ask me")
    ipython.expect(r"\[question\] Which colour\? \[red / blue\]")
    ipython.expect("Your answer")
    ipython.sendline("2")
    ipython.expect("answered: blue")
    ipython.expect(r"In \[4\]: ")


@pytest.mark.parametrize("ask", ["--approval-timeout 1 delete victim", "--clarify-timeout 1 ask me"],
                         ids=["approval", "clarify"])
def test_a_question_that_timed_out_leaves_the_next_line_to_ipython(ipython, tmp_path, ask):
    """Nobody answers: once the request times out the prompt comes back, and what the user types next
    runs as code (it was taken as the dead question's answer, or re-asked forever; found by a newcomer)."""
    (tmp_path / "victim").mkdir()
    ipython.sendline(f"%hermes {ask}")
    ipython.expect(r"Allow `rm -rf ./victim`\?|Your answer")
    ipython.expect("nobody answered in time")
    ipython.expect(r"In \[4\]: ")
    ipython.sendline("print('AFTER' + '-TIMEOUT')")
    ipython.expect("AFTER-TIMEOUT")
    ipython.expect(r"In \[5\]: ")
    assert (tmp_path / "victim").exists()


def test_hermes_own_spinner_never_reaches_the_terminal(tmp_path):
    """hermes-agent draws a spinner on stdout when it is a terminal and nobody routed its prints: the warm-up's request
    did, over the prompt and glued to the first answer (found by a newcomer)."""
    import io
    import re

    seen = io.StringIO()
    child = pexpect.spawn(sys.executable, ["-m", "IPython", "--no-banner", "--colors=NoColor", "--no-confirm-exit",
                                           "--simple-prompt"], cwd=str(tmp_path), encoding="utf-8", timeout=60,
                          dimensions=(50, 200))
    child.logfile_read = seen
    child.expect(r"In \[1\]: ")
    child.sendline(f"%config Hermes.model = 'scripted:{SCRIPT}'")
    child.expect(r"In \[2\]: ")
    child.sendline("%load_ext hermes_jupyter")
    child.expect(r"In \[3\]: ")
    child.sendline("%hermes say hello")
    child.expect(r"-- done")
    child.expect(r"In \[4\]: ")
    # The warm-up's own request may end after the first turn: wait for its thread.
    child.sendline("import threading; [t.join(60) for t in threading.enumerate() if t.name == 'hermes-warmup']")
    child.expect(r"In \[5\]: ")
    child.sendline("exit")
    child.expect(pexpect.EOF)
    assert "Hello from the scripted model" in seen.getvalue()
    assert not re.search(r"\.\.\. \(\d+\.\ds\)", seen.getvalue()), seen.getvalue()
