"""The notebook's history file: format, redaction, crash safety, concurrent writers."""
from __future__ import annotations

import json
import random
import signal
import statistics
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from hermes_jupyter import events as ev
from hermes_jupyter.history import store as store_mod
from hermes_jupyter.history.paths import history_path
from hermes_jupyter.history.records import turn_record
from hermes_jupyter.history.store import HistoryStore, HistoryVersionError
from hermes_jupyter.safety.redact import MARKER

ROOT = Path(__file__).resolve().parents[1]


# ----- helpers --------------------------------------------------------------------------
def call(tid: str, args: dict | None = None) -> dict:
    return {"id": tid, "type": "function",
            "function": {"name": "terminal", "arguments": json.dumps(args or {"command": "ls"})}}


def exchange(i: int, prompt: str | None = None, answer: str | None = None) -> list[dict]:
    tid = f"call_{i}"
    return [
        {"role": "user", "content": prompt or f"prompt {i}"},
        {"role": "assistant", "content": "", "tool_calls": [call(tid)]},
        {"role": "tool", "tool_call_id": tid, "content": json.dumps({"output": f"result {i}"})},
        {"role": "assistant", "content": answer or f"answer {i}"},
    ]


def done_turn(turn_id: str, prompt: str, answer: str = "ok", started: float = 1.7e9) -> dict:
    events = [ev.TurnStarted(session="main", prompt=prompt, model="test/model", cwd="/"),
              ev.Token(text=answer, time=0.5), ev.Done(status="done", text=answer, time=1.0)]
    return turn_record(events, turn_id=turn_id, prompt=prompt, started=started)


def strings(obj) -> list[str]:
    """Every string (keys too) in a parsed JSON document."""
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, dict):
        return [s for k, v in obj.items() for s in (*strings(k), *strings(v))]
    if isinstance(obj, list):
        return [s for v in obj for s in strings(v)]
    return []


def run_child(code: str, *args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1, **kw)


# ----- path rule, round trip, title -----------------------------------------------------
def test_history_path_rule(tmp_path):
    assert history_path(tmp_path / "nb" / "analysis.ipynb", tmp_path) == tmp_path / "nb" / "analysis.hermes.json"
    assert history_path(Path("sub/a.b.ipynb"), tmp_path) == tmp_path / "sub" / "a.b.hermes.json"


