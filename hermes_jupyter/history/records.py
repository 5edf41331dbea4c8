"""The records the history file keeps beside the API messages: one per turn, a function of its state (state.py)."""
from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from hermes_jupyter import events as ev
from hermes_jupyter.history.liveness import alive
from hermes_jupyter.state import (
    AnswerBlock,
    Approval,
    ApprovalBlock,
    Block,
    ClarifyBlock,
    ErrorBlock,
    Question,
    ReasoningBlock,
    ToolBlock,
    ToolCall,
    TurnState,
    fold,
)

Record = dict[str, Any]


def iso_time(epoch: float | None = None) -> str:
    """UTC, millisecond precision, fixed width: these strings sort in time order."""
    moment = datetime.fromtimestamp(time.time() if epoch is None else epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def usage_record(data: Any) -> Record:
    data = data if isinstance(data, dict) else {}
    cost = data.get("cost_usd")
    return {"input_tokens": int(data.get("input_tokens") or 0),
            "output_tokens": int(data.get("output_tokens") or 0),
            "cost_usd": float(cost) if isinstance(cost, (int, float)) and not isinstance(cost, bool) else None}


def turn_record(events: Iterable[ev.Event], *, turn_id: str, prompt: str,
                started: float | None = None, attachments: list[str] | None = None) -> Record:
    """One ``turns`` entry built from a turn's events so far (pure).

    ``started`` is the wall-clock (``time.time()``) start of the turn; event
    times are relative to it. Without it the start is estimated as "now minus
    the last event's time", which is only right when called promptly.
    """
    events = list(events)
    if started is None:
        started = time.time() - max((e.time for e in events), default=0.0)
    return state_record(fold(events), turn_id=turn_id, prompt=prompt, started=started, attachments=attachments)


def state_record(state: TurnState, *, turn_id: str, prompt: str, started: float,
                 attachments: list[str] | None = None) -> Record:
    """The ``turns`` entry of a turn in ``state`` (pure); ``started`` as for turn_record."""
    rec: Record = {
        "id": turn_id, "prompt": prompt, "status": state.status, "started": iso_time(started), "ended": None,
        "model": state.last_model, "usage": _usage(state.usage),
        "tools": [{"id": call.call_id, "name": call.name, "args": dict(call.start.args) if call.start else {},
                   "snippet": call.end.result if call.end else "", "is_error": bool(call.end and call.end.is_error),
                   "duration": call.end.duration if call.end else None} for call in state.tools.values()],
        "reasoning": state.reasoning,
        "approvals": [{"command": a.asked.command, "description": a.asked.description,
                       "choice": a.decided.choice if a.decided else None, "by": a.decided.by if a.decided else None}
                      for a in state.approvals.values()],
        "clarify": [{"question": q.asked.question, "choices": list(q.asked.choices),
                     "answer": q.answered.answer if q.answered else None, "by": q.answered.by if q.answered else None}
                    for q in state.questions.values()],
        "error": ({"kind": state.error.error_kind, "message": state.error.message, "hint": state.error.hint}
                  if state.error else None),
        "answer": state.answer,
    }
    if state.done is not None:
        rec["ended"] = iso_time(started + state.done.time)
    if attachments:
        rec["attachments"] = list(attachments)
    return rec


def _usage(usage: ev.Usage | None) -> Record:
    if usage is None:
        return usage_record(None)
    return usage_record({"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
                         "cost_usd": usage.cost_usd})


def _count(value: Any) -> int:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def record_state(rec: Record) -> TurnState:
    """A turn's state from its ``turns`` entry: what the record kept (not the order of its blocks, nor its
    times). Tolerant of records other versions wrote: a missing or odd field reads as empty."""
    def items(key: str) -> list[Record]:
        value = rec.get(key)
        return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []

    def text(item: Record, key: str, default: str = "") -> str:
        return str(item.get(key, default))

    model = text(rec, "model")
    status = text(rec, "status")
    tools: dict[str, ToolCall] = {}
    for i, tool in enumerate(items("tools")):
        call_id, name = str(tool.get("id", f"tool-{i}")), str(tool.get("name"))
        args = tool.get("args") if isinstance(tool.get("args"), dict) else {}
        duration = tool.get("duration")
        end = (ev.ToolCompleted(call_id, name, float(duration), bool(tool.get("is_error")), text(tool, "snippet"))
               if isinstance(duration, (int, float)) else None)
        tools[call_id] = ToolCall(call_id, name, ev.ToolStarted(call_id, name, dict(args or {})), end)
    approvals: dict[str, Approval] = {}
    for i, item in enumerate(items("approvals")):
        asked = ev.ApprovalRequested(str(i), str(item.get("command")), str(item.get("description")), (), False, 0.0)
        decided = (ev.ApprovalResolved(str(i), str(item.get("choice")), str(item.get("by")))
                   if item.get("choice") is not None or item.get("by") is not None else None)
        approvals[str(i)] = Approval(asked, decided)
    questions: dict[str, Question] = {}
    for i, item in enumerate(items("clarify")):
        choices = item.get("choices") if isinstance(item.get("choices"), list) else []
        asked_q = ev.ClarifyRequested(str(i), str(item.get("question")), tuple(str(c) for c in choices or ()), 0.0)
        answer = item.get("answer")
        by = item.get("by")
        answered = (ev.ClarifyResolved(str(i), None if answer is None else str(answer), str(by))
                    if answer is not None or by is not None else None)
        questions[str(i)] = Question(asked_q, answered)
    usage = rec.get("usage") if isinstance(rec.get("usage"), dict) else {}
    cost = (usage or {}).get("cost_usd")
    error = rec.get("error")
    reasoning = rec.get("reasoning")
    answer_text = str(rec.get("answer") or "")
    blocks: list[Block] = [ReasoningBlock(str(reasoning))] if reasoning else []
    blocks += [ToolBlock(k) for k in tools] + [ApprovalBlock(k) for k in approvals] + [ClarifyBlock(k) for k in questions]
    if answer_text:
        blocks.append(AnswerBlock(answer_text))
    finished = status in ev.TERMINAL_STATUSES
    error_event = (ev.Error(str(error.get("kind")), str(error.get("message")), str(error.get("hint")))
                   if isinstance(error, dict) and error else None)
    if error_event is not None:
        blocks.append(ErrorBlock(error_event))
    return TurnState(
        prompt=str(rec.get("prompt") or ""), model=model, answering=bool(blocks), blocks=tuple(blocks),
        paragraphs=("" if finished else answer_text,), tools=tools, approvals=approvals, questions=questions,
        usage=ev.Usage(model, _count((usage or {}).get("input_tokens")), _count((usage or {}).get("output_tokens")),
                       float(cost) if isinstance(cost, (int, float)) and not isinstance(cost, bool) else None,
                       0, 0, 0),
        error=error_event, status=status, done=ev.Done(status, answer_text) if finished else None)


def session_usage(turns: Iterable[Record], start: Record | None = None) -> Record:
    """Token and cost totals over a session's turn records (added to ``start``: the totals of the turns before)."""
    usage: Record = dict(start) if start else {"input_tokens": 0, "output_tokens": 0, "cost_usd": None}
    for turn in turns:
        u = turn.get("usage") or {}
        usage["input_tokens"] += int(u.get("input_tokens") or 0)
        usage["output_tokens"] += int(u.get("output_tokens") or 0)
        if u.get("cost_usd"):
            usage["cost_usd"] = (usage["cost_usd"] or 0.0) + float(u["cost_usd"])
    return usage


INTERRUPTED = "interrupted"  # the turn's kernel stopped before it ended (liveness.py)


def settle_dead(turns: list[Record]) -> tuple[list[Record], bool]:
    """``turns`` with each running turn of a kernel that is gone marked ``interrupted``, keeping what it
    had (answer so far, tools, decisions); and whether any was. Its end is the last moment it was seen."""
    out: list[Record] = []
    changed = False
    for turn in turns:
        if turn.get("status") == "running" and not alive(turn):
            kernel = turn.get("kernel")
            kernel = kernel if isinstance(kernel, dict) else {}
            turn = {k: v for k, v in turn.items() if k != "kernel"}
            turn.update(status=INTERRUPTED, ended=kernel.get("seen") or turn.get("ended"))
            changed = True
        out.append(turn)
    return out, changed
