"""Safetensors files for the FP8 Loader: header inspection and streaming quantization.

Only safetensors is read (a pickle can run code when loaded: ``.ckpt``/``.pt``/``.pth``/``.bin`` are refused
by name, and a pickle renamed to ``.safetensors`` fails the header parse); nothing is ever unpickled.
The output format is ComfyUI's cross-version per-layer one: header metadata ``_quantization_metadata`` =
``{"format_version": "1.0", "layers": {layer: {"format": "float8_e4m3fn"}}}``, ``<layer>.weight`` in fp8 and
``<layer>.weight_scale`` in float32 (optional ``<layer>.input_scale``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch

from .quantize import FP8_FORMATS, quantize_fp8, relative_error

SAFETENSORS_SUFFIXES = (".safetensors", ".sft")
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin", ".pkl", ".pickle")
QUANT_METADATA_KEY = "_quantization_metadata"

_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
           "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
           "BOOL": torch.bool, "F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2}
_SCALED_KEY_SUFFIXES = (".weight_scale", ".scale_weight", ".comfy_quant")


def refuse_pickle(path: str) -> None:
    """ValueError unless ``path`` names a safetensors file (checked by name, before anything is opened)."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix in SAFETENSORS_SUFFIXES:
        return
    kind = "a pickle checkpoint, which can run code when loaded" if suffix in PICKLE_SUFFIXES else "not safetensors"
    raise ValueError(f"FP8 Loader reads only .safetensors files; {os.path.basename(path)!r} is {kind}. It was not "
                     "opened. Convert it to safetensors with a tool you trust, or load it with ComfyUI's UNETLoader.")


@dataclass(frozen=True)
class CheckpointHeader:
    """What a safetensors header says, without reading tensor data. ``shapes``/``dtypes`` by file key
    (``dtypes`` holds None for a dtype torch has no name for here); ``metadata``: the header's string map."""

    path: str
    shapes: dict[str, tuple[int, ...]]
    dtypes: dict[str, torch.dtype | None]
    metadata: dict[str, str] = field(default_factory=dict)

    def meta_state_dict(self, keys: Mapping[str, str] | None = None) -> dict[str, torch.Tensor]:
        """Shape-only tensors (device ``meta``) for ComfyUI's detection; ``keys``: new name -> file key."""
        keys = keys if keys is not None else {k: k for k in self.shapes}
        return {name: torch.empty(self.shapes[key], dtype=self.dtypes[key] or torch.uint8, device="meta")
                for name, key in keys.items()}

    def nbytes(self, keys: Mapping[str, str]) -> int:
        """Bytes of the tensors ``keys`` (new name -> file key) as stored in the file."""
        total = 0
        for key in keys.values():
            dtype = self.dtypes[key] or torch.uint8
            total += torch.Size(self.shapes[key]).numel() * dtype.itemsize
        return total

    def prequantized_reason(self) -> str | None:
        """Why the file is already fp8 or scaled (then it must be loaded as it is), or None."""
        if QUANT_METADATA_KEY in self.metadata:
            return f"its header has {QUANT_METADATA_KEY} (per-layer scaled fp8)"
        for key in self.shapes:
            if key == "scaled_fp8" or key.endswith(".scaled_fp8"):
                return "it has a scaled_fp8 marker (ComfyUI's older scaled fp8 format)"
            if key.endswith(_SCALED_KEY_SUFFIXES):
                return f"it has scale tensors ({key})"
        fp8 = [key for key, dtype in self.dtypes.items() if dtype in FP8_FORMATS.values()]
        if fp8:
            return f"{len(fp8)} of its tensors are already fp8"
        return None

    def diffusion_keys(self, prefix: str) -> dict[str, str]:
        """New name -> file key for the diffusion model's tensors: ``prefix`` stripped where keys have it, as
        ComfyUI's ``load_diffusion_model_state_dict`` does (every key when none has it)."""
        stripped = {key[len(prefix):]: key for key in self.shapes if prefix and key.startswith(prefix)}
        return stripped or {key: key for key in self.shapes}


