"""Scripts for the scripted model: a fake LLM that answers from a file.

A script is a YAML or JSON file (or a dict) like this::

    model: scripted-demo      # model id served by /v1/models (default "scripted")
    context_length: 128000    # reported by /v1/models; must be >= 64000
    chunk_size: 4             # characters per streamed chunk (default 4)
    delay: 0.0                # seconds between streamed chunks (default 0)
    rules:
      - match: "hello"        # case-insensitive substring of the user prompt
        # or  regex: "^list (\\w+)"   (re.search, case-insensitive)
        steps:                # one step per model call within the turn
          - reasoning: "thinking text"     # streamed as reasoning deltas
            text: "Hello!"                 # supports {prompt} and {tool_result}
            chunk_size: 2                  # per-step override; also delay
          - tool_calls:
              - name: terminal
                arguments: {command: "ls"} # dict -> JSON string on the wire
          - text: "Done: {tool_result}"
          - error: {status: 429, message: "Rate limit reached"}
          - lorem: 4000                    # deterministic answer of N words
            gate: story                    # held until the gate "story" is opened (see below)
      - default: true         # used when no rule matches
        steps: [{text: "..."}]

How a reply is chosen for a request:

* The *prompt* is the text of the last ``user`` message. The first rule whose
  ``match``/``regex`` fits it is used, else the ``default`` rule, else a
  built-in reply.
* The *step* is the number of assistant messages after that user message, so
  a turn walks through the steps as the agent calls the model again after
  each tool result. Past the last step the reply is ``(script finished)``.
* ``{prompt}`` is the prompt; ``{tool_result}`` is the last tool message of
  the turn (its ``"output"`` value when it is JSON with that key, as from
  ``terminal``; ``"user_response"`` for ``clarify``), cut to about 1500
  characters. Both also work inside tool-call arguments.
* A step with tool calls answers a request that offers no tools (the agent's
  side calls: titles, summaries) with the default text instead.
* ``error`` takes ``status``, ``message`` and optionally ``type``, ``code``,
  ``retry_after`` (seconds, sent as a Retry-After header) and ``times``:
  the first N identical requests fail, later ones get the rest of the step
  (``{error: {status: 500, times: 1}, text: "Recovered"}``). Without
  ``times`` the step always fails.
* Steps may combine ``reasoning``, ``text`` and ``tool_calls`` (a ``lorem``
  step replaces ``text``).

Gates: a test decides when a reply ends, instead of a long, slow answer.

* ``gate: NAME`` holds the step's reply until the gate is opened; ``gate: {name:
  NAME, after: N}`` first streams the role chunk and N content chunks (reasoning,
  text and tool-call pieces, in that order; at most all of them), then holds the
  rest, the finish chunk included. A non-streamed reply (and an ``error``) is held
  whole. Every request that gets the step is held, retries too; side calls that
  get the default text instead are not.
* Opening: ``ScriptedServer.open_gate(NAME)``, ``POST /gates/NAME/open`` to the
  server (``open_gate(base_url, NAME)`` does that from any process). An open
  releases every reply held at the gate then and answers how many; if none is
  held, it lets the next reply that reaches the gate through (opens don't add
  up). The gate is closed again for the replies after that, so one script serves
  many tests. ``ScriptedServer.wait_held(NAME)`` (or ``wait_held(base_url,
  NAME)``, ``GET /gates/NAME?held=1&timeout=30``) waits until the gate holds a
  reply: the turn is then provably unfinished. ``GET /gates`` lists them all.
* A held reply whose client hangs up (an interrupted turn) is dropped and not
  counted; closing the server ends every held reply, so nothing waits forever.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import yaml

__all__ = [
    "BUILTIN_DEMO", "ErrorSpec", "GateSpec", "Reply", "Rule", "Script", "ScriptError",
    "Step", "ToolCall", "ToolCallSpec", "load_script",
]

BUILTIN_DEMO = Path(__file__).with_name("demo.yaml")

MIN_CONTEXT_LENGTH = 64_000  # AIAgent refuses models with a smaller window
FINISHED_TEXT = "(script finished)"
FALLBACK_TEXT = "(scripted model) I have no scripted answer for: {prompt}"
TOOL_RESULT_LIMIT = 1500

_TOP_KEYS = {"model", "context_length", "chunk_size", "delay", "rules"}
_RULE_KEYS = {"match", "regex", "default", "steps"}
_STEP_KEYS = {"text", "reasoning", "tool_calls", "error", "lorem", "chunk_size", "delay", "gate"}
_GATE_KEYS = {"name", "after"}
_CALL_KEYS = {"name", "arguments"}
_ERROR_KEYS = {"status", "message", "type", "code", "retry_after", "times"}


class ScriptError(ValueError):
    """A script that cannot be loaded; the message names the bad place."""


def read_document(path: Path, error: type[Exception], what: str) -> Any:
    """A YAML or JSON file (by its suffix), or `error` with a short message that names it."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    try:
        return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise error(f"{path.name}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}") from None


