"""Components with weights of their own, as a project fine-tunes them: registered with ``fine_tuned=True``
(judged no worse than the base by spectral quality) or, by mistake, without it (then the exact golden
checks apply). Registered by tests/test_fine_tuned.py in a pytester project."""
import copy

import torch

from harness import register_vae, register_vocoder

_MADE = {}


def _retrained(module, seed):
    """``module`` with every weight moved by 1 % of its layer's mean magnitude: what a short fine-tune does."""
    key = (id(module), seed)
    if key not in _MADE:
        tuned = copy.deepcopy(module)
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in tuned.parameters():
                p.add_(1e-2 * p.abs().mean() * torch.randn(p.shape, generator=g).to(p.dtype))
        _MADE[key] = (module, tuned)  # keeps the base alive while its id is a key
    return _MADE[key][1]


def _tuned_vocoder(chain, mel):
    with torch.inference_mode():
        return _retrained(chain.vocoder, 0)(mel[:, 0].to(next(chain.vocoder.parameters()).dtype))


register_vocoder("tuned-declared", fine_tuned=True, description="a fine-tuned HiFi-GAN, declared")(_tuned_vocoder)
register_vocoder("tuned-undeclared", description="the same fine-tuned HiFi-GAN, declared a refactor")(_tuned_vocoder)


@register_vocoder("tuned-band-limited", fine_tuned=True, description="a fine-tuned HiFi-GAN that lost the top band")
def _tuned_band_limited(chain, mel):
    wave = _tuned_vocoder(chain, mel).float()
    spec = torch.fft.rfft(wave)
    spec[:, int(6000 / 8000 * (spec.shape[1] - 1)):] = 0
    return torch.fft.irfft(spec, n=wave.shape[1])


class _TunedVae:
    def __init__(self, vae):
        self.vae = _retrained(vae, 1)

    def encode(self, mel):
        return self.vae.encode(mel).latent_dist.mode() * self.vae.config.scaling_factor

    def decode(self, latents):
        return self.vae.decode(latents / self.vae.config.scaling_factor).sample


register_vae("tuned-vae", _TunedVae, fine_tuned=True, description="a fine-tuned VAE, declared")
