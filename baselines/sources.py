"""Fixed input sources that stand where DFAD's generator stands, for the KD baselines.

The DFAD loop draws latents and calls the "generator" in every student step; a source ignores
what it is not trained by and returns the KD baseline's inputs instead. Neither has parameters,
so the loop builds no generator optimizer and takes no generator step.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset


class GaussianImages(nn.Module):
    """RANDOM: the latent itself, N(0, 1) in the normalised input space, reshaped to images.

    The loop draws z of shape (B, C*H*W, 1, 1) fresh for every step (set --nz to C*H*W).
    """

    def __init__(self, shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.shape = shape

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z.reshape(z.shape[0], *self.shape)


class RealImages(nn.Module):
    """KD-ORI: the training images, in a fresh random order on every pass, held in the memory of
    the device that reads them.

    The position in the stream is a buffer, so it travels with the state file and a resumed run
    reads the same images an uninterrupted one would. Batches continue across the end of a pass
    into the next pass's order. Only training-mode calls advance the stream: the sample panels
    drawn in eval mode show the next batch without consuming it.
    """

    def __init__(self, images: torch.Tensor, seed: int) -> None:
        super().__init__()
        if len(images) == 0:
            raise ValueError("RealImages needs at least one image")
        self.images = images  # not a buffer: the dataset must not go into checkpoints
        self.seed = seed
        self.register_buffer("drawn", torch.zeros((), dtype=torch.int64))
        self._order: tuple[int, torch.Tensor] | None = None
        # A host copy of `drawn`: reading a device counter every call would wait for the GPU
        # five times per iteration. Read once, and again after a state is loaded.
        self._position: int | None = None
        self.register_load_state_dict_post_hook(lambda module, keys: module._forget_position())

    def _forget_position(self) -> None:
        self._position = None

    @classmethod
    def from_dataset(cls, dataset: Dataset, seed: int, batch_size: int = 1000) -> RealImages:
        """Every image of `dataset` through its own transform, stacked once."""
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
        return cls(torch.cat([images for images, _ in loader]), seed)

    def order(self, epoch: int) -> torch.Tensor:
        """The permutation of pass `epoch`: a function of (seed, pass) only, on the images'
        device."""
        if self._order is None or self._order[0] != epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._order = (epoch, torch.randperm(len(self.images), generator=g)
                           .to(self.images.device))
        return self._order[1]

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.images.device != z.device:  # once: then every batch is a gather on the device
            self.images = self.images.to(z.device)
            self._order = None
        n, total = z.shape[0], len(self.images)
        if self._position is None:
            self._position = int(self.drawn)
        position = self._position
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
