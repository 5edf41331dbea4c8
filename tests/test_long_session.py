"""Long sessions: what a turn does before its request must not grow with the session.

The sanitized history is cached (SanitizeCache) and must equal a full sanitize whatever
happens to the conversation; the openai SDK's per-message transform is skipped for
plain messages (agent/request_body.py) and the request must stay byte for byte the same.
"""
import copy
import json
import random
import warnings
from datetime import datetime
from pathlib import Path

import pytest

from hermes_jupyter.safety.sanitize import SanitizeCache, sanitize_history

# ----- the sanitized prefix ---------------------------------------------------------------


def call(tid, name="terminal"):
    return {"id": tid, "type": "function", "function": {"name": name, "arguments": json.dumps({"command": "ls"})}}


def turn_messages(rng: random.Random, k: int) -> list:
    """One turn as hermes-agent leaves it: a prompt, maybe tool calls and results, an answer with extra keys."""
    out: list = [{"role": "user", "content": f"prompt {k}"}]
    for step in range(rng.choice([0, 0, 1, 2])):
        ids = [f"c{k}-{step}-{n}" for n in range(rng.choice([1, 2]))]
        out.append({"role": "assistant", "content": rng.choice([None, "", "let me look"]),
                    "tool_calls": [call(i) for i in ids], "reasoning": "hidden", "finish_reason": "tool_calls"})
        answered = ids if rng.random() < 0.85 else ids[:-1]  # sometimes a call is never answered
        out += [{"role": "tool", "tool_call_id": i, "content": f"result {i}"} for i in answered]
        if rng.random() < 0.1:
            out.append({"role": "tool", "tool_call_id": "stray", "content": "orphan"})
    kind = rng.random()
    if kind < 0.05:
        out.append({"role": "assistant", "content": [{"type": "thinking", "thinking": "..."}]})  # reasoning-only
    elif kind < 0.1:
        out.append("not a message")
    elif kind < 0.15:
        out.append({"role": "weird", "content": "?"})
    elif kind < 0.2:
        out.append({"role": "assistant", "content": [{"type": "text", "text": f"answer {k}"},
                                                      {"type": "image_url", "image_url": {"url": "data:,x"}}]})
    elif kind < 0.9:
        out.append({"role": "assistant", "content": f"answer {k}", "reasoning": None, "finish_reason": "stop"})
    return out  # else: a failed turn, only its prompt


def as_returned(messages: list) -> list:
    """What hermes-agent hands back as the start of the next turn: the history it was given (sanitized)."""
    return sanitize_history(messages)


def grown(cache: SanitizeCache, rng: random.Random, turns: int) -> list:
    """A conversation of that many turns, each handed back by hermes-agent and then to the cache."""
    messages: list = []
    for k in range(turns):
        messages = as_returned(messages) + turn_messages(rng, k)
        cache(messages)
    return messages


def edit(rng: random.Random, messages: list) -> list:
    """One of the ways a conversation changes other than growing at its end."""
    if not messages:
        return messages
    i = rng.randrange(len(messages))
    what = rng.choice(["rollback", "compress", "replace", "in place", "nested in place", "hermes form", "insert"])
    if what == "rollback":
        return messages[:i]
    if what == "compress":
        return [{"role": "user", "content": "[summary of earlier turns]"}, *messages[i:]]
    if what == "replace":
        return [*messages[:i], {"role": "assistant", "content": "rewritten"}, *messages[i + 1:]]
    if what == "insert":
        return [*messages[:i], {"role": "tool", "tool_call_id": "late", "content": "x"}, *messages[i:]]
    if what == "hermes form":
        return as_returned(messages[:i]) + messages[i:]
    target = messages[i]
    if isinstance(target, dict) and what == "in place":
        target["content"] = "changed in place"
    elif isinstance(target, dict) and target.get("tool_calls"):
        target["tool_calls"][0]["id"] = "renamed"  # a call now unanswered: its results must go too
    return messages


