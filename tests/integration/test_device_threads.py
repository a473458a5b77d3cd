"""The run state under ComfyUI 0.33's multi-GPU work units: the cond chunks of one model call run at once, one
persistent thread per device, each on its own model instance, all sharing the sampler's run state.

``DeviceThreads`` drives the pack's wrappers the way ``_calc_cond_batch_multigpu`` (``comfy/samplers.py``) calls
them, on both ComfyUI versions, through ComfyUI's official ``model_function_wrapper`` of the test's clone: each
batched call of the real sampler is split into its cond chunks; chunk ``i`` runs in device ``i``'s own thread on
device ``i``'s model (a separate ``BaseModel`` with the same weights, as ``create_multigpu_deepclones`` gives each
GPU), with the call's ``transformer_options`` merged into a new dict without copying the objects in it (the run
state among them) and ``uuids``, ``cond_or_uncond`` and ``multigpu_thread_device`` (a distinct ``cpu:i`` device
object) set per chunk. A barrier makes the threads enter the model together every call. ``threaded=False`` runs
the same split in the sampler's thread: the single-thread reference. Block calls are counted with forward hooks
on each device's own blocks.
"""

from __future__ import annotations

import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from test_cg_taylor_gate import capped_full_steps, gate
from test_flux_taylorseer import FLUX_STACKS, _RunCapture, apply, full_steps

STEPS = 12
DEVICES = 3  # two positive conds and one negative: three chunks per call


class DeviceThreads:
    """A ``model_function_wrapper`` that runs each cond chunk of a call on its own device model (see the module
    docstring). ``last_block_calls[i]``: per call, how often device ``i``'s last single block ran."""

    def __init__(self, host, threaded: bool) -> None:
        self.device_models = [host.tiny_flux(seed=0).model for _ in range(DEVICES)]
        self.devices = [torch.device("cpu", i) for i in range(DEVICES)]
        self.pools = [ThreadPoolExecutor(max_workers=1) for _ in range(DEVICES)] if threaded else None
        self.threads: set[int] = set()
        self.last_block_calls: list[list[int]] = [[] for _ in range(DEVICES)]
        self._counts = [0] * DEVICES
        for i, model in enumerate(self.device_models):
            model.diffusion_model.single_blocks[-1].register_forward_hook(
                lambda *_args, i=i: self._counts.__setitem__(i, self._counts[i] + 1))

    def __call__(self, apply_model, params: dict) -> torch.Tensor:
        x, t, c, cond_or_uncond = params["input"], params["timestep"], params["c"], params["cond_or_uncond"]
        chunks = len(cond_or_uncond)
        assert chunks == DEVICES, "the conds were expected to run batched in one call"
        size = x.shape[0] // chunks
        options = c["transformer_options"]
        barrier = threading.Barrier(chunks, timeout=120) if self.pools else None

        def run_chunk(i: int) -> torch.Tensor:
            self.threads.add(threading.get_ident())
            rows = slice(i * size, (i + 1) * size)
            kwargs = {k: v[rows] if isinstance(v, torch.Tensor) and v.shape[0] == x.shape[0] else v
                      for k, v in c.items() if k != "transformer_options"}
            thread_options = {**options, "cond_or_uncond": [cond_or_uncond[i]], "uuids": [options["uuids"][i]],
                              "multigpu_thread_device": self.devices[i]}
            before = self._counts[i]
            if barrier is not None:
                barrier.wait()
            out = self.device_models[i].apply_model(x[rows], t[rows], transformer_options=thread_options, **kwargs)
            self.last_block_calls[i].append(self._counts[i] - before)
            return out

        if self.pools is None:
            return torch.cat([run_chunk(i) for i in range(chunks)])
        futures = [pool.submit(run_chunk, i) for i, pool in enumerate(self.pools)]
        return torch.cat([future.result() for future in futures])

    def close(self) -> None:
        for pool in self.pools or ():
            pool.shutdown()


@pytest.fixture(scope="module")
def three_conds(host):
    """Two positive conds (one call's chunks 0 and 1, their own uuids) and one negative, equal text lengths."""
    return host.flux_cond(1) + host.flux_cond(3), host.flux_cond(2)


