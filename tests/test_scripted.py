"""The scripted model: script selection, wire protocol, and the real AIAgent against it."""
from __future__ import annotations

import concurrent.futures
import http.client
import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import openai
import pytest

from hermes_jupyter.models.scripted import (
    BUILTIN_DEMO,
    Script,
    ScriptedServer,
    ScriptError,
    load_script,
    open_gate,
    shared_server,
    wait_held,
)
from hermes_jupyter.models.scripted import server as server_module
from hermes_jupyter.models.scripted.script import FINISHED_TEXT, TOOL_RESULT_LIMIT, GateSpec, lorem

ROOT = Path(__file__).resolve().parents[1]
TOOLS = [{"type": "function", "function": {"name": "terminal", "parameters": {"type": "object"}}}]

SCRIPT: dict[str, Any] = {
    "model": "test-model",
    "rules": [
        {"match": "Hello", "steps": [{"text": "Hi! You said: {prompt}"}]},
        {"regex": r"^list (\w+)", "steps": [
            {"reasoning": "I should look.",
             "tool_calls": [{"name": "terminal", "arguments": {"command": "ls {prompt}"}}]},
            {"text": "Found: {tool_result}"},
        ]},
        {"match": "two tools", "steps": [{"tool_calls": [
            {"name": "terminal", "arguments": {"command": "echo a"}},
            {"name": "terminal", "arguments": '{"command": "echo b"}'},
        ]}]},
        {"match": "echo", "steps": [
            {"tool_calls": [{"name": "terminal", "arguments": {"command": "echo hi"}}]},
            {"text": "Output: {tool_result}"},
        ]},
        {"match": "think", "steps": [{"reasoning": "Pondering deeply.", "text": "The answer is 42.", "chunk_size": 3}]},
        {"match": "flaky", "steps": [{"error": {"status": 500, "message": "boom", "times": 1}, "text": "recovered"}]},
        {"match": "throttle", "steps": [{
            "error": {"status": 429, "message": "Rate limit reached", "retry_after": 0.01, "times": 1},
            "text": "after the wait",
        }]},
        {"match": "rate limit", "steps": [{"error": {"status": 429, "message": "Slow down", "retry_after": 7}}]},
        {"match": "server down", "steps": [{"error": {"status": 500, "message": "upstream exploded"}}]},
        {"match": "bad request", "steps": [{"error": {"status": 400, "message": "nope", "code": "bad_thing"}}]},
        {"match": "long", "steps": [{"lorem": 3000}]},
        {"default": True, "steps": [{"text": "Default reply."}]},
    ],
}


def user(text: Any) -> dict[str, Any]:
    return {"role": "user", "content": text}


def body(*messages: dict[str, Any], tools: bool = True) -> dict[str, Any]:
    return {"model": "test-model", "messages": list(messages), **({"tools": TOOLS} if tools else {})}


# --- script.py: selection ----------------------------------------------------------

@pytest.fixture(scope="module")
def script() -> Script:
    return load_script(SCRIPT)


def test_match_is_a_case_insensitive_substring_of_the_last_user_message(script: Script) -> None:
    reply = script.reply(body(user("list x"), {"role": "assistant", "content": "ok"}, user("well, hello there")))
    assert reply.text == "Hi! You said: well, hello there"
    assert reply.finish_reason == "stop"


def test_regex_rule_and_content_parts(script: Script) -> None:
    parts = [
        {"type": "text", "text": "list "},
        {"type": "image_url", "image_url": {"url": "x"}},
        {"type": "text", "text": "files"},
    ]
    reply = script.reply(body(user(parts)))
    assert reply.reasoning == "I should look."
    assert [(c.name, json.loads(c.arguments)) for c in reply.tool_calls] == [("terminal", {"command": "ls list files"})]
    assert reply.finish_reason == "tool_calls"


def test_default_rule_and_builtin_fallback(script: Script) -> None:
    assert script.reply(body(user("something else"))).text == "Default reply."
    bare = load_script({"rules": [{"match": "x", "steps": [{"text": "x"}]}]})
    assert "no scripted answer for: zzz" in bare.reply(body(user("zzz"))).text


