"""First-token latency of a notebook's first turn, cold (a fresh kernel) and warm, in one run.

Run by hand: ``python bench/bench_first_turn.py [--runs 3] [--typing 10]``. Prints a Markdown table.

Each run starts a fresh kernel, loads the extension, waits ``--typing`` seconds (the user
typing the first prompt), then runs two turns on the built-in scripted model: the first
(cold) and the second (warm). The first token's time is measured in the kernel from the
turn's submission (its first Token event). Done with the warm-up on (the default) and off
(``%config Hermes.warmup = False`` before ``%load_ext``). Target: cold ≤ 1.5 × warm + 0.3 s.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from common import kernel_env, scratch
from kernel import BenchKernel

TITLE = "First answer: cold vs warm"
PROBE = ("import json\n"
         "print('RESULT', json.dumps({'first': next(e.time for e in {t}.events if e.kind == 'token'),\n"
         "  'phases': [(e.text, e.time) for e in {t}.events if e.kind == 'phase']}))")


def one_run(folder: Path, warmup: bool, typing: float) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    with BenchKernel(folder, kernel_env(folder / ".hermes-home")) as k:
        k.run(f"%config Hermes.warmup = {warmup}\n%config Hermes.notebook = 'bench.ipynb'\n"
              "%load_ext hermes_jupyter\n%config Hermes.model = 'scripted:demo'\n%config Hermes.plain = True")
        time.sleep(typing)  # the user typing the first prompt (a benchmark's pause, not a test's wait)
        result: dict = {}
        for name in ("cold", "warm"):
            k.run(f"%hermes -o {name} --wait Hello! What can you do?")
            probe = k.run(PROBE.replace("{t}", name))
            line = next(m.content["text"] for m in k.messages if m.parent == probe.msg_id and m.msg_type == "stream")
            result[name] = json.loads(line.split("RESULT", 1)[1])
        if warmup:
            w = k.run("import hermes_jupyter\nprint('RESULT', __import__('json').dumps("
                      "hermes_jupyter._loaded[id(get_ipython())].warmup.timings))")
            text = next(m.content["text"] for m in k.messages if m.parent == w.msg_id and m.msg_type == "stream")
            result["warmup"] = json.loads(text.split("RESULT", 1)[1])
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--typing", type=float, default=10.0)
    args = parser.parse_args()
    rows = []
    for warmup in (True, False):
        runs = [one_run(scratch("first") / f"r{i}", warmup, args.typing) for i in range(args.runs)]
        cold = [r["cold"]["first"] for r in runs]
        warm = [r["warm"]["first"] for r in runs]
        rows.append((warmup, cold, warm, runs))
    print(f"## {TITLE}\n\nTarget: cold ≤ 1.5 × warm + 0.3 s. {args.runs} fresh kernels each, "
          f"{args.typing:g} s between %load_ext and the first prompt; median (min–max).\n")
    print("| warm-up | first turn: first token | second turn: first token | target met |")
    print("|---|---:|---:|---|")
    for warmup, cold, warm, _ in rows:
        met = statistics.median(cold) <= 1.5 * statistics.median(warm) + 0.3
        print(f"| {'on' if warmup else 'off'} | {fmt(cold)} | {fmt(warm)} | {'yes' if met else 'no'} |")
    print("\nWhere the first turn's time goes (median seconds from submission to each phase):\n")
    for warmup, _, _, runs in rows:
        phases: dict[str, list[float]] = {}
        for r in runs:
            for text, at in r["cold"]["phases"]:
                phases.setdefault(text.split(" to ")[0], []).append(at)
        steps = ", ".join(f"{k} at {statistics.median(v):.2f} s" for k, v in phases.items())
        print(f"* warm-up {'on' if warmup else 'off'}: {steps}, first token at "
              f"{statistics.median(r['cold']['first'] for r in runs):.2f} s")
    warm_runs = rows[0][3]
    timings: dict[str, list[float]] = {}
    for r in warm_runs:
        for step, seconds in r.get("warmup", {}).items():
            timings.setdefault(step, []).append(seconds)
    print("* the warm-up thread's steps (median): "
          + ", ".join(f"{k} {statistics.median(v):.2f} s" for k, v in timings.items()))


def fmt(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} s ({min(values):.2f}–{max(values):.2f})"


if __name__ == "__main__":
    main()
