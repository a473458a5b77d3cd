"""A keyed collection of predictors (``taylor_core.predictors``), one per cached feature."""

from __future__ import annotations

from collections.abc import Hashable

import torch

from .predictors import DEFAULT_PREDICTOR, Predictor, make_predictor


class ForecastBank:
    """Predictors keyed by a hashable key (e.g. ``(uuid, "double/img")``), all of one kind and config.

    Each key remembers the caller's ``signature`` (hashable, e.g. shape/dtype/device of the value);
    an update with a different signature clears that key's history first and counts one reset.
    The bank owns every factor tensor; ``release()`` frees them all and the bank stays usable.
    """

    def __init__(
        self,
        max_order: int,
        factor_dtype: torch.dtype | None = torch.float32,
        storage_device: torch.device | str | None = None,
        predictor: str = DEFAULT_PREDICTOR,
        **options,
    ) -> None:
        """``predictor`` names a key of ``PREDICTORS``; it and ``options`` (that predictor's keyword options) and
        the other arguments (those of every predictor) apply to every key. ``ValueError`` for a bad config."""
        make_predictor(predictor, max_order, factor_dtype, storage_device, **options)  # validate eagerly
        self._config = (predictor, max_order, factor_dtype, storage_device)
        self._options = options
        self._entries: dict[Hashable, tuple[Predictor, Hashable]] = {}
        self.resets = 0

    def update(self, key: Hashable, t: float, value: torch.Tensor, signature: Hashable) -> None:
        """Add the anchor ``(t, value)`` to ``key`` (see ``Predictor.update``)."""
        entry = self._entries.get(key)
        if entry is None:
            predictor = make_predictor(*self._config, **self._options)
        else:
            predictor, held = entry
            if held != signature:
                predictor.clear()
                self.resets += 1
        predictor.update(t, value)
        self._entries[key] = (predictor, signature)

    def ready(self, key: Hashable, signature: Hashable) -> bool:
        """Whether ``key`` holds at least one anchor recorded under ``signature``."""
        entry = self._entries.get(key)
        return entry is not None and entry[1] == signature and entry[0].num_anchors > 0

    def predict(self, key: Hashable, t: float) -> torch.Tensor:
        """Forecast of ``key`` at ``t``; ``KeyError`` for an unknown key."""
        entry = self._entries.get(key)
        if entry is None:
            raise KeyError(f"ForecastBank.predict: no history for key {key!r}")
        return entry[0].predict(t)

    def predictor(self, key: Hashable) -> Predictor | None:
        """The predictor of ``key`` (held by the bank: read it, do not feed it), None for an unknown key."""
        entry = self._entries.get(key)
        return None if entry is None else entry[0]

    def order(self, key: Hashable) -> int:
        """Effective order of ``key`` (0 for an unknown key)."""
        entry = self._entries.get(key)
        return 0 if entry is None else entry[0].order

    def bytes_held(self) -> int:
        """Bytes of every factor tensor held by the bank."""
        return sum(predictor.bytes_held() for predictor, _ in self._entries.values())

    def drop(self, key: Hashable) -> None:
        """Forget ``key`` and free its tensors (no-op for an unknown key)."""
        self._entries.pop(key, None)

    def release(self) -> None:
        """Forget every key and free every tensor; ``resets`` is kept."""
        self._entries.clear()
