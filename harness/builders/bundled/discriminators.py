"""HiFi-GAN's discriminators and adversarial losses, for training the bundled vocoder only.

Kong et al. 2020 (HiFi-GAN), section 2.2-2.3: a multi-period discriminator (MPD: the waveform
folded into ``period`` columns, 2-D convolutions along time) and a multi-scale discriminator (MSD:
1-D grouped convolutions on the waveform and on 2x and 4x average-pooled copies), least-squares
GAN losses and feature matching. Widths are a fraction of the paper's so a step fits a 2-core CPU;
the shipped generator stays a ``SpeechT5HifiGan`` and none of this is exported.
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import weight_norm

#: HiFi-GAN's leaky-ReLU slope
LRELU_SLOPE = 0.1

#: ``(logits, feature maps)`` of one sub-discriminator
Judgement = Tuple[torch.Tensor, List[torch.Tensor]]


def _judge(convs: nn.ModuleList, post: nn.Module, x: torch.Tensor) -> Judgement:
    """Leaky-ReLU convolutions, then the linear ``post`` layer: ``(logits [batch, n], every layer's output)``."""
    features = []
    for conv in convs:
        x = F.leaky_relu(conv(x), LRELU_SLOPE)
        features.append(x)
    x = post(x)
    features.append(x)
    return x.flatten(1), features


class PeriodDiscriminator(nn.Module):
    """One MPD member: ``[batch, samples]`` folded to ``[batch, 1, samples / period, period]``.

    Parameters
    ----------
    period : int
        Column count of the fold (the waveform is reflect-padded to a multiple of it).
    channels : sequence of int
        Widths of the strided ``(5, 1)`` convolutions (stride 3 along time), then one of stride 1.
    """

    def __init__(self, period: int, channels: Sequence[int] = (8, 32, 64, 128)):
        super().__init__()
        self.period = period
        layers, c_in = [], 1
        for i, c_out in enumerate(channels):
            stride = 3 if i < len(channels) - 1 else 1
            layers.append(weight_norm(nn.Conv2d(c_in, c_out, (5, 1), (stride, 1), padding=(2, 0))))
            c_in = c_out
        self.convs = nn.ModuleList(layers)
        self.post = weight_norm(nn.Conv2d(c_in, 1, (3, 1), padding=(1, 0)))

    def forward(self, wave: torch.Tensor) -> Judgement:
        """``wave`` float [batch, samples] -> ``(logits [batch, n], feature maps)``."""
        b, t = wave.shape
        if t % self.period:
            wave = F.pad(wave, (0, self.period - t % self.period), mode="reflect")
        return _judge(self.convs, self.post, wave.view(b, 1, -1, self.period))


class ScaleDiscriminator(nn.Module):
    """One MSD member: grouped 1-D convolutions over ``[batch, samples]``.

    Parameters
    ----------
    channels : sequence of int
        Widths; the first layer is a plain kernel-15 convolution, the middle ones grouped
        kernel-41 convolutions (stride 2, then 4), the last a kernel-5 one.
    """

    def __init__(self, channels: Sequence[int] = (8, 16, 32, 64, 64)):
        super().__init__()
        layers = [weight_norm(nn.Conv1d(1, channels[0], 15, 1, padding=7))]
        for i, (c_in, c_out) in enumerate(zip(channels[:-1], channels[1:])):
            last = i == len(channels) - 2
            if last:
                layers.append(weight_norm(nn.Conv1d(c_in, c_out, 5, 1, padding=2)))
            else:
                stride = 2 if i < 2 else 4
                groups = max(1, min(16, c_in // 4))
                layers.append(weight_norm(nn.Conv1d(c_in, c_out, 41, stride, padding=20, groups=groups)))
        self.convs = nn.ModuleList(layers)
        self.post = weight_norm(nn.Conv1d(channels[-1], 1, 3, 1, padding=1))

    def forward(self, wave: torch.Tensor) -> Judgement:
        """``wave`` float [batch, samples] -> ``(logits [batch, n], feature maps)``."""
        return _judge(self.convs, self.post, wave[:, None])


class HifiGanDiscriminator(nn.Module):
    """MPD (periods 2, 3, 5, 7, 11) plus MSD (1x, 2x, 4x average-pooled): a list of judgements.

    Examples
    --------
    >>> import torch
    >>> from harness.builders.bundled.discriminators import HifiGanDiscriminator, discriminator_loss
    >>> d = HifiGanDiscriminator()
    >>> real, fake = torch.randn(2, 4000), torch.randn(2, 4000)
    >>> loss = discriminator_loss(d(real), d(fake))
    """

    def __init__(self, periods: Sequence[int] = (2, 3, 5, 7, 11), scales: int = 3):
        super().__init__()
        self.periods = nn.ModuleList(PeriodDiscriminator(p) for p in periods)
        self.scales = nn.ModuleList(ScaleDiscriminator() for _ in range(scales))

    def forward(self, wave: torch.Tensor) -> List[Judgement]:
        """``wave`` float [batch, samples] -> one ``(logits, features)`` per sub-discriminator."""
        out = [d(wave) for d in self.periods]
        for i, d in enumerate(self.scales):
            if i:
                wave = F.avg_pool1d(wave[:, None], 4, 2, padding=2)[:, 0]
            out.append(d(wave))
        return out


def discriminator_loss(real: List[Judgement], fake: List[Judgement]) -> torch.Tensor:
    """Least-squares GAN loss of the discriminator: ``sum_k mean (1 - D_k(x))^2 + mean D_k(G(s))^2``."""
    return sum(((1 - r) ** 2).mean() + (f ** 2).mean() for (r, _), (f, _) in zip(real, fake))


def generator_loss(fake: List[Judgement]) -> torch.Tensor:
    """Least-squares GAN loss of the generator: ``sum_k mean (1 - D_k(G(s)))^2``."""
    return sum(((1 - f) ** 2).mean() for f, _ in fake)


def feature_matching_loss(real: List[Judgement], fake: List[Judgement]) -> torch.Tensor:
    """``sum`` over sub-discriminators and layers of ``mean |D(x) - D(G(s))|`` (real features detached)."""
    return sum((r.detach() - f).abs().mean() for (_, rs), (_, fs) in zip(real, fake) for r, f in zip(rs, fs))
