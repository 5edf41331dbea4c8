"""Per-message passes over a conversation, done again only for the messages that changed.

Before each request hermes-agent walks the whole conversation several times in Python
(surrogate scrub, token estimate, field stripping...): ~10 µs per message and pass, so
~10 ms at 1,000 turns, before the first token and competing for the GIL with the cell.
A pass whose result is a sum or an "all clean" over the messages, each judged alone,
can skip the part of a new list that still equals what it saw last time.

``PrefixMemo`` keeps copies of the last few lists a pass saw (copies: a message changed
in place must not look unchanged) and finds, in C (list and dict equality), how many
leading messages of a new list equal one of them. Nothing here imports hermes-agent:
hosting.py decides which of its functions get these wrappers.
"""
from __future__ import annotations

import copy
import itertools
import threading
import weakref
from collections.abc import Callable
from typing import Any

from hermes_jupyter.util.prefix import common_prefix

_SCALARS = (str, int, float, bool)


class _Snapshot(dict[Any, Any]):
    """A message as a pass saw it. Never changed once made, so every memo can hold the same one."""
    __slots__ = ("__weakref__",)


# Equal snapshots made from the same value objects, shared: five passes memoize each message of a
# request, so five copies of it were kept for as long as the session lasted (~2 KB a turn).
# Keyed by the keys and the identities of the values: a snapshot holds its values, so no other
# object can take one of those identities while it (and so its entry) lives.
_SHARED: weakref.WeakValueDictionary[tuple[Any, ...], _Snapshot] = weakref.WeakValueDictionary()
_SHARED_LOCK = threading.Lock()


def snapshot(item: Any) -> Any:
    """A copy that later in-place changes of item cannot reach (shallow when that is enough)."""
    if type(item) is dict and all(v is None or type(v) in _SCALARS for v in item.values()):
        key = tuple(itertools.chain.from_iterable((k, id(v)) for k, v in item.items()))
        with _SHARED_LOCK:
            shared = _SHARED.get(key)
            if shared is None:
                shared = _SHARED[key] = _Snapshot(item)
        return shared
    return copy.deepcopy(item)


class Entry:
    __slots__ = ("copies", "values")

    def __init__(self) -> None:
        self.copies: list[Any] = []  # what the pass saw (in the state it left it)
        self.values: list[Any] = []  # what it found, per message (when the pass needs it)


class PrefixMemo:
    """The last few lists one pass saw. Use ``with memo:`` around match + keep."""

    MOVED_ON = 16  # messages at the end of a list that a conversation may rewrite as it goes on

    def __init__(self, entries: int = 8) -> None:
        self._entries: list[Entry] = []  # most recently used first
        self._size = entries
        self._lock = threading.Lock()

    def __enter__(self) -> PrefixMemo:
        self._lock.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()

    def match(self, messages: list[Any]) -> tuple[Entry, int]:
        """The entry to extend from the longest prefix messages share with one seen, and that length.

        A list that leaves its entry near the end is that conversation moving on (the entry is
        cut there); one that leaves it early is another conversation (e.g. another session with
        the same system prompt) and gets an entry of its own that shares the common copies.
        """
        best, length = None, 0
        for entry in self._entries:
            n = common_prefix(messages, entry.copies)
            if best is None or n > length:
                best, length = entry, n
            if n == len(entry.copies) and n:
                break
        if best is not None and length >= len(best.copies) - self.MOVED_ON:
            self._entries.remove(best)
        else:
            fork = Entry()
            if best is not None and length:
                fork.copies, fork.values = best.copies[:length], best.values[:length]
            best = fork
        self._entries.insert(0, best)
        del self._entries[self._size:]
        return best, length

    @staticmethod
    def keep(entry: Entry, messages: list[Any], start: int, values: list[Any] | None = None) -> None:
        """Remember messages[start:] (copied now) after the first ``start`` ones the entry already holds."""
        entry.copies[start:] = [snapshot(m) for m in messages[start:]]
        if values is not None:
            entry.values[start:] = values
        else:
            del entry.values[start:]


def summing(real: Callable[[list[Any]], int], per_message: Callable[[Any], tuple[int, int]],
            total: Callable[[int, int], int]) -> Callable[[list[Any]], int]:
    """A token estimate that is ``total(sum of chars, sum of image tokens)`` over messages judged alone."""
    memo = PrefixMemo()

    def estimate(messages: list[Any]) -> int:
        if type(messages) is not list:
            return real(messages)
        with memo:
            entry, start = memo.match(messages)
            chars, images = entry.values[start - 1] if start else (0, 0)
            running = []  # the sums up to each message: the prefix's are kept
            for m in messages[start:]:
                c, i = per_message(m)
                chars, images = chars + c, images + i
                running.append((chars, images))
            memo.keep(entry, messages, start, running)
            return total(chars, images)

    estimate.__wrapped__ = real  # type: ignore[attr-defined]
    return estimate


def scrubbing(real: Callable[[list[Any]], bool]) -> Callable[[list[Any]], bool]:
    """An in-place scrub that judges each message alone: messages equal to ones it left clean are skipped."""
    memo = PrefixMemo()

    def scrub(messages: list[Any]) -> bool:
        if type(messages) is not list:
            return real(messages)
        with memo:
            entry, start = memo.match(messages)
            found = bool(real(messages[start:])) if start < len(messages) else False
            memo.keep(entry, messages, start)  # as the scrub left them: clean
            return found

    scrub.__wrapped__ = real  # type: ignore[attr-defined]
    return scrub


def unchanged_if_clean(real: Callable[..., list[Any]]) -> Callable[..., list[Any]]:
    """A function (or method: its leading arguments are passed on) that returns its list as it is when
    no message, judged alone, needs a change: the part equal to a list it returned unchanged (with
    the same keyword arguments) is not judged again."""
    memos: dict[str, PrefixMemo] = {}
    lock = threading.Lock()

    def convert(*args: Any, **kwargs: Any) -> list[Any]:
        *lead, messages = args
        if type(messages) is not list:
            return real(*args, **kwargs)
        key = repr(sorted(kwargs.items()))
        with lock:
            memo = memos.get(key)
            if memo is None:
                if len(memos) >= 8:
                    memos.clear()
                memo = memos[key] = PrefixMemo()
        with memo:
            entry, start = memo.match(messages)
            rest = messages[start:]
            if real(*lead, rest, **kwargs) is rest:
                memo.keep(entry, messages, start)
                return messages
        return real(*args, **kwargs)

    convert.__wrapped__ = real  # type: ignore[attr-defined]
    return convert
