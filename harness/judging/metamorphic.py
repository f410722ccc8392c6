"""Metamorphic checks of a front-end: what must not change its mel, tried on inputs hypothesis draws.

The quality matrix hands every front-end audio already on AudioLDM2's frame grid, so some mistakes can only
be seen by changing the input and watching the output. A front-end that does what AudioLDM2's does
(remove the mean, peak-normalise, then analyse) gives the same mel for

* the clip at any gain from x0.1 to x2.5 (a forgotten normalisation shifts the mel by ``ln(gain)``),
* the clip with a DC offset (a forgotten mean removal moves the lowest bands),
* the clip in a batch or alone (a batch-wide normalisation or statistic mixes the clips),

and AudioLDM2's frame count for a clip of any length, on the 640-sample grid or off it.
"""
from __future__ import annotations

import numpy as np
import torch

from harness.signal import frontend as frontends
from harness.signal.audio import HOP, SAMPLE_RATE
from harness.signal import metrics

#: mean absolute log-mel difference (nats) two mels may differ by and still count as the same: float
#: round-off of a correct front-end is ~1e-6; a gain it fails to undo shows as ln(gain), a DC offset
#: it keeps as a few hundredths of a nat averaged over the bands
SAME_MEL_NATS = 1e-3
#: how many inputs hypothesis draws per property (derandomized: the same ones on every run)
EXAMPLES = 8


def _clip(seed: int, n: int) -> torch.Tensor:
    """A reproducible clip of ``n`` samples: a chord with vibrato over noise, peak 0.4 ([1, n] float32)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SAMPLE_RATE
    f0 = rng.uniform(110, 440)
    x = sum(np.sin(2 * np.pi * f0 * k * t * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))) / k for k in (1, 2, 3, 5))
    x = x + 0.05 * rng.standard_normal(n)
    return torch.from_numpy((0.4 * x / np.abs(x).max()).astype(np.float32))[None]


def mel_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean log-mel L1 (nats) of two log-mels ``[b, 1, T, 64]`` over their items (:func:`harness.signal.metrics.mel_l1`:
    what lies under a 16-bit noise floor does not count); infinite when the shapes differ."""
    if a.shape != b.shape:
        return float("inf")
    return float(metrics.mel_l1(mel_estimate=a.double(), mel_reference=b.double()).mean())


def check_frontend(name: str, examples: int = EXAMPLES) -> None:
    """Assert the metamorphic properties of the registered front-end ``name`` (AssertionError naming the
    property, the input and the difference in nats)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    fe = frontends.get_frontend(name)
    grid = HOP * 4
    config = settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck))

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return fe(x).float()

    @config
    # x0.1 to x2.5: the clip's peak stays <= 1 and a 16-bit copy of it keeps 70 dB of range, more than the
    # MEL_FLOOR_NATS comparisons look at (reading a WAV is not a mistake)
    @given(seed=st.integers(0, 2**16), gain=st.floats(-1.0, 0.39))
    def gain(seed, gain):
        x = _clip(seed, 16 * grid)
        d = mel_difference(run(x), run(x * 10.0 ** gain))
        assert d <= SAME_MEL_NATS, (f"front-end {name!r}: the mel changes with the input's gain: x{10 ** gain:.3g} "
                                    f"moves it {d:.3g} nats (forgotten waveform normalisation?)")

    @config
    @given(seed=st.integers(0, 2**16), offset=st.floats(-0.3, 0.3).filter(lambda v: abs(v) > 0.01))
    def dc_offset(seed, offset):
        x = _clip(seed, 16 * grid)
        d = mel_difference(run(x), run(x + offset))
        assert d <= SAME_MEL_NATS, (f"front-end {name!r}: the mel changes with a DC offset of {offset:+.3f}: "
                                    f"{d:.3g} nats (forgotten mean removal?)")

    @config
    @given(seeds=st.lists(st.integers(0, 2**16), min_size=2, max_size=4, unique=True),
           gains=st.lists(st.floats(-1.5, 0.5), min_size=4, max_size=4))
    def batch_and_items(seeds, gains):
        x = torch.cat([_clip(s, 12 * grid) * 10.0 ** g for s, g in zip(seeds, gains)])
        batched = run(x)
        alone = torch.cat([run(row[None]) for row in x])
        d = mel_difference(batched, alone)
        assert d <= SAME_MEL_NATS, (f"front-end {name!r}: a clip's mel depends on its batch: {d:.3g} nats between "
                                    f"a batch of {len(seeds)} and the clips one by one (a batch-wide statistic?)")

    @config
    @given(seed=st.integers(0, 2**16), n=st.integers(2 * grid, 24 * grid))
    def any_length(seed, n):
        x = _clip(seed, n)
        got, want = run(x), frontends.get_frontend("audioldm2")(x)
        assert got.shape == want.shape, (f"front-end {name!r}: a clip of {n} samples ({n % grid} past the "
                                         f"{grid}-sample grid) gives shape {tuple(got.shape)}, AudioLDM2's gives "
                                         f"{tuple(want.shape)}")
        assert torch.isfinite(got).all(), f"front-end {name!r}: non-finite values for a clip of {n} samples"

    for prop in (gain, dc_offset, batch_and_items, any_length):
        prop()
