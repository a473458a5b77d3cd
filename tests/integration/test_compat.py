"""TaylorSeer Apply beside the rest of a real ComfyUI graph: LoRA, another block-replacement user, post-block
patches, torch.compile, ComfyUI's own step caches, several patched models in one graph, context windows.

Every node here is ComfyUI's own, called as a graph would call it; block calls are counted with forward hooks.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from comfy_harness import TINY_MODELS
from test_flux_taylorseer import FLUX_STACKS, apply, full_steps

STEPS = 8


def v3(name: str, *args, **kwargs):
    """A V3 core node's ``execute``, as the executor calls it; returns its first output."""
    import nodes

    result = nodes.NODE_CLASS_MAPPINGS[name].execute(*args, **kwargs)
    return result[0] if isinstance(result, tuple) else result.result[0]


def ts(host, model, interval=3, level="residual", max_order=1, warmup=2):
    return apply(host, model, interval=interval, max_order=max_order, warmup=warmup, tail=1, level=level,
                 clock="step")


# ---- LoRA -----------------------------------------------------------------------------------------------------

@pytest.fixture
def tiny_lora(host, flux, tmp_path):
    """A LoRA for the tiny Flux in ComfyUI's generic format, in a temporary ``loras`` folder; yields its name."""
    import folder_paths
    import safetensors.torch

    generator = torch.Generator().manual_seed(11)
    weights = {}
    for target in ("double_blocks.0.img_attn.qkv", "double_blocks.1.img_mlp.0", "single_blocks.1.linear1"):
        out_features, in_features = flux.model.diffusion_model.get_submodule(target).weight.shape
        weights[f"diffusion_model.{target}.lora_up.weight"] = torch.randn(out_features, 4, generator=generator) * 0.5
        weights[f"diffusion_model.{target}.lora_down.weight"] = torch.randn(4, in_features, generator=generator) * 0.5
    safetensors.torch.save_file(weights, str(tmp_path / "taylor_test_lora.safetensors"))
    folder_paths.add_model_folder_path("loras", str(tmp_path))
    try:
        yield "taylor_test_lora.safetensors"
    finally:
        folder_paths.folder_names_and_paths["loras"][0].remove(str(tmp_path))
        folder_paths.filename_list_cache.pop("loras", None)


def test_lora_before_and_after_taylorseer_apply(host, flux, conds, tiny_lora):
    lora_node = host.node("LoraLoaderModelOnly")

    def lora(model):
        return lora_node.load_lora_model_only(model, tiny_lora, 1.0)[0]

    def run(model):
        return host.ksample(model, *conds, host.empty_latent(), steps=STEPS, cfg=2.0)

    plain, with_lora = run(flux), run(lora(flux))
    assert not torch.equal(plain, with_lora)  # the LoRA was loaded and applied
    assert torch.equal(run(ts(host, lora(flux), interval=1)), with_lora)
    assert torch.equal(run(lora(ts(host, flux, interval=1))), with_lora)
    before, after = run(ts(host, lora(flux))), run(lora(ts(host, flux)))
    assert torch.equal(before, after) and not torch.equal(before, with_lora)
    assert not torch.equal(before, run(ts(host, flux)))  # the forecast ran on the LoRA's weights


# ---- another patches_replace["dit"] user ----------------------------------------------------------------------

