"""The records the history file keeps beside the API messages: one per turn, built from its events."""
from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from hermes_jupyter import events as ev
from hermes_jupyter.history.liveness import alive

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
    rec: Record = {
        "id": turn_id, "prompt": prompt, "status": "running", "started": iso_time(started), "ended": None,
        "model": "", "usage": usage_record(None), "tools": [], "reasoning": "", "approvals": [],
        "clarify": [], "error": None, "answer": "",
    }
    tools: dict[str, Record] = {}
    approvals: dict[str, Record] = {}
    clarify: dict[str, Record] = {}
    segments: list[list[str]] = [[]]
    reasoning: list[str] = []
    done: ev.Done | None = None
    for e in events:
        if isinstance(e, ev.TurnStarted):
            rec["model"] = e.model
        elif isinstance(e, ev.Token):
            segments[-1].append(e.text)
        elif isinstance(e, ev.SegmentEnd):
            segments.append([])
        elif isinstance(e, ev.Reasoning):
            reasoning.append(e.text)
        elif isinstance(e, ev.ToolStarted):
            tools[e.call_id] = {"id": e.call_id, "name": e.name, "args": dict(e.args),
                                "snippet": "", "is_error": False, "duration": None}
        elif isinstance(e, ev.ToolCompleted):
            tool = tools.setdefault(e.call_id, {"id": e.call_id, "name": e.name, "args": {}})
            tool.update(snippet=e.result, is_error=e.is_error, duration=e.duration)
        elif isinstance(e, ev.ApprovalRequested):
            approvals[e.request_id] = {"command": e.command, "description": e.description,
                                       "choice": None, "by": None}
        elif isinstance(e, ev.ApprovalResolved) and e.request_id in approvals:
            approvals[e.request_id].update(choice=e.choice, by=e.by)
        elif isinstance(e, ev.ClarifyRequested):
            clarify[e.request_id] = {"question": e.question, "choices": list(e.choices),
                                     "answer": None, "by": None}
        elif isinstance(e, ev.ClarifyResolved) and e.request_id in clarify:
            clarify[e.request_id].update(answer=e.answer, by=e.by)
        elif isinstance(e, ev.Usage):
            rec["usage"] = usage_record({"input_tokens": e.input_tokens, "output_tokens": e.output_tokens,
                                   "cost_usd": e.cost_usd})
            rec["model"] = e.model or rec["model"]
        elif isinstance(e, ev.Error):
            rec["error"] = {"kind": e.error_kind, "message": e.message, "hint": e.hint}
        elif isinstance(e, ev.Done):
            done = e
    rec.update(tools=list(tools.values()), approvals=list(approvals.values()),
               clarify=list(clarify.values()), reasoning="".join(reasoning))
    if done is not None:
        rec.update(status=done.status, ended=iso_time(started + done.time), answer=done.text)
    else:  # the partial answer, one paragraph per text segment
        rec["answer"] = "\n\n".join(t for t in ("".join(s) for s in segments) if t.strip())
    if attachments:
        rec["attachments"] = list(attachments)
    return rec


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
