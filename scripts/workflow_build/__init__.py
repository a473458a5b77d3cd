"""The shipped workflows, built from ComfyUI's official templates (``scripts/build_workflows.py`` is the command).

Modules, one job each: ``specs`` (which workflows, on which templates, with which settings: edit here to change
what ships), ``widgets`` (the front end's widget rule over ``/object_info``), ``graph`` (a UI graph and its
edits), ``insert`` (the pack's nodes put into a template), ``note`` (the note that explains a workflow),
``build`` (one template to one workflow, and all of them), ``api`` (UI graph to API prompt), ``thumbnail``
(the template browser's card), ``server`` (``/object_info`` from a running or freshly started ComfyUI).
"""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
PACK_ID = "comfyui-taylor-forecast"  # the pack's registry id (pyproject name), for ComfyUI's missing-node help
