"""``harness.fastconv``: the polyphase transposed convolution equals ``nn.ConvTranspose1d``."""
from __future__ import annotations

import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.fastconv import PolyphaseConvTranspose1d, polyphase_upsamplers


def close(a: torch.Tensor, b: torch.Tensor) -> None:
    a, b = a.detach(), b.detach()
    assert a.shape == b.shape
    scale = float(b.abs().max()) + 1e-12
    assert float((a - b).abs().max()) < 1e-5 * scale


@pytest.mark.parametrize("c_in,c_out,k,s", [(16, 8, 16, 5), (16, 8, 16, 4), (8, 4, 8, 2), (8, 4, 4, 2), (4, 4, 3, 3),
                                            (4, 2, 1, 1)])
def test_hifigan_upsamplers(c_in, c_out, k, s):
    """The shapes of HiFi-GAN's upsamplers (padding (k - s) // 2), batch 3, with bias."""
    torch.manual_seed(0)
    conv = torch.nn.ConvTranspose1d(c_in, c_out, k, s, padding=(k - s) // 2)
    x = torch.randn(3, c_in, 37)
    close(PolyphaseConvTranspose1d(conv)(x), conv(x))


@settings(max_examples=60, deadline=None)
@given(c_in=st.integers(1, 6), c_out=st.integers(1, 6), k=st.integers(1, 12), s=st.integers(1, 6),
       pad=st.integers(0, 6), length=st.integers(1, 20), bias=st.booleans())
def test_any_geometry(c_in, c_out, k, s, pad, length, bias):
    if (length - 1) * s - 2 * pad + k < 1:  # torch refuses an empty output too
        return
    torch.manual_seed(1)
    conv = torch.nn.ConvTranspose1d(c_in, c_out, k, s, padding=pad, bias=bias)
    x = torch.randn(2, c_in, length)
    close(PolyphaseConvTranspose1d(conv)(x), conv(x))


def test_refuses_what_it_does_not_cover():
    with pytest.raises(ValueError, match="groups=1"):
        PolyphaseConvTranspose1d(torch.nn.ConvTranspose1d(4, 4, 4, 2, groups=2))
    with pytest.raises(ValueError, match="output_padding"):
        PolyphaseConvTranspose1d(torch.nn.ConvTranspose1d(4, 4, 4, 2, output_padding=1))


def test_replaces_the_vocoder_upsamplers(tiny_chain):
    vocoder = copy.deepcopy(tiny_chain.vocoder)
    n_up = len(vocoder.upsampler)
    assert polyphase_upsamplers(vocoder) == n_up
    assert all(isinstance(m, PolyphaseConvTranspose1d) for m in vocoder.upsampler)
    assert not any(isinstance(m, torch.nn.ConvTranspose1d) for m in vocoder.modules())
    mel = torch.randn(2, 50, 64) - 4
    with torch.inference_mode():
        close(vocoder(mel), tiny_chain.vocoder(mel))


@pytest.fixture(scope="module")
def tiny_chain():
    from harness.chain import Chain

    return Chain.load("tiny")
