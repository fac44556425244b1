"""A tiny MNIST in torchvision's real on-disk layout: <root>/MNIST/raw/<four idx files>."""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

REAL_MNIST = Path(__file__).resolve().parents[3] / "shared" / "data"


def _write_idx(path: Path, images: np.ndarray, labels: np.ndarray, prefix: str) -> None:
    n, rows, cols = images.shape
    (path / f"{prefix}-images-idx3-ubyte").write_bytes(
        struct.pack(">iiii", 2051, n, rows, cols) + images.astype(np.uint8).tobytes())
    (path / f"{prefix}-labels-idx1-ubyte").write_bytes(
        struct.pack(">ii", 2049, n) + labels.astype(np.uint8).tobytes())


def write_tiny_mnist(root: str | Path, n_train: int = 16, n_test: int = 8,
                     seed: int = 0) -> dict[str, np.ndarray]:
    """Write 28x28 digits-like noise with labels i % 10; returns the labels per split."""
    rng = np.random.default_rng(seed)
    raw = Path(root) / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    labels = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels[prefix] = np.arange(n) % 10
        _write_idx(raw, images, labels[prefix], prefix)
    return {"train": labels["train"], "test": labels["t10k"]}


def write_structured_mnist(root: str | Path, n_train: int = 80, n_test: int = 40) -> None:
    """A tiny MNIST a LeNet5 learns in a few steps: class k is a bright bar at rows 2k+2..2k+5
    over noise."""
    rng = np.random.default_rng(0)
    raw = Path(root) / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 96, (n, 28, 28)).astype(np.uint8)
        for image, k in zip(images, labels, strict=True):
            image[2 * k + 2:2 * k + 6, 4:24] = 255
        _write_idx(raw, images, labels, prefix)


def write_random_teacher(work: str | Path, seed: int = 0) -> Path:
    """An untrained LeNet5 at the DFAD scripts' default --ckpt path (a real state_dict file)."""
    import torch

    from network.lenet import LeNet5

    path = Path(work) / "checkpoint" / "teacher" / "mnist-lenet5.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    torch.save(LeNet5().state_dict(), path)
    return path