@pytest.mark.parametrize("seed", range(12))
def test_cached_sanitize_equals_a_full_sanitize_as_the_conversation_grows_and_changes(seed):
    rng = random.Random(seed)
    cache = SanitizeCache()
    messages: list = []
    for k in range(60):
        if rng.random() < 0.5:
            messages = as_returned(messages)  # the usual case: the last turn's messages come back sanitized
        messages = messages + turn_messages(rng, k)
        if rng.random() < 0.5:
            cache.prepare(messages)  # a turn ended with these: the next one usually starts with them...
        if rng.random() < 0.15:
            messages = edit(rng, messages)  # ...or the conversation changed in between (in place, too)
        before = copy.deepcopy(messages)
        got = cache(messages)
        assert got == sanitize_history(messages), (seed, k)
        assert messages == before  # the input is never changed
        for m in got:  # the result is the caller's: changing it changes nothing cached
            if isinstance(m, dict):
                m["content"] = "mutated by the caller"
                for c in m.get("tool_calls") or []:
                    c["function"]["name"] = "mutated"
        assert cache(messages) == sanitize_history(messages), (seed, k)


def test_only_the_messages_after_the_last_unchanged_cut_are_sanitized_again(monkeypatch):
    from hermes_jupyter.safety import sanitize

    seen: list[int] = []
    real = sanitize._sanitize
    # Counted when the cache sanitizes (it passes marks), not for the full sanitize the test compares with.
    monkeypatch.setattr(sanitize, "_sanitize",
                        lambda msgs, marks: (marks is not None and seen.append(len(msgs))) or real(msgs, marks))
    cache = SanitizeCache()
    messages = grown(cache, random.Random(1), 200)
    assert max(seen[-50:]) <= 2 * max(len(turn_messages(random.Random(s), 0)) for s in range(50)) + 2
    # An edit near the start: everything after it is sanitized again, and the result is right.
    messages[1] = {"role": "assistant", "content": "edited"}
    assert cache(messages) == sanitize_history(messages)
    assert seen[-1] >= len(messages) - 2
    # A rollback to a few turns ago keeps the cut before it.
    messages = messages[: len(messages) // 2]
    assert cache(messages) == sanitize_history(messages)
    assert seen[-1] < 12


def test_a_prepared_result_is_handed_out_once_without_sanitizing_or_copying_again(monkeypatch):
    from hermes_jupyter.safety import sanitize

    cache = SanitizeCache()
    rng = random.Random(5)
    messages = grown(cache, rng, 40)
    messages = as_returned(messages) + turn_messages(rng, 40)
    cache.prepare(messages)  # the turn has ended
    calls: list[int] = []
    monkeypatch.setattr(sanitize, "_sanitize", lambda msgs, marks: calls.append(len(msgs)) or [])
    monkeypatch.setattr(sanitize.copy, "deepcopy", lambda x, memo=None: calls.append(-1) or x)
    first = cache(list(messages))  # the next turn starts: an equal list (another list object)
    assert calls == []  # neither sanitized nor copied: it was done when the turn ended
    monkeypatch.undo()
    assert first == sanitize_history(messages)
    assert cache(messages) == sanitize_history(messages) and cache(messages) is not first  # once only
    # Prepared, then changed in place before the next turn starts: an old message, the newest, and
    # results after the last cut (a stopped turn can end on them; the cache keeps no copy of those).
    messages += [{"role": "assistant", "content": None, "tool_calls": [call("t1"), call("t2")]},
                 {"role": "tool", "tool_call_id": "t1", "content": "one"},
                 {"role": "tool", "tool_call_id": "t2", "content": "two"}]
    for index, field, value in [(3, "content", "changed"), (-3, "content", "changed"),
                                (-1, "content", "changed"), (-2, "tool_call_id", "t9")]:
        cache(messages)
        cache.prepare(messages)
        messages[index][field] = value
        assert cache(messages) == sanitize_history(messages), index


def test_an_in_place_change_of_a_cached_message_is_seen():
    cache = SanitizeCache()
    messages = [{"role": "user", "content": "a"}, {"role": "assistant", "content": None, "tool_calls": [call("c1")]},
                {"role": "tool", "tool_call_id": "c1", "content": "out"}, {"role": "assistant", "content": "done"},
                {"role": "user", "content": "b"}, {"role": "assistant", "content": "ok"}]
    assert cache(messages) == sanitize_history(messages)
    messages[2]["tool_call_id"] = "other"  # the call is no longer answered: call and result go
    assert cache(messages) == sanitize_history(messages)
    assert all("tool_calls" not in m for m in cache(messages))


# ----- the request's messages on the wire -------------------------------------------------

CORPUS = [
    [{"role": "system", "content": "You are helpful."}, {"role": "user", "content": "hi"}],
    [{"role": "user", "content": "run it"},
     {"role": "assistant", "content": None, "tool_calls": [call("c1"), call("c2", "read_file")]},
     {"role": "tool", "tool_call_id": "c1", "content": "out"}, {"role": "tool", "tool_call_id": "c2", "content": ""},
     {"role": "assistant", "content": "done — ünïcödé ✓ 🎉", "reasoning_content": " "}],
    [{"role": "user", "content": [{"type": "text", "text": "look"},
                                  {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA",
                                                                      "detail": "low"}}]},
     {"role": "assistant", "content": "a cat", "name": "bot", "extra": {"nested": [1, 2.5, True, None]}}],
    [{"role": "user", "content": "x" * 5000}, {"role": "assistant", "content": "", "refusal": None}],
]


