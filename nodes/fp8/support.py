"""What the running ComfyUI offers for scaled fp8, found by feature (never by version string), and the calls
into it the FP8 Loader makes. ComfyUI is imported inside the functions only.

- formats: the fp8 entries of ``comfy.quant_ops.QUANT_ALGOS`` (0.3.75: e4m3fn; newer: e4m3fn and e5m2);
- per-channel scales: a probe of ComfyUI's own mixed-precision Linear (0.3.75 and 0.33 reject a per-row scale),
  run once, when the node's schema is first built, with the log lines ComfyUI makes while loading the probe's
  layer left out (they describe the probe, not a model);
- fp8 matmul: ``comfy.model_management.supports_fp8_compute`` on the load device.
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from ..logs import LOG_PREFIX, logger

FORMAT_CHOICES = {"e4m3fn": "float8_e4m3fn", "e5m2": "float8_e5m2"}
"""Node choice -> format name in ComfyUI's ``QUANT_ALGOS`` and in ``_quantization_metadata``."""



def _quant_algos() -> dict:
    try:
        import comfy.quant_ops
    except ImportError:  # a ComfyUI without mixed-precision layers
        return {}
    return dict(getattr(comfy.quant_ops, "QUANT_ALGOS", {}))


def format_choices() -> list[str]:
    """The ``fp8_format`` choices this ComfyUI's quantized layers load (e4m3fn first)."""
    algos = _quant_algos()
    return [choice for choice, name in FORMAT_CHOICES.items() if name in algos]


def supports_input_scale(fmt: str) -> bool:
    """Whether ComfyUI's layers of format ``fmt`` read an ``input_scale`` (needed for their fp8 matmul)."""
    return "input_scale" in _quant_algos().get(fmt, {}).get("parameters", ())


@functools.cache
def per_channel_supported(fmt: str) -> bool:
    """Whether ComfyUI's mixed-precision Linear computes correctly with a per-output-row ``weight_scale``: in
    its upcast path, its dequantizing path and its fp8 matmul path (with an input scale). A per-tensor scale
    must pass the same probe, otherwise the probe itself cannot run here and the answer is no."""
    def passes(per_channel: bool) -> bool:
        try:
            with _quiet_comfy():
                return _probe_linear(fmt, per_channel)
        except Exception as exc:  # any failure inside ComfyUI's layer means "not supported"
            logger.debug("%s FP8 Loader: %s probe (per_channel=%s) failed: %r", LOG_PREFIX, fmt, per_channel, exc)
            return False

    if not passes(per_channel=False):
        return False
    return passes(per_channel=True)


@contextmanager
def _quiet_comfy() -> Iterator[None]:
    """While the block runs, drop the log records of this thread that reach the root logger (ComfyUI logs
    there); other threads' records pass."""
    thread = threading.get_ident()

    def keep(record: logging.LogRecord) -> bool:
        return record.thread != thread

    root = logging.getLogger()
    targets = [root, *root.handlers]  # the root logger for its own records, its handlers for propagated ones
    for target in targets:
        target.addFilter(keep)
    try:
        yield
    finally:
        for target in targets:
            target.removeFilter(keep)


def _probe_linear(fmt: str, per_channel: bool) -> bool:
    """ComfyUI's mixed-precision Linear on a 4x16 weight with rows of very different ranges, in each of its
    paths, against references computed here: the upcast path (exact), the path without an input scale (exact
    where the weight is dequantized, 0.3.75; within 1e-2 of the product with the input cast to fp8 at unit scale
    where ComfyUI quantizes the input without a scale, 0.33) and the fp8 matmul path with a unit input scale
    (within 0.2)."""
    import comfy.ops

    from .checkpoint import QUANT_METADATA_KEY, quant_metadata
    from .quantize import FP8_FORMATS, fp8_max, quantize_fp8

    dtype = FP8_FORMATS[fmt]
    rows = torch.tensor([[1e-3], [1.0], [5.0], [1e2]])  # output rows of very different ranges
    weight = torch.randn(4, 16, generator=torch.Generator().manual_seed(0)) * rows
    quantized = quantize_fp8(weight, dtype, per_channel)
    x = torch.randn(3, 16, generator=torch.Generator().manual_seed(1))
    exact = x @ quantized.dequantize().t()
    fp8_input = x.clamp(-fp8_max(dtype), fp8_max(dtype)).to(dtype).float() @ quantized.dequantize().t()
    metadata = {QUANT_METADATA_KEY: quant_metadata({"probe": fmt})}
    paths = ((True, False, ((exact, 1e-5),)), (False, False, ((exact, 1e-5), (fp8_input, 1e-2))),
             (False, True, ((exact, 0.2),)))
    for full_precision_mm, input_scale, references in paths:
        state = {"probe.weight": quantized.data, "probe.weight_scale": quantized.scale}
        if input_scale:
            state["probe.input_scale"] = torch.tensor(1.0)
        state, quant_config = mixed_precision_state(state, metadata)
        ops = comfy.ops.mixed_precision_ops(quant_config, torch.float32, full_precision_mm)
        holder = torch.nn.Module()
        holder.probe = ops.Linear(16, 4, bias=False)
        holder.load_state_dict(state, strict=False)
        with torch.no_grad():
            out = holder.probe(x).float()
        if not any(out.shape == ref.shape and float((out - ref).norm() / ref.norm()) <= tolerance
                   for ref, tolerance in references):
            return False
    return True


