"""Generator health (reporting/generator_health.py) and its inspect command
(scripts/inspect_generator.py): a collapsed generator reads 0 and warns, real images read
diversity 1, the numbers reach the metrics file, resume keeps the fixed batch, and the inspect PNG
has the promised layout."""
import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

import DFAD_mnist
import train_teacher
from baselines.sources import GaussianImages
from dataloader import get_dataloader
from engine.dfad import Recipe, distill, generator_loss_mae
from engine.evaluation import evaluate_classification
from network.gan import GeneratorA, GeneratorB
from network.lenet import LeNet5
from network.segmentation import deeplabv3_resnet50
from reporting.generator_health import (
    HISTOGRAM,
    SCALARS,
    GeneratorHealth,
    class_statistics,
    fixed_latents,
    mean_pairwise_distance,
    real_images,
    summary,
)
from reporting.run_logger import RunLogger
from runtime.cli import run_main
from engine.evaluation import eval_mode
from runtime.run_state import load_state
from scripts import inspect_generator
from tests.helpers.mnist_fixtures import REAL_MNIST, write_random_teacher, write_tiny_mnist
from tests.helpers.script_args import dfad_args, parse
from utils.visualizer import VisdomPlotter

REPO = Path(__file__).resolve().parents[1]
NZ = 8
KEYS = {HISTOGRAM, *SCALARS}


class ConstantGenerator(nn.Module):
    """Every latent gives the same (trainable) image: a fully collapsed generator."""

    def __init__(self) -> None:
        super().__init__()
        self.image = nn.Parameter(torch.randn(1, 1, 32, 32))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.image.expand(len(z), -1, -1, -1)


class ReplayGenerator(nn.Module):
    """Returns real test images, one per latent: a generator as diverse as the data."""

    def __init__(self, images: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("images", images)
        self.scale = nn.Parameter(torch.ones(()))  # something for an optimizer to hold

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.images[:len(z)] * self.scale


def tiny_classifier(width: int = 4) -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(4 * width, 10))


def mnist_loader(root: Path, batch_size: int = 8) -> torch.utils.data.DataLoader:
    args = parse(train_teacher.get_parser(), data_root=root, test_batch_size=batch_size,
                 num_workers=0)
    return get_dataloader(args, train=False)[1]


def run_args(**overrides) -> argparse.Namespace:
    values = dict(epoch_itrs=1, batch_size=8, nz=NZ, log_interval=1, lr_S=0.05, lr_G=1e-3,
                  weight_decay=1e-4, epochs=3, seed=3)
    values.update(overrides)
    return dfad_args(**values)


RECIPE = Recipe(name="health", student_ckpt="checkpoint/student/health-s.pt",
                generator_loss=generator_loss_mae, evaluate=evaluate_classification,
                metric="acc")


@pytest.fixture
def loader(tmp_path) -> torch.utils.data.DataLoader:
    write_tiny_mnist(tmp_path / "data", n_train=1, n_test=32)
    return mnist_loader(tmp_path / "data")


def test_collapsed_generator_reads_zero_warns_and_logs_every_key(loader, tmp_path, monkeypatch,
                                                                  capsys):
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    logger = RunLogger("DFAD-health", VisdomPlotter(enabled=False))
    distill(run_args(), tiny_classifier(8).eval().requires_grad_(False), tiny_classifier(),
            ConstantGenerator(), loader, RECIPE, torch.device("cpu"), logger)
    lines = [json.loads(line) for line in Path("log/DFAD-health.metrics.jsonl").read_text()
             .splitlines()]
    assert [line["epoch"] for line in lines] == [1, 2, 3]
    for line in lines:
        assert KEYS <= set(line)
        assert line["gen_class_entropy"] == 0.0 and line["gen_diversity"] == 0.0
        assert sorted(line[HISTOGRAM])[-1] == 1.0 and sum(line[HISTOGRAM]) == 1.0
        assert len(line[HISTOGRAM]) == 10
    out, err = capsys.readouterr()
    assert "gen entropy=0.000" in out and "diversity=0.000" in out
    warnings = [w for w in err.splitlines() if "generator collapse?" in w]
    assert warnings == [
        "warning: generator collapse? gen_class_entropy below 0.5 for 3 epochs in a row "
        "(epoch 3: 0.0000; --warn_entropy sets the threshold)",
        "warning: generator collapse? gen_diversity below 0.1 for 3 epochs in a row "
        "(epoch 3: 0.0000; --warn_diversity sets the threshold)"]


