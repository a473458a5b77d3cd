"""Every DiT family ComfyUI runs, one tiny model each (``comfy_harness.TINY_MODELS``): built by code with ComfyUI's
own model class, loaded by ComfyUI's detection (stock, or with the test-only override of what detection cannot
read from shapes), sampled by ComfyUI's KSampler with TaylorSeer Apply at every level.

Per family and level: interval 1 is bit-identical to the unpatched model, and the real block calls (torch
forward hooks) follow the schedule: at the residual level the first block of the first stack runs every step and
every other block only on computed steps; at the output level every block runs only on computed steps. The
schedule is written out independently (``full_steps``); calls per step are measured on the unpatched run.
"""

from __future__ import annotations

import logging

import pytest
import torch
from comfy_harness import TINY_MODELS
from test_flux_taylorseer import apply, full_steps

STEPS, INTERVAL, WARMUP, TAIL = 8, 3, 2, 1
LEVELS = ("residual", "output")


@pytest.fixture(scope="module", params=sorted(TINY_MODELS))
def tiny(host, request):
    """(TinyModel, loaded ModelPatcher, positive, negative)."""
    case = TINY_MODELS[request.param]
    return case, case.load(seed=0), case.cond(1), case.cond(2)


def effective_level(host, case, level: str) -> str:
    """The level a run must report: a family without a block adapter runs at the output level."""
    has_adapter = case.family in {f.name for f in host.pack_module("nodes.adapters.families").FAMILIES.values()}
    return level if has_adapter else "output"


def sample(host, case, model, positive, negative, **kwargs):
    return host.ksample(model, positive, negative, case.empty_latent(), steps=STEPS, cfg=2.0, **kwargs)


def test_comfyui_detection_gives_the_class_the_adapter_table_names(host, tiny):
    case, model, _positive, _negative = tiny
    families = host.pack_module("nodes.adapters.families")
    diffusion_model = model.model.diffusion_model
    family = families.family_of(diffusion_model)
    if effective_level(host, case, "residual") == "residual":
        assert family is not None and family.name == case.family
        layouts = families.resolve_layout(family, diffusion_model)
        assert tuple(layout.spec.attribute for layout in layouts if layout.active) == case.stacks
    else:
        assert family is None
        assert case.family in families.no_adapter_reason(diffusion_model)


@pytest.mark.parametrize("level", LEVELS)
def test_interval_one_is_bit_identical(host, tiny, level):
    case, model, positive, negative = tiny
    reference = sample(host, case, model, positive, negative, seed=3)
    patched = sample(host, case, apply(host, model, interval=1, level=level), positive, negative, seed=3)
    assert torch.equal(patched, reference)


@pytest.mark.parametrize("level", LEVELS)
def test_block_calls_follow_the_schedule(host, tiny, level, caplog):
    case, model, positive, negative = tiny
    diffusion_model = model.model.diffusion_model
    with host.count_block_calls(diffusion_model, case.stacks, case.counted) as plain:
        reference = sample(host, case, model, positive, negative)
    per_step = plain[case.stacks[0]][0] // STEPS  # 1 when cond and uncond are batched, 2 when not
    assert per_step >= 1 and all(calls == [STEPS * per_step] * len(calls) for calls in plain.values())

    effective = effective_level(host, case, level)
    full = len(full_steps(STEPS, INTERVAL, WARMUP, TAIL)) * per_step
    patched = apply(host, model, interval=INTERVAL, max_order=1, warmup=WARMUP, tail=TAIL, level=level,
                    clock="step")
    with host.count_block_calls(diffusion_model, case.stacks, case.counted) as calls, caplog.at_level(logging.INFO):
        out = sample(host, case, patched, positive, negative)
    assert torch.isfinite(out).all() and not torch.equal(out, reference)
    assert f"level {effective}" in caplog.text
    for index, stack in enumerate(case.stacks):
        expected = [full] * len(calls[stack])
        if effective == "residual" and index == 0:
            expected[0] = STEPS * per_step
        assert calls[stack] == expected, f"{case.name} {stack}"



