"""7. Long sessions: turn 10, 100 and 1,000 of one session, in one kernel, with the widget view.

Run by hand (``python bench/run.py --only session``) or alone::

    python bench/bench_session.py --turns 1000 --checkpoints 10,100,1000 [--json out.json]

A fresh warmed kernel runs N short turns in one session, as a notebook would:
``pass`` (timed: the baseline), ``%hermes -o t [s] turn i`` (timed) and
``t.wait()`` (not timed), so each turn has ended before the next cell.
A probe installed in the kernel (``PROBE``) records, per turn, on the kernel's
clock (``time.monotonic()``, which is the machine's CLOCK_MONOTONIC, shared
with this process):

* when the magic ran and how long it took on the main thread;
* when the first ``Token`` was emitted (the agent got it) and delivered (a
  subscriber placed after the history writer, as the views are);
* every history save: which store method, on which thread, how long.

At each checkpoint n the figures are the median over turns n-9..n (turns 1-10
for n = 10), next to the ``pass`` cells of the same turns; the kernel's RSS,
the widgets alive in it and the history file's size are read at the checkpoint.
At each checkpoint a paired block follows (``paired_block``): a fresh session gets 10 turns of
history, then 10 of its turns and 10 of the long session's alternate, so the two are compared at
the same minute in the same kernel (checkpoints are minutes apart on a shared machine whose load
drifts). These turns are not in the rows; they add 30 turns to the long session, 60 in short ones.
Optionally (``notebook_cells``) nbclient executes a notebook of that many
``%hermes -o t`` cells and the saved file's widget state is weighed
(bench_memory.notebook_size).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from common import answer_text, rule
from kernel import BenchKernel, hermes_kernel

TITLE = "Long sessions"
ASK = "%hermes -o t [s] turn {i}"
WAIT = "assert t.wait(120) and t.status == 'done', t.status"
# Store methods that write, timed when they exist (the bench runs against older and newer code).
SAVE_METHODS = ("save_session", "append", "compact", "flush")

PROBE = r'''
import gc as _gc, json as _json, threading as _threading, time as _time
from hermes_jupyter import get_engine as _get_engine
from hermes_jupyter.history import store as _store_mod

_bench = {"turns": [], "saves": [], "magic": []}


def _bench_install(methods):
    cls = _store_mod.HistoryStore
    for name in methods:
        real = cls.__dict__.get(name)
        if real is None or getattr(real, "_bench", False):
            continue

        def make(real, name):
            def timed(self, *args, **kwargs):
                t0 = _time.monotonic()
                try:
                    return real(self, *args, **kwargs)
                finally:
                    _bench["saves"].append([name, t0, _time.monotonic() - t0, _threading.current_thread().name])
            timed._bench = True
            return timed
        setattr(cls, name, make(real, name))

    engine = _get_engine()
    real_submit = engine.submit

    def submit(prompt, **kwargs):
        rec = {"submit": _time.monotonic()}
        _bench["turns"].append(rec)

        def seen(event, rec=rec):
            if event.kind == "token" and "token" not in rec:
                rec["token"] = _time.monotonic()
                rec["token_time"] = event.time
            elif event.kind == "started":
                rec["started"] = _time.monotonic()
            elif event.kind == "done":
                rec["done"] = _time.monotonic()
        kwargs["subscribers"] = [*kwargs.get("subscribers", ()), seen]
        turn = real_submit(prompt, **kwargs)
        rec["t0"] = turn._events.started_at
        rec["returned"] = _time.monotonic()
        return turn
    engine.submit = submit

    magics = get_ipython().magics_manager.magics
    real_magic = magics["line"]["hermes"]

    def magic(line, *args, **kwargs):
        t0 = _time.monotonic()
        try:
            return real_magic(line, *args, **kwargs)
        finally:
            _bench["magic"].append([t0, _time.monotonic() - t0])
    magics["line"]["hermes"] = magic


def _bench_skip_openai_transform():
    """Experiment (--skip-openai-transform): the openai SDK's request transform walks every message
    of the conversation in Python on each model call; no chat message type it knows has an alias or
    a format to apply, so the messages are passed as they are and only the rest is transformed."""
    import openai.resources.chat.completions.completions as chat
    real = chat.maybe_transform

    def transform(data, expected_type):
        if isinstance(data, dict) and isinstance(data.get("messages"), list):
            out = real({k: v for k, v in data.items() if k != "messages"}, expected_type)
            return {**out, "messages": list(data["messages"])}
        return real(data, expected_type)
    chat.maybe_transform = transform


def _bench_take():
    """What was recorded since the last call (turns whose Done arrived), and the kernel's state."""
    from ipywidgets.widgets.widget import _instances
    engine = _get_engine()
    done = [t for t in _bench["turns"] if "done" in t]
    _bench["turns"] = [t for t in _bench["turns"] if "done" not in t]
    saves, _bench["saves"] = _bench["saves"], []
    magic, _bench["magic"] = _bench["magic"], []
    _gc.collect()
    session = engine.session()
    store = engine.store
    return _json.dumps({
        "turns": done, "saves": saves, "magic": magic, "widgets": len(_instances),
        "turns_in_memory": len(session.turns), "events_in_memory": sum(len(t.events) for t in session.turns),
        "history_bytes": store.path.stat().st_size if store is not None and store.path.exists() else 0,
        "folder": sorted(p.name for p in store.path.parent.iterdir()) if store is not None else [],
    })