def test_steps_advance_with_assistant_messages_and_then_finish(script: Script) -> None:
    call = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "terminal", "arguments": "{}"}},
    ]}
    result = {"role": "tool", "tool_call_id": "c1", "content": json.dumps({"output": "a.txt\nb.txt", "exit_code": 0})}
    second = script.reply(body(user("list files"), call, result))
    assert second.text == "Found: a.txt\nb.txt"
    done = script.reply(body(user("list files"), call, result, {"role": "assistant", "content": second.text}))
    assert done.text == FINISHED_TEXT


def test_tool_result_plain_text_and_truncation(script: Script) -> None:
    call = {"role": "assistant", "content": "", "tool_calls": []}
    plain = script.reply(body(user("list it"), call, {"role": "tool", "content": "  plain output  "}))
    assert plain.text == "Found: plain output"
    huge = script.reply(body(user("list it"), call, {"role": "tool", "content": "x" * 5000}))
    assert TOOL_RESULT_LIMIT < len(huge.text) < TOOL_RESULT_LIMIT + 20


def test_tool_call_ids_are_deterministic_and_unique(script: Script) -> None:
    first = script.reply(body(user("two tools")))
    again = script.reply(body(user("two tools")))
    assert [c.id for c in first.tool_calls] == [c.id for c in again.tool_calls]
    assert len({c.id for c in first.tool_calls}) == 2
    later = script.reply(body(user("x"), {"role": "assistant", "content": "y"}, user("two tools")))
    assert not {c.id for c in first.tool_calls} & {c.id for c in later.tool_calls}
    assert json.loads(first.tool_calls[1].arguments) == {"command": "echo b"}  # raw JSON strings pass through


def test_side_calls_without_tools_never_get_tool_calls(script: Script) -> None:
    reply = script.reply(body({"role": "system", "content": "Generate a title"}, user("User: list files"), tools=False))
    assert reply.tool_calls == () and reply.text == "Default reply."
    assert script.reply(body(tools=False)).text == "Default reply."  # no user message at all


def test_error_with_times_fails_then_recovers(script: Script) -> None:
    request = body(user("flaky please"))
    assert script.reply(request, attempt=0).error is not None
    recovered = script.reply(request, attempt=1)
    assert recovered.error is None and recovered.text == "recovered"
    assert script.reply(body(user("server down")), attempt=99).error.status == 500


def test_usage_is_deterministic(script: Script) -> None:
    a = script.reply(body(user("think")))
    b = script.reply(body(user("think")))
    assert (a.prompt_tokens, a.completion_tokens) == (b.prompt_tokens, b.completion_tokens)
    assert a.completion_tokens == (len(a.text) + len(a.reasoning)) // 4


def test_lorem_is_deterministic_with_n_words() -> None:
    assert lorem(500) == lorem(500)
    assert len(lorem(500).split()) == 500
    assert lorem(3) == "Lorem elit labore."


def test_per_step_overrides(script: Script) -> None:
    reply = script.reply(body(user("think")))
    assert (reply.chunk_size, reply.delay) == (3, 0.0)


# --- script.py: loading and validation ----------------------------------------------

def one_step(**step: Any) -> dict[str, Any]:
    return {"rules": [{"match": "a", "steps": [step]}]}


STEP = "rules[0].steps[0]"


