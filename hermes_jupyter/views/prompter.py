"""While a cell blocks on its turn (--wait, terminal IPython): who answers approvals and questions.

Three cases, chosen by the magic:
- plain text with a stdin (terminal IPython, ``--plain``): asked with input() on the main thread;
  an answer that is not understood is asked again;
- a widget view in a frontend (JupyterLab, Notebook 7, VS Code): the card's buttons answer (their
  clicks act at once, see views/comm.py), so nothing is asked on stdin;
- no stdin at all (nbclient, papermill, nbval): nobody can answer; approvals are denied and
  questions left to the agent, and the transcript says so.
"""
from __future__ import annotations

from collections.abc import Callable

from hermes_jupyter.engine import ApprovalRequest, ClarifyRequest, NothingPending, Turn

SHORT = {"o": "once", "y": "once", "yes": "once", "s": "session", "a": "always",
         "d": "deny", "n": "deny", "no": "deny"}


class Prompter:
    def __init__(self, turn: Turn, ask: Callable[[str], str] = input, say: Callable[[str], None] = print, *,
                 buttons: bool = False) -> None:
        self.turn = turn
        self.ask = ask
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
            except NothingPending:
                pass  # answered elsewhere (the handle, a timeout, a cancel) meanwhile

    def _approval(self, request: ApprovalRequest) -> None:
        options = "once/session/always/deny" if request.allow_permanent else "once/session/deny"
        while True:
            reply = self._input(f"Allow `{request.command}`? [{options}] (default deny): ")
            if reply is None:
                self.turn.approve("deny", request.request_id, by="nobody")
                return
            reply = reply.strip().lower() or "deny"
            try:
                self.turn.approve(SHORT.get(reply, reply), request.request_id)
                return
            except ValueError as exc:  # a typo: ask again rather than deny
                self.say(f"    ({exc})")

    def _clarify(self, request: ClarifyRequest) -> None:
        for i, choice in enumerate(request.choices, 1):
            self.say(f"    {i}. {choice}")
        reply = self._input("Your answer (number or text): ")
        if reply is None:
            self.turn.answer(None, request.request_id, by="nobody")
            return
        reply = reply.strip()
        if reply.isdigit() and 1 <= int(reply) <= len(request.choices):
            reply = request.choices[int(reply) - 1]
        self.turn.answer(reply or None, request.request_id)

    def _input(self, prompt: str) -> str | None:
        try:
            return self.ask(prompt)
        except (EOFError, OSError, RuntimeError):
            return None
        except Exception as exc:  # ipykernel's StdinNotImplementedError: the frontend has no stdin
            if type(exc).__name__ == "StdinNotImplementedError":
                return None
            raise
