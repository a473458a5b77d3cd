"""comfyui-taylor-forecast: TaylorSeer feature forecasting for ComfyUI diffusion models.

ComfyUI registers the nodes through ``comfy_entrypoint`` (its V3 extension API). On a ComfyUI without that API
the reason is logged once and an empty ``NODE_CLASS_MAPPINGS`` loads no nodes.
"""

from .nodes.registry import comfy_entrypoint, v3_api_missing

WEB_DIRECTORY = "./web"

__all__ = ["WEB_DIRECTORY", "comfy_entrypoint"]

if v3_api_missing():
    NODE_CLASS_MAPPINGS: dict[str, type] = {}
    __all__.append("NODE_CLASS_MAPPINGS")
