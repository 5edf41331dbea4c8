"""A turn's approval and clarify requests: opened by the agent thread, answered by anyone.

The agent thread blocks on a request until a human (button, prompt, handle),
the policy, a deadline or a cancel answers it. Deadlines run on the shared
scheduler, not a thread each.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hermes_jupyter import events as ev
from hermes_jupyter.agent import hosting
from hermes_jupyter.engine.log import EventLog
from hermes_jupyter.engine.requests import (
    APPROVAL_CHOICES,
    ApprovalChoice,
    ApprovalRequest,
    ClarifyRequest,
    Pending,
    Requests,
    ResolvedBy,
    new_id,
)
from hermes_jupyter.util.scheduler import scheduler

if TYPE_CHECKING:
    from hermes_jupyter.engine.session import Session

NO_ANSWER = ("The user did not answer the question. Use your best judgement to choose "
             "and proceed, and say which choice you made.")
_ALIASES = {"allow": "once", "yes": "once", "no": "deny"}


class Broker:
    def __init__(self, log: EventLog, session: Session, approval_key: str) -> None:
        self._log = log
        self._session = session
        self._approval_key = approval_key
        self.policy, self.approval_timeout, self.clarify_timeout = "ask", 60.0, 3600.0
        self.cancelled = False
        self.approvals: Requests[ApprovalRequest] = Requests(log.lock, "No approval is pending in this turn.")
        self.questions: Requests[ClarifyRequest] = Requests(log.lock, "No question is waiting for an answer in this turn.")

    def configure(self, policy: str, approval_timeout: float, clarify_timeout: float) -> None:
        self.policy, self.approval_timeout, self.clarify_timeout = policy, approval_timeout, clarify_timeout

    # ----- approvals ------------------------------------------------------------------------
    def open_approval(self, *, command: str, description: str, pattern_keys: tuple[str, ...],
                      allow_permanent: bool, payload: dict[str, Any] | None) -> Pending[ApprovalRequest]:
        view = ApprovalRequest(request_id=new_id(), command=command, description=description,
                               pattern_keys=pattern_keys, allow_permanent=allow_permanent,
                               timeout=self.approval_timeout)
        item = self.approvals.add(view, payload)
        event = self._log.emit(ev.ApprovalRequested, request_id=view.request_id, command=command,
                               description=description, pattern_keys=pattern_keys,
                               allow_permanent=allow_permanent, timeout=view.timeout)
        if event is not None:
            self.approvals.set_seq(view.request_id, event.seq)
        if self.cancelled or event is None:
            self.resolve_approval(item, "deny", "cancel")
        elif self.policy == "deny":
            self.resolve_approval(item, "deny", "policy")
        elif self.policy == "allow":
            self.resolve_approval(item, "once", "policy")
        else:
            item.deadline = scheduler.call_later(view.timeout, lambda: self.resolve_approval(item, "deny", "timeout"))
        return item

    def ask_approval(self, command: str, description: str, *, pattern: str, allow_permanent: bool = False) -> str:
        """Block until decided (for the notebook's own tools): once, session, always or deny."""
        if pattern in self._session.approved_patterns():
            return "session"
        item = self.open_approval(command=command, description=description, pattern_keys=(pattern,),
                                  allow_permanent=allow_permanent, payload=None)
        item.answered.wait()
        return item.view.choice or "deny"

    def answer_approval(self, choice: str, request_id: str | None, by: ResolvedBy) -> ApprovalRequest:
        choice = _ALIASES.get(choice, choice)
        if choice not in APPROVAL_CHOICES:
            raise ValueError(f"choice must be one of {', '.join(APPROVAL_CHOICES)}, not {choice!r}")
        item = self.approvals.pick(request_id)
        if choice == "always" and not item.view.allow_permanent:
            raise ValueError("'always' is not offered for this command; choose once, session or deny")
        self.resolve_approval(item, choice, by)  # narrowed to an ApprovalChoice by the check above
        return item.view

    def resolve_approval(self, item: Pending[ApprovalRequest], choice: ApprovalChoice, by: ResolvedBy) -> bool:
        view = self.approvals.settle(item, by, choice=choice)
        if view is None:
            return False
        if choice in ("session", "always"):
            self._session.approve_patterns(p for p in view.pattern_keys if p)
        if item.payload:
            hosting.resolve_gateway_entry(self._approval_key, item.payload, choice)
        self._log.emit(ev.ApprovalResolved, request_id=view.request_id, choice=choice, by=by)
        return True

    # ----- clarify --------------------------------------------------------------------------
    def ask_clarify(self, question: str, choices: tuple[str, ...]) -> str:
        """The agent asks the user a question. Blocks the agent thread until answered."""
        view = ClarifyRequest(request_id=new_id(), question=question, choices=choices, timeout=self.clarify_timeout)
        item = self.questions.add(view)
        event = self._log.emit(ev.ClarifyRequested, request_id=view.request_id, question=question,
                               choices=choices, timeout=view.timeout)
        if event is not None:
            self.questions.set_seq(view.request_id, event.seq)
        if not self.cancelled and event is not None and not item.answered.wait(view.timeout):
            self.settle_question(item, None, "timeout")
        answer = (item.view.answer or "").strip()
        return answer if answer and item.view.by == "user" else NO_ANSWER

    def answer_question(self, text: str | None, request_id: str | None, by: ResolvedBy) -> ClarifyRequest:
        item = self.questions.pick(request_id)
        self.settle_question(item, None if text is None else str(text), by)
        return item.view

    def settle_question(self, item: Pending[ClarifyRequest], answer: str | None, by: ResolvedBy) -> None:
        view = self.questions.settle(item, by, answer=answer)
        if view is not None:
            self._log.emit(ev.ClarifyResolved, request_id=view.request_id, answer=answer, by=by)

    # ----- the end --------------------------------------------------------------------------
    def cancel_all(self) -> None:
        """Deny every open approval and wake every open question (the turn was stopped)."""
        self.cancelled = True
        for approval in self.approvals.open_items():
            self.resolve_approval(approval, "deny", "cancel")  # a no-op if answered meanwhile
        for question in self.questions.open_items():
            self.settle_question(question, None, "cancel")

    def close(self) -> None:
        self.approvals.close()
        self.questions.close()


