"""The run report reaches the front end: over the real server's websocket (``taylor_forecast.report``, keyed
by the id of the node that patched the model), and in process a failing sender never breaks sampling.

The websocket is read with aiohttp here (not the pack's own client), so the message is checked as any
browser or script would see it."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import sys
import types
import uuid

import pytest
import server_harness
from test_flux_taylorseer import planned_full_steps

EVENT = "taylor_forecast.report"


@pytest.fixture(scope="module")
def server(request):
    return server_harness.comfy_server(request)


@pytest.fixture(scope="module")
def workflow() -> dict:
    return json.loads(server_harness.DEMO_WORKFLOW.read_text())


async def _queue_and_listen(server, graph: dict, timeout_s: float = 300.0) -> tuple[str, list[dict]]:
    """Queue ``graph`` with a fresh client id; every JSON message of that client until the prompt ends."""
    import aiohttp

    client_id = uuid.uuid4().hex
    messages: list[dict] = []
    async with aiohttp.ClientSession() as session, session.ws_connect(f"{server.ws_url}?clientId={client_id}") as ws:
        async with session.post(f"{server.url}/prompt", json={"prompt": graph, "client_id": client_id}) as reply:
            assert reply.status == 200, await reply.text()
            prompt_id = (await reply.json())["prompt_id"]

        async def collect() -> None:
            async for message in ws:
                if message.type == aiohttp.WSMsgType.TEXT:
                    event = message.json()
                    messages.append(event)
                    if event["type"] in ("execution_success", "execution_error") and \
                            event["data"].get("prompt_id") == prompt_id:
                        return

        await asyncio.wait_for(collect(), timeout_s)
    return prompt_id, messages


def _reports(server, graph: dict) -> tuple[str, list[dict]]:
    prompt_id, messages = asyncio.run(_queue_and_listen(server, graph))
    assert "execution_success" in [m["type"] for m in messages], messages[-3:]
    return prompt_id, [m["data"] for m in messages if m["type"] == EVENT]


def test_taylorseer_report_arrives_keyed_by_its_node(server, workflow):
    graph = copy.deepcopy(workflow)
    graph["6"]["inputs"]["seed"] = 101  # a seed no other test uses: the sampler really runs
    apply, steps = graph["2"]["inputs"], graph["6"]["inputs"]["steps"]
    prompt_id, reports = _reports(server, graph)

    assert len(reports) == 1
    report = reports[0]
    expected_full = planned_full_steps(apply, steps)
    assert len(expected_full) == round(steps / apply["target_speedup"])  # the shipped demo: a budget
    assert report["node"] == "2" and report["prompt_id"] == prompt_id
    assert (report["kind"], report["level"], report["steps"]) == ("taylorseer", apply["level"], steps)
    assert report["full"] == len(expected_full)
    assert report["step_map"] == "".join("F" if i in expected_full else "T" for i in range(steps))
    assert report["evaluations"] == report["full"] + report["forecast"] == steps
    assert report["compute_ratio"] == pytest.approx(steps / len(expected_full))
    assert report["cache_peak_bytes"] > 0
    assert report["gate_errors"] == [None] * steps and report["threshold"] is None
    assert f"map: {report['step_map']}" in server.log_path.read_text()  # the log renders the same report


def test_gate_report_carries_per_step_errors_and_its_threshold(server, workflow):
    graph = copy.deepcopy(workflow)
    graph["6"]["inputs"]["seed"] = 102
    warmup, tail, cap = 3, 1, 4
    graph["2"] = {"class_type": "CGTaylorGate", "inputs": {
        "model": ["1", 0], "threshold": -1.0, "max_order": 1, "first_block_order": 2, "warmup_steps": warmup,
        "tail_steps": tail, "start_percent": 0.0, "end_percent": 1.0, "max_consecutive": cap, "clock": "step",
        "cache_device": "auto"}}
    steps = graph["6"]["inputs"]["steps"]
    _prompt_id, (report,) = _reports(server, graph)

    assert report["node"] == "2" and report["kind"] == "cg_gate"
    assert report["threshold"] > 0  # "auto" arrives resolved to the family's default
    assert len(report["step_map"]) == len(report["gate_errors"]) == steps
    assert report["full"] == report["step_map"].count("F")
    forced = [*range(warmup), *range(steps - tail, steps)]
    assert all(report["step_map"][i] == "F" and report["gate_errors"][i] is None for i in forced)
    assert any(error is not None for error in report["gate_errors"])
    assert "F" + "T" * (cap + 1) not in report["step_map"]


class _StandInServer:
    """Stands in for ComfyUI's ``server`` module with a PromptServer instance whose ``send_sync`` records
    or fails; the pack finds it in ``sys.modules`` as it finds the real one."""

    def __init__(self, fail: bool) -> None:
        self.fail, self.sent = fail, []
        self.last_prompt_id, self.client_id = "prompt-1", None

    def send_sync(self, event, data, sid=None) -> None:
        if self.fail:
            raise RuntimeError("websocket gone")
        self.sent.append((event, json.loads(json.dumps(data, allow_nan=False)), sid))


@pytest.mark.parametrize("fail", [False, True])
def test_in_process_report_is_sent_and_a_failing_sender_never_breaks_sampling(host, flux, conds, monkeypatch,
                                                                                caplog, fail):
    import torch

    stand_in = _StandInServer(fail)
    module = types.ModuleType("server")
    module.PromptServer = types.SimpleNamespace(instance=stand_in)
    monkeypatch.setitem(sys.modules, "server", module)
    model = host.run_node("TaylorSeerApply", flux, 2, 1, 1, 1, 0.0, 1.0, "residual", "step", "auto",
                          node_id="7")[0]
    with caplog.at_level(logging.INFO, logger="taylor_forecast"):
        out = host.ksample(model, *conds, host.empty_latent(), steps=8)
    assert torch.isfinite(out).all()
    if fail:
        assert "could not send the run report" in caplog.text and not stand_in.sent
        return
    ((event, report, sid),) = stand_in.sent
    assert (event, sid, report["node"], report["prompt_id"]) == (EVENT, None, "7", "prompt-1")
    assert f"map: {report['step_map']}" in caplog.text and len(report["step_map"]) == 8
