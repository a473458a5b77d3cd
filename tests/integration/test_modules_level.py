"""TaylorSeer Apply at level modules (the original TaylorSeer's per-block attention/MLP cache) through ComfyUI's
real samplers on the tiny Flux and Wan 2.1 models.

Submodule calls are counted with torch forward hooks on the real modules; the forecast steps are checked
against the real block run with its branch outputs replaced (forward hooks returning the stored tensors).
"""

from __future__ import annotations

import logging
from contextlib import contextmanager

import pytest
import torch
from test_flux_taylorseer import _RunCapture, apply, full_steps

STEPS = 12


@pytest.fixture(scope="module")
def wan(host):
    return host.tiny_wan(seed=0)


@pytest.fixture(scope="module")
def wan_conds(host):
    return host.wan_cond(1), host.wan_cond(2)


def modules(host, model, interval=3, max_order=1, warmup=2, cache_device="auto"):
    return apply(host, model, interval=interval, max_order=max_order, warmup=warmup, level="modules",
                 clock="step", cache_device=cache_device)


def case(host, name, flux, conds, wan, wan_conds):
    """(model, positive, negative, latent) of the named tiny model."""
    if name == "flux":
        return flux, *conds, host.empty_latent()
    return wan, *wan_conds, host.wan_latent()


def count_calls(host, blocks, names: tuple[str, ...]):
    """Real forward calls of the submodules ``names`` of every block: ``counts[name][block]``."""
    return host.count_calls({name: [block.get_submodule(name) for block in blocks] for name in names})


@pytest.mark.parametrize("name", ["flux", "wan"])
def test_interval_one_is_bit_identical_with_cfg(host, flux, conds, wan, wan_conds, name):
    model, positive, negative, latent = case(host, name, flux, conds, wan, wan_conds)
    reference = host.ksample(model, positive, negative, latent, steps=8, cfg=3.5, seed=3)
    patched = host.ksample(modules(host, model, interval=1), positive, negative, latent, steps=8, cfg=3.5, seed=3)
    assert torch.equal(patched, reference)


@pytest.mark.parametrize("uncond_tokens", [6, 40], ids=["batched", "separate"])
def test_flux_forecast_steps_skip_the_branches_and_run_the_modulation(host, flux, uncond_tokens):
    """cfg > 1: conds of equal text length run batched (one call per step), 6 vs 40 tokens run separately (two
    calls per step, each cond with its own caches)."""
    adapters = host.pack_module("nodes.adapters.module_adapters")
    dm = flux.model.diffusion_model
    double, single = adapters.FLUX_DOUBLE, adapters.FLUX_SINGLE
    calls_per_step = 1 if uncond_tokens == 6 else 2
    expected_full = len(full_steps(STEPS, 3, 2, 1)) * calls_per_step
    assert expected_full < STEPS * calls_per_step
    positive, negative = host.flux_cond(1, tokens=6), host.flux_cond(2, tokens=uncond_tokens)
    with count_calls(host, dm.double_blocks, double.expensive + double.modulation) as d_calls, \
            count_calls(host, dm.single_blocks, single.expensive + single.modulation) as s_calls:
        out = host.ksample(modules(host, flux), positive, negative, host.empty_latent(), steps=STEPS, cfg=3.5)
    assert torch.isfinite(out).all()
    for calls, adapter in ((d_calls, double), (s_calls, single)):
        blocks = len(next(iter(calls.values())))
        for name in adapter.expensive:
            assert calls[name] == [expected_full] * blocks, name
        for name in adapter.modulation:
            assert calls[name] == [STEPS * calls_per_step] * blocks, name
    assert not any(module._forward_hooks for module in dm.modules())  # the recording hooks are gone


def test_wan_forecast_steps_skip_attention_cross_attention_and_ffn(host, wan, wan_conds):
    wan_adapter = host.pack_module("nodes.adapters.module_adapters").WAN
    blocks = wan.model.diffusion_model.blocks
    expected_full = len(full_steps(STEPS, 3, 2, 1))
    with count_calls(host, blocks, wan_adapter.expensive + ("norm1", "norm2")) as calls:
        out = host.ksample(modules(host, wan), *wan_conds, host.wan_latent(), steps=STEPS, cfg=3.5)
    assert torch.isfinite(out).all()
    for name in wan_adapter.expensive + ("norm1", "norm2"):  # the norms only feed the skipped branches
        assert calls[name] == [expected_full] * len(blocks), name


