"""Two writers saved the same session: the record the file keeps (store.py's docstring says why)."""
from __future__ import annotations

from typing import Any

from hermes_jupyter import events as ev
from hermes_jupyter.util.prefix import common_prefix

__all__ = ["merge_sessions", "message_count", "turn_counts"]

Record = dict[str, Any]


def _rank(turn: Record) -> int:
    """How settled a turn's record is: running, then interrupted (another kernel's guess that its writer
    is gone: records.settle_dead), then ended by its own writer (done, failed, cancelled). A record
    never gives way to a less settled one, so a writer's real end replaces the guess whoever saved last."""
    status = turn.get("status")
    if status in ev.TERMINAL_STATUSES:
        return 2
    return 1 if status == "interrupted" else 0


def message_count(turn: Record) -> int | None:
    """How many of the session's messages the turn added: None if its record has no count, or one that is not
    a count (files of earlier versions, a hand-edited file)."""
    c = turn.get("message_count")
    return c if isinstance(c, int) and not isinstance(c, bool) and c >= 0 else None


def turn_counts(turns: list[Record], messages: int) -> list[int | None] | None:
    """Each turn's ``message_count`` (None where it has none), or None if they cannot describe
    ``messages`` messages (more than there are, or not counts: a hand-edited file)."""
    counts: list[int | None] = []
    for turn in turns:
        c = message_count(turn)
        if c is None and turn.get("message_count") is not None:
            return None
        counts.append(c)
    return counts if sum(c or 0 for c in counts) <= messages else None


def _slices(rec: Record) -> tuple[list[Any], dict[str, list[Any]]]:
    """A session's messages as its lead (owned by no turn) and each turn's slice, by turn id."""
    messages, turns = rec["messages"], rec["turns"]
    counts = turn_counts(turns, len(messages))
    if counts is None:
        return messages, {}
    at = len(messages) - sum(c or 0 for c in counts)
    lead, slices = messages[:at], {}
    for turn, c in zip(turns, counts, strict=True):
        if c and isinstance(turn.get("id"), str):
            slices[turn["id"]] = messages[at:at + c]
        at += c or 0
    return lead, slices


def merge_sessions(old: Record, new: Record) -> tuple[Record, bool]:
    """Two writers saved the same session: keep every turn of both, and each turn's messages.

    "Latest" is the writer whose record was built last (``updated``), not the
    one that got the lock last, so a stale periodic save cannot roll back the
    messages or a finished turn written by the final save. Returns the record
    and whether ``old`` held turns that ``new`` does not know (another kernel's).
    """
    new_is_newer = str(new.get("updated", "")) >= str(old.get("updated", ""))
    turns: dict[str, Record] = {
        t["id"] if isinstance(t.get("id"), str) else f"\0{i}": t  # a hand-edited turn without id stays
        for i, t in enumerate(old["turns"])
    }
    from_new: set[str] = set()
    for turn in new["turns"]:
        key = turn["id"]
        have = turns.get(key)
        if have is turn:  # our own last save: unchanged turns are the same objects (TurnCache)
            from_new.add(key)
            continue
        if have is None or _rank(turn) > _rank(have) or (_rank(turn) == _rank(have) and new_is_newer):
            turns[key] = turn
            from_new.add(key)
        # else: never let a running snapshot replace a finished turn
    # sorted() is stable: turns with the same start keep their order.
    merged = sorted(turns.values(), key=lambda t: str(t.get("started") or ""))
    foreign = len(turns) > len(new["turns"])
    out = dict(new if new_is_newer else old)
    out.update(turns=merged, created=min(str(old.get("created") or new["created"]), new["created"]),
               updated=max(str(old.get("updated", "")), new["updated"]))
    if len(from_new) < len(turns):  # some turns' messages are in the file only: rebuilt by turn
        out["messages"] = _merged_messages(old, new, merged, from_new, new_is_newer)
    if not new["title"]:
        out["title"] = old.get("title") or ""
    return out, foreign


def _merged_messages(old: Record, new: Record, turns: list[Record], from_new: set[str],
                     new_is_newer: bool) -> list[Any]:
    """The lead both share (the longer where one begins the other, else the newer writer's: a
    conversation compressed in one kernel), then each turn's slice, from the record its turn was
    taken from, in the turns' order. Each slice was sanitized apart (MessageCache), so the list
    replays as it is."""
    old_lead, old_slices = _slices(old)
    new_lead, new_slices = _slices(new)
    if len(old_lead) <= len(new_lead) and common_prefix(new_lead, old_lead) == len(old_lead):
        lead = new_lead
    elif len(new_lead) < len(old_lead) and common_prefix(old_lead, new_lead) == len(new_lead):
        lead = old_lead
    else:
        lead = new_lead if new_is_newer else old_lead
    messages = list(lead)
    for turn in turns:
        key = turn.get("id")
        if isinstance(key, str):
            messages += (new_slices if key in from_new else old_slices).get(key, ())
    return messages
