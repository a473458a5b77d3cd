"""The FP8 Loader through a real ComfyUI server (``POST /prompt``), as a user re-running a saved graph meets it.

- Booting the server (the pack's import, its node schemas, ``/object_info``) logs nothing about quantized layers:
  the feature probes are silent. The same log lines do appear once a quantized model is really loaded.
- ``save_as``: re-running the same graph after its FP8 Loader left the cache skips the save (same source and
  options); a different model under that name is one error naming the node and ``save_as``, before quantizing;
  a name no file system takes is refused at validation (a 400), before anything runs.
"""

from __future__ import annotations

import json
import os
import stat
import urllib.request

import pytest
import server_harness
from comfy_harness import REPO

MODEL_FILE = "taylor_test_wan.safetensors"
PROBE_LINES = ("Found quantization metadata", "QuantizedTensor")  # what ComfyUI logs loading a quantized layer
QUANTIZED = "[TaylorSeer] FP8 Loader: taylor_test_wan.safetensors: weight memory"  # one line per quantization


@pytest.fixture(scope="module")
def server(host, tmp_path_factory):
    """``(client, log path, diffusion_models folder, boot log)``: a server whose diffusion_models folder holds a
    tiny random-weight Wan 2.1; the boot log is the server's log after start and one ``GET /object_info``."""
    from comfy_client import ComfyClient
    from safetensors.torch import save_file

    base = tmp_path_factory.mktemp("fp8_server")
    models = base / "models" / "diffusion_models"
    models.mkdir(parents=True)
    save_file(host.tiny_wan_state_dict(0), str(models / MODEL_FILE))
    with server_harness.models_server(base, ["diffusion_models"]) as comfy:
        with urllib.request.urlopen(f"{comfy.url}/object_info/FP8Loader", timeout=60) as response:
            assert "FP8Loader" in json.loads(response.read())
        yield ComfyClient(comfy.url, timeout_s=300), comfy.log_path, models, comfy.log_path.read_text()


def graph(**fp8_inputs) -> dict:
    """The pinned API graph's FP8 Loader branch (FP8 Loader -> one KSampler step -> SaveLatent), with
    ``fp8_inputs`` set on the FP8 Loader (node 30)."""
    pinned = json.loads((REPO / "tests" / "fixtures" / "v1_inputs_api.json").read_text())
    prompt = {k: pinned[k] for k in ("2", "3", "4", "30", "31", "32")}
    prompt["30"]["inputs"].update(fp8_inputs)
    prompt["31"]["inputs"]["steps"] = 1
    return prompt


def log_of(log_path, run) -> str:
    """What the server logged while ``run()`` ran."""
    start = len(log_path.read_text(errors="replace"))
    run()
    return log_path.read_text(errors="replace")[start:]


def test_booting_the_server_logs_nothing_about_quantized_layers(server):
    client, log_path, _models, boot_log = server
    assert "taylor_forecast" in boot_log  # ComfyUI's import line of the pack
    assert not [line for line in boot_log.splitlines() if any(text in line for text in PROBE_LINES)], boot_log
    loaded = log_of(log_path, lambda: client.run(graph(keep_high_precision="none")))
    assert QUANTIZED in loaded and "Found quantization metadata" in loaded  # a real quantized model does log


def test_rerunning_a_graph_that_saved_skips_the_save(server):
    client, log_path, models, _boot = server
    saved = models / "rerun.safetensors"
    first = log_of(log_path, lambda: client.run(graph(save_as="rerun")))
    assert f"saved {saved}" in first
    assert stat.S_IMODE(saved.stat().st_mode) == 0o644
    written = saved.stat().st_mtime_ns, saved.read_bytes()
    log_of(log_path, lambda: client.run(graph(fp8_matmul=True)))  # another FP8 Loader: the first leaves the cache
    again = log_of(log_path, lambda: client.run(graph(save_as="rerun")))
    assert QUANTIZED in again  # the node ran again (not cached) ...
    assert "save_as rerun.safetensors already holds this model" in again and f"saved {saved}" not in again
    assert (saved.stat().st_mtime_ns, saved.read_bytes()) == written
    assert not [n for n in os.listdir(models) if n.endswith(".tmp")]


def test_a_different_model_under_the_save_as_name_is_refused_before_quantizing(server):
    from comfy_client import ComfyError

    client, log_path, models, _boot = server
    client.run(graph(save_as="taken"))
    written = (models / "taken.safetensors").read_bytes()
    errors: list[str] = []

    def run_other() -> None:
        with pytest.raises(ComfyError) as error:
            client.run(graph(save_as="taken", keep_high_precision="none"))
        errors.append(str(error.value))

    log = log_of(log_path, run_other)
    assert "node 30 (FP8Loader)" in errors[0] and "FP8 Loader: save_as 'taken.safetensors' already exists" in errors[0]
    assert "keep_high_precision 'standard' (this graph: 'none')" in errors[0]
    assert QUANTIZED not in log  # refused before quantizing
    assert (models / "taken.safetensors").read_bytes() == written


def test_a_name_too_long_for_a_file_system_is_a_400_before_anything_runs(server):
    from comfy_client import ComfyError

    client, log_path, models, _boot = server
    before = sorted(os.listdir(models))
    errors: list[str] = []

    def queue_long_name() -> None:
        with pytest.raises(ComfyError) as error:
            client.queue(graph(save_as="x" * 300))
        errors.append(str(error.value))

    log = log_of(log_path, queue_long_name)
    assert "node 30 (FP8Loader)" in errors[0] and "FP8 Loader: save_as is too long" in errors[0], errors[0]
    assert QUANTIZED not in log and sorted(os.listdir(models)) == before
