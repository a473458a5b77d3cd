"""DEMO-ONLY ComfyUI nodes for the TaylorSeer demo model (a tiny Wan 2.1 t2v DiT trained on sklearn digits).

Linked into ``ComfyUI/custom_nodes/taylor_forecast_demo``. They stand in for the text encoder and the VAE:

- ``TaylorDemoDigitConditioning``: digit 0..9 (or the null prompt) -> CONDITIONING
  ``[[context [1, 8, 4096], {}]]`` (Wan t2v needs only the cross-attention context).
- ``TaylorDemoDigitDecode``: LATENT ``[B, 16, T, H, W]`` -> IMAGE ``[B*T, 8H, 8W, 3]`` in [0, 1]
  (128x128 for core ``EmptyHunyuanLatentVideo`` at width = height = 128, length 1).
"""

from __future__ import annotations

from typing import Any

CATEGORY = "TaylorSeer/demo"


class TaylorDemoDigitConditioning:
    """Conditioning of the demo model: a fixed embedding per digit class, or the null embedding for CFG."""

    CATEGORY = CATEGORY
    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "encode"
    DESCRIPTION = "Prompt of the TaylorSeer digits demo model: the digit to draw (or the null prompt)."

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "digit": ("INT", {"default": 3, "min": 0, "max": 9, "step": 1}),
                "unconditional": ("BOOLEAN", {
                    "default": False, "tooltip": "Null prompt (ignores digit): use it as the negative."}),
            }
        }

    def encode(self, digit: int, unconditional: bool = False) -> tuple[list[list[Any]]]:
        from .digits_codec import digit_context

        return ([[digit_context(None if unconditional else int(digit)), {}]],)


class TaylorDemoDigitDecode:
    """The demo's fixed decoder: latent -> grey digit image (RGB)."""

    CATEGORY = CATEGORY
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "decode"
    DESCRIPTION = "Decode a TaylorSeer digits demo latent [B, 16, T, H, W] to images [B*T, 8H, 8W, 3]."

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"samples": ("LATENT",)}}

    def decode(self, samples: dict[str, Any]) -> tuple[Any]:
        from .digits_codec import decode

        return (decode(samples["samples"]),)


NODE_CLASS_MAPPINGS: dict[str, type] = {
    "TaylorDemoDigitConditioning": TaylorDemoDigitConditioning,
    "TaylorDemoDigitDecode": TaylorDemoDigitDecode,
}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {
    "TaylorDemoDigitConditioning": "Taylor Demo Digit Conditioning",
    "TaylorDemoDigitDecode": "Taylor Demo Digit Decode",
}
