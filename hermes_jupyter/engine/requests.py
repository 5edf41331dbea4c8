"""Approval and clarify requests: what the agent thread waits on until a human (or a policy,
a timeout, a cancel) answers.

Each request has its own id and is answered by id, never first-in-first-out
(two questions open at once must never swap their answers). Code and views see frozen snapshots
(``ApprovalRequest``, ``ClarifyRequest``); the mutable state, the deadline and
the wake-up event stay in here.
"""
from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field, replace
from typing import Generic, Literal, TypeVar

from hermes_jupyter.util.scheduler import Scheduled

ApprovalChoice = Literal["once", "session", "always", "deny"]
APPROVAL_CHOICES: tuple[ApprovalChoice, ...] = ("once", "session", "always", "deny")
ResolvedBy = Literal["user", "policy", "timeout", "cancel", "nobody"]


class NothingPending(LookupError):
    """approve()/answer() was called but the turn is not waiting for that."""


@dataclass(frozen=True)
class ApprovalRequest:
    """A dangerous command waiting for a decision (a snapshot: answer it through the turn)."""
    request_id: str
    command: str
    description: str
    pattern_keys: tuple[str, ...]
    allow_permanent: bool
    timeout: float
    seq: int = 0  # of its ApprovalRequested event
    choice: ApprovalChoice | None = None
    by: ResolvedBy | None = None


@dataclass(frozen=True)
class ClarifyRequest:
    """A question from the agent waiting for an answer (a snapshot: answer it through the turn)."""
    request_id: str
    question: str
    choices: tuple[str, ...]
    timeout: float
    seq: int = 0  # of its ClarifyRequested event
    answer: str | None = None
    by: ResolvedBy | None = None


S = TypeVar("S", ApprovalRequest, ClarifyRequest)


@dataclass
class Pending(Generic[S]):
    """One request's live state: its snapshot, the event its waiter sleeps on, its deadline."""
    view: S
    answered: threading.Event = field(default_factory=threading.Event)
    deadline: Scheduled | None = None
    payload: dict[str, object] | None = None  # hermes' gateway entry data, for approvals


def new_id() -> str:
    return uuid.uuid4().hex[:8]


class Requests(Generic[S]):
    """The open and answered requests of one kind, by id, in arrival order."""

    def __init__(self, lock: threading.RLock, missing: str) -> None:
        self._lock = lock
        self._items: dict[str, Pending[S]] = {}
        self._missing = missing

    def add(self, view: S, payload: dict[str, object] | None = None) -> Pending[S]:
        with self._lock:
            item = Pending(view, payload=payload)
            self._items[view.request_id] = item
            return item

    def set_seq(self, request_id: str, seq: int) -> None:
        with self._lock:
            item = self._items[request_id]
            item.view = replace(item.view, seq=seq)

    def pending(self) -> list[S]:
        with self._lock:
            return [i.view for i in self._items.values() if i.view.by is None]

    def open_items(self) -> list[Pending[S]]:
        with self._lock:
            return [i for i in self._items.values() if i.view.by is None]

    def pick(self, request_id: str | None) -> Pending[S]:
        """The open request with this id, or the oldest open one."""
        with self._lock:
            if request_id is not None:
                item = self._items.get(request_id)
                if item is None or item.view.by is not None:
                    raise NothingPending(f"Request {request_id!r} is not pending in this turn.")
                return item
            for item in self._items.values():
                if item.view.by is None:
                    return item
        raise NothingPending(self._missing)

    def settle(self, item: Pending[S], by: ResolvedBy, **changes: object) -> S | None:
        """Record the answer once; None if it was answered already (a click racing a timeout)."""
        with self._lock:
            if item.view.by is not None:
                return None
            item.view = replace(item.view, by=by, **changes)  # type: ignore[arg-type]
            if item.deadline is not None:
                item.deadline.cancel()
        item.answered.set()
        return item.view

    def close(self) -> None:
        """Cancel every deadline (the turn ended)."""
        with self._lock:
            for item in self._items.values():
                if item.deadline is not None:
                    item.deadline.cancel()


