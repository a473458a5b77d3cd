"""Calibration profiles (TaylorSeer Apply's ``calibration``) through ComfyUI's real KSampler on the tiny Flux, with a
temporary ComfyUI user directory: the first ``auto`` run is the unpatched model's, bit for bit, and writes a
profile; the next run samples on the profile's plan (real calls of the last block counted); a profile belongs to its
prompt, latent size and cfg, not to its seed or batch; profiles of another run, corrupt or mismatched ones are not
used (one log line each); a weight patch changes the key; an interrupted calibration writes nothing."""

from __future__ import annotations

import json
import logging

import pytest
import torch
from test_adaptive import witnessed

STEPS, SPEEDUP = 10, 2.5


@pytest.fixture
def profiles(tmp_path):
    """The profile folder of a fresh ComfyUI user directory (restored afterwards)."""
    import folder_paths

    previous = folder_paths.get_user_directory()
    folder_paths.set_user_directory(str(tmp_path))
    yield tmp_path / "taylor_forecast" / "profiles"
    folder_paths.set_user_directory(previous)


def calibrated(host, model, calibration: str = "auto", speedup: float = SPEEDUP):
    return host.run_node("TaylorSeerApply", model, target_speedup=speedup, calibration=calibration)[0]


def sample(host, model, conds, steps: int = STEPS, sampler: str = "euler", seed: int = 3) -> torch.Tensor:
    return host.ksample(model, *conds, host.empty_latent(), steps=steps, cfg=2.0, sampler=sampler, seed=seed)


def files(folder) -> list:
    return sorted(folder.iterdir()) if folder.exists() else []


def test_the_first_run_is_uncached_and_the_next_samples_on_the_profile(host, flux, conds, profiles, caplog):
    from taylor_core.calibration import FITTED_CANDIDATE, choose, psnr
    from taylor_core.placement import probe_steps

    reference = sample(host, flux, conds)
    computed: list[int] = []
    model = calibrated(host, witnessed(flux, computed))
    with caplog.at_level(logging.INFO):
        first = sample(host, model, conds)
    assert torch.equal(first, reference)
    (path,) = files(profiles)
    profile = json.loads(path.read_text())
    fixed = {tuple(p) for p in _trial_plans(STEPS)}
    assert {tuple(profile["plans"][c.name]) for c in _candidates(STEPS)} == fixed
    fitted = profile["plans"].get(FITTED_CANDIDATE)
    assert (fitted is None) == (tuple(fitted or ()) in fixed)  # the fitted plan is tried when it is a new one
    tried = len(_candidates(STEPS)) + (fitted is not None)
    assert len(profile["scores"]) == len(profile["held_out"]) == len(profile["plans"]) == tried
    # uncached (recorded), uncached with a step perturbed per probe, each candidate; uncached and each candidate
    # on the held-out noise
    forced = [i in (0, STEPS - 1) for i in range(STEPS)]
    probes = len(probe_steps(forced, host.pack_module("nodes.calibration").PROBES))
    assert len(computed) == (2 + probes) * STEPS + 2 * sum(len(p) for p in profile["plans"].values())
    assert profile["chosen"] == choose(profile["scores"], profile["held_out"])
    assert len(profile["full_steps"]) == round(STEPS / SPEEDUP)
    computed.clear()
    caplog.clear()
    with caplog.at_level(logging.INFO):
        second = sample(host, model, conds)
    assert computed == profile["full_steps"]  # one real call per full step, on the profile's steps
    assert abs(psnr(second, reference) - profile["scores"][profile["chosen"]]) < 1e-3  # the chosen trial, again
    plan_line = next(line for line in caplog.text.splitlines() if "plan (" in line)
    assert "calibrated plan" in plan_line and f"forecaster {profile['forecaster']}" in plan_line
    assert "calibrated plan" in next(line for line in caplog.text.splitlines() if "compute ratio" in line)


def _candidates(steps: int) -> list:
    """The fixed candidates of the module's run."""
    from taylor_core.calibration import candidate_plans

    return candidate_plans(steps, SPEEDUP, 1, (True,) * steps)


def _trial_plans(steps: int) -> list[tuple[int, ...]]:
    """The full steps of every fixed candidate of the module's run (one real call each on euler)."""
    return [c.full_steps for c in _candidates(steps)]


def test_a_profile_belongs_to_its_prompt_latent_size_and_cfg_not_to_its_seed(host, flux, conds, profiles, caplog):
    sample(host, calibrated(host, flux), conds, steps=6)
    (path,) = files(profiles)
    full_steps = json.loads(path.read_text())["full_steps"]
    rebuilt = (host.flux_cond(1), host.flux_cond(2))  # the same prompts, new tensors
    for same_prompt in ({"seed": 9}, {"latent": host.empty_latent(batch=2)}, {"conds": rebuilt}):
        computed: list[int] = []
        caplog.clear()
        with caplog.at_level(logging.INFO):
            host.ksample(calibrated(host, witnessed(flux, computed)), *same_prompt.get("conds", conds),
                         same_prompt.get("latent", host.empty_latent()), steps=6, cfg=2.0,
                         seed=same_prompt.get("seed", 3))
        assert "calibration: profile" in caplog.text and "sampling this run uncached" not in caplog.text
        assert sorted(set(computed)) == full_steps and files(profiles) == [path]
    others = [((host.flux_cond(7), conds[1]), host.empty_latent(), 2.0),  # another prompt
              ((conds[0], host.flux_cond(8)), host.empty_latent(), 2.0),  # another negative prompt
              (conds, host.empty_latent(size=24), 2.0),  # another latent size
              (conds, host.empty_latent(), 3.0)]  # another cfg
    for count, (other_conds, latent, cfg) in enumerate(others, start=2):
        caplog.clear()
        with caplog.at_level(logging.INFO):
            out = host.ksample(calibrated(host, flux), *other_conds, latent, steps=6, cfg=cfg, seed=3)
        assert "sampling this run uncached" in caplog.text and len(files(profiles)) == count
        assert torch.equal(out, host.ksample(flux, *other_conds, latent, steps=6, cfg=cfg, seed=3))


