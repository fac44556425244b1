"""The Table 2 baselines: DAFL's losses and joint step, the KD input sources, KD-ORI's resume,
and scripts/run_table2_mnist.sh end to end on a tiny MNIST."""
import copy
import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from baselines.dafl import dafl_generator, dafl_losses, dafl_step
from baselines.sources import GaussianImages, RealImages
from network.gan import GeneratorA
from network.lenet import LeNet5, LeNet5Half
from runtime.precision import Precision
from tests.helpers.mnist_fixtures import write_random_teacher, write_tiny_mnist

REPO = Path(__file__).resolve().parents[1]
FAST = ["--device", "cpu", "--num_workers", "0", "--no_visdom"]


def test_dafl_losses_match_their_formulas():
    torch.manual_seed(0)
    t, s, feature = torch.randn(6, 10), torch.randn(6, 10), torch.randn(6, 120)
    losses = dafl_losses(t, feature, s)
    labels = t.argmax(dim=1)
    one_hot = -torch.log(torch.exp(t[range(6), labels]) / torch.exp(t).sum(1)).mean()
    p_t = torch.exp(t) / torch.exp(t).sum(1, keepdim=True)
    p_s = torch.exp(s) / torch.exp(s).sum(1, keepdim=True)
    mean_p = p_t.mean(0)
    entropy = (mean_p * torch.log(mean_p) / torch.log(torch.tensor(10.0))).sum()
    activation = -feature.abs().mean()
    kd = (p_t * (torch.log(p_t) - torch.log(p_s))).sum() / 6
    assert losses["one_hot"].item() == pytest.approx(one_hot.item(), rel=1e-5)
    assert losses["entropy"].item() == pytest.approx(entropy.item(), rel=1e-5)
    assert losses["activation"].item() == pytest.approx(activation.item(), rel=1e-6)
    assert losses["loss_S"].item() == pytest.approx(kd.item(), rel=1e-5)
    assert losses["loss_G"].item() == pytest.approx(
        (one_hot + 5 * entropy + 0.1 * activation).item(), rel=1e-5)


def test_dafl_entropy_term_is_lowest_for_balanced_classes():
    balanced = torch.eye(10) * 20  # each class predicted once, confidently
    collapsed = torch.zeros(10, 10)
    collapsed[:, 3] = 20
    feature = torch.zeros(10, 120)
    assert (dafl_losses(balanced, feature, balanced)["entropy"]
            < dafl_losses(collapsed, feature, collapsed)["entropy"])


def test_dafl_generator_has_eps_08_in_two_layers_and_generator_a_keys():
    generator = dafl_generator(nz=100)
    assert generator.conv_blocks1[1].eps == 0.8 and generator.conv_blocks2[1].eps == 0.8
    assert generator.conv_blocks0[0].eps == 1e-5 and generator.conv_blocks2[5].eps == 1e-5
    GeneratorA(nz=100).load_state_dict(generator.state_dict(), strict=True)


def test_dafl_joint_step_updates_generator_and_student_not_teacher():
    torch.manual_seed(0)
    teacher, student, generator = LeNet5().eval().requires_grad_(False), LeNet5Half(), \
        dafl_generator(nz=8)
    before = {name: copy.deepcopy(m.state_dict())
              for name, m in (("teacher", teacher), ("student", student),
                              ("generator", generator))}
    opt_S = torch.optim.Adam(student.parameters(), lr=2e-3)
    opt_G = torch.optim.Adam(generator.parameters(), lr=0.2)
    losses = dafl_step(teacher, student, generator, opt_S, opt_G, torch.randn(4, 8, 1, 1),
                       Precision(None, torch.device("cpu")))
    assert set(losses) >= {"loss_S", "loss_G"}
    for key, value in teacher.state_dict().items():
        assert torch.equal(value, before["teacher"][key])
    assert all(p.grad is None for p in teacher.parameters())
    for name, module in (("student", student), ("generator", generator)):
        changed = [k for k, v in module.state_dict().items()
                   if v.is_floating_point() and not torch.equal(v, before[name][k])]
        assert changed, f"the {name} was not updated"
    assert generator.l1[0].weight.grad is not None and student.fc2.weight.grad is not None


def test_gaussian_images_are_the_latents():
    z = torch.randn(3, 1024, 1, 1)
    assert torch.equal(GaussianImages((1, 32, 32))(z), z.view(3, 1, 32, 32))


def test_real_images_cover_each_pass_once_and_resume_from_the_buffer():
    images = torch.arange(10.0).view(10, 1, 1, 1)
    source = RealImages(images, seed=3)
    z = torch.zeros(4, 1)
    drawn = torch.cat([source(z) for _ in range(5)]).flatten()  # 20 = two passes
    assert sorted(drawn[:10].tolist()) == list(range(10))
    assert sorted(drawn[10:].tolist()) == list(range(10))
    assert not torch.equal(drawn[:10], drawn[10:])  # reshuffled every pass
    # A fresh source with the saved position continues the same stream.
    source.eval()
    peek = source(z)
    assert torch.equal(peek, source(z))  # eval mode does not consume
    twin = RealImages(images, seed=3)
    twin.load_state_dict(source.state_dict())
    source.train()
    assert torch.equal(twin(z), source(z))
    assert "drawn" in source.state_dict() and len(source.state_dict()) == 1


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("table2")
    write_tiny_mnist(work / "data", n_train=16, n_test=8)
    write_random_teacher(work)
    return work


