"""ComfyUI nodes of the pack. Nothing here imports ComfyUI at module level: a ComfyUI update can break a
node at run time (with a clear error), never the import of the whole pack."""

from .taylorseer_apply import TaylorSeerApply

NODE_CLASS_MAPPINGS = {"TaylorSeerApply": TaylorSeerApply}
NODE_DISPLAY_NAME_MAPPINGS = {"TaylorSeerApply": "TaylorSeer Apply"}
