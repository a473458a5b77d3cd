"""The nodes' public API through a real ComfyUI server (``POST /prompt``), as API users and saved graphs meet it.

- ``tests/fixtures/v1_inputs_api.json``: an API graph written against the node inputs of the V1 nodes (ids, input
  names, values; nothing else) validates and runs unchanged: every saved API graph keeps working.
- Bad input: every input of every node, each bad value (wrong type, unknown choice, NaN, infinity, out of range)
  and each rule across inputs, is one 400 error on the node naming the input (``nodes/validation.py``).
"""

from __future__ import annotations

import copy
import json
import math
import re
import urllib.error
import urllib.request
from typing import Any

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
    assert f"[TaylorSeer] FP8 Loader: {MODEL_FILE}: weight memory" in log


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


def post_prompt(server_url: str, prompt: dict) -> tuple[int, dict]:
    """``POST /prompt`` of ``prompt`` as JSON (NaN and infinity as Python's json writes them): status and body."""
    request = urllib.request.Request(server_url + "/prompt", data=json.dumps({"prompt": prompt}).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


LATENT_OUTPUT = ["4", 0]  # EmptyHunyuanLatentVideo's LATENT, in every branch: a link of the wrong type


def input_cases(spec: list) -> list[tuple[str, Any]]:
    """(what is wrong, value) for one input from its ``/object_info`` entry: a wrong type, NaN and infinities, each
    side of the range, an unknown choice. A BOOLEAN takes any JSON value (ComfyUI converts with ``bool``) and a
    STRING any text: their rules are in ``RULE_CASES``."""
    kind, options = spec[0], (spec[1] if len(spec) > 1 else {})
    if isinstance(kind, list) or kind == "COMBO":
        return [("unknown choice", "bogus"), ("wrong type", 7)]
    if kind in ("INT", "FLOAT"):
        step = 1 if kind == "INT" else 0.5
        return [("wrong type", "four"), ("NaN", math.nan), ("infinity", math.inf), ("-infinity", -math.inf),
                ("below min", options["min"] - step), ("above max", options["max"] + step)]
    if kind in ("BOOLEAN", "STRING"):
        return []
    return [("wrong link type", LATENT_OUTPUT)]


RULE_CASES = [  # (node, inputs set together, the input the one error names)
    ("10", {"start_percent": 0.9, "end_percent": 0.1}, "end_percent"),
    ("20", {"start_percent": 0.7, "end_percent": 0.2}, "end_percent"),
    ("10", {"target_speedup": 0.5}, "target_speedup"),
    ("10", {"calibration": "auto", "target_speedup": 0.0}, "end_percent"),  # the input validate_inputs takes
    ("20", {"target_speedup": 0.99}, "target_speedup"),
    ("30", {"save_as": "../escaped"}, "save_as"),
]


def one_error_problem(server_url: str, prompt: dict, node: str, name: str) -> str | None:
    """None when ``prompt`` is refused (400) with exactly one error, on ``node``'s input ``name``; else what
    happened instead."""
    status, body = post_prompt(server_url, prompt)
    errors = {key: [(e.get("extra_info", {}).get("input_name"), e["message"], e["details"]) for e in value["errors"]]
              for key, value in body.get("node_errors", {}).items()}
    if status != 400 or list(errors) != [node] or len(errors[node]) != 1 or errors[node][0][0] != name:
        return f"HTTP {status}, node_errors {errors}"
    return None


@pytest.mark.parametrize("node", list(OUTPUT_OF))
def test_every_bad_input_gets_exactly_one_error_naming_it(server, pinned, node):
    """The table: every input of the node as ``/object_info`` describes it, each bad value alone in an otherwise
    valid graph, then the rules across inputs. Each is one 400 error on the node, naming the input."""
    client, class_type = server[0], pinned[node]["class_type"]
    with urllib.request.urlopen(f"{client.server}/object_info/{class_type}", timeout=30) as response:
        spec = json.loads(response.read())[class_type]["input"]
    cases = [(name, {name: value}, name, what) for section in ("required", "optional")
             for name, entry in spec.get(section, {}).items() for what, value in input_cases(entry)]
    cases += [(", ".join(inputs), inputs, named, "rule") for key, inputs, named in RULE_CASES if key == node]
    assert len(cases) > 5
    failures = []
    for label, inputs, named, what in cases:
        bad = copy.deepcopy(branch(pinned, node))
        bad[node]["inputs"].update(inputs)
        problem = one_error_problem(client.server, bad, node, named)
        if problem is not None:
            failures.append(f"{label} = {inputs} ({what}): {problem}")
    assert not failures, "\n".join(failures)
    assert post_prompt(client.server, branch(pinned, node))[0] == 200  # the same graph, unchanged, is valid


def test_nan_and_out_of_range_say_what_is_valid(server, pinned):
    bad = branch(pinned, "20")
    bad["20"]["inputs"]["threshold"] = math.nan
    assert "Value nan smaller than min of -1.0" in refused(server[0], bad)
    bad = branch(pinned, "10")
    bad["10"]["inputs"]["target_speedup"] = 0.5
    assert "Value 0.5 smaller than min of 1 (or 0: use interval)" in refused(server[0], bad)


def test_missing_model_files_are_listed_together(server, pinned):
    """The FP8 Loader's missing file is refused beside UNETLoader's, both by ComfyUI's own list check."""
    bad = {**branch(pinned, "30"), **branch(pinned, "10")}
    bad["30"]["inputs"]["unet_name"] = "nope.safetensors"
    bad["1"]["inputs"]["unet_name"] = "gone.safetensors"
    status, body = post_prompt(server[0].server, bad)
    assert status == 400
    for node in ("1", "30"):
        (error,) = body["node_errors"][node]["errors"]
        assert error["type"] == "value_not_in_list" and error["extra_info"]["input_name"] == "unet_name", error


def test_start_after_end_is_refused_at_validation(server, pinned):
    bad = {**branch(pinned, "10"), **branch(pinned, "20")}
    bad["10"]["inputs"].update(start_percent=0.9, end_percent=0.1)
    bad["20"]["inputs"].update(start_percent=0.7, end_percent=0.2)
    text = refused(server[0], bad)
    assert "TaylorSeer Apply: start_percent (0.9) is after end_percent (0.1)" in text
    assert "CG-Taylor Gate: start_percent (0.7) is after end_percent (0.2)" in text


def test_calibration_without_a_budget_is_refused_at_validation(server, pinned):
    bad = branch(pinned, "10")
    bad["10"]["inputs"].update(calibration="recalibrate", target_speedup=0.0)
    assert "TaylorSeer Apply: calibration 'recalibrate' needs a target_speedup above 0" in refused(server[0], bad)


def test_bad_save_as_is_refused_at_validation(server, pinned):
    bad = branch(pinned, "30")
    bad["30"]["inputs"]["save_as"] = "../escaped"
    text = refused(server[0], bad)
    assert "node 30 (FP8Loader)" in text and "FP8 Loader: " in text
