#!/usr/bin/env bash
# Run HERE (a machine with espeak-ng and PyPI) before training the bundled vocoder on a lent GPU:
# writes the ignored folders the device run carries,
#   .pack/corpus.npz  the stage-2 corpus and held-out set as 16-bit FLAC (about 43 MB; the GPU has no espeak-ng)
#   .whl/             soundfile and librosa (the mel basis), with what they need that the GPU's Python 3.12
#                     image lacks
# then prints the device call. README: "Training the bundled vocoder on a lent GPU".
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .pack runs/tiny
[ -f .pack/corpus.npz ] || harness train --out runs/tiny --write-pack .pack/corpus.npz
rm -rf .whl && mkdir .whl
# the versions installed here, so the GPU computes the same mel basis and reads the same FLAC
version() { python3 -c "import importlib.metadata as m; print(m.version('$1'))"; }
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .whl "soundfile==$(version soundfile)" cffi pycparser "librosa==$(version librosa)" audioread decorator pooch \
  platformdirs soxr
du -sh .pack .whl
cat <<'CALL'
device run (repo root; carry [".pack", ".whl"]; timeout_s 600):
  bash scripts/gpu-train-vocoder.sh 5.5 2.5 --config scripts/vocoder-845.json
CALL
