"""Benchmarks of hermes-jupyter, run by hand: ``python bench/run.py``.

    python bench/run.py            # everything, full size (about 25 min); writes bench/RESULTS.md (+ .json)
    python bench/run.py --quick    # tiny sizes, one run each (about 1.5 min, CI); writes artifacts/bench-quick.md
    python bench/run.py --only stream,cpu --runs 5 --out /tmp/r.md
    python bench/run.py --only latency --update   # re-run some sections, keep the others of RESULTS.md
    python bench/run.py --rerender                # rewrite RESULTS.md from RESULTS.json (report code changed)

Needs the project's venv with the test and browser extras (jupyter_client, nbclient,
jupyterlab, playwright; Debian's /usr/bin/chromium for the latency benchmark, which
is skipped without it). All traffic stays on 127.0.0.1. Exit status 1 if a measurement failed.
Hand-written notes at the end of RESULTS.md (below the notes marker) are kept on rewrites.

Measurements (one module each, every figure next to a baseline taken in the same run):

1. prompt   return to prompt of ``%hermes`` vs ``pass``       (bench_prompt.py)
2. stream   iopub messages and bytes, ours vs a naive view    (bench_stream.py, naive_view.py)
3. latency  token-to-screen in JupyterLab + headless Chromium (bench_latency.py, lab.py)
4. cpu      kernel CPU: widget view, text view, no renderer   (bench_cpu.py)
5. history  save after a turn and resume                      (bench_history.py)
6. memory   kernel RSS over many turns; saved notebook size   (bench_memory.py)
7. session  turn 10, 100 and 1,000 of one long session        (bench_session.py)

The scripted model server runs in this process (common.TimedServer); kernels
reach it through ``Hermes.base_url``. Raw figures go to a JSON file beside the report.
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import importlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from importlib import metadata
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(BENCH.parent)]  # the bench modules; tests.browser for the lab helpers

from common import Skipped, TimedServer, kernel_env, write_script  # noqa: E402

FULL = {
    "prompt": {"kernels": 5, "calls": 10, "rate": 200, "busy_tokens": 6000},
    "stream": {"sizes": [1000, 4000, 16000], "rate": 200, "runs": 3},
    "latency": {"rates": [50, 1000], "tokens": {"50": 400, "1000": 6000}, "runs": 3},
    "cpu": {"tokens": 10000, "rate": 200, "runs": 5},
    "history": {"turns": [10, 100, 1000], "runs": 5},
    "memory": {"turns": 100, "cells": 100, "answer_tokens": 500, "warm": 5, "runs": 3},
    "session": {"turns": 1000, "checkpoints": [10, 100, 1000], "answer_tokens": 20, "notebook_cells": 100},
}
QUICK = {
    "prompt": {"kernels": 1, "calls": 3, "rate": 1000, "busy_tokens": 3000},
    "stream": {"sizes": [100, 400], "rate": 1000, "runs": 1},
    "latency": {"rates": [50, 1000], "tokens": {"50": 20, "1000": 400}, "runs": 1},
    "cpu": {"tokens": 1000, "rate": 1000, "runs": 1},
    "history": {"turns": [10, 100], "runs": 1},
    "memory": {"turns": 10, "cells": 10, "answer_tokens": 100, "warm": 1, "runs": 1},
    "session": {"turns": 20, "checkpoints": [10, 20], "answer_tokens": 20, "notebook_cells": 0},
}
MODULES = {"prompt": "bench_prompt", "stream": "bench_stream", "latency": "bench_latency",
           "cpu": "bench_cpu", "history": "bench_history", "memory": "bench_memory", "session": "bench_session"}
TARGETS = {
    "prompt": "well under 100 ms warm.",
    "stream": "≤ ~20 messages/s per turn; bytes linear (16k tokens ≤ ~4.5x the 4k); at 4,000 tokens "
              "≥ 50x fewer bytes than the naive view.",
    "latency": "p95 < 150 ms.",
    "cpu": "the widget view adds < 10% over no renderer.",
    "history": "(no target) save and resume stay fast for long sessions.",
    "memory": "kernel RSS grows < 50 KiB per finished turn over 100 turns; finished turns close their live widgets.",
    "session": "turn 1,000's cell return (over `pass`) and first token within 1.2x of turn 10's.",
}
NOTES = "<!-- notes: everything below this line is hand-written and kept when the report is rewritten -->"
PACKAGES = ["python", "ipykernel", "ipywidgets", "jupyterlab", "jupyterlab_widgets", "jupyter_client",
            "nbclient", "playwright", "hermes-agent", "hermes-jupyter"]


def machine() -> dict:
    import psutil

    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown")
    info = {"cpu": model, "cores": os.cpu_count(), "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "os": f"{platform.system()} {platform.release()}"}
    try:
        info["chromium"] = os.popen("/usr/bin/chromium --version 2>/dev/null").read().strip() or "?"
    except OSError:
        info["chromium"] = "?"
    return info


def versions() -> dict:
    out = {}
    for name in PACKAGES:
        if name == "python":
            out[name] = platform.python_version()
            continue
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def now() -> str:
    return datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")


def source() -> str:
    """The commit benchmarked, and whether the working tree differed from it."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=BENCH.parent, capture_output=True, text=True).stdout.strip()

    try:
        changed = [line[3:] for line in git("status", "--porcelain").splitlines()
                   if line[3:].startswith("hermes_jupyter/")]
        head = git("log", "-1", "--format=%h %s")
    except OSError:
        return "unknown (no git)"
    return f"{head}" + (f" + uncommitted changes in {', '.join(changed)}" if changed else "")


