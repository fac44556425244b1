"""Generators of DFAD (docs/original-release.md#generators): GeneratorA (DAFL, 32 px) and GeneratorB
(DCGAN-like, 128 px)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _like_conv_weight(x: torch.Tensor, conv: nn.Module) -> torch.Tensor:
    """`x` in the memory layout of `conv`'s weight.

    After `generator.to(memory_format=torch.channels_last)` the reshaped output of the linear layer
    is still NCHW, and every op up to the first convolution (BatchNorm, 2x upsampling) would run
    on NCHW, the convolution then converting its 4x larger input. Converting the small tensor
    first keeps the whole net channels_last (docs/benchmarks.md). Values are unchanged; an NCHW
    model is left as it is.
    """
    if conv.weight.is_contiguous(memory_format=torch.channels_last):
        return x.contiguous(memory_format=torch.channels_last)
    return x


def _phase_kernels(weight: torch.Tensor) -> torch.Tensor:
    """The four 2x2 kernels that a 3x3 kernel applies to a 2x nearest-upsampled map.

    Output pixel (2i+a, 2j+b) of the 3x3 convolution of the upsampled map reads only input pixels
    i-1+a..i+a (rows) and j-1+b..j+b (columns) of the small map: kernel rows 1 and 2 land on the
    same input row for a = 0, rows 0 and 1 for a = 1 (the same for columns). Returns
    (4 * out, in, 2, 2), phases in the order (a, b) = (0, 0), (0, 1), (1, 0), (1, 1).
    """
    def fold(w: torch.Tensor, dim: int) -> torch.Tensor:
        t0, t1, t2 = w.unbind(dim)
        return torch.stack([t0, t1 + t2, t0 + t1, t2], dim)  # (a=0: dy 0, 1), (a=1: dy 0, 1)

    out_c, in_c = weight.shape[:2]
    folded = fold(fold(weight, 2), 3).view(out_c, in_c, 2, 2, 2, 2)  # o, c, a, dy, b, dx
    return folded.permute(2, 4, 0, 1, 3, 5).reshape(4 * out_c, in_c, 2, 2)


class Upsample2xConv3x3(nn.Conv2d):
    """2x nearest upsampling, then a 3x3, stride 1, padding 1 convolution: DAFL's
    `F.interpolate(x, scale_factor=2)` followed by its `nn.Conv2d`, as one layer.

    It is that `nn.Conv2d` (same weights, same state_dict keys), computed one of two ways. The
    phase kernels of `_phase_kernels` run the convolution on the small map with 4x the output
    channels, then interleave the phases: 4 instead of 9 multiply-adds per output pixel and
    input channel, and no upsampled copy of `x`. Their result is the same sum with the weights
    of repeated pixels added first, so it differs from the plain ops by rounding only (in fp32
    on the MNIST sizes: max abs error 1e-5 against a float64 reference, the plain ops 1.6e-5,
    for outputs of magnitude ~10).
    `phase_kernels` None (the default) takes them for channels_last maps on the CPU, where they
    are measured faster; elsewhere (CUDA, NCHW) the plain ops run. False: always the plain ops
    (--original_numerics), True: always the phase kernels.
    """

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True,
                 phase_kernels: bool | None = None) -> None:
        super().__init__(in_channels, out_channels, 3, stride=1, padding=1, bias=bias)
        self.phase_kernels = phase_kernels

    def extra_repr(self) -> str:
        return f"upsample 2x, {super().extra_repr()}, phase_kernels={self.phase_kernels}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        decompose = self.phase_kernels
        if decompose is None:
            decompose = (x.device.type == "cpu"
                         and x.is_contiguous(memory_format=torch.channels_last))
        if not decompose:
            return super().forward(F.interpolate(x, scale_factor=2))
        n, _, h, w = x.shape
        kernels = _phase_kernels(self.weight)
        if x.is_contiguous(memory_format=torch.channels_last):
            kernels = kernels.contiguous(memory_format=torch.channels_last)
        bias = None if self.bias is None else self.bias.repeat(4)
        # y[:, (a, b), :, p, q] is phase (a, b) at output pixel (2(p-a)+a, 2(q-b)+b).
        y = F.conv2d(F.pad(x, (1, 1, 1, 1)), kernels, bias)  # n, 4 * out, h + 1, w + 1
        y = y.permute(0, 2, 3, 1).view(n, h + 1, w + 1, 2, 2, self.out_channels)
        out = x.new_empty(n, h, 2, w, 2, self.out_channels)
        for a in (0, 1):
            for b in (0, 1):
                out[:, :, a, :, b] = y[:, a:a + h, b:b + w, a, b]
        return out.view(n, 2 * h, 2 * w, self.out_channels).permute(0, 3, 1, 2)  # channels_last


class GeneratorA(nn.Module):
    """DAFL generator for 32x32 images (MNIST, CIFAR).

    It ends in Tanh followed by an affine-free BatchNorm, so samples are standardised per
    channel rather than bounded to [-1, 1] (docs/original-release.md#generator-output-ranges: kept
    on purpose).
    """

    def __init__(self, nz: int = 100, ngf: int = 64, nc: int = 1, img_size: int = 32) -> None:
        super().__init__()
        self.init_size = img_size // 4
        self.l1 = nn.Sequential(nn.Linear(nz, ngf * 2 * self.init_size**2))
        self.conv_blocks0 = nn.Sequential(nn.BatchNorm2d(ngf * 2))
        self.conv_blocks1 = nn.Sequential(
            Upsample2xConv3x3(ngf * 2, ngf * 2),
            nn.BatchNorm2d(ngf * 2),
            nn.LeakyReLU(0.2),
        )
        self.conv_blocks2 = nn.Sequential(
            Upsample2xConv3x3(ngf * 2, ngf),
            nn.BatchNorm2d(ngf),
            nn.LeakyReLU(0.2),
            nn.Conv2d(ngf, nc, 3, stride=1, padding=1),
            nn.Tanh(),
            nn.BatchNorm2d(nc, affine=False),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out = self.l1(z.flatten(1))
        img = out.view(out.shape[0], -1, self.init_size, self.init_size)
        img = self.conv_blocks0(_like_conv_weight(img, self.conv_blocks1[0]))
        img = self.conv_blocks1(img)  # upsample 2x, conv 3x3, BN, LeakyReLU
        return self.conv_blocks2(img)  # upsample 2x, conv 3x3, BN, LeakyReLU, conv 3x3, ...


class GeneratorB(nn.Module):
    """DCGAN-like generator for 128 px inputs (Caltech101, CamVid, NYUv2); output in [-1, 1]."""

    def __init__(
        self,
        nz: int = 256,
        ngf: int = 64,
        nc: int = 3,
        img_size: int | tuple[int, int] | list[int] = 64,
        slope: float = 0.2,
    ) -> None:
        super().__init__()
        height, width = (img_size, img_size) if isinstance(img_size, int) else img_size
        self.init_size = (height // 16, width // 16)
        self.project = nn.Sequential(
            nn.Flatten(),
            nn.Linear(nz, ngf * 8 * self.init_size[0] * self.init_size[1]),
        )
        layers: list[nn.Module] = [nn.BatchNorm2d(ngf * 8)]
        for c_in, c_out in ((ngf * 8, ngf * 4), (ngf * 4, ngf * 2), (ngf * 2, ngf), (ngf, ngf)):
            layers += [
                nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.LeakyReLU(slope),
            ]
        layers += [nn.Conv2d(ngf, nc, 3, stride=1, padding=1), nn.Tanh()]
        self.main = nn.Sequential(*layers)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                nn.init.normal_(m.weight, 0.0, 0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out = self.project(z)
        out = out.view(out.shape[0], -1, self.init_size[0], self.init_size[1])
        return self.main(_like_conv_weight(out, self.main[1]))
