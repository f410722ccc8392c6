"""Griffin-Lim: the harness's batched torch version against ``librosa.griffinlim``, same iterations.

Both start from the same ``audioldm2``-framed STFT magnitude (n_fft 1024, hop 160, Hann) of 10.24 s
clips and run 32 fast Griffin-Lim iterations (momentum 0.99) from the *same* random initial phases
(``harness.signal.griffinlim.librosa_griffin_lim`` hands the harness's seeded draws to librosa). After 32 iterations the
quality depends on the initial phases more than on anything else (numpy seeds 0-3 give a log-mel L1 of
0.115-0.159 nats on one clip, torch seeds 0-3 give 0.068-0.102), so only equal starts compare the
algorithms; from equal starts the outputs agree to ~1e-3 of full scale. The output quality must be
equal: the log-mel L1 (``metrics.mel_l1``) of either output against the input is within 10 % of the
other's. Group ``griffinlim``; ``harness bench`` prints the speed ratio.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.signal import metrics
from harness.signal.audio import normalize_waveform
from harness.signal.frontend import stft_magnitude
from harness.signal.griffinlim import griffin_lim, librosa_griffin_lim
from harness.surfaces.bench.timing import LONG

N_ITER = 32
_QUALITY = {}


def torch_griffin_lim(mag: torch.Tensor, n_iter: int = N_ITER) -> torch.Tensor:
    with torch.inference_mode():
        return griffin_lim(mag, n_iter=n_iter)


def quality(impl: str, batch: int, wave: torch.Tensor, mag: torch.Tensor, out=None) -> float:
    """Mean log-mel L1 (nats) of ``impl``'s reconstruction against the input (computed once per impl/batch)."""
    if (impl, batch) not in _QUALITY:
        if out is None:
            out = torch_griffin_lim(mag) if impl == "torch" else librosa_griffin_lim(mag, N_ITER)
        _QUALITY[(impl, batch)] = float(metrics.mel_l1(torch.as_tensor(np.asarray(out)), wave).mean())
    return _QUALITY[(impl, batch)]


@pytest.mark.benchmark(group="griffinlim")
@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("impl", ["torch", "librosa"])
def test_bench_griffin_lim(bench, chains, impl, batch):
    wave = chains.wave(batch, LONG)
    mag = stft_magnitude(normalize_waveform(wave))
    if impl == "torch":
        fn = lambda: torch_griffin_lim(mag)  # noqa: E731
    else:
        fn = lambda: librosa_griffin_lim(mag, N_ITER)  # noqa: E731
    out = bench(fn, stage="griffin-lim", impl=impl, batch=batch, clip_seconds=LONG, rounds=3, n_iter=N_ITER)
    assert tuple(out.shape) == tuple(wave.shape)
    ours = quality(impl, batch, wave, mag, out)
    other = quality("librosa" if impl == "torch" else "torch", batch, wave, mag)
    bench.benchmark.extra_info["mel_l1"] = ours
    assert ours < 2.0, f"{impl} Griffin-Lim does not reconstruct: mel L1 {ours:.3f} nats"
    assert abs(ours - other) <= 0.1 * min(ours, other), f"quality differs: {impl} {ours:.3f} vs {other:.3f} nats"
