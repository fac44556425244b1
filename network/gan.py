"""Generators of DFAD (docs/original-release.md#generators): GeneratorA (DAFL, 32 px) and GeneratorB
(DCGAN-like, 128 px)."""
from __future__ import annotations

import torch
from torch import nn


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
            nn.Conv2d(ngf * 2, ngf * 2, 3, stride=1, padding=1),
            nn.BatchNorm2d(ngf * 2),
            nn.LeakyReLU(0.2),
        )
        self.conv_blocks2 = nn.Sequential(
            nn.Conv2d(ngf * 2, ngf, 3, stride=1, padding=1),
            nn.BatchNorm2d(ngf),
            nn.LeakyReLU(0.2),
            nn.Conv2d(ngf, nc, 3, stride=1, padding=1),
            nn.Tanh(),
            nn.BatchNorm2d(nc, affine=False),
        )
        self.upsample = nn.Upsample(scale_factor=2)  # no weights: the keys are the original's

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out = self.l1(z.flatten(1))
        img = out.view(out.shape[0], -1, self.init_size, self.init_size)
        img = self.conv_blocks1(self.upsample(self.conv_blocks0(img)))
        return self.conv_blocks2(self.upsample(img))


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
        return self.main(out)