def _wire_bodies(server, messages, *, patched: bool) -> list[bytes]:
    import httpx
    import openai
    import openai.resources.chat.completions.completions as chat

    from hermes_jupyter.agent import request_body

    sent: list[bytes] = []
    client = openai.OpenAI(base_url=server.base_url, api_key="test",
                           http_client=httpx.Client(event_hooks={"request": [lambda r: sent.append(r.read())]}))
    original = getattr(chat.maybe_transform, "__wrapped__", chat.maybe_transform)
    chat.maybe_transform = (request_body.passthrough(original, (
        chat.completion_create_params.CompletionCreateParamsStreaming,
        chat.completion_create_params.CompletionCreateParamsNonStreaming)) if patched else original)
    try:
        stream = client.chat.completions.create(model=server.model, messages=messages, stream=True,
                                                temperature=0.3, tools=[{"type": "function", "function": {
                                                    "name": "terminal", "parameters": {"type": "object"}}}],
                                                stream_options={"include_usage": True}, extra_body={"x": 1})
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)  # answered
        client.chat.completions.create(model=server.model, messages=messages, max_tokens=5)
    finally:
        chat.maybe_transform = original
        request_body.install()
        client.close()
    return sent


@pytest.fixture(scope="module")
def server():
    from hermes_jupyter.models.scripted import ScriptedServer

    with ScriptedServer({"model": "wire-test", "rules": [{"default": True, "steps": [{"text": "pong"}]}]}) as srv:
        yield srv


@pytest.mark.parametrize("messages", CORPUS)
def test_the_request_is_byte_for_byte_what_the_sdk_sends(server, messages):
    from hermes_jupyter.agent.request_body import plain_json

    assert plain_json(messages)
    before = len(server.requests)
    original = _wire_bodies(server, messages, patched=False)
    patched = _wire_bodies(server, messages, patched=True)
    assert len(original) == len(patched) == 2 and original == patched
    assert json.loads(patched[0])["messages"] == messages
    assert server.requests[before:before + 2] == server.requests[before + 2:before + 4]  # as the server read them


def test_messages_that_are_not_plain_json_take_the_sdks_path(server):
    from openai import NOT_GIVEN
    from pydantic import BaseModel

    from hermes_jupyter.agent.request_body import plain_json

    class Part(BaseModel):
        type: str = "text"
        text: str = "hi"

    odd = [[{"role": "user", "content": ("a", "tuple")}], [{"role": "user", "content": [Part()]}],
           [{"role": "user", "content": "x", "name": NOT_GIVEN}], [{"role": "user", "content": str(datetime(2026, 1, 1))}]]
    assert [plain_json(m) for m in odd] == [False, False, False, True]
    for messages in odd:
        assert _wire_bodies(server, messages, patched=False) == _wire_bodies(server, messages, patched=True)