@contextmanager
def replaced_outputs(block: torch.nn.Module, branches, stored: dict):
    handles = [block.get_submodule(b.module).register_forward_hook(lambda _m, _i, _o, t=stored[b.name]: t.clone())
               for b in branches]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def spy_on_block(patched, block_type: str, index: int, block: torch.nn.Module, branches):
    """A clone of ``patched`` whose replacement of one block is wrapped. A full call keeps the branch outputs
    computed inside it; a forecast call keeps its output and, computed right then with the original block it
    was given, the real block's output on the same inputs with its branches replaced by the last kept ones."""
    model = patched.clone()
    ours = model.model_options["transformer_options"]["patches_replace"]["dit"][(block_type, index)]
    calls, current, stored = [], {}, {}

    def spy(args, extra):
        inputs = {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in args.items()}
        current.clear()
        out = ours(args, extra)
        if current:
            stored.clear()
            stored.update(current)
            calls.append(("full", None, None))
            return out
        with replaced_outputs(block, branches, stored), torch.no_grad():
            expected = extra["original_block"](inputs)
        calls.append(("forecast", {k: v.clone() for k, v in out.items()}, expected))
        return out

    def recorder(name):
        def hook(_module, _inputs, output):
            current[name] = output.clone()
        return hook

    handles = [block.get_submodule(b.module).register_forward_hook(recorder(b.name)) for b in branches]
    model.set_model_patch_replace(spy, "dit", block_type, index)
    return model, calls, handles


@pytest.mark.parametrize("name,block_type,stack,index", [("flux", "double_block", "double_blocks", 1),
                                                         ("flux", "single_block", "single_blocks", 2),
                                                         ("wan", "double_block", "blocks", 1)])
def test_order_zero_forecast_is_the_block_with_its_branches_replaced(host, flux, conds, wan, wan_conds, name,
                                                                     block_type, stack, index):
    """Order 0 forecasts the stored branch outputs of the last full step, so a forecast step's block output must
    equal the real block run on the same inputs with its branch outputs replaced by those (live modulation,
    gates and residual adds): exact, float32 throughout."""
    model, positive, negative, latent = case(host, name, flux, conds, wan, wan_conds)
    block = getattr(model.model.diffusion_model, stack)[index]
    branches = host.pack_module("nodes.adapters.module_adapters").adapter_for(block).branches
    spied, calls, handles = spy_on_block(modules(host, model, max_order=0), block_type, index, block, branches)
    try:
        host.ksample(spied, positive, negative, latent, steps=10, cfg=3.5)
    finally:
        for handle in handles:
            handle.remove()
    assert len(calls) == 10  # cond and uncond batched: one call per step
    assert [kind for kind, *_ in calls].count("full") == len(full_steps(10, 3, 2, 1))
    for kind, out, expected in calls:
        if kind == "forecast":
            assert out.keys() == expected.keys()
            for stream, value in out.items():
                assert torch.equal(value, expected[stream]), stream


@pytest.mark.parametrize("name", ["chroma", "flux2", "hunyuan_video", "hunyuan_video15", "wan22_5b"])
def test_other_models_with_these_blocks(host, name):
    """Flux's blocks as Chroma (model-computed modulation), Flux 2 (global modulation, SiLU MLP) and HunyuanVideo
    (token-range modulation) use them, and Wan 2.2 5B (per-token timestep modulation): interval 1 is exact, and
    an order-0 forecast step of each stack's last block equals that block run with its branches replaced."""
    tiny = host.TINY_MODELS[name]
    model = tiny.load(0)
    positive, negative, latent = tiny.cond(1), tiny.cond(2), tiny.empty_latent()
    reference = host.ksample(model, positive, negative, latent, steps=4, cfg=3.5)
    assert torch.equal(host.ksample(modules(host, model, interval=1), positive, negative, latent, steps=4, cfg=3.5),
                       reference)
    adapter_for = host.pack_module("nodes.adapters.module_adapters").adapter_for
    for stack in tiny.stacks:
        blocks = getattr(model.model.diffusion_model, stack)
        if not len(blocks):
            continue
        block_type = "single_block" if stack.startswith("single") else "double_block"
        block = blocks[len(blocks) - 1]
        spied, calls, handles = spy_on_block(modules(host, model, max_order=0), block_type, len(blocks) - 1, block,
                                             adapter_for(block).branches)
        try:
            host.ksample(spied, positive, negative, latent, steps=6, cfg=3.5)
        finally:
            for handle in handles:
                handle.remove()
        forecasts = [(out, expected) for kind, out, expected in calls if kind == "forecast"]
        assert len(forecasts) == 6 - len(full_steps(6, 3, 2, 1))
        for out, expected in forecasts:
            assert all(torch.equal(value, expected[stream]) for stream, value in out.items()), stack


