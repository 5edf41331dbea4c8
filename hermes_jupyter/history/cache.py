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
  turn already in the file (where they lie is kept by the object's identity,
  the bytes are read back from the file), so a save serializes only new
  objects. The result is byte for byte
  ``json.dumps(doc, ensure_ascii=False, indent=1, default=str) + "\\n"``.
"""
from __future__ import annotations

import copy
import hashlib
import itertools
import json
import re
import zlib
from array import array
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from hermes_jupyter.safety.sanitize import sanitize_history
from hermes_jupyter.util.prefix import common_prefix

if TYPE_CHECKING:
    from typing_extensions import Buffer  # collections.abc.Buffer from Python 3.12

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

    def update(self, messages: list[Any], redact: Redact, cuts: Iterable[int] = ()) -> tuple[list[Any], int]:
        """The clean list for ``messages`` (the same list object when nothing changed), and how many
        raw messages were sanitized again. ``cuts`` (where each turn's slice begins) are sanitized apart,
        like user messages: a slice never loses a message to its neighbour's (``clean_index``)."""
        cuts = [c for c in cuts if 0 < c < len(messages)]
        same = common_prefix(messages, self.raw)  # in C: a long session compares 2,000 messages a save
        if same == len(messages) == len(self.raw) and all(c in self.starts for c in cuts):
            return self.clean, 0
        # Sanitize again from the last user message (or cut) before the first change (equal in both lists).
        start = max(i for i in self.starts if i < same or i == 0)
        missing = [c for c in cuts if c <= start and c not in self.starts]
        if missing:
            start = max(i for i in self.starts if i <= min(missing))
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
        bounds = sorted({0, len(tail)} | {i for i, m in enumerate(tail) if _user_message(m)}
                        | {c - start for c in cuts if c > start})
        for lo, hi in itertools.pairwise(bounds):  # a user message and what follows it
            starts[start + lo] = len(clean)
            for item in sanitize_history(tail[lo:hi]):
                key = digest(item)
                keys.append(key)
                clean.append(before[key] if key is not None and key in before else redact(item))
        self.raw = self.raw[:start] + copy.deepcopy(tail)
        self.clean, self.keys, self.starts = clean, keys, starts
        return clean, len(tail)

    def clean_index(self, raw: int) -> int:
        """Where the raw message at ``raw`` (a user message or a cut of the last update) begins in the clean
        list; the clean list's length for the end."""
        return len(self.clean) if raw >= len(self.raw) else self.starts[raw]


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

    def update(self, turns: list[Record], redact: Redact,
               counts: list[int | None] | None = None) -> tuple[list[Any], int]:
        """The redacted records, and how many were redacted. ``counts``: each turn's ``message_count`` as
        the file holds it (its slice sanitized), None to leave the record's own."""
        given = tuple(map(id, turns))
        # The leading records handed over again as the same objects are unchanged (see above): in a
        # long session all but the last one or two, found in C; only the rest is looked at.
        same = common_prefix(given, self._given) if len(self._turns) == len(self._given) else 0
        fresh, redacted = {}, 0
        out = self._out[:same]
        for n, turn in enumerate(turns[same:], same):
            hit = self._turns.get(turn["id"])
            if hit is None or (hit[2] is not turn and hit[0] != turn):
                hit = (copy.deepcopy(turn), redact(turn), turn)
                redacted += 1
            elif hit[2] is not turn:
                hit = (hit[0], hit[1], turn)
            count = counts[n] if counts is not None else None
            if count is not None and hit[1].get("message_count") != count:
                hit = (hit[0], {**hit[1], "message_count": count}, hit[2])
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


class _Block(NamedTuple):
    """One "messages" or "turns" list as the text last rendered holds it."""
    ids: tuple[int, ...]  # the items' identities
    items: list[Any]  # the items (kept, so no other object can take one of those ids while cached)
    base: int  # where the first item starts in the text
    spans: array[int]  # start and end of each item, from base: the items lie in a row, ",\n" between


class DocumentText:
    """The file's bytes, built from the bytes of the messages and turns it already holds (by object
    identity), read back from the file it was written to.

    Keeping each item's bytes in memory cost as much again as the conversation (~4.5 KB a turn,
    kept as long as the session), so only where they lie in the text is kept; a render takes them from the file,
    checked to be exactly the text last rendered (length and CRC-32; else everything is serialized
    again, which only costs time). An unchanged leading part of a list is one slice.
    """

    def __init__(self) -> None:
        self._blocks: dict[tuple[str, str], _Block] = {}  # per session, its "messages" and "turns"
        self._size = -1  # length and CRC-32 of the text the blocks point into
        self._crc = 0
        self.rendered = 0  # items serialized by the last render (for tests and benchmarks)

    def seed(self, raw: bytes, doc: Mapping[str, Any]) -> None:
        """Take each message's and turn's bytes from the file ``doc`` was parsed from, so the
        first save after a restart serializes only what is new. A list whose pieces do not
        parse back to its items (a file edited by hand) is left to be serialized."""
        sessions = doc.get("sessions")
        at = raw.find(b'\n "sessions": {\n')
        if not isinstance(sessions, dict) or at < 0:
            return
        self._blocks, self._size, self._crc = {}, len(raw), zlib.crc32(raw)
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
                if end < 0:
                    continue
                spans = array("Q", [0])
                for sep in _ITEM_SPLIT.finditer(raw, head, end):
                    spans.extend((sep.start() - head, sep.end() - head))
                spans.append(end - head)
                try:
                    if len(spans) != 2 * len(items) or any(
                            json.loads(raw[head + a:head + b]) != x
                            for a, b, x in zip(spans[::2], spans[1::2], items, strict=True)):
                        continue
                except ValueError:
                    continue
                self._blocks[(name, key)] = _Block(tuple(map(id, items)), list(items), head, spans)

    def render(self, doc: Mapping[str, Any], current: Callable[[], Buffer | None] = lambda: None) -> bytes:
        """The document's text (see ``pieces``)."""
        return b"".join(self.pieces(doc, current))

    def pieces(self, doc: Mapping[str, Any], current: Callable[[], Buffer | None] = lambda: None
               ) -> list[bytes | memoryview]:
        """The document's text in pieces, to be written one after the other: some are views of
        ``current()``, the file's bytes now (None if it has none), asked only when some item's bytes
        would come from it. Nothing the size of the file is built: the file was written from a
        joined copy and read back whole, two such buffers a save, which fragment the heap and stay as RSS."""
        source = current() if self._blocks else None
        view = memoryview(source if source is not None else b"")
        if source is None or len(view) != self._size or zlib.crc32(view) != self._crc:
            self._blocks, view = {}, memoryview(b"")
        blocks: dict[tuple[str, str], _Block] = {}
        parts: list[bytes | memoryview] = []
        size = 0

        def put(piece: bytes | memoryview) -> None:
            nonlocal size
            parts.append(piece)
            size += len(piece)

        def block(where: tuple[str, str], items: list[Any]) -> None:
            ids = tuple(map(id, items))
            hit = self._blocks.get(where)
            put(b"[\n")
            base, spans = size, array("Q")
            same = common_prefix(ids, hit.ids) if hit is not None else 0  # in C: a list changes at its end
            if hit is not None and same:
                put(view[hit.base:hit.base + hit.spans[2 * same - 1]])  # in a row: one slice
                spans = hit.spans[:2 * same]
            known = {} if hit is None else {
                key: (hit.base + hit.spans[2 * n], hit.base + hit.spans[2 * n + 1])
                for n, key in enumerate(hit.ids[same:], same)}
            for key, obj in zip(ids[same:], items[same:], strict=True):
                if spans:
                    put(b",\n")
                at = known.get(key)
                if at is None:
                    piece: bytes | memoryview = b"    " + dumps_at(obj, 4)  # with its indent
                    self.rendered += 1
                else:
                    piece = view[at[0]:at[1]]
                spans.append(size - base)
                put(piece)
                spans.append(size - base)
            put(b"\n   ]")
            blocks[where] = _Block(ids, list(items), base, spans)

        def session(name: str, rec: Any) -> None:  # nested 2 deep: {"sessions": {"name": rec}}
            if not isinstance(rec, dict) or not rec or not all(isinstance(k, str) for k in rec):
                put(dumps_at(rec, 2))
                return
            put(b"{\n")
            for n, (key, value) in enumerate(rec.items()):
                put(b"   " + _key(key) + b": " if n == 0 else b",\n   " + _key(key) + b": ")
                if key in ("messages", "turns") and isinstance(value, list) and value:
                    block((name, key), value)
                else:
                    put(dumps_at(value, 3))
            put(b"\n  }")

        self.rendered = 0
        if not doc or not all(isinstance(k, str) for k in doc):
            put(dumps_at(doc, 0) + b"\n")
        else:
            put(b"{\n")
            for n, (key, value) in enumerate(doc.items()):
                put(b" " + _key(key) + b": " if n == 0 else b",\n " + _key(key) + b": ")
                if key == "sessions" and isinstance(value, dict) and value and all(isinstance(k, str) for k in value):
                    put(b"{\n")
                    for i, (name, rec) in enumerate(value.items()):
                        put(b"  " + _key(name) + b": " if i == 0 else b",\n  " + _key(name) + b": ")
                        session(name, rec)
                    put(b"\n }")
                else:
                    put(dumps_at(value, 1))
            put(b"\n}\n")
        # What the blocks point into from now on: this text, once the caller has written it.
        crc = 0
        for piece in parts:
            crc = zlib.crc32(piece, crc)
        self._blocks, self._size, self._crc = blocks, size, crc
        return parts