def code_hash() -> str:
    """A fingerprint of the product's code as it is on disk now (new kernels import this)."""
    h = hashlib.blake2b(digest_size=4)
    for path in sorted((BENCH.parent / "hermes_jupyter").rglob("*")):
        if path.is_file() and path.suffix in (".py", ".yaml", ".js", ".css"):
            h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()


def call_report(module, data: dict, cfg: dict) -> str:
    if module.__name__ == "bench_history":
        return (f"{cfg['runs']} run(s) each; median (min–max). Store columns: the store alone "
                "(bench_history.py's own table); engine columns: through `Session.save()` / "
                "`Engine.attach_history()`.\n\n" + module.table(data["store"], data["engine"]))
    if module.__name__ == "bench_prompt":
        return module.report(data)
    return module.report(data, cfg)


def write_report(path: Path, results: dict, header: dict) -> None:
    lines = [
        "# hermes-jupyter benchmarks",
        "",
        f"`{header['command']}`",
        "",
        f"* Date: {header['date']}; total time {header['seconds'] / 60:.1f} min{' (quick mode: tiny sizes)' if header['quick'] else ''}",
        (f"* Machine: {header['machine']['cpu']}, {header['machine']['cores']} cores, "
         f"{header['machine']['ram_gib']} GiB RAM, {header['machine']['os']}; {header['machine']['chromium']}"),
        f"* Source: {header['source']} (product code fingerprint {header.get('code', '?')})",
        "* Versions: " + ", ".join(f"{k} {v}" for k, v in header["versions"].items()),
        ("* Token = 4 characters of answer text; the scripted server sends one token per SSE chunk "
         "(two per chunk in the latency benchmark) and runs in the benchmark process, not in the kernel."),
        "* Spread: median (min–max) over the runs unless stated.",
        "",
    ]
    if header["quick"]:
        lines += [("**Quick mode**: tiny sizes, one run; it checks that the benchmarks run. The figures and the "
                   "verdicts against the targets are not meaningful at these sizes."), ""]
    for number, (name, result) in enumerate(results.items(), start=1):
        module = importlib.import_module(MODULES[name])
        lines += [f"## {number}. {module.TITLE}", "", f"Target: {TARGETS[name]}", ""]
        codes = result.get("code") or []
        if result.get("date", header["date"]) != header["date"]:
            same = " (the same product code as above)" if codes and codes[0] == header.get("code") else ""
            lines += [(f"_Measured again {result['date']}: {result.get('source')}, product code fingerprint "
                       f"{codes[0] if codes else '?'}{same}._"), ""]
        if len(set(codes)) > 1:
            lines += [(f"**Warning**: the product's code changed on disk during this measurement "
                       f"({' → '.join(codes)}); kernels started before and after the change ran different code."), ""]
        elif codes and codes[0] != header.get("code") and result.get("date", header["date"]) == header["date"]:
            # (a section measured again later names its own fingerprint above)
            lines += [(f"**Warning**: the product's code differed from the run's start ({header.get('code')} → "
                       f"{codes[0]}) when this measurement ran."), ""]
        if "report" in result:
            lines.append(result["report"])
        elif "skipped" in result:
            lines.append(f"**skipped**: {result['skipped']}")
        else:
            lines.append(f"**failed**: `{result['error']}`")
        lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and NOTES in path.read_text():  # hand-written notes at the end survive a re-run
        lines += ["", NOTES + path.read_text().split(NOTES, 1)[1].rstrip("\n")]
    path.write_text("\n".join(lines) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description="hermes-jupyter benchmarks")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one run each (CI)")
    parser.add_argument("--only", default=",".join(MODULES), help=f"comma-separated subset of {','.join(MODULES)}")
    parser.add_argument("--runs", type=int, help="override the number of runs of every measurement")
    parser.add_argument("--update", action="store_true",
                        help="keep the other sections of the existing report (its .json), replace the ones run now")
    parser.add_argument("--rerender", action="store_true",
                        help="measure nothing: rewrite the report from its .json with the current report code")
    parser.add_argument("--out", type=Path, help="report path (default bench/RESULTS.md, "
                                                "artifacts/bench-quick.md with --quick)")
    args = parser.parse_args()
    config = json.loads(json.dumps(QUICK if args.quick else FULL))
    if args.runs:
        for cfg in config.values():
            cfg.update({k: args.runs for k in ("runs", "kernels") if k in cfg})
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = set(names) - set(MODULES)
    if unknown:
        parser.error(f"unknown measurement(s): {', '.join(sorted(unknown))}")
    out = args.out or (BENCH.parent / "artifacts" / "bench-quick.md" if args.quick else BENCH / "RESULTS.md")

    if args.rerender:
        saved = json.loads(out.with_suffix(".json").read_text())
        for name, result in saved["results"].items():
            if "data" in result:
                module = importlib.import_module(MODULES[name])
                if hasattr(module, "compact"):
                    result["data"] = module.compact(result["data"])
                result["report"] = call_report(module, result["data"], result["config"])
        write_report(out, saved["results"], saved["header"])
        out.with_suffix(".json").write_text(json.dumps(saved, indent=1, default=str))
        print(f"[bench] rewrote {out}")
        return 0

    scratch = Path(tempfile.mkdtemp(prefix="hermes-bench-"))
    os.environ.update(kernel_env(scratch / "hermes-home"))  # kernels started by nbclient inherit it
    for key in ("OPENAI_API_KEY", "OPENROUTER_API_KEY", "ANTHROPIC_API_KEY"):
        os.environ.pop(key, None)
    modules = {name: importlib.import_module(MODULES[name]) for name in names}
    rules = [r for name, m in modules.items() if hasattr(m, "rules") for r in m.rules(config[name])]
    server = TimedServer(write_script(scratch, rules)).start()
    started = time.monotonic()
    run_date = now()
    header_source = source()  # at the start: the code the kernels import
    header_code = code_hash()
    results: dict = {}
    try:
        for name, module in modules.items():
            cfg = config[name]
            print(f"[bench] {name} {json.dumps(cfg)}", flush=True)
            t0 = time.monotonic()
            code_before = code_hash()
            (scratch / name).mkdir(parents=True, exist_ok=True)
            try:
                if name == "history":
                    data = module.run_all(cfg["turns"], cfg["runs"], scratch / name)
                else:
                    data = module.run(server, cfg, scratch / name)
                results[name] = {"config": cfg, "data": data, "report": call_report(module, data, cfg),
                                 "seconds": round(time.monotonic() - t0), "date": run_date, "source": header_source,
                                 "code": [code_before, code_hash()]}
                print(results[name]["report"], flush=True)
            except Skipped as exc:
                results[name] = {"config": cfg, "skipped": str(exc), "date": run_date, "source": header_source}
                print(f"[bench] {name} skipped: {exc}")
            except Exception as exc:  # report it and go on with the other measurements
                traceback.print_exc()
                results[name] = {"config": cfg, "error": f"{type(exc).__name__}: {exc}", "date": run_date,
                                 "source": header_source}
            print(f"[bench] {name} took {time.monotonic() - t0:.0f} s\n", flush=True)
    finally:
        server.close()
    header = {"date": run_date, "seconds": time.monotonic() - started, "quick": args.quick,
              "command": " ".join(["python bench/run.py", *sys.argv[1:]]),
              "machine": machine(), "versions": versions(), "source": header_source, "code": header_code}
    raw = out.with_suffix(".json")
    if args.update and raw.exists():
        previous = json.loads(raw.read_text())
        merged = previous["results"] | results
        results = {name: merged[name] for name in MODULES if name in merged}
        header = previous["header"] | {"machine": header["machine"], "versions": header["versions"]}
    write_report(out, results, header)
    raw.write_text(json.dumps({"header": header, "results": results}, indent=1, default=str))
    print(f"[bench] wrote {out} and {raw.name}")
    return 1 if any("error" in r for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
