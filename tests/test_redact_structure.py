"""Redaction by structure, measured on shapes no list names (tests/secret_shapes.py).

The development half of the families was used to build the rules; the held-out half was written
before them and is only measured here. Each test prints its rate. The ordinary-strings corpus
(tests/ordinary_strings.py) is the false-positive budget: at most 1 % touched in the history file.
`HJ_SHAPE_SEEDS=20` measures on more seeds (each seed draws new values for every shape);
`HYPOTHESIS_PROFILE=long` runs the properties on 5,000 examples each.
"""
from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hermes_jupyter.history.store import HistoryStore
from hermes_jupyter.safety import redact
from hermes_jupyter.safety.redact import StreamRedactor, may_hold_secret, redact_obj, redact_text

from .ordinary_strings import MAKERS, ordinary
from .secret_shapes import DEV, HELD_OUT, build, families
from .secrets_corpus import Planted

SEEDS = range(int(os.environ.get("HJ_SHAPE_SEEDS", "3")))
# The held-out half when it was first measured, once the rules were done: 1,344 of 1,404 (95.7 %, 3 seeds);
# now 96.1 % on 20 seeds (README). The test fails if it drops below the floor; the misses are printed and
# are not to be fixed by tuning the rules on these families.
HELD_OUT_MEASURED = 0.95


def numbered(text: str) -> str:
    return "\n".join(f"{n}|{line}" for n, line in enumerate(text.splitlines(), 83))


def streamed(text: str) -> str:
    stream = StreamRedactor(redact=redact_text)
    return "".join(stream.feed(text[i:i + 7]) for i in range(0, len(text), 7)) + stream.flush()


CONTEXTS: dict[str, Callable[[str], str]] = {
    "alone": redact_text,
    "in prose": lambda line: redact_text(f"Sure, here it is:\n{line}\nLet me know."),
    "tool result (JSON)": lambda line: json.dumps(redact_obj({"output": line, "exit_code": 0})),
    "read_file (numbered)": lambda line: redact_text(json.dumps({"content": numbered(line), "total_lines": 9})),
    "markdown code block": lambda line: redact_text(f"```\n{line}\n```"),
    "streamed in 7-char pieces": streamed,
}


def measure(shapes) -> tuple[int, int, dict[str, set[str]]]:
    caught = total = 0
    missed: dict[str, set[str]] = {}
    for seed in SEEDS:
        for planted in build(shapes, seed):
            for context, red in CONTEXTS.items():
                total += 1
                if planted.leaked_in(red(planted.line)):
                    missed.setdefault(planted.shape, set()).add(context)
                else:
                    caught += 1
    return caught, total, missed


def test_the_generator_is_big_enough_and_its_halves_share_no_family():
    assert len(DEV) + len(HELD_OUT) >= 150
    assert len(families(DEV)) + len(families(HELD_OUT)) >= 25
    assert not set(families(DEV)) & set(families(HELD_OUT))
    assert len({s.name for s in DEV + HELD_OUT}) == len(DEV) + len(HELD_OUT)
    # values are drawn per seed: two seeds plant different secrets
    assert {p.core for p in build(DEV, 0)}.isdisjoint({p.core for p in build(DEV, 1)})


def test_the_development_half_is_caught_in_every_context():
    caught, total, missed = measure(DEV)
    print(f"\ndevelopment half: {len(DEV)} shapes in {len(families(DEV))} families, {len(SEEDS)} seeds, "
          f"{len(CONTEXTS)} contexts: {caught}/{total} = {caught / total:.1%}")
    assert missed == {}


def test_the_held_out_half_is_measured():
    """Never tuned on: a miss here is reported, not fixed by a rule for that shape."""
    caught, total, missed = measure(HELD_OUT)
    print(f"\nheld-out half: {len(HELD_OUT)} shapes in {len(families(HELD_OUT))} families, {len(SEEDS)} seeds, "
          f"{len(CONTEXTS)} contexts: {caught}/{total} = {caught / total:.1%}")
    for shape, contexts in sorted(missed.items()):
        print(f"  missed: {shape} ({', '.join(sorted(contexts))})")
    assert caught / total >= HELD_OUT_MEASURED


# ----- the false-positive budget ---------------------------------------------------------------------

