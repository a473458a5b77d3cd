"""The "FP8 Loader" node: a diffusion model from ComfyUI's model folders with its Linear weights quantized to
scaled fp8 at load (ComfyUI's own mixed-precision layers run it), optionally saved for instant later loads.

Pipeline: resolve the name through ``folder_paths`` -> read the safetensors header (pickles refused) -> an
already fp8/scaled file is loaded as it is -> ComfyUI's stock detection on shapes -> the model's module tree
on the ``meta`` device -> the layer policy -> streaming quantization -> ``load_diffusion_model_state_dict``
-> (``save_as``) an atomic, never-overwriting save next to the source, skipped when the file there already
holds this result (``save.py``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from comfy_api.latest import io

from ...taylor_core import format_bytes
from ..logs import LOG_PREFIX as PACK_PREFIX
from ..logs import logger
from ..validation import checked_schema
from .checkpoint import (
    SAFETENSORS_SUFFIXES,
    CheckpointHeader,
    QuantizedCheckpoint,
    quantize_checkpoint,
    read_header,
    refuse_pickle,
)
from .policy import POLICIES, LayerPlan, plan_layers
from .quantize import ErrorSummary
from .save import SOURCE_KEY, check_output_name, existing_target, save_new_file, source_record
from .support import (
    FORMAT_CHOICES,
    build_model,
    detect_model_config,
    diffusion_prefix,
    format_choices,
    fp8_compute_available,
    load_file_as_is,
    meta_diffusion_model,
    per_channel_supported,
    supports_input_scale,
)

LOG_PREFIX = f"{PACK_PREFIX} FP8 Loader:"
FOLDER = "diffusion_models"
SCALINGS = ("per_tensor", "per_channel")


@dataclass(frozen=True)
class FP8Settings:
    """``fmt``: ``_quantization_metadata`` format name, e.g. "float8_e4m3fn"; ``policy``: one of ``POLICIES``;
    ``fp8_matmul``: write unit input scales so ComfyUI uses fp8 matmuls where the device has them."""

    fmt: str = "float8_e4m3fn"
    per_channel: bool = False
    policy: str = "standard"
    fp8_matmul: bool = False

    @classmethod
    def from_inputs(cls, fp8_format: str, scaling: str, keep_high_precision: str, fp8_matmul: bool) -> FP8Settings:
        """The node's inputs, checked against what the running ComfyUI supports (ValueError otherwise)."""
        if fp8_format not in format_choices():
            raise ValueError(f"fp8_format {fp8_format!r} is not supported by this ComfyUI's quantized layers "
                             f"(supported: {', '.join(format_choices()) or 'none'})")
        fmt = FORMAT_CHOICES[fp8_format]
        if scaling not in SCALINGS:
            raise ValueError(f"scaling must be one of {', '.join(SCALINGS)}, got {scaling!r}")
        if scaling == "per_channel" and not per_channel_supported(fmt):
            raise ValueError("scaling per_channel: this ComfyUI's quantized layers accept only a per-tensor scale")
        if keep_high_precision not in POLICIES:
            raise ValueError(f"keep_high_precision must be one of {', '.join(POLICIES)}, got {keep_high_precision!r}")
        return cls(fmt, scaling == "per_channel", keep_high_precision, bool(fp8_matmul))

    def as_inputs(self) -> dict[str, object]:
        """The settings as the node's inputs (input name -> value), e.g. for a saved file's record."""
        choice = next(c for c, name in FORMAT_CHOICES.items() if name == self.fmt)
        return {"fp8_format": choice, "scaling": "per_channel" if self.per_channel else "per_tensor",
                "keep_high_precision": self.policy, "fp8_matmul": self.fp8_matmul}


def resolve_model_file(unet_name: str) -> tuple[str, str]:
    """``(path, folder)`` of ``unet_name`` among ComfyUI's diffusion model folders (``folder`` is the model
    folder holding it). ValueError for a name that tries to leave the folders, a pickle, or a missing file."""
    import folder_paths

    parts = unet_name.replace("\\", "/").split("/")
    if not unet_name or os.path.isabs(unet_name) or ":" in unet_name or ".." in parts:
        raise ValueError(f"unet_name must name a file inside ComfyUI's {FOLDER} folders, got {unet_name!r}")
    refuse_pickle(unet_name)
    path = folder_paths.get_full_path(FOLDER, unet_name)
    if path is None:
        raise ValueError(f"{unet_name!r} is not in ComfyUI's {FOLDER} folders "
                         f"({', '.join(folder_paths.get_folder_paths(FOLDER))})")
    path = os.path.abspath(path)
    for folder in map(os.path.abspath, folder_paths.get_folder_paths(FOLDER)):
        if os.path.commonpath([folder, path]) == folder:
            return path, folder
    raise ValueError(f"{unet_name!r} resolves outside ComfyUI's {FOLDER} folders")