def test_skip_layer_guidance_and_taylorseer_both_work(host, flux, conds, caplog):
    """SkipLayerGuidanceDiT re-runs the model with its own replacement on the layers it skips; that extra call
    is computed in full by TaylorSeer (same cond at the same sigma) and the skipped layers stay skipped."""
    def slg(model):
        return v3("SkipLayerGuidanceDiT", model, 3.0, 0.0, 1.0, "1", "1", 0.0)

    def run(model):
        return host.ksample(model, *conds, host.empty_latent(), steps=STEPS, cfg=2.0)

    guided = run(slg(flux))
    assert not torch.equal(guided, run(flux))
    assert torch.equal(run(slg(ts(host, flux, interval=1))), guided)
    assert torch.equal(run(ts(host, slg(flux), interval=1)), guided)
    with host.count_block_calls(flux.model.diffusion_model, FLUX_STACKS) as calls, caplog.at_level(logging.INFO):
        out = run(ts(host, slg(flux)))
    assert torch.isfinite(out).all() and not torch.equal(out, guided)
    assert "level residual" in caplog.text and "falling back" not in caplog.text
    full = len(full_steps(STEPS, 3, 2, 1))  # main calls (cond and uncond batched) computed by the schedule
    assert calls["double_blocks"] == [2 * STEPS, full, full + STEPS]  # + one guidance call per step
    assert calls["single_blocks"] == [full + STEPS, full, full + STEPS]  # layer 1 skipped by the guidance


def test_a_replacement_registered_before_is_chained_not_overwritten(host, flux, conds):
    def skip(args, _extra):
        return {"img": args["img"], "txt": args["txt"]}

    skipping = flux.clone()
    skipping.set_model_patch_replace(skip, "dit", "double_block", 1)
    reference = host.ksample(skipping, *conds, host.empty_latent(), steps=STEPS)
    with host.count_block_calls(flux.model.diffusion_model, FLUX_STACKS) as calls:
        exact = host.ksample(ts(host, skipping, interval=1), *conds, host.empty_latent(), steps=STEPS)
    assert torch.equal(exact, reference) and calls["double_blocks"][1] == 0
    with host.count_block_calls(flux.model.diffusion_model, FLUX_STACKS) as calls:
        host.ksample(ts(host, skipping), *conds, host.empty_latent(), steps=STEPS)
    assert calls["double_blocks"][1] == 0 and calls["double_blocks"][2] == len(full_steps(STEPS, 3, 2, 1))


# ---- post-block patches ---------------------------------------------------------------------------------------

def test_post_block_patches_are_not_counted_twice_on_forecast_steps(host):
    """Qwen-Image runs ``patches["double_block"]`` after every block, skipped ones included. With order 0, a
    forecast step's last block must return ``ref_now + (out_last - ref)`` of the last full step, where ``ref``
    is block 0's output after the patch: the patch additions of the skipped blocks are inside the forecast
    residual once, never added again from the stream that reaches the last block."""
    case = TINY_MODELS["qwen_image"]
    case = dataclasses.replace(case, params={**case.params, "num_layers": 3})
    model = case.load(seed=0)
    delta = 0.5
    seen: list[tuple[int, torch.Tensor]] = []

    def patch(args):
        seen.append((args["block_index"], args["img"].clone()))
        return {**args, "img": args["img"] + delta}

    patched = model.clone()
    patched.set_model_double_block_patch(patch)
    out = host.ksample(ts(host, patched, max_order=0), case.cond(1), case.cond(2), case.empty_latent(), steps=STEPS)
    assert torch.isfinite(out).all()
    calls = [seen[i:i + 3] for i in range(0, len(seen), 3)]  # cfg 1: one call per step, three blocks each
    assert [b for call in calls for b, _ in call] == [0, 1, 2] * STEPS
    full = full_steps(STEPS, 3, 2, 1)
    forecast = [step for step in range(STEPS) if step not in full]
    assert forecast
    for step in forecast:
        last_full = max(s for s in full if s < step)
        ref_then = calls[last_full][0][1] + delta
        residual = calls[last_full][2][1] - ref_then
        ref_now = calls[step][0][1] + delta
        expected = ref_now + residual
        assert torch.allclose(calls[step][2][1], expected, rtol=0, atol=1e-5), step
        assert (calls[step][2][1] - expected - delta).abs().min() > delta / 2  # not the double-counted value


# ---- torch.compile --------------------------------------------------------------------------------------------