def test_ordinary_strings_stay_verbatim_in_the_history(tmp_path):
    """The history file is where redaction writes: each ordinary string as a prompt, an answer and a
    tool's output; at most 1 % may come back changed."""
    items = [item for seed in SEEDS for item in ordinary(seed)]
    assert len(MAKERS) >= 50 and len(items) >= 200
    messages = []
    for i, (_, text) in enumerate(items):
        messages += [{"role": "user", "content": text},
                     {"role": "assistant", "content": "", "tool_calls": [
                         {"id": f"c{i}", "type": "function", "function": {"name": "terminal", "arguments": "{}"}}]},
                     {"role": "tool", "tool_call_id": f"c{i}", "content": text},
                     {"role": "assistant", "content": text}]
    store = HistoryStore(tmp_path / "fp.hermes.json")
    store.save_session({"name": "main", "messages": messages, "turns": []})
    saved = store.sessions()["main"]["messages"]
    by_text: dict[str, list[str]] = {}
    for message in saved:
        if isinstance(message.get("content"), str) and message["content"]:
            by_text.setdefault(message["role"], []).append(message["content"])
    touched = [(kind, text) for (kind, text), user, tool, answer in
               zip(items, by_text["user"], by_text["tool"], by_text["assistant"], strict=True)
               if (user, tool, answer) != (text, text, text)]
    rate = len(touched) / len(items)
    print(f"\nordinary strings: {len(items)} of {len(MAKERS)} kinds, {len(touched)} touched = {rate:.2%}")
    for kind, text in touched:
        print(f"  touched: {kind}: {text[:100]!r}")
    assert len(by_text["user"]) == len(items)
    assert rate <= 0.01


# ----- the prefilter stays sound ------------------------------------------------------------------------

@contextlib.contextmanager
def without_hermes() -> Iterator[None]:
    saved, redact._hermes_redact = redact._hermes_redact, None
    try:
        yield
    finally:
        redact._hermes_redact = saved


PIECES = ([p.line for p in build(DEV + HELD_OUT, "prefilter")] + [t for _, t in ordinary("prefilter", 1)]
          + ["password", "token: ", "--api-key ", "auth=", "Pwd={", "machine h login u password ", "://u:",
             "KEY", "Secret ", "sig=", "pass:", "ſecret", "\u212aey", "aGVsbG86d29ybGQ=", "dXNlcjpwYXNzd29yZA==", "\n",
             " ", "\"", "'", ":", "=", ";", "sk_", "ab-", ".", "5f3e9a0c7b2d4e6f8a1b3c5d7e9f0a2b"])
TEXTS = st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=40),
                           st.text(alphabet="abcXYZ019_-.:=/+ \n", min_size=10, max_size=60)),
                 max_size=8).map("".join)
# A small fixed budget in CI; HYPOTHESIS_PROFILE=long for thousands of examples on demand.
PROFILE = settings(max_examples=5000 if os.environ.get("HYPOTHESIS_PROFILE") == "long" else 300, derandomize=True,
                   deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROFILE
@given(TEXTS)
def test_no_secret_possible_means_redaction_is_the_identity(text):
    with without_hermes():
        if not may_hold_secret(text):
            assert redact._redact(text, None, guarded=False) == redact.encodable(text)


@PROFILE
@given(TEXTS)
def test_the_prefilter_never_changes_a_result_on_generated_text(text):
    assert redact._redact(text, None) == redact._redact(text, None, guarded=False)


@pytest.mark.parametrize("text", ["Hello, this is an ordinary sentence about sales in 2024.",
                                  "df.groupby('region').sum()", "The model answered in 3.2 s."])
def test_ordinary_prose_needs_no_rule_at_all(text):
    assert not may_hold_secret(text)


def planted_lines() -> list[Planted]:
    return build(DEV, "all") + build(HELD_OUT, "all")


def test_every_shape_passes_the_prefilter():
    assert [p.shape for p in planted_lines() if not may_hold_secret(p.line)] == []


# ----- the scans that find stems first give what the plain patterns give ---------------------------------

def wrapped_rules():
    from hermes_jupyter.safety import structure

    return [(wrapper, replace) for wrapper, replace, _ in structure.RULES
            if isinstance(wrapper, structure.Anchored)]


@PROFILE
@given(st.lists(TEXTS, min_size=1, max_size=4).map("\n".join))
def test_stem_anchored_scans_equal_their_patterns(text):
    for wrapper, replace in wrapped_rules():
        assert wrapper.sub(replace, text) == wrapper.pattern.sub(replace, text)


def test_stem_anchored_scans_equal_their_patterns_on_the_corpora():
    texts = [p.line for p in planted_lines()] + [t for _, t in ordinary("stems")]
    texts += ["\n".join(texts[i:i + 5]) for i in range(0, len(texts), 5)]
    assert len(wrapped_rules()) == 3
    for wrapper, replace in wrapped_rules():
        assert [t for t in texts if wrapper.sub(replace, t) != wrapper.pattern.sub(replace, t)] == []
