#!/usr/bin/env bash
# The speed suite and the quality tests on one CUDA GPU, in under 8 minutes, everything in one folder:
#   OUT/bench.json              the timed benchmarks (pytest-benchmark JSON: raw and normalised rounds, peak CUDA memory)
#   OUT/summary.md              the Markdown summary: speed verdicts (with a speed baseline) and quality results
#   OUT/bench.png, table.txt    the run as a plot and a table
#   OUT/junit-*.xml, *.log      JUnit and the output of each part; OUT/environment.txt the GPU and versions
# Usage, from the repository root on a machine with a CUDA GPU (installed as the README says):
#   bash scripts/gpu-check.sh [OUT]                  OUT defaults to gpu-check/
#   GPU_CHECK_COMPILE=1 bash scripts/gpu-check.sh    also the torch.compile variants (minutes of compiling)
# With OUT/speed-baseline.json present (copied from an earlier run's `harness bench --calibrate`), the timed
# benchmarks are gated against it. Exit status: 0 every part passed, 1 a part failed, 2 no CUDA device.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=$(mkdir -p "${1:-gpu-check}" && cd "${1:-gpu-check}" && pwd)
export MPLBACKEND=Agg HF_HUB_OFFLINE=1

python - > "$OUT/environment.txt" 2>&1 <<'PY' || { cat "$OUT/environment.txt"; exit 2; }
import sys
import torch
from harness import machine
if not torch.cuda.is_available():
    sys.exit("no CUDA device visible to torch: run this on a machine with a CUDA GPU and torch's CUDA build")
print(torch.cuda.get_device_name(0), "CUDA", torch.version.cuda, machine.kernel_path("cuda"))
print(machine.versions())
PY
nvidia-smi >> "$OUT/environment.txt" 2>&1 || true
cat "$OUT/environment.txt"

status=0
baseline=off
[ -f "$OUT/speed-baseline.json" ] && baseline="$OUT/speed-baseline.json"
select="not compile"
[ "${GPU_CHECK_COMPILE:-0}" = 1 ] && select=""

# 1. speed: every stage on the GPU (tiny at 10.24 s, real size at 1.28 s, batch 1 and 4) and the real-size fp16, bf16,
#    channels_last (and compile) variants; each round beside the reference work, synchronised on its device
timeout 330 python -m pytest -p no:cacheprovider -q tests/benchmarks/test_bench_chain.py --harness-device=cuda \
  --benchmark-enable --benchmark-only --benchmark-autosave --benchmark-storage="file://$OUT/history" \
  --benchmark-json="$OUT/bench.json" --harness-speed-baseline="$baseline" -k "$select" \
  --harness-summary="$OUT/summary-speed.md" --junitxml="$OUT/junit-speed.xml" > "$OUT/speed.log" 2>&1 || status=1
tail -3 "$OUT/speed.log"

# 2. quality: the shipped quality tests (clip matrix and golden stages) with the model on the GPU in fp32 (TF32 off)
timeout 150 python -m pytest -p no:cacheprovider -q tests/test_quality_matrix.py tests/test_golden_stages.py \
  --harness-device=cuda --harness-summary="$OUT/summary-quality.md" --junitxml="$OUT/junit-quality.xml" \
  > "$OUT/quality.log" 2>&1 || status=1
tail -3 "$OUT/quality.log"

cat "$OUT"/summary-speed.md "$OUT"/summary-quality.md > "$OUT/summary.md" 2>/dev/null
harness bench "$OUT/bench.json" --storage "$OUT/history" --baseline "$OUT/speed-baseline.json" \
  --plot "$OUT/bench.png" > "$OUT/table.txt" 2>&1 || status=1
echo "wrote $OUT (exit $status)"
exit $status