def _typed_messages():
    """Message types as a future SDK might declare them."""
    from collections.abc import Iterable
    from typing import Annotated, Required, TypedDict

    from openai._utils import PropertyInfo

    class Stamp(TypedDict, total=False):
        when: Annotated[str, PropertyInfo(format="iso8601")]

    class Message(TypedDict, total=False):
        role: Required[str]
        parts: Iterable[str | Stamp]
        call_id: Annotated[str, PropertyInfo(alias="callId")]

    class Call(TypedDict, total=False):
        type: Required[str]
        id: str

    class Plain(TypedDict, total=False):
        role: Required[str]
        tool_calls: Iterable[Annotated[Call | str, PropertyInfo(discriminator="type")]]

    return Stamp, Message, Plain


def test_an_sdk_that_renames_or_formats_a_message_field_is_left_alone():
    from openai._utils import PropertyInfo
    from openai.types.chat import ChatCompletionMessageParam

    from hermes_jupyter.agent.request_body import rewrites

    stamp, message, plain = _typed_messages()
    assert rewrites(message, PropertyInfo) and rewrites(stamp, PropertyInfo)
    assert rewrites(list[str | message], PropertyInfo)
    assert not rewrites(str | plain, PropertyInfo)  # a discriminator changes nothing on the wire
    assert not rewrites(ChatCompletionMessageParam, PropertyInfo)  # this SDK: nothing to apply to messages


# ----- a real session ---------------------------------------------------------------------

