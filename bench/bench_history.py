"""How long the history store takes to save after a turn and to load.

Run by hand: ``python bench/bench_history.py [--runs 7] [--dir DIR]``.
Prints a Markdown table. Each turn is realistic: a prompt, an assistant tool
call, a ~1-2 kB tool result, a ~1 kB final answer, and its ``turns`` entry.

* save after a turn: the kernel has been saving all along, so only the new
  turn is sanitized, redacted and serialized, and the file is not read again
  (it is still the one this store wrote); what remains is writing its bytes;
* load: a fresh store reading the file back (it also seeds that cache);
* first save after a restart: that fresh store saves the loaded session plus a
  new turn;
* save, nothing cached: a store that never loaded redacts every message (worst
  case; the engine should load before it saves).

And the same through the engine (``bench_engine``), which is what a kernel pays,
on the session's history thread (``Saver``), at each turn start, every 5 s and at each end:

* engine save, N turns run here: ``Session.save()`` when all N turns ran in this
  kernel (``Session.record()`` rebuilds each turn's record from its events, the
  answer streamed as 4-character Token events, then the store saves);
* resume: ``Engine.attach_history()`` of the file (what ``%load_ext`` does);
* engine save after resume: ``Session.save()`` after one new turn in the resumed session.
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from hermes_jupyter import events as ev
from hermes_jupyter.agent.settings import RunOptions
from hermes_jupyter.history.records import turn_record
from hermes_jupyter.history.store import HistoryStore

TITLE = "History: save after a turn, and resume"
WORDS = ("the data frame column value plot model file result error index table row mean "
         "median sum group filter sort merge load save config path test run check list "
         "notebook kernel python import pandas numpy return print function class").split()


def prose(rng: random.Random, chars: int) -> str:
    out: list[str] = []
    size = 0
    while size < chars:
        word = rng.choice(WORDS)
        out.append(word)
        size += len(word) + 1
        if rng.random() < 0.08:
            out.append(".\n")
    return " ".join(out)[:chars]


def terminal_output(rng: random.Random, chars: int) -> str:
    lines: list[str] = []
    while sum(len(line) for line in lines) < chars:
        lines.append(rng.choice([
            f"-rw-r--r-- 1 user user {rng.randint(100, 99999):>6} Nov 24 12:00 {rng.choice(WORDS)}_{rng.randint(1, 99)}.csv",
            f"{rng.randint(0, 999)},{rng.random():.4f},{rng.choice(WORDS)},{rng.randint(0, 10**6)}",
            f"max_tokens = {rng.randint(1, 4096)}  # {prose(rng, 40)}",
        ]))
    return "\n".join(lines)[:chars]


def make_turn(rng: random.Random, i: int, started: float) -> tuple[list[dict], dict]:
    messages, events, prompt = turn_parts(rng, i)
    return messages, turn_record(events, turn_id=f"bench-{i}", prompt=prompt, started=started)


def turn_parts(rng: random.Random, i: int) -> tuple[list[dict], list[ev.Event], str]:
    call_id = f"call_{i:05d}_{rng.getrandbits(32):08x}"
    prompt = f"Turn {i}: " + prose(rng, rng.randint(80, 300))
    command = f"head -n 40 data/{rng.choice(WORDS)}_{i}.csv && wc -l data/*.csv"
    result = json.dumps({"output": terminal_output(rng, rng.randint(1000, 2000)), "exit_code": 0})
    answer = prose(rng, rng.randint(900, 1200))
    messages: list[dict] = [
        {"role": "user", "content": prompt},
        {"role": "assistant", "content": "",
         "tool_calls": [{"id": call_id, "type": "function",
                         "function": {"name": "terminal", "arguments": json.dumps({"command": command})}}]},
        {"role": "tool", "tool_call_id": call_id, "content": result},
        {"role": "assistant", "content": answer},
    ]
    events = [
        ev.TurnStarted(session="main", prompt=prompt, model="bench/model", cwd="/tmp", time=0.0),
        ev.Reasoning(text=prose(rng, 200), time=0.5),
        ev.ToolStarted(call_id=call_id, name="terminal", args={"command": command}, time=1.0),
        ev.ToolCompleted(call_id=call_id, name="terminal", duration=0.4, is_error=False,
                         result=json.loads(result)["output"][:400], time=1.4),
        ev.Token(text=answer, time=2.0),
        ev.Usage(model="bench/model", input_tokens=1200 * i, output_tokens=300 * i, cost_usd=None,
                 context_length=200_000, threshold_tokens=150_000, last_prompt_tokens=1200, time=2.1),
        ev.Done(status="done", text=answer, time=2.2),
    ]
    return messages, events, prompt


def session(messages: list[dict], turns: list[dict]) -> dict:
    return {"name": "main", "model": "bench/model", "messages": messages, "turns": turns}


def bench(n: int, runs: int, folder: Path) -> dict[str, Any]:
    rng = random.Random(n)
    start = time.time() - 3600
    messages: list[dict] = []
    turns: list[dict] = []
    for i in range(n - 1):
        msgs, turn = make_turn(rng, i, start + i)
        messages += msgs
        turns.append(turn)
    path = folder / f"bench-{n}.hermes.json"
    store = HistoryStore(path)
    store.save_session(session(messages, turns))  # the n-1 earlier turns, cache now warm

    warm, restart, load, uncached = [], [], [], []
    for run in range(runs):
        # A new turn has just finished: the session now has n turns (this store wrote last, as in a kernel).
        msgs, turn = make_turn(rng, n - 1 + run, start + n + run)
        record = session(messages + msgs, [*turns, turn])
        t0 = time.perf_counter()
        store.save_session(record)
        warm.append(time.perf_counter() - t0)
    for run in range(runs):
        # After a kernel restart: a fresh store loads the file, then a turn ends.
        fresh = HistoryStore(path)
        t0 = time.perf_counter()
        doc = fresh.load()
        load.append(time.perf_counter() - t0)
        saved = doc["sessions"]["main"]
        assert len(saved["messages"]) == len(record["messages"])
        msgs, turn = make_turn(rng, 10_000 + run, start + 10_000 + run)
        record = session(saved["messages"] + msgs, saved["turns"] + [turn])  # what the file holds from now on
        t0 = time.perf_counter()
        fresh.save_session(record)
        restart.append(time.perf_counter() - t0)

        # Worst case: nothing cached, every message redacted again.
        t0 = time.perf_counter()
        HistoryStore(path).save_session(record)
        uncached.append(time.perf_counter() - t0)
    return {"n": n, "size": path.stat().st_size, "warm": warm, "restart": restart,
            "load": load, "uncached": uncached}


class FinishedTurn:
    """What ``Session.record()`` reads of a finished ``Turn``, without its threads."""

    def __init__(self, events: list[ev.Event], turn_id: str, prompt: str, started: float):
        self.events, self.id, self.prompt, self.started_wall = events, turn_id, prompt, started
        self.options = RunOptions()


def streamed(events: list[ev.Event]) -> list[ev.Event]:
    """The events as the engine keeps them: the answer as 4-character Token events."""
    out: list[ev.Event] = []
    for e in events:
        if isinstance(e, ev.Token):
            out += [ev.Token(text=e.text[i:i + 4], time=e.time) for i in range(0, len(e.text), 4)]
        else:
            out.append(e)
    return out


def bench_engine(n: int, runs: int, folder: Path) -> dict[str, Any]:
    from hermes_jupyter.engine import Engine

    rng = random.Random(n + 1)
    start = time.time() - 3600

    def turn(i: int) -> tuple[list[dict], FinishedTurn]:
        messages, events, prompt = turn_parts(rng, i)
        return messages, FinishedTurn(streamed(events), f"engine-{n}-{i}", prompt, start + i)

    path = folder / f"engine-{n}.hermes.json"
    engine = Engine()
    engine.attach_history(path)
    live = engine.session("main")
    for i in range(n - 1):
        messages, finished = turn(i)
        live.messages += messages
        live.turns.append(finished)
    live.save()  # the saves of the earlier turns: cache warm

    saves, resumes, resumed_saves = [], [], []
    for run in range(runs):
        messages, finished = turn(n - 1 + run)
        live.messages += messages
        live.turns.append(finished)
        t0 = time.perf_counter()
        live.save()
        saves.append(time.perf_counter() - t0)
        live.turns.pop()  # keep n turns for the next run
        del live.messages[-len(messages):]

        fresh = Engine()
        t0 = time.perf_counter()
        fresh.attach_history(path)
        resumes.append(time.perf_counter() - t0)
        resumed = fresh.session("main")
        assert len(resumed.saved_turns) >= n - 1
        messages, finished = turn(20_000 + run)
        resumed.messages += messages
        resumed.turns.append(finished)
        t0 = time.perf_counter()
        resumed.save()
        resumed_saves.append(time.perf_counter() - t0)
    assert engine.store_error is None and fresh.store_error is None
    return {"n": n, "events": sum(len(t.events) for t in live.turns), "engine_save": saves,
            "resume": resumes, "resumed_save": resumed_saves}


def fmt(values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return f"{statistics.median(ms):.0f} ms ({min(ms):.0f}–{max(ms):.0f})"


def table(rows: list[dict[str, Any]], engine_rows: list[dict[str, Any]]) -> str:
    lines = [("| turns | file | save after a turn | load | first save after a restart | save, nothing cached "
              "| engine save, N turns run here | resume (`%load_ext`) | engine save after resume |"),
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r, e in zip(rows, engine_rows, strict=True):
        lines.append(f"| {r['n']} | {r['size'] / 1e6:.2f} MB | {fmt(r['warm'])} | {fmt(r['load'])} "
                     f"| {fmt(r['restart'])} | {fmt(r['uncached'])} | {fmt(e['engine_save'])} "
                     f"| {fmt(e['resume'])} | {fmt(e['resumed_save'])} |")
    return "\n".join(lines)


def run_all(turns: list[int], runs: int, folder: Path) -> dict[str, Any]:
    return {"store": [bench(n, runs, folder) for n in turns],
            "engine": [bench_engine(n, runs, folder) for n in turns]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--dir", type=Path, default=None, help="folder for the files (default: a temp dir)")
    parser.add_argument("--turns", type=int, nargs="*", default=[10, 100, 200, 1000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        data = run_all(args.turns, args.runs, Path(tmp))
    print(f"{args.runs} runs each; median (min–max)\n")
    print(table(data["store"], data["engine"]))


if __name__ == "__main__":
    main()
