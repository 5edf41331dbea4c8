"""Record a session once against a "real provider", replay it offline (hermes_jupyter.recording).

The provider is the scripted model (tests/scripts/recording.yaml) behind the recording proxy:
two servers, the real AIAgent, real tools. The replay runs after the provider is closed.
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path

import httpx
import pytest
import yaml

from hermes_jupyter import events as ev
from hermes_jupyter.agent.failures import ConfigError, classify
from hermes_jupyter.agent.settings import RunConfig, record_through_proxy
from hermes_jupyter.engine import Engine
from hermes_jupyter.history.paths import recording_path
from hermes_jupyter.models.recording import FORMAT, Request
from hermes_jupyter.models.replay import Replay
from hermes_jupyter.models.scripted import ScriptedServer
from hermes_jupyter.models.scripted import server as scripted_server
from hermes_jupyter.prompt import system_prompt

from .kernel import Kernel


def request_key(body):
    return Request.read(body, ()).key


SCRIPT = Path(__file__).parent / "scripts" / "recording.yaml"
KEY = "planted-key-5f4e3d2c1b0a"  # the provider's key; the script echoes it back
TIMEOUT = 60
# Prompts of the recorded session, in order: reasoning + tool, an approval, a question, volatile output.
SESSION = ["run echo", "delete victim", "ask me", "where am i"]


def of(turn, kind):
    return [e for e in turn.events if isinstance(e, kind)]


def run(engine, prompt, cwd, *, approve="once", answer="blue", **flags):
    """One turn; approvals and questions answered from code as a user would click."""
    def act(event):
        if isinstance(event, ev.ApprovalRequested):
            turn.approve(approve, event.request_id)
        elif isinstance(event, ev.ClarifyRequested):
            turn.answer(answer, event.request_id)
    turn = engine.submit(prompt, cwd=cwd, subscribers=[act], **flags)
    assert turn.wait(TIMEOUT), f"turn did not end: {turn.events[-5:]}"
    return turn


def transcript(turn, folder: Path) -> dict:
    """What a reader sees of a turn; the folder and digits of tool output vary between runs."""
    def steady(text):
        return re.sub(r"\d+", "0", text.replace(str(folder), "<dir>"))
    usage = of(turn, ev.Usage)
    return {
        "status": turn.status,
        "text": turn.text,
        # Phases ("starting Hermes", "connecting") depend on whether a warm agent was ready, not on the model.
        "kinds": [e.kind for e in turn.events if e.kind != "phase"],
        "tools": [(e.name, e.args) for e in of(turn, ev.ToolStarted)],
        "results": [(steady(e.result), e.is_error) for e in of(turn, ev.ToolCompleted)],
        "reasoning": "".join(e.text for e in of(turn, ev.Reasoning)),
        "approvals": [(e.command, r.choice) for e, r in zip(of(turn, ev.ApprovalRequested),
                                                            of(turn, ev.ApprovalResolved), strict=True)],
        "questions": [(q.question, q.choices, a.answer) for q, a in zip(of(turn, ev.ClarifyRequested),
                                                                       of(turn, ev.ClarifyResolved), strict=True)],
        "usage": [(u.model, u.input_tokens, u.output_tokens) for u in usage],
    }


def workdir(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "victim").mkdir()
    (path / "victim" / "data.txt").write_text("precious")
    return path


@pytest.fixture(scope="module")
def planted_key():
    old = os.environ.get("X_API_KEY")
    os.environ["X_API_KEY"] = KEY
    yield KEY
    if old is None:
        os.environ.pop("X_API_KEY", None)
    else:
        os.environ["X_API_KEY"] = old


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, planted_key):
    """The session recorded once; the provider is closed before any test replays it."""
    base = tmp_path_factory.mktemp("recorded")
    folder = workdir(base / "work")
    path = base / "session.hermes-recording.yaml"
    provider = ScriptedServer(SCRIPT).start()
    engine = Engine()
    engine.settings.base_url = provider.base_url
    engine.settings.model = "stand-in-model"
    engine.settings.api_key_env = "X_API_KEY"
    engine.settings.record_to = str(path)
    provider_url = provider.base_url
    turns = [run(engine, prompt, folder) for prompt in SESSION]
    provider.close()
    for turn in turns:
        assert turn.status == "done", turn.error
    return {"path": path, "folder": folder, "turns": turns, "provider_url": provider_url,
            "config": turns[0].config}


def replay_engine(path: Path, timing: str = "fast") -> Engine:
    engine = Engine()
    engine.settings.model = f"replay:{path}"
    engine.settings.replay_timing = timing
    return engine


def test_the_recording_went_through_the_proxy(recorded):
    config = recorded["config"]
    assert config.base_url != recorded["provider_url"] and config.base_url.startswith("http://127.0.0.1:")
    assert "recording to" in config.source and str(recorded["path"]) in config.source
    assert not recorded["folder"].joinpath("victim").exists()  # the approved rm -rf ran


def test_replay_offline_gives_the_same_transcript(recorded, tmp_path):
    with pytest.raises(httpx.ConnectError):  # the provider is gone
        httpx.get(recorded["provider_url"] + "/models", timeout=5)
    folder = workdir(tmp_path / "elsewhere")  # another folder: the notebook's path is not part of the match
    engine = replay_engine(recorded["path"])
    replayed = [run(engine, prompt, folder) for prompt in SESSION]
    for before, after in zip(recorded["turns"], replayed, strict=True):
        assert transcript(after, folder) == transcript(before, recorded["folder"]), before.prompt
    # The tools really ran again: the approved command deleted this folder's victim too.
    assert not (folder / "victim").exists()
    echo = transcript(replayed[0], folder)
    assert echo["reasoning"] == "A command will tell." and "recorded-tool-output" in echo["text"]
    assert echo["tools"] == [("terminal", {"command": "echo recorded-tool-output"})]
    assert transcript(replayed[1], folder)["approvals"] == [("rm -rf ./victim", "once")]
    assert transcript(replayed[2], folder)["questions"] == [("Which colour?", ("red", "blue"), "blue")]


def test_the_file_holds_each_call_with_its_streamed_reply(recorded):
    text = recorded["path"].read_text()
    doc = yaml.safe_load(text)
    assert doc["format"] == FORMAT and doc["model"] == "stand-in-model" and doc["context_length"] == 100000
    calls = [(x["prompt"], x["step"]) for x in doc["exchanges"]]
    assert calls == [(p, s) for p in SESSION for s in (0, 1)]
    first = doc["exchanges"][0]
    assert first["earlier"] == 0 and first["tools"] is True and first["messages"] == []
    reply = first["reply"]
    assert reply["reasoning"] == "A command will tell." and reply["finish_reason"] == "tool_calls"
    assert reply["tool_calls"][0]["name"] == "terminal"
    assert reply["usage"]["completion_tokens"] > 0
    assert reply["stream"].startswith("r:5@") and " c0:0@" in reply["stream"]  # channel:chars@ms
    result = doc["exchanges"][1]["messages"][-1]
    assert result["role"] == "tool" and "recorded-tool-output" in result["content"]
    # Neither the system prompt nor the notebook's folder is stored.
    assert "Hermes Agent" not in text and str(recorded["folder"]) not in text
    where = next(x for x in doc["exchanges"] if x["prompt"] == "where am i" and x["step"] == 1)
    assert "<notebook>" in where["messages"][-1]["content"]


def test_a_drifted_prompt_fails_the_turn_and_says_which(recorded, tmp_path):
    turn = run(replay_engine(recorded["path"]), "run echo twice", workdir(tmp_path / "w"))
    assert turn.status == "failed" and not of(turn, ev.ToolStarted)
    error = turn.error
    assert error.error_kind == "replay"
    assert error.message.startswith("Replay drift at the prompt 'run echo twice' (step 0): "
                                    "the recording asks 'run echo' here")
    assert "session.hermes-recording.yaml" in error.message
    assert "record it again" in error.hint and "--record" in error.hint


def test_a_different_answer_drifts_at_the_next_step(recorded, tmp_path):
    folder = workdir(tmp_path / "w")
    engine = replay_engine(recorded["path"])
    assert run(engine, "run echo", folder).status == "done"
    turn = run(engine, "delete victim", folder, approve="deny")
    assert (folder / "victim").exists()  # denied, as in a real run
    message = turn.error.message
    assert message.startswith("Replay drift at the prompt 'delete victim' (step 1): the result of terminal differs")
    assert "BLOCKED" in message and "exit_code\": -#" in message


def test_a_prompt_after_another_conversation_says_so(recorded, tmp_path):
    engine = replay_engine(recorded["path"])
    # As when the notebook's history file resumed an earlier session.
    engine.session().messages = [{"role": "user", "content": "an earlier question"},
                                 {"role": "assistant", "content": "an earlier answer"}]
    message = run(engine, "run echo", tmp_path).error.message
    assert message.startswith("Replay drift at the prompt 'run echo' (step 0): the recording has it after 0 "
                              "earlier messages, not after these 2: replay the recorded cells in order, "
                              "from a new session")


def test_an_unknown_prompt_in_an_unknown_conversation(recorded, tmp_path):
    engine = replay_engine(recorded["path"])
    engine.session().messages = [{"role": "user", "content": "elsewhere"}, {"role": "assistant", "content": "ok"}]
    assert "this prompt is not in the recording" in run(engine, "something new", tmp_path).error.message


def test_a_replay_cannot_be_recorded(recorded, tmp_path):
    engine = replay_engine(recorded["path"])
    turn = run(engine, "run echo", tmp_path, record=True)
    assert turn.error.error_kind == "config" and "a replay cannot be recorded" in turn.error.message


def test_recorded_timing_is_replayed_and_fast_skips_it(tmp_path):
    provider = ScriptedServer({"model": "slow-model", "chunk_size": 2, "delay": 0.03,
                               "rules": [{"default": True, "steps": [{"text": "0123456789abcdefghij"}]}]}).start()
    path = tmp_path / "slow.yaml"
    engine = Engine()
    engine.settings.base_url, engine.settings.model, engine.settings.record_to = provider.base_url, "slow-model", str(path)
    assert run(engine, "hello", tmp_path).text == "0123456789abcdefghij"
    provider.close()
    body = provider.requests[-1]
    recorded = Replay.load(path).reply(body)
    assert "".join(d["content"] for d in recorded.deltas) == "0123456789abcdefghij"
    assert len(recorded.deltas) == 10 and sum(recorded.pauses) >= 9 * 0.03 * 0.9
    fast = Replay.load(path, fast=True).reply(body)
    assert fast.deltas == recorded.deltas and fast.pauses == () and fast.pause(5) == 0.0
    # On the wire: the recorded pauses are kept.
    import openai
    with ScriptedServer(Replay.load(path)) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="x")
        started = time.monotonic()
        stream = client.chat.completions.create(model="slow-model", messages=body["messages"],
                                                tools=body.get("tools"), stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert text == "0123456789abcdefghij" and time.monotonic() - started >= sum(recorded.pauses) * 0.9


def test_planted_secrets_never_reach_the_recording(tmp_path, planted_key, monkeypatch):
    seen_auth: list[str] = []
    begin = scripted_server._Handler._begin

    def spy(self):
        seen_auth.append(self.headers.get("Authorization", ""))
        return begin(self)
    monkeypatch.setattr(scripted_server._Handler, "_begin", spy)
    provider = ScriptedServer(SCRIPT).start()
    path = tmp_path / "leak.yaml"
    engine = Engine()
    engine.settings.base_url, engine.settings.model = provider.base_url, "stand-in-model"
    engine.settings.api_key_env, engine.settings.record_to = "X_API_KEY", str(path)
    prompt_token = "sk-ant-api03-Zyxwvutsrqponmlkjihg0123456789"
    turn = run(engine, f"leak this: {prompt_token}", tmp_path)
    provider.close()
    assert turn.status == "done"
    assert f"Bearer {planted_key}" in seen_auth  # the key went to the provider through the proxy
    assert planted_key in turn.text  # and the provider echoed it back
    text = path.read_text()
    for secret in (planted_key, prompt_token, "sk-proj-0123456789abcdefghijKLMN"):
        assert secret not in text
    assert "bearer" not in text.lower() and "authorization" not in text.lower()
    assert "Your key is [REDACTED]" in text and "leak this: [REDACTED]" in text


def test_only_chat_completions_can_be_recorded(tmp_path):
    config = RunConfig(model="claude", provider="anthropic", base_url="https://api.anthropic.com",
                       api_mode="anthropic_messages", api_key="k" * 20, toolsets=(), approvals="ask",
                       approval_timeout=1, clarify_timeout=1)
    with pytest.raises(ConfigError, match=r"only the OpenAI chat-completions protocol.*'anthropic_messages'"):
        record_through_proxy(config, tmp_path / "r.yaml")
    # Should the agent still speak another protocol, the proxy refuses it in words the engine shows.
    proxied = record_through_proxy(
        RunConfig(model="m", provider="custom", base_url="http://127.0.0.1:9/v1", api_mode=None, api_key="x",
                  toolsets=(), approvals="ask", approval_timeout=1, clarify_timeout=1), tmp_path / "r.yaml")
    reply = httpx.post(proxied.base_url + "/responses", json={"input": "hi"}, timeout=10)
    assert reply.status_code == 405
    failure = classify("HTTP 405: " + reply.json()["error"]["message"])
    assert failure.kind == "config" and "POST /v1/responses" in failure.message
    assert not (tmp_path / "r.yaml").exists()


def test_the_key_ignores_what_changes_between_runs():
    def body(system, call_id, args, output, prompt="run it"):
        return {"tools": [{}], "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": prompt},
            {"role": "assistant", "content": "", "tool_calls": [
                {"id": call_id, "type": "function", "function": {"name": "terminal", "arguments": args}}]},
            {"role": "tool", "tool_call_id": call_id, "content": output}]}
    first = body("Today is Monday. " + system_prompt("/home/a/nb"),
                 "call_1", '{"command": "ls", "timeout": 5}', '{"output": "/home/a/nb/x.txt 12:01", "exit_code": 0}')
    again = body("Today is Tuesday. " + system_prompt("/tmp/ci/nb"),
                 "call_zz", '{"timeout":5,"command":"ls"}', '{"output": "/tmp/ci/nb/x.txt  13:59", "exit_code": 0}')
    assert request_key(first) == request_key(again)
    assert request_key(first) != request_key(body("", "c", '{"command": "ls"}', '{"output": "y.txt"}'))
    assert request_key(first) != request_key({**first, "tools": []})  # a side call is another request
    changed = body("", "call_1", '{"command": "ls", "timeout": 5}', '{"output": "x.txt", "exit_code": 0}',
                   prompt="run it now")
    assert request_key(first) != request_key(changed)


def test_recording_path_is_beside_the_notebook(tmp_path):
    assert recording_path(tmp_path / "analysis.ipynb", "/x") == tmp_path / "analysis.hermes-recording.yaml"


def _body(stdout: str) -> str:
    """A turn's text output without its header line and with steady durations."""
    return re.sub(r"\d+\.\d+s\b", "N.Ns", stdout.split("\n", 1)[1])


