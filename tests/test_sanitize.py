"""sanitize_history: a stored conversation any chat-completions provider accepts.

The first group ports the Web UI's regression tests for
``_sanitize_messages_for_api`` (commit 9220a876bc); the rest cover the fixes
made after it.
"""
import copy
import json

from hermes_jupyter.safety.sanitize import sanitize_history


def call(tid, name="terminal", args=None, key="id"):
    return {key: tid, "type": "function",
            "function": {"name": name, "arguments": json.dumps(args or {"command": "ls"})}}


def asst(*calls, content=None, **extra):
    msg = {"role": "assistant", "content": content}
    if calls:
        msg["tool_calls"] = list(calls)
    msg.update(extra)
    return msg


def tool(tid, content="ok", **extra):
    return {"role": "tool", "tool_call_id": tid, "content": content, **extra}


USER = {"role": "user", "content": "list files"}


# --- ported from the seed -----------------------------------------------------

def test_valid_roundtrip_preserved():
    history = [USER, asst(call("c1")), tool("c1", "a.txt"), {"role": "assistant", "content": "One file."}]
    assert sanitize_history(history) == history


def test_multiple_tool_calls_preserved():
    history = [USER, asst(call("c1"), call("c2", "read_file")), tool("c1"), tool("c2"),
               {"role": "assistant", "content": "done"}]
    assert sanitize_history(history) == history


def test_orphan_tool_result_without_any_assistant_is_dropped():
    history = [USER, tool("ghost"), {"role": "assistant", "content": "hi"}]
    assert sanitize_history(history) == [USER, {"role": "assistant", "content": "hi"}]


def test_partial_orphan_filtering_keeps_valid_results():
    history = [USER, asst(call("c1")), tool("c1"), tool("ghost"), {"role": "assistant", "content": "ok"}]
    assert sanitize_history(history) == [USER, asst(call("c1")), tool("c1"), {"role": "assistant", "content": "ok"}]


def test_orphan_before_its_declaring_assistant_is_dropped():
    # Declared, but only *after* the result: still an orphan where it stands.
    history = [USER, tool("c1"), asst(call("c1")), tool("c1")]
    assert sanitize_history(history) == [USER, asst(call("c1")), tool("c1")]


def test_anthropic_call_id_is_recognised():
    history = [USER, asst(call("toolu_1", key="call_id")), tool("toolu_1")]
    assert sanitize_history(history) == history


def test_none_tool_calls_is_treated_as_no_calls():
    out = sanitize_history([USER, {"role": "assistant", "content": "hello", "tool_calls": None}])
    assert out == [USER, {"role": "assistant", "content": "hello"}]


def test_empty_tool_calls_list_is_not_sent():
    out = sanitize_history([USER, {"role": "assistant", "content": "hello", "tool_calls": []}])
    assert out == [USER, {"role": "assistant", "content": "hello"}]


def test_tool_message_without_tool_call_id_is_dropped():
    history = [USER, asst(call("c1")), tool("c1"), {"role": "tool", "content": "stray"}]
    assert sanitize_history(history) == [USER, asst(call("c1")), tool("c1")]


def test_tool_message_with_empty_or_non_string_id_is_dropped():
    history = [USER, asst(call("c1")), tool("c1"), tool(""), tool(None), tool(7)]
    assert sanitize_history(history) == [USER, asst(call("c1")), tool("c1")]


def test_non_dict_entries_are_dropped():
    history = [None, "text", 3, ["role", "user"], USER]
    assert sanitize_history(history) == [USER]


def test_messages_without_a_valid_role_are_dropped():
    history = [{"content": "no role"}, {"role": "", "content": "x"}, {"role": "developer2", "content": "x"},
               {"role": None}, USER]
    assert sanitize_history(history) == [USER]


def test_non_dict_tool_calls_entries_are_dropped():
    history = [USER, asst("garbage", None, call("c1")), tool("c1")]
    assert sanitize_history(history) == [USER, asst(call("c1")), tool("c1")]


def test_empty_history():
    assert sanitize_history([]) == []


# --- unknown keys (a 400 from strict providers) ---------------------------------------------

def test_unknown_keys_are_stripped():
    history = [
        {"role": "system", "content": "be brief", "_ts": 1},
        {"role": "user", "content": "hi", "timestamp": 123, "attachments": ["a.png"]},
        {"role": "assistant", "content": "yo", "reasoning": "think", "finish_reason": "stop",
         "reasoning_content": "think", "refusal": None, "name": "hermes"},
    ]
    assert sanitize_history(history) == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "yo", "name": "hermes"},
    ]


def test_reasoning_content_is_not_sent_back():
    history = [USER, {"role": "assistant", "content": "yo", "reasoning_content": "think", "reasoning": "x"}]
    assert sanitize_history(history)[1] == {"role": "assistant", "content": "yo"}


def test_keys_inside_tool_calls_are_untouched():
    # Provider extras inside a call (e.g. Gemini's thought signature) must go back.
    c = call("c1")
    c["extra_content"] = {"google": {"thought_signature": "abc"}}
    history = [USER, asst(c), tool("c1")]
    assert sanitize_history(history)[1]["tool_calls"] == [c]


# --- calls without results (refused by strict providers) ------------------------------------