def test_round_trip(tmp_path):
    path = tmp_path / "analysis.hermes.json"
    messages = exchange(1) + exchange(2)
    turns = [done_turn("t1", "prompt 1", started=1.7e9), done_turn("t2", "prompt 2", started=1.7e9 + 5)]
    store = HistoryStore(path)
    assert store.load() == {"schema": "hermes-jupyter/history", "version": 1, "current": "main", "sessions": {}}
    assert not path.exists()  # loading never writes
    store.save_session({"name": "main", "messages": messages, "turns": turns,
                        "usage": {"input_tokens": 10, "output_tokens": 5, "cost_usd": 0.01}})

    text = path.read_text(encoding="utf-8")
    assert text.startswith('{\n "schema": "hermes-jupyter/history",\n "version": 1,\n "current": "main",\n')
    doc = HistoryStore(path).load()
    rec = doc["sessions"]["main"]
    assert list(rec)[:6] == ["name", "title", "created", "updated", "model", "usage"]
    assert list(rec)[-2:] == ["messages", "turns"]
    assert rec["messages"] == messages and rec["turns"] == turns
    assert rec["title"] == "prompt 1" and rec["model"] == "test/model"
    assert rec["usage"] == {"input_tokens": 10, "output_tokens": 5, "cost_usd": 0.01}
    assert rec["created"].endswith("Z") and rec["updated"] >= rec["created"]
    assert HistoryStore(path).sessions() == doc["sessions"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["analysis.hermes.json"]  # no lock file left

    # Saving again (a record that does not know when it was created) keeps created.
    store.save_session({"name": "main", "messages": messages, "turns": turns})
    again = store.sessions()["main"]
    assert again["created"] == rec["created"] and again["turns"] == turns


def test_title_is_the_first_prompt_on_one_line_cut_to_60(tmp_path):
    store = HistoryStore(tmp_path / "h.hermes.json")
    first = "Load   the sales data\nand plot the monthly totals per region, then explain the outliers"
    store.save_session({"name": "main", "messages": exchange(1, first),
                        "turns": [done_turn("t1", first), done_turn("t2", "second", started=1.8e9)]})
    title = store.sessions()["main"]["title"]
    assert len(title) <= 60 and title.endswith("…") and "\n" not in title
    assert title.startswith("Load the sales data and plot the monthly")

    # Redacted before it is cut: no half secret survives at the cut.
    secret = "sk-proj-" + "A1b2C3d4E5" * 3
    store.save_session({"name": "other", "messages": exchange(1, "x" * 45 + " " + secret),
                        "turns": [done_turn("t9", "x" * 45 + " " + secret)]})
    assert "sk-proj" not in store.sessions()["other"]["title"]

    # An explicit title wins and is kept by later saves that have none.
    store.save_session({"name": "main", "title": "Sales", "messages": [], "turns": []})
    store.save_session({"name": "main", "messages": [], "turns": []})
    assert store.sessions()["main"]["title"] == "Sales"


# ----- secrets and sanitizing -----------------------------------------------------------
SECRETS = {  # planted text -> a core that must not survive anywhere in the file
    "sk-proj-A1b2C3d4E5f6G7h8I9j0K1l2M3n4": "A1b2C3d4E5f6G7h8I9j0",
    "ghp_abcdefghijklmnopqrstuvwxyz0123456789": "abcdefghijklmnopqrstuvwxyz0123",
    "AKIAIOSFODNN7EXAMPLE": "IOSFODNN7EXAMPLE",
    "Authorization: Bearer abc123def456ghi789jkl": "abc123def456ghi789jkl",
    "FOO_TOKEN=plainvalue12345": "plainvalue12345",
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7bqPEMBODY\nZm9vYmFyYmF6cXV4\n-----END RSA PRIVATE KEY-----":
        "MIIEowIBAAKCAQEA7bqPEMBODY",
    "correct-horse-battery-staple-42": "correct-horse-battery-staple-42",  # via extra_secrets
    "zq8-envconfigured-value": "zq8-envconfigured-value",  # via $MYSERVICE_API_KEY
}


def test_no_planted_secret_reaches_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("MYSERVICE_API_KEY", "zq8-envconfigured-value")
    path = tmp_path / "s.hermes.json"
    store = HistoryStore(path, extra_secrets=lambda: ["correct-horse-battery-staple-42"])
    for n, planted in enumerate(SECRETS):
        text = f"use this: {planted} please"
        args = {"command": f"curl -H '{planted}' https://x", "token": planted, "note": text}
        messages = [
            {"role": "user", "content": text},
            {"role": "assistant", "content": text, "tool_calls": [call(f"c{n}", args)]},
            {"role": "tool", "tool_call_id": f"c{n}", "content": json.dumps({"output": text})},
            {"role": "assistant", "content": text},
        ]
        events = [
            ev.TurnStarted(session="s", prompt=text, model="m", cwd="/"),
            ev.Reasoning(text=text),
            ev.ToolStarted(call_id=f"c{n}", name="terminal", args={"command": text}),
            ev.ToolCompleted(call_id=f"c{n}", name="terminal", duration=0.1, is_error=False, result=text),
            ev.ApprovalRequested(request_id="a", command=text, description=text, pattern_keys=(),
                                 allow_permanent=False, timeout=60),
            ev.ApprovalResolved(request_id="a", choice="once", by="user"),
            ev.ClarifyRequested(request_id="q", question=text, choices=(text,), timeout=60),
            ev.ClarifyResolved(request_id="q", answer=text, by="user"),
            ev.Error(error_kind="error", message=text, hint=text),
            ev.Done(status="failed", text=text),
        ]
        store.save_session({"name": f"s{n}", "title": text, "note": text, "messages": messages,
                            "turns": [turn_record(events, turn_id=f"t{n}", prompt=text)]})

    raw = path.read_text(encoding="utf-8")
    everything = "\n".join(strings(json.loads(raw)))
    for planted, core in SECRETS.items():
        assert core not in raw and core not in everything, planted
    assert MARKER in raw
    for rec in json.loads(raw)["sessions"].values():
        for msg in rec["messages"]:
            for c in msg.get("tool_calls", []):
                args = json.loads(c["function"]["arguments"])  # still valid JSON
                assert args["token"] == MARKER and set(args) == {"command", "token", "note"}


def test_only_a_replayable_history_is_written(tmp_path):
    messages = [
        {"role": "tool", "tool_call_id": "orphan", "content": "no call before me"},
        {"role": "user", "content": "hi", "timestamp": 123, "reasoning": "private"},
        {"role": "assistant", "content": None, "tool_calls": [call("unanswered")]},
        {"role": "assistant", "content": None, "reasoning_content": "only thinking"},
        *exchange(1),
    ]
    store = HistoryStore(tmp_path / "h.hermes.json")
    store.save_session({"name": "main", "messages": messages, "turns": []})
    saved = store.sessions()["main"]["messages"]
    assert saved == [{"role": "user", "content": "hi"}, *exchange(1)]
    raw = (tmp_path / "h.hermes.json").read_text()
    assert "orphan" not in raw and "unanswered" not in raw and "only thinking" not in raw


# ----- bad files ------------------------------------------------------------------------
def _valid_bytes() -> bytes:
    return json.dumps({"schema": "hermes-jupyter/history", "version": 1, "current": "main",
                       "sessions": {"main": {"name": "main", "messages": exchange(1), "turns": []}}},
                      indent=1).encode()


BAD_FILES = {
    "garbage": b"\x00\xff\xfe\x89PNG not json at all",
    "truncated": _valid_bytes()[: len(_valid_bytes()) // 2],
    "wrong schema": b'{"schema": "something-else", "version": 1, "sessions": {}}',
    "not an object": b"[1, 2, 3]",
    "bad sessions": b'{"schema": "hermes-jupyter/history", "version": 1, "sessions": []}',
}


@pytest.mark.parametrize("via", ["load", "save"])
@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_a_bad_file_is_moved_aside(tmp_path, kind, via):
    path = tmp_path / "analysis.hermes.json"
    path.write_bytes(BAD_FILES[kind])
    store = HistoryStore(path)
    if via == "load":
        assert store.load()["sessions"] == {}
    store.save_session({"name": "main", "messages": exchange(1), "turns": [done_turn("t1", "p")]})

    aside = [p for p in tmp_path.iterdir() if ".corrupt-" in p.name]
    assert len(aside) == 1 and aside[0].name.startswith("analysis.hermes.corrupt-")
    assert aside[0].name.endswith(".json") and aside[0].read_bytes() == BAD_FILES[kind]
    assert store.notice and aside[0].name in store.notice
    assert store.sessions()["main"]["messages"] == exchange(1)  # the next save worked

    # A second bad file gets its own name: nothing is ever overwritten.
    path.write_bytes(b"{")
    HistoryStore(path).load()
    assert len([p for p in tmp_path.iterdir() if ".corrupt-" in p.name]) == 2


def test_a_newer_version_is_left_alone(tmp_path):
    path = tmp_path / "h.hermes.json"
    data = b'{"schema": "hermes-jupyter/history", "version": 2, "sessions": {}}'
    path.write_bytes(data)
    store = HistoryStore(path)
    with pytest.raises(HistoryVersionError, match="newer hermes-jupyter"):
        store.load()
    with pytest.raises(HistoryVersionError):
        store.save_session({"name": "main", "messages": [], "turns": []})
    assert path.read_bytes() == data and len(list(tmp_path.iterdir())) == 1  # no lock file left


def test_older_versions_are_migrated(tmp_path, monkeypatch):
    monkeypatch.setattr(store_mod, "VERSION", 2)
    monkeypatch.setitem(store_mod._MIGRATIONS, 1, lambda doc: {**doc, "version": 2, "migrated": True})
    path = tmp_path / "h.hermes.json"
    path.write_bytes(_valid_bytes())
    doc = HistoryStore(path).load()
    assert doc["version"] == 2 and doc["migrated"] and path.read_bytes() == _valid_bytes()


# ----- crash safety ---------------------------------------------------------------------
SAVER = """
    import os, sys, time
    from hermes_jupyter.history.store import HistoryStore
    path, seq = sys.argv[1], int(sys.argv[2])
    real_fsync = os.fsync

    def fsync(fd):  # tells the parent that the temp file is written, not yet in place, and waits
        print("fsync", seq, flush=True)
        sys.stdin.readline()  # the parent says go on, or kills this process here, inside the write
        real_fsync(fd)

    os.fsync = fsync
    store = HistoryStore(path)
    store.load()  # as the engine does after a restart: saves are then warm, mostly file I/O
    filler = "lorem ipsum dolor sit amet " * 80  # ~2 kB per message, ~4 MB per file
    messages = [{"role": "user" if k % 2 == 0 else "assistant", "content": f"{k} {filler}"} for k in range(2000)]
    while True:
        seq += 1
        print("begin", seq, flush=True)
        t0 = time.perf_counter()
        store.save_session({"name": "big", "seq": seq, "turns": [],
                            "messages": messages + [{"role": "user", "content": f"end {seq}"}]})
        print("end", seq, time.perf_counter() - t0, flush=True)
"""


def test_a_killed_save_leaves_the_old_or_the_new_file(tmp_path):
    path = tmp_path / "h.hermes.json"
    rng = random.Random(7)
    seq, durations, torn = 0, [], 0
    for round_ in range(16):
        # Even rounds kill at a random moment of a save, odd ones right inside the write.
        at_fsync = round_ % 2 == 1
        child = run_child(SAVER, str(path), str(seq))
        last_begin = last_end = seq
        ends_wanted = rng.randint(1, 3)

        def track(line: str) -> str:
            nonlocal last_begin, last_end, ends_wanted
            word, n, *rest = line.split()
            if word == "begin":
                last_begin = int(n)
            elif word == "end":
                last_end = int(n)
                durations.append(float(rest[0]))
                ends_wanted -= 1
            return word

        for line in child.stdout:  # wait on what it prints, not on sleeps
            word = track(line)
            if word == ("fsync" if at_fsync else "begin") and ends_wanted <= 0:
                if not at_fsync:
                    time.sleep(rng.uniform(0, 1.2 * statistics.median(durations)))
                child.send_signal(signal.SIGKILL)
                break
            if word == "fsync":
                child.stdin.write("go\n")
                child.stdin.flush()
        child.wait(timeout=30)
        for line in child.stdout.read().splitlines():  # what it printed before dying
            track(line)
        torn += any(p.name.endswith(".tmp") for p in tmp_path.iterdir())

        doc = json.loads(path.read_text(encoding="utf-8"))  # always parses
        rec = doc["sessions"]["big"]
        assert last_end <= rec["seq"] <= last_begin
        assert len(rec["messages"]) == 2001 and rec["messages"][-1]["content"] == f"end {rec['seq']}"
        seq = last_begin
    assert torn > 0, "no kill landed inside a write; the test did not exercise what it should"
    HistoryStore(path).save_session({"name": "x", "messages": [], "turns": []})
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # stale temp files cleaned


# ----- concurrent writers ---------------------------------------------------------------
WRITER = """
    import sys, time
    from hermes_jupyter.history.store import HistoryStore
    path, name, prefix, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    store = HistoryStore(path)
    print("ready", flush=True)
    sys.stdin.readline()
    messages, turns = [], []
    for i in range(n):  # as a kernel saves: the turn starts, then ends with its messages (its slice)
        turns.append({"id": f"{prefix}-{i}", "prompt": f"{prefix} {i}", "status": "running",
                      "started": f"{time.time():.6f}", "message_count": 0})
        store.save_session({"name": name, "messages": messages, "turns": turns})
        messages = messages + [{"role": "user", "content": f"{prefix} {i}"}, {"role": "assistant", "content": "ok"}]
        turns[-1] = {**turns[-1], "status": "done", "message_count": 2}
        store.save_session({"name": name, "messages": messages, "turns": turns})
    print("done", flush=True)
"""


@pytest.mark.parametrize("same_session", [False, True])
def test_two_processes_never_lose_each_others_turns(tmp_path, same_session):
    path, n = tmp_path / "h.hermes.json", 30
    names = ("shared", "shared") if same_session else ("a", "b")
    children = [run_child(WRITER, str(path), name, prefix, str(n)) for name, prefix in zip(names, "AB", strict=True)]
    for child in children:
        assert child.stdout.readline().strip() == "ready"
    for child in children:  # start both at once
        child.stdin.write("go\n")
        child.stdin.flush()
    for child in children:
        assert child.stdout.readline().strip() == "done"
        assert child.wait(timeout=60) == 0

    sessions = HistoryStore(path).sessions()
    for name, prefix in zip(names, "AB", strict=True):
        turns = {t["id"]: t for t in sessions[name]["turns"]}
        assert {f"{prefix}-{i}" for i in range(n)} <= set(turns)
        assert all(turns[f"{prefix}-{i}"]["status"] == "done" for i in range(n))
    if same_session:
        rec = sessions["shared"]
        assert len(rec["turns"]) == 2 * n
        starts = [t["started"] for t in rec["turns"]]
        assert starts == sorted(starts)
        # Each turn's messages, whichever writer ran it, in the turns' order (not the last writer's alone).
        assert [m["content"] for m in rec["messages"]] == [x for t in rec["turns"] for x in (t["prompt"], "ok")]


def test_two_threads_and_two_stores_in_one_process(tmp_path):
    path = tmp_path / "h.hermes.json"

    def writer(name: str, prefix: str) -> None:
        store, turns = HistoryStore(path), []
        for i in range(20):
            turns.append(done_turn(f"{prefix}{i}", f"p{i}", started=1.7e9 + i))
            store.save_session({"name": name, "messages": [], "turns": turns})

    threads = [threading.Thread(target=writer, args=args) for args in (("a", "a"), ("b", "b"), ("a", "c"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sessions = HistoryStore(path).sessions()
    assert len(sessions["a"]["turns"]) == 40 and len(sessions["b"]["turns"]) == 20


def test_a_stale_running_snapshot_does_not_undo_a_finished_turn(tmp_path):
    store = HistoryStore(tmp_path / "h.hermes.json")
    running = turn_record([ev.Token(text="partial")], turn_id="t1", prompt="p", started=1.7e9)
    assert running["status"] == "running"
    store.save_session({"name": "main", "messages": [], "turns": [done_turn("t1", "p")]})
    store.save_session({"name": "main", "messages": [], "turns": [running]})
    assert store.sessions()["main"]["turns"][0]["status"] == "done"


def test_each_turns_messages_are_merged_with_it(tmp_path):
    """Messages belong to the turn that added them (``message_count``): a stale snapshot keeps neither
    the running turn nor its missing messages, a slice is sanitized on its own, and a lead the turns
    do not own (a file of an earlier version) stays in front."""
    path = tmp_path / "h.hermes.json"
    a, b = HistoryStore(path), HistoryStore(path)
    old = exchange(0)  # written by an earlier version: no counts
    a.save_session({"name": "main", "messages": old, "turns": [done_turn("t0", "prompt 0", started=1.7e9)]})
    t1 = {**done_turn("t1", "prompt 1", started=1.7e9 + 1), "message_count": 4}
    b.save_session({"name": "main", "messages": exchange(1), "turns": [t1]})  # b never saw t0
    stray = {"role": "tool", "tool_call_id": "nobody", "content": "x"}
    t2 = {**done_turn("t2", "prompt 2", started=1.7e9 + 2), "message_count": 5}
    a.save_session({"name": "main", "messages": [*old, *exchange(2), stray],
                    "turns": [done_turn("t0", "prompt 0", started=1.7e9), t2]})
    running = {**t1, "status": "running", "message_count": 0}
    b.save_session({"name": "main", "messages": [], "turns": [running]})  # stale: must not undo t1
    rec = HistoryStore(path).sessions()["main"]
    assert [t["id"] for t in rec["turns"]] == ["t0", "t1", "t2"]
    assert [t.get("message_count") for t in rec["turns"]] == [None, 4, 4]  # the stray tool result is gone
    assert rec["messages"] == [*old, *exchange(1), *exchange(2)]


# ----- sessions -------------------------------------------------------------------------
def test_rename_delete_set_current(tmp_path):
    path = tmp_path / "h.hermes.json"
    store = HistoryStore(path)
    for name in ("main", "explore", "report"):
        store.save_session({"name": name, "messages": exchange(1), "turns": []})
    store.set_current("explore")
    assert json.loads(path.read_text())["current"] == "explore"

    store.rename_session("explore", "eda")
    doc = HistoryStore(path).load()
    assert list(doc["sessions"]) == ["main", "eda", "report"]  # keeps its place
    assert doc["current"] == "eda" and doc["sessions"]["eda"]["name"] == "eda"
    with pytest.raises(KeyError, match="explore"):
        store.rename_session("explore", "x")
    with pytest.raises(ValueError, match="already exists"):
        store.rename_session("eda", "report")
    with pytest.raises(ValueError):
        store.rename_session("eda", " ")

    store.delete_session("eda")
    doc = HistoryStore(path).load()
    assert list(doc["sessions"]) == ["main", "report"] and doc["current"] == "main"
    with pytest.raises(KeyError):
        store.delete_session("eda")


# ----- turn_record ----------------------------------------------------------------------
def test_turn_record_from_events():
    events = [
        ev.TurnStarted(session="main", prompt="p", model="a/model", cwd="/", time=0.0),
        ev.Reasoning(text="think "), ev.Reasoning(text="more"),
        ev.Token(text="Looking."), ev.SegmentEnd(),
        ev.ToolStarted(call_id="c1", name="terminal", args={"command": "ls"}),
        ev.ToolStarted(call_id="c2", name="read_file", args={"path": "a"}),
        ev.ToolCompleted(call_id="c2", name="read_file", duration=0.2, is_error=True, result="no such file"),
        ev.ApprovalRequested(request_id="r1", command="rm x", description="delete", pattern_keys=(),
                             allow_permanent=True, timeout=60),
        ev.ClarifyRequested(request_id="q1", question="Which?", choices=("a", "b"), timeout=60),
        ev.Token(text="Found it"),
    ]
    rec = turn_record(events, turn_id="t1", prompt="p", started=1.7e9)
    assert rec["status"] == "running" and rec["ended"] is None
    assert rec["answer"] == "Looking.\n\nFound it" and rec["reasoning"] == "think more"
    assert [t["id"] for t in rec["tools"]] == ["c1", "c2"]
    assert rec["tools"][0]["duration"] is None
    assert rec["tools"][1] | {} == {"id": "c2", "name": "read_file", "args": {"path": "a"},
                                     "snippet": "no such file", "is_error": True, "duration": 0.2}
    assert rec["approvals"] == [{"command": "rm x", "description": "delete", "choice": None, "by": None}]
    assert rec["clarify"] == [{"question": "Which?", "choices": ["a", "b"], "answer": None, "by": None}]

    events += [
        ev.ToolCompleted(call_id="c1", name="terminal", duration=0.1, is_error=False, result="a b"),
        ev.ApprovalResolved(request_id="r1", choice="deny", by="cancel"),
        ev.ClarifyResolved(request_id="q1", answer=None, by="timeout"),
        ev.Usage(model="a/model-2", input_tokens=10, output_tokens=2, cost_usd=0.5, context_length=1,
                 threshold_tokens=1, last_prompt_tokens=1),
        ev.Error(error_kind="rate_limit", message="slow down", hint="wait"),
        ev.Done(status="failed", text="Looking.Found it", time=2.5),
    ]
    rec = turn_record(events, turn_id="t1", prompt="p", started=1.7e9)
    assert rec["status"] == "failed" and rec["answer"] == "Looking.Found it"
    assert rec["started"] == "2023-11-14T22:13:20.000Z" and rec["ended"] == "2023-11-14T22:13:22.500Z"
    assert rec["model"] == "a/model-2"
    assert rec["usage"] == {"input_tokens": 10, "output_tokens": 2, "cost_usd": 0.5}
    assert rec["error"] == {"kind": "rate_limit", "message": "slow down", "hint": "wait"}
    assert rec["approvals"][0]["choice"] == "deny" and rec["clarify"][0]["by"] == "timeout"
    assert rec["tools"][0]["snippet"] == "a b"
    json.dumps(rec)  # plain JSON


# ----- the redaction cache --------------------------------------------------------------
@pytest.fixture
def count_redactions(monkeypatch):
    calls = []
    real = store_mod.redact_obj

    def counting(obj, extra_secrets=()):
        calls.append(obj)
        return real(obj, extra_secrets)

    monkeypatch.setattr(store_mod, "redact_obj", counting)
    return calls


def test_unchanged_messages_are_not_redacted_again(tmp_path, count_redactions):
    path = tmp_path / "h.hermes.json"
    messages = [m for i in range(10) for m in exchange(i)]
    store = HistoryStore(path)
    store.save_session({"name": "main", "messages": messages, "turns": []})
    first = len(count_redactions)
    count_redactions.clear()
    store.save_session({"name": "main", "messages": messages + exchange(10), "turns": []})
    assert len(count_redactions) == 4 + 1  # the new exchange and the record's small fields
    assert first >= 40

    # A fresh store (kernel restart) trusts what it loaded from the file.
    fresh = HistoryStore(path)
    saved = fresh.load()["sessions"]["main"]
    count_redactions.clear()
    fresh.save_session({"name": "main", "messages": saved["messages"] + exchange(11), "turns": saved["turns"]})
    assert len(count_redactions) == 4 + 1


def test_a_secret_configured_later_is_removed_from_loaded_history(tmp_path):
    path = tmp_path / "h.hermes.json"
    late = "zz-late-secret-9876543"  # matches no pattern: only the literal list catches it
    HistoryStore(path).save_session({"name": "main", "messages": exchange(1, f"key {late}"), "turns": []})
    assert late in path.read_text()

    store = HistoryStore(path, extra_secrets=lambda: [late])
    saved = store.load()["sessions"]["main"]
    store.save_session({"name": "main", "messages": saved["messages"], "turns": []})
    assert late not in path.read_text()


def test_sessions_from_another_redactor_are_redacted_again(tmp_path):
    path = tmp_path / "h.hermes.json"
    leaked = "ghp_abcdefghijklmnopqrstuvwxyz0123456789"
    doc = json.loads(_valid_bytes())
    doc["sessions"]["old"] = {"name": "old", "title": leaked, "redactor": "an-older-one",
                              "messages": exchange(1, leaked), "turns": [done_turn("t1", leaked)]}
    path.write_text(json.dumps(doc))
    store = HistoryStore(path)
    store.load()
    store.save_session({"name": "new", "messages": [], "turns": []})
    raw = path.read_text()
    assert leaked not in raw
    assert {rec["redactor"] for rec in json.loads(raw)["sessions"].values()} == {store_mod._redactor_id()}


# ----- long sessions: a save costs what changed -------------------------------------------
def long_session(n: int, *, name: str = "main") -> dict:
    messages = [m for i in range(n) for m in exchange(i, answer=f"answer {i} " + "lorem ipsum " * 20)]
    turns = [done_turn(f"t{i}", f"prompt {i}", answer=f"answer {i}", started=1.7e9 + i) for i in range(n)]
    return {"name": name, "messages": messages, "turns": turns}


def test_an_unchanged_file_is_not_read_again(tmp_path):
    path = tmp_path / "h.hermes.json"
    store = HistoryStore(path)
    record = long_session(20)
    store.save_session(record)
    reads = store.reads
    for _ in range(3):
        store.save_session(record)
    assert store.reads == reads  # the file is still the one this store wrote

    # Another writer (another kernel) changes the file: the next save reads it and keeps its work.
    HistoryStore(path).save_session({"name": "other", "messages": exchange(1), "turns": [done_turn("x1", "p")]})
    store.save_session(record)
    assert store.reads == reads + 1
    sessions = HistoryStore(path).sessions()
    assert set(sessions) == {"main", "other"} and len(sessions["main"]["turns"]) == 20

    # ... and so does a file replaced by hand, or deleted.
    path.write_text(path.read_text().replace("prompt 3", "prompt three"))
    store.save_session(record)
    assert store.reads == reads + 2
    path.unlink()
    store.save_session(record)
    assert store.reads == reads + 3 and len(HistoryStore(path).sessions()["main"]["turns"]) == 20


def test_a_new_turn_costs_only_itself_on_a_1000_turn_history(tmp_path, count_redactions):
    path = tmp_path / "h.hermes.json"
    store = HistoryStore(path)
    record = long_session(1000)
    store.save_session(record)
    expected = (json.dumps(json.loads(path.read_text()), ensure_ascii=False, indent=1) + "\n").encode()
    assert path.read_bytes() == expected  # written from cached pieces, byte for byte json.dumps

    def grow(i: int, status: str = "done") -> None:
        turn = done_turn(f"t{i}", f"prompt {i}", started=1.7e9 + i)
        record["turns"] = [*record["turns"][:i], {**turn, "status": status}]
        if status == "done":
            record["messages"] = [*record["messages"], *exchange(i)]

    count_redactions.clear()
    grow(1000, status="running")  # turn start: the prompt, the messages as they were
    store.save_session(record)
    assert store.last_save == {"sanitized": 0, "redacted": 1, "read": 0, "rendered": 1,
                               "bytes": path.stat().st_size}
    grow(1000)  # turn end: its messages and its final record
    store.save_session(record)
    assert store.last_save["read"] == 0 and store.last_save["redacted"] == 1
    assert store.last_save["sanitized"] <= 8 and store.last_save["rendered"] <= 8
    assert len(count_redactions) <= 2 * (1 + 1) + 4  # the turn twice, the record's fields, the 4 new messages

    # A restarted kernel: the first save of a new turn does not redact or serialize the history again.
    fresh = HistoryStore(path)
    saved = fresh.load()["sessions"]["main"]
    count_redactions.clear()
    fresh.save_session({"name": "main", "messages": [*saved["messages"], *exchange(1001)],
                        "turns": [*saved["turns"], done_turn("t1001", "prompt 1001", started=1.7e9 + 1001)]})
    assert fresh.last_save["read"] == 0 and fresh.last_save["redacted"] == 1
    assert fresh.last_save["rendered"] <= 8  # the rest is the file's own bytes
    assert len(count_redactions) == 4 + 1 + 1
    sessions = HistoryStore(path).sessions()
    assert len(sessions["main"]["turns"]) == 1002 and sessions["main"]["messages"][-1]["content"] == "answer 1001"
    assert path.read_bytes() == (json.dumps(json.loads(path.read_text()), ensure_ascii=False, indent=1)
                                 + "\n").encode()


def test_the_store_keeps_where_each_item_lies_in_the_file_not_its_bytes(tmp_path):
    """The items' bytes are read back from the file: kept in memory they cost as much again as the
    conversation (~4.5 KB a turn). A save still serializes only what is new."""
    import gc

    path = tmp_path / "h.hermes.json"
    store = HistoryStore(path)
    record = long_session(200)
    store.save_session(record)
    record["messages"] = [*record["messages"], *exchange(200)]
    record["turns"] = [*record["turns"], done_turn("t200", "prompt 200", started=1.7e9 + 200)]
    store.save_session(record)
    assert store.last_save["rendered"] <= 8 and path.stat().st_size > 100_000
    seen, todo, held = {id(store._text)}, [store._text], 0
    while todo:  # everything the text holds
        for ref in gc.get_referents(todo.pop()):
            if id(ref) not in seen and not isinstance(ref, type):
                seen.add(id(ref))
                todo.append(ref)
                held += len(ref) if isinstance(ref, (bytes, bytearray, memoryview)) else 0
    assert held < 1_000, held
    assert path.read_bytes() == (json.dumps(HistoryStore(path).load(), ensure_ascii=False, indent=1) + "\n").encode()


def test_a_file_changed_in_place_to_the_same_size_and_time_is_not_spliced_into_the_next_save(tmp_path):
    """The text checks the file is exactly what it wrote before taking bytes from it."""
    import os

    path = tmp_path / "h.hermes.json"
    store = HistoryStore(path)
    record = long_session(20)
    store.save_session(record)
    st, data = path.stat(), path.read_bytes()
    with open(path, "r+b") as fh:  # same inode, same length, same time: only the bytes differ
        fh.write(data.replace(b"prompt 3", b"prompt X"))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    record["turns"] = [*record["turns"], done_turn("t20", "prompt 20", started=1.7e9 + 20)]
    store.save_session(record)
    written = path.read_bytes()
    assert written == (json.dumps(json.loads(written), ensure_ascii=False, indent=1) + "\n").encode()
    turns = HistoryStore(path).sessions()["main"]["turns"]
    assert [t["id"] for t in turns] == [f"t{i}" for i in range(21)] and turns[3]["prompt"] == "prompt 3"


def test_the_cached_messages_are_the_sanitized_ones(tmp_path):
    """Sanitizing again only from the last user message gives what sanitizing everything gives."""
    from hermes_jupyter.safety.sanitize import sanitize_history

    store = HistoryStore(tmp_path / "h.hermes.json")
    messages = exchange(1)
    store.save_session({"name": "main", "messages": messages, "turns": []})
    steps = [
        [{"role": "user", "content": "two"}, {"role": "assistant", "content": None, "tool_calls": [call("c2")]}],
        [{"role": "tool", "tool_call_id": "c2", "content": "out"}],  # answers the call saved unanswered
        [{"role": "assistant", "content": "done"}, {"role": "tool", "tool_call_id": "stray", "content": "x"}],
        [{"role": "user", "content": "three"}, "not a message", {"role": "weird", "content": "?"}],
    ]
    for step in steps:
        messages = messages + step
        store.save_session({"name": "main", "messages": messages, "turns": []})
        assert store.sessions()["main"]["messages"] == sanitize_history(messages)
    # A conversation rewritten from the middle (compression) is sanitized again from there.
    messages = [*messages[:4], {"role": "user", "content": "summary"}, *exchange(9)]
    store.save_session({"name": "main", "messages": messages, "turns": []})
    assert store.sessions()["main"]["messages"] == sanitize_history(messages)


def test_the_lock_leaves_nothing_behind_and_a_killed_holders_lock_is_reused(tmp_path):
    path = tmp_path / "h.hermes.json"
    stale = tmp_path / ".h.hermes.json.lock"
    stale.write_text("")  # a writer killed while it held the lock leaves this
    legacy = tmp_path / "h.hermes.json.lock"  # an older version's lock file: locked too, never removed
    legacy.write_text("")
    HistoryStore(path).save_session(long_session(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.hermes.json", "h.hermes.json.lock"]


SAVER_1000 = """
    import os, sys, time
    from hermes_jupyter.history.store import HistoryStore
    path, seq = sys.argv[1], int(sys.argv[2])
    real_fsync = os.fsync

    def fsync(fd):  # tells the parent that the temp file is written, not yet in place, and waits
        print("fsync", seq, flush=True)
        sys.stdin.readline()  # the parent says go on, or kills this process here, inside the write
        real_fsync(fd)

    store = HistoryStore(path)
    doc = store.load()  # as the engine does after a restart: saves are then warm
    rec = doc["sessions"].get("main")
    filler = "lorem ipsum dolor sit amet " * 20
    if rec is None:
        messages, turns = [], []
        for i in range(1000):
            messages += [{"role": "user", "content": f"prompt {i}"}, {"role": "assistant", "content": f"{i} {filler}"}]
            turns.append({"id": f"t{i}", "prompt": f"prompt {i}", "status": "done", "started": f"{i:08d}"})
        store.save_session({"name": "main", "seq": seq, "messages": messages, "turns": turns})
    else:
        messages, turns = rec["messages"], rec["turns"]
    os.fsync = fsync
    while True:
        seq += 1
        print("begin", seq, flush=True)
        t0 = time.perf_counter()
        running = {"id": f"t{1000 + seq}", "prompt": f"prompt {seq}", "status": "running", "started": f"{1000 + seq:08d}"}
        store.save_session({"name": "main", "seq": seq, "messages": messages, "turns": turns + [running]})
        messages = messages + [{"role": "user", "content": f"prompt {seq}"}, {"role": "assistant", "content": f"end {seq}"}]
        turns = turns + [{**running, "status": "done"}]
        store.save_session({"name": "main", "seq": seq, "messages": messages, "turns": turns})
        print("end", seq, time.perf_counter() - t0, flush=True)
"""


def test_a_killed_save_of_a_1000_turn_history_leaves_the_old_or_the_new_file(tmp_path):
    path = tmp_path / "h.hermes.json"
    rng = random.Random(11)
    seq, durations, torn, finished = 0, [], 0, {f"t{i}" for i in range(1000)}
    for round_ in range(12):
        at_fsync = round_ % 2 == 1  # odd rounds kill right inside a write, even ones at a random moment
        started = seq
        child = run_child(SAVER_1000, str(path), str(seq))
        last_begin = last_end = seq
        ends_wanted = rng.randint(1, 3)

        def track(line: str) -> str:
            nonlocal last_begin, last_end, ends_wanted
            word, n, *rest = line.split()
            if word == "begin":
                last_begin = int(n)
            elif word == "end":
                last_end = int(n)
                durations.append(float(rest[0]))
                ends_wanted -= 1
            return word

        for line in child.stdout:  # wait on what it prints, not on sleeps
            word = track(line)
            if word == ("fsync" if at_fsync else "begin") and ends_wanted <= 0:
                if not at_fsync:
                    time.sleep(rng.uniform(0, 1.2 * statistics.median(durations)))
                child.send_signal(signal.SIGKILL)
                break
            if word == "fsync":
                child.stdin.write("go\n")
                child.stdin.flush()
        child.wait(timeout=60)
        for line in child.stdout.read().splitlines():
            track(line)
        torn += any(p.name.endswith(".tmp") for p in tmp_path.iterdir())

        rec = json.loads(path.read_text(encoding="utf-8"))["sessions"]["main"]  # always parses
        assert last_end <= rec["seq"] <= last_begin
        done = {t["id"] for t in rec["turns"] if t["status"] == "done"}
        assert done >= finished and len(rec["messages"]) == 2 * len(done)  # nothing finished is lost
        if last_end > started:
            assert f"t{1000 + last_end}" in done  # the last save that ended is there
        finished = done
        seq = rec["seq"]  # the next kernel goes on from what the file holds
    assert torn > 0, "no kill landed inside a write; the test did not exercise what it should"