def test_magic_records_beside_the_notebook_and_replays_in_a_real_kernel(tmp_path, planted_key):
    provider = ScriptedServer(SCRIPT).start()
    kernel = Kernel(tmp_path, env={"X_API_KEY": planted_key})
    try:
        setup = kernel.run("%config Hermes.notebook = 'demo.ipynb'\n%load_ext hermes_jupyter\n"
                           "%config Hermes.plain = True")
        assert setup.reply["status"] == "ok", setup.error
        url = provider.base_url
        ask = (f"%hermes --wait --record --base-url {url} --model stand-in-model "
               "--api-key-env X_API_KEY run echo")
        live = kernel.run(ask)
        assert "recorded-tool-output" in live.stdout, live.stdout + live.stderr
        path = tmp_path / "demo.hermes-recording.yaml"
        assert yaml.safe_load(path.read_text())["exchanges"][0]["prompt"] == "run echo"
        provider.close()
        replay = kernel.run("%hermes --wait -s replay --model replay:demo.hermes-recording.yaml "
                            "--replay-timing fast run echo")
        assert "session 'replay' · model stand-in-model" in replay.stdout
        assert _body(replay.stdout) == _body(live.stdout)
        drift = kernel.run("%hermes --wait -s other --model replay:demo.hermes-recording.yaml run echo twice")
        assert "[error: replay] Replay drift at the prompt 'run echo twice' (step 0)" in drift.stdout
        config = kernel.run(f"%config Hermes.base_url = '{url}'\n%config Hermes.model = 'stand-in-model'\n"
                            "%config Hermes.record = True\n%hermes /config")
        assert f"recording to {path}" in config.stdout
    finally:
        kernel.close()
        provider.close()


