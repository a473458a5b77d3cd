"""ComfyUI nodes of the pack. Nothing here imports ComfyUI at module level: a ComfyUI update can break a
node at run time (with a clear error), never the import of the whole pack."""

from .cg_taylor_gate import CGTaylorGate
from .fp8_loader import FP8Loader
from .taylorseer_apply import TaylorSeerApply

NODE_CLASS_MAPPINGS = {"TaylorSeerApply": TaylorSeerApply, "CGTaylorGate": CGTaylorGate, "FP8Loader": FP8Loader}
NODE_DISPLAY_NAME_MAPPINGS = {"TaylorSeerApply": "TaylorSeer Apply", "CGTaylorGate": "CG-Taylor Gate",
                              "FP8Loader": "FP8 Loader"}
