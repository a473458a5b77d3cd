"""A soak through the real server: 50 prompts queued one after another on the demo model (the shipped demo workflow
with mixed seeds, resolutions, samplers, cfg, both nodes and interrupted runs), each finished output equal, pixel
for pixel, to the same prompt run alone on a freshly cleared server, and the server's resident memory flat after the
first few prompts.

Memory bound: after prompt 5 (models loaded, ComfyUI's caches warm) the server's RSS (``VmRSS`` of
``/proc/<pid>/status``) may grow by at most ``RSS_SLACK`` over the remaining 45 prompts: a quarter of what keeping
one demo-sized run's cache per prompt would cost (``LEAK_PER_PROMPT`` x 45), so a per-prompt leak of that size fails.
"""

from __future__ import annotations

import copy
import io
import json
import time
import urllib.request

import pytest
import server_harness

PROMPTS = 50
INTERRUPT_EVERY = 10  # prompts 4, 14, 24, 34 and 44 are interrupted mid-sampling
WARM = 5
LEAK_PER_PROMPT = 2 * 1024 * 1024  # > the largest run cache of these prompts (the log's "cache peak": 900 KiB, modules)
RSS_SLACK = LEAK_PER_PROMPT * (PROMPTS - WARM) // 4
VARIANTS = [  # (node, level, sampler, cfg, seed, size, batch)
    ("TaylorSeerApply", "residual", "euler", 4.0, 1, 64, 1),
    ("TaylorSeerApply", "residual", "dpmpp_2m", 1.0, 2, 96, 1),
    ("TaylorSeerApply", "output", "heun", 4.0, 3, 64, 1),
    ("CGTaylorGate", None, "euler", 4.0, 4, 96, 1),
    ("CGTaylorGate", None, "dpmpp_2m", 1.0, 1, 64, 2),
    ("TaylorSeerApply", "modules", "euler", 4.0, 5, 80, 1),
    ("TaylorSeerApply", "residual", "euler_ancestral", 4.0, 6, 64, 1),
    ("CGTaylorGate", None, "heun", 4.0, 7, 64, 1),
]


@pytest.fixture(scope="module")
def server(request):
    from comfy_client import ComfyClient

    comfy = server_harness.comfy_server(request)
    return ComfyClient(comfy.url, timeout_s=300), comfy


def _get(server, path: str) -> dict:
    with urllib.request.urlopen(server.url + path, timeout=30) as response:
        return json.loads(response.read())


def _defaults(server, class_type: str) -> dict:
    """The server's default for every required widget input of ``class_type`` (``/object_info``)."""
    spec = _get(server, f"/object_info/{class_type}")[class_type]["input"]["required"]
    return {name: options[1]["default"] for name, options in spec.items()
            if len(options) > 1 and isinstance(options[1], dict) and "default" in options[1]}


def graph(server, variant: tuple, steps: int = 8) -> dict:
    node, level, sampler, cfg, seed, size, batch = variant
    prompt = json.loads(server_harness.DEMO_WORKFLOW.read_text())
    if node == "TaylorSeerApply":
        prompt["2"]["inputs"]["level"] = level
    else:
        prompt["2"] = {"class_type": node, "inputs": {**_defaults(server, node), "model": ["1", 0]}}
    prompt["5"]["inputs"].update(width=size, height=size, batch_size=batch)
    prompt["6"]["inputs"].update(steps=steps, cfg=cfg, sampler_name=sampler, seed=seed)
    prompt["8"]["inputs"]["filename_prefix"] = "taylor_soak"
    return prompt


def pixels(client, entry: dict) -> list[bytes]:
    from comfy_client import output_images
    from PIL import Image

    return [Image.open(io.BytesIO(client.image(info))).tobytes() for info in output_images(entry)]


def rss_bytes(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS line")


def interrupt_mid_sampling(client, comfy, prompt: dict) -> None:
    """Queue a long run, POST /interrupt once its TaylorSeer plan is in the server log (sampling has started),
    and check that the server reports it interrupted."""
    plans = comfy.log_path.read_text().count("[TaylorSeer] plan (")
    prompt_id = client.queue(prompt)
    while comfy.log_path.read_text().count("[TaylorSeer] plan (") == plans:
        time.sleep(0.05)
    urllib.request.urlopen(urllib.request.Request(comfy.url + "/interrupt", data=b"{}", method="POST"), timeout=30)
    while True:
        entry = _get(comfy, f"/history/{prompt_id}").get(prompt_id)
        if entry and entry.get("status", {}).get("completed") is not None:
            break
        time.sleep(0.05)
    assert "execution_interrupted" in [kind for kind, _data in entry["status"]["messages"]]


def test_fifty_prompts_match_their_runs_alone_and_memory_stays_flat(server):
    import comfy_host

    client, comfy = server
    pid = int(comfy_host.pid_file(comfy.port).read_text())
    references = []
    for variant in VARIANTS:
        client.free()  # alone and fresh: no cached node output, the model loaded anew
        references.append(pixels(client, client.run(graph(comfy, variant))))
    long_run = graph(comfy, VARIANTS[0], steps=400)
    rss, mismatches = [], []
    for index in range(PROMPTS):
        if index % INTERRUPT_EVERY == 4:
            interrupt_mid_sampling(client, comfy, copy.deepcopy(long_run))
        else:
            variant = index % len(VARIANTS)  # consecutive prompts differ: the sampler always runs again
            if pixels(client, client.run(graph(comfy, VARIANTS[variant]))) != references[variant]:
                mismatches.append((index, VARIANTS[variant]))
        rss.append(rss_bytes(pid))
    growth = max(rss[WARM:]) - rss[WARM - 1]
    print(f"\nsoak RSS: after prompt {WARM} {rss[WARM - 1] / 2**20:.1f} MiB, after prompt {PROMPTS} "
          f"{rss[-1] / 2**20:.1f} MiB, peak after warm-up {max(rss[WARM:]) / 2**20:.1f} MiB, growth "
          f"{growth / 2**20:.1f} MiB (bound {RSS_SLACK / 2**20:.1f} MiB)")
    assert not mismatches, f"outputs differ from the same prompt run alone: {mismatches}"
    assert growth <= RSS_SLACK, [f"{r / 2**20:.1f}" for r in rss]