def run(args: list[str], cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


KD_ARGS = ["--inputs", "original", "--epoch_itrs", "2", "--batch_size", "6",
           "--test_batch_size", "8", "--data_root", "data", *FAST]


def student_of(work: Path) -> dict:
    return torch.load(work / "checkpoint/baselines/kd_ori-mnist-lenet5_half-state.pt",
                      weights_only=True)["student"]


def test_kd_ori_resume_equals_an_uninterrupted_run(tiny, tmp_path):
    script = str(REPO / "baselines/kd_mnist.py")
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    for work in (whole, parts):
        (work / "checkpoint").mkdir(parents=True)
        (work / "data").symlink_to(tiny / "data")
        (work / "checkpoint/teacher").symlink_to(tiny / "checkpoint/teacher")
    result = run([sys.executable, script, *KD_ARGS, "--epochs", "3"], whole)
    assert result.returncode == 0, result.stderr
    result = run([sys.executable, script, *KD_ARGS, "--epochs", "1"], parts)
    assert result.returncode == 0, result.stderr
    result = run([sys.executable, script, *KD_ARGS, "--epochs", "3", "--resume"], parts)
    assert result.returncode == 0, result.stderr
    assert "resumed from" in result.stdout
    a, b = student_of(whole), student_of(parts)
    assert all(torch.equal(a[k], b[k]) for k in a)
    # 3 epochs x 2 iterations x 5 steps x 6 images, over passes of 16 images
    assert torch.load(whole / "checkpoint/baselines/kd_ori-mnist-lenet5_half-state.pt",
                      weights_only=True)["generator"]["drawn"].item() == 180


def test_kd_missing_dataset_is_one_line(tiny, tmp_path):
    write_random_teacher(tmp_path)
    result = run([sys.executable, str(REPO / "baselines/kd_mnist.py"), "--inputs", "original",
                  "--data_root", "nowhere", *FAST], tmp_path)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: MNIST not found")


def test_run_table2_script_smoke_prints_every_row(tiny, tmp_path):
    result = run(["bash", str(REPO / "scripts/run_table2_mnist.sh"), "--epochs", "1",
                  "--epoch_itrs", "2", "--batch_size", "4", "--test_batch_size", "8", *FAST],
                 cwd=tmp_path,
                 env={"SEEDS": "1", "PYTHON": sys.executable, "RUNS": str(tmp_path / "runs"),
                      "DATA_ROOT": str(tiny / "data"),
                      "TEACHER": str(tiny / "checkpoint/teacher/mnist-lenet5.pt")})
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    table = result.stdout[result.stdout.index("| Method |"):]
    for method in ("Teacher", "KD-ORI", "KD-REL", "KD-UNR", "RANDOM", "DAFL", "DFAD"):
        assert f"| {method} |" in table
    for method in ("KD-ORI", "RANDOM", "DAFL", "DFAD"):
        line = next(x for x in table.splitlines() if x.startswith(f"| {method} |"))
        assert line.endswith("| 1 |"), line  # one finished run each
    for method in ("KD_ORI", "RANDOM", "DAFL", "DFAD"):
        with open(tmp_path / f"runs/{method}-s1/log/{method}-mnist.csv") as f:
            assert len(list(csv.reader(f))) == 1
    assert (tmp_path / "runs/table2-mnist.png").stat().st_size > 1000
    # Run again: every finished (method, seed) is skipped.
    again = run(["bash", str(REPO / "scripts/run_table2_mnist.sh"), *FAST], cwd=tmp_path,
                env={"SEEDS": "1", "PYTHON": sys.executable, "RUNS": str(tmp_path / "runs"),
                     "DATA_ROOT": str(tiny / "data"),
                     "TEACHER": str(tiny / "checkpoint/teacher/mnist-lenet5.pt")})
    assert again.returncode == 0 and again.stdout.count("skipped") == 4


def test_kd_loss_is_the_dfad_l1_on_logits():
    """KD-ORI/RANDOM use DFAD's student step: its loss is the L1 of the raw logits."""
    from engine.dfad import student_step

    torch.manual_seed(0)
    teacher, student = LeNet5().eval(), LeNet5Half()
    source = GaussianImages((1, 32, 32))
    z = torch.randn(4, 1024, 1, 1)
    expected = F.l1_loss(student(z.view(4, 1, 32, 32)), teacher(z.view(4, 1, 32, 32)))
    loss = student_step(teacher, student, source, torch.optim.SGD(student.parameters(), lr=0.0),
                        z)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
