"""ComfyUI nodes of the pack (ComfyUI's V3 node API, ``comfy_api.latest``), registered per node group by
``registry``. Nothing imports ComfyUI internals (``comfy.*``) at module level: a ComfyUI update can break a node
at run time (with a clear error), or one node group at load (logged), never the import of the whole pack."""
