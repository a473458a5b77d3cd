"""The README's input tables, generated from the nodes' schema as a running server serves it (``/object_info``).

The tooltips live in one place, the node definitions; this writes them, with each input's type, default and
range, between the README's ``<!-- inputs:NodeType -->`` and ``<!-- /inputs -->`` markers.
``tests/integration/test_docs.py`` fails while a table differs from what the server says. Generate them on the
oldest supported ComfyUI (the 0.3.75 host): a newer one may offer more feature-detected combo choices.

Usage (host Python)::

    .host/venv/bin/python scripts/node_docs.py            # starts the host's server on a free port
    .host/venv/bin/python scripts/node_docs.py --server http://127.0.0.1:8188
    .host/venv/bin/python scripts/node_docs.py --check    # exit 1 if a table is stale
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
BLOCK = re.compile(r"(<!-- inputs:(\w+) -->\n)(.*?)(<!-- /inputs -->)", re.S)
SECTIONS = (("required", ""), ("optional", " (optional)"))


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _number(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _kind(spec: list) -> tuple[str, list | None, dict]:
    """(type shown, combo choices or None, options) of one ``/object_info`` input: V1 lists a combo's choices
    in place of its type, V3 sends ``COMBO`` with an ``options`` list."""
    kind, options = spec[0], (spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {})
    if isinstance(kind, list):
        return "COMBO", kind, options
    if kind == "COMBO":
        return "COMBO", list(options.get("options", [])), options
    return str(kind), None, options


def _range(kind: str, choices: list | None, options: dict) -> str:
    if choices is not None:  # a combo without a default lists the server's files: not part of the schema
        return " / ".join(f"`{c}`" for c in choices) if "default" in options else "the server's files"
    if kind in ("INT", "FLOAT") and "min" in options and "max" in options:
        return f"{_number(options['min'])} to {_number(options['max'])}"
    return ""


def render(info: dict) -> str:
    """The markdown table of one node's inputs (``info``: its ``/object_info`` entry), in the node's order."""
    rows = ["| input | type | default | range / choices | what it does (the node's tooltip) |", "|---|---|---|---|---|"]
    for section, suffix in SECTIONS:
        inputs = info["input"].get(section, {})
        for name in info.get("input_order", {}).get(section, list(inputs)):
            kind, choices, options = _kind(inputs[name])
            default = options.get("default", "")
            default = "" if default == "" else f"`{_number(default)}`"
            rows.append(f"| `{name}`{suffix} | {kind} | {default} | "
                        f"{_cell(_range(kind, choices, options))} | {_cell(options.get('tooltip', ''))} |")
    return "\n".join(rows) + "\n"


def rewrite(text: str, object_info: dict) -> str:
    """``text`` with every marked block replaced by the table of its node type (a missing type is an error)."""
    def table(match: re.Match) -> str:
        node_type = match.group(2)
        if node_type not in object_info:
            raise KeyError(f"README names node type {node_type!r}, which the server does not define")
        return match.group(1) + render(object_info[node_type]) + match.group(4)
    return BLOCK.sub(table, text)


def main() -> int:
    sys.path.insert(0, str(REPO / "scripts"))
    from workflow_build.server import server_object_info

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", help="a running ComfyUI with this pack (default: start the host's on a free port)")
    parser.add_argument("--check", action="store_true", help="compare with the README instead of writing")
    args = parser.parse_args()
    current = README.read_text(encoding="utf-8")
    updated = rewrite(current, server_object_info(args.server))
    if args.check:
        print("README input tables up to date" if updated == current else "stale: README input tables")
        return 0 if updated == current else 1
    README.write_text(updated, encoding="utf-8")
    print("README input tables " + ("rewritten" if updated != current else "already up to date"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