@pytest.mark.parametrize(("data", "message"), [
    ({"rulez": []}, "script: unknown key 'rulez'"),
    (one_step(txt="x"), f"{STEP}: unknown key 'txt'"),
    ({"rules": [{"steps": [{"text": "x"}]}]}, "rules[0]: needs exactly one of"),
    ({"rules": [{"match": "a", "regex": "b", "steps": [{"text": "x"}]}]}, "rules[0]: needs exactly one of"),
    ({"rules": [{"match": "a", "steps": []}]}, "rules[0].steps: must not be empty"),
    ({"rules": [{"match": "a"}]}, "rules[0].steps: is required"),
    ({"rules": [{"regex": "(", "steps": [{"text": "x"}]}]}, "rules[0].regex: invalid regular expression"),
    ({"context_length": 32000}, "context_length: must be >= 64000"),
    ({"chunk_size": 0}, "chunk_size: must be >= 1"),
    ({"chunk_size": True}, "chunk_size: expected an integer, got a boolean"),
    ({"delay": "slow"}, "delay: expected a number, got str"),
    (one_step(), f"{STEP}: needs at least one of"),
    (one_step(text=3), f"{STEP}.text: expected a string, got int"),
    (one_step(error={"status": 200}), f"{STEP}.error.status: must be an HTTP error status"),
    (one_step(error={"status": 500}, text="x"), "an error without 'times' always fails"),
    (one_step(error={"status": 500, "times": 1}), "an error with 'times' needs"),
    (one_step(tool_calls=[{"arguments": {}}]), f"{STEP}.tool_calls[0].name: is required"),
    (one_step(tool_calls=[{"name": "t", "arguments": "{oops"}]), "tool_calls[0].arguments: a string must be valid"),
    (one_step(text="x", lorem=3), "'text' and 'lorem' exclude each other"),
    (one_step(text="x", gate=3), f"{STEP}.gate: expected a gate name or a mapping"),
    (one_step(text="x", gate={"after": 2}), f"{STEP}.gate.name: is required"),
    (one_step(text="x", gate="a/b"), f"{STEP}.gate.name: letters, digits"),
    (one_step(text="x", gate={"name": "g", "after": -1}), f"{STEP}.gate.after: must be >= 0"),
    (one_step(text="x", gate={"name": "g", "when": 1}), f"{STEP}.gate: unknown key 'when'"),
    ({"rules": [{"default": True, "steps": [{"text": "x"}]}] * 2}, "rules[1]: a second default rule"),
    (["not", "a", "mapping"], "script: expected a mapping, got list"),
])
def test_validation_errors_name_the_bad_place(data: Any, message: str) -> None:
    with pytest.raises(ScriptError) as info:
        load_script(data)
    assert message in str(info.value)


def test_files_yaml_json_and_their_errors(tmp_path: Path) -> None:
    (tmp_path / "ok.json").write_text(json.dumps(SCRIPT))
    assert load_script(tmp_path / "ok.json").model == "test-model"
    (tmp_path / "bad.yaml").write_text("rules: [\n  - match: x\n")
    with pytest.raises(ScriptError, match=r"^bad\.yaml: not valid YAML"):
        load_script(tmp_path / "bad.yaml")
    (tmp_path / "wrong.yaml").write_text("rules:\n  - match: x\n    steps: [{text: 1}]\n")
    with pytest.raises(ScriptError, match=r"^wrong\.yaml: rules\[0\]\.steps\[0\]\.text: expected a string"):
        load_script(str(tmp_path / "wrong.yaml"))
    with pytest.raises(ScriptError, match="cannot read script"):
        load_script(tmp_path / "missing.yaml")


def test_builtin_demo_answers_its_advertised_prompts() -> None:
    demo = load_script(BUILTIN_DEMO)
    assert demo.model == "scripted-demo" and demo.context_length >= 64000
    assert "scripted demo model" in demo.reply(body(user("Hello!"))).text
    assert [c.name for c in demo.reply(body(user("What is in this folder?"))).tool_calls] == ["terminal"]
    danger = demo.reply(body(user("please clean the build folder")))
    assert json.loads(danger.tool_calls[0].arguments) == {"command": "rm -rf ./build"}
    clarify = json.loads(demo.reply(body(user("help me make a chart"))).tool_calls[0].arguments)
    assert clarify["question"] and len(clarify["choices"]) == 3
    thought = demo.reply(body(user("why is the sky blue?")))
    assert thought.reasoning and thought.text
    report = demo.reply(body(user("write a report"))).text
    assert "| Region" in report and "```python" in report
    assert demo.reply(body(user("tell me a joke"))).text.startswith("I'm the scripted demo model")


# --- server.py: the wire protocol with the openai client --------------------------------

@pytest.fixture(scope="module")
def srv() -> Any:
    with ScriptedServer(SCRIPT) as server:
        yield server


@pytest.fixture(scope="module")
def client(srv: ScriptedServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=srv.base_url, api_key="scripted", max_retries=0, timeout=30)


def test_models_endpoints(srv: ScriptedServer, client: openai.OpenAI) -> None:
    assert srv.base_url.startswith("http://127.0.0.1:") and srv.base_url.endswith("/v1")
    models = client.models.list()
    assert [m.id for m in models.data] == ["test-model"]
    assert models.data[0].model_extra["context_length"] == 128_000
    assert client.models.retrieve("test-model").id == "test-model"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-nope")