def test_a_session_sends_its_whole_conversation_and_sanitizes_only_what_was_added(tmp_path, monkeypatch):
    from hermes_jupyter import events as ev
    from hermes_jupyter.engine import Engine
    from hermes_jupyter.models.scripted import shared_server
    from hermes_jupyter.safety import sanitize

    script = Path(__file__).parent / "scripts" / "engine.yaml"
    engine = Engine()
    engine.settings.model = f"scripted:{script}"
    sizes: list[int] = []
    real = sanitize._sanitize
    monkeypatch.setattr(sanitize, "_sanitize",
                        lambda msgs, marks: (marks is not None and sizes.append(len(msgs))) or real(msgs, marks))
    server = shared_server(script)
    for i in range(8):
        before = len(server.requests)
        turn = engine.submit("say hello" if i % 2 else "run echo", cwd=tmp_path)
        assert turn.wait(60) and turn.status == "done", turn.events[-3:]
        assert any(isinstance(e, ev.Token) for e in turn.events)
        first = server.requests[before]["messages"]
        replayed = [m for m in first if m["role"] != "system"][:-1]  # before this turn's prompt
        expected = sanitize_history(engine.session().messages)[: len(replayed)]
        assert len(replayed) == 4 * ((i + 1) // 2) + 2 * (i // 2)  # every earlier message is sent (hermes reformats calls)
        assert [(m["role"], m.get("content") or "", m.get("tool_call_id"), [c["id"] for c in m.get("tool_calls", [])])
                for m in replayed] == [
                   (m["role"], m.get("content") or "", m.get("tool_call_id"), [c["id"] for c in m.get("tool_calls", [])])
                   for m in expected]
    session = engine.session()
    assert session.sanitized_messages() == sanitize_history(session.messages)
    assert max(sizes[-6:]) <= 6  # the last turns sanitized only their own messages, not the 30 before


# ----- hermes-agent's per-message passes, memoized (agent/prefix_memo.py) -------------------

def test_common_prefix_finds_the_first_difference():
    from hermes_jupyter.util.prefix import common_prefix

    rng = random.Random(7)
    for _ in range(300):
        a = [{"n": rng.randrange(3)} for _ in range(rng.randrange(40))]
        b = [dict(m) for m in a[: rng.randrange(len(a) + 1)]] + [{"n": rng.randrange(3)} for _ in range(rng.randrange(5))]
        expected = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
        assert common_prefix(a, b) == expected


def test_the_passes_memos_share_one_copy_of_each_message():
    """Five passes memoize every message of a request: one copy of it, not five (each copy stayed for the whole session)."""
    import gc

    from hermes_jupyter.agent import prefix_memo

    text = "an answer " * 50
    message = {"role": "assistant", "content": text}
    first, again = prefix_memo.snapshot(message), prefix_memo.snapshot(dict(message))  # a copy, as hermes makes
    assert first is again and first == message and first is not message
    message["content"] = "changed in place"
    assert first["content"] == text  # the copy does not see it
    other = prefix_memo.snapshot(message)
    assert other is not first and other == {"role": "assistant", "content": "changed in place"}
    equal_not_same = prefix_memo.snapshot({"role": "assistant", "content": "".join(["an answer "] * 50)})
    assert equal_not_same == first and equal_not_same is not first  # shared only when made of the same values
    size = len(prefix_memo._SHARED)
    del first, again, other, equal_not_same
    gc.collect()
    assert len(prefix_memo._SHARED) <= size - 3  # nobody holds them: gone from the table too


@pytest.fixture(scope="module")
def hermes_passes():
    from hermes_jupyter.agent import hosting

    hosting.ensure_installed()
    return hosting


PASSES = ["estimate_messages_tokens_rough", "_sanitize_messages_surrogates", "ChatCompletionsTransport.convert_messages",
          "AIAgent._copy_reasoning_content_for_api", "AIAgent._drop_thinking_only_and_merge_users"]


def test_every_pass_of_the_pinned_hermes_agent_is_memoized(hermes_passes):
    from importlib.metadata import version

    if version("hermes-agent") == "0.19.0":  # the release whose passes were read (hosting._CHECKED)
        assert sorted(hermes_passes.message_passes) == sorted(PASSES)
    else:
        # A new release (pyproject allows <0.20) may change a pass's source: that pass is then left
        # alone, slower but right, until someone reads it again and updates hosting._CHECKED.
        assert set(hermes_passes.message_passes) <= set(PASSES)
        warnings.warn(f"hermes-agent {version('hermes-agent')}: memoized passes "
                      f"{sorted(hermes_passes.message_passes)} of {len(PASSES)}; read the others again", stacklevel=1)


def conversations(seed: int, turns: int = 40):
    """Lists as hermes-agent passes them to its per-message passes, turn after turn, in two sessions at
    once (same system prompt), with in-place changes, rollbacks and odd messages mixed in."""
    rng = random.Random(seed)
    system = {"role": "system", "content": "You are Hermes."}
    sessions: list[list] = [[system], [system]]
    for k in range(turns):
        s = rng.randrange(2)
        convo = [m for m in sessions[s] if isinstance(m, dict)]
        convo += [m for m in turn_messages(rng, k) if isinstance(m, dict)]
        what = rng.random()
        if what < 0.08 and len(convo) > 3:
            convo = convo[: rng.randrange(1, len(convo))]
        elif what < 0.16 and len(convo) > 2:
            target = convo[rng.randrange(1, len(convo))]
            target["content"] = rng.choice(["edited \ud800 surrogate", "edited", None, [{"type": "text", "text": "x"}]])
        elif what < 0.22:
            convo.append({"role": "tool", "tool_call_id": "c", "content": "r", "tool_name": "terminal",
                          "_scaffold": True})
        elif what < 0.28:
            convo.append({"role": "assistant", "content": "",
                          "tool_calls": [{**call("z"), "call_id": "z", "response_item_id": "fc_z"}]})
        elif what < 0.32:
            convo.append({"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:,x"}},
                                                      {"type": "text", "text": "what is it \udc80"}]})
        sessions[s] = convo
        yield convo


@pytest.mark.parametrize("seed", range(4))
def test_the_memoized_token_estimate_equals_hermes_own(hermes_passes, seed):
    import agent.model_metadata as metadata

    fast = metadata.estimate_messages_tokens_rough
    real = fast.__wrapped__
    for convo in conversations(seed):
        assert fast(convo) == real(convo)
        assert fast([dict(m) for m in convo]) == real(convo)  # copies (as hermes makes each call) hit too
        assert metadata.estimate_request_tokens_rough(convo, system_prompt="s") > 0


