"""Generator health (reporting/generator_health.py) and its inspect command
(scripts/inspect_generator.py): a collapsed generator reads 0, warns and logs every number, real
images read diversity 1, a resume keeps the fixed batch and the streaks, the inspect PNG has the
promised layout."""
import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

import DFAD_mnist
from dataloader import get_dataloader
from engine.dfad import distill
from network.gan import GeneratorA, GeneratorB
from network.lenet import LeNet5
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
from runtime.cli import run_main
from runtime.device import setup
from scripts import inspect_generator
from tests.helpers.mnist_fixtures import write_random_teacher, write_tiny_mnist

NZ = 8
CPU = torch.device("cpu")
TINY = ["--epoch_itrs", "1", "--batch_size", "4", "--test_batch_size", "4", "--num_workers", "0",
        "--data_root", "data", "--device", "cpu", "--no_visdom", "--seed", "3"]
STATE = "checkpoint/student/mnist-lenet5_half-state.pt"


class ConstantGenerator(nn.Module):
    """Every latent gives the same (trainable) image: a fully collapsed generator."""

    def __init__(self) -> None:
        super().__init__()
        self.image = nn.Parameter(torch.randn(1, 1, 32, 32))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.image.expand(len(z), -1, -1, -1)


def dfad_args(*flags: str):
    return DFAD_mnist.get_parser().parse_args([*TINY, *flags])


