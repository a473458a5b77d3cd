"""The shipped demo workflow through a real ComfyUI server and its HTTP API (POST /prompt, /history, /view),
as a headless user queues it: it runs, TaylorSeer reports, and bad input is refused at validation."""

from __future__ import annotations

import copy
import json
import urllib.error
import urllib.request

import pytest
import server_harness


@pytest.fixture(scope="module")
def server(request):
    from comfy_client import ComfyClient

    comfy = server_harness.comfy_server(request)
    return ComfyClient(comfy.url, timeout_s=300), comfy.log_path


@pytest.fixture(scope="module")
def workflow() -> dict:
    return json.loads(server_harness.DEMO_WORKFLOW.read_text())


def get_json(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_demo_workflow_runs_and_reports(server, workflow):
    """It runs, logs its report, and serves it over HTTP by prompt id (no websocket needed)."""
    from comfy_client import output_images

    client, log_path = server
    prompt_id = client.queue(workflow)
    entry = client.wait(prompt_id)
    images = output_images(entry)
    assert len(images) == workflow["5"]["inputs"]["batch_size"]
    assert client.image(images[0]).startswith(b"\x89PNG")
    steps = workflow["6"]["inputs"]["steps"]
    assert f"[TaylorSeer] steps {steps}, evaluations {steps}," in log_path.read_text()
    status, reports = get_json(f"{client.server}/taylor_forecast/reports/{prompt_id}")
    assert status == 200 and list(reports) == ["2"], reports  # the TaylorSeer Apply node's id
    report = reports["2"]
    assert report["prompt_id"] == prompt_id and report["node"] == "2" and report["steps"] == steps
    assert len(report["step_map"]) == steps and {"summary", "fallbacks", "modules_memory"} <= set(report)
    assert get_json(f"{client.server}/taylor_forecast/reports")[1][prompt_id] == reports
    assert get_json(f"{client.server}/taylor_forecast/reports/not-a-prompt")[0] == 404


def test_bad_input_is_refused_at_validation_with_the_reason(server, workflow):
    from comfy_client import ComfyError

    client, _log = server
    bad = copy.deepcopy(workflow)
    bad["2"]["inputs"].update(start_percent=0.9, end_percent=0.1)
    with pytest.raises(ComfyError, match=r"start_percent \(0.9\) is after end_percent \(0.1\)"):
        client.queue(bad)
