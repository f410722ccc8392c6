#!/usr/bin/env bash
# Run on this machine (with espeak-ng and a package index) before training the bundled vocoder on a machine
# with a CUDA GPU. Writes the two ignored folders to copy there with the repository:
#   .pack/corpus.npz  the stage-2 corpus and held-out set as 16-bit FLAC (about 43 MB), so the GPU machine
#                     needs no espeak-ng
#   .whl/             wheels of soundfile and librosa (the mel basis) for Python 3.12, for a GPU machine
#                     whose Python lacks them and cannot reach a package index
# Then copy the repository with .pack and .whl to the GPU machine and run scripts/gpu-train-vocoder.sh there
# (docs/bundled-model.md, "Training the vocoder on a GPU").
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .pack runs/tiny
[ -f .pack/corpus.npz ] || harness train --out runs/tiny --write-pack .pack/corpus.npz
rm -rf .whl && mkdir .whl
# the versions installed here, so the GPU machine computes the same mel basis and reads the same FLAC
version() { python3 -c "import importlib.metadata as m; print(m.version('$1'))"; }
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .whl "soundfile==$(version soundfile)" cffi pycparser "librosa==$(version librosa)" audioread decorator pooch \
  platformdirs soxr
du -sh .pack .whl
cat <<'NEXT'
next, on the GPU machine, from the repository root (with .pack and .whl copied beside it):
  OUT=/tmp/trained bash scripts/gpu-train-vocoder.sh 5.5 2.5 --config scripts/vocoder-gpu.json
NEXT
