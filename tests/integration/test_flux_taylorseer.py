"""TaylorSeer Apply through ComfyUI's real samplers on a tiny Flux.1-dev-architecture model.

Block calls are counted with torch forward hooks on the real block modules, never read from our stats.
"""

from __future__ import annotations

import gc
import logging

import pytest
import torch

STEPS = 20
FLUX_STACKS = ("double_blocks", "single_blocks")


def full_steps(num_steps: int, interval: int, warmup: int, tail: int) -> list[int]:
    """The fixed-interval rule, written out independently of taylor_core: step 0, the warm-up and the tail
    are computed, and then every ``interval``-th step after the last computed one."""
    full, last = [], None
    for i in range(num_steps):
        if i == 0 or i < warmup or i >= num_steps - tail or i - last >= interval:
            full.append(i)
            last = i
    return full


def planned_full_steps(inputs: dict, num_steps: int) -> list[int]:
    """The steps a TaylorSeer Apply node's widget ``inputs`` compute in a run of ``num_steps`` (window 0..1):
    TaylorSeer's interval rule above, or with a ``target_speedup`` the budget's plan from ``taylor_core``."""
    if not inputs["target_speedup"]:
        return full_steps(num_steps, inputs["interval"], inputs["warmup_steps"], inputs["tail_steps"])
    from taylor_core.schedule import SpeedupSchedule

    plan = SpeedupSchedule(inputs["target_speedup"], inputs["warmup_steps"], inputs["tail_steps"], 0.0, 1.0)
    return [i for i, full in enumerate(plan.plan(num_steps, [True] * num_steps).full) if full]


def apply(host, model, interval=4, max_order=2, warmup=3, tail=1, level="residual", clock="sigma",
          cache_device="auto", start=0.0, end=1.0):
    """TaylorSeer Apply on TaylorSeer's fixed ``interval`` schedule (target_speedup 0: the node's default is a
    budget)."""
    return host.run_node("TaylorSeerApply", model, interval=interval, max_order=max_order, warmup_steps=warmup,
                         tail_steps=tail, start_percent=start, end_percent=end, level=level, clock=clock,
                         cache_device=cache_device, target_speedup=0.0)[0]






@pytest.mark.parametrize("level", ["residual", "output"])
@pytest.mark.parametrize("cfg", [1.0, 3.5])
def test_interval_one_is_bit_identical(host, flux, conds, level, cfg):
    reference = host.ksample(flux, *conds, host.empty_latent(), steps=8, cfg=cfg, seed=3)
    patched = host.ksample(apply(host, flux, interval=1, level=level), *conds, host.empty_latent(), steps=8,
                            cfg=cfg, seed=3)
    assert torch.equal(patched, reference)


@pytest.mark.parametrize("level", ["residual", "output"])
def test_block_calls_follow_the_schedule(host, flux, conds, level):
    expected_full = len(full_steps(STEPS, 4, 3, 1))
    assert expected_full == 8  # 0, 1, 2, 6, 10, 14, 18, 19
    diffusion_model = flux.model.diffusion_model
    with host.count_block_calls(diffusion_model, FLUX_STACKS) as calls:
        out = host.ksample(apply(host, flux, interval=4, level=level), *conds, host.empty_latent(), steps=STEPS)
    assert torch.isfinite(out).all()
    first_block = STEPS if level == "residual" else expected_full
    assert calls["double_blocks"] == [first_block] + [expected_full] * (len(calls["double_blocks"]) - 1)
    assert calls["single_blocks"] == [expected_full] * len(calls["single_blocks"])


def test_forecast_stays_closer_than_plain_reuse_and_differs_from_reference(host, flux, conds):
    reference = host.ksample(flux, *conds, host.empty_latent(), steps=STEPS, seed=5)
    patched = host.ksample(apply(host, flux, interval=2, max_order=1), *conds, host.empty_latent(),
                            steps=STEPS, seed=5)
    assert not torch.equal(patched, reference)
    assert torch.isfinite(patched).all()