def save_target(unet_name: str, path: str, folder: str, settings: FP8Settings,
                save_as: str) -> tuple[str, str, str] | None:
    """Where ``save_as`` writes: ``(folder, file name, SOURCE_KEY record)``, or None when there is nothing to
    write (empty ``save_as``, or the file already holds this result: logged). ValueError naming ``save_as`` for
    a bad name or a different file under that name; checked before any quantization."""
    import folder_paths

    if not save_as.strip():
        return None
    name = check_output_name(save_as)
    record = source_record(unet_name, path, settings.as_inputs())
    others = [f for f in map(os.path.abspath, folder_paths.get_folder_paths(FOLDER)) if f != folder]
    if existing_target(folder, name, record, others):
        logger.info("%s save_as %s already holds this model (same source and options): not written again",
                    LOG_PREFIX, name)
        return None
    return folder, name, record


def quantize_for_model(header: CheckpointHeader, keys: dict[str, str], diffusion_model, settings: FP8Settings,
                       progress: Callable[[], None] | None = None) -> tuple[QuantizedCheckpoint, LayerPlan]:
    """Plan the layers of ``diffusion_model`` (a module tree, e.g. on ``meta``) and quantize the file's tensors
    ``keys`` (name relative to the diffusion model -> file key) accordingly."""
    plan = plan_layers(diffusion_model, settings.policy)
    input_scale = settings.fp8_matmul and supports_input_scale(settings.fmt)
    checkpoint = quantize_checkpoint(header, keys, plan.quantize, settings.fmt, settings.per_channel, input_scale,
                                     progress)
    return checkpoint, plan


def report_lines(checkpoint: QuantizedCheckpoint, plan: LayerPlan, settings: FP8Settings) -> list[str]:
    """The log lines of a quantization: weight memory, relative errors over layers, kept layers."""
    before, after = checkpoint.bytes_before, checkpoint.bytes_after
    errors = ErrorSummary.of(checkpoint.errors)
    kept = ", ".join(plan.keep[:6]) + (", ..." if len(plan.keep) > 6 else "")
    scaling = "per channel" if settings.per_channel else "per tensor"
    return [
        f"weight memory {format_bytes(before)} -> {format_bytes(after)} ({before} -> {after} bytes, "
        f"{after / max(before, 1):.1%})",
        f"{errors.count} Linear layers in {settings.fmt} ({scaling} scale); relative error ||W8 - W|| / ||W||: "
        f"max {errors.max:.4f} ({errors.worst}), mean {errors.mean:.4f}",
        f"kept in high precision (policy {settings.policy}): {len(plan.keep)} Linear layers"
        + (f" ({kept})" if plan.keep else ""),
    ]


def load_fp8(path: str, settings: FP8Settings, output: tuple[str, str, str] | None = None,
             disable_dynamic: bool = False):
    """The node's work on a resolved file: a ComfyUI ModelPatcher. ``output``: ``(folder, name)`` to save the
    quantized checkpoint to (only after the model was built) and the ``SOURCE_KEY`` record of its header. Errors
    are raised before anything is written."""
    import comfy.utils

    name = os.path.basename(path)
    header = read_header(path)
    reason = header.prequantized_reason()
    if reason is not None:
        logger.info("%s %s is already quantized (%s): loaded as it is, not quantized again; fp8_format, scaling "
                    "and keep_high_precision do not apply", LOG_PREFIX, name, reason)
        if output is not None:
            logger.warning("%s save_as ignored: %s is already a quantized file that UNETLoader loads", LOG_PREFIX,
                           name)
        return load_file_as_is(path, {"fp8_optimizations": True} if settings.fp8_matmul else {})
    keys = header.diffusion_keys(diffusion_prefix(header.meta_state_dict()))
    meta_state_dict = header.meta_state_dict(keys)
    model_config = detect_model_config(meta_state_dict, header.metadata)
    if model_config is None:
        sample = ", ".join(list(keys)[:4])
        raise RuntimeError(f"ComfyUI cannot detect the model type of {name!r} ({len(keys)} tensors, e.g. {sample}). "
                           "FP8 Loader needs a diffusion model in ComfyUI's own key format; diffusers-format files "
                           "and other architectures load with UNETLoader.")
    try:
        diffusion_model = meta_diffusion_model(model_config, meta_state_dict)
    except Exception as exc:
        raise RuntimeError(f"ComfyUI detected {type(model_config).__name__} in {name!r} but could not build its "
                           f"layer map ({exc})") from exc
    bar = comfy.utils.ProgressBar(len(keys))
    checkpoint, plan = quantize_for_model(header, keys, diffusion_model, settings, lambda: bar.update(1))
    if not plan.quantize:
        logger.warning("%s %s: policy %s keeps every Linear layer in high precision: nothing is quantized",
                       LOG_PREFIX, name, settings.policy)
    patcher = build_model(checkpoint.state_dict, checkpoint.metadata, {}, rebuild=(_rebuild, (path, settings)),
                          disable_dynamic=disable_dynamic)
    if patcher is None:
        raise RuntimeError(f"ComfyUI could not build the quantized model of {name!r}")
    for line in report_lines(checkpoint, plan, settings):
        logger.info("%s %s: %s", LOG_PREFIX, name, line)
    if output is not None:
        folder, file_name, record = output
        written = save_new_file(checkpoint.state_dict, {**checkpoint.metadata, SOURCE_KEY: record}, folder,
                                file_name)
        logger.info("%s saved %s (loads with UNETLoader, weight_dtype default)", LOG_PREFIX, written)
    return patcher


