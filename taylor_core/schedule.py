"""Which sampling steps are computed in full and which are forecast (units: step indices)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class StepPlan:
    """Per-step plan: ``full[i]`` is True when step ``i`` runs the full model."""

    full: tuple[bool, ...]
    note: str = ""
    """Empty, or a sentence for the log explaining why the plan is all-full."""

    @property
    def num_steps(self) -> int:
        return len(self.full)

    @property
    def full_count(self) -> int:
        return sum(self.full)

    @property
    def compute_ratio(self) -> float:
        """``num_steps / full_count`` (1.0 for an empty plan)."""
        return self.num_steps / self.full_count if self.full_count else 1.0

    def is_full(self, i: int) -> bool:
        """Whether step ``i`` is full; steps outside the plan are full."""
        return self.full[i] if 0 <= i < len(self.full) else True

    def render(self, forecast_char: str = "T") -> str:
        """The plan as a string, ``F`` per full step and ``forecast_char`` per forecast step."""
        return "".join("F" if f else forecast_char for f in self.full)


def validate_window(warmup_steps: int, tail_steps: int, start_percent: float, end_percent: float) -> None:
    """Raise ``ValueError`` with an actionable message for an invalid warm-up, tail or window."""
    if warmup_steps < 0:
        raise ValueError(f"warmup_steps ({warmup_steps}) must be >= 0")
    if tail_steps < 0:
        raise ValueError(f"tail_steps ({tail_steps}) must be >= 0")
    for name, value in (("start_percent", start_percent), ("end_percent", end_percent)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} ({value}) must be between 0 and 1")
    if start_percent > end_percent:
        raise ValueError(
            f"start_percent ({start_percent}) is after end_percent ({end_percent}): "
            "set start_percent <= end_percent"
        )


def check_plan_args(num_steps: int, in_window: Sequence[bool]) -> None:
    """Raise ``ValueError`` unless there is at least one step and one window flag per step."""
    if num_steps < 1:
        raise ValueError(f"num_steps ({num_steps}) must be >= 1")
    if len(in_window) != num_steps:
        raise ValueError(f"in_window has {len(in_window)} entries for {num_steps} steps")


def forced_full(num_steps: int, warmup_steps: int, tail_steps: int, in_window: Sequence[bool]) -> tuple[bool, ...]:
    """Per step: always computed (step 0, the first ``warmup_steps``, the last ``tail_steps``, outside the window)."""
    return tuple(i == 0 or i < warmup_steps or i >= num_steps - tail_steps or not in_window[i]
                 for i in range(num_steps))


def all_full_note(warmup_steps: int, tail_steps: int, num_steps: int) -> str:
    """The log's sentence for a plan whose warm-up and tail cover every step."""
    return (f"warmup_steps ({warmup_steps}) + tail_steps ({tail_steps}) >= {num_steps} steps: "
            "every step is computed")


@dataclass(frozen=True)
class FixedIntervalSchedule:
    """One full step every ``interval`` steps, TaylorSeer style.

    Steps ``< warmup_steps``, the last ``tail_steps`` steps, steps outside the
    ``[start_percent, end_percent]`` window and step 0 are always full; any other step is full
    when ``interval`` steps have passed since the last full step.
    """

    interval: int
    warmup_steps: int
    tail_steps: int
    start_percent: float
    end_percent: float

    def validate(self) -> None:
        """Raise ``ValueError`` with an actionable message for an invalid setting."""
        if self.interval < 1:
            raise ValueError(f"interval ({self.interval}) must be >= 1: 1 computes every step")
        validate_window(self.warmup_steps, self.tail_steps, self.start_percent, self.end_percent)

    def plan(self, num_steps: int, in_window: Sequence[bool]) -> StepPlan:
        """Plan ``num_steps`` steps; ``in_window[i]`` says whether step ``i`` is inside the window.

        Returns an all-full plan with a ``note`` when ``warmup_steps + tail_steps >= num_steps``.
        """
        self.validate()
        check_plan_args(num_steps, in_window)
        if self.warmup_steps + self.tail_steps >= num_steps:
            return StepPlan(full=(True,) * num_steps, note=all_full_note(self.warmup_steps, self.tail_steps,
                                                                           num_steps))
        full: list[bool] = []
        last_full = 0
        for i, forced in enumerate(forced_full(num_steps, self.warmup_steps, self.tail_steps, in_window)):
            is_full = forced or i - last_full >= self.interval
            if is_full:
                last_full = i
            full.append(is_full)
        return StepPlan(full=tuple(full))


