"""The FP8 node group: the "FP8 Loader" node and what it needs, one job per module.

- ``quantize``: scaled fp8 quantization of one weight and its error metrics (pure torch, no ComfyUI, no
  relative imports: it loads on its own).
- ``policy``: which Linear layers of a model's module tree are quantized and which stay in high precision.
- ``checkpoint``: safetensors headers, streaming quantization of a file, atomic no-overwrite saving.
- ``support``: what the running ComfyUI offers for scaled fp8 (by feature) and the calls into it.
- ``loader``: the node.

The registry imports this family on its own: a failure here (e.g. a torch without float8 types) leaves the
forecasting nodes registered.
"""
