"""Variants a user declares correct: subtle slips (each must fail at least one shipped test) and benign
rewrites (none may fail). Registered by tests/test_user_slips.py in a pytester project."""
import torch

from harness import VaeVariant, register_frontend, register_vae, register_vocoder
from harness.signal.audio import normalize_waveform
from harness.signal.frontend import PAD, audioldm2, hann_window, log_mel, mel_basis, reflect_pad, stft_magnitude

# --- slips ---------------------------------------------------------------------------------------


@register_frontend("slip-off-by-one", description="frames shifted by one (an off-by-one in the framing)")
def slip_off_by_one(waveform):
    mel = audioldm2(waveform)
    return torch.cat([mel[:, :, :1], mel[:, :, :-1]], dim=2)


def _magnitude(waveform, window):
    x = reflect_pad(normalize_waveform(waveform), PAD)
    return torch.stft(x, 1024, 160, window=window, center=False, return_complex=True).abs()


@register_frontend("slip-hamming", description="a Hamming window instead of Hann")
def slip_hamming(waveform):
    return log_mel(_magnitude(waveform, torch.hamming_window(1024, dtype=waveform.dtype)))


@register_frontend("slip-log-floor", description="log floor 1e-6 instead of 1e-5")
def slip_log_floor(waveform):
    mel = mel_basis(dtype=waveform.dtype) @ _magnitude(waveform, hann_window(dtype=waveform.dtype))
    return torch.log(torch.clamp(mel, min=1e-6)).transpose(1, 2)[:, None]


register_vae(VaeVariant("slip-scale", decode_scale=lambda s: s * 1.03,
                        description="decode divides by a scaling factor 3 % off"))


@register_vocoder("slip-lag", description="output delayed by 40 samples")
def slip_lag(chain, mel):
    wave = chain.vocode(mel)
    return torch.cat([torch.zeros_like(wave[:, :40]), wave[:, :-40]], dim=1)


@register_vocoder("slip-band-limit", description="output low-passed at 6 kHz")
def slip_band_limit(chain, mel):
    wave = chain.vocode(mel)
    spec = torch.fft.rfft(wave)
    spec[:, int(6000 / 8000 * (spec.shape[1] - 1)):] = 0
    return torch.fft.irfft(spec, n=wave.shape[1])


@register_vocoder("slip-noise", description="output with added noise at -60 dBFS")
def slip_noise(chain, mel):
    wave = chain.vocode(mel)
    return wave + 1e-3 * torch.randn(wave.shape, generator=torch.Generator().manual_seed(0))


# --- benign rewrites -------------------------------------------------------------------------------


@register_frontend("benign-float64", description="the audioldm2 front-end in float64")
def benign_float64(waveform):
    return audioldm2(waveform.double()).float()


@register_frontend("benign-loop", description="the audioldm2 front-end, clip by clip")
def benign_frontend_loop(waveform):
    return torch.cat([audioldm2(w[None]) for w in waveform])


register_vae(VaeVariant("benign-float64-scale", encode_scale=lambda s: float(torch.tensor(s, dtype=torch.float64)),
                        decode_scale=lambda s: float(torch.tensor(s, dtype=torch.float64)),
                        description="the scaling factor through float64 arithmetic"))


@register_vocoder("benign-loop", description="HiFi-GAN clip by clip")
def benign_vocoder_loop(chain, mel):
    return torch.cat([chain.vocode(m[None]) for m in mel])


class _WrapperVae:
    """A project's wrapper around the pipeline's VAE, as people write it: ``encode``/``decode`` methods."""

    decode_factor = 1.0

    def __init__(self, vae):
        self.vae = vae

    def encode(self, mel):
        return self.vae.encode(mel).latent_dist.mean * self.vae.config.scaling_factor

    def decode(self, latents):
        return self.vae.decode(latents / (self.vae.config.scaling_factor * self.decode_factor)).sample


class _SlipWrapperVae(_WrapperVae):
    decode_factor = 1.02  # a scaling factor 2 % off, in the decode only


register_vae("benign-wrapper", _WrapperVae, description="a wrapper class with encode/decode (latent_dist.mean)")
register_vae("slip-wrapper-decode", _SlipWrapperVae, description="a wrapper whose decode divides by 1.02 s")
register_vae("benign-functions", encode=lambda chain, mel: chain.vae.encode(mel).latent_dist.mode().cpu().numpy()
             * chain.scaling_factor,
             decode=lambda chain, z: chain.vae.decode(torch.as_tensor(z) / chain.scaling_factor).sample[:, 0].numpy(),
             description="encode/decode functions through numpy, decode returning [b, T, 64]")


@register_frontend("benign-numpy-items", batched=False, description="one clip at a time, numpy out, [frames, 64]")
def benign_numpy_items(waveform):
    return audioldm2(torch.as_tensor(waveform)[None])[0, 0].cpu().numpy()


@register_vocoder("benign-numpy-longer", batched=False, description="one mel at a time, numpy out, 32 samples longer")
def benign_numpy_longer(chain, mel):
    wave = chain.vocode(mel)
    return torch.cat([wave, wave[:, -32:]], dim=1).cpu().numpy()


