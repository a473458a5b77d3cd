"""The feature detection of ``nodes/compat.py`` against the real ComfyUI of this host (0.3.75 or 0.33), and the
fall-backs it leads to (docs/comfyui-versions.md says what the newest ComfyUI, 0.38, changes and what of it is
untested here).

Nothing of ComfyUI is mocked. The model compiler's allocation graph exists only in ComfyUI 0.38 on CUDA, so its
detection is checked to answer "off" here, and its fall-backs are driven by forcing the pack's own detection
(``nodes.levels.block_level_blocker``) in two tests. The other nodes' holders are put in ``transformer_options``
on a clone, the way the 0.38 nodes leave them there.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import logging

import pytest
import torch
from test_flux_taylorseer import apply, full_steps

STEPS = 8


def test_no_allocation_graph_on_this_comfyui(host, flux):
    compat = host.pack_module("nodes.compat")
    for device in (torch.device("cpu"), torch.device("cuda", 0)):
        assert compat.allocation_graph_on(device) is False
        assert compat.block_level_blocker(device, flux.model.diffusion_model) is None
    assert compat.opens_allocation_graph(type(flux.model.diffusion_model)) is False  # no compiler, no such call
    assert compat.opens_allocation_graph(torch.nn.Linear) is False  # no ComfyUI code in its classes
    if importlib.util.find_spec("comfy.model_prefetch") is not None:  # 0.33: the prefetch queue, no compiler yet
        assert not hasattr(importlib.import_module("comfy.model_prefetch"), "malloc_graph_enabled")


def test_every_entry_point_the_pack_attaches_through_is_found(host, flux):
    compat = host.pack_module("nodes.compat")
    assert compat.missing_entry_points(flux) == []
    missing = compat.missing_entry_points(flux.model)  # a BaseModel is no ModelPatcher
    assert missing == [f"ModelPatcher.{name}" for name in compat.PATCHER_METHODS]


def _block_calls(host, model, conds) -> tuple[torch.Tensor, list[int]]:
    with host.count_block_calls(model.model.diffusion_model, ("double_blocks",)) as calls:
        out = host.ksample(model, *conds, host.empty_latent(), steps=STEPS, cfg=2.0)
    return out, calls["double_blocks"]


def test_a_block_level_blocked_by_the_comfyui_falls_back_to_output_logged(host, flux, conds, monkeypatch, caplog):
    """Found at the run's first call (the clone was patched before): the run falls back; found when the node
    runs: the clone gets the output level."""
    levels = host.pack_module("nodes.levels")
    reference, _ = _block_calls(host, apply(host, flux, interval=3, level="output"), conds)
    patched = apply(host, flux, interval=3, level="residual")
    monkeypatch.setattr(levels, "block_level_blocker", lambda device, model: f"the compiler is on for {device}")
    with caplog.at_level(logging.WARNING):
        out, calls = _block_calls(host, patched, conds)
    assert "the compiler is on for cpu: falling back to level=output for this run" in caplog.text
    assert torch.equal(out, reference)
    # output level: every block runs only on computed steps, cond and uncond in one call
    assert calls == [len(full_steps(STEPS, 3, 3, 1))] * len(flux.model.diffusion_model.double_blocks)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        applied = apply(host, flux, interval=3, level="residual")
    assert "the compiler is on for cpu: using level=output" in caplog.text
    assert torch.equal(_block_calls(host, applied, conds)[0], reference)


def test_a_blocked_gate_computes_every_step(host, flux, conds, monkeypatch, caplog):
    levels = host.pack_module("nodes.levels")
    reference = host.ksample(flux, *conds, host.empty_latent(), steps=STEPS, cfg=2.0)
    gated = host.run_node("CGTaylorGate", flux, 0.5, 1, 1, 2, 1, 0.0, 1.0, 0, "sigma", "auto")[0]
    monkeypatch.setattr(levels, "block_level_blocker", lambda device, model: f"the compiler is on for {device}")
    with caplog.at_level(logging.WARNING):
        out = host.ksample(gated, *conds, host.empty_latent(), steps=STEPS, cfg=2.0)
    assert "the gate needs the model's blocks; computing every step of this run" in caplog.text
    assert torch.equal(out, reference)


@pytest.mark.parametrize("key, value, peer", [
    ("k6_magcache", object(), "Kandinsky 6 MagCache"),
    ("attention_backend_history_v1", {"comfy_core_block_sparse_attention": object()}, "block-sparse attention"),
])
def test_a_peer_the_newest_comfyui_leaves_on_the_model_stops_forecasting(host, flux, conds, key, value, peer,
                                                                        caplog):
    reference = host.ksample(flux, *conds, host.empty_latent(), steps=STEPS, cfg=2.0)
    with_peer = flux.clone()
    with_peer.model_options["transformer_options"][key] = value
    with caplog.at_level(logging.WARNING):
        patched = apply(host, with_peer, interval=3)
        assert f"{peer} is on the same model" in caplog.text
        caplog.clear()
        out = host.ksample(patched, *conds, host.empty_latent(), steps=STEPS, cfg=2.0)
    assert f"{peer} is on the same model" in caplog.text and "Remove one of the two nodes" in caplog.text
    assert torch.equal(out, reference)  # the holders are inert here: every step computed, nothing else changed


def _module_source(module: str) -> str | None:
    """The source of ``module`` on this host, None when this ComfyUI has no such module."""
    if importlib.util.find_spec(module.rsplit(".", 1)[0]) is None or importlib.util.find_spec(module) is None:
        return None
    return inspect.getsource(importlib.import_module(module))


def test_every_table_row_names_a_class_this_comfyui_has_as_the_row_says(host):
    """Rows whose module this ComfyUI has: the class exists, an adapter or "its blocks go through patches_replace"
    family's module uses ``patches_replace``, a "no patches_replace block hook" family's module does not."""
    families = host.pack_module("nodes.adapters.families")
    checked = 0
    for tables in (families.FAMILIES, families.OUTPUT_ONLY):
        for (module, cls), entry in tables.items():
            source = _module_source(module)
            if source is None:
                continue
            assert hasattr(importlib.import_module(module), cls), f"{module} has no {cls}"
            reason = getattr(entry, "reason", "")
            if entry in families.FAMILIES.values() and any(s.hook == "replace" for s in entry.stacks) \
                    or reason == families._UNVERIFIED:
                assert "patches_replace" in source, f"{entry.name}: {module} uses no patches_replace"
            if reason.startswith(families._NO_HOOK):
                assert "patches_replace" not in source, f"{entry.name}: {module} uses patches_replace"
            checked += 1
    assert checked >= len(families.FAMILIES) + 5


NEWEST_ONLY = {"qwen_image21", "kandinsky6", "prism", "sensenova_u15"}  # rows of classes new in ComfyUI 0.38


def test_rows_of_classes_this_comfyui_lacks_are_absent_and_harmless(host, flux):
    """A row is matched by module and class name only: where this ComfyUI lacks the module, the pack imports
    nothing of it, and the models this ComfyUI has keep their own rows and detection answers."""
    families = host.pack_module("nodes.adapters.families")
    compat = host.pack_module("nodes.compat")
    rows = {**families.FAMILIES, **families.OUTPUT_ONLY}
    absent = {entry.name for (module, _cls), entry in rows.items() if _module_source(module) is None}
    assert NEWEST_ONLY <= absent
    assert families.family_of(flux.model.diffusion_model).name == "flux"
    present = [getattr(importlib.import_module(module), cls) for (module, cls), entry in rows.items()
               if entry.name not in absent]
    assert len(present) == len(rows) - len(absent) > 0
    # neither host has the compiler: no class's own code opens its allocation graph (read from its source)
    assert [cls.__name__ for cls in present if compat.opens_allocation_graph(cls)] == []
    assert compat.block_level_blocker(torch.device("cuda", 0), flux.model.diffusion_model) is None


@pytest.fixture(scope="module")
def ernie(host):
    """A tiny ERNIE-Image (ComfyUI 0.33+; a family added after 0.3.75 with no block hook), loaded by ComfyUI's
    detection with the test-only override of the sizes it does not read from shapes."""
    if importlib.util.find_spec("comfy.ldm.ernie") is None:
        pytest.skip("this ComfyUI has no ERNIE-Image (0.33 and newer have it)")
    params = {"hidden_size": 64, "num_attention_heads": 2, "num_layers": 2, "ffn_hidden_size": 128,
              "in_channels": 128, "out_channels": 128, "text_in_dim": 32, "rope_axes_dim": (8, 12, 12)}
    case = host.TinyModel("ernie_image", "ernie_image", "comfy.ldm.ernie.model.ErnieImageModel", params, params,
                          (6, 32), (1, 128, 8, 8), ("layers",))
    return case, case.load(seed=0)


def test_a_family_newer_than_0_3_75_runs_at_the_output_level(host, ernie, caplog):
    case, model = ernie
    families = host.pack_module("nodes.adapters.families")
    assert families.family_of(model.model.diffusion_model) is None
    positive, negative = case.cond(1), case.cond(2)

    def run(patched):
        with host.count_block_calls(model.model.diffusion_model, ("layers",)) as calls:
            out = host.ksample(patched, positive, negative, case.empty_latent(), steps=STEPS, cfg=2.0)
        return out, calls["layers"]

    reference, per_run = run(model)
    with caplog.at_level(logging.INFO):
        exact, _ = run(apply(host, model, interval=1))
    assert torch.equal(exact, reference)
    assert "ErnieImageModel (ernie_image: ERNIE-Image (ComfyUI 0.33+)) runs at level=output only" in caplog.text
    out, calls = run(apply(host, model, interval=3))
    assert torch.isfinite(out).all() and not torch.equal(out, reference)
    assert calls == [count // STEPS * len(full_steps(STEPS, 3, 3, 1)) for count in per_run]