def test_collapsed_generator_reads_zero_warns_and_logs_every_key(mnist_run, capsys):
    args = dfad_args("--epochs", "3")
    device = setup(args)
    experiment = DFAD_mnist.build(args)
    experiment.generator = ConstantGenerator()
    distill(args, experiment, device)
    lines = [json.loads(line) for line in
             Path("log/DFAD-mnist.metrics.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines] == [1, 2, 3]
    for line in lines:
        assert {HISTOGRAM, *SCALARS} <= set(line)
        assert line["gen_class_entropy"] == 0.0 and line["gen_diversity"] == 0.0
        assert len(line[HISTOGRAM]) == 10 and sorted(line[HISTOGRAM])[-1] == 1.0
    out, err = capsys.readouterr()
    assert "gen entropy=0.000" in out and "diversity=0.000" in out
    assert [w for w in err.splitlines() if "generator collapse?" in w] == [
        "warning: generator collapse? gen_class_entropy below 0.5 for 3 epochs in a row "
        "(epoch 3: 0.0000; --warn_entropy sets the threshold)",
        "warning: generator collapse? gen_diversity below 0.1 for 3 epochs in a row "
        "(epoch 3: 0.0000; --warn_diversity sets the threshold)"]


def test_a_resume_keeps_the_fixed_latent_batch_and_the_streaks(mnist_run, capsys):
    DFAD_mnist.main(dfad_args("--epochs", "1"))
    state = torch.load(STATE, weights_only=True)
    assert torch.equal(state["health"]["latents"], fixed_latents(4, 100, 3))
    # A batch that the seed would not give: the resumed run must measure this one.
    state["health"]["latents"] = torch.full((4, 100, 1, 1), 0.5)
    state["health"]["streaks"]["gen_class_entropy"] = 2
    torch.save(state, STATE)
    capsys.readouterr()
    # Entropy is always below 1.01: the streak restored at 2 reaches 3 in the resumed epoch.
    DFAD_mnist.main(dfad_args("--epochs", "2", "--resume", "--warn_entropy", "1.01"))
    assert "gen_class_entropy below 1.01 for 3 epochs in a row (epoch 2:" in capsys.readouterr().err
    resumed = torch.load(STATE, weights_only=True)
    assert torch.equal(resumed["health"]["latents"], torch.full((4, 100, 1, 1), 0.5))
    assert resumed["health"]["streaks"]["gen_class_entropy"] == 3


def test_no_warning_before_three_epochs_or_above_the_threshold():
    health = GeneratorHealth(torch.zeros(2, NZ, 1, 1), torch.randn(2, 1, 4, 4),
                             warn_entropy=0.5, warn_diversity=0.1)
    for epoch, entropy in enumerate((0.1, 0.2, 0.9, 0.3, 0.3), start=1):
        assert health.watch(epoch, {"gen_class_entropy": entropy, "gen_diversity": 1.0}) == []
    assert len(health.watch(6, {"gen_class_entropy": 0.3, "gen_diversity": 1.0})) == 1
    assert health.watch(7, {"gen_class_entropy": 0.3, "gen_diversity": 1.0}) == []  # once


def test_real_test_images_as_samples_read_diversity_one(tmp_path):
    write_tiny_mnist(tmp_path / "data", n_train=1, n_test=64)
    args = DFAD_mnist.get_parser().parse_args(["--data_root", str(tmp_path / "data"),
                                               "--test_batch_size", "32", "--num_workers", "0"])
    images = real_images(get_dataloader(args, train=False)[1], 64)
    # The reference is the first 32 test images; the "generator" shows the 32 others.
    health = GeneratorHealth(latents=images[32:], real=images[:32])
    values = health.measure(LeNet5().eval(), LeNet5().eval(), nn.Identity().eval(), CPU)
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


def test_one_test_image_leaves_diversity_unmeasured():
    health = GeneratorHealth(fixed_latents(4, NZ, 0), torch.randn(1, 1, 32, 32))
    generator = GeneratorA(nz=NZ, ngf=4).eval()
    for _ in range(2):
        values = health.measure(LeNet5().eval(), LeNet5().eval(), generator, CPU)
        assert values["gen_diversity"] is None and values["gen_class_entropy"] >= 0.0
    assert "diversity=n/a" in summary(values)


def test_health_batch_flag():
    parser = DFAD_mnist.get_parser()
    assert parser.parse_args([]).health_batch is None  # = --batch_size
    assert parser.parse_args(["--health_batch", "0"]).health_batch == 0
    with pytest.raises(SystemExit):
        parser.parse_args(["--health_batch", "1"])


def inspect(*flags: str) -> Path:
    return inspect_generator.main(inspect_generator.get_parser().parse_args([*flags, "--device",
                                                                             "cpu"]))


def test_inspect_classification_png(tmp_path, monkeypatch):
    """Built by DFAD_mnist.build(args) from the script's default --ckpt and --data_root."""
    monkeypatch.chdir(tmp_path)
    write_random_teacher(tmp_path)
    write_tiny_mnist("data", n_train=0, n_test=4)
    torch.save(GeneratorA(nz=100, nc=1, img_size=32).state_dict(),
               "mnist-lenet5_half-generator.pt")
    png = inspect("mnist-lenet5_half-generator.pt", "--samples", "64", "--per_class", "5")
    assert png == Path("results/inspect-mnist-lenet5_half-generator.png")
    with Image.open(png) as img:
        # 10 rows of 32 px tiles: the class column (index, share), then 5 tiles.
        assert img.size == (inspect_generator.LABEL_W + 5 * 32, 10 * 32) and img.mode == "RGB"


def test_inspect_bad_files_are_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_random_teacher(tmp_path)
    write_tiny_mnist("data", n_train=0, n_test=4)
    torch.save(GeneratorB(nz=100, ngf=4, nc=3, img_size=32).state_dict(),
               "mnist-lenet5_half-generator.pt")
    torch.save(GeneratorA(nz=100, nc=1).state_dict(), "mystery-generator.pt")
    for path, flags, message in (
            ("mnist-lenet5_half-generator.pt", [], "does not match GeneratorA"),
            ("mystery-generator.pt", [], "cannot tell the experiment from the file name"),
            ("mnist-missing.pt", [], "checkpoint not found"),
            ("mnist-lenet5_half-generator.pt", ["--data_root", "nowhere"], "nowhere")):
        with pytest.raises(SystemExit) as exit_:
            run_main(inspect_generator.get_parser, inspect_generator.main,
                     [path, "--device", "cpu", *flags])
        lines = capsys.readouterr().err.strip().splitlines()
        assert exit_.value.code == 1 and len(lines) == 1, lines
        assert lines[0].startswith("error: ") and message in lines[0], lines
