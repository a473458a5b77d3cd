"""ComfyUI nodes of the pack (ComfyUI's V3 node API, ``comfy_api.latest``), registered per family by
``registry``. Nothing imports ComfyUI internals (``comfy.*``) at module level: a ComfyUI update can break a node
at run time (with a clear error), or one node family at load (logged), never the import of the whole pack."""
