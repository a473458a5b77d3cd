"""Calibration profiles, pure: candidate plans spend exactly the budget, the profile round-trips, and a corrupt,
foreign or inconsistent profile is refused with the reason."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch

from taylor_core import PREDICTORS, FullStepList, make_predictor, speedup_full_steps
from taylor_core.calibration import (
    CANDIDATE_PREDICTORS,
    DEFAULT_CANDIDATE,
    MAX_CANDIDATES,
    MAX_PSNR,
    Profile,
    ProfileError,
    candidate_plans,
    choose,
    fingerprint,
    held_out_noise,
    load_profile,
    profile_key,
    psnr,
)

FIELDS = {"model": "m", "patches": "p", "conditioning": "c", "guidance": ["CFGGuider", {"cfg": 4.0}],
          "latent": [16, 16, 16], "sampler": "sample_euler", "sigmas": [1.0, 0.5, 0.0], "steps": 10,
          "target_speedup": 2.5, "level": "output", "clock": "step", "window": [1, 1, 0.0, 1.0]}


@pytest.mark.parametrize("steps", [6, 10, 20, 30, 50])
@pytest.mark.parametrize("speedup", [1.5, 2.0, 2.5, 3.0, 3.75, 5.0, 6.0])
@pytest.mark.parametrize("tail", [0, 1, 2])
def test_every_candidate_spends_exactly_the_budget(steps, speedup, tail):
    candidates = candidate_plans(steps, speedup, tail, (True,) * steps)
    budget = speedup_full_steps(steps, speedup)
    if budget < 1 + 1 + tail:  # step 0, warm-up 1 and the tail exceed it: nothing to place
        assert candidates == [] or all(len(c.full_steps) == budget for c in candidates)
        return
    assert candidates, "a budget with free full steps has candidates"
    for candidate in candidates:
        assert len(candidate.full_steps) == budget
        assert candidate.full_steps[0] == 0 and list(candidate.full_steps) == sorted(set(candidate.full_steps))
        assert all(steps - 1 - i in candidate.full_steps for i in range(tail))
    assert {(c.forecaster, c.max_order) for c in candidates} == set(CANDIDATE_PREDICTORS)
    assert len({(c.forecaster, c.max_order, c.full_steps) for c in candidates}) == len(candidates)


def test_the_two_plans_differ_where_there_is_room():
    names = {c.name for c in candidate_plans(30, 3.0, 1, (True,) * 30)}
    assert names == {f"{p}{o}/{plan}" for p, o in CANDIDATE_PREDICTORS for plan in ("growth", "even")}
    assert len(names) + 1 == MAX_CANDIDATES  # and the fitted one: the count the node's tooltip states


@pytest.mark.parametrize("name, order", CANDIDATE_PREDICTORS)
def test_every_candidate_predictor_is_a_node_forecaster(name, order):
    make_predictor(name, order)  # a ValueError for a name or order the nodes' forecaster input does not take


def test_a_full_step_list_is_a_fixed_plan():
    plan = FullStepList((0, 3, 9)).plan(10, (True,) * 10)
    assert [i for i, full in enumerate(plan.full) if full] == [0, 3, 9]
    with pytest.raises(ValueError, match="do not fit"):
        FullStepList((0, 3, 9)).plan(8, (True,) * 8)
    with pytest.raises(ValueError, match="including 0"):
        FullStepList((1, 3)).validate()


def _profile(**changes) -> Profile:
    candidates = candidate_plans(10, 2.5, 1, (True,) * 10)
    scores = {c.name: float(i) for i, c in enumerate(candidates)}
    return dataclasses.replace(Profile.chosen_from(FIELDS, candidates, scores, scores), **changes)


def test_the_profile_round_trips_and_keeps_the_best():
    profile = _profile()
    assert profile.chosen == max(profile.scores, key=profile.scores.get) != DEFAULT_CANDIDATE
    assert load_profile(profile.to_json(), FIELDS, PREDICTORS) == profile
    assert profile.key == profile_key(dict(reversed(FIELDS.items())))  # order of the fields does not matter


@pytest.mark.parametrize(("text", "reason"), [
    ("{not json", "unreadable"),
    ("[]", "unreadable"),
    (json.dumps({"key": "x"}), "unreadable"),
])
def test_a_corrupt_profile_is_refused(text, reason):
    with pytest.raises(ProfileError, match=reason):
        load_profile(text, FIELDS, PREDICTORS)


@pytest.mark.parametrize("change", [{"steps": 12}, {"sampler": "sample_heun"}, {"model": "other"},
                                    {"patches": "lora"}, {"target_speedup": 3.0}, {"sigmas": [1.0, 0.4, 0.0]},
                                    {"conditioning": "another prompt"}, {"latent": [16, 24, 24]},
                                    {"guidance": ["CFGGuider", {"cfg": 3.5}]}])
def test_a_profile_for_another_run_is_refused(change):
    with pytest.raises(ProfileError, match="another model"):
        load_profile(_profile().to_json(), {**FIELDS, **change}, PREDICTORS)


def test_a_foreign_version_or_inconsistent_plan_is_refused():
    with pytest.raises(ProfileError, match="version"):
        load_profile(_profile(version=99).to_json(), FIELDS, PREDICTORS)
    with pytest.raises(ProfileError, match="full steps"):
        load_profile(_profile(full_steps=(0, 4, 11, 12)).to_json(), FIELDS, PREDICTORS)
    with pytest.raises(ProfileError, match="not the budget"):
        load_profile(_profile(full_steps=(0, 9)).to_json(), FIELDS, PREDICTORS)
    with pytest.raises(ProfileError, match="forecaster"):
        load_profile(_profile(forecaster="magic").to_json(), FIELDS, PREDICTORS)
    data = json.loads(_profile().to_json())
    data["key"] = profile_key({**FIELDS, "steps": 11})  # a key that is not its own fields'
    with pytest.raises(ProfileError, match="another model"):
        load_profile(json.dumps(data), FIELDS, PREDICTORS)


def test_psnr_and_fingerprints():
    reference = torch.linspace(-1, 1, 64).reshape(4, 16)
    assert psnr(reference.clone(), reference) == MAX_PSNR
    assert psnr(reference + 0.01, reference) > psnr(reference + 0.1, reference)
    assert psnr(torch.full_like(reference, math.nan), reference) == -math.inf
    a = [("w", torch.ones(3, 4)), ("b", torch.zeros(4))]
    assert fingerprint(a) == fingerprint(list(reversed(a)))
    assert fingerprint(a) != fingerprint([("w", torch.ones(3, 4) * 2), ("b", torch.zeros(4))])
    assert fingerprint(a) != fingerprint([("w", torch.ones(3, 4, dtype=torch.float16)), ("b", torch.zeros(4))])
    prompt = torch.zeros(1, 6, 32)
    other = prompt.clone()
    other[0, 1, 5] = 1.0  # off the 4 strided values: only the whole digest sees it
    assert fingerprint([("c", prompt)]) == fingerprint([("c", other)])
    assert fingerprint([("c", prompt)], whole=True) != fingerprint([("c", other)], whole=True)
    assert fingerprint([("c", {"t": prompt, "id": object()})], whole=True) == \
        fingerprint([("c", {"t": prompt.clone(), "id": object()})], whole=True)  # objects count by their type


def test_a_margin_keeps_the_default_against_a_candidate_that_beats_it_by_less():
    scores, held_out = {DEFAULT_CANDIDATE: 40.0, "a": 41.2, "b": 43.0}, {DEFAULT_CANDIDATE: 40.0, "a": 41.5, "b": 40.9}
    assert choose(scores, held_out, margin=0.0) == "b"
    assert choose(scores, held_out, margin=1.0) == "a"
    assert choose(scores, held_out, margin=1.3) == DEFAULT_CANDIDATE


def test_the_default_is_kept_unless_a_candidate_beats_it_on_both_noises():
    def pick(held_out: dict) -> str:
        return choose(scores, held_out, margin=0.0)

    scores = {DEFAULT_CANDIDATE: 40.0, "foca1/even": 45.0, "newton2/growth": 41.0}
    assert pick({DEFAULT_CANDIDATE: 40.0, "foca1/even": 39.0, "newton2/growth": 40.5}) == "newton2/growth"
    assert pick({DEFAULT_CANDIDATE: 40.0, "foca1/even": 41.0, "newton2/growth": 45.5}) == "newton2/growth"
    assert pick({DEFAULT_CANDIDATE: 40.0, "foca1/even": 41.0, "newton2/growth": 44.0}) == "foca1/even"
    assert pick({DEFAULT_CANDIDATE: 40.0, "foca1/even": 39.0, "newton2/growth": 39.0}) == DEFAULT_CANDIDATE
    assert choose({"a": 1.0, "b": 3.0}, {"a": 2.0, "b": 1.0}, margin=0.0) == "b"  # no default among them: the best mean


def test_the_held_out_noise_is_fixed_and_like_its_model():
    like = torch.zeros(2, 4, 8, 8, dtype=torch.float16)
    noise = held_out_noise(like)
    assert noise.shape == like.shape and noise.dtype == like.dtype
    assert torch.equal(noise, held_out_noise(torch.ones_like(like)))
    assert abs(float(noise.float().std()) - 1.0) < 0.1  # 512 draws: the std's standard error is about 0.03
