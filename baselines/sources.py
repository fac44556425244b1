"""The KD baselines' inputs, standing where DFAD's generator stands: called with latents, they
return images. Neither has parameters: nothing trains them and no generator file is written."""
from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset


class GaussianImages(nn.Module):
    """RANDOM: the latents (B, C*H*W, 1, 1) themselves, N(0, 1) in the normalised input space,
    reshaped to images: fresh for every step."""

    def __init__(self, shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.shape = shape

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z.reshape(z.shape[0], *self.shape)


class RealImages(nn.Module):
    """KD-ORI: the training images in a fresh random order on every pass (a function of the seed
    and the pass), batches running on across passes; only len(z) and z's device are read.

    The position is the buffer `drawn`, so it travels with the state file and a resumed run reads
    the images an uninterrupted one would. Only training-mode calls advance it: the sample panel
    drawn in eval mode shows the next batch without consuming it.
    """

    def __init__(self, images: torch.Tensor, seed: int) -> None:
        super().__init__()
        if len(images) == 0:
            raise ValueError("RealImages needs at least one image")
        self.images = images  # not a buffer: the dataset must not go into checkpoints
        self.seed = seed
        self.register_buffer("drawn", torch.zeros((), dtype=torch.int64))
        self._order: tuple[int, torch.Tensor] | None = None
        # `drawn` on the host: reading a GPU counter every step would wait for the GPU. Read
        # once, and again after a state is loaded.
        self._position: int | None = None
        self.register_load_state_dict_post_hook(lambda m, _: setattr(m, "_position", None))

    @classmethod
    def from_dataset(cls, dataset: Dataset, seed: int) -> RealImages:
        """Every image of `dataset` through its own transform, stacked once."""
        return cls(torch.cat([x for x, _ in DataLoader(dataset, batch_size=1000)]), seed)

    def order(self, epoch: int) -> torch.Tensor:
        """The permutation of pass `epoch`, on the images' device."""
        if self._order is None or self._order[0] != epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._order = (epoch, torch.randperm(len(self.images), generator=g)
                           .to(self.images.device))
        return self._order[1]

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.images.device != z.device:  # once: then every batch is a gather on the device
            self.images, self._order = self.images.to(z.device), None
        if self._position is None:
            self._position = int(self.drawn)
        n, total, position = z.shape[0], len(self.images), self._position
        chunks = []
        while n > 0:
            epoch, offset = divmod(position, total)
            take = min(n, total - offset)
            chunks.append(self.order(epoch)[offset:offset + take])
            position, n = position + take, n - take
        if self.training:
            self._position = position
            self.drawn.fill_(position)
        return self.images[torch.cat(chunks)]
