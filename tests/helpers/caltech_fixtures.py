"""A tiny Caltech101 in the real on-disk layout: <root>/caltech101/101_ObjectCategories/<cat>/*.jpg.

Every image of a category has one brightness, so a test can tell from the pixels which label a
sample should carry. Sizes vary (some below 128 px, some not square) and some files are grayscale,
as in the real data.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from PIL import Image

# Per category: the number of images. BACKGROUND_Google sorts before the real categories and
# upper case before lower case, as in the real folder; both must not shift the labels.
CATEGORIES = {"BACKGROUND_Google": 3, "Faces_easy": 15, "Leopards": 5, "accordion": 4,
              "airplanes": 3}
REAL_CATEGORIES = sorted(c for c in CATEGORIES if c != "BACKGROUND_Google")
SIZES = [(150, 100), (90, 130), (128, 128), (200, 64), (60, 60)]


def brightness(category: str) -> int:
    """The pixel value of every image of a real category (BACKGROUND_Google gets 250)."""
    if category == "BACKGROUND_Google":
        return 250
    return 30 + 50 * REAL_CATEGORIES.index(category)


def write_tiny_caltech(root: str | Path, counts: Mapping[str, int] = CATEGORIES,
                       sizes: Sequence[tuple[int, int]] = SIZES) -> Path:
    """Write `<root>/caltech101/101_ObjectCategories`; returns that folder. `counts` (images per
    category, the keys of CATEGORIES) and `sizes` (W x H, cycled) scale it up for benchmarks."""
    originals = Path(root) / "caltech101" / "101_ObjectCategories"
    for category, count in counts.items():
        folder = originals / category
        folder.mkdir(parents=True, exist_ok=True)
        value = brightness(category)
        for i in range(count):
            size = sizes[i % len(sizes)]
            if i % 3 == 1:
                image = Image.new("L", size, value)
            else:
                image = Image.new("RGB", size, (value, value, value))
            image.save(folder / f"image_{i + 1:04d}.jpg", quality=95)
    return originals