MAX_TARGET_SPEEDUP = 20.0
DEFAULT_GROWTH = 0.5
MIN_GROWTH, MAX_GROWTH = 0.25, 4.0


def speedup_full_steps(num_steps: int, target_speedup: float) -> int:
    """``round(num_steps / target_speedup)`` (halves round up), at least 1: the full steps a speed-up budget
    allows."""
    return max(1, math.floor(num_steps / target_speedup + 0.5))


def growing_positions(count: int, start: int, stop: int, growth: float) -> list[int]:
    """``count`` distinct integers strictly between ``start`` and ``stop`` (needs ``count < stop - start``) whose
    ``count + 1`` gaps (from ``start`` to ``stop``) change linearly, the last ``growth`` times the first (closer
    to 1 when the room is too tight for every gap to be >= 1 at that ratio): ``growth > 1`` puts more full
    steps early, ``< 1`` more late."""
    gaps, span = count + 1, stop - start
    ratio = min(max(growth, gaps / (2.0 * span - gaps)), 2.0 * span / gaps - 1.0)  # first and last gap >= 1
    first = 2.0 * span / (gaps * (1.0 + ratio))
    step = (ratio - 1.0) * first / (gaps - 1) if gaps > 1 else 0.0
    positions, edge = [], 0.0
    for j in range(count):
        edge += first + step * j
        rounded = start + math.floor(edge + 0.5)
        low = positions[-1] + 1 if positions else start + 1
        positions.append(min(max(rounded, low), stop - (count - j)))  # distinct and inside despite rounding
    return positions


@dataclass(frozen=True)
class SpeedupSchedule:
    """The plan of a speed-up budget: ``round(num_steps / target_speedup)`` full steps in all (within one: see
    ``plan``).

    The forced steps (step 0, warm-up, tail, outside the ``[start_percent, end_percent]`` window) are full and
    count against the speed-up budget; the rest of it goes to the forecast stretches in proportion to their
    length, each stretch's full steps placed with linearly changing gaps (``growth`` = last gap over first;
    1 = even; > 1 front-loads as Spectrum's growing windows do, < 1 back-loads; the default 0.5 against 0.3
    and 1: docs/performance.md). ``target_speedup`` 1 computes every step. Steps, not model evaluations, are
    counted: a multi-evaluation sampler (heun, dpmpp_2s) runs all evaluations of a step in full or none, so its
    ratio of evaluations is the same up to a step's share of evaluations (heun's last step has one).
    """

    target_speedup: float
    warmup_steps: int
    tail_steps: int
    start_percent: float
    end_percent: float
    growth: float = DEFAULT_GROWTH

    def validate(self) -> None:
        """Raise ``ValueError`` with an actionable message for an invalid setting."""
        if not 1.0 <= self.target_speedup <= MAX_TARGET_SPEEDUP:
            raise ValueError(f"target_speedup ({self.target_speedup}) must be between 1 and {MAX_TARGET_SPEEDUP:g} "
                             "(1 computes every step; 0 on the node uses interval instead)")
        if not MIN_GROWTH <= self.growth <= MAX_GROWTH:
            raise ValueError(f"growth ({self.growth}) must be between {MIN_GROWTH:g} and {MAX_GROWTH:g} "
                             "(last gap over first; 1 = even)")
        validate_window(self.warmup_steps, self.tail_steps, self.start_percent, self.end_percent)

    def plan(self, num_steps: int, in_window: Sequence[bool]) -> StepPlan:
        """Plan ``num_steps`` steps with exactly ``speedup_full_steps(num_steps, target_speedup)`` full steps,
        or, when the forced steps alone exceed that, just the forced ones, with a ``note`` saying the speed-up
        budget is not met and the speed-up that results."""
        self.validate()
        check_plan_args(num_steps, in_window)
        allowed = speedup_full_steps(num_steps, self.target_speedup)
        if self.warmup_steps + self.tail_steps >= num_steps:
            return StepPlan(full=(True,) * num_steps, note=all_full_note(self.warmup_steps, self.tail_steps,
                                                                           num_steps))
        forced = forced_full(num_steps, self.warmup_steps, self.tail_steps, in_window)
        free = allowed - sum(forced)
        if free < 0:
            return StepPlan(full=forced, note=(
                f"target_speedup {self.target_speedup:g} allows {allowed} full steps of {num_steps}, but step 0, "
                f"warmup_steps ({self.warmup_steps}), tail_steps ({self.tail_steps}) and the window force "
                f"{sum(forced)}: running at {num_steps / sum(forced):.2f}x instead"))
        full = list(forced)
        stretches = _forecast_stretches(forced)
        for (first, last), count in zip(stretches, _apportion(free, [b - a + 1 for a, b in stretches])):
            for i in growing_positions(count, first - 1, last + 1, self.growth):
                full[i] = True
        note = "" if allowed > 1 else (f"target_speedup {self.target_speedup:g} leaves one full step of {num_steps}: "
                                      "every forecast reuses step 0")
        return StepPlan(full=tuple(full), note=note)


