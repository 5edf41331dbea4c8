"""First-token latency of a notebook's first turn, cold (a fresh kernel) and warm, in one run.

Run by hand: ``python bench/bench_first_turn.py [--runs 3] [--typing 10]``. Prints a Markdown table.
``--run-all`` measures instead a Run All's first answer in a kernel that loads the extension at its
start (``c.InteractiveShellApp.extensions`` in ipython_config.py), against a bare hermes-agent process:
each from its process's launch to the first token, on the same scripted endpoint. Target: ≤ 1.2 × bare.

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
import subprocess
import sys
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


# A bare hermes-agent process: import, build an agent, ask; the first streamed delta's wall time.
BARE = """
import json, sys, time
launched, url, model = float(sys.argv[1]), sys.argv[2], sys.argv[3]
from run_agent import AIAgent
first = []
def on_delta(text):
    if text and not first:
        first.append(time.time())
agent = AIAgent(model=model, base_url=url, api_key="none", quiet_mode=True, platform="jupyter",
                enabled_toolsets=["terminal", "file", "clarify", "todo"], skip_memory=True,
                stream_delta_callback=on_delta)
agent.run_conversation("Hello! What can you do?")
print("RESULT", json.dumps({"first": first[0] - launched}))
"""
# Run All's first cells in a kernel started with the extension loaded (the notebook keeps its %load_ext:
# a no-op then). The first token's wall time: the turn's start plus the event's offset.
RUN_ALL = ["%load_ext hermes_jupyter", "%hermes -o first --wait Hello! What can you do?",
           ("import json\nprint('RESULT', json.dumps(first.started_wall + next(e.time for e in first.events "
            "if e.kind == 'token')))")]


def bare_first_token(folder: Path, url: str, model: str) -> float:
    folder.mkdir(parents=True, exist_ok=True)
    env = kernel_env(folder / ".hermes-home")
    launched = time.time()
    done = subprocess.run([sys.executable, "-c", BARE, str(launched), url, model], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=300, check=True)
    return json.loads(done.stdout.split("RESULT", 1)[1])["first"]


def run_all_first_token(folder: Path, url: str, model: str, at_start: bool) -> float:
    """Seconds from the kernel's launch to a Run All's first token; the extension loaded at the kernel's
    start (ipython_config.py, as the README shows) or by the notebook's first cell."""
    folder.mkdir(parents=True, exist_ok=True)
    profile = folder / "ipython" / "profile_default"
    profile.mkdir(parents=True)
    settings = [f"c.Hermes.base_url = {url!r}", f"c.Hermes.model = {model!r}", "c.Hermes.plain = True",
                "c.Hermes.notebook = 'bench.ipynb'"]
    if at_start:
        settings.append("c.InteractiveShellApp.extensions = ['hermes_jupyter']")
    (profile / "ipython_config.py").write_text("\n".join(settings) + "\n")
    env = dict(kernel_env(folder / ".hermes-home"), IPYTHONDIR=str(folder / "ipython"))
    launched = time.time()
    with BenchKernel(folder, env) as k:
        cells = [k.send(code) for code in RUN_ALL]  # Run All: every cell sent at once
        for cell in cells:
            k.wait_idle(cell, 300)
        said = {c.msg_id: "".join(m.content.get("text", "") for m in k.messages
                                  if m.parent == c.msg_id and m.msg_type == "stream") for c in cells}
        assert ("already loaded" in said[cells[0].msg_id]) == at_start, said[cells[0].msg_id]  # loaded at start?
        return float(said[cells[-1].msg_id].split("RESULT", 1)[1]) - launched


def run_all_main(runs: int) -> None:
    from hermes_jupyter.models.scripted import shared_server

    server = shared_server("demo")
    base = scratch("run-all")
    rows: dict[str, list[float]] = {"bare": [], "start": [], "cell": []}
    for i in range(runs):  # interleaved, so a busy moment of the machine hits every kind alike
        rows["bare"].append(bare_first_token(base / f"bare{i}", server.base_url, server.model))
        rows["start"].append(run_all_first_token(base / f"start{i}", server.base_url, server.model, True))
        rows["cell"].append(run_all_first_token(base / f"cell{i}", server.base_url, server.model, False))
    bare = statistics.median(rows["bare"])
    print("## Run All's first answer vs a bare hermes-agent process (bench_first_turn.py --run-all)\n")
    print(f"Target: ≤ 1.2 × bare. {runs} runs each, interleaved; seconds from the process's launch "
          "(the kernel's, or the bare script's) to the first token, on the same scripted endpoint "
          "(in the benchmark's process); median (min–max).\n")
    print("| | first token | × bare (medians) | × bare (median of the runs' own ratios) | target met |")
    print("|---|---:|---:|---:|---|")
    labels = {"bare": "bare hermes-agent process (import, AIAgent, run_conversation)",
              "start": "Run All, extension loaded at kernel start (ipython_config.py)",
              "cell": "Run All, `%load_ext` in the first cell"}
    for key, values in rows.items():
        ratio = statistics.median(values) / bare
        # Each run's kinds ran back to back: their ratio cancels most of a shared machine's load drift.
        paired = statistics.median(v / b for v, b in zip(values, rows["bare"], strict=True))
        met = "—" if key == "bare" else ("yes" if paired <= 1.2 else "no")
        print(f"| {labels[key]} | {fmt(values)} | {ratio:.2f} | {paired:.2f} | {met} |")
    server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--typing", type=float, default=10.0)
    parser.add_argument("--run-all", action="store_true", help="Run All at kernel start vs a bare hermes-agent")
    args = parser.parse_args()
    if args.run_all:
        run_all_main(args.runs)
        return
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
