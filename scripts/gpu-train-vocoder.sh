#!/usr/bin/env bash
# Run ON A LENT GPU by the device tool (repo root, carrying .pack and .whl from scripts/gpu-train-prepare.sh):
# trains the bundled vocoder's stage 2 (supervised) and stage 3 (adversarial), each fitted to a wall-clock
# budget, without exporting (the GPU image has no diffusers), and leaves portable checkpoints in $OUT.
#   usage: bash scripts/gpu-train-vocoder.sh STAGE2_MINUTES STAGE3_MINUTES [harness train options, e.g. --config scripts/vocoder-845.json]
# Keep the two budgets about 1.5 minutes under the call's limit (start-up, data, evaluation, copying).
# Back here: copy the files to runs/gpu, then
#   harness train --out runs/gpu --config runs/gpu/config.json --device cpu --init-from harness/models/tiny \
#       --model-out /tmp/candidate && harness evaluate --model /tmp/candidate
set -euo pipefail
stage2_minutes=${1:?stage-2 minutes}
stage3_minutes=${2:?stage-3 minutes}
shift 2
: "${OUT:?set OUT to the folder that comes back}"
if [ -d .whl ]; then  # absent where soundfile is installed (a dry run on a CPU machine)
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
fi
export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
python3 -m harness train --out runs/gpu --no-export --device cuda --threads 8 --data-pack .pack/corpus.npz \
  --stages vocoder,gan --vocoder-minutes "$stage2_minutes" --gan-minutes "$stage3_minutes" "$@"
python3 -m harness train --out runs/gpu --portable "$OUT"
