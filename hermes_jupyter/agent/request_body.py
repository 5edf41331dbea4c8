"""A chat request's messages go to the wire without the openai SDK's per-message transform.

``Completions.create`` passes its whole body through ``maybe_transform``, which walks
every message, every key and every content part against the ``TypedDict`` annotations,
in Python, to apply key aliases and value formats. No chat message type has any
(checked below, on the installed SDK, before anything is changed), so for messages
that are plain JSON data the walk only rebuilds equal dicts: at 1,000 turns it was
~0.3 s of the agent's thread before each request, and growing with the session, holding the GIL while
the notebook's cell returned.

So the rest of the body is still transformed, and the messages list goes out as it
is when (and only when) it holds nothing but dicts, lists, strings, numbers, booleans
and None: anything else (a pydantic model, a NotGiven, a date...) takes the SDK's
path. The JSON sent is byte for byte what the SDK would send (tests/test_long_session.py).
"""
from __future__ import annotations

import logging
import typing
from collections.abc import Callable
from typing import Any

from hermes_jupyter.agent.prefix_memo import PrefixMemo

log = logging.getLogger("hermes_jupyter")

_PLAIN = frozenset({str, int, float, bool, type(None)})
_MARK = "_hermes_jupyter_messages_passthrough"


def plain_json(value: Any) -> bool:
    """Only dicts (with string keys), lists, strings, numbers, booleans and None, all the way down?"""
    stack = [value]
    plain, pop, push = _PLAIN, stack.pop, stack.append
    while stack:
        item = pop()
        kind = type(item)
        if kind in plain:
            continue
        if kind is dict:
            for key, inner in item.items():
                if type(key) is not str:
                    return False
                if type(inner) not in plain:
                    push(inner)
        elif kind is list:
            for inner in item:
                if type(inner) not in plain:
                    push(inner)
        else:
            return False
    return True


def rewrites(annotation: Any, property_info: type, seen: set[int] | None = None) -> bool:
    """Does any ``PropertyInfo`` with an alias or a format hide in this type, at any depth?"""
    seen = set() if seen is None else seen
    if id(annotation) in seen:
        return False
    seen.add(id(annotation))
    for meta in getattr(annotation, "__metadata__", ()):  # Annotated[T, PropertyInfo(...)]
        if isinstance(meta, property_info) and (getattr(meta, "alias", None) or getattr(meta, "format", None)):
            return True
    if typing.is_typeddict(annotation) or _is_typeddict_ext(annotation):
        hints = typing.get_type_hints(annotation, include_extras=True)
        return any(rewrites(h, property_info, seen) for h in hints.values())
    origin = getattr(annotation, "__origin__", None)
    args = typing.get_args(annotation)
    if origin is not None and not args and origin is not annotation:
        return rewrites(origin, property_info, seen)
    return any(rewrites(a, property_info, seen) for a in args if not isinstance(a, (str, int, bool, bytes)))


def _is_typeddict_ext(annotation: Any) -> bool:
    try:
        import typing_extensions
    except ImportError:
        return False
    return bool(typing_extensions.is_typeddict(annotation))


def install() -> bool:
    """Patch the SDK's chat-completions transform (once); False if this SDK does not fit the checks."""
    try:
        import openai.resources.chat.completions.completions as chat
        from openai._utils import PropertyInfo
        from openai.types.chat import completion_create_params as params
    except ImportError:
        return False
    real = getattr(chat, "maybe_transform", None)
    if real is None or getattr(real, _MARK, False):
        return real is not None
    targets = tuple(getattr(params, name, None) for name in (
        "CompletionCreateParamsStreaming", "CompletionCreateParamsNonStreaming"))
    if None in targets:
        return False
    try:
        hints = typing.get_type_hints(targets[0], include_extras=True)
        messages_type = hints["messages"]
        if rewrites(messages_type, PropertyInfo) or hasattr(messages_type, "__metadata__"):
            return False  # the SDK changes messages (or renames the key): keep its walk
    except Exception:
        log.debug("openai's chat message types could not be inspected", exc_info=True)
        return False
    chat.maybe_transform = passthrough(real, targets)  # type: ignore[assignment]
    return True


def passthrough(real: Callable[[Any, Any], Any], targets: tuple[Any, ...]) -> Callable[[Any, Any], Any]:
    memo = PrefixMemo()

    def plain(messages: list[Any]) -> bool:
        # Messages equal to ones found plain before are plain (a model, a NotGiven, a date or a
        # tuple never equals a plain value): only the new ones are walked.
        with memo:
            entry, start = memo.match(messages)
            if not plain_json(messages[start:]):
                return False
            memo.keep(entry, messages, start)
            return True

    def maybe_transform(data: Any, expected_type: Any) -> Any:
        if expected_type in targets and type(data) is dict:
            messages = data.get("messages")
            if type(messages) is list and plain(messages):
                # The rest of the body keeps the SDK's transform; "messages" keeps its place.
                out = real({**data, "messages": []}, expected_type)
                if type(out) is dict and out.get("messages") == []:
                    out["messages"] = list(messages)
                    return out
        return real(data, expected_type)

    setattr(maybe_transform, _MARK, True)
    maybe_transform.__wrapped__ = real  # type: ignore[attr-defined]
    return maybe_transform
