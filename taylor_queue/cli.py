"""``python -m taylor_queue WORKFLOW_API.json [--server URL] [--set NODE.input=value]... [--out DIR]
[--timeout S]``: validate a graph against a ComfyUI server, queue it, follow it, download what it made.

Exit status: 0 done; 2 bad command line or workflow file; 3 the graph does not match the server (nothing
was queued); 4 the server refused or failed the prompt; 5 timeout (the prompt is cancelled); 6 no server;
130 interrupted with Ctrl-C (the prompt is cancelled).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .api import ComfyServer
from .console import Console
from .errors import Exit, QueueError
from .overrides import Override, apply_overrides
from .runner import download_outputs, run_graph
from .validate import check_api_format, validate_graph

DEFAULT_SERVER = "http://127.0.0.1:8188"
FORECAST_TYPES = ("TaylorSeerApply", "CGTaylorGate")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m taylor_queue", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workflow", type=Path, help="an API-format workflow (Workflow > Export (API))")
    parser.add_argument("--server", default=os.environ.get("COMFYUI_URL", DEFAULT_SERVER),
                        help=f"the ComfyUI server (default: $COMFYUI_URL or {DEFAULT_SERVER})")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="NODE.input=value",
                        help="set an input of the nodes whose title, class or id is NODE; a bare input=value "
                             "sets it on every node that has it (repeatable)")
    parser.add_argument("--out", type=Path, default=Path("outputs"), help="where outputs go (default ./outputs)")
    parser.add_argument("--timeout", type=float, default=3600.0,
                        help="seconds to wait for the run, queue time included (default 3600)")
    parser.add_argument("--no-validate", action="store_true",
                        help="skip the client-side check against /object_info (the server still validates)")
    return parser.parse_args(argv)


def load_graph(path: Path) -> dict:
    try:
        graph = json.loads(path.read_text())
        check_api_format(graph)
    except OSError as exc:
        raise QueueError(Exit.USAGE, f"cannot read {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise QueueError(Exit.USAGE, f"{path}: {exc}") from exc
    return graph


def queue_workflow(args: argparse.Namespace, console: Console) -> int:
    graph = console.graph
    try:
        overrides = [Override.parse(text) for text in args.overrides]
    except ValueError as exc:
        raise QueueError(Exit.USAGE, str(exc)) from exc
    server = ComfyServer(args.server)
    object_info = server.object_info()
    try:
        changes = apply_overrides(graph, overrides, object_info)
    except ValueError as exc:
        raise QueueError(Exit.USAGE, str(exc)) from exc
    for change in changes:
        console.say(f"set {change}")
    if not args.no_validate:
        problems = validate_graph(graph, object_info)
        if problems:
            raise QueueError(Exit.VALIDATION, f"{args.workflow} does not match the server at {server.url} "
                             f"({len(problems)} problem(s); nothing was queued):\n  " + "\n  ".join(problems))
    result = run_graph(server, graph, args.timeout, console)
    forecast_nodes = [i for i, node in graph.items() if node["class_type"] in FORECAST_TYPES]
    if forecast_nodes and not result.reports:
        console.say("no cache report: the sampler's result was reused from the server's cache (change the seed "
                    "to run it again)" if result.cached_nodes else "no cache report came from the server")
    saved = download_outputs(server, result.history, args.out)
    for path in saved:
        console.say(f"saved {path}", sys.stdout)
    console.say(f"done in {result.seconds:.1f} s: prompt {result.prompt_id}, {len(saved)} file(s) in {args.out}")
    return Exit.DONE


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = None
    try:
        console = Console(load_graph(args.workflow))
        return queue_workflow(args, console)
    except QueueError as exc:
        if console is not None:
            console.say(f"error: {exc}", sys.stderr)
        else:
            print(f"error: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        print("interrupted: the prompt was cancelled on the server", file=sys.stderr)
        return Exit.INTERRUPTED