@dataclass(frozen=True)
class ToolCallSpec:
    name: str
    arguments: Any  # dict (serialised to JSON on the wire) or a raw JSON string


@dataclass(frozen=True)
class ErrorSpec:
    status: int
    message: str
    type: str | None = None
    code: str | None = None
    retry_after: float | None = None
    times: int | None = None  # None: fail every time


@dataclass(frozen=True)
class GateSpec:
    name: str
    after: int = 0  # content chunks streamed before the reply is held


@dataclass(frozen=True)
class Step:
    text: str | None = None
    reasoning: str | None = None
    tool_calls: tuple[ToolCallSpec, ...] = ()
    error: ErrorSpec | None = None
    lorem: int | None = None
    chunk_size: int | None = None
    delay: float | None = None
    gate: GateSpec | None = None


@dataclass(frozen=True)
class Rule:
    steps: tuple[Step, ...]
    match: str | None = None
    regex: re.Pattern[str] | None = None
    default: bool = False

    def matches(self, prompt: str) -> bool:
        if self.match is not None:
            return self.match.lower() in prompt.lower()
        if self.regex is not None:
            return self.regex.search(prompt) is not None
        return False


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as on the wire


@dataclass(frozen=True)
class Reply:
    """What the server sends for one request."""

    text: str = ""
    reasoning: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    error: ErrorSpec | None = None
    chunk_size: int = 4
    delay: float = 0.0
    prompt_tokens: int = 0
    # A recorded reply (replay:PATH, see hermes_jupyter.recording) streams its own deltas,
    # with its own pauses, usage and finish reason, instead of chunk_size/delay and estimates.
    deltas: tuple[Mapping[str, Any], ...] | None = None  # between the role chunk and the finish chunk
    pauses: tuple[float, ...] = ()  # seconds before each streamed chunk, the role chunk first
    usage: Mapping[str, Any] | None = None
    finish: str | None = None
    gate: GateSpec | None = None  # held until the test opens the gate (see the module docstring)

    @property
    def finish_reason(self) -> str:
        return self.finish or ("tool_calls" if self.tool_calls else "stop")

    def pause(self, index: int) -> float:
        """Seconds to wait before streamed chunk ``index``."""
        if self.pauses:
            return self.pauses[index] if index < len(self.pauses) else 0.0
        return self.delay if index else 0.0

    @property
    def completion_tokens(self) -> int:
        size = len(self.text) + len(self.reasoning)
        size += sum(len(c.name) + len(c.arguments) for c in self.tool_calls)
        return max(1, size // 4)


@dataclass(frozen=True)
class Script:
    rules: tuple[Rule, ...]
    default: Rule | None = None
    model: str = "scripted"
    context_length: int = 128_000
    chunk_size: int = 4
    delay: float = 0.0
    source: Path | None = field(default=None, compare=False)

    def turn_key(self, body: Mapping[str, Any]) -> str:
        """Identifies the (prompt, step) a request asks for; retries share it."""
        prompt, step, _ = _locate(body.get("messages") or [])
        return _digest(prompt, step, bool(body.get("tools")))

    def reply(self, body: Mapping[str, Any], attempt: int = 0, *, size: int | None = None) -> Reply:
        """The reply to a chat-completions request body.

        ``attempt`` counts earlier identical requests (see ``turn_key``); it
        only matters for ``error`` steps with ``times``. ``size``: the request's
        length in bytes, when the server has it (prompt tokens are counted from it,
        4 bytes a token, instead of serializing the whole conversation again).
        """
        messages = body.get("messages") or []
        prompt, index, tool_result = _locate(messages)
        rule = next((r for r in self.rules if r.matches(prompt)), self.default)
        if size is None:
            size = len(json.dumps([messages, body.get("tools")], default=str))
        tokens = max(1, size // 4)
        base = Reply(chunk_size=self.chunk_size, delay=self.delay, prompt_tokens=tokens)

        if rule is None:
            return replace(base, text=FALLBACK_TEXT.replace("{prompt}", prompt))
        if index >= len(rule.steps):
            return replace(base, text=FINISHED_TEXT)
        step = rule.steps[index]
        # A side call (title, summary: no tools offered) must never get tool calls.
        if step.tool_calls and not body.get("tools"):
            return self._side_reply(base, prompt)

        def fill(value: str) -> str:
            return value.replace("{prompt}", prompt).replace("{tool_result}", tool_result)

        seed = _digest(prompt, len(messages))
        calls = tuple(
            ToolCall(
                id=f"call_{_digest(seed, i)}",
                name=c.name,
                arguments=c.arguments if isinstance(c.arguments, str)
                else json.dumps(_fill_deep(c.arguments, fill), ensure_ascii=False),
            )
            for i, c in enumerate(step.tool_calls)
        )
        error = step.error
        if error is not None and error.times is not None and attempt >= error.times:
            error = None
        text = lorem(step.lorem) if step.lorem is not None else fill(step.text or "")
        return replace(
            base,
            text=text,
            reasoning=fill(step.reasoning or ""),
            tool_calls=calls,
            error=error,
            chunk_size=step.chunk_size or self.chunk_size,
            delay=self.delay if step.delay is None else step.delay,
            gate=step.gate,
        )

    def _side_reply(self, base: Reply, prompt: str) -> Reply:
        steps = self.default.steps if self.default else ()
        first = steps[0] if steps else None
        if first is not None and first.text and not first.tool_calls:
            return replace(base, text=first.text.replace("{prompt}", prompt).replace("{tool_result}", ""))
        return replace(base, text=FALLBACK_TEXT.replace("{prompt}", prompt))


def _digest(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:12]


def _fill_deep(value: Any, fill: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return fill(value)
    if isinstance(value, list):
        return [_fill_deep(v, fill) for v in value]
    if isinstance(value, dict):
        return {k: _fill_deep(v, fill) for k, v in value.items()}
    return value


# --- reading requests -------------------------------------------------------

def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: keep the text ones
        return "".join(
            str(p.get("text", "")) for p in content
            if isinstance(p, dict) and p.get("type", "text") == "text"
        )
    return ""


def _locate(messages: list[Any]) -> tuple[str, int, str]:
    """(prompt, step index, tool result) for a request's messages."""
    msgs = [m for m in messages if isinstance(m, dict)]
    last_user = max((i for i, m in enumerate(msgs) if m.get("role") == "user"), default=-1)
    prompt = _text_of(msgs[last_user].get("content")) if last_user >= 0 else ""
    after = msgs[last_user + 1:]
    step = sum(1 for m in after if m.get("role") == "assistant")
    results = [m for m in after if m.get("role") == "tool"]
    return prompt, step, _tool_output(_text_of(results[-1].get("content"))) if results else ""


def _tool_output(raw: str) -> str:
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    if isinstance(data, dict):
        # terminal results carry "output"; clarify results carry "user_response"
        for key in ("output", "user_response"):
            if key in data:
                value = data[key]
                raw = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
                break
    raw = raw.strip()
    return raw if len(raw) <= TOOL_RESULT_LIMIT else raw[:TOOL_RESULT_LIMIT] + " …"


# --- lorem ------------------------------------------------------------------

_WORDS = (
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
    "incididunt ut labore et dolore magna aliqua enim ad minim veniam quis nostrud "
    "exercitation ullamco laboris nisi aliquip ex ea commodo consequat duis aute irure "
    "in reprehenderit voluptate velit esse cillum fugiat nulla pariatur"
).split()


def lorem(n: int) -> str:
    """N deterministic words in sentences of 12 and paragraphs of 6 sentences."""
    out: list[str] = []
    for i in range(n):
        word = _WORDS[(i * 7 + i // 11) % len(_WORDS)]
        if i % 12 == 0:
            word = word.capitalize()
        out.append(word)
        if i % 12 == 11 or i == n - 1:
            out[-1] += "."
            out.append("\n\n" if i % 72 == 71 else " ")
        else:
            out.append(" ")
    return "".join(out).strip()


# --- loading and validation -------------------------------------------------

def load_script(source: Script | str | Path | Mapping[str, Any]) -> Script:
    """Load and validate a script from a YAML/JSON file path or a dict."""
    if isinstance(source, Script):
        return source
    path: Path | None = None
    if isinstance(source, (str, Path)):
        path = Path(source).expanduser().resolve()
        data = read_document(path, ScriptError, "script")
    else:
        data = source
    try:
        return _parse(data, path)
    except ScriptError as exc:
        raise ScriptError(f"{path.name}: {exc}" if path else str(exc)) from None


def _keys(where: str, data: Any, allowed: set[str]) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ScriptError(f"{where}: expected a mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ScriptError(f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")
    return data


def _typed(where: str, value: Any, kind: type | tuple[type, ...], minimum: float | None = None) -> Any:
    if value is None:
        raise ScriptError(f"{where}: is required")
    # bool is an int subclass; `chunk_size: yes` is a mistake, not 1.
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise ScriptError(f"{where}: expected {_kind_name(kind)}, got a boolean")
    if not isinstance(value, kind):
        raise ScriptError(f"{where}: expected {_kind_name(kind)}, got {type(value).__name__}")
    if minimum is not None and cast(float, value) < minimum:
        raise ScriptError(f"{where}: must be >= {minimum:g}, got {value}")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {int: "an integer", float: "a number", str: "a string", list: "a list", bool: "true/false"}
    return " or ".join(names.get(k, k.__name__) for k in kinds if not (k is int and float in kinds))


def _parse(data: Any, path: Path | None) -> Script:
    if data is None:
        raise ScriptError("script: is empty")
    top = _keys("script", data, _TOP_KEYS)
    context_length = _typed("context_length", top.get("context_length", 128_000), int)
    if context_length < MIN_CONTEXT_LENGTH:
        raise ScriptError(
            f"context_length: must be >= {MIN_CONTEXT_LENGTH} (AIAgent refuses smaller models), got {context_length}"
        )
    rules_data = _typed("rules", top.get("rules", []), list)
    rules: list[Rule] = []
    default: Rule | None = None
    for i, item in enumerate(rules_data):
        rule = _parse_rule(f"rules[{i}]", item)
        if rule.default:
            if default is not None:
                raise ScriptError(f"rules[{i}]: a second default rule (only one is allowed)")
            default = rule
        else:
            rules.append(rule)
    return Script(
        rules=tuple(rules),
        default=default,
        model=_typed("model", top.get("model", "scripted"), str),
        context_length=context_length,
        chunk_size=_typed("chunk_size", top.get("chunk_size", 4), int, 1),
        delay=float(_typed("delay", top.get("delay", 0.0), (int, float), 0)),
        source=path,
    )


def _parse_rule(where: str, data: Any) -> Rule:
    rule = _keys(where, data, _RULE_KEYS)
    selectors = [k for k in ("match", "regex", "default") if k in rule]
    if len(selectors) != 1:
        raise ScriptError(f"{where}: needs exactly one of 'match', 'regex' or 'default: true'")
    steps_data = _typed(f"{where}.steps", rule.get("steps"), list)
    if not steps_data:
        raise ScriptError(f"{where}.steps: must not be empty")
    steps = tuple(_parse_step(f"{where}.steps[{j}]", s) for j, s in enumerate(steps_data))
    if "default" in rule:
        if rule["default"] is not True:
            raise ScriptError(f"{where}.default: must be true")
        return Rule(steps=steps, default=True)
    if "match" in rule:
        match = _typed(f"{where}.match", rule["match"], str)
        if not match:
            raise ScriptError(f"{where}.match: must not be empty")
        return Rule(steps=steps, match=match)
    pattern = _typed(f"{where}.regex", rule["regex"], str)
    try:
        regex = re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise ScriptError(f"{where}.regex: invalid regular expression: {exc}") from None
    return Rule(steps=steps, regex=regex)


def _parse_step(where: str, data: Any) -> Step:
    step = _keys(where, data, _STEP_KEYS)
    content = sorted({"text", "reasoning", "tool_calls", "lorem"} & set(step))
    if not content and "error" not in step:
        raise ScriptError(f"{where}: needs at least one of text, reasoning, tool_calls, error, lorem")
    if "text" in step and "lorem" in step:
        raise ScriptError(f"{where}: 'text' and 'lorem' exclude each other")
    error = _parse_error(f"{where}.error", step["error"]) if "error" in step else None
    if error is not None and error.times is None and content:
        raise ScriptError(f"{where}: an error without 'times' always fails, so {content[0]!r} is never sent")
    if error is not None and error.times is not None and not content:
        raise ScriptError(f"{where}: an error with 'times' needs text, reasoning, tool_calls or lorem to send after it")
    calls = tuple(
        _parse_call(f"{where}.tool_calls[{k}]", c)
        for k, c in enumerate(_typed(f"{where}.tool_calls", step.get("tool_calls", []), list))
    )

    def optional(key: str, kind: type | tuple[type, ...], minimum: float | None = None) -> Any:
        return _typed(f"{where}.{key}", step[key], kind, minimum) if key in step else None

    delay = optional("delay", (int, float), 0)
    return Step(
        text=optional("text", str),
        reasoning=optional("reasoning", str),
        tool_calls=calls,
        error=error,
        lorem=optional("lorem", int, 1),
        chunk_size=optional("chunk_size", int, 1),
        delay=None if delay is None else float(delay),
        gate=_parse_gate(f"{where}.gate", step["gate"]) if "gate" in step else None,
    )


def _parse_gate(where: str, data: Any) -> GateSpec:
    if isinstance(data, str):
        data = {"name": data}
    if not isinstance(data, Mapping):
        raise ScriptError(f"{where}: expected a gate name or a mapping with 'name' and 'after'")
    gate = _keys(where, data, _GATE_KEYS)
    name = _typed(f"{where}.name", gate.get("name"), str)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ScriptError(f"{where}.name: letters, digits, '_', '.' and '-' only (it is part of a URL), got {name!r}")
    return GateSpec(name=name, after=_typed(f"{where}.after", gate.get("after", 0), int, 0))


def _parse_call(where: str, data: Any) -> ToolCallSpec:
    call = _keys(where, data, _CALL_KEYS)
    name = _typed(f"{where}.name", call.get("name"), str)
    arguments = call.get("arguments", {})
    if isinstance(arguments, str):
        try:
            json.loads(arguments)
        except ValueError:
            raise ScriptError(f"{where}.arguments: a string must be valid JSON") from None
    elif not isinstance(arguments, Mapping):
        raise ScriptError(f"{where}.arguments: expected a mapping or a JSON string, got {type(arguments).__name__}")
    return ToolCallSpec(name=name, arguments=arguments if isinstance(arguments, str) else dict(arguments))


def _parse_error(where: str, data: Any) -> ErrorSpec:
    err = _keys(where, data, _ERROR_KEYS)
    status = _typed(f"{where}.status", err.get("status"), int)
    if not 400 <= status <= 599:
        raise ScriptError(f"{where}.status: must be an HTTP error status (400-599), got {status}")

    def optional(key: str, kind: type | tuple[type, ...], minimum: float | None = None) -> Any:
        return None if err.get(key) is None else _typed(f"{where}.{key}", err[key], kind, minimum)

    retry_after = optional("retry_after", (int, float), 0)
    return ErrorSpec(
        status=status,
        message=optional("message", str) or f"HTTP {status} (scripted)",
        type=optional("type", str),
        code=optional("code", str),
        retry_after=None if retry_after is None else float(retry_after),
        times=optional("times", int, 0),
    )