def read_header(path: str) -> CheckpointHeader:
    """The header of a safetensors file. ValueError for a pickle (by name) or a file that is not safetensors."""
    from safetensors import safe_open

    refuse_pickle(path)
    try:
        with safe_open(path, framework="pt", device="cpu") as handle:
            metadata = dict(handle.metadata() or {})
            shapes, dtypes = {}, {}
            for key in handle.keys():
                tensor_slice = handle.get_slice(key)
                shapes[key] = tuple(tensor_slice.get_shape())
                dtypes[key] = _DTYPES.get(tensor_slice.get_dtype())
    except Exception as exc:  # safetensors raises its own error types for a bad header
        raise ValueError(f"{os.path.basename(path)!r} is not a valid safetensors file ({exc})") from exc
    return CheckpointHeader(path, shapes, dtypes, metadata)


@dataclass
class QuantizedCheckpoint:
    """A quantized diffusion-model state dict (names relative to the diffusion model) and its header
    metadata; ``errors``: layer -> relative Frobenius error of its dequantized weight; sizes in bytes."""

    state_dict: dict[str, torch.Tensor]
    metadata: dict[str, str]
    errors: dict[str, float]
    bytes_before: int
    bytes_after: int


def quant_metadata(layers: Mapping[str, str]) -> str:
    """The ``_quantization_metadata`` header value for ``layers`` (layer -> format name)."""
    return json.dumps({"format_version": "1.0", "layers": {name: {"format": fmt} for name, fmt in layers.items()}})


def quantize_checkpoint(header: CheckpointHeader, keys: Mapping[str, str], layers: Mapping[str, tuple[int, ...]],
                        fmt: str, per_channel: bool = False, input_scale: bool = False,
                        progress: Callable[[], None] | None = None) -> QuantizedCheckpoint:
    """Read the tensors ``keys`` (new name -> file key) one at a time; quantize the weight of every layer in
    ``layers`` (name -> expected weight shape) to ``fmt`` and keep every other tensor as stored.

    Peak memory: the result plus one tensor in float32. ``input_scale`` adds a unit ``<layer>.input_scale``
    (ComfyUI then uses an fp8 matmul where the device supports one). ``progress`` is called once per tensor.
    A layer whose weight the file lacks is left to ComfyUI (not quantized, not listed); RuntimeError, before any
    tensor is read, when a weight has another shape than the model expects.
    """
    from safetensors import safe_open

    dtype = FP8_FORMATS[fmt]
    layers = {layer: shape for layer, shape in layers.items() if f"{layer}.weight" in keys}
    for layer, shape in layers.items():
        found = tuple(header.shapes[keys[f"{layer}.weight"]])
        if found != tuple(shape):
            raise RuntimeError(f"{os.path.basename(header.path)!r} does not match the detected model: "
                               f"{layer}.weight has shape {found}, the model expects {tuple(shape)}")
    state_dict: dict[str, torch.Tensor] = {}
    errors: dict[str, float] = {}
    with safe_open(header.path, framework="pt", device="cpu") as handle:
        for name, key in keys.items():
            tensor = handle.get_tensor(key)
            layer = name[:-len(".weight")] if name.endswith(".weight") else None
            if layer in layers:
                quantized = quantize_fp8(tensor, dtype, per_channel)
                errors[layer] = relative_error(tensor, quantized.dequantize())
                state_dict[name] = quantized.data
                state_dict[f"{layer}.weight_scale"] = quantized.scale
                if input_scale:
                    state_dict[f"{layer}.input_scale"] = torch.tensor(1.0, dtype=torch.float32)
            else:
                state_dict[name] = tensor
            del tensor
            if progress is not None:
                progress()
    metadata = {**header.metadata, QUANT_METADATA_KEY: quant_metadata(dict.fromkeys(layers, fmt))}
    after = sum(t.numel() * t.element_size() for t in state_dict.values())
    return QuantizedCheckpoint(state_dict, metadata, errors, header.nbytes(keys), after)