def sample(host, model, conds, threaded: bool, steps: int = STEPS, forecasting: bool = True):
    """``(latent, run state or None, driver, block calls per device)`` of one KSampler run of ``model`` (with the
    pack's wrappers when ``forecasting``) through ``DeviceThreads``."""
    import comfy.patcher_extension as ext

    driver = DeviceThreads(host, threaded)
    patched = model.clone()
    patched.set_model_unet_function_wrapper(driver)
    capture = _RunCapture(host.pack_module("nodes.run_state").RUN_KEY)
    if forecasting:
        patched.add_wrapper_with_key(ext.WrappersMP.OUTER_SAMPLE, "test_capture", capture)
    with contextlib.ExitStack() as stack:
        calls = [stack.enter_context(host.count_block_calls(model.diffusion_model, FLUX_STACKS))
                 for model in driver.device_models]
        stack.callback(driver.close)
        out = host.ksample(patched, *conds, host.empty_latent(), steps=steps, cfg=3.0, seed=5)
    return out, (capture.runs[0] if capture.runs else None), driver, calls


@pytest.mark.parametrize("level", ["residual", "output", "modules"])
def test_interval_one_in_device_threads_is_bit_identical(host, flux, three_conds, level):
    reference, *_ = sample(host, flux, three_conds, threaded=True, forecasting=False)
    out, run, driver, _ = sample(host, apply(host, flux, interval=1, level=level), three_conds, threaded=True)
    assert len(driver.threads) == DEVICES
    assert torch.equal(out, reference)
    assert run.stats.evaluations == STEPS * DEVICES and run.stats.forecasts == 0


@pytest.mark.parametrize("level", ["residual", "output", "modules"])
def test_device_threads_follow_the_plan_and_match_one_thread(host, flux, three_conds, level):
    """Every device runs its blocks exactly as the plan says, and the latent and the run's records are those of
    the same chunks run one after the other in one thread."""
    full = full_steps(STEPS, 4, 3, 1)
    patched = apply(host, flux, interval=4, level=level)
    single, single_run, *_ = sample(host, patched, three_conds, threaded=False)
    out, run, driver, calls = sample(host, patched, three_conds, threaded=True)
    assert len(driver.threads) == DEVICES
    assert torch.equal(out, single)
    assert sorted(map(tuple, run.stats.as_dict(STEPS)["records"])) == sorted(
        map(tuple, single_run.stats.as_dict(STEPS)["records"]))
    assert run.stats.evaluations == STEPS * DEVICES and run.stats.full_computes == len(full) * DEVICES
    first_block = STEPS if level == "residual" else len(full)
    for device_calls, per_call in zip(calls, driver.last_block_calls):
        assert device_calls["double_blocks"] == [first_block] + [len(full)] * (len(device_calls["double_blocks"]) - 1)
        assert device_calls["single_blocks"] == [len(full)] * len(device_calls["single_blocks"])
        assert per_call == [1 if step in full else 0 for step in range(STEPS)]
    assert run.cache_bytes() == 0  # released at the end of the run


def test_gate_gives_every_device_thread_one_verdict_per_step(host, flux, three_conds):
    """Under the gate the first call of an evaluation decides at its probe and the other device threads wait for
    its verdict: with a gate that always trusts its probe, every device skips its blocks on exactly the steps the
    cap leaves, and the run never deadlocks."""
    expected = capped_full_steps(16, 2, 3, 1)
    out, run, driver, _ = sample(host, gate(host, flux, 1e9, max_consecutive=2), three_conds, threaded=True,
                                 steps=16)
    assert torch.isfinite(out).all()
    for per_call in driver.last_block_calls:
        assert per_call == [1 if step in expected else 0 for step in range(16)]
    by_step: dict[int, set[bool]] = {}
    for step, _sigma, full, *_ in run.stats.as_dict(16)["records"]:
        by_step.setdefault(step, set()).add(full)
    assert by_step == {step: {step in expected} for step in range(16)}
