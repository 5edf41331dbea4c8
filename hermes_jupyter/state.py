"""A turn's state: what its events say so far, built by one pure function, ``reduce``.

Every picture of a turn is drawn from a ``TurnState``: the static rendering
(views/static.py), the history's record (history/records.py), the export, the
final rendering a live view is replaced by. None of them reads the event stream
itself, so they cannot disagree about it. ``reduce`` matches every event type
and ends in ``assert_never``: an event type added to events.py and not handled
here fails mypy.

The state is frozen; ``reduce`` returns a new one and never changes the old, so
a view can compare the state before an event with the state after it.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeAlias, assert_never, cast

from hermes_jupyter import events as ev


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call: how it started and, once it has, how it ended (a completion may come without a start)."""
    call_id: str
    name: str
    start: ev.ToolStarted | None
    end: ev.ToolCompleted | None = None


@dataclass(frozen=True, slots=True)
class Approval:
    asked: ev.ApprovalRequested
    decided: ev.ApprovalResolved | None = None


@dataclass(frozen=True, slots=True)
class Question:
    asked: ev.ClarifyRequested
    answered: ev.ClarifyResolved | None = None


# ----- the blocks of a turn, in the order the reader sees them ----------------------------------

@dataclass(frozen=True, slots=True)
class AnswerBlock:
    text: str


@dataclass(frozen=True, slots=True)
class ReasoningBlock:
    text: str


@dataclass(frozen=True, slots=True)
class ToolBlock:
    call_id: str  # the card: TurnState.tools[call_id]


@dataclass(frozen=True, slots=True)
class ApprovalBlock:
    request_id: str  # TurnState.approvals[request_id]


@dataclass(frozen=True, slots=True)
class ClarifyBlock:
    request_id: str  # TurnState.questions[request_id]


@dataclass(frozen=True, slots=True)
class OutputBlock:
    run_id: str  # TurnState.outputs[run_id]: one block per run of the agent's code, where its first output came


@dataclass(frozen=True, slots=True)
class ErrorBlock:
    error: ev.Error


@dataclass(frozen=True, slots=True)
class NoticeBlock:
    text: str


Block: TypeAlias = (AnswerBlock | ReasoningBlock | ToolBlock | ApprovalBlock | ClarifyBlock | OutputBlock
                    | ErrorBlock | NoticeBlock)


@dataclass(frozen=True, slots=True)
class TurnState:
    """What a turn's events say so far. The mappings are never changed: ``reduce`` builds new ones."""
    prompt: str = ""
    session: str = ""
    model: str = ""  # as the turn started; the usage may name another (a fallback model)
    queued: int | None = None  # position in the queue while the turn waits for the one before it
    phase: str = ""  # what a starting turn waits for, until its first output (live only)
    answering: bool = False  # the first output (reasoning, answer, tool) has come
    waiting: ev.Waiting | None = None  # the model is silent; until the next event (live only)
    blocks: tuple[Block, ...] = ()
    open: bool = False  # the last block is answer or reasoning text that the next piece continues
    paragraphs: tuple[str, ...] = ("",)  # the answer's text, split where the model ended a segment
    tools: Mapping[str, ToolCall] = field(default_factory=dict)
    approvals: Mapping[str, Approval] = field(default_factory=dict)
    questions: Mapping[str, Question] = field(default_factory=dict)
    outputs: Mapping[str, tuple[Mapping[str, Any], ...]] = field(default_factory=dict)
    usage: ev.Usage | None = None  # the last reported
    error: ev.Error | None = None  # the last
    status: str = "running"  # the outcome once done: done | failed | cancelled (a record may say interrupted)
    done: ev.Done | None = None

    @property
    def reasoning(self) -> str:
        return "".join(b.text for b in self.blocks if isinstance(b, ReasoningBlock))

    @property
    def answer(self) -> str:
        """The final answer once done; before that the text so far, a paragraph per segment."""
        if self.done is not None:
            return self.done.text
        return "\n\n".join(p for p in self.paragraphs if p.strip())

    @property
    def last_model(self) -> str:
        """The model that answered: the usage's if it names one."""
        return self.usage.model if self.usage is not None and self.usage.model else self.model


def _closed(state: TurnState, **changes: Any) -> TurnState:
    """The state with its open text block closed, then ``changes`` made."""
    return replace(state, open=False, **changes)


def _text(state: TurnState, block: type[AnswerBlock] | type[ReasoningBlock], text: str) -> tuple[Block, ...]:
    """The blocks with ``text`` appended to the open block of that kind, or in a new one."""
    last = state.blocks[-1] if state.blocks else None
    if state.open and isinstance(last, block):
        return (*state.blocks[:-1], block(last.text + text))
    return (*state.blocks, block(text))


def _add(state: TurnState, block: Block) -> tuple[Block, ...]:
    return (*state.blocks, block)