@pytest.mark.parametrize("uncond_tokens", [6, 40], ids=["batched", "separate"])
def test_cond_and_uncond_keep_their_own_caches(host, flux, uncond_tokens, caplog):
    """cfg > 1: conds of equal shape run batched in one call; a text length ComfyUI cannot concatenate
    (40 vs 6 tokens) makes separate calls. Either way one decision per step, both conds forecast."""
    positive, negative = host.flux_cond(1, tokens=6), host.flux_cond(2, tokens=uncond_tokens)
    calls_per_step = 1 if uncond_tokens == 6 else 2
    expected_full = len(full_steps(STEPS, 4, 3, 1))
    reference = host.ksample(flux, positive, negative, host.empty_latent(), steps=STEPS, cfg=3.5)
    with host.count_block_calls(flux.model.diffusion_model, FLUX_STACKS) as calls, caplog.at_level(logging.INFO):
        out = host.ksample(apply(host, flux, interval=4), positive, negative, host.empty_latent(),
                            steps=STEPS, cfg=3.5)
    assert torch.isfinite(out).all() and not torch.equal(out, reference)
    assert calls["double_blocks"][0] == STEPS * calls_per_step
    assert calls["double_blocks"][1] == expected_full * calls_per_step
    assert f"evaluations {STEPS * calls_per_step}, full {expected_full * calls_per_step}," in caplog.text


def test_two_ksampler_advanced_passes_each_plan_their_own_steps(host, flux, conds):
    advanced = host.node("KSamplerAdvanced")

    def two_passes(model):
        first = advanced.sample(model, "enable", 7, STEPS, 1.0, "euler", "simple", *conds, host.empty_latent(),
                                0, 10, "enable")[0]
        return advanced.sample(model, "disable", 7, STEPS, 1.0, "euler", "simple", *conds, first, 10, STEPS,
                               "disable")[0]["samples"]

    assert torch.equal(two_passes(apply(host, flux, interval=1)), two_passes(flux))
    with host.count_block_calls(flux.model.diffusion_model, FLUX_STACKS) as calls:
        out = two_passes(apply(host, flux, interval=4))
    assert torch.isfinite(out).all()
    assert calls["single_blocks"][0] == 2 * len(full_steps(10, 4, 3, 1))


def test_second_run_at_another_resolution_and_batch_size(host, flux, conds):
    patched = apply(host, flux, interval=3)
    small = host.ksample(patched, *conds, host.empty_latent(batch=1, size=16), steps=10, cfg=2.0)
    with host.count_block_calls(flux.model.diffusion_model, FLUX_STACKS) as calls:
        large = host.ksample(patched, *conds, host.empty_latent(batch=2, size=24), steps=10, cfg=2.0)
    assert small.shape == (1, 16, 16, 16) and large.shape == (2, 16, 24, 24)
    assert torch.isfinite(large).all()
    assert calls["single_blocks"][0] == len(full_steps(10, 3, 3, 1))
    exact = host.ksample(apply(host, flux, interval=1), *conds, host.empty_latent(batch=2, size=24),
                          steps=10, cfg=2.0)
    assert torch.equal(exact, host.ksample(flux, *conds, host.empty_latent(batch=2, size=24), steps=10, cfg=2.0))


def test_heun_evaluates_each_sigma_with_its_steps_decision(host, flux, conds):
    """heun calls the model at sigma_i and again at sigma_(i+1) (none at the final 0): each evaluation
    takes the decision of the step its sigma belongs to."""
    steps = 10
    plan = set(full_steps(steps, 3, 2, 1))
    expected_full = sum((i in plan) + (i + 1 < steps and i + 1 in plan) for i in range(steps))
    reference = host.ksample(flux, *conds, host.empty_latent(), steps=steps, sampler="heun")
    assert torch.equal(host.ksample(apply(host, flux, interval=1), *conds, host.empty_latent(), steps=steps,
                                     sampler="heun"), reference)
    with host.count_block_calls(flux.model.diffusion_model, FLUX_STACKS) as calls:
        out = host.ksample(apply(host, flux, interval=3, warmup=2), *conds, host.empty_latent(), steps=steps,
                            sampler="heun")
    assert torch.isfinite(out).all()
    assert calls["double_blocks"][0] == 2 * steps - 1
    assert calls["single_blocks"][0] == expected_full


