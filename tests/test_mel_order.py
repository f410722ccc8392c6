"""``harness mel`` against independent float64 references, on lengths that are not multiples of 640.

AudioLDM2 normalises the waveform (mean removal, 0.5 peak) *before* zero-padding it to the frame
grid (``AUDIOLDM2_REFERENCE.md`` section 1). The references below do exactly that, in float64
NumPy/librosa, for the training framing (``audioldm2``) and for the inference code's TacotronSTFT
framing (``audioldm2-tacotron``: reflect padding of n_fft/2 as ``center=True``, last frame dropped).
"""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from harness.surfaces.cli import main
from harness.signal.synth import iter_reference_clips

SR, HOP, N_FFT, BLOCK = 16000, 160, 1024, 640
LOUD = np.log(1e-3)


def audioldm2_order(x: np.ndarray) -> np.ndarray:
    """Normalise, then zero-pad at the end to the smallest multiple of 640 samples (float64)."""
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean()
    x = 0.5 * x / (np.abs(x).max() + 1e-8)
    return np.pad(x, (0, -len(x) % BLOCK))


def reference(x: np.ndarray, framing: str) -> np.ndarray:
    """``[frames, 64]`` log-mel of AudioLDM2's training STFT (``audioldm2``) or TacotronSTFT (``tacotron``)."""
    import librosa

    y = audioldm2_order(x)
    pad = (N_FFT - HOP) // 2 if framing == "audioldm2" else N_FFT // 2
    spec = librosa.stft(np.pad(y, (pad, pad), mode="reflect"), n_fft=N_FFT, hop_length=HOP, window="hann",
                        center=False)
    basis = librosa.filters.mel(sr=SR, n_fft=N_FFT, n_mels=64, fmin=0.0, fmax=8000.0, dtype=np.float64)
    mel = np.log(np.maximum(basis @ np.abs(spec), 1e-5)).T
    return mel[: len(y) // HOP]  # TacotronSTFT's extra last frame is dropped


def clips_of_odd_lengths():
    """Shipped-kind clips with a DC offset, cut to lengths that are not multiples of 640 (0.07-3 s)."""
    clips = dict(iter_reference_clips())
    rng = np.random.default_rng(11)
    for name, x in clips.items():
        for n in (1111, 4321, 16000 + 333, min(len(x), 48000) - 17):
            assert n % BLOCK
            yield f"{name}-{n}", (x[:n] + rng.uniform(-0.05, 0.05)).astype(np.float32)


CASES = list(clips_of_odd_lengths())


def harness_mel(tmp_path, x: np.ndarray, frontend: str) -> np.ndarray:
    wav = tmp_path / "in.wav"
    sf.write(wav, x, SR, subtype="FLOAT")
    assert main(["mel", str(wav), "--frontend", frontend, "--out", str(tmp_path / "out")]) == 0
    return np.load(tmp_path / "out" / "in.npy").astype(np.float64)


@pytest.mark.parametrize("frontend,framing", [("audioldm2", "audioldm2"), ("audioldm2-tacotron", "tacotron")])
@pytest.mark.parametrize("name,x", CASES, ids=[c[0] for c in CASES])
def test_harness_mel_equals_float64_reference(tmp_path, name, x, frontend, framing):
    ours, ref = harness_mel(tmp_path, x, frontend), reference(x, framing)
    assert ours.shape == ref.shape
    edge = min(4, ref.shape[0] // 4)
    interior = slice(edge, ref.shape[0] - edge)
    diff = np.abs(ours - ref)[interior]
    loud = ref[interior] > LOUD
    assert diff[loud].max() < 1e-4, f"{name}: max |diff| {diff[loud].max():.3g} nats where mel > 1e-3"
    assert diff.mean() < 5e-5, f"{name}: mean |diff| {diff.mean():.3g} nats"


def test_padding_before_normalising_is_measurably_wrong(tmp_path):
    """The check above can fail: the old order (pad, then normalise) misses the reference in the lowest band."""
    name, x = next((n, x) for n, x in CASES if n.startswith("speech-4321"))
    ref = reference(x, "audioldm2")
    import torch

    from harness.signal.frontend import get_frontend

    padded = np.pad(x.astype(np.float64), (0, -len(x) % BLOCK))
    wrong = get_frontend("audioldm2")(torch.from_numpy(padded)[None])[0, 0].numpy()
    interior = slice(4, ref.shape[0] - 4)
    assert np.abs(wrong - ref)[interior][ref[interior] > LOUD].max() > 1e-3