@pytest.mark.parametrize("seed", range(4))
def test_the_memoized_surrogate_scrub_equals_hermes_own(hermes_passes, seed):
    import agent.message_sanitization as scrub

    fast = scrub._sanitize_messages_surrogates
    real = fast.__wrapped__
    for convo in conversations(seed):
        mine, theirs = copy.deepcopy(convo), copy.deepcopy(convo)
        assert fast(mine) == real(theirs)
        assert mine == theirs  # the same messages changed, the same way
        assert fast(mine) is False  # scrubbed now


@pytest.mark.parametrize("seed", range(4))
def test_the_memoized_field_stripping_equals_hermes_own(hermes_passes, seed):
    from agent.transports.chat_completions import ChatCompletionsTransport

    transport = ChatCompletionsTransport()
    real = ChatCompletionsTransport.convert_messages.__wrapped__
    for convo in conversations(seed):
        for model in ("gpt-4o", "gemini-3-pro"):
            got = transport.convert_messages(convo, model=model)
            expected = real(transport, copy.deepcopy(convo), model=model)
            assert got == expected
            assert (got is convo) == (expected == convo)  # unchanged lists come back as they are


@pytest.mark.parametrize("seed", range(4))
def test_the_memoized_thinking_only_drop_equals_hermes_own(hermes_passes, seed):
    from run_agent import AIAgent

    real = AIAgent._drop_thinking_only_and_merge_users.__wrapped__
    for k, convo in enumerate(conversations(seed)):
        if k % 7 == 3:  # now and then a thinking-only turn, and two user messages it leaves adjacent
            convo = [*convo, {"role": "assistant", "content": "", "reasoning": "hmm"}, {"role": "user", "content": "?"}]
        for drop_codex in (True, False):
            got = AIAgent._drop_thinking_only_and_merge_users(convo, drop_codex_reasoning_items=drop_codex)
            expected = real(copy.deepcopy(convo), drop_codex_reasoning_items=drop_codex)
            assert got == expected
            assert (got is convo) == (expected == convo)


def test_the_reasoning_copy_skips_only_what_hermes_skips(hermes_passes):
    import agent.agent_runtime_helpers as helpers
    from run_agent import AIAgent

    sources = [{"role": "user", "content": "x", "reasoning_content": "r"},
               {"role": "tool", "content": "x", "reasoning": "r"},
               {"role": "assistant", "content": "", "reasoning": "why", "tool_calls": [call("c")]},
               {"role": "assistant", "content": "a", "reasoning_content": ""},
               {"role": "assistant", "content": "a", "reasoning_content": "r"},
               {"role": "assistant", "content": "a", "reasoning_content": None, "reasoning": "r"},
               {"role": "assistant", "content": "a", "reasoning": None, "finish_reason": "stop"},
               {"role": "assistant", "content": "a", "reasoning": "", "tool_calls": [call("d")]}]
    pads = set()
    # A provider that needs reasoning echoed back (the helper runs) and two that do not (the shortcut).
    for provider, model, url in [("deepseek", "deepseek-v4-pro", "https://api.deepseek.com/v1"),
                                 ("custom", "scripted-demo", "http://127.0.0.1:9/v1"),
                                 ("openrouter", "openai/gpt-5", "https://openrouter.ai/api/v1")]:
        agent = AIAgent.__new__(AIAgent)  # the copy reads provider fields only
        agent.provider, agent.model, agent.base_url = provider, model, url
        pads.add(agent._needs_thinking_reasoning_pad())
        for source in sources:
            for present in ({}, {"reasoning_content": "stale"}):  # the API copy may still hold the field
                mine, theirs = {**source, **present}, {**source, **present}
                agent._copy_reasoning_content_for_api(source, mine)
                helpers.copy_reasoning_content_for_api(agent, source, theirs)
                assert mine == theirs, (provider, source, present)
    assert pads == {True, False}  # both paths were compared


# ----- a save adds up only the turns that can still change ---------------------------------