@register_vocoder("slip-truncated", description="output cut 100 samples short of the input")
def slip_truncated(chain, mel):
    return chain.vocode(mel)[:, : mel.shape[-2] * 160 - 100]


@register_frontend("slip-no-normalize", description="the mel of the waveform as it comes: no normalisation")
def slip_no_normalize(waveform):
    return log_mel(stft_magnitude(waveform))


@register_frontend("slip-no-mean-removal", description="peak-normalised without removing the mean")
def slip_no_mean_removal(waveform):
    return log_mel(stft_magnitude(0.5 * waveform / waveform.abs().amax(dim=-1, keepdim=True)))


def _pcm16(x):
    """What writing a 16-bit WAV and reading it back does to a waveform."""
    return torch.round(torch.clamp(x, -1, 1) * 32767) / 32767


@register_frontend("benign-int16-input", description="the audioldm2 front-end on audio read from a 16-bit WAV")
def benign_int16_input(waveform):
    return audioldm2(_pcm16(waveform))


@register_vocoder("benign-pcm16-output", description="HiFi-GAN's output saved as a 16-bit WAV and read back")
def benign_pcm16_output(chain, mel):
    return _pcm16(chain.vocode(mel))


# --- more slips, as they turn up in projects -------------------------------------------------------

register_vae(VaeVariant("slip-scale-low", decode_scale=lambda s: s * 0.99,
                        description="decode divides by a scaling factor 1 % low"))
register_vae(VaeVariant("slip-encode-scale", encode_scale=lambda s: s * 0.98,
                        description="encode multiplies by a scaling factor 2 % low"))


def _posterior_sample(chain, mel, generators, temperature):
    dist = chain.vae.encode(mel).latent_dist
    noise = torch.stack([torch.randn(dist.mean.shape[1:], generator=g, device=g.device) for g in generators])
    z = (dist.mean + temperature * dist.std * noise.to(dist.mean.device, dist.mean.dtype)) * chain.scaling_factor
    return chain.vae.decode(z / chain.scaling_factor).sample


register_vae(VaeVariant("slip-posterior-temperature", description="a posterior sample at temperature 2",
                        custom=lambda chain, mel, generators: _posterior_sample(chain, mel, generators, 2.0)))


@register_frontend("slip-standardised", description="a standardised mel (a TTS habit) fed as it is")
def slip_standardised(waveform):
    mel = audioldm2(waveform)
    return (mel - mel.mean(dim=(2, 3), keepdim=True)) / mel.std(dim=(2, 3), keepdim=True)


@register_frontend("slip-tts-db", description="a Tacotron-style recipe: 20 log10, -100 dB floor, scaled to [-4, 4]")
def slip_tts_db(waveform):
    db = 20 * torch.log10(torch.clamp(mel_basis(dtype=waveform.dtype) @ stft_magnitude(normalize_waveform(waveform)),
                                      min=1e-5)) - 20
    return torch.clamp(8 * (db + 100) / 100 - 4, -4, 4).transpose(1, 2)[:, None]


@register_vocoder("slip-clipping", description="output limited: clipped at half its peak")
def slip_clipping(chain, mel):
    wave = chain.vocode(mel)
    peak = wave.abs().amax(dim=-1, keepdim=True) / 2
    return torch.maximum(torch.minimum(wave, peak), -peak)


@register_vocoder("slip-resample-8k", description="output through an 8 kHz resampling (linear interpolation)")
def slip_resample_8k(chain, mel):
    wave = chain.vocode(mel)
    low = torch.nn.functional.interpolate(wave[:, None], scale_factor=0.5, mode="linear")
    return torch.nn.functional.interpolate(low, size=wave.shape[-1], mode="linear")[:, 0]


@register_vocoder("slip-gain", description="output at half the level (a gain stage left in)")
def slip_gain(chain, mel):
    return 0.5 * chain.vocode(mel)


# --- more benign rewrites ----------------------------------------------------------------------------


@register_frontend("benign-librosa", batched=False, description="librosa as people write it: centred STFT, "
                                                                "Slaney mel, natural log")
def benign_librosa(waveform):
    import librosa
    import numpy as np

    y = np.asarray(waveform, dtype=np.float32)
    y = y - y.mean()
    y = 0.5 * y / (np.abs(y).max() + 1e-8)
    mel = librosa.feature.melspectrogram(y=y, sr=16000, n_fft=1024, hop_length=160, win_length=1024, center=True,
                                         pad_mode="reflect", power=1.0, n_mels=64, fmin=0, fmax=8000, htk=False,
                                         norm="slaney")
    return np.log(np.clip(mel, 1e-5, None))[:, : len(y) // 160].T


register_vae("benign-sample-free", encode=lambda chain, mel: chain.vae.encode(mel).latent_dist.mean.double().float()
             * chain.scaling_factor,
             decode=lambda chain, z: chain.vae.decode(z / chain.scaling_factor, return_dict=False)[0],
             description="latent_dist.mean through float64, decode(return_dict=False)")
