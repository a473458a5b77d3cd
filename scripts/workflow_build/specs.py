"""Which workflows ship: the official template each is built on, the pack's node and settings put into it, and
the template's other edits. The settings' reasons are written into each workflow's note."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SAMPLERS = ("KSampler", "KSamplerAdvanced", "BasicGuider", "CFGGuider")  # the nodes whose "model" is sampled


@dataclass(frozen=True)
class Insert:
    """The pack's node put on the model input of every sampler/guider of the template (``SAMPLERS``)."""

    node_type: str  # "TaylorSeerApply" or "CGTaylorGate"
    settings: dict[str, Any]  # widget name -> value; the other widgets take the node's defaults
    why: str  # where the settings come from (shown in the note)


@dataclass(frozen=True)
class WorkflowSpec:
    """One shipped workflow: the official template it is built on and what changes."""

    name: str
    title: str
    template: str  # template id in comfyui-workflow-templates
    family: str
    insert: Insert
    drop: tuple[int, ...] = ()  # template nodes removed; consumers of a pass-through node get its input
    enable: tuple[int, ...] = ()  # bypassed/muted template nodes switched on
    loader: tuple[int, str, dict[str, Any]] | None = None  # (template node id, new type, its widget settings)
    changes: str = ""  # the edits besides the insertion, in words (shown in the note)


BUDGET = {"target_speedup": 3.0, "max_order": 1, "warmup_steps": 1, "tail_steps": 1, "level": "output",
          "forecaster": "newton"}
FLUX = WAN = BUDGET  # the same setting for both families
FLUX_WHY = ("a speed-up budget of 3: on the pack's tiny FLUX.1-dev demo model at 20 dpmpp_2m steps it computed 7 "
            "steps (2.86x) at 39.74 dB PSNR, against 35.77 dB for TaylorSeer's interval 4 at 2.50x; warm-up 1 and "
            "forecaster newton order 1 were the closest of every warm-up and forecaster measured at that budget "
            "(docs/benchmarks.md).")
WAN_WHY = ("a speed-up budget of 3: on the pack's tiny Wan 2.1 demo model at 30 euler steps it computed 10 steps "
           "(3.00x) at 44.61 dB PSNR, against 38.66 dB for TaylorSeer's interval 4 at the same compute; warm-up 1 "
           "and forecaster newton order 1 were the closest measured there (docs/benchmarks.md).")
FLUX_LIKE_WHY = ("{family}: no measurement on this family{extra}, so the FLUX settings: a speed-up budget of 3, "
                 "order 1, 1 warm-up step, level output (works on every model).")

SPECS: tuple[WorkflowSpec, ...] = (
    WorkflowSpec("flux1_dev_taylorseer", "FLUX.1-dev + TaylorSeer Apply", "flux_dev_full_text_to_image", "flux",
                 Insert("TaylorSeerApply", FLUX, FLUX_WHY), drop=(43,)),
    WorkflowSpec("flux1_dev_fp8_loader_taylorseer", "FLUX.1-dev, FP8 Loader + TaylorSeer Apply",
                 "flux_dev_full_text_to_image", "flux", Insert("TaylorSeerApply", FLUX, FLUX_WHY), drop=(43,),
                 loader=(38, "FP8Loader", {}),
                 changes="The UNETLoader is replaced by the pack's FP8 Loader: the bf16 flux1-dev.safetensors is "
                         "quantized to scaled fp8 while it loads (README, FP8 Loader)."),
    WorkflowSpec("flux1_dev_cg_taylor_gate", "FLUX.1-dev + CG-Taylor Gate", "flux_dev_full_text_to_image", "flux",
                 Insert("CGTaylorGate", {"threshold": 0.2, "target_speedup": 3.0, "max_order": 1, "warmup_steps": 1,
                                         "tail_steps": 1, "max_consecutive": 0},
                        "the gate with a speed-up budget of 3: the probe places the budget's 7 computes of 20 steps; "
                        "on the tiny FLUX.1-dev demo model at 20 dpmpp_2m steps, threshold 0.2 and warm-up 1 gave "
                        "38.83 dB PSNR at 2.86x against 34.22 dB for the threshold alone at 2.50x "
                        "(docs/benchmarks.md)."), drop=(43,)),
    WorkflowSpec("wan2.1_t2v_taylorseer", "Wan 2.1 text to video + TaylorSeer Apply", "text_to_video_wan", "wan",
                 Insert("TaylorSeerApply", WAN, WAN_WHY)),
    WorkflowSpec("wan2.2_t2v_14B_taylorseer", "Wan 2.2 14B text to video (high + low noise) + TaylorSeer Apply",
                 "video_wan2_2_14B_t2v", "wan", Insert("TaylorSeerApply", WAN, WAN_WHY),
                 drop=(71, 72, 73, 74, 75, 76, 78, 80, 81, 82, 83, 85, 86, 87, 88, 89, 62, 64, 106, 110, 112),
                 enable=(90, 91, 92, 93, 94, 95, 96, 97, 98, 99, 100, 101, 102, 104),
                 changes="The template's 20-step branch is kept (two KSamplerAdvanced, high noise then low noise, "
                         "one TaylorSeer Apply per model); its 4-step Lightx2v LoRA branch is dropped (4 steps "
                         "leave nothing to forecast)."),
    WorkflowSpec("hunyuan_video_t2v_taylorseer", "HunyuanVideo text to video + TaylorSeer Apply",
                 "hunyuan_video_text_to_video", "hunyuan_video",
                 Insert("TaylorSeerApply", FLUX, FLUX_LIKE_WHY.format(
                     family="HunyuanVideo", extra=" (official HunyuanVideo code: interval 5, order 1 at 50 steps)")),
                 drop=(78,)),
    WorkflowSpec("qwen_image_taylorseer", "Qwen-Image + TaylorSeer Apply", "image_qwen_image", "qwen_image",
                 Insert("TaylorSeerApply", FLUX, FLUX_LIKE_WHY.format(family="Qwen-Image", extra="")),
                 drop=(73, 67, 69, 74),
                 changes="The template's (bypassed) 8-step Lightning LoRA is dropped: 8 steps leave little to "
                         "forecast."),
    WorkflowSpec("sd3.5_large_taylorseer", "SD3.5 Large + TaylorSeer Apply", "sd3.5_simple_example", "sd3",
                 Insert("TaylorSeerApply", FLUX, FLUX_LIKE_WHY.format(family="SD3.5 (MMDiT)", extra="")),
                 drop=(54,)),
    WorkflowSpec("chroma1_hd_taylorseer", "Chroma1-HD + TaylorSeer Apply", "image_chroma_text_to_image", "chroma",
                 Insert("TaylorSeerApply", FLUX,
                        "Chroma has Flux's block structure; the FLUX settings (not measured on Chroma)."), drop=(743,)),
)