def test_the_session_usage_is_continued_from_the_finished_turns_and_equals_a_full_sum():
    from hermes_jupyter.engine import Engine
    from hermes_jupyter.engine.session import Session
    from hermes_jupyter.history.records import session_usage

    rng = random.Random(3)
    session = Session(Engine(), "usage")

    def rec(k):
        usage = {"input_tokens": rng.randrange(1000), "output_tokens": rng.randrange(100),
                 "cost_usd": rng.choice([None, 0, 0.1, 1e-7, 0.3])}
        return {"id": f"t{k}", "usage": usage if rng.random() < 0.9 else None}

    saved = [rec(k) for k in range(5)]
    finished: list = []
    for k in range(5, 120):
        running = [rec(1000 + n) for n in range(rng.choice([0, 1, 2]))]  # built afresh at each save
        records = saved + finished + running
        assert session._usage(records, len(saved) + len(finished)) == session_usage(records)
        finished.append(rec(k))
        if rng.random() < 0.05:
            saved = [rec(2000 + k)] + saved[1:]  # the file's turns replaced (attach_history)
        if rng.random() < 0.03:
            finished = finished[:-3]  # a shorter session (not done today, but must stay right)


def test_the_turn_cache_and_the_text_give_what_fresh_ones_give_as_turns_come_and_go():
    from hermes_jupyter.history.cache import DocumentText, TurnCache

    rng = random.Random(5)
    cache, text = TurnCache(), DocumentText()
    written = b""  # what the file holds: the text reads the bytes of the items it rendered before from it
    redact = lambda t: {**t, "answer": str(t.get("answer", "")).replace("sk-secret", "[REDACTED]")}  # noqa: E731
    turns: list = []
    for k in range(300):
        what = rng.random()
        if what < 0.6:
            turns = [*turns, {"id": f"t{k}", "status": "running", "answer": f"a{k} sk-secret"}]
        elif what < 0.75 and turns:
            turns = [*turns[:-1], {**turns[-1], "status": "done"}]  # the running turn's final record
        elif what < 0.8 and turns:
            turns = turns[: rng.randrange(len(turns))]
        elif what < 0.85 and turns:
            turns = [*turns, dict(turns[rng.randrange(len(turns))])]  # a duplicate id
        elif what < 0.9 and len(turns) > 2:
            i = rng.randrange(len(turns) - 1)
            turns = [*turns[:i], turns[i + 1], turns[i], *turns[i + 2:]]
        elif turns:
            turns[rng.randrange(len(turns))]["answer"] = "changed in place"  # callers must hand a new object
            turns = [dict(t) for t in turns]
        got, _ = cache.update(list(turns), redact)
        assert got == TurnCache().update(list(turns), redact)[0], k
        doc = {"sessions": {"main": {"turns": got, "messages": got[::-1]}}} if got else {"sessions": {}}
        if rng.random() < 0.1 and written:  # the file changed under it (same length): nothing is taken from it
            at = rng.randrange(len(written))
            written = written[:at] + bytes([written[at] ^ 1]) + written[at + 1:]
        on_disk = None if rng.random() < 0.05 else written  # None: the file is gone
        rendered = text.render(doc, lambda: on_disk)  # noqa: B023 (called before the loop goes on)
        assert rendered == (json.dumps(doc, ensure_ascii=False, indent=1) + "\n").encode(), k
        written = rendered


def test_a_message_that_stops_being_plain_takes_the_sdks_path_even_after_its_prefix_was_seen():
    import openai.resources.chat.completions.completions as chat
    from openai import NOT_GIVEN
    from pydantic import BaseModel

    from hermes_jupyter.agent.request_body import passthrough

    class Part(BaseModel):
        type: str = "text"
        text: str = "hi"

    real = getattr(chat.maybe_transform, "__wrapped__", chat.maybe_transform)
    streaming = chat.completion_create_params.CompletionCreateParamsStreaming
    fast = passthrough(real, (streaming,))
    base = [{"role": "user", "content": f"m{i}"} for i in range(50)]
    for last in ({"role": "user", "content": [Part()]}, {"role": "user", "content": "x", "name": NOT_GIVEN},
                 {"role": "user", "content": ("a", "tuple")}, {"role": "user", "content": "plain"}):
        body = {"messages": [*base, last], "model": "m", "stream": True}
        assert fast({"messages": base, "model": "m", "stream": True}, streaming)["messages"] == base
        assert json.dumps(fast(body, streaming), default=str) == json.dumps(real(body, streaming), default=str)
