"""The headless client (``python -m taylor_queue``) against the real server, as a user runs it: from the system
Python without site-packages (``-S``: standard library only), on the shipped demo workflow. Every way it can
end is tested: done, a graph caught before sending, a graph the server refuses, a run that fails on the
server, a timeout (the prompt is then cancelled on the server) and a refused connection."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
import time
import urllib.request

import pytest
import server_harness
from comfy_harness import REPO
from test_flux_taylorseer import planned_full_steps

PYTHON = shutil.which("python3") or sys.executable
EXIT = {"done": 0, "usage": 2, "validation": 3, "server": 4, "timeout": 5, "unreachable": 6}


@pytest.fixture(scope="module")
def server(request):
    return server_harness.comfy_server(request)


@pytest.fixture
def workflow() -> dict:
    return json.loads(server_harness.DEMO_WORKFLOW.read_text())


def queue(tmp_path, graph: dict | None, *args: str, server_url: str) -> subprocess.CompletedProcess:
    path = tmp_path / "graph_api.json"
    if graph is not None:
        path.write_text(json.dumps(graph))
    return subprocess.run([PYTHON, "-S", "-m", "taylor_queue", str(path), "--server", server_url,
                           "--out", str(tmp_path / "out"), *args],
                          cwd=REPO, capture_output=True, text=True, timeout=600)


def server_get(server, path: str) -> dict:
    with urllib.request.urlopen(server.url + path, timeout=30) as response:
        return json.loads(response.read())


def test_queues_follows_reports_and_downloads(server, workflow, tmp_path):
    steps = 12
    result = queue(tmp_path, workflow, "--set", f"KSampler.steps={steps}", "--set", "seed=301",
                   server_url=server.url)
    assert result.returncode == EXIT["done"], result.stderr
    assert 'set node 6 "KSampler": steps = 12' in result.stderr and "seed = 301" in result.stderr
    # the progress bar, fed by the websocket, in tqdm's layout as ComfyUI's console draws it
    assert re.search(rf'node 6 "KSampler": 100%\|{"#" * 30}\| {steps}/{steps} \[\d\d:\d\d<00:00, ', result.stderr)
    apply = workflow["2"]["inputs"]
    full = planned_full_steps(apply, steps)
    step_map = "".join("F" if i in full else "T" for i in range(steps))
    assert re.search(rf'TaylorSeer on node 2 "TaylorSeer Apply": steps {steps}, evaluations {steps}, '
                     rf"full {len(full)}, forecast {steps - len(full)}, compute ratio", result.stdout)
    assert f"map: {step_map}" in result.stdout
    saved = sorted((tmp_path / "out").glob("*.png"))
    assert len(saved) == workflow["5"]["inputs"]["batch_size"]
    assert all(path.read_bytes().startswith(b"\x89PNG") for path in saved)


def test_a_graph_that_does_not_match_the_server_is_caught_before_sending(server, workflow, tmp_path):
    graph = copy.deepcopy(workflow)
    graph["2"]["inputs"]["level"] = "everything"
    graph["6"]["inputs"].update(steps=0, model=["42", 0])
    graph["7"]["inputs"]["strength"] = 1.0
    graph["8"]["inputs"]["images"] = ["5", 0]
    graph["99"] = {"class_type": "NoSuchNode", "inputs": {}}
    history_before = len(server_get(server, "/history"))
    result = queue(tmp_path, graph, server_url=server.url)
    assert result.returncode == EXIT["validation"], result.stderr
    for expected in ("nothing was queued", "level = 'everything' is not one of its choices",
                     "steps = 0 is below its minimum 1", "'model' is linked to node 42, which is not in the graph",
                     "has no input 'strength'", "'images' expects IMAGE but is linked to a LATENT output",
                     "unknown node type 'NoSuchNode'"):
        assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert len(server_get(server, "/history")) == history_before


def test_a_graph_the_server_refuses_exits_with_its_reason(server, workflow, tmp_path):
    result = queue(tmp_path, workflow, "--set", "start_percent=0.9", "--set", "end_percent=0.1",
                   server_url=server.url)
    assert result.returncode == EXIT["server"], result.stderr
    assert "the server refused the prompt" in result.stderr
    assert result.stderr.count("start_percent (0.9) is after end_percent (0.1)") == 1


def test_a_refusal_names_the_node_and_the_input(server, workflow, tmp_path):
    result = queue(tmp_path, workflow, "--no-validate", "--set", "KSampler.steps=0", server_url=server.url)
    assert result.returncode == EXIT["server"], result.stderr
    assert "node 6 (KSampler), input 'steps': Value 0 smaller than min of 1" in result.stderr, result.stderr


def test_a_run_that_fails_on_the_server_exits_with_the_failing_node(server, workflow, tmp_path):
    graph = copy.deepcopy(workflow)
    graph["6"]["inputs"]["seed"] = 302
    graph["8"]["inputs"]["filename_prefix"] = "../../outside_the_output_folder"  # refused when saving
    result = queue(tmp_path, graph, server_url=server.url)
    assert result.returncode == EXIT["server"], result.stderr
    assert 'node 8 "Save" (SaveImage) failed' in result.stderr
    assert "TaylorSeer on node 2" in result.stdout  # the sampler ran before the failing node


def test_a_timeout_exits_and_cancels_the_prompt_on_the_server(server, workflow, tmp_path):
    graph = copy.deepcopy(workflow)
    graph["6"]["inputs"].update(seed=303, steps=200)
    result = queue(tmp_path, graph, "--timeout", "1", server_url=server.url)
    assert result.returncode == EXIT["timeout"], result.stderr
    assert "did not finish within --timeout 1 s; it was cancelled on the server" in result.stderr
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = server_get(server, "/queue")
        if not state["queue_running"] and not state["queue_pending"]:
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"the prompt was not cancelled: {state}")
    prompt_id = re.search(r"queued prompt (\S+)", result.stderr).group(1)
    entry = server_get(server, f"/history/{prompt_id}").get(prompt_id)  # absent when cancelled while pending
    if entry is not None:
        assert "execution_interrupted" in [kind for kind, _ in entry["status"]["messages"]]


def test_a_refused_connection_exits_with_a_readable_message(workflow, tmp_path):
    result = queue(tmp_path, workflow, server_url=f"http://127.0.0.1:{server_harness.free_port()}")
    assert result.returncode == EXIT["unreachable"]
    assert "cannot reach ComfyUI at http://127.0.0.1:" in result.stderr and "refused" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("content", "args", "message"), [
    ({"nodes": [], "links": []}, (), "this is a UI-format workflow; queue the API format instead"),
    (None, (), "cannot read"),
    ("graph", ("--set", "steps"), "expected NODE.input=value or input=value"),
])
def test_bad_files_and_arguments_exit_before_contacting_the_server(workflow, tmp_path, content, args, message):
    graph = workflow if content == "graph" else content
    result = queue(tmp_path, graph, *args, server_url=f"http://127.0.0.1:{server_harness.free_port()}")
    assert result.returncode == EXIT["usage"] and message in result.stderr, result.stderr
