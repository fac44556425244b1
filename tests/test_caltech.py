"""Caltech101: the split-aware dataset, the split tool, the 128 px networks, and both scripts end
to end on a tiny tree in the real layout."""
import argparse
import importlib.util
import os
import random
import subprocess
import sys
from pathlib import Path
from urllib.error import URLError

import pytest
import torch
from torchvision import models

import train_teacher
from dataloader import check_num_classes, get_dataloader
from network.gan import GeneratorB
from network.torchvision_resnet import resnet18, resnet34
from runtime.checkpoint import load_teacher
from runtime.errors import UserError
from tables.csv_rows import read_csv_runs
from tests.helpers.caltech_fixtures import (
    CATEGORIES,
    REAL_CATEGORIES,
    brightness,
    write_tiny_caltech,
)
from tests.helpers.script_args import parse

REPO = Path(__file__).resolve().parents[1]
FAST = ["--device", "cpu", "--num_workers", "0"]


@pytest.fixture(autouse=True)
def one_thread():
    """In-process too: one intra-op thread keeps these tests fast on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def load_split_tool():
    spec = importlib.util.spec_from_file_location("split_caltech101",
                                                  REPO / "data" / "split_caltech101.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


split_tool = load_split_tool()


def expected_test_count(n: int) -> int:
    return max(int(0.2 * n), 2)


def split_files(root: Path) -> list[str]:
    split = root / "caltech101" / "101_ObjectCategories_split"
    return sorted(str(p.relative_to(split)) for p in split.rglob("*") if p.is_file())


def make_split(root: Path) -> None:
    write_tiny_caltech(root)
    split_tool.main(["--root", str(root)])


def loader_args(root: Path) -> argparse.Namespace:
    return parse(train_teacher.get_parser(), dataset="caltech101", data_root=root, batch_size=4,
                 test_batch_size=4, num_workers=0)


def run(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    # One intra-op thread: on a shared 2-core machine two busy-waiting OpenMP threads made one
    # tiny DFAD iteration 15x slower (75 s instead of 5 s); the results do not depend on it.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(REPO / script), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


# ----------------------------------------------------------------------------- the split tool

def test_split_is_20_percent_min_2_without_background(tmp_path, capsys):
    make_split(tmp_path)
    assert "NOT the authors' split" in capsys.readouterr().err
    split = tmp_path / "caltech101" / "101_ObjectCategories_split"
    for part in ("train", "test"):
        assert sorted(os.listdir(split / part)) == REAL_CATEGORIES  # BACKGROUND_Google left out
    for category in REAL_CATEGORIES:
        n = CATEGORIES[category]
        test = set(os.listdir(split / "test" / category))
        train = set(os.listdir(split / "train" / category))
        assert len(test) == expected_test_count(n) and len(train) == n - len(test)
        assert not test & train
        assert test | train == set(os.listdir(tmp_path / "caltech101/101_ObjectCategories"
                                              / category))


def test_split_is_the_same_twice_and_on_any_listing_order(tmp_path, monkeypatch):
    first, second = tmp_path / "a", tmp_path / "b"
    make_split(first)
    once = split_files(first)
    split_tool.main(["--root", str(first), "--overwrite"])
    assert split_files(first) == once

    real_listdir = os.listdir
    shuffler = random.Random(123)

    def shuffled_listdir(path="."):
        names = real_listdir(path)
        shuffler.shuffle(names)
        return names

    write_tiny_caltech(second)
    monkeypatch.setattr(os, "listdir", shuffled_listdir)
    split_tool.main(["--root", str(second)])
    monkeypatch.undo()
    assert split_files(second) == once
    assert split_files(first) != []


def test_split_tool_never_overwrites_an_existing_split_by_default(tmp_path):
    make_split(tmp_path)
    with pytest.raises(SystemExit, match="already exists"):
        split_tool.main(["--root", str(tmp_path)])


def test_another_seed_gives_another_split(tmp_path):
    originals = write_tiny_caltech(tmp_path)
    assert split_tool.plan_split(originals, seed=1) != split_tool.plan_split(originals, seed=2)


# ----------------------------------------------------------------------------- the dataset

def test_loaders_give_labels_in_sorted_category_order_at_128px(tmp_path):
    make_split(tmp_path)
    train_loader, test_loader = get_dataloader(loader_args(tmp_path))
    dataset = test_loader.dataset
    assert dataset.classes == REAL_CATEGORIES
    assert len(dataset) == sum(expected_test_count(CATEGORIES[c]) for c in REAL_CATEGORIES)
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
    assert images.shape == (4, 3, 128, 128) and images.dtype == torch.float32
    assert images.min() >= -1 and images.max() <= 1
    assert targets.dtype == torch.int64 and int(targets.max()) < len(REAL_CATEGORIES)
    assert [t.tolist() for _, t in test_loader] == [t.tolist() for _, t in test_loader]


def test_missing_originals_names_the_authors_split(tmp_path):
    with pytest.raises(UserError) as err:
        get_dataloader(loader_args(tmp_path), train=False)
    message = str(err.value)
    assert "\n" not in message
    assert "101_ObjectCategories is missing" in message
    assert "101_ObjectCategories_split.zip" in message and "1695" in message


def test_missing_split_says_where_to_get_one(tmp_path):
    write_tiny_caltech(tmp_path)
    with pytest.raises(UserError) as err:
        get_dataloader(loader_args(tmp_path), train=False)
    message = str(err.value)
    assert "\n" not in message
    assert f"{tmp_path}/caltech101/101_ObjectCategories_split/test is missing" in message
    assert "101_ObjectCategories_split.zip" in message and "1695" in message
    assert "data/split_caltech101.py" in message


def test_split_of_another_dataset_is_rejected(tmp_path):
    make_split(tmp_path)
    (tmp_path / "caltech101/101_ObjectCategories/zebra").mkdir()
    with pytest.raises(UserError, match="no folder 'zebra'"):
        get_dataloader(loader_args(tmp_path), train=False)


def test_more_classes_than_outputs_is_one_clear_error(tmp_path):
    make_split(tmp_path)
    _, test_loader = get_dataloader(loader_args(tmp_path), train=False)
    check_num_classes(test_loader, len(REAL_CATEGORIES))
    with pytest.raises(UserError, match="4 classes but the model has only 3 outputs"):
        check_num_classes(test_loader, 3)


# ----------------------------------------------------------------------------- networks

def test_released_torchvision_checkpoint_loads_strictly_with_the_same_outputs(tmp_path):
    reference = models.resnet34(weights=None, num_classes=101).eval()
    torch.save(reference.state_dict(), tmp_path / "caltech101-resnet34.pt")
    teacher = load_teacher(resnet34(101), tmp_path / "caltech101-resnet34.pt",
                           torch.device("cpu"))
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        assert torch.equal(teacher(x), reference(x))


def test_parameter_counts_match_the_spec():
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(resnet34(101)) == 21_336_485
    assert count(resnet18(101)) == 11_228_325
    assert count(GeneratorB(nz=256, nc=3, img_size=128)) == 11_243_203


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
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(UserError) as err:
        resnet34(101, pretrained=True)
    message = str(err.value)
    assert "\n" not in message
    assert str(Path(torch.hub.get_dir()) / "checkpoints" / "resnet34-b627a593.pth") in message


def test_resnet34_is_only_the_caltech_teacher():
    with pytest.raises(UserError, match="use --dataset caltech101"):
        train_teacher.build_model("resnet34", "cifar10", 10)
    with pytest.raises(UserError, match="--pretrained exists for --model resnet34 only"):
        train_teacher.build_model("lenet5", "mnist", 10, pretrained=True)


# ----------------------------------------------------------------------------- end to end

@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A tiny split Caltech101 and a ResNet-34 teacher trained on it for one epoch."""
    work = tmp_path_factory.mktemp("caltech_run")
    write_tiny_caltech(work / "data")
    split = subprocess.run([sys.executable, str(REPO / "data/split_caltech101.py"),
                            "--root", "data"], cwd=work, capture_output=True, text=True)
    assert split.returncode == 0, split.stderr
    assert "NOT the authors' split" in split.stderr
    result = run("train_teacher.py", "--dataset", "caltech101", "--model", "resnet34",
                 "--num_classes", "101", "--epochs", "1", "--batch_size", "4",
                 "--test_batch_size", "4", "--data_root", "data", *FAST, cwd=work)
    assert result.returncode == 0, result.stderr
    return work