def test_cg_taylor_gate_runs_on_every_family_with_an_adapter(host, tiny, caplog):
    """Threshold 0 never forecasts (bit-identical); a threshold no error reaches forecasts every step it may
    (between warm-up and tail, at most two in a row): the first block still runs every step."""
    case, model, positive, negative = tiny
    def gate(threshold: float):
        return host.run_node("CGTaylorGate", model, threshold, 1, 1, WARMUP, TAIL, 0.0, 1.0, 2, "step", "auto")[0]

    reference = sample(host, case, model, positive, negative)
    assert torch.equal(sample(host, case, gate(0.0), positive, negative), reference)
    if effective_level(host, case, "residual") != "residual":
        return  # no first block to probe: every step computed (test_fallback_families.py)
    counting = host.count_block_calls(model.model.diffusion_model, case.stacks, case.counted)
    with counting as calls, caplog.at_level(logging.INFO):
        out = sample(host, case, gate(1e9), positive, negative)
    assert torch.isfinite(out).all()
    per_step = calls[case.stacks[0]][0] // STEPS
    computed = {step for step in range(STEPS) if step < WARMUP or step >= STEPS - TAIL}
    capped = [step for step in range(WARMUP, STEPS - TAIL) if (step - WARMUP) % 3 == 2]  # after 2 forecasts
    assert calls[case.stacks[-1]][-1] == (len(computed) + len(capped)) * per_step
    assert "gate errors:" in caplog.text


@pytest.mark.parametrize("name", [n for n, m in sorted(TINY_MODELS.items()) if m.counted])
def test_object_patched_forwards_are_undone_when_the_clone_is_unloaded(host, name):
    """Families without a replacement hook get their blocks' ``forward`` object-patched on the clone; sampling
    the unpatched model afterwards loads it with the class's own ``forward`` again."""
    case = TINY_MODELS[name]
    model, positive, negative = case.load(seed=0), case.cond(1), case.cond(2)
    blocks = getattr(model.model.diffusion_model, case.stacks[0])
    reference = sample(host, case, model, positive, negative)
    sample(host, case, apply(host, model, interval=INTERVAL, level="residual"), positive, negative)
    assert all(getattr(block.forward, "__func__", None) is not type(block).forward for block in blocks)
    assert torch.equal(sample(host, case, model, positive, negative), reference)
    assert all(getattr(block.forward, "__func__", None) is type(block).forward for block in blocks)

# ---- bad input: a level the family cannot do, a token count that changes mid-run --------------------------------

@pytest.mark.parametrize(("name", "effective", "message"), [
    ("sd3", "residual", "no module adapter for"),
    ("cosmos_predict2", "output", "runs at level=output only"),
])
def test_a_level_the_family_cannot_do_falls_back_logged(host, name, effective, message, caplog):
    case = TINY_MODELS[name]
    model, positive, negative = case.load(seed=0), case.cond(1), case.cond(2)
    reference = sample(host, case, model, positive, negative)
    with caplog.at_level(logging.INFO):
        exact = sample(host, case, apply(host, model, interval=1, level="modules"), positive, negative)
    assert torch.equal(exact, reference)
    assert message in caplog.text and f"level {effective}" in caplog.text


def _crop_at_step(step: int, size: int):
    """An APPLY_MODEL wrapper (registered before TaylorSeer Apply, so it runs outside it) that feeds the model a
    cropped latent at one step and pastes the result back: the token count the model sees changes mid-run."""
    def wrapper(executor, x, t, *args, **kwargs):
        options = args[3] if len(args) > 3 else kwargs["transformer_options"]
        if float(t[0]) != float(options["sample_sigmas"][step]):
            return executor(x, t, *args, **kwargs)
        out = x.clone()
        out[..., :size, :size] = executor(x[..., :size, :size], t, *args, **kwargs)
        return out
    return wrapper


@pytest.mark.parametrize("level", LEVELS)
def test_token_count_change_mid_run_restarts_the_history(host, flux, conds, level, caplog):
    import comfy.patcher_extension as ext

    cropping = flux.clone()
    cropping.add_wrapper_with_key(ext.WrappersMP.APPLY_MODEL, "test_crop", _crop_at_step(2, 12))
    reference = host.ksample(cropping, *conds, host.empty_latent(), steps=STEPS)
    assert torch.equal(host.ksample(apply(host, cropping, interval=1, level=level), *conds, host.empty_latent(),
                                    steps=STEPS), reference)
    planned = full_steps(STEPS, INTERVAL, WARMUP, TAIL)
    assert 2 not in planned and 3 not in planned  # both planned as forecasts
    with host.count_block_calls(flux.model.diffusion_model, ("single_blocks",)) as calls, \
            caplog.at_level(logging.INFO):
        out = host.ksample(apply(host, cropping, interval=INTERVAL, warmup=WARMUP, tail=TAIL, level=level),
                           *conds, host.empty_latent(), steps=STEPS)
    assert torch.isfinite(out).all()
    assert "step 2: the input's shape changed mid-run (now (16, 12, 12)" in caplog.text
    assert "step 3: the input's shape changed mid-run (now (16, 16, 16)" in caplog.text
    assert calls["single_blocks"][0] == len(planned) + 2  # the cropped step and the next one computed in full