def test_trailing_call_without_result_drops_the_whole_message():
    history = [USER, asst(call("c1"))]
    assert sanitize_history(history) == [USER]


def test_call_without_result_keeps_the_text_of_the_message():
    history = [USER, asst(call("c1"), content="Let me look."), {"role": "user", "content": "stop"}]
    assert sanitize_history(history) == [
        USER, {"role": "assistant", "content": "Let me look."}, {"role": "user", "content": "stop"}]


def test_only_the_unanswered_call_is_dropped():
    history = [USER, asst(call("c1"), call("c2")), tool("c2"), {"role": "assistant", "content": "ok"}]
    assert sanitize_history(history) == [USER, asst(call("c2")), tool("c2"), {"role": "assistant", "content": "ok"}]


def test_result_must_follow_before_the_next_non_tool_message():
    # The result arrives after a user message: the call is unanswered, and the
    # late result becomes an orphan that must go too.
    history = [USER, asst(call("c1")), {"role": "user", "content": "hello?"}, tool("c1"),
               {"role": "assistant", "content": "hi"}]
    assert sanitize_history(history) == [USER, {"role": "user", "content": "hello?"},
                                         {"role": "assistant", "content": "hi"}]


def test_call_without_id_is_dropped():
    c = call("c1")
    del c["id"]
    assert sanitize_history([USER, asst(c, content="x")]) == [USER, {"role": "assistant", "content": "x"}]


def test_duplicate_results_keep_the_first():
    history = [USER, asst(call("c1")), tool("c1", "first"), tool("c1", "second")]
    assert sanitize_history(history) == [USER, asst(call("c1")), tool("c1", "first")]


def test_duplicate_call_ids_within_one_message_keep_the_first():
    history = [USER, asst(call("c1", "a"), call("c1", "b")), tool("c1")]
    assert sanitize_history(history) == [USER, asst(call("c1", "a")), tool("c1")]


def test_reused_ids_across_turns_pair_with_their_own_turn():
    # Some local models number calls per turn ("call_0" every time).
    history = [USER, asst(call("call_0", "a")), tool("call_0", "A"), {"role": "user", "content": "again"},
               asst(call("call_0", "b")), tool("call_0", "B")]
    assert sanitize_history(history) == history


# --- reasoning-only turns (never replayed) ----------------------------------------------------

def test_reasoning_only_assistant_turn_is_dropped():
    history = [USER, {"role": "assistant", "content": "", "reasoning": "hmm", "reasoning_content": "hmm"},
               {"role": "assistant", "content": None, "reasoning_content": "hmm"},
               {"role": "assistant", "content": "   \n"},
               {"role": "assistant", "content": [{"type": "thinking", "thinking": "hmm"}, {"type": "text", "text": ""}]},
               {"role": "user", "content": "?"}]
    assert sanitize_history(history) == [USER, {"role": "user", "content": "?"}]


def test_content_parts_with_text_or_images_are_visible():
    parts = [{"type": "text", "text": "see"}]
    image = [{"type": "image_url", "image_url": {"url": "data:image/png;base64,xx"}}]
    history = [USER, {"role": "assistant", "content": parts}, {"role": "assistant", "content": image}]
    assert sanitize_history(history) == history


# --- purity -------------------------------------------------------------------

def test_input_is_not_mutated_and_output_is_a_deep_copy():
    history = [USER, asst(call("c1"), call("c2"), content=None, _ts=1), tool("c1", timestamp=2), tool("ghost"),
               {"role": "assistant", "content": [{"type": "text", "text": "x"}], "reasoning": "r"}]
    before = copy.deepcopy(history)
    out = sanitize_history(history)
    assert history == before
    out[1]["tool_calls"][0]["function"]["name"] = "changed"
    out[-1]["content"][0]["text"] = "changed"
    assert history == before


def test_accepts_any_iterable():
    assert sanitize_history(iter([USER])) == [USER]


def test_realistic_multi_turn_history_survives_unchanged():
    history = [
        {"role": "system", "content": "You are Hermes, running inside a Jupyter kernel."},
        {"role": "user", "content": "How many rows does data.csv have?"},
        {"role": "assistant", "content": "I'll count them.",
         "tool_calls": [call("call_a1", "terminal", {"command": "wc -l data.csv"})]},
        {"role": "tool", "tool_call_id": "call_a1", "content": json.dumps({"output": "1001 data.csv", "exit_code": 0})},
        {"role": "assistant", "content": "data.csv has 1000 rows plus a header."},
        {"role": "user", "content": "Plot column b and read the README."},
        {"role": "assistant", "content": None,
         "tool_calls": [call("call_b1", "execute_code", {"code": "df.b.plot()"}),
                        call("call_b2", "read_file", {"path": "README.md"})]},
        {"role": "tool", "tool_call_id": "call_b1", "content": json.dumps({"output": "<Axes>"})},
        {"role": "tool", "tool_call_id": "call_b2", "content": "# Project\nSome text."},
        {"role": "assistant", "content": "Here is the plot; the README describes the project."},
        {"role": "user", "content": [{"type": "text", "text": "thanks"}]},
        {"role": "assistant", "content": "You're welcome!"},
    ]
    assert sanitize_history(history) == history
