"""Newton backward divided-difference predictor for one feature tensor.

Time ``t`` is whatever clock the caller uses (sigma or fractional sampling step, see
``taylor_core.clock``); anchors may be irregularly spaced and ``t`` may run down
(diffusion sigma decreases over sampling) or up.
"""

from __future__ import annotations

import torch

from ..anchors import ValueStore


class NewtonPredictor:
    """Polynomial forecast of one tensor-valued trajectory ``F(t)`` from its newest anchors.

    State (owned by the instance, never aliased with caller tensors): the Newton diagonal
    ``d_j = F[t_n, t_{n-1}, ..., t_{n-j}]`` for ``j = 0..k`` (each the shape of the value, in the
    factor dtype, on the storage device) and the anchor times ``t_n, ..., t_{n-k}`` (python floats,
    newest first). ``k`` is the effective order, ``min(anchors - 1, max_order)``; at most
    ``max_order + 1`` tensors are held. The forecast is exact, up to float rounding, for
    trajectories that are polynomials of degree <= ``max_order`` in ``t``. Takes no run options.
    """

    name = "newton"

    def __init__(
        self,
        max_order: int,
        factor_dtype: torch.dtype | None = torch.float32,
        storage_device: torch.device | str | None = None,
    ) -> None:
        """``factor_dtype=None`` keeps the values' dtype; ``storage_device=None`` keeps their device."""
        if max_order < 0:
            raise ValueError(f"max_order ({max_order}) must be >= 0")
        self.max_order = max_order
        self._store = ValueStore(factor_dtype, storage_device)
        self._diag: list[torch.Tensor] = []
        self._times: list[float] = []

    @property
    def order(self) -> int:
        """Effective order ``k`` (0 when there is no anchor; check ``num_anchors``)."""
        return max(len(self._diag) - 1, 0)

    @property
    def num_anchors(self) -> int:
        """Anchors held, ``order + 1`` (0 when empty)."""
        return len(self._times)

    @property
    def anchor_times(self) -> tuple[float, ...]:
        """Held anchor times, newest first."""
        return tuple(self._times)

    @property
    def factors(self) -> tuple[torch.Tensor, ...]:
        """The held Newton diagonal ``d_0..d_k`` (newest anchor first; the held tensors, do not modify)."""
        return tuple(self._diag)

    @property
    def factor_dtype(self) -> torch.dtype | None:
        return self._store.factor_dtype

    @property
    def storage_device(self) -> torch.device | None:
        return self._store.storage_device

    @property
    def store(self) -> ValueStore:
        """The storage policy (factor dtype, storage device, dtype/device forecasts are given back in)."""
        return self._store

    def bytes_held(self) -> int:
        """Bytes of the held factor tensors."""
        return sum(d.nbytes for d in self._diag)

    @classmethod
    def run_options(cls, span: tuple[float, float] | None, step: float | None) -> dict:
        """None: the Newton form depends on the anchors alone."""
        return {}

    def clear(self) -> None:
        """Drop every held tensor and anchor."""
        self._diag = []
        self._times = []
        self._store.reset()

    def update(self, t: float, value: torch.Tensor) -> None:
        """Add the anchor ``(t, value)``; a copy of ``value`` is stored, the caller keeps its tensor.

        If ``t`` equals the newest anchor time exactly, ``value`` replaces that anchor (the order
        does not grow). If ``t`` equals an older held anchor time, the anchors from that one on
        are dropped (the order shrinks) since their divided differences are undefined.
        Raises ``ValueError`` for a non-finite ``t``, a non-floating value, or a value whose shape
        or factor dtype/device differs from the held ones (``clear()`` first).
        """
        t, new_0 = self._store.take(t, value, self._diag[0] if self._diag else None)
        if self._times and t == self._times[0]:
            self._drop_newest()
        new = [new_0]
        for old_prev, t_old in zip(self._diag[: self.max_order], self._times):
            gap = t - t_old
            if gap == 0.0:
                break
            new.append(torch.sub(new[-1], old_prev).div_(gap))
        self._times = [t, *self._times[: len(new) - 1]]
        self._diag = new

    def _drop_newest(self) -> None:
        """Downdate: recover the diagonal at ``t_{n-1}``, ``g_{j-1} = d_{j-1} - d_j (t_n - t_{n-j})``."""
        d, a = self._diag, self._times
        self._diag = [torch.add(d[j - 1], d[j], alpha=-(a[0] - a[j])) for j in range(1, len(d))]
        self._times = a[1:]

    def predict(self, t: float) -> torch.Tensor:
        """Evaluate ``F(t) = sum_j d_j prod_{i<j} (t - t_{n-i})`` (Horner form) as a new tensor.

        Accumulated in the factor dtype on the device of the last value passed to ``update``,
        returned in that value's dtype. ``t`` may lie on either side of the anchors.
        Raises ``RuntimeError`` when no anchor is held.
        """
        if not self._diag:
            raise RuntimeError("NewtonPredictor.predict: no anchor held; call update() first")
        t = float(t)
        a = self._times
        d = [self._store.to_compute(f) for f in self._diag]
        if len(d) == 1:
            return self._store.give(d[0], copy=True)
        acc = torch.add(d[-2], d[-1], alpha=t - a[-2])
        for j in range(len(d) - 3, -1, -1):
            acc.mul_(t - a[j]).add_(d[j])
        return self._store.give(acc)