def test_unknown_paths_get_a_json_404(srv: ScriptedServer) -> None:
    root = srv.base_url[: -len("/v1")]
    for method, path in [("GET", "/api/tags"), ("POST", "/api/show"), ("GET", "/v1/props"), ("DELETE", "/v1/models")]:
        request = urllib.request.Request(root + path, method=method, data=b"{}" if method == "POST" else None)
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(request, timeout=5)
        assert info.value.code == 404
        assert "error" in json.loads(info.value.read())


def test_non_streaming_text_reasoning_and_usage(srv: ScriptedServer, client: openai.OpenAI) -> None:
    before = len(srv.requests)
    response = client.chat.completions.create(model="test-model", messages=[user("think hard")])
    choice = response.choices[0]
    assert choice.message.content == "The answer is 42."
    assert choice.message.model_extra["reasoning_content"] == "Pondering deeply."
    assert choice.finish_reason == "stop"
    assert response.usage.prompt_tokens > 0
    assert response.usage.completion_tokens == (len("The answer is 42.") + len("Pondering deeply.")) // 4
    assert response.usage.total_tokens == response.usage.prompt_tokens + response.usage.completion_tokens
    assert srv.requests[before]["messages"] == [user("think hard")]


def test_non_streaming_tool_calls(client: openai.OpenAI) -> None:
    response = client.chat.completions.create(model="test-model", messages=[user("two tools")], tools=TOOLS)
    message = response.choices[0].message
    assert response.choices[0].finish_reason == "tool_calls"
    assert message.content is None
    assert [json.loads(c.function.arguments)["command"] for c in message.tool_calls] == ["echo a", "echo b"]


def test_streaming_text_reasoning_and_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="test-model", messages=[user("think")], stream=True, stream_options={"include_usage": True},
    )
    chunks = list(stream)
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert deltas[0].role == "assistant"
    content = [d.content for d in deltas if d.content]
    reasoning = [d.model_extra.get("reasoning_content") for d in deltas if d.model_extra.get("reasoning_content")]
    assert "".join(content) == "The answer is 42." and len(content) == 6  # chunk_size 3
    assert "".join(reasoning) == "Pondering deeply."
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0


def test_streaming_without_include_usage_has_no_usage_chunk(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model="test-model", messages=[user("hello")], stream=True))
    assert all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)


def test_streaming_tool_calls_reassemble_like_openai(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(model="test-model", messages=[user("two tools")], tools=TOOLS, stream=True)
    calls: dict[int, dict[str, str]] = {}
    fragments = 0
    finish = None
    for chunk in stream:
        choice = chunk.choices[0]
        finish = choice.finish_reason or finish
        for tc in choice.delta.tool_calls or []:
            if tc.id:  # the first delta of a call carries id, type and name
                assert tc.type == "function" and tc.function.name == "terminal" and tc.function.arguments == ""
                calls[tc.index] = {"id": tc.id, "args": ""}
            else:
                assert tc.function.name is None
                calls[tc.index]["args"] += tc.function.arguments
                fragments += 1
    assert finish == "tool_calls"
    assert [json.loads(c["args"]) for _, c in sorted(calls.items())] == [{"command": "echo a"}, {"command": "echo b"}]
    assert fragments > 2  # arguments arrive in pieces
    assert len({c["id"] for c in calls.values()}) == 2


@pytest.mark.parametrize("stream", [False, True])
def test_http_errors_become_openai_exceptions(client: openai.OpenAI, stream: bool) -> None:
    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(model="test-model", messages=[user("rate limit")], stream=stream)
    assert limited.value.status_code == 429
    assert limited.value.body["message"] == "Slow down"
    assert limited.value.response.headers["retry-after"] == "7"
    with pytest.raises(openai.InternalServerError, match="upstream exploded"):
        client.chat.completions.create(model="test-model", messages=[user("server down")], stream=stream)
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="test-model", messages=[user("bad request")], stream=stream)
    assert bad.value.code == "bad_thing"


def test_malformed_request_gets_400(srv: ScriptedServer) -> None:
    request = urllib.request.Request(srv.base_url + "/chat/completions", data=b"not json", method="POST")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=5)
    assert info.value.code == 400


