"""While a cell blocks on its turn (--wait, terminal IPython): who answers approvals and questions.

Three cases, chosen by the magic:
- plain text with a stdin (terminal IPython, ``--plain``): asked on the main thread; an answer
  that is not understood is asked again while the request waits. Once it is answered elsewhere or
  times out the question stops reading (``read_line_while``), so the next line typed goes to IPython;
- a widget view in a frontend (JupyterLab, Notebook 7, VS Code): the card's buttons answer (their
  clicks act at once, see views/comm.py), so nothing is asked on stdin;
- no stdin at all (nbclient, papermill, nbval): nobody can answer; approvals are denied and
  questions left to the agent, and the transcript says so.
"""
from __future__ import annotations

import os
import select
import sys
from collections.abc import Callable

from hermes_jupyter.engine import ApprovalRequest, ClarifyRequest, NothingPending, Turn
from hermes_jupyter.util.text import reveal

SHORT = {"o": "once", "y": "once", "yes": "once", "s": "session", "a": "always",
         "d": "deny", "n": "deny", "no": "deny"}


class Gone(Exception):
    """The request was answered elsewhere, timed out or was cancelled while its question was asked."""


def read_line_while(prompt: str, wanted: Callable[[], bool]) -> str:
    """input(prompt) on a terminal, given up (Gone) once ``wanted()`` is false.

    input() would block until Enter even after the request timed out, and take the next line the
    user types for IPython as its answer. On a POSIX terminal the line is read only once it is
    complete (select), checking ``wanted`` ten times a second meanwhile; a line typed after that
    stays in the terminal for IPython's next prompt. Elsewhere it is input().
    """
    try:
        fd = sys.stdin.fileno()
        polled = os.name == "posix" and os.isatty(fd)
    except (AttributeError, OSError, ValueError):  # ipykernel's stdin, a test's replacement
        polled = False
    if not polled:
        return input(prompt)
    sys.stdout.write(prompt)
    sys.stdout.flush()
    while wanted():
        if select.select([fd], [], [], 0.1)[0]:
            line = sys.stdin.readline()
            if not line:
                raise EOFError
            return line.rstrip("\n")
    sys.stdout.write("\n")
    sys.stdout.flush()
    raise Gone


class Prompter:
    def __init__(self, turn: Turn, ask: Callable[[str], str] | None = None, say: Callable[[str], None] = print, *,
                 buttons: bool = False) -> None:
        self.turn = turn
        self.ask = ask  # None: the terminal, asked until the request is gone (read_line_while)
        self.say = say
        self.buttons = buttons  # the view's buttons answer: never ask on stdin
        self.prompted: set[str] = set()

    def unprompted(self) -> bool:
        if self.buttons:
            return False
        # Only once the views have shown the request, so the question comes before the prompt.
        return any(r.request_id not in self.prompted and self.turn.delivered(r.seq)
                   for r in self.turn.pending_approvals + self.turn.pending_questions)

    def wait(self) -> None:
        """Block until the turn has ended, prompting for each request as it comes."""
        while not self.turn.done:
            self.turn.wait_for(self.unprompted)
            self.prompt_pending()
        self.turn.wait()

    def prompt_pending(self) -> None:
        if self.buttons:
            return
        for request in self.turn.pending_approvals + self.turn.pending_questions:
            if request.request_id in self.prompted or not self.turn.delivered(request.seq):
                continue
            self.prompted.add(request.request_id)
            try:
                if isinstance(request, ApprovalRequest):
                    self._approval(request)
                else:
                    self._clarify(request)
            except (NothingPending, Gone):
                pass  # answered elsewhere (the handle, a timeout, a cancel) meanwhile

    def _waiting(self, request: ApprovalRequest | ClarifyRequest) -> bool:
        return any(r.request_id == request.request_id
                   for r in self.turn.pending_approvals + self.turn.pending_questions)

    def _approval(self, request: ApprovalRequest) -> None:
        options = "once/session/always/deny" if request.allow_permanent else "once/session/deny"
        while True:
            reply = self._input(f"Allow `{reveal(request.command)}`? [{options}] (default deny): ", request)
            if reply is None:
                self.turn.approve("deny", request.request_id, by="nobody")
                return
            reply = reply.strip().lower() or "deny"
            try:
                self.turn.approve(SHORT.get(reply, reply), request.request_id)
                return
            except ValueError as exc:  # a typo: ask again rather than deny, while it still waits
                self.say(f"    ({exc})")
                if not self._waiting(request):
                    return

    def _clarify(self, request: ClarifyRequest) -> None:
        for i, choice in enumerate(request.choices, 1):
            self.say(f"    {i}. {choice}")
        reply = self._input("Your answer (number or text): ", request)
        if reply is None:
            self.turn.answer(None, request.request_id, by="nobody")
            return
        reply = reply.strip()
        if reply.isdigit() and 1 <= int(reply) <= len(request.choices):
            reply = request.choices[int(reply) - 1]
        self.turn.answer(reply or None, request.request_id)

    def _input(self, prompt: str, request: ApprovalRequest | ClarifyRequest) -> str | None:
        try:
            if self.ask is None:
                return read_line_while(prompt, lambda: self._waiting(request))
            return self.ask(prompt)
        except (EOFError, OSError, RuntimeError):
            return None
        except Exception as exc:  # ipykernel's StdinNotImplementedError: the frontend has no stdin
            if type(exc).__name__ == "StdinNotImplementedError":
                return None
            raise