@dataclass(frozen=True)
class FullStepList:
    """A fixed plan given as its full steps (step indices; a calibration profile's plan): every other step is
    forecast. ``plan`` refuses a run without one of them."""

    full_steps: tuple[int, ...]

    def validate(self) -> None:
        """Raise ``ValueError`` unless the steps are distinct, non-negative and include step 0."""
        if 0 not in self.full_steps or len(set(self.full_steps)) != len(self.full_steps) or min(self.full_steps) < 0:
            raise ValueError(f"full steps {list(self.full_steps)} must be distinct step indices including 0")

    def plan(self, num_steps: int, in_window: Sequence[bool]) -> StepPlan:
        """The plan of a run of ``num_steps`` steps; ``ValueError`` when a full step lies beyond it."""
        self.validate()
        check_plan_args(num_steps, in_window)
        if max(self.full_steps) >= num_steps:
            raise ValueError(f"full steps {list(self.full_steps)} do not fit a run of {num_steps} steps")
        return StepPlan(full=tuple(i in self.full_steps for i in range(num_steps)))


def make_schedule(interval: int, target_speedup: float, warmup_steps: int, tail_steps: int, start_percent: float,
                  end_percent: float) -> FixedIntervalSchedule | SpeedupSchedule:
    """The schedule a node's inputs describe: ``target_speedup`` 0 keeps the fixed ``interval``, any other value
    is a ``SpeedupSchedule`` (``interval`` is then unused). Call ``validate()`` on the result."""
    if target_speedup == 0.0:
        return FixedIntervalSchedule(interval, warmup_steps, tail_steps, start_percent, end_percent)
    return SpeedupSchedule(target_speedup, warmup_steps, tail_steps, start_percent, end_percent)


def _forecast_stretches(forced: Sequence[bool]) -> list[tuple[int, int]]:
    """``(first, last)`` step of each maximal run of non-forced steps."""
    stretches, begin = [], None
    for i, f in enumerate([*forced, True]):
        if not f and begin is None:
            begin = i
        elif f and begin is not None:
            stretches.append((begin, i - 1))
            begin = None
    return stretches


def _apportion(total: int, lengths: list[int]) -> list[int]:
    """``total`` (<= ``sum(lengths)``) split over stretches in proportion to ``lengths`` (largest remainder)."""
    room = sum(lengths)
    shares = [total * n / room for n in lengths] if room else []
    counts = [math.floor(share) for share in shares]
    for i in sorted(range(len(lengths)), key=lambda i: counts[i] - shares[i])[: total - sum(counts)]:
        counts[i] += 1
    return counts


def window_flags(step_sigmas: Sequence[float], start_sigma: float, end_sigma: float) -> tuple[bool, ...]:
    """Per step ``i`` in ``0..n-1`` (``n + 1`` sigmas): ``end_sigma < step_sigmas[i] <= start_sigma``.

    ``start_sigma`` is the larger sigma (ComfyUI ``model_sampling.percent_to_sigma(start_percent)``).
    """
    return tuple(end_sigma < s <= start_sigma for s in step_sigmas[:-1])
