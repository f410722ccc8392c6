#!/usr/bin/env bash
# Run on a machine with a CUDA GPU, from the repository root, with .pack and .whl from
# scripts/gpu-train-prepare.sh copied beside it: trains the bundled vocoder's stage 2 (supervised) and
# stage 3 (adversarial), each fitted to a wall-clock budget, without exporting (diffusers is not needed
# there), and leaves portable checkpoints (no optimiser state) in $OUT.
#   usage: OUT=DIR bash scripts/gpu-train-vocoder.sh STAGE2_MINUTES STAGE3_MINUTES [harness train options,
#          e.g. --config scripts/vocoder-gpu.json]
# Copy $OUT back to runs/gpu on the first machine, then export and evaluate there:
#   harness train --out runs/gpu --config runs/gpu/config.json --device cpu --init-from harness/models/tiny \
#       --model-out /tmp/candidate && harness evaluate --model /tmp/candidate
set -euo pipefail
stage2_minutes=${1:?stage-2 minutes}
stage3_minutes=${2:?stage-3 minutes}
shift 2
: "${OUT:?set OUT to the folder to copy back}"
if [ -d .whl ]; then  # absent where soundfile is installed (a dry run on a CPU machine)
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
fi
export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
python3 -m harness train --out runs/gpu --no-export --device cuda --threads 8 --data-pack .pack/corpus.npz \
  --stages vocoder,gan --vocoder-minutes "$stage2_minutes" --gan-minutes "$stage3_minutes" "$@"
python3 -m harness train --out runs/gpu --portable "$OUT"
