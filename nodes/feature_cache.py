"""The forecast histories of one run: what a call's chunks recorded, their forecasts, and why one is missing.

Keys are ``chunk.key + (feature,)``: the call's device, the cond's uuid and the context window, then the
feature's name (``"output"``, ``"{stack}/{stream}"``, ``"{stack}/{block}/{branch}"``, or ``PROBE`` for the gate's
probe, kept in a bank of its own order). Every key remembers the signature (shapes, dtype, device) of the call
that recorded it: a call with another signature finds no history (``Reason.SHAPE_CHANGE``). The run's lock,
shared with the run state, guards the keys; the tensor math of a forecast runs outside it (a thread only reads
keys starting with its own device).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

import torch

from ..taylor_core import ForecastBank, Reason, run_options, time_coordinate
from .config import ForecastConfig

PROBE = "probe"


@dataclass(frozen=True)
class Chunk:
    """The slice of a model call's batch that belongs to one conditioning (one uuid) in one context window."""

    key: tuple  # (device, uuid, window) prefix of every forecast key of this chunk
    rows: slice  # along the batch dimension
    signature: tuple  # shapes/dtype/device that must match for a forecast to be valid


def batch_chunks(x: torch.Tensor, context: torch.Tensor | None, uuids: list | None, window: tuple | None,
                 device) -> tuple[Chunk, ...]:
    """One chunk per conditioning of the batch ``x`` (one chunk for the whole call when the batch does not split
    evenly)."""
    batch = x.shape[0]
    ids = list(uuids) if uuids else [None]
    if batch % len(ids) != 0:
        ids = [tuple(ids)]
    size = batch // len(ids)
    ctx_shape = tuple(context.shape[1:]) if isinstance(context, torch.Tensor) else None
    signature = (tuple(x.shape[1:]), ctx_shape, x.dtype, x.device)
    return tuple(Chunk((device, uid, window), slice(i * size, (i + 1) * size), signature) for i, uid in enumerate(ids))


def _clock_span(clock: str, step_sigmas: list[float]) -> tuple[float, float] | None:
    """``(lo, hi)`` of the clock's time over the run's sigmas; None for fewer than two sigmas or an empty span."""
    if len(step_sigmas) < 2:
        return None
    lo, hi = sorted(time_coordinate(clock, s, step_sigmas) for s in (step_sigmas[0], step_sigmas[-1]))
    return (lo, hi) if lo < hi else None


class FeatureCache:
    """The level's bank and, on a gated run, the probe's bank, fitted to the run's clock (``run_options``)."""

    def __init__(self, config: ForecastConfig, step_sigmas: list[float], gated: bool, lock: threading.Lock) -> None:
        self.bank = self._new_bank(config, step_sigmas, config.max_order)
        self.probe_bank = self._new_bank(config, step_sigmas, config.first_block_order) if gated else None
        self.lock = lock
        self._signatures: dict[tuple, tuple] = {}
        self._thread = threading.local()  # per thread: the history resets its own records caused

    @staticmethod
    def _new_bank(config: ForecastConfig, step_sigmas: list[float], max_order: int) -> ForecastBank:
        """Forecast times span the clock from the first sigma to the last; a typical step is that span over the
        steps (1 on the step clock)."""
        span = _clock_span(config.clock, step_sigmas)
        steps = len(step_sigmas) - 1
        step = (span[1] - span[0]) / steps if span is not None else None
        return ForecastBank(max_order, config.torch_factor_dtype, config.storage_device, config.forecaster,
                            **run_options(config.forecaster, span, step))

    def _bank(self, feature: str) -> ForecastBank:
        return self.probe_bank if feature == PROBE else self.bank

    def _features(self, features: Iterable[str]) -> list[str]:
        return [*features, *((PROBE,) if self.probe_bank is not None else ())]

    def missing(self, chunk: Chunk, features: tuple[str, ...]) -> Reason | None:
        """None when every feature of ``chunk`` (and the probe) has history under its signature, else why not;
        the caller holds the lock."""
        if not features:
            return Reason.NO_HISTORY
        for feature in self._features(features):
            key = chunk.key + (feature,)
            held = self._signatures.get(key)
            if held is not None and held != chunk.signature:
                return Reason.SHAPE_CHANGE
            if held is None or not self._bank(feature).ready(key, chunk.signature):
                return Reason.NO_HISTORY
        return None

    def record(self, chunks: tuple[Chunk, ...], time: float, feature: str, value: torch.Tensor) -> int:
        """Store one full-compute feature (batch-first) of every chunk at ``time``; returns the bytes held."""
        bank = self._bank(feature)
        with self.lock:
            resets = bank.resets
            for chunk in chunks:
                key = chunk.key + (feature,)
                bank.update(key, time, value[chunk.rows], chunk.signature)
                self._signatures[key] = chunk.signature
            self._thread.resets = self.resets_seen() + bank.resets - resets
            return self.bytes_held()

    def resets_seen(self) -> int:
        """History resets (a feature's shape changed) caused by the records of the calling thread."""
        return getattr(self._thread, "resets", 0)

    def predict(self, chunks: tuple[Chunk, ...], time: float, feature: str) -> torch.Tensor:
        """The forecast of one feature for the whole batch (chunks concatenated in batch order)."""
        parts = [self._bank(feature).predict(chunk.key + (feature,), time) for chunk in chunks]
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=0)

    def forget(self, chunks: tuple[Chunk, ...], features: tuple[str, ...]) -> None:
        """Drop the history of every chunk (after a fall-back): the next full step starts afresh."""
        with self.lock:
            for chunk in chunks:
                for feature in self._features(features):
                    self._bank(feature).drop(chunk.key + (feature,))
                    self._signatures.pop(chunk.key + (feature,), None)

    def bytes_held(self) -> int:
        return self.bank.bytes_held() + (self.probe_bank.bytes_held() if self.probe_bank is not None else 0)

    def release(self) -> None:
        """Free every cached tensor (the banks stay usable)."""
        with self.lock:
            self.bank.release()
            if self.probe_bank is not None:
                self.probe_bank.release()
            self._signatures.clear()