def test_an_untrained_input_source_has_no_health(loader, tmp_path, monkeypatch):
    """The KD baselines' fixed sources stand where the generator stands: nothing to watch."""
    monkeypatch.chdir(tmp_path)
    recipe = Recipe(name="kd", student_ckpt="checkpoint/student/kd-s.pt", generator_loss=None,
                    evaluate=evaluate_classification, metric="acc")
    logger = RunLogger("KD-health", VisdomPlotter(enabled=False))
    distill(run_args(epochs=1, nz=32 * 32), LeNet5().eval().requires_grad_(False),
            tiny_classifier(), GaussianImages((1, 32, 32)), loader, recipe, torch.device("cpu"),
            logger)
    line = json.loads(Path("log/KD-health.metrics.jsonl").read_text())
    assert "acc" in line and not KEYS & set(line)
    assert "health" not in torch.load("checkpoint/student/kd-s-state.pt", weights_only=True)


def test_no_warning_before_three_epochs_or_above_the_threshold():
    health = GeneratorHealth(torch.zeros(2, NZ, 1, 1), torch.randn(2, 1, 4, 4),
                             warn_entropy=0.5, warn_diversity=0.1)
    for epoch, entropy in enumerate((0.1, 0.2, 0.9, 0.3, 0.3), start=1):
        assert health.watch(epoch, {"gen_class_entropy": entropy, "gen_diversity": 1.0}) == []
    assert len(health.watch(6, {"gen_class_entropy": 0.3, "gen_diversity": 1.0})) == 1
    assert health.watch(7, {"gen_class_entropy": 0.3, "gen_diversity": 1.0}) == []  # once


@pytest.mark.parametrize("source", ["tiny", "real"])
def test_real_test_images_as_samples_read_diversity_one(source, tmp_path):
    if source == "real":
        if not (REAL_MNIST / "MNIST" / "raw").is_dir():
            pytest.skip(f"real MNIST not found at {REAL_MNIST}")
        test_loader, n = mnist_loader(REAL_MNIST, batch_size=256), 256
    else:
        write_tiny_mnist(tmp_path / "data", n_train=1, n_test=64)
        test_loader, n = mnist_loader(tmp_path / "data"), 32
    images = real_images(test_loader, 2 * n)
    # The reference is the first n test images; the "generator" shows n others.
    health = GeneratorHealth(fixed_latents(n, NZ, 0), images[:n])
    generator = ReplayGenerator(images[n:2 * n])
    with eval_mode(generator):
        values = health.measure(LeNet5().eval(), LeNet5().eval(), generator,
                                torch.device("cpu"))
    assert values["gen_diversity"] == pytest.approx(1.0, abs=0.05)
    assert 0.0 <= values["gen_class_entropy"] <= 1.0 and 0.0 <= values["gen_agreement"] <= 1.0


def test_segmentation_counts_pixels():
    teacher = torch.zeros(2, 3, 2, 2)  # 8 pixels: class 0 on five, class 2 on three
    teacher[:, 0] = 1.0
    teacher[0, 2, 0, :] = 5.0
    teacher[1, 2, 1, 1] = 5.0
    student = teacher.clone()
    student[1, 1, 0, 0] = 9.0  # one pixel where the student disagrees
    stats = class_statistics(teacher, student)
    assert stats[HISTOGRAM] == pytest.approx([5 / 8, 0.0, 3 / 8])
    assert stats["gen_agreement"] == pytest.approx(7 / 8)
    p = torch.tensor([5 / 8, 3 / 8])
    assert stats["gen_class_entropy"] == pytest.approx(
        (-(p * p.log()).sum() / torch.log(torch.tensor(3.0))).item())


def test_pairwise_distance_is_exact_for_identical_and_known_pairs():
    assert mean_pairwise_distance(torch.ones(5, 3, 8, 8) * 0.37) == 0.0
    two = torch.stack([torch.zeros(4), torch.tensor([3.0, 4.0, 0.0, 0.0])])
    assert mean_pairwise_distance(two) == pytest.approx(5.0)


def test_one_test_image_leaves_diversity_unmeasured_with_one_warning(capsys):
    health = GeneratorHealth(fixed_latents(4, NZ, 0), torch.randn(1, 1, 32, 32))
    generator = GeneratorA(nz=NZ, ngf=4).eval()
    for _ in range(2):
        values = health.measure(LeNet5().eval(), LeNet5().eval(), generator, torch.device("cpu"))
        assert values["gen_diversity"] is None and values["gen_class_entropy"] >= 0.0
    assert capsys.readouterr().err.splitlines() == [
        "warning: the test set has fewer than 2 images: gen_diversity is not measured"]
    assert "diversity=n/a" in summary(values)


def test_measure_refuses_train_mode():
    health = GeneratorHealth(torch.zeros(2, NZ, 1, 1), torch.randn(2, 1, 32, 32))
    with pytest.raises(RuntimeError, match="eval mode"):
        health.measure(LeNet5().eval(), LeNet5().train(), GeneratorA(nz=NZ, ngf=4).eval(),
                       torch.device("cpu"))