def mixed_precision_state(state_dict: dict[str, torch.Tensor], metadata: dict[str, str]) -> tuple[dict, dict | None]:
    """``(state dict, quantization config or None)`` for ComfyUI's ``mixed_precision_ops`` from a state dict in
    the FP8 Loader's file format (``metadata`` holding ``_quantization_metadata``), as this ComfyUI's loader
    derives them. Found by feature: where ``comfy.utils.convert_old_quants`` exists (0.33) the header becomes
    per-layer ``<layer>.comfy_quant`` entries of a new state dict and the config only switches mixed ops on;
    otherwise (0.3.75) the state dict is unchanged and the config maps each layer to its format."""
    import comfy.model_detection
    import comfy.utils

    if hasattr(comfy.utils, "convert_old_quants"):
        state_dict, _ = comfy.utils.convert_old_quants(dict(state_dict), "", metadata=dict(metadata))
        return state_dict, comfy.utils.detect_layer_quantization(state_dict, "")
    return state_dict, comfy.model_detection.detect_layer_quantization(dict(metadata))


def fp8_compute_available() -> bool:
    """Whether ComfyUI would run fp8 matmuls on its load device."""
    import comfy.model_management as mm

    return bool(mm.supports_fp8_compute(mm.get_torch_device()))


def diffusion_prefix(meta_state_dict: dict[str, torch.Tensor]) -> str:
    """The key prefix of the diffusion model inside a (possibly full) checkpoint, as ComfyUI finds it."""
    import comfy.model_detection

    return comfy.model_detection.unet_prefix_from_state_dict(meta_state_dict)


def detect_model_config(meta_state_dict: dict[str, torch.Tensor], metadata: dict[str, str]):
    """ComfyUI's stock model detection on shapes (``meta`` tensors, prefix already stripped); None when
    ComfyUI cannot tell the architecture."""
    import comfy.model_detection

    return comfy.model_detection.model_config_from_unet(meta_state_dict, "", metadata=dict(metadata))


def meta_diffusion_model(model_config, meta_state_dict: dict[str, torch.Tensor]) -> torch.nn.Module:
    """The diffusion model ``model_config`` describes, built on the ``meta`` device (no memory): its module
    tree tells which layers are Linear. ``model_config`` gets its inference dtype set (float32)."""
    model_config.set_inference_dtype(torch.float32, None)
    return model_config.get_model(meta_state_dict, "", device=torch.device("meta")).diffusion_model


def build_model(state_dict: dict[str, torch.Tensor], metadata: dict[str, str], model_options: dict,
                rebuild: tuple | None = None, disable_dynamic: bool = False):
    """ComfyUI's ``load_diffusion_model_state_dict`` on a shallow copy of ``state_dict`` (ComfyUI pops the
    keys it loads; the tensors are shared, not copied): its detection, dtypes and mixed-precision layers.
    None when ComfyUI cannot detect the model.

    Where ComfyUI has dynamic model patchers (its loader takes ``disable_dynamic``), ``disable_dynamic`` is
    passed on and ``rebuild = (fn, args)``, with ``fn(*args, disable_dynamic=True)`` building the model
    again, becomes the patcher's ``cached_patcher_init`` (ComfyUI needs it to make a non-dynamic copy)."""
    import comfy.sd

    dynamic = "disable_dynamic" in inspect.signature(comfy.sd.load_diffusion_model_state_dict).parameters
    extra = {"disable_dynamic": disable_dynamic} if dynamic else {}
    patcher = comfy.sd.load_diffusion_model_state_dict(dict(state_dict), model_options, metadata=dict(metadata),
                                                       **extra)
    if patcher is not None and dynamic and rebuild is not None:
        patcher.cached_patcher_init = rebuild
    return patcher


def load_file_as_is(path: str, model_options: dict):
    """ComfyUI's own ``load_diffusion_model`` (what UNETLoader calls) for an already fp8 or scaled file."""
    import comfy.sd

    return comfy.sd.load_diffusion_model(path, model_options=model_options)
