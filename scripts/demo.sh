#!/usr/bin/env bash
# make demo: the main job on the real stories260K model.
set -euo pipefail
build=${1:-build}
"$build/examples/quantize_weights" ../shared/models/stories260K/hf/model.safetensors