'''


def rules(cfg: dict) -> list[dict]:
    return [rule("s", answer_text(cfg["answer_tokens"]), 4, 0.0)]


def _take(kernel: BenchKernel) -> dict:
    cell = kernel.run("print(_bench_take())")
    text = "".join(m.content.get("text", "") for m in kernel.messages
                   if m.parent == cell.msg_id and m.msg_type == "stream")
    return json.loads(text)


def _attribute(turns: list[dict], saves: list[list], magic: list[list]) -> None:
    """Give each turn the saves and the magic call that happened between its submit and the next one."""
    starts = [t["submit"] for t in turns] + [float("inf")]
    for i, turn in enumerate(turns):
        lo, hi = starts[i], starts[i + 1]
        turn["saves"] = [s for s in saves if lo <= s[1] < hi]
        before = [(t0, d) for t0, d in magic if lo - 1.0 <= t0 <= lo]  # the magic's call that submitted it
        turn["magic_seconds"] = max(before)[1] if before else None


PAIRS = 10  # turns of each session in the paired block at a checkpoint


def paired_block(kernel: BenchKernel, n: int) -> dict:
    """Turns of a fresh 10-turn session and of the long one, alternating, at the same minute in the
    same kernel: the growth with the session's length apart from the machine's load drifting
    between checkpoints (minutes apart on a shared machine)."""
    short = f"short{n}"
    for i in range(10):  # its history: 10 turns, as at turn 10
        kernel.run(f"%hermes -s {short} -o t [s] history {i}")
        kernel.run(WAIT)
    kernel.settle(0.2)
    _take(kernel)  # forget those
    cells: list[dict] = []
    for i in range(PAIRS):
        for name in (short, "main"):
            passed = kernel.run("pass")
            ask = kernel.run(f"%hermes -s {name} -o t [s] paired {i}")
            kernel.run(WAIT)
            cells.append({"session": name, "pass": passed.return_time, "return": ask.return_time, "sent": ask.sent})
    kernel.run("%hermes -s main /config")  # the long session is current again
    kernel.settle(0.2)
    state = _take(kernel)
    if len(state["turns"]) != len(cells):
        raise RuntimeError(f"paired block: {len(cells)} turns run, {len(state['turns'])} recorded")
    out: dict[str, dict] = {}
    for which, name in (("short", short), ("long", "main")):
        rows = [(c, r) for c, r in zip(cells, state["turns"], strict=True) if c["session"] == name]
        out[which] = {"over_pass": statistics.median(c["return"] - c["pass"] for c, _ in rows),
                      "first_token": statistics.median(r["token"] - c["sent"] for c, r in rows)}
    return out


def session_run(server, folder: Path, turns: int, checkpoints: list[int], log=print, *,
                skip_openai_transform: bool = False) -> dict:
    kernel = hermes_kernel(server, folder)
    rows: list[dict] = []
    states: dict[int, dict] = {}
    started = time.monotonic()
    try:
        # A named notebook: the history goes beside it, as in JupyterLab.
        kernel.run(f"%config Hermes.notebook = {str(folder / 'long.ipynb')!r}\n%hermes /config")
        kernel.run(PROBE + f"\n_bench_install({SAVE_METHODS!r})\n"
                   + ("_bench_skip_openai_transform()\n" if skip_openai_transform else ""))
        pending: list[dict] = []
        for i in range(1, turns + 1):
            passed = kernel.run("pass")
            ask = kernel.run(ASK.format(i=i))
            kernel.run(WAIT)
            pending.append({"turn": i, "pass": passed.return_time, "return": ask.return_time, "sent": ask.sent})
            if i in checkpoints or i % 50 == 0 or i == turns:
                kernel.settle(0.2)
                state = _take(kernel)
                _attribute(state["turns"], state["saves"], state["magic"])
                if len(state["turns"]) != len(pending):
                    raise RuntimeError(f"{len(pending)} turns run, {len(state['turns'])} recorded")
                for row, rec in zip(pending, state["turns"], strict=True):
                    row.update(first_token=rec["token"] - row["sent"], token_emitted=rec["token_time"],
                               delivered_after_emit=rec["token"] - (rec["t0"] + rec["token_time"]),
                               submit_to_return=rec["returned"] - rec["submit"],
                               magic=rec["magic_seconds"], done_after_token=rec["done"] - rec["token"],
                               saves=[[s[0], round(s[2], 5), s[3]] for s in rec["saves"]])
                rows += pending
                pending = []
                if i in checkpoints:
                    states[i] = {k: state[k] for k in ("widgets", "turns_in_memory", "events_in_memory",
                                                       "history_bytes", "folder")} | {"rss": kernel.rss()}
                    states[i]["paired"] = paired_block(kernel, i)
                log(f"[session] turn {i}: {time.monotonic() - started:.0f} s, "
                    f"return {statistics.median(r['return'] for r in rows[-10:]) * 1000:.0f} ms, "
                    f"pass {statistics.median(r['pass'] for r in rows[-10:]) * 1000:.0f} ms, "
                    f"first token {statistics.median(r['first_token'] for r in rows[-10:]) * 1000:.0f} ms, "
                    f"rss {kernel.rss() / 2**20:.0f} MiB")
    finally:
        kernel.close()
    return {"rows": rows, "states": {str(k): v for k, v in states.items()}}


def compact(data: dict, checkpoints: list[int] | None = None) -> dict:
    """Only the turns the report reads (the 10 up to each checkpoint): RESULTS.json stays small."""
    marks = checkpoints or [int(n) for n in data["states"]]
    keep = [r for r in data["rows"] if any(max(1, n - 9) <= r["turn"] <= n for n in marks)]
    return {**data, "rows": keep}


def run(server, cfg: dict, folder: Path) -> dict:
    data = compact(session_run(server, folder / "kernel", cfg["turns"], cfg["checkpoints"],
                               skip_openai_transform=cfg.get("skip_openai_transform", False)), cfg["checkpoints"])
    if cfg.get("notebook_cells"):
        from bench_memory import notebook_size
        try:
            data["notebook"] = notebook_size(server, folder / "notebook", "no wait", cfg["notebook_cells"])
        except Exception as exc:
            data["notebook"] = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
    return data


# ----- report ---------------------------------------------------------------------------

def _window(rows: list[dict], n: int) -> list[dict]:
    return [r for r in rows if max(1, n - 9) <= r["turn"] <= n]


def _med(values) -> float:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


def _save_kinds(rows: list[dict]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for r in rows:
        for name, seconds, _thread in r["saves"]:
            out.setdefault(name, []).append(seconds)
    return out


def checkpoint(data: dict, n: int) -> dict:
    rows = _window(data["rows"], n)
    kinds = _save_kinds(rows)
    return {
        "n": n, "turns": f"{rows[0]['turn']}–{rows[-1]['turn']}" if rows else "–",
        "pass": _med(r["pass"] for r in rows), "return": _med(r["return"] for r in rows),
        "magic": _med(r["magic"] for r in rows), "submit": _med(r["submit_to_return"] for r in rows),
        "first_token": _med(r["first_token"] for r in rows), "emitted": _med(r["token_emitted"] for r in rows),
        "delivery": _med(r["delivered_after_emit"] for r in rows),
        "saves_per_turn": _med(len(r["saves"]) for r in rows),
        "save_max": _med(max((s[1] for s in r["saves"]), default=0.0) for r in rows),
        "save_kinds": {k: _med(v) for k, v in kinds.items()},
        "save_threads": sorted({s[2].split("-")[0] + ("-" + s[2].split("-")[1] if "-" in s[2] else "")
                                for r in rows for s in r["saves"]}),
        "state": data["states"].get(str(n), {}),
    }


def report(data: dict, cfg: dict) -> str:
    marks = [checkpoint(data, n) for n in cfg["checkpoints"] if str(n) in data["states"]]
    if not marks:
        return "no checkpoint reached"
    ms = lambda s: f"{s * 1000:.0f} ms" if s == s else "–"  # noqa: E731  (NaN → –)
    base = marks[0]
    experiment = (" **Experiment**: the openai SDK's per-message request transform patched out in the kernel "
                  "(`--skip-openai-transform`), not what the product does." if cfg.get("skip_openai_transform") else "")
    lines = [
        (f"One kernel, one session, {cfg['turns']:,} turns of a {cfg['answer_tokens']}-token answer (the widget view, "
         "`%hermes -o t` then `t.wait()`); figures are medians over the 10 turns up to each checkpoint, "
         "on the kernel's own clock where they are inside it. Shared 2-core machine: rough figures." + experiment),
        "",
        ("| turn | `pass` | `%hermes` return | return − `pass` | magic on the main thread | first token "
         "(send → delivered) | token emitted (turn start →) | saves per turn | slowest save of a turn "
         "| save by kind | RSS | widgets alive | history file |"),
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for m in marks:
        st = m["state"]
        kinds = ", ".join(f"{k} {ms(v)}" for k, v in m["save_kinds"].items()) or "–"
        lines.append(
            f"| {m['n']:,} | {ms(m['pass'])} | {ms(m['return'])} | {ms(m['return'] - m['pass'])} | {ms(m['magic'])} "
            f"| {ms(m['first_token'])} | {ms(m['emitted'])} | {m['saves_per_turn']:.0f} | {ms(m['save_max'])} "
            f"| {kinds} | {st.get('rss', 0) / 2**20:.0f} MiB | {st.get('widgets', '–')} "
            f"| {st.get('history_bytes', 0) / 1e6:.2f} MB |")
    last = marks[-1]
    over = (last["return"] - last["pass"]) / (base["return"] - base["pass"])
    token = last["first_token"] / base["first_token"]
    lines += [
        "",
        f"Turn {last['n']:,} against turn {base['n']}:",
        f"* cell return over `pass`: {over:.2f}× ({'**met**' if over <= 1.2 else '**missed**'}, target ≤ 1.2×)",
        f"* first token: {token:.2f}× ({'**met**' if token <= 1.2 else '**missed**'}, target ≤ 1.2×)",
    ]
    paired = [(m["n"], m["state"]["paired"]) for m in marks if m["state"].get("paired")]
    if paired:
        lines.append(f"* paired, at each checkpoint: {PAIRS} turns of a fresh 10-turn session and {PAIRS} of this one, "
                     "alternating in the same kernel at the same minute (the machine's load cannot drift between them):")
        for n, p in paired:
            s_, l_ = p["short"], p["long"]
            lines.append(f"  * turn {n:,}: return − `pass` {ms(s_['over_pass'])} (10-turn session) vs "
                         f"{ms(l_['over_pass'])} ({l_['over_pass'] / s_['over_pass']:.2f}×); first token "
                         f"{ms(s_['first_token'])} vs {ms(l_['first_token'])} ({l_['first_token'] / s_['first_token']:.2f}×)")
    rss = [m["state"].get("rss") for m in marks]
    if len(marks) > 1 and all(rss):
        per = (rss[-1] - rss[0]) / (last["n"] - base["n"]) / 1024
        lines.append(f"* RSS growth: {per:.0f} KiB per turn between turn {base['n']} and turn {last['n']:,}")
    folder = last["state"].get("folder")
    if folder:
        lines.append(f"* the notebook's folder at turn {last['n']:,}: {', '.join(f'`{f}`' for f in folder)}")
    threads = sorted({t for m in marks for t in m["save_threads"]})
    if threads:
        lines.append(f"* saves ran on: {', '.join(threads)}")
    nb = data.get("notebook")
    if nb:
        if "error" in nb:
            lines.append(f"* notebook: failed: {nb['error']}")
        else:
            cells = cfg["notebook_cells"]
            lines.append(f"* a notebook of {cells} `%hermes -o t` cells (+ `t.wait()`) executed by nbclient "
                         f"(store_widget_state on): {nb['file'] / 1e6:.2f} MB, widget state "
                         f"{nb['widget_state'] / 1e6:.2f} MB in {nb['widget_models']:,} models "
                         f"({nb['widget_state'] / cells / 1e3:.1f} kB per turn)")
    return "\n".join(lines)


def main() -> None:
    from common import TimedServer, kernel_env, scratch, write_script

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=1000)
    parser.add_argument("--checkpoints", default="10,100,1000")
    parser.add_argument("--answer-tokens", type=int, default=20)
    parser.add_argument("--notebook-cells", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    parser.add_argument("--skip-openai-transform", action="store_true",
                        help="experiment: patch the openai SDK's per-message request transform in the kernel")
    args = parser.parse_args()
    cfg = {"turns": args.turns, "checkpoints": [int(c) for c in args.checkpoints.split(",") if int(c) <= args.turns],
           "answer_tokens": args.answer_tokens, "notebook_cells": args.notebook_cells,
           "skip_openai_transform": args.skip_openai_transform}
    folder = scratch("session")
    import os
    os.environ.update(kernel_env(folder / "hermes-home"))
    server = TimedServer(write_script(folder, rules(cfg))).start()
    try:
        data = run(server, cfg, folder)
    finally:
        server.close()
    if args.json:
        args.json.write_text(json.dumps({"config": cfg, "data": data}, default=str))
    print(report(data, cfg))


if __name__ == "__main__":
    sys.exit(main())
