"""``python -m hermes_jupyter.scripted [SCRIPT] [--port N]``: serve a script until Ctrl-C."""
from __future__ import annotations

import argparse
import sys
import threading

from . import BUILTIN_DEMO, ScriptedServer, ScriptError, load_script


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hermes_jupyter.scripted",
        description="Serve a scripted, OpenAI-compatible chat model on 127.0.0.1.",
    )
    parser.add_argument("script", nargs="?", default="demo", help='YAML/JSON script, or "demo" (default)')
    parser.add_argument("--port", type=int, default=0, help="port to bind (default: any free port)")
    args = parser.parse_args(argv)
    try:
        script = load_script(BUILTIN_DEMO if args.script == "demo" else args.script)
    except ScriptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        server = ScriptedServer(script, port=args.port).start()
    except OSError as exc:
        print(f"error: cannot listen on 127.0.0.1:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(server.base_url, flush=True)
    print(f"model: {server.model}   (any API key works; Ctrl-C stops)", file=sys.stderr, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
