"""Who settled an approval or a question, in the words every view uses (live, static, text, export)."""
from __future__ import annotations

NO_STDIN = "nobody can answer in this run"

BY = {"user": "by you", "policy": "by the approval policy", "timeout": "nobody answered in time",
      "cancel": "the turn was stopped", "nobody": NO_STDIN}

# An export is read after the run: "could", not "can".
BY_AFTERWARDS = {**BY, "nobody": "nobody could answer"}


def because(by: str, policy: str = "") -> str:
    """As a sentence goes on: "by you", "by the approval policy 'allow'", "because nobody answered in time"."""
    phrase = BY.get(by)
    if phrase is None:
        return by
    if by == "policy" and policy:
        return f"{phrase} '{policy}'"
    return phrase if phrase.startswith("by ") else f"because {phrase}"


# A turn's status where it is read later (export, /sessions, a saved output): "interrupted" needs its reason.
STATUS = {"interrupted": "interrupted (the kernel stopped)"}


def status_words(status: str) -> str:
    return STATUS.get(status, status)