def test_dpmpp_2s_ancestral_off_grid_sigmas(host, flux, conds, caplog):
    steps = 10
    reference = host.ksample(flux, *conds, host.empty_latent(), steps=steps, sampler="dpmpp_2s_ancestral")
    assert torch.equal(host.ksample(apply(host, flux, interval=1), *conds, host.empty_latent(), steps=steps,
                                     sampler="dpmpp_2s_ancestral"), reference)
    with host.count_block_calls(flux.model.diffusion_model, FLUX_STACKS) as calls, caplog.at_level(logging.INFO):
        out = host.ksample(apply(host, flux, interval=3), *conds, host.empty_latent(), steps=steps,
                            sampler="dpmpp_2s_ancestral")
    assert torch.isfinite(out).all()
    evaluations = calls["double_blocks"][0]
    assert evaluations > steps  # the midpoint evaluations happened
    assert len(full_steps(steps, 3, 3, 1)) <= calls["single_blocks"][0] < evaluations
    assert f"evaluations {evaluations}," in caplog.text


class _RunCapture:
    """An inner OUTER_SAMPLE wrapper (registered after ours) that keeps a reference to our run state."""

    def __init__(self, run_key: str) -> None:
        self.run_key = run_key
        self.runs: list = []

    def __call__(self, executor, *args, **kwargs):
        self.runs.append(executor.class_obj.model_options["transformer_options"][self.run_key])
        return executor(*args, **kwargs)


def _interrupt_after(evaluations: int):
    import comfy.model_management

    seen = [0]

    def wrapper(executor, *args, **kwargs):
        seen[0] += 1
        if seen[0] > evaluations:
            raise comfy.model_management.InterruptProcessingException()
        return executor(*args, **kwargs)
    return wrapper


def live_tensor_bytes() -> int:
    gc.collect()
    storages = {}
    for obj in gc.get_objects():
        if isinstance(obj, torch.Tensor):
            storage = obj.untyped_storage()
            storages[storage.data_ptr()] = storage.nbytes()
    return sum(storages.values())


def test_interrupted_run_frees_its_cache_and_the_next_run_is_clean(host, flux, conds):
    import comfy.model_management
    import comfy.patcher_extension as ext

    run_key = host.pack_module("nodes.run_state").RUN_KEY
    patched = apply(host, flux, interval=4)
    clean = host.ksample(patched, *conds, host.empty_latent(), steps=STEPS, cfg=2.0)

    interrupted = patched.clone()
    capture = _RunCapture(run_key)
    interrupted.add_wrapper_with_key(ext.WrappersMP.OUTER_SAMPLE, "test_capture", capture)
    interrupted.add_wrapper_with_key(ext.WrappersMP.PREDICT_NOISE, "test_interrupt", _interrupt_after(9))
    with pytest.raises(comfy.model_management.InterruptProcessingException):
        host.ksample(interrupted, *conds, host.empty_latent(), steps=STEPS, cfg=2.0)
    (run,) = capture.runs
    assert run.stats.evaluations == 9 and run.stats.forecasts > 0
    assert run.bank.bytes_held() == 0

    assert torch.equal(host.ksample(patched, *conds, host.empty_latent(), steps=STEPS, cfg=2.0), clean)


def test_memory_returns_to_baseline_after_a_run(host, flux, conds):
    import comfy.patcher_extension as ext

    patched = apply(host, flux, interval=4, max_order=3).clone()
    capture = _RunCapture(host.pack_module("nodes.run_state").RUN_KEY)
    patched.add_wrapper_with_key(ext.WrappersMP.OUTER_SAMPLE, "test_capture", capture)
    host.ksample(patched, *conds, host.empty_latent(), steps=STEPS, cfg=2.0)  # warms ComfyUI's own caches
    baseline = live_tensor_bytes()
    host.ksample(patched, *conds, host.empty_latent(), steps=STEPS, cfg=2.0)
    after = live_tensor_bytes()
    peak = capture.runs[-1].stats.peak_cache_bytes
    assert peak > 0
    assert after <= baseline, f"{after - baseline} bytes of tensors outlived the run (cache peak {peak})"


def test_cpu_cache_and_step_clock_run(host, flux, conds):
    out = host.ksample(apply(host, flux, interval=3, clock="step", cache_device="cpu"), *conds,
                        host.empty_latent(), steps=10)
    assert torch.isfinite(out).all()
