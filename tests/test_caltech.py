"""Caltech101: the split tool, the split-aware dataset on a tiny tree in the real layout, and the
128 px torchvision networks (the scripts end to end: tests/test_dfad_scripts.py)."""
import importlib.util
import os
import random
from pathlib import Path
from urllib.error import URLError

import pytest
import torch
from torchvision import models

import train_teacher
from dataloader import check_num_classes, get_dataloader
from network.torchvision_resnet import resnet34
from runtime.errors import UserError
from runtime.files import load_teacher
from tests.helpers.caltech_fixtures import (
    CATEGORIES,
    REAL_CATEGORIES,
    brightness,
    write_tiny_caltech,
)

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("split_caltech101",
                                              REPO / "data" / "split_caltech101.py")
split_tool = importlib.util.module_from_spec(spec)
spec.loader.exec_module(split_tool)


def n_test_images(category: str) -> int:
    return max(int(0.2 * CATEGORIES[category]), 2)


def split_files(root: Path) -> list[str]:
    split = root / "caltech101" / "101_ObjectCategories_split"
    return sorted(str(p.relative_to(split)) for p in split.rglob("*") if p.is_file())


def make_split(root: Path) -> None:
    write_tiny_caltech(root)
    split_tool.main(["--root", str(root)])


def teacher_args(root: Path, *flags: str):
    return train_teacher.get_parser().parse_args([
        "--dataset", "caltech101", "--data_root", str(root), "--batch_size", "4",
        "--test_batch_size", "4", "--num_workers", "0", *flags])


def test_the_split_is_20_percent_min_2_without_background(tmp_path, capsys):
    make_split(tmp_path)
    assert "NOT the authors' split" in capsys.readouterr().err
    split = tmp_path / "caltech101" / "101_ObjectCategories_split"
    for part in ("train", "test"):
        assert sorted(os.listdir(split / part)) == REAL_CATEGORIES  # BACKGROUND_Google left out
    for category in REAL_CATEGORIES:
        test = set(os.listdir(split / "test" / category))
        train = set(os.listdir(split / "train" / category))
        assert len(test) == n_test_images(category) and not test & train
        assert test | train == set(os.listdir(tmp_path / "caltech101/101_ObjectCategories"
                                              / category))
    with pytest.raises(SystemExit, match="already exists"):  # never overwritten by default
        split_tool.main(["--root", str(tmp_path)])


def test_the_split_is_the_same_twice_and_on_any_listing_order(tmp_path, monkeypatch):
    first, second = tmp_path / "a", tmp_path / "b"
    make_split(first)
    once = split_files(first)
    split_tool.main(["--root", str(first), "--overwrite"])
    assert split_files(first) == once
    real_listdir, shuffler = os.listdir, random.Random(123)

    def shuffled_listdir(path="."):
        names = real_listdir(path)
        shuffler.shuffle(names)
        return names

    write_tiny_caltech(second)
    monkeypatch.setattr(os, "listdir", shuffled_listdir)
    split_tool.main(["--root", str(second)])
    monkeypatch.undo()
    assert split_files(second) == once
    originals = first / "caltech101" / "101_ObjectCategories"
    assert split_tool.plan_split(originals, seed=1) != split_tool.plan_split(originals, seed=2)


