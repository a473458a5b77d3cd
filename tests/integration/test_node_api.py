"""The nodes' public API through a real ComfyUI server (``POST /prompt``), as API users and saved graphs meet it.

- ``tests/fixtures/v1_inputs_api.json``: an API graph written against the node inputs of the V1 nodes (ids, input
  names, values; nothing else) validates and runs unchanged: every saved API graph keeps working.
- Range: ComfyUI skips its own min/max check for every input a node's ``validate_inputs`` names (0.3.75 and 0.33
  alike); the pack checks both bounds of those from its schema, with a message naming the node and the input.
  Inputs it does not name keep ComfyUI's own check.
- Cross-input errors (start_percent after end_percent) are refused at validation.
"""

from __future__ import annotations

import json
import re

import pytest
import server_harness
from comfy_harness import REPO

PINNED = REPO / "tests" / "fixtures" / "v1_inputs_api.json"
MODEL_FILE = "taylor_test_wan.safetensors"


@pytest.fixture(scope="module")
def server(host, tmp_path_factory):
    """A server whose diffusion_models folder holds a tiny random-weight Wan 2.1 (ComfyUI's stock detection)."""
    from comfy_client import ComfyClient
    from safetensors.torch import save_file

    base = tmp_path_factory.mktemp("node_api_server")
    (base / "models" / "diffusion_models").mkdir(parents=True)
    save_file(host.tiny_wan_state_dict(0), str(base / "models" / "diffusion_models" / MODEL_FILE))
    with server_harness.models_server(base, ["diffusion_models"]) as comfy:
        yield ComfyClient(comfy.url, timeout_s=300), comfy.log_path, base / "output"


@pytest.fixture()
def pinned() -> dict:
    """A fresh copy of the pinned graph (tests edit it)."""
    return json.loads(PINNED.read_text())


def test_api_graph_of_the_v1_inputs_validates_and_runs(server, pinned):
    client, log_path, output = server
    start = len(log_path.read_text(errors="replace"))
    entry = client.run(pinned)
    saved = [item for node in ("12", "22", "32") for item in entry["outputs"][node]["latents"]]
    assert len(saved) == 3 and all((output / i["subfolder"] / i["filename"]).stat().st_size > 0 for i in saved)
    log = log_path.read_text(errors="replace")[start:]
    assert len(re.findall(r"\[TaylorSeer\] steps 6, evaluations 6, ", log)) == 2  # TaylorSeer Apply, the gate
    assert "[TaylorSeer] gate errors:" in log  # the gate decided (threshold auto for wan)
    assert f"[FP8 Loader] {MODEL_FILE}: weight memory" in log


OUTPUT_OF = {"10": "12", "20": "22", "30": "32"}  # each node of ours -> the output node its branch ends in


def branch(prompt: dict, node: str) -> dict:
    """The part of ``prompt`` that the output of ``node``'s branch needs (ComfyUI runs the valid outputs of a
    prompt and reports the others, so a refused prompt must have no other output)."""
    needed, todo = set(), [OUTPUT_OF[node]]
    while todo:
        needed.add(todo[-1])
        todo += [v[0] for v in prompt[todo.pop()]["inputs"].values() if isinstance(v, list) and v[0] not in needed]
    return {k: v for k, v in prompt.items() if k in needed}


def refused(client, prompt: dict) -> str:
    """The server's validation errors of ``prompt`` (ComfyError's text); fails if the prompt was accepted."""
    from comfy_client import ComfyError

    with pytest.raises(ComfyError) as error:
        client.queue(prompt)
    return str(error.value)


@pytest.mark.parametrize(("node", "name", "value", "message"), [
    ("10", "interval", 0, "TaylorSeer Apply: interval (0) is below its minimum 1"),
    ("10", "interval", 51, "TaylorSeer Apply: interval (51) is above its maximum 50"),
    ("10", "max_order", 5, "TaylorSeer Apply: max_order (5) is above its maximum 4"),
    ("10", "warmup_steps", -2, "TaylorSeer Apply: warmup_steps (-2) is below its minimum -1"),
    ("10", "tail_steps", 101, "TaylorSeer Apply: tail_steps (101) is above its maximum 100"),
    ("10", "start_percent", -0.5, "TaylorSeer Apply: start_percent (-0.5) is below its minimum 0.0"),
    ("10", "end_percent", 1.5, "TaylorSeer Apply: end_percent (1.5) is above its maximum 1.0"),
    ("20", "max_consecutive", 101, "CG-Taylor Gate: max_consecutive (101) is above its maximum 100"),
    ("20", "first_block_order", -1, "CG-Taylor Gate: first_block_order (-1) is below its minimum 0"),
    ("20", "threshold", 11.0, "Value 11.0 bigger than max of 10.0"),  # not named: ComfyUI's own check
])
def test_out_of_range_input_is_refused_at_validation(server, pinned, node, name, value, message):
    bad = branch(pinned, node)
    bad[node]["inputs"][name] = value
    text = refused(server[0], bad)
    assert message in text and f"node {node} ({bad[node]['class_type']})" in text, text


def test_start_after_end_is_refused_at_validation(server, pinned):
    bad = {**branch(pinned, "10"), **branch(pinned, "20")}
    bad["10"]["inputs"].update(start_percent=0.9, end_percent=0.1)
    bad["20"]["inputs"].update(start_percent=0.7, end_percent=0.2)
    text = refused(server[0], bad)
    assert "TaylorSeer Apply: start_percent (0.9) is after end_percent (0.1)" in text
    assert "CG-Taylor Gate: start_percent (0.7) is after end_percent (0.2)" in text


def test_bad_save_as_is_refused_at_validation(server, pinned):
    bad = branch(pinned, "30")
    bad["30"]["inputs"]["save_as"] = "../escaped"
    text = refused(server[0], bad)
    assert "node 30 (FP8Loader)" in text and "FP8 Loader: " in text


def test_unknown_choice_stops_the_prompt_with_the_reason(server, pinned):
    """0.33 refuses a value outside a V3 combo's options at validation. 0.3.75's validation checks only V1's
    list-typed combos, not V3's ``COMBO`` inputs: there the pack's own check stops the run at the node, before
    any sampling, with the reason."""
    from comfy_client import ComfyError

    client, log_path, _output = server
    bad = branch(pinned, "10")
    bad["10"]["inputs"]["level"] = "everything"
    with pytest.raises(ComfyError) as error:
        client.run(bad)
    text = str(error.value)
    assert "node 10 (TaylorSeerApply)" in text, text
    assert "level: 'everything' not in" in text or "level 'everything' is not one of" in text, text