def test_client_disconnect_mid_stream_stops_quietly(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str],
) -> None:
    broken = threading.Event()
    send = server_module._Handler._send_chunk

    def spy(self: Any, data: bytes) -> None:
        try:
            send(self, data)
        except OSError:
            broken.set()
            raise

    monkeypatch.setattr(server_module._Handler, "_send_chunk", spy)
    with ScriptedServer({"delay": 0.005, "rules": [{"match": "long", "steps": [{"lorem": 3000}]}]}) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
        stream = client.chat.completions.create(model="scripted", messages=[user("long")], stream=True)
        for i, _ in enumerate(stream):
            if i == 3:
                break
        stream.close()
        assert broken.wait(10), "the server kept streaming to a closed connection"
        assert client.chat.completions.create(model="scripted", messages=[user("long")]).choices[0].message.content
    assert "Traceback" not in capfd.readouterr().err


def test_close_ends_streams_and_idle_connections() -> None:
    server = ScriptedServer({"delay": 0.05, "rules": [{"match": "long", "steps": [{"lorem": 3000}]}]}).start()
    client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
    client.models.list()  # leaves an idle keep-alive connection in the pool
    stream = client.chat.completions.create(model="scripted", messages=[user("long")], stream=True)
    next(iter(stream))
    started = time.monotonic()
    server.close()
    assert time.monotonic() - started < 5
    server.close()  # idempotent


# --- gates: a reply held until the test opens it -----------------------------------------

GATED: dict[str, Any] = {"model": "gated", "chunk_size": 10, "rules": [
    {"match": "story", "steps": [{"lorem": 200, "gate": {"name": "story", "after": 3}}]},
    {"match": "whole", "steps": [{"text": "All at once.", "gate": "whole"}]},
    {"match": "too few", "steps": [{"text": "Short.", "gate": {"name": "short", "after": 50}}]},
    {"match": "refuse", "steps": [{"error": {"status": 503, "message": "busy"}, "gate": "refuse"}]},
]}


OPEN_FROM_ANOTHER_PROCESS = ("import sys; from hermes_jupyter.models.scripted import open_gate; "
                             "print(open_gate(sys.argv[1], 'whole'))")


@pytest.fixture
def gated() -> Any:
    with ScriptedServer(GATED) as server:
        yield server


def in_thread(work: Any) -> concurrent.futures.Future[Any]:
    pool = concurrent.futures.ThreadPoolExecutor(1)
    future = pool.submit(work)
    pool.shutdown(wait=False)
    return future


def test_a_gate_is_parsed_from_a_name_or_a_mapping() -> None:
    script = load_script(GATED)
    assert script.reply(body(user("story"))).gate == GateSpec("story", 3)
    assert script.reply(body(user("whole"))).gate == GateSpec("whole", 0)
    assert script.reply(body(user("something else"))).gate is None


def test_a_streamed_reply_sends_its_first_chunks_then_waits_for_the_gate(gated: ScriptedServer) -> None:
    client = openai.OpenAI(base_url=gated.base_url, api_key="x", max_retries=0, timeout=30)
    stream = client.chat.completions.create(model="gated", messages=[user("story")], stream=True)
    chunks = iter(stream)
    first = [next(chunks) for _ in range(4)]  # the role chunk and the 3 chunks before the gate
    assert first[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in first) == lorem(200)[:30]
    assert gated.wait_held("story")  # the rest waits: the reply is provably unfinished
    rest = in_thread(lambda: list(chunks))
    assert not rest.done() and gated.held("story") == 1
    assert gated.open_gate("story") == 1
    tail = rest.result(timeout=30)
    assert "".join(c.choices[0].delta.content or "" for c in first + tail) == lorem(200)
    assert tail[-1].choices[0].finish_reason == "stop"
    assert gated.held("story") == 0


