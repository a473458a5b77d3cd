#!/usr/bin/env bash
# Bundle for a GPU machine that reaches no package registry (the project's lent device): the host's ComfyUI
# source (no models, tokenizer data, tests or API nodes) and wheels of the ComfyUI requirements a CUDA PyTorch
# image usually lacks (torchsde, trampoline, av). Writes .gpu/ (git-ignored); docs/benchmarks.md shows its use.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 scripts/comfy_host.py ensure >/dev/null
rm -rf .gpu
mkdir -p .gpu/whl
tar -C .host -cf - --exclude=ComfyUI/models --exclude=ComfyUI/output --exclude=ComfyUI/input --exclude=ComfyUI/temp \
    --exclude=ComfyUI/user --exclude=ComfyUI/custom_nodes --exclude=ComfyUI/tests --exclude=ComfyUI/tests-unit \
    --exclude=ComfyUI/comfy_api_nodes --exclude='__pycache__' --exclude='ComfyUI/comfy/text_encoders/*_tokenizer' \
    --exclude=ComfyUI/comfy/sd1_tokenizer ComfyUI \
    | tar -C .gpu -xf -
mkdir -p .gpu/ComfyUI/custom_nodes
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .gpu/whl av==16.0.1 torchsde==0.2.6 trampoline==0.1.2
du -sh .gpu