_COMPILE_RUN = """
import logging, sys
sys.path.insert(0, {tests!r})
import comfy_harness as h
h.boot()
import nodes
log = logging.getLogger("taylor_forecast")
log.addHandler(logging.StreamHandler(sys.stdout))
log.setLevel(logging.INFO)
case = h.TINY_MODELS["flux"]
conds = case.cond(1), case.cond(2)
patched = h.run_node("TaylorSeerApply", case.load(seed=0), target_speedup=0.0, interval=2, max_order=1,
                     warmup_steps=1, tail_steps=1, level="residual", clock="step")[0]
eager = h.ksample(patched, *conds, h.empty_latent(), steps=4)
result = nodes.NODE_CLASS_MAPPINGS["TorchCompileModel"].execute(patched, "inductor")
compiled = result[0] if isinstance(result, tuple) else result.result[0]
out = h.ksample(compiled, *conds, h.empty_latent(), steps=4)
print("MAXDIFF", float((out - eager).abs().max()), float(eager.abs().max()))
"""


def test_torch_compile_model_after_taylorseer_apply_runs():
    """In a child process: dynamo keeps its graphs (and fake tensors) for the life of the process, which the
    other tests' live-tensor accounting must not see. The cold inductor compile of ComfyUI's CPU graphs takes
    about a minute and a half on 2 cores."""
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("TorchCompileModel's inductor backend needs a C compiler on CPU; none on this machine")
    tests = str(Path(__file__).resolve().parents[1])
    proc = subprocess.run([sys.executable, "-c", _COMPILE_RUN.format(tests=tests)], capture_output=True, text=True,
                          timeout=900, cwd=tests)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "level residual" in proc.stdout and "full 3, forecast 1" in proc.stdout
    max_diff, scale = (float(v) for v in proc.stdout.split("MAXDIFF", 1)[1].split())
    assert max_diff <= 1e-3 * max(scale, 1.0)


# ---- ComfyUI's EasyCache / LazyCache ---------------------------------------------------------------------------

@pytest.mark.parametrize("peer", ["EasyCache", "LazyCache"])
@pytest.mark.parametrize("order", ["peer_first", "taylorseer_first"])
def test_builtin_step_cache_on_the_same_model_warns_and_only_one_skips(host, flux, conds, peer, order, caplog):
    def cache(model):
        return v3(peer, model, 0.2, 0.15, 0.95, False)

    alone = host.ksample(cache(flux), *conds, host.empty_latent(), steps=12)
    with caplog.at_level(logging.WARNING):
        both = cache(ts(host, flux)) if order == "taylorseer_first" else ts(host, cache(flux))
        out = host.ksample(both, *conds, host.empty_latent(), steps=12)
    assert f"{peer} is on the same model" in caplog.text and "Remove one of the two nodes" in caplog.text
    assert torch.equal(out, alone)


# ---- several patched models in one graph ----------------------------------------------------------------------

def test_wan22_high_low_pair_each_model_its_own_state(host):
    """Wan 2.2's two-model pattern: the high-noise model samples steps 0-4, the low-noise model 4-8 of the same
    schedule (KSamplerAdvanced), each with its own TaylorSeer Apply."""
    case = TINY_MODELS["wan"]
    high, low = case.load(seed=0), case.load(seed=1)
    positive, negative = case.cond(1), case.cond(2)
    advanced = host.node("KSamplerAdvanced")

    def pair(high_model, low_model):
        first = advanced.sample(high_model, "enable", 5, STEPS, 2.0, "euler", "simple", positive, negative,
                                case.empty_latent(), 0, 4, "enable")[0]
        second = advanced.sample(low_model, "disable", 5, STEPS, 2.0, "euler", "simple", positive, negative, first,
                                 4, STEPS, "disable")[0]
        return first["samples"], second["samples"]

    reference = pair(high, low)
    assert all(torch.equal(a, b) for a, b in zip(pair(ts(host, high, interval=1), ts(host, low, interval=1)),
                                                   reference))
    with host.count_block_calls(high.model.diffusion_model, ("blocks",)) as high_calls, \
            host.count_block_calls(low.model.diffusion_model, ("blocks",)) as low_calls:
        first, second = pair(ts(host, high, interval=2, warmup=1), ts(host, low, interval=3, warmup=1))
    assert torch.isfinite(second).all()
    assert high_calls["blocks"] == [4, *[len(full_steps(4, 2, 1, 1))] * 2]
    assert low_calls["blocks"] == [4, *[len(full_steps(4, 3, 1, 1))] * 2]
    # the low-noise model's run is exactly its own: the unpatched low model on the same input agrees at interval 1
    advanced = host.node("KSamplerAdvanced")
    only_low = advanced.sample(ts(host, low, interval=1), "disable", 5, STEPS, 2.0, "euler", "simple", positive,
                               negative, {"samples": first}, 4, STEPS, "disable")[0]["samples"]
    unpatched_low = advanced.sample(low, "disable", 5, STEPS, 2.0, "euler", "simple", positive, negative,
                                    {"samples": first}, 4, STEPS, "disable")[0]["samples"]
    assert torch.equal(only_low, unpatched_low)