def test_a_gate_opens_over_http_from_another_process(gated: ScriptedServer) -> None:
    client = openai.OpenAI(base_url=gated.base_url, api_key="x", max_retries=0, timeout=30)
    answer = in_thread(lambda: client.chat.completions.create(model="gated", messages=[user("whole")]))
    assert wait_held(gated.base_url, "whole")  # a reply that is not streamed is held whole
    assert not wait_held(gated.base_url, "whole", count=2, timeout=0.1)
    with urllib.request.urlopen(gated.base_url + "/gates", timeout=5) as listing:
        assert json.loads(listing.read())["gates"]["whole"] == 1
    opened = subprocess.run(
        [sys.executable, "-c", OPEN_FROM_ANOTHER_PROCESS, gated.base_url],
        capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert opened.stdout.strip() == "1", opened.stderr
    assert answer.result(timeout=30).choices[0].message.content == "All at once."


def test_an_open_with_nothing_held_lets_the_next_reply_through_and_then_the_gate_holds_again(
        gated: ScriptedServer) -> None:
    client = openai.OpenAI(base_url=gated.base_url, api_key="x", max_retries=0, timeout=30)
    assert gated.open_gate("whole") == 0  # nothing held yet: the next reply passes
    assert gated.open_gate("whole") == 0  # opens don't add up
    assert client.chat.completions.create(model="gated", messages=[user("whole")]).choices[0].message.content
    held = in_thread(lambda: client.chat.completions.create(model="gated", messages=[user("whole")]))
    assert gated.wait_held("whole")
    assert open_gate(gated.base_url, "whole") == 1
    assert held.result(timeout=30).choices[0].message.content == "All at once."


def test_a_gate_after_the_last_chunk_holds_the_finish(gated: ScriptedServer) -> None:
    client = openai.OpenAI(base_url=gated.base_url, api_key="x", max_retries=0, timeout=30)
    chunks = iter(client.chat.completions.create(model="gated", messages=[user("too few")], stream=True))
    text = "".join(next(chunks).choices[0].delta.content or "" for _ in range(2))
    assert text == "Short." and gated.wait_held("short")
    rest = in_thread(lambda: list(chunks))
    assert gated.open_gate("short") == 1
    assert rest.result(timeout=30)[-1].choices[0].finish_reason == "stop"


def test_an_error_step_can_be_held(gated: ScriptedServer) -> None:
    client = openai.OpenAI(base_url=gated.base_url, api_key="x", max_retries=0, timeout=30)
    failing = in_thread(lambda: client.chat.completions.create(model="gated", messages=[user("refuse")], stream=True))
    assert gated.wait_held("refuse")
    gated.open_gate("refuse")
    with pytest.raises(openai.InternalServerError, match="busy"):
        failing.result(timeout=30)


def test_a_client_that_hangs_up_is_not_held_any_more(gated: ScriptedServer) -> None:
    client = openai.OpenAI(base_url=gated.base_url, api_key="x", max_retries=0, timeout=30)
    stream = client.chat.completions.create(model="gated", messages=[user("story")], stream=True)
    next(iter(stream))
    assert gated.wait_held("story")
    stream.close()  # an interrupted turn
    assert gated.open_gate("story") == 0  # nothing to release: the client is gone
    assert gated.wait_held("story", 0)


def test_close_ends_the_replies_held_at_gates() -> None:
    server = ScriptedServer(GATED).start()
    client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0, timeout=30)
    waiting = in_thread(lambda: client.chat.completions.create(model="gated", messages=[user("whole")]))
    assert server.wait_held("whole")
    watching = in_thread(lambda: wait_held(server.base_url, "whole", count=2, timeout=60))
    started = time.monotonic()
    server.close()
    assert time.monotonic() - started < 5
    with pytest.raises(openai.APIConnectionError):
        waiting.result(timeout=30)
    try:  # a wait over HTTP ends too: with "not reached", or with the connection
        assert watching.result(timeout=30) is False
    except (OSError, http.client.HTTPException):
        pass


def test_shared_server_is_one_per_script_and_thread_safe(tmp_path: Path) -> None:
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        servers = list(pool.map(lambda _: shared_server("demo"), range(16)))
    assert len({id(s) for s in servers}) == 1
    assert shared_server(None) is servers[0] is shared_server(BUILTIN_DEMO) is shared_server(str(BUILTIN_DEMO))
    assert servers[0].model == "scripted-demo"
    other = tmp_path / "other.yaml"
    other.write_text("model: other\nrules: []\n")
    assert shared_server(other) is not servers[0] and shared_server(other).model == "other"
    shared_server(other).close()
    assert shared_server(other).base_url  # a closed shared server is replaced by a fresh one
    shared_server(other).close()


