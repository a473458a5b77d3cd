"""How a forecast fails: the exceptions the levels raise (each with its ``Reason``) and the test that tells a
failure of the pack's own adapter code from an error of the model."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..taylor_core import Reason


class ForecastUnavailable(RuntimeError):
    """Raised inside the model on a forecast step that cannot be completed, for ``reason``; the call is redone in
    full at the same level."""

    def __init__(self, message: str, reason: Reason) -> None:
        super().__init__(message)
        self.reason = reason


class AdapterMismatch(ForecastUnavailable):
    """The model's blocks do not take what the adapter of ``level`` (a level name) says (e.g. a stream that is a
    tuple, a moved ComfyUI helper, a changed signature, a block never reached): the step is computed in full and
    the run falls below that level (``levels.fall``)."""

    def __init__(self, message: str, level: str) -> None:
        super().__init__(message, Reason.ADAPTER_MISMATCH)
        self.level = level


# What the pack's own adapter code raises when ComfyUI changed under it (a moved helper, a renamed attribute or
# argument, a changed signature or return shape). Errors of the model's own blocks are never converted.
ADAPTER_ERRORS = (ImportError, AttributeError, TypeError, KeyError, IndexError, ValueError, RuntimeError)


def adapter_error(exc: BaseException, raised_by_model: list[BaseException]) -> bool:
    """Whether ``exc`` is a failure of the pack's adapter code: one of ``ADAPTER_ERRORS``, not ours to handle
    otherwise (``ForecastUnavailable``), not out of memory, and not an error the model itself raised (the
    exceptions its calls raised are listed in ``raised_by_model``)."""
    return (isinstance(exc, ADAPTER_ERRORS) and not isinstance(exc, (ForecastUnavailable, torch.OutOfMemoryError))
            and not any(exc is raised for raised in raised_by_model))


def tracking(call: Callable, raised: list[BaseException]) -> Callable:
    """``call`` that appends any exception it raises to ``raised`` (then raises it unchanged)."""
    def tracked(*args, **kwargs):
        try:
            return call(*args, **kwargs)
        except BaseException as exc:
            raised.append(exc)
            raise
    return tracked
