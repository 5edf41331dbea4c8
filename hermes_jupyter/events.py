"""The typed event protocol of a turn.

Every event is a small frozen dataclass. The engine numbers events as they
happen (``seq``) and delivers them, in that order, to each subscriber of the
turn: the widget view, the text view, the history store, tests. The protocol
follows the Hermes Web UI's streaming engine (token, reasoning, tool,
tool_complete, approval, clarify, compressed, done, apperror, cancel) with
ids where the Web UI had none.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeAlias


@dataclass(frozen=True, slots=True)
class Event:
    kind: ClassVar[str] = "event"
    seq: int = field(default=0, kw_only=True)
    time: float = field(default=0.0, kw_only=True)  # seconds since the turn started


@dataclass(frozen=True, slots=True)
class TurnQueued(Event):
    kind: ClassVar[str] = "queued"
    position: int  # 1 = next to run


@dataclass(frozen=True, slots=True)
class TurnStarted(Event):
    kind: ClassVar[str] = "started"
    session: str
    prompt: str
    model: str
    cwd: str


@dataclass(frozen=True, slots=True)
class Phase(Event):
    """What a starting turn waits for ("starting Hermes", "connecting to MODEL", "waiting for
    the first token"): the live view's header says it until the first output; nothing stores it."""
    kind: ClassVar[str] = "phase"
    text: str


@dataclass(frozen=True, slots=True)
class Token(Event):
    kind: ClassVar[str] = "token"
    text: str


@dataclass(frozen=True, slots=True)
class SegmentEnd(Event):
    """The model finished a block of visible text (tools may follow)."""
    kind: ClassVar[str] = "segment_end"


@dataclass(frozen=True, slots=True)
class Reasoning(Event):
    kind: ClassVar[str] = "reasoning"
    text: str


@dataclass(frozen=True, slots=True)
class ToolStarted(Event):
    kind: ClassVar[str] = "tool"
    call_id: str
    name: str
    args: Mapping[str, str]  # first keys, values cut for display


@dataclass(frozen=True, slots=True)
class ToolCompleted(Event):
    kind: ClassVar[str] = "tool_complete"
    call_id: str
    name: str
    duration: float
    is_error: bool
    result: str  # a snippet, cut for display


@dataclass(frozen=True, slots=True)
class ApprovalRequested(Event):
    kind: ClassVar[str] = "approval"
    request_id: str
    command: str
    description: str
    pattern_keys: tuple[str, ...]
    allow_permanent: bool
    timeout: float


@dataclass(frozen=True, slots=True)
class ApprovalResolved(Event):
    kind: ClassVar[str] = "approval_resolved"
    request_id: str
    choice: str  # once | session | always | deny
    by: str  # user | policy | timeout | cancel


@dataclass(frozen=True, slots=True)
class ClarifyRequested(Event):
    kind: ClassVar[str] = "clarify"
    request_id: str
    question: str
    choices: tuple[str, ...]
    timeout: float


@dataclass(frozen=True, slots=True)
class ClarifyResolved(Event):
    kind: ClassVar[str] = "clarify_resolved"
    request_id: str
    answer: str | None  # None: nobody answered
    by: str  # user | policy | timeout | cancel


@dataclass(frozen=True, slots=True)
class Status(Event):
    """A status line from the agent (retrying, compacting, fallback...)."""
    kind: ClassVar[str] = "status"
    level: str
    text: str


@dataclass(frozen=True, slots=True)
class Waiting(Event):
    """The model has sent nothing for ``seconds``. Views say so until the next event of the turn:
    "no reply from MODEL for 40 s — Stop, or keep waiting". Never stored."""
    kind: ClassVar[str] = "waiting"
    model: str
    seconds: float
    limit: float  # the turn fails after this many seconds of silence (0: Hermes decides)
    started: bool  # the answer had begun (a stall) rather than not yet (no first byte)


@dataclass(frozen=True, slots=True)
class Compressed(Event):
    kind: ClassVar[str] = "compressed"
    message: str


@dataclass(frozen=True, slots=True)
class Usage(Event):
    kind: ClassVar[str] = "usage"
    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    context_length: int
    threshold_tokens: int
    last_prompt_tokens: int

    @property
    def reported(self) -> bool:
        """Did the provider report usage? A stream stopped or failed before its end reports none: not "0 tokens"."""
        return bool(self.input_tokens or self.output_tokens)


@dataclass(frozen=True, slots=True)
class Error(Event):
    kind: ClassVar[str] = "error"
    # auth | rate_limit | no_response | no_reply | stalled | dropped | malformed | network | provider
    # | rejected | config | replay | error
    error_kind: str
    message: str
    hint: str


@dataclass(frozen=True, slots=True)
class Cancelled(Event):
    kind: ClassVar[str] = "cancelled"
    message: str


@dataclass(frozen=True, slots=True)
class Done(Event):
    """Always the last event of a turn, whatever happened."""
    kind: ClassVar[str] = "done"
    status: str  # done | failed | cancelled
    text: str  # the final (or partial) answer


@dataclass(frozen=True, slots=True)
class CodeOutput(Event):
    """One output of code the agent ran in the kernel (notebook_run_python; notebook/outputs.py renders it)."""
    kind: ClassVar[str] = "code_output"
    run_id: str
    output: Mapping[str, Any]  # an nbformat output dict, or {"output_type": "clear_output"}


# Every event a turn publishes is one of these (state.reduce matches them all; a test keeps this list whole).
AnyEvent: TypeAlias = (TurnQueued | TurnStarted | Phase | Token | SegmentEnd | Reasoning | ToolStarted
                       | ToolCompleted | ApprovalRequested | ApprovalResolved | ClarifyRequested | ClarifyResolved
                       | Status | Waiting | Compressed | Usage | Error | Cancelled | Done | CodeOutput)

TERMINAL_STATUSES = ("done", "failed", "cancelled")