def _rebuild(path: str, settings: FP8Settings, disable_dynamic: bool = False):
    return load_fp8(path, settings, None, disable_dynamic=disable_dynamic)


class FP8Loader(io.ComfyNode):
    """ComfyUI V3 node; the schema's tooltips say what each input does."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        import folder_paths

        formats = format_choices() or ["e4m3fn"]
        scalings = ["per_tensor"] + (["per_channel"] if per_channel_supported(FORMAT_CHOICES[formats[0]]) else [])
        names = [n for n in folder_paths.get_filename_list(FOLDER) if n.lower().endswith(SAFETENSORS_SUFFIXES)]
        return checked_schema(io.Schema(
            node_id="FP8Loader",
            display_name="FP8 Loader",
            category="TaylorSeer",
            description=("Loads a diffusion model with its Linear weights quantized to scaled fp8 (about half the "
                         "weight memory of bf16, much closer to it than UNETLoader's unscaled fp8 cast); sensitive "
                         "layers stay in high precision. save_as writes the result for instant loads with "
                         "UNETLoader."),
            inputs=[
                io.Combo.Input("unet_name", options=names, tooltip="A .safetensors diffusion model from ComfyUI's "
                               "diffusion_models folders (pickle files are not offered)."),
                io.Combo.Input("fp8_format", options=formats, default=formats[0], tooltip=
                               "e4m3fn: 3 mantissa bits, the usual choice. e5m2 (2 mantissa bits, wider range) is "
                               "offered only where this ComfyUI's quantized layers load it."),
                io.Combo.Input("scaling", options=scalings, default="per_tensor", tooltip=
                               "per_tensor: one scale per weight matrix. per_channel (one per output row) is "
                               "offered only where this ComfyUI's quantized layers accept it (not in 0.3.75)."),
                io.Combo.Input("keep_high_precision", options=list(POLICIES), default="standard", tooltip=
                               "standard: embedders, modulation/adaLN, norms and the final layer stay in the "
                               "model's dtype. +first_last_blocks: also the first and last block of each block "
                               "list. none: every Linear layer in fp8."),
                io.Boolean.Input("fp8_matmul", default=False, tooltip=
                                 "Multiply in fp8 where the GPU supports it (NVIDIA SM 8.9+; activations are clipped "
                                 "to +-448 as with UNETLoader's fp8_e4m3fn_fast). Elsewhere weights are upcast per "
                                 "layer."),
                io.String.Input("save_as", default="", tooltip=
                                "Empty: don't save. A file name: save the quantized model next to the source (same "
                                "diffusion_models folder) for UNETLoader. Re-running with the same source and "
                                "options skips the save; a different file of that name is an error, never "
                                "overwritten."),
            ],
            outputs=[io.Model.Output()],
        ))

    @classmethod
    def validate_inputs(cls, save_as: str | None = None) -> bool | str:
        if save_as is not None and save_as.strip():
            try:
                check_output_name(save_as)
            except ValueError as exc:
                return f"FP8 Loader: {exc}"
        return True

    @classmethod
    def execute(cls, unet_name: str, fp8_format: str, scaling: str, keep_high_precision: str, fp8_matmul: bool,
                save_as: str) -> io.NodeOutput:
        path, folder = resolve_model_file(unet_name)
        settings = FP8Settings.from_inputs(fp8_format, scaling, keep_high_precision, fp8_matmul)
        output = save_target(unet_name, path, folder, settings, save_as)
        if fp8_matmul:
            if not supports_input_scale(settings.fmt):
                logger.info("%s fp8_matmul: this ComfyUI's %s layers take no input scale: weights are upcast per "
                            "layer", LOG_PREFIX, settings.fmt)
            elif not fp8_compute_available():
                logger.info("%s fp8_matmul: this device has no fp8 compute: weights are upcast per layer (input "
                            "scales are still written, so a GPU with fp8 uses them)", LOG_PREFIX)
            else:
                logger.info("%s fp8_matmul: on (unit input scale: activations clipped to +-448)", LOG_PREFIX)
        return io.NodeOutput(load_fp8(path, settings, output))
