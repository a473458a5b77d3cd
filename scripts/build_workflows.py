"""Build the shipped workflows from ComfyUI's official templates.

For every entry of ``SPECS`` this reads the official template (the ``comfyui-workflow-templates`` packages
ComfyUI installs), inserts TaylorSeer Apply or the CG-Taylor Gate on the model input of every sampler (or
guider), applies the entry's edits (a loader swapped for the FP8 Loader, alternative branches dropped), adds a
note saying which model files go where, and writes:

- ``workflows/<name>.json``: the UI graph (ComfyUI lists it in its template browser, under the pack's name);
- ``workflows/<name>.jpg``: its thumbnail in the template browser (a card drawn here: the node chain, the
  settings and the step plan; nothing is copied from the templates' media);
- ``workflows/api/<name>_api.json``: the same graph in API format, for ``POST /prompt``.

Widget order, defaults and display names come from a running server's ``/object_info``, so a node whose inputs
change gives different files (``tests/integration/test_workflows.py`` fails until they are rebuilt). The specs
(which workflows, templates and settings) are in ``scripts/workflow_build/specs.py``; the package's other
modules do the building (the demo's graph, on no official template: ``scripts/workflow_build/demo.py``).

Usage (host Python, which has the template packages)::

    .host/venv/bin/python scripts/build_workflows.py            # starts the host's server on a free port
    .host/venv/bin/python scripts/build_workflows.py --server http://127.0.0.1:8188
    .host/venv/bin/python scripts/build_workflows.py --check    # exit 1 if a committed file is stale
"""

from __future__ import annotations

import argparse

from workflow_build import REPO
from workflow_build.build import build_all
from workflow_build.server import server_object_info


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", help="a running ComfyUI with this pack (default: start the host's on a free port)")
    parser.add_argument("--check", action="store_true", help="compare with the committed files instead of writing")
    args = parser.parse_args()
    object_info = server_object_info(args.server)
    built = build_all(object_info, with_thumbnails=not args.check)
    stale = [p for p, text in built.json_files.items()
             if not (REPO / p).exists() or (REPO / p).read_text(encoding="utf-8") != text]
    if args.check:
        print("\n".join(f"stale: {p}" for p in stale) or "all workflows up to date")
        return 1 if stale else 0
    for rel, text in built.json_files.items():
        (REPO / rel).parent.mkdir(parents=True, exist_ok=True)
        (REPO / rel).write_text(text, encoding="utf-8")
    for rel, data in built.thumbnails.items():
        (REPO / rel).write_bytes(data)
    print(f"wrote {len(built.json_files)} workflow files and {len(built.thumbnails)} thumbnails "
          f"({len(stale)} changed)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