def reduce(state: TurnState, any_event: ev.Event) -> TurnState:
    """The state after ``any_event`` (pure: ``state`` is not changed)."""
    # A turn publishes only the types of AnyEvent (tests/test_state.py holds the union to events.py),
    # so the match below is over that union, and assert_never makes mypy name a type it misses.
    event = cast(ev.AnyEvent, any_event)
    if state.waiting is not None and not isinstance(event, ev.Waiting):
        state = replace(state, waiting=None)  # any sign of life ends the silence
    match event:  # the answer's pieces first: thousands a turn
        case ev.Token(text=text):
            return replace(state, blocks=_text(state, AnswerBlock, text), open=True, answering=True,
                           paragraphs=(*state.paragraphs[:-1], state.paragraphs[-1] + text))
        case ev.Reasoning(text=text):
            return replace(state, blocks=_text(state, ReasoningBlock, text), open=True, answering=True)
        case ev.TurnQueued(position=position):
            return replace(state, queued=position)
        case ev.TurnStarted(session=session, prompt=prompt, model=model):
            return replace(state, queued=None, session=session, prompt=prompt or state.prompt, model=model)
        case ev.Phase(text=text):
            return state if state.answering else replace(state, phase=text)
        case ev.Waiting():
            return replace(state, waiting=event)
        case ev.SegmentEnd():
            return _closed(state, paragraphs=(*state.paragraphs, ""))
        case ev.ToolStarted(call_id=call_id, name=name):
            # A call id seen again starts a new card (the record keeps the last)
            return _closed(state, blocks=_add(state, ToolBlock(call_id)), answering=True,
                           tools={**state.tools, call_id: ToolCall(call_id, name, event)})
        case ev.ToolCompleted(call_id=call_id, name=name):
            call = state.tools.get(call_id) or ToolCall(call_id, name, None)
            return replace(state, tools={**state.tools, call_id: replace(call, end=event)})
        case ev.ApprovalRequested(request_id=request_id):
            return _closed(state, blocks=_add(state, ApprovalBlock(request_id)),
                           approvals={**state.approvals, request_id: Approval(event)})
        case ev.ApprovalResolved(request_id=request_id):
            approval = state.approvals.get(request_id)
            if approval is None:
                return state  # nothing asked it
            return replace(state, approvals={**state.approvals, request_id: replace(approval, decided=event)})
        case ev.ClarifyRequested(request_id=request_id):
            return _closed(state, blocks=_add(state, ClarifyBlock(request_id)),
                           questions={**state.questions, request_id: Question(event)})
        case ev.ClarifyResolved(request_id=request_id):
            question = state.questions.get(request_id)
            if question is None:
                return state
            return replace(state, questions={**state.questions, request_id: replace(question, answered=event)})
        case ev.CodeOutput(run_id=run_id, output=output):
            if run_id in state.outputs:  # the run's block is where its first output came
                return replace(state, outputs={**state.outputs, run_id: (*state.outputs[run_id], output)})
            return _closed(state, blocks=_add(state, OutputBlock(run_id)),
                           outputs={**state.outputs, run_id: (output,)})
        case ev.Status(level=level, text=text):
            notice = text if level == "info" else f"{level}: {text}"  # news, not a warning: no label
            return _closed(state, blocks=_add(state, NoticeBlock(notice)))
        case ev.Compressed(message=message) | ev.Cancelled(message=message):
            return _closed(state, blocks=_add(state, NoticeBlock(message)))
        case ev.Usage():
            return replace(state, usage=event)
        case ev.Error():
            return _closed(state, blocks=_add(state, ErrorBlock(event)), error=event)
        case ev.Done(status=status):
            return _closed(state, done=event, status=status)
        case _:
            assert_never(event)


def coalesced(events: Iterable[ev.Event]) -> Iterator[ev.Event]:
    """Runs of tokens (and of reasoning) as one event each: the same state, without a copy per token."""
    first: ev.Token | ev.Reasoning | None = None  # the first of the run being joined
    texts: list[str] = []
    for e in events:
        if isinstance(e, (ev.Token, ev.Reasoning)):
            if type(e) is type(first):
                texts.append(e.text)
                continue
            if first is not None:
                yield type(first)("".join(texts), seq=first.seq, time=first.time)
            first, texts = e, [e.text]
            continue
        if first is not None:
            yield type(first)("".join(texts), seq=first.seq, time=first.time)
            first = None
        yield e
    if first is not None:
        yield type(first)("".join(texts), seq=first.seq, time=first.time)


def fold(events: Iterable[ev.Event], state: TurnState | None = None) -> TurnState:
    """The state after all of ``events`` (from an empty turn unless ``state`` is given)."""
    state = state if state is not None else TurnState()
    for e in coalesced(events):
        state = reduce(state, e)
    return state
