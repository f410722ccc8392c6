"""Exact re-formulations of layers that run slowly on CPU, for inference.

HiFi-GAN upsamples with ``ConvTranspose1d`` (stride s, kernel k). On CPU PyTorch runs those well
below the speed of a plain convolution of the same FLOPs (the real-size vocoder's five upsamplers:
~190 ms of its ~2.7 s per 10.24 s clip). A transposed convolution is ``s`` ordinary convolutions
with ``ceil(k / s)`` taps each, one per output phase, interleaved (the polyphase form):
:class:`PolyphaseConvTranspose1d` does them as one ``conv1d`` with ``s x C_out`` channels and a
reshape. Same sums, so the same values up to float summation order.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PolyphaseConvTranspose1d(nn.Module):
    """``nn.ConvTranspose1d`` (groups 1, dilation 1, no output padding) as one strided-free ``conv1d``.

    For output sample ``t`` let ``u = t + padding = q s + r``; then
    ``y[t] = sum_j x[q - j] w[r + s j]``: phase ``r`` is a convolution of ``x`` with the taps
    ``w[r::s]`` reversed. The taps are zero-padded to ``J = ceil(k / s)`` per phase.

    Parameters
    ----------
    conv : nn.ConvTranspose1d
        The layer to replace; its weight ``[C_in, C_out, k]`` and bias are copied (frozen).

    Shapes
    ------
    ``[batch, C_in, L] -> [batch, C_out, (L - 1) s - 2 padding + k]``, as ``conv``.
    """

    def __init__(self, conv: nn.ConvTranspose1d):
        super().__init__()
        if conv.groups != 1 or conv.dilation[0] != 1 or conv.output_padding[0] != 0 or conv.padding_mode != "zeros":
            raise ValueError("PolyphaseConvTranspose1d needs groups=1, dilation=1, output_padding=0, zero padding")
        self.stride, self.kernel_size, self.padding = conv.stride[0], conv.kernel_size[0], conv.padding[0]
        s = self.stride
        self.taps = -(-self.kernel_size // s)
        w = conv.weight.detach()
        c_in, self.out_channels, k = w.shape
        w = F.pad(w, (0, self.taps * s - k))                   # k -> J s, extra taps zero
        # [C_in, C_out, J, s] (tap index j s + r) -> reversed taps -> [s, C_out, C_in, J]
        w = w.view(c_in, self.out_channels, self.taps, s).flip(2).permute(3, 1, 0, 2)
        self.weight = nn.Parameter(w.reshape(s * self.out_channels, c_in, self.taps).contiguous(), requires_grad=False)
        bias = None if conv.bias is None else conv.bias.detach().repeat(s)
        self.bias = None if bias is None else nn.Parameter(bias, requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, length = x.shape
        s = self.stride
        z = F.conv1d(x, self.weight, self.bias, padding=self.taps - 1)   # [b, s C_out, L + J - 1]: z[r C + c, q]
        q = z.shape[-1]
        y = z.view(b, s, self.out_channels, q).permute(0, 2, 3, 1).reshape(b, self.out_channels, q * s)
        out_len = (length - 1) * s - 2 * self.padding + self.kernel_size
        return y[..., self.padding: self.padding + out_len]

    def extra_repr(self) -> str:
        return (f"{self.weight.shape[1]}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, taps_per_phase={self.taps}")


def polyphase_upsamplers(module: nn.Module) -> int:
    """Replace every eligible ``nn.ConvTranspose1d`` inside ``module`` by :class:`PolyphaseConvTranspose1d`.

    In place; returns how many were replaced. Weight norm must be folded first (a parametrized
    layer is left alone).
    """
    count = 0
    for name, child in list(module.named_children()):
        if (isinstance(child, nn.ConvTranspose1d) and child.groups == 1 and child.dilation[0] == 1
                and child.output_padding[0] == 0 and child.padding_mode == "zeros"
                and not hasattr(child, "parametrizations") and not hasattr(child, "weight_g")):
            setattr(module, name, PolyphaseConvTranspose1d(child).to(child.weight.device))
            count += 1
        else:
            count += polyphase_upsamplers(child)
    return count