def test_main_serves_a_script_and_prints_the_base_url(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "hermes_jupyter.models.scripted", "demo"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT,
    )
    try:
        base_url = proc.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        with urllib.request.urlopen(base_url + "/models", timeout=10) as response:
            assert json.loads(response.read())["data"][0]["id"] == "scripted-demo"
    finally:
        proc.terminate()
        proc.wait(10)
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules: 3\n")
    done = subprocess.run(
        [sys.executable, "-m", "hermes_jupyter.models.scripted", str(bad)],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )
    assert done.returncode == 2 and "bad.yaml: rules: expected a list" in done.stderr


# --- the real AIAgent against the server -------------------------------------------------

@pytest.fixture
def make_agent(srv: ScriptedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("TIRITH_ENABLED", "0")
    monkeypatch.chdir(tmp_path)  # the terminal tool runs here
    import run_agent  # after conftest set HERMES_HOME

    made: list[Any] = []

    def make(**callbacks: Any) -> Any:
        # Note: AIAgent() swaps sys.stdout/sys.stderr for a "safe stdio" wrapper
        # (agent/process_bootstrap.py); harmless under pytest's capture.
        agent = run_agent.AIAgent(
            provider="custom", api_mode="chat_completions", base_url=srv.base_url, api_key="scripted",
            model=srv.model, quiet_mode=True, enabled_toolsets=["terminal"], skip_memory=True,
            skip_context_files=True, tool_delay=0, **callbacks,
        )
        made.append(agent)
        return agent

    yield make
    for agent in made:
        agent.close()


def test_agent_streams_text_and_reasoning(srv: ScriptedServer, make_agent: Any) -> None:
    deltas: list[str] = []
    reasoning: list[str] = []
    agent = make_agent(stream_delta_callback=deltas.append, reasoning_callback=reasoning.append)
    result = agent.run_conversation("please think about it")
    assert result["final_response"] == "The answer is 42."
    assert "".join(d for d in deltas if d) == "The answer is 42." and len(deltas) > 1
    assert "".join(reasoning) == "Pondering deeply."
    assert result["completion_tokens"] > 0


def test_agent_runs_a_terminal_tool_call(srv: ScriptedServer, make_agent: Any) -> None:
    deltas: list[str] = []
    agent = make_agent(stream_delta_callback=deltas.append, reasoning_callback=lambda text: None)
    before = len(srv.requests)
    result = agent.run_conversation("please echo something")
    assert result["final_response"] == "Output: hi"
    followup = srv.requests[-1]["messages"]
    assert len(srv.requests) - before == 2
    assert followup[-1]["role"] == "tool" and "hi" in followup[-1]["content"]
    assert followup[-2]["tool_calls"][0]["function"]["name"] == "terminal"
    assert "Output: hi" in "".join(d for d in deltas if d)


def test_agent_construction_only_probes_the_local_server(srv: ScriptedServer, make_agent: Any) -> None:
    before = len(srv.hits)
    make_agent()
    probes = set(srv.hits[before:])
    # Known in hermes-agent 0.19: /v1/models (context length, cached per process) plus the
    # local-server detection waterfall (LM Studio, Ollama, llama.cpp, vLLM), all answered 404.
    known = {"GET /v1/models", "GET /api/v1/models", "GET /api/tags", "GET /v1/props", "GET /props", "GET /version"}
    assert probes <= known, probes - known


def test_agent_retries_scripted_errors(srv: ScriptedServer, make_agent: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # 429 + Retry-After: hermes waits exactly that long, so no patching is needed.
    agent = make_agent(stream_delta_callback=lambda text: None)
    assert agent.run_conversation("throttle me")["final_response"] == "after the wait"
    # 5xx ignore Retry-After and back off 2-3 s, 4-6 s, ...: shorten that for the test.
    monkeypatch.setattr("agent.conversation_loop.jittered_backoff", lambda *args, **kwargs: 0.0)
    result = make_agent(stream_delta_callback=lambda text: None).run_conversation("flaky service")
    assert result["final_response"] == "recovered"


def test_agent_interrupt_closes_the_stream(srv: ScriptedServer, make_agent: Any) -> None:
    deltas: list[str] = []

    def on_delta(text: str) -> None:
        deltas.append(text)
        if len(deltas) == 3:
            agent.interrupt()

    agent = make_agent(stream_delta_callback=on_delta)
    result = agent.run_conversation("a long story please")
    assert result["interrupted"]
    assert len("".join(d for d in deltas if d)) < len(lorem(3000))
