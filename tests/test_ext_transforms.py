"""Joint image/label transforms used by the CamVid and NYUv2 loaders
(docs/original-release.md#datasets-and-on-disk-layouts, #metrics-transforms-and-plotting)."""
from __future__ import annotations

import random

import numpy as np
import torch
from PIL import Image

from utils.ext_transforms import (
    ExtNormalize,
    ExtRandomCrop,
    ExtRandomHorizontalFlip,
    ExtResize,
    ExtToTensor,
)


def noise_pair(h: int, w: int, seed: int = 0) -> tuple[Image.Image, Image.Image]:
    """Random RGB image whose label is its red channel, so any misalignment shows."""
    rgb = np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    return Image.fromarray(rgb), Image.fromarray(rgb[..., 0].copy())


def test_resize_uses_nearest_for_the_label_and_bilinear_for_the_image() -> None:
    stripes = np.zeros((360, 480), dtype=np.uint8)
    stripes[:, ::2] = 255
    stripes[::3, 1::2] = 7
    img, lbl = ExtResize(256)(Image.fromarray(stripes).convert("RGB"), Image.fromarray(stripes))
    assert set(np.unique(np.array(lbl))) <= {0, 7, 255}
    assert len(np.unique(np.array(img))) > 3  # blended values


def test_random_crop_size_and_alignment() -> None:
    random.seed(0)
    img, lbl = ExtRandomCrop(128, pad_if_needed=True)(*noise_pair(256, 341))
    assert img.size == lbl.size == (128, 128)
    np.testing.assert_array_equal(np.array(img)[..., 0], np.array(lbl))


def test_pad_if_needed_pads_all_four_sides_with_zero() -> None:
    img, lbl = noise_pair(126, 126)
    out_img, out_lbl = ExtRandomCrop(128, pad_if_needed=True)(img, lbl)
    # width short by 2: pad int((1 + 128 - 126) / 2) = 1 on every side, then 128x128, no crop
    assert out_lbl.size == (128, 128)
    padded = np.array(out_lbl)
    np.testing.assert_array_equal(padded[1:-1, 1:-1], np.array(lbl))
    for border in (padded[0], padded[-1], padded[:, 0], padded[:, -1]):
        assert not border.any()
    np.testing.assert_array_equal(np.array(out_img)[1:-1, 1:-1], np.array(img))


def test_horizontal_flip_applies_to_both() -> None:
    img, lbl = noise_pair(20, 30)
    f_img, f_lbl = ExtRandomHorizontalFlip(p=1.0)(img, lbl)
    np.testing.assert_array_equal(np.array(f_img), np.array(img)[:, ::-1])
    np.testing.assert_array_equal(np.array(f_lbl), np.array(lbl)[:, ::-1])
    k_img, k_lbl = ExtRandomHorizontalFlip(p=0.0)(img, lbl)
    assert k_img is img and k_lbl is lbl


def test_to_tensor_and_normalize() -> None:
    img = Image.fromarray(np.full((4, 5, 3), 255, dtype=np.uint8))
    lbl = Image.fromarray(np.array([[0, 11, 255, 3, 3]] * 4, dtype=np.uint8))
    t_img, t_lbl = ExtToTensor()(img, lbl)
    assert t_img.dtype == torch.float32 and t_img.shape == (3, 4, 5)
    assert t_lbl.dtype == torch.uint8 and t_lbl[0].tolist() == [0, 11, 255, 3, 3]
    n_img, n_lbl = ExtNormalize((0.5,), (0.5,))(t_img, t_lbl)
    assert torch.allclose(n_img, torch.ones_like(n_img))
    assert n_lbl is t_lbl