def test_resume_keeps_the_fixed_latent_batch(loader, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    nets = (LeNet5().eval().requires_grad_(False), tiny_classifier(),
            GeneratorA(nz=NZ, ngf=4, nc=1))
    distill(run_args(epochs=1), *nets, loader, RECIPE, torch.device("cpu"))
    path = "checkpoint/student/health-s-state.pt"
    state = load_state(path, run_args())
    assert torch.equal(state["health"]["latents"], fixed_latents(8, NZ, 3))
    # A batch that the seed would not give: the resumed run must measure this one.
    state["health"]["latents"] = torch.full((8, NZ, 1, 1), 0.5)
    state["health"]["streaks"]["gen_class_entropy"] = 2
    torch.save(state, path)
    capsys.readouterr()
    # Entropy is always below 1.01: the streak restored at 2 reaches 3 in the resumed epoch.
    distill(run_args(epochs=2, resume="", warn_entropy=1.01), *nets, loader, RECIPE,
            torch.device("cpu"))
    assert "gen_class_entropy below 1.01 for 3 epochs in a row (epoch 2:" in capsys.readouterr().err
    resumed = load_state(path, run_args())
    assert torch.equal(resumed["health"]["latents"], torch.full((8, NZ, 1, 1), 0.5))
    assert resumed["epochs_done"] == 2 and resumed["health"]["streaks"]["gen_class_entropy"] == 3
    # A state file from before the diagnostics: the batch is drawn again from the seed.
    del resumed["health"]
    torch.save(resumed, path)
    distill(run_args(epochs=3, resume=""), *nets, loader, RECIPE, torch.device("cpu"))
    assert torch.equal(load_state(path, run_args())["health"]["latents"], fixed_latents(8, NZ, 3))


def test_health_batch_flag():
    parser = DFAD_mnist.get_parser()
    assert parser.parse_args([]).health_batch is None  # = --batch_size
    assert parser.parse_args(["--health_batch", "0"]).health_batch == 0
    with pytest.raises(SystemExit):
        parser.parse_args(["--health_batch", "1"])


def inspect(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "scripts.inspect_generator", *args, "--device",
                           "cpu"], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_inspect_classification_png(tmp_path):
    write_random_teacher(tmp_path)
    generator = tmp_path / "checkpoint/student/mnist-lenet5_half-generator.pt"
    generator.parent.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(GeneratorA(nz=100, nc=1, img_size=32).state_dict(), generator)
    result = inspect(str(generator.relative_to(tmp_path)), "--samples", "64", "--per_class", "5",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    png = tmp_path / "results/inspect-mnist-lenet5_half-generator.png"
    assert str(png.relative_to(tmp_path)) in result.stdout
    with Image.open(png) as img:
        # 10 rows of 32 px tiles; label column, 5 tiles, histogram column.
        width = inspect_generator.LABEL_W + 5 * 32 + inspect_generator.BAR_W
        assert img.size == (width, 10 * 32) and img.mode == "RGB"


def test_inspect_segmentation_png(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    torch.save(deeplabv3_resnet50(11).state_dict(), tmp_path / "teacher.pt")
    torch.save(GeneratorB(nz=256, nc=3, img_size=128).state_dict(),
               tmp_path / "camvid-deeplabv3_mobilenet-generator.pt")
    args = inspect_generator.get_parser().parse_args([
        "camvid-deeplabv3_mobilenet-generator.pt", "--ckpt", "teacher.pt", "--samples", "3",
        "--device", "cpu", "--out", "seg.png"])
    inspect_generator.main(args)
    with Image.open(tmp_path / "seg.png") as img:
        # 3 image / prediction pairs of 128 px, then the 11-class legend.
        assert img.size == (2 * 128 + inspect_generator.LEGEND_W, 3 * 128)


def test_inspect_bad_files_are_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_random_teacher(tmp_path)
    torch.save(GeneratorB(nz=100, ngf=4, nc=3, img_size=32).state_dict(),
               "mnist-lenet5_half-generator.pt")
    torch.save(GeneratorA(nz=100, nc=1).state_dict(), "mystery-generator.pt")
    for path, message in (("mnist-lenet5_half-generator.pt", "does not match GeneratorA"),
                          ("mystery-generator.pt", "cannot tell the experiment from the file name"),
                          ("mnist-missing.pt", "checkpoint not found")):
        with pytest.raises(SystemExit) as exit_:
            run_main(inspect_generator.get_parser, inspect_generator.main,
                     [path, "--device", "cpu"])
        assert exit_.value.code == 1
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
