#!/usr/bin/env bash
# Download, on a machine with network, the wheels the GPU check installs offline on the GPU machine
# (docs/gpu_check.md lists them with their sizes). Default folder: .whl/gpu_check (git-ignored); carry it there.
#
#   bash benchmarks/gpu_wheels.sh [FOLDER]
#
# All pure-Python or abi3 wheels, so the GPU machine's Python version does not matter; --no-deps: the GPU machine
# already has torch, numpy, safetensors, pyyaml, regex, filelock, lightning, onnxruntime (and what they need).
set -euo pipefail
cd "$(dirname "$0")/.."
FOLDER="${1:-.whl/gpu_check}"
PIP="${PIP:-python -m pip}"
mkdir -p "$FOLDER"
# The GPU machine's transformers (5.x) cannot run qwen-tts 0.1.1 (docs/upstream_bugs.md, issue 22 s1): bring the
# version qwen-tts pins, with the huggingface-hub (< 1.0) and tokenizers ranges it checks at import, and the
# accelerate and peft this project pins (a peft built for transformers 5 need not import beside 4.57.3).
WHEELS=(
  "qwen-tts==0.1.1"
  "transformers==4.57.3"
  "huggingface-hub==0.36.2"
  "tokenizers==0.22.2"
  "accelerate==1.12.0"
  "peft==0.21.2"
)
$PIP download --no-deps --only-binary=:all: --dest "$FOLDER" \
  --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --python-version 3.10 --implementation cp \
  "${WHEELS[@]}"
ls -l "$FOLDER"/*.whl | awk '{printf "%8.2f MiB  %s\n", $5 / 1048576, $9}'
du -cb "$FOLDER"/*.whl | tail -1 | awk '{printf "%8.2f MiB  in all (the carry limit is 64 MiB)\n", $1 / 1048576}'
