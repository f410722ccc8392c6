"""Variants a user declares correct whose outputs the harness cannot measure (wrong frames, wrong bins, a wrong
dtype, NaN, a tuple, a numpy array of the wrong layout, a plain list, an exception), one of each per component
kind; the three slips users met (a front-end with hop length 256, a vocoder returning 128 samples per frame, a
decode that forgets the scaling factor or divides by one 0.2 % off); and exact rewrites of the scaled VAE that
must pass. Registered by tests/test_malformed_outputs.py in a pytester project."""
import os

import torch

from harness import register_frontend, register_vae, register_vocoder
from harness.signal.audio import normalize_waveform
from harness.signal.frontend import PAD, audioldm2, hann_window, log_mel, reflect_pad

#: how each malformed output is made from a correct one, and what the failure must say about it
MANGLE = {
    "frames": lambda x: x[..., :-8, :] if x.ndim == 4 else x[:, :-1600],
    "bins": lambda x: x[..., :32] if x.ndim == 4 else x[:, None].repeat(1, 2, 1),
    "dtype": lambda x: x.to(torch.complex64) if x.ndim == 4 else (x * 32767).to(torch.int16),
    "nan": lambda x: torch.where(torch.arange(x.shape[-1]) == 3, torch.nan, x),
    "tuple": lambda x: (x, "extra"),
    "numpy": lambda x: x.transpose(-1, -2).numpy() if x.ndim == 4 else x.T.numpy(),
    "list": lambda x: list(x),
    "raises": lambda x: {}["no such key"],
}


def _frontend(kind):
    return lambda waveform: MANGLE[kind](audioldm2(waveform))


def _vocoder(kind):
    return lambda chain, mel: MANGLE[kind](chain.vocode(mel))


def _decode(kind):
    return lambda chain, latents: MANGLE[kind](chain.vae.decode(latents / chain.scaling_factor).sample.float())


def _encode(chain, mel):
    return chain.vae.encode(mel).latent_dist.mode() * chain.scaling_factor


# HARNESS_TEST_MALFORMED="fe-tuple,vae-nan": only those (each variant multiplies the matrix collected); unset: all
_CHOSEN = os.environ.get("HARNESS_TEST_MALFORMED")
_CHOSEN = None if _CHOSEN is None else set(_CHOSEN.split(","))
for _kind in MANGLE:
    if _CHOSEN is None or f"fe-{_kind}" in _CHOSEN:
        register_frontend(f"bad-fe-{_kind}", description=f"malformed output: {_kind}")(_frontend(_kind))
    if _CHOSEN is None or f"voc-{_kind}" in _CHOSEN:
        register_vocoder(f"bad-voc-{_kind}", description=f"malformed output: {_kind}")(_vocoder(_kind))
    if _CHOSEN is None or f"vae-{_kind}" in _CHOSEN:
        register_vae(f"bad-vae-{_kind}", encode=_encode, decode=_decode(_kind),
                     description=f"malformed output: {_kind}")


# --- the slips users met -------------------------------------------------------------------------


@register_frontend("ours-hop256", description="the README's front-end with torch.stft(..., hop_length=256)")
def ours_hop256(waveform):
    x = reflect_pad(normalize_waveform(waveform), PAD)
    return log_mel(torch.stft(x, 1024, hop_length=256, window=hann_window(dtype=x.dtype), center=False,
                              return_complex=True).abs())


@register_vocoder("ours-short", description="128 samples per frame")
def ours_short(chain, mel):
    return chain.vocode(mel)[:, : mel.shape[2] * 128]


class _Wrapper:
    factor = 1.0

    def __init__(self, vae):
        self.vae = vae

    def encode(self, mel):
        return self.vae.encode(mel).latent_dist.mode() * self.vae.config.scaling_factor

    def decode(self, latents):
        return self.vae.decode(latents / (self.vae.config.scaling_factor * self.factor)).sample


class _Unscaled(_Wrapper):
    def decode(self, latents):
        return self.vae.decode(latents).sample


class _Off(_Wrapper):
    factor = 1.002


class _InverseScale(_Wrapper):
    def decode(self, latents):  # multiplying by 1/s: an exact rewrite
        return self.vae.decode(latents * (1.0 / self.vae.config.scaling_factor)).sample


class _ChannelsLast(_Wrapper):
    def decode(self, latents):  # channels-last memory: an exact rewrite
        return self.vae.decode((latents / self.vae.config.scaling_factor).to(memory_format=torch.channels_last)).sample


register_vae("ours-unscaled", _Unscaled, description="decode forgets the scaling factor")
register_vae("ours-scale-off", _Off, description="decode divides by a scaling factor 0.2 % off")
register_vae("exact-inverse-scale", _InverseScale, description="decode multiplies by 1/s")
register_vae("exact-channels-last", _ChannelsLast, description="decode on channels-last latents")
