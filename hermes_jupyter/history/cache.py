"""What keeps a save's cost to what changed: the store's caches (store.py uses them under its lock).

A session's record comes back on every save (turn start, every 5 s, turn end)
holding the whole conversation; only its end changes. Three caches, each
exact (a miss only costs time):

* ``MessageCache``: the sanitized, redacted messages of a session and a copy
  of the raw messages they came from. A new save compares the raw messages
  with that copy (``==``, C speed, no serializing) and sanitizes and redacts
  only from the last user message before the first difference: sanitizing
  never looks across a user message, so the part before it stays as it was.
* ``TurnCache``: each turn's redacted record, reused while the turn's record
  is equal to the copy kept of it (a finished turn's never changes).
* ``DocumentText``: the file's bytes built from the bytes of each message and
  turn, kept by identity while that object is in the document, so a save
  serializes only new objects. The result is byte for byte
  ``json.dumps(doc, ensure_ascii=False, indent=1, default=str) + "\\n"``.
"""
from __future__ import annotations

import copy
import hashlib
import itertools
import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from hermes_jupyter.safety.sanitize import sanitize_history
from hermes_jupyter.util.prefix import common_prefix

Record = dict[str, Any]
Redact = Callable[[Any], Any]


def digest(item: Any) -> bytes | None:
    """A hash of the item's JSON (None when it has none: non-string keys, cycles)."""
    try:
        data = json.dumps(item, sort_keys=True, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return None
    return hashlib.blake2b(data.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def dumps_at(obj: Any, level: int) -> bytes:
    """``obj`` as ``json.dumps(..., indent=1)`` writes it nested ``level`` deep."""
    text = json.dumps(obj, ensure_ascii=False, indent=1, default=str)
    if level:
        text = text.replace("\n", "\n" + " " * level)  # JSON strings hold no raw newline
    # Lone surrogates (undecodable tool output) become \udcXX escapes: valid UTF-8, lossless JSON.
    return text.encode("utf-8", "backslashreplace")


def _key(key: str) -> bytes:
    return json.dumps(key, ensure_ascii=False).encode("utf-8", "backslashreplace")


def _user_message(item: Any) -> bool:
    return isinstance(item, dict) and item.get("role") == "user"


class MessageCache:
    """One session's messages as the file holds them, and the raw messages they came from."""

    def __init__(self) -> None:
        self.raw: list[Any] = []  # deep copies of the raw messages of the last save
        self.clean: list[Any] = []  # sanitized + redacted, what the file holds
        self.keys: list[bytes | None] = []  # digest of each clean message before redaction
        self.starts: dict[int, int] = {0: 0}  # raw index of a user message -> its index in clean

    def seed(self, messages: list[Any]) -> None:
        """Messages read from a file this redactor wrote: raw and clean alike (sanitizing is idempotent)."""
        self.raw = copy.deepcopy(messages)
        self.clean = list(messages)
        self.keys = [None] * len(messages)
        self.starts = {0: 0} | {i: i for i, m in enumerate(messages) if _user_message(m)}

    def update(self, messages: list[Any], redact: Redact) -> tuple[list[Any], int]:
        """The clean list for ``messages`` (the same list object when nothing changed), and how many
        raw messages were sanitized again."""
        same = common_prefix(messages, self.raw)  # in C: a long session compares 2,000 messages a save
        if same == len(messages) == len(self.raw):
            return self.clean, 0
        # Sanitize again from the last user message before the first change (equal in both lists).
        start = max(i for i in self.starts if i < same or i == 0)
        cut = self.starts[start]
        # What this part held, by digest: an unchanged message is not redacted again.
        before: dict[bytes, Any] = {}
        for key, item in zip(self.keys[cut:], self.clean[cut:], strict=True):
            key = key if key is not None else digest(item)  # seeded from the file: already redacted
            if key is not None:
                before[key] = item
        clean, keys = self.clean[:cut], self.keys[:cut]
        starts = {i: c for i, c in self.starts.items() if i <= start}
        tail = messages[start:]
        bounds = sorted({0, len(tail)} | {i for i, m in enumerate(tail) if _user_message(m)})
        for lo, hi in itertools.pairwise(bounds):  # a user message and what follows it
            starts[start + lo] = len(clean)
            for item in sanitize_history(tail[lo:hi]):
                key = digest(item)
                keys.append(key)
                clean.append(before[key] if key is not None and key in before else redact(item))
        self.raw = self.raw[:start] + copy.deepcopy(tail)
        self.clean, self.keys, self.starts = clean, keys, starts
        return clean, len(tail)


class TurnCache:
    """Each turn's redacted record, by turn id, with a copy of the record it was made from.

    A record handed over again as the very same object counts as unchanged without comparing
    it (callers pass a new object for a turn that changed, as ``Session.record`` does: a
    finished turn's record is built once); any other record is compared with the copy.
    """

    def __init__(self) -> None:
        self._turns: dict[str, tuple[Any, Any, Any]] = {}  # id -> (copy, redacted, the object given)
        self._given: tuple[int, ...] = ()  # ids of the objects of the last update, in order
        self._given_objects: list[Any] = []  # those objects
        self._out: list[Any] = []  # what it returned

    def seed(self, turns: Iterable[Record]) -> None:
        self._turns = {t["id"]: (copy.deepcopy(t), t, None) for t in turns if isinstance(t.get("id"), str)}
        self._given, self._given_objects, self._out = (), [], []

    def update(self, turns: list[Record], redact: Redact) -> tuple[list[Any], int]:
        given = tuple(map(id, turns))
        # The leading records handed over again as the same objects are unchanged (see above): in a
        # long session all but the last one or two, found in C; only the rest is looked at.
        same = common_prefix(given, self._given) if len(self._turns) == len(self._given) else 0
        fresh, redacted = {}, 0
        out = self._out[:same]
        for turn in turns[same:]:
            hit = self._turns.get(turn["id"])
            if hit is None or (hit[2] is not turn and hit[0] != turn):
                hit = (copy.deepcopy(turn), redact(turn), turn)
                redacted += 1
            elif hit[2] is not turn:
                hit = (hit[0], hit[1], turn)
            fresh[turn["id"]] = hit
            out.append(hit[1])
        if same:
            for turn in self._given_objects[same:]:  # only what the session still holds
                self._turns.pop(turn["id"], None)
            self._turns.update(fresh)
        else:
            self._turns = fresh
        self._given, self._given_objects, self._out = given, list(turns), out
        return out, redacted


# Between two items of a "messages" or "turns" list: deeper lines are indented more, and JSON
# strings hold no raw newline, so this occurs nowhere else in such a list.
_ITEM_SPLIT = re.compile(rb",\n(?=    [^ ])")


class DocumentText:
    """The file's bytes, built from cached bytes of the messages and turns (by object identity)."""

    def __init__(self) -> None:
        # Per session, its "messages" and "turns" lists: the identities of the items, the items
        # (kept, so no other object can take one of those ids while cached) and their bytes.
        self._blocks: dict[tuple[str, str], tuple[tuple[int, ...], list[Any], list[bytes]]] = {}
        self.rendered = 0  # items serialized by the last render (for tests and benchmarks)

    def seed(self, raw: bytes, doc: Mapping[str, Any]) -> None:
        """Take each message's and turn's bytes from the file ``doc`` was parsed from, so the
        first save after a restart serializes only what is new. A list whose pieces do not
        parse back to its items (a file edited by hand) is left to be serialized."""
        sessions = doc.get("sessions")
        at = raw.find(b'\n "sessions": {\n')
        if not isinstance(sessions, dict) or at < 0:
            return
        for name, rec in sessions.items():
            start = raw.find(b"\n  " + _key(name) + b": {\n", at)
            if start < 0 or not isinstance(rec, dict):
                return
            at = start
            for key in ("messages", "turns"):
                items = rec.get(key)
                head = raw.find(b"\n   " + _key(key) + b": [\n", start)
                if not isinstance(items, list) or not items or head < 0:
                    continue
                head += len(key) + 10
                end = raw.find(b"\n   ]", head)
                pieces = _ITEM_SPLIT.split(raw[head:end]) if end > 0 else []
                try:
                    if len(pieces) != len(items) or any(json.loads(p) != x for p, x in zip(pieces, items, strict=True)):
                        continue
                except ValueError:
                    continue
                self._blocks[(name, key)] = (tuple(map(id, items)), list(items), pieces)

    def render(self, doc: Mapping[str, Any]) -> bytes:
        blocks: dict[tuple[str, str], tuple[tuple[int, ...], list[Any], list[bytes]]] = {}
        parts: list[bytes] = []  # joined once at the end: the file is copied once

        def block(where: tuple[str, str], items: list[Any]) -> None:
            ids = tuple(map(id, items))
            hit = self._blocks.get(where)
            if hit is None or hit[0] != ids:
                same = common_prefix(ids, hit[0]) if hit is not None else 0  # in C: a long list changes at its end
                known = dict(zip(hit[0][same:], hit[2][same:], strict=True)) if hit is not None else {}
                texts = hit[2][:same] if hit is not None else []
                for key, obj in zip(ids[same:], items[same:], strict=True):
                    text = known.get(key)
                    if text is None:
                        text = b"    " + dumps_at(obj, 4)  # with its indent
                        self.rendered += 1
                    texts.append(text)
                hit = (ids, list(items), texts)
            blocks[where] = hit
            parts.append(b"[\n")
            parts.append(b",\n".join(hit[2]))
            parts.append(b"\n   ]")

        def session(name: str, rec: Any) -> None:  # nested 2 deep: {"sessions": {"name": rec}}
            if not isinstance(rec, dict) or not rec or not all(isinstance(k, str) for k in rec):
                parts.append(dumps_at(rec, 2))
                return
            parts.append(b"{\n")
            for n, (key, value) in enumerate(rec.items()):
                parts.append(b"   " + _key(key) + b": " if n == 0 else b",\n   " + _key(key) + b": ")
                if key in ("messages", "turns") and isinstance(value, list) and value:
                    block((name, key), value)
                else:
                    parts.append(dumps_at(value, 3))
            parts.append(b"\n  }")

        self.rendered = 0
        if not doc or not all(isinstance(k, str) for k in doc):
            return dumps_at(doc, 0) + b"\n"
        parts.append(b"{\n")
        for n, (key, value) in enumerate(doc.items()):
            parts.append(b" " + _key(key) + b": " if n == 0 else b",\n " + _key(key) + b": ")
            if key == "sessions" and isinstance(value, dict) and value and all(isinstance(k, str) for k in value):
                parts.append(b"{\n")
                for i, (name, rec) in enumerate(value.items()):
                    parts.append(b"  " + _key(name) + b": " if i == 0 else b",\n  " + _key(name) + b": ")
                    session(name, rec)
                parts.append(b"\n }")
            else:
                parts.append(dumps_at(value, 1))
        parts.append(b"\n}\n")
        self._blocks = blocks  # only what the document still holds
        return b"".join(parts)