def test_the_loaders_give_labels_in_sorted_category_order_at_128px(tmp_path):
    make_split(tmp_path)
    train_loader, test_loader = get_dataloader(teacher_args(tmp_path))
    dataset = test_loader.dataset
    assert dataset.classes == REAL_CATEGORIES
    assert len(dataset) == sum(map(n_test_images, REAL_CATEGORIES))
    assert len(train_loader.dataset) + len(dataset) == sum(CATEGORIES[c] for c in REAL_CATEGORIES)
    names = [path.name for path, _ in dataset.samples]
    labels = [label for _, label in dataset.samples]
    assert labels == sorted(labels)  # category by category, no shuffle in the test loader
    for label in set(labels):
        in_class = [n for n, lab in zip(names, labels, strict=True) if lab == label]
        assert in_class == sorted(in_class)
    for image, label in dataset:  # the pixels say which category a file came from
        assert image.shape == (3, 128, 128)
        expected = brightness(REAL_CATEGORIES[label]) / 255 * 2 - 1
        assert abs(image.mean().item() - expected) < 0.03
        assert torch.allclose(image[0], image[1]) and torch.allclose(image[1], image[2])
    images, targets = next(iter(train_loader))
    assert images.shape == (4, 3, 128, 128) and images.min() >= -1 and images.max() <= 1
    assert targets.dtype == torch.int64 and int(targets.max()) < len(REAL_CATEGORIES)
    check_num_classes(test_loader, len(REAL_CATEGORIES))
    with pytest.raises(UserError, match="4 classes but the model has only 3 outputs"):
        check_num_classes(test_loader, 3)


def test_missing_originals_or_split_name_the_authors_split(tmp_path):
    messages = []
    for prepare in (lambda: None, lambda: write_tiny_caltech(tmp_path)):
        prepare()
        with pytest.raises(UserError) as err:
            get_dataloader(teacher_args(tmp_path), train=False)
        messages.append(str(err.value))
    no_originals, no_split = messages
    assert all("\n" not in m and "101_ObjectCategories_split.zip" in m and "1695" in m
               for m in messages)
    assert "101_ObjectCategories is missing" in no_originals
    assert f"{tmp_path}/caltech101/101_ObjectCategories_split/test is missing" in no_split
    assert "data/split_caltech101.py" in no_split


def test_a_split_of_another_dataset_is_rejected(tmp_path):
    make_split(tmp_path)
    (tmp_path / "caltech101/101_ObjectCategories/zebra").mkdir()
    with pytest.raises(UserError, match="no folder 'zebra'"):
        get_dataloader(teacher_args(tmp_path), train=False)


def test_a_released_torchvision_checkpoint_loads_strictly_with_the_same_outputs(tmp_path):
    reference = models.resnet34(weights=None, num_classes=101).eval()
    torch.save(reference.state_dict(), tmp_path / "caltech101-resnet34.pt")
    teacher = load_teacher(resnet34(101), tmp_path / "caltech101-resnet34.pt")
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        assert torch.equal(teacher(x), reference(x))


def test_pretrained_uses_imagenet_weights_with_a_new_head(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    imagenet = models.resnet34(weights=None)  # stands in for the real file: no download
    weights_file = Path(torch.hub.get_dir()) / "checkpoints" / "resnet34-b627a593.pth"
    weights_file.parent.mkdir(parents=True)
    torch.save(imagenet.state_dict(), weights_file)
    model = resnet34(101, pretrained=True)
    assert torch.equal(model.conv1.weight, imagenet.conv1.weight)
    assert torch.equal(model.layer4[1].bn2.running_var, imagenet.layer4[1].bn2.running_var)
    assert model.fc.weight.shape == (101, 512)


def test_pretrained_offline_says_where_to_put_the_weights(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise URLError("no network")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(UserError) as err:
        resnet34(101, pretrained=True)
    assert "\n" not in str(err.value)
    assert str(Path(torch.hub.get_dir()) / "checkpoints" / "resnet34-b627a593.pth") in str(
        err.value)


@pytest.mark.parametrize("flags, message", [
    (["--model", "resnet34", "--dataset", "cifar10"], "use --dataset caltech101"),
    (["--model", "lenet5", "--dataset", "mnist", "--pretrained"],
     "--pretrained exists for --model resnet34 only")])
def test_resnet34_is_the_caltech_teacher_alone(flags, message):
    with pytest.raises(UserError, match=message):
        train_teacher.build(train_teacher.get_parser().parse_args(flags))
