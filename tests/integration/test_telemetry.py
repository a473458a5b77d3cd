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


def _log_since(server, start: int) -> str:
    return server.log_path.read_text(errors="replace")[start:]


def _log_size(server) -> int:
    return len(server.log_path.read_text(errors="replace"))


def test_gate_plan_line_says_the_gate_decides(server, workflow):
    """Without a budget the gate decides every step but the forced ones at run time: the plan line shows those
    as ``?`` and says so, never a map of forecasts the run would not follow."""
    graph = copy.deepcopy(workflow)
    graph["5"]["inputs"]["batch_size"] = 1
    graph["6"]["inputs"].update(seed=103, steps=12)
    graph["2"] = {"class_type": "CGTaylorGate", "inputs": {"model": ["1", 0], "warmup_steps": 2, "tail_steps": 1,
                                                           "threshold": -1.0, "max_order": 1, "first_block_order": 2,
                                                           "start_percent": 0.0, "end_percent": 1.0,
                                                           "max_consecutive": 4, "clock": "step",
                                                           "cache_device": "auto"}}
    start = _log_size(server)
    _prompt_id, (report,) = _reports(server, graph)
    log = _log_since(server, start)
    assert f"): FF{'?' * 9}F (F computed, ? the gate decides at the step)" in log
    assert "T" * 5 not in report["step_map"]  # max_consecutive 4: the gate computed inside the stretch


def _two_stage_graph(workflow: dict) -> dict:
    """The Wan 2.2 pattern on the demo model: two identical TaylorSeer Apply nodes (2 and 12) on one loader, each
    feeding a KSamplerAdvanced, steps 0-10 then 10-20 of one 20-step schedule."""
    graph = copy.deepcopy(workflow)
    graph["5"]["inputs"]["batch_size"] = 1
    graph["12"] = copy.deepcopy(graph["2"])
    shared = {k: graph["6"]["inputs"][k] for k in ("cfg", "sampler_name", "scheduler", "positive", "negative")}
    graph["6"] = {"class_type": "KSamplerAdvanced", "inputs": {
        **shared, "model": ["2", 0], "add_noise": "enable", "noise_seed": 104, "steps": 20, "start_at_step": 0,
        "end_at_step": 10, "return_with_leftover_noise": "enable", "latent_image": ["5", 0]}}
    graph["16"] = {"class_type": "KSamplerAdvanced", "inputs": {
        **shared, "model": ["12", 0], "add_noise": "disable", "noise_seed": 104, "steps": 20, "start_at_step": 10,
        "end_at_step": 10000, "return_with_leftover_noise": "disable", "latent_image": ["6", 0]}}
    graph["7"]["inputs"]["samples"] = ["16", 0]
    return graph


def test_identical_nodes_on_one_model_each_report_their_own_run(server, workflow):
    """ComfyUI would run only the first of two identical nodes and hand its output to both samplers; the nodes
    are not idempotent for its cache, so each runs and each run reports (and logs) as its own node."""
    graph = _two_stage_graph(workflow)
    start = _log_size(server)
    prompt_id, reports = _reports(server, graph)
    expected = "".join("F" if i in planned_full_steps(graph["2"]["inputs"], 10) else "T" for i in range(10))
    assert sorted(r["node"] for r in reports) == ["12", "2"]
    assert [(r["steps"], r["step_map"], r["prompt_id"]) for r in reports] == [(10, expected, prompt_id)] * 2
    log = _log_since(server, start)
    for node in ("2", "12"):
        assert f"map: {expected} [node {node}, prompt {prompt_id}]" in log


@pytest.mark.parametrize("sampler", ["heun", "dpmpp_2s_ancestral", "dpmpp_sde"])
def test_a_budget_counts_steps_and_the_report_says_evaluations_apart(server, workflow, sampler):
    """Two model evaluations per step (one on the last): the budget's round(steps / target_speedup) steps are
    computed, each with every evaluation it has, so the step ratio is the one asked for and the evaluations'
    ratio is said apart (log and report), never mixed with the steps."""
    graph = copy.deepcopy(workflow)
    graph["5"]["inputs"]["batch_size"] = 1
    steps, speedup = 12, 3.0
    graph["6"]["inputs"].update(seed=105, steps=steps, sampler_name=sampler)
    graph["2"]["inputs"].update(target_speedup=speedup, warmup_steps=1)
    start = _log_size(server)
    _prompt_id, (report,) = _reports(server, graph)
    full_steps = planned_full_steps(graph["2"]["inputs"], steps)
    assert len(full_steps) == round(steps / speedup) == report["full_steps"] == report["step_map"].count("F")
    assert report["step_map"] == "".join("F" if i in full_steps else "T" for i in range(steps))
    assert report["step_ratio"] == steps / len(full_steps) == speedup
    # every step but the last has two evaluations; step 0 and the last step are computed
    assert report["evaluations"] == 2 * steps - 1 and report["full"] == 2 * len(full_steps) - 1
    assert report["compute_ratio"] == pytest.approx(report["evaluations"] / report["full"])
    assert (f"evaluations {2 * steps - 1}, full {report['full']}, forecast {report['forecast']}, compute ratio "
            f"{report['compute_ratio']:.2f}x, computed steps {len(full_steps)}/{steps} (3.00x)") in \
        _log_since(server, start)


def test_an_api_prompt_without_settings_runs_the_nodes_defaults(host, server, workflow):
    """A TaylorSeer Apply given only its model gets the node's defaults: the recommended budget (target_speedup
    3, warm-up auto: 1 with a budget); every line it logs names its node and the prompt."""
    graph = copy.deepcopy(workflow)
    graph["5"]["inputs"]["batch_size"] = 1
    graph["6"]["inputs"]["seed"] = 106
    graph["2"]["inputs"] = {"model": ["1", 0]}
    steps = graph["6"]["inputs"]["steps"]
    defaults = {name: spec.default for name, spec in host.schema_inputs("TaylorSeerApply").items()
                if name != "model"}
    resolved = host.pack_module("nodes.config").ForecastConfig(**defaults)
    assert (resolved.target_speedup, resolved.warmup_steps) == (3.0, 1)
    start = _log_size(server)
    prompt_id, (report,) = _reports(server, graph)
    planned = planned_full_steps({**defaults, "warmup_steps": resolved.warmup_steps}, steps)
    assert report["step_map"] == "".join("F" if i in planned else "T" for i in range(steps))
    ours = [line for line in _log_since(server, start).splitlines() if "[TaylorSeer]" in line]
    assert len(ours) >= 3 and all(line.endswith(f"[node 2, prompt {prompt_id}]") for line in ours), ours


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
    model = host.run_node("TaylorSeerApply", flux, target_speedup=0.0, interval=2, max_order=1, warmup_steps=1,
                          tail_steps=1, level="residual", node_id="7")[0]
    with caplog.at_level(logging.INFO, logger="taylor_forecast"):
        out = host.ksample(model, *conds, host.empty_latent(), steps=8)
    assert torch.isfinite(out).all()
    if fail:
        assert "could not send the run report" in caplog.text and not stand_in.sent
        return
    ((event, report, sid),) = stand_in.sent
    assert (event, sid, report["node"], report["prompt_id"]) == (EVENT, None, "7", "prompt-1")
    assert f"map: {report['step_map']}" in caplog.text and len(report["step_map"]) == 8