def test_a_provider_error_and_the_retry_are_replayed(tmp_path):
    provider = ScriptedServer({"model": "flaky-model", "rules": [{"default": True, "steps": [
        {"error": {"status": 429, "message": "Rate limit reached", "retry_after": 0.01, "times": 1},
         "text": "Recovered."}]}]}).start()
    path = tmp_path / "flaky.yaml"
    engine = Engine()
    engine.settings.base_url, engine.settings.model, engine.settings.record_to = provider.base_url, "flaky-model", str(path)
    live = run(engine, "hello", tmp_path)
    provider.close()
    exchanges = yaml.safe_load(path.read_text())["exchanges"]
    assert [x.get("error", {}).get("status") for x in exchanges] == [429, None]
    assert exchanges[0]["key"] == exchanges[1]["key"] and exchanges[0]["error"]["retry_after"] == 0.01
    replayed = run(replay_engine(path), "hello", tmp_path)
    assert replayed.text == live.text == "Recovered."
    assert transcript(replayed, tmp_path) == transcript(live, tmp_path)


def test_a_call_that_was_not_streamed_is_recorded_and_replayed(tmp_path):
    import openai
    path = tmp_path / "plain.yaml"
    messages = [{"role": "user", "content": "run echo"}]
    with ScriptedServer(SCRIPT) as provider:
        config = RunConfig(model="stand-in-model", provider="custom", base_url=provider.base_url,
                           api_mode="chat_completions", api_key="x", toolsets=(), approvals="ask",
                           approval_timeout=1, clarify_timeout=1)
        proxied = record_through_proxy(config, path)
        live = openai.OpenAI(base_url=proxied.base_url, api_key="x").chat.completions.create(
            model="stand-in-model", messages=messages, tools=[{"type": "function", "function": {"name": "terminal"}}])
    reply = yaml.safe_load(path.read_text())["exchanges"][0]["reply"]
    assert "stream" not in reply and reply["reasoning"] == "A command will tell."
    with ScriptedServer(Replay.load(path)) as server:
        again = openai.OpenAI(base_url=server.base_url, api_key="x").chat.completions.create(
            model="stand-in-model", messages=messages, tools=[{"type": "function", "function": {"name": "terminal"}}])
    assert again.choices[0].message.tool_calls[0].function.arguments == live.choices[0].message.tool_calls[0].function.arguments
    assert again.choices[0].message.tool_calls[0].id == live.choices[0].message.tool_calls[0].id
    assert again.usage.completion_tokens == live.usage.completion_tokens


def test_one_file_for_every_endpoint_and_a_deleted_file_starts_afresh(tmp_path):
    path = tmp_path / "r.yaml"

    def prompts():
        return [x["prompt"] for x in yaml.safe_load(path.read_text())["exchanges"]]
    with ScriptedServer(SCRIPT) as one, ScriptedServer(SCRIPT) as two:
        engine = Engine()
        engine.settings.model, engine.settings.record_to = "stand-in-model", str(path)
        run(engine, "run echo", tmp_path, base_url=one.base_url, session="a")
        run(engine, "where am i", tmp_path, base_url=two.base_url, session="b")  # a second proxy, same file
        assert prompts() == ["run echo", "run echo", "where am i", "where am i"]
        path.unlink()
        run(engine, "ask me", tmp_path, base_url=one.base_url, session="c")
        assert prompts() == ["ask me", "ask me"]