def test_profiles_of_another_run_corrupt_or_mismatched_are_not_used(host, flux, conds, profiles, caplog):
    model = calibrated(host, flux)
    sample(host, model, conds, steps=8)
    (first,) = files(profiles)
    with caplog.at_level(logging.INFO):
        sample(host, model, conds, steps=8, sampler="dpmpp_2m")  # another sampler: its own calibration
    assert "sampling this run uncached" in caplog.text and "is not used" not in caplog.text
    (second,) = set(files(profiles)) - {first}
    for content, why in ((first.read_text(), "another model, sampler"), ("{corrupt", "unreadable")):
        second.write_text(content)
        computed: list[int] = []
        caplog.clear()
        with caplog.at_level(logging.INFO):
            sample(host, calibrated(host, witnessed(flux, computed)), conds, steps=8, sampler="dpmpp_2m")
        assert caplog.text.count("is not used") == 1 and why in caplog.text
        assert "calibrated" not in caplog.text and "sampling this run uncached" not in caplog.text
        assert len(set(computed)) == round(8 / SPEEDUP)  # the default plan


def test_a_weight_patch_changes_the_key_and_a_loaded_patch_does_not(host, flux, conds, profiles, caplog):
    sample(host, calibrated(host, flux), conds, steps=6)
    name = next(k for k, v in flux.model.state_dict().items() if k.endswith(".weight") and v.ndim == 2)
    lora = flux.clone()
    assert lora.add_patches({name: (torch.full_like(flux.model.state_dict()[name], 0.01),)}, 1.0)
    sample(host, calibrated(host, lora), conds, steps=6)  # its weights loaded patched
    assert len(files(profiles)) == 2
    caplog.clear()
    with caplog.at_level(logging.INFO):
        sample(host, calibrated(host, flux), conds, steps=6)
    assert len(files(profiles)) == 2 and "calibration: profile" in caplog.text


@pytest.mark.parametrize("where", ["a perturbed run", "a candidate"])
def test_an_interrupted_calibration_writes_nothing(host, flux, conds, profiles, where):
    import comfy.model_management

    from taylor_core.placement import probe_steps

    reference = sample(host, flux, conds, steps=8)
    calls: list[int] = []
    probes = len(probe_steps([i in (0, 7) for i in range(8)], host.pack_module("nodes.calibration").PROBES))
    stop = 12 if where == "a perturbed run" else 8 * (1 + probes) + 2  # after the uncached run's 8 calls

    def interrupt(args, extra):
        calls.append(1)
        if len(calls) == stop:
            raise comfy.model_management.InterruptProcessingException()
        return extra["original_block"](args)

    model = flux.clone()
    model.set_model_patch_replace(interrupt, "dit", "single_block", len(flux.model.diffusion_model.single_blocks) - 1)
    patched = calibrated(host, model)
    with pytest.raises(comfy.model_management.InterruptProcessingException):
        sample(host, patched, conds, steps=8)
    assert files(profiles) == [] and not (profiles.parent.exists() and any(profiles.parent.rglob("*.json")))
    assert torch.equal(sample(host, patched, conds, steps=8), reference)  # a fresh calibration, nothing left over
    assert len(files(profiles)) == 1


def test_calibration_needs_a_budget(host, flux):
    with pytest.raises(ValueError, match="calibration 'auto' needs a target_speedup"):
        calibrated(host, flux, speedup=0.0)


def test_a_profile_folder_that_cannot_be_written_is_logged_and_the_run_goes_on(host, flux, conds, profiles, caplog):
    reference = sample(host, flux, conds, steps=6)
    profiles.parent.mkdir(parents=True)
    profiles.write_text("a file where the folder should be")  # mkdir of the folder fails
    with caplog.at_level(logging.INFO):
        out = sample(host, calibrated(host, flux), conds, steps=6)
    assert torch.equal(out, reference)
    assert caplog.text.count("could not be written") == 1 and "profile written" not in caplog.text


@pytest.mark.parametrize("sampler", ["euler", "heun", "dpmpp_2m"])
def test_the_recorded_trajectory_and_a_perturbed_step(host, flux, conds, sampler):
    """The recorder takes one feature per step and leaves the run's bits alone; a perturbation at step p changes
    the run from step p on and nothing before it."""
    import comfy.samplers

    trajectory = host.pack_module("nodes.trajectory")
    steps, p = 6, 3
    sigmas = [float(s) for s in comfy.samplers.calculate_sigmas(flux.get_model_object("model_sampling"), "simple",
                                                                steps)]

    def recorded(*post_cfg):
        model = flux.clone()
        recorder = trajectory.TrajectoryRecorder(sigmas)
        for function in (*[f(sigmas) for f in post_cfg], recorder):
            model.set_model_sampler_post_cfg_function(function)
        return sample(host, model, conds, steps=steps, sampler=sampler), recorder

    reference = sample(host, flux, conds, steps=steps, sampler=sampler)
    out, recorder = recorded()
    assert torch.equal(out, reference) and recorder.complete
    moved, perturbed = recorded(lambda sigmas: trajectory.Perturbation(sigmas, p, 0.05))
    assert not torch.equal(moved, reference) and perturbed.complete
    for i in range(steps):
        same = torch.equal(perturbed.features[i], recorder.features[i])
        assert same == (i < p), i  # heun's second evaluation of step p - 1 is at step p's sigma: perturbed too