def _stream_elements(host, name: str, model) -> tuple[int, int]:
    """Per batch row and hidden unit, the token-vectors each level caches per factor, from the shapes:
    (modules, residual)."""
    dm = model.model.diffusion_model
    if name == "flux":
        img, txt = (16 // 2) ** 2, host.flux_cond(1)[0][0].shape[1]
        double, single = len(dm.double_blocks), len(dm.single_blocks)
        return 2 * double * (img + txt) + single * (img + txt), (img + txt) + (img + txt)
    tokens = (16 // 2) ** 2
    return 3 * len(dm.blocks) * tokens, tokens


@pytest.mark.parametrize("name", ["flux", "wan"])
def test_cpu_cache_runs_and_holds_what_the_shapes_imply(host, flux, conds, wan, wan_conds, name, caplog):
    import comfy.patcher_extension as ext

    model, positive, negative, latent = case(host, name, flux, conds, wan, wan_conds)
    run_key = host.pack_module("nodes.run_state").RUN_KEY
    peaks, runs = {}, {}
    for level in ("residual", "modules"):
        patched = apply(host, model, interval=3, max_order=1, warmup=2, level=level, clock="step",
                        cache_device="cpu").clone()
        capture = _RunCapture(run_key)
        patched.add_wrapper_with_key(ext.WrappersMP.OUTER_SAMPLE, "test_capture", capture)
        with caplog.at_level(logging.INFO):
            out = host.ksample(patched, positive, negative, latent, steps=10, cfg=3.5)
        assert torch.isfinite(out).all()
        (run,) = capture.runs
        assert run.level == level and run.stats.forecasts > 0
        assert run.bank.bytes_held() == 0  # released at the end of the run
        peaks[level], runs[level] = run.stats.peak_cache_bytes, run
    modules_elements, residual_elements = _stream_elements(host, name, model)
    assert peaks["modules"] * residual_elements == peaks["residual"] * modules_elements
    ratio = modules_elements / residual_elements
    assert runs["modules"].modules.ratio == ratio
    assert f"{ratio:.1f}x the residual level's for these shapes" in caplog.text


def test_non_finite_forecast_falls_back_to_full_compute(host, flux, conds, caplog):
    """The last single block's branch output is poisoned at one text token on the 4th full step (step 6): the
    model's output drops text tokens after that block, so the image stays finite, but the recorded branch
    cannot be extrapolated: step 7 (planned forecast) is computed in full, logged."""
    planned = full_steps(20, 4, 3, 1)
    assert planned[3] == 6 and 7 not in planned
    last = flux.model.diffusion_model.single_blocks[-1]
    seen = [0]

    def poison(_module, _inputs, output):
        seen[0] += 1
        if seen[0] == 4:
            output = output.clone()
            output[0, 0, 0] = float("inf")
            return output
        return None

    handle = last.linear2.register_forward_hook(poison)
    try:
        with caplog.at_level(logging.INFO):
            out = host.ksample(modules(host, flux, interval=4, warmup=3), *conds, host.empty_latent(), steps=20)
    finally:
        handle.remove()
    assert torch.isfinite(out).all()
    assert "is not finite" in caplog.text and "computing it in full" in caplog.text
    assert seen[0] == len(planned) + 1  # step 7 computed as well; later forecasts start from it
    assert f"evaluations 20, full {len(planned) + 1}," in caplog.text


def test_blocks_without_a_module_adapter_fall_back_to_residual(host, wan_conds, caplog):
    """A Wan whose second block is of another class (as Wan variants' blocks are): the module level is refused
    for the whole model, with a log line, and the run is the residual level's."""
    import comfy.ldm.wan.model

    class OtherBlock(comfy.ldm.wan.model.WanAttentionBlock):
        pass

    model = host.tiny_wan(seed=0)  # a fresh model: its block is retyped, nothing shared is touched
    model.model.diffusion_model.blocks[1].__class__ = OtherBlock
    reference = host.ksample(model, *wan_conds, host.wan_latent(), steps=6, cfg=2.0)
    with caplog.at_level(logging.INFO):
        patched = modules(host, model, interval=1)
        out = host.ksample(patched, *wan_conds, host.wan_latent(), steps=6, cfg=2.0)
    assert "no module adapter for OtherBlock blocks yet: using level=residual" in caplog.text
    assert "level residual" in caplog.text and torch.equal(out, reference)


def test_module_families_are_the_families_whose_blocks_all_have_adapters(host):
    """``MODULE_FAMILIES`` (the README matrix's ``modules`` entries) against every tiny model's real blocks."""
    families = host.pack_module("nodes.adapters.families")
    module_level = host.pack_module("nodes.module_level")
    module_families = host.pack_module("nodes.adapters.module_adapters").MODULE_FAMILIES
    seen = set()
    for tiny in host.TINY_MODELS.values():
        diffusion_model = tiny.build()
        family = families.family_of(diffusion_model)
        if family is None:
            continue
        seen.add(family.name)
        supported = not module_level.unsupported_blocks(family, diffusion_model)
        assert supported == (family.name in module_families), tiny.name
    assert set(module_families) <= seen


def test_modules_level_page_lists_the_module_adapters(host):
    from test_docs import DOCS

    page = (DOCS / "modules-level.md").read_text()
    assert host.pack_module("nodes.adapters.module_adapters").module_adapters_markdown() in page
