"""ComfyUI nodes of the pack. Nothing here imports ComfyUI at module level: a ComfyUI update can break a
node at run time (with a clear error), never the import of the whole pack."""

from .cg_taylor_gate import CGTaylorGate
from .taylorseer_apply import TaylorSeerApply

NODE_CLASS_MAPPINGS = {"TaylorSeerApply": TaylorSeerApply, "CGTaylorGate": CGTaylorGate}
NODE_DISPLAY_NAME_MAPPINGS = {"TaylorSeerApply": "TaylorSeer Apply", "CGTaylorGate": "CG-Taylor Gate"}
