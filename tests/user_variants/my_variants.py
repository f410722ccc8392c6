"""A user's own variants, registered from their repository (here: a test-local module)."""
import torch

from harness import VaeVariant, register_frontend, register_vae, register_vocoder
from harness.signal.audio import normalize_waveform
from harness.signal.frontend import log_mel, stft_magnitude


@register_frontend("user-float64", description="a user's re-implementation in float64")
def user_float64(waveform: torch.Tensor) -> torch.Tensor:
    return log_mel(stft_magnitude(normalize_waveform(waveform.double()))).float()


@register_frontend("user-db-bug", correct=False, description="a user's front-end known to be wrong")
def user_db_bug(waveform: torch.Tensor) -> torch.Tensor:
    return log_mel(stft_magnitude(normalize_waveform(waveform))) * (20 / 2.302585)


register_vae(VaeVariant("user-mode", description="a user's VAE wrapper (mode, scaled)"))


@register_vocoder("user-hifigan", description="a user's vocoder wrapper")
def user_hifigan(chain, mel):
    return chain.vocode(mel)