def test_teacher_checkpoint_loads_into_torchvision_resnet34(workdir):
    state = torch.load(workdir / "checkpoint/teacher/caltech101-resnet34.pt", weights_only=True)
    models.resnet34(weights=None, num_classes=101).load_state_dict(state, strict=True)
    assert (workdir / "log/teacher-caltech101-resnet34.config.json").is_file()


def test_dfad_caltech101_writes_the_original_files(workdir):
    # A student whose head always says class 0, with a learning rate too small to change that:
    # the first evaluation then beats 0 and the best student and generator are certainly saved.
    start = resnet18(101)
    torch.nn.init.zeros_(start.fc.weight)
    with torch.no_grad():
        start.fc.bias.zero_()
        start.fc.bias[0] = 10.0
    torch.save(start.state_dict(), workdir / "start.pt")
    result = run("DFAD_caltech101.py", "--epochs", "1", "--epoch_itrs", "1", "--batch_size", "2",
                 "--test_batch_size", "4", "--lr_S", "1e-12", "--stu_ckpt", "start.pt",
                 "--data_root", "data", *FAST, cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert "Best acc=" in result.stdout
    rows = [run.values for run in read_csv_runs(workdir / "log/DFAD-caltech101.csv")]
    n_class0 = expected_test_count(CATEGORIES[REAL_CATEGORIES[0]])
    n_test = sum(expected_test_count(CATEGORIES[c]) for c in REAL_CATEGORIES)
    assert float(rows[-1][0]) == pytest.approx(n_class0 / n_test)
    student = torch.load(workdir / "checkpoint/student/caltech101-resnet18.pt", weights_only=True)
    models.resnet18(weights=None, num_classes=101).load_state_dict(student, strict=True)
    generator = torch.load(workdir / "checkpoint/student/caltech101-resnet18-generator.pt",
                           weights_only=True)
    GeneratorB(nz=256, nc=3, img_size=128).load_state_dict(generator, strict=True)
    assert (workdir / "log/DFAD-caltech101.config.json").is_file()


def assert_one_line_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0]


def test_dfad_without_the_split_is_one_clear_line(workdir, tmp_path):
    write_tiny_caltech(tmp_path / "nosplit")
    result = run("DFAD_caltech101.py", "--data_root", str(tmp_path / "nosplit"),
                 "--ckpt", str(workdir / "checkpoint/teacher/caltech101-resnet34.pt"), *FAST,
                 cwd=tmp_path)
    assert_one_line_error(result, "101_ObjectCategories_split/test is missing",
                          "101_ObjectCategories_split.zip", "split_caltech101.py")