def test_two_taylorseer_nodes_on_one_model_sampled_alternately_stay_independent(host, flux, conds):
    a, b = ts(host, flux, interval=2, warmup=1), ts(host, flux, interval=3, level="output")
    alone_a = host.ksample(a, *conds, host.empty_latent(), steps=STEPS)
    alone_b = host.ksample(b, *conds, host.empty_latent(), steps=STEPS)
    assert torch.equal(host.ksample(b, *conds, host.empty_latent(), steps=STEPS), alone_b)
    assert torch.equal(host.ksample(a, *conds, host.empty_latent(), steps=STEPS), alone_a)
    assert not torch.equal(alone_a, alone_b)


# ---- context windows ------------------------------------------------------------------------------------------

def test_context_windows_keep_one_state_per_window(host):
    import comfy.patcher_extension as ext

    case = TINY_MODELS["wan"]
    model = case.load(seed=0)
    positive, negative = case.cond(1), case.cond(2)
    latent = {"samples": torch.zeros(1, 16, 5, 8, 8)}  # 5 latent frames: windows [0, 1, 2] and [2, 3, 4]

    def windows(m):  # 0.33 added a required ``freenoise`` input: off, as 0.3.75 runs
        import nodes

        execute = nodes.NODE_CLASS_MAPPINGS["ContextWindowsManual"].execute
        extra = {"freenoise": False} if "freenoise" in inspect.signature(execute).parameters else {}
        return v3("ContextWindowsManual", m, 3, 1, "standard_static", 1, False, "pyramid", 2, **extra)

    def run(m):
        return host.ksample(m, positive, negative, latent, steps=STEPS, cfg=2.0)

    with host.count_block_calls(model.model.diffusion_model, ("blocks",)) as plain:
        reference = run(windows(model))
    per_step = plain["blocks"][0] // STEPS
    assert per_step >= 2  # at least one call per window
    assert torch.equal(run(windows(ts(host, model, interval=1))), reference)

    seen_windows: set = set()
    run_key = host.pack_module("nodes.run_state").RUN_KEY

    def spy(executor, *args, **kwargs):  # inner CALC_COND_BATCH wrapper: the run's cache keys after each window
        out = executor(*args, **kwargs)
        run = args[-1]["transformer_options"][run_key]
        seen_windows.update(key[2] for key in run.bank._entries)  # keys: (device, uuid, window, feature)
        return out

    patched = windows(ts(host, model)).clone()
    patched.add_wrapper_with_key(ext.WrappersMP.CALC_COND_BATCH, "test_spy", spy)
    with host.count_block_calls(model.model.diffusion_model, ("blocks",)) as calls:
        out = run(patched)
    assert torch.isfinite(out).all() and not torch.equal(out, reference)
    assert seen_windows == {(0, 1, 2), (2, 3, 4)}
    full = len(full_steps(STEPS, 3, 2, 1)) * per_step
    assert calls["blocks"] == [STEPS * per_step, full, full]
