"""The adversarial loop of engine/dfad.py on tiny networks with BatchNorm (so the side effects of
docs/original-release.md#batchnorm-side-effects show): what each step does and must not do, and
what a whole run leaves behind."""
import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.lr_scheduler import StepLR
from torch.utils.data import DataLoader, TensorDataset

import DFAD_mnist
from engine.dfad import Experiment, distill, generator_step, student_step
from engine.evaluation import evaluate_classification
from engine.objectives import generator_mae, student_l1
from network.gan import GeneratorA
from reporting.results_csv import read_csv_runs
from runtime.device import setup
from runtime.speed import Precision

NZ = 16
FP32 = Precision("off", torch.device("cpu"))


def tiny_classifier(width: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(4 * width, 10),
    )


@pytest.fixture
def nets():
    torch.manual_seed(0)
    teacher = tiny_classifier(8).eval().requires_grad_(False)
    return teacher, tiny_classifier(4).train(), GeneratorA(nz=NZ, ngf=8, nc=1).train()


def discrepancy(teacher, student, generator, z) -> float:
    with torch.no_grad():
        x = generator(z)
        return F.l1_loss(student(x), teacher(x)).item()


def student_update(teacher, student, generator, z, lr=0.05) -> torch.Tensor:
    optimizer = torch.optim.SGD(student.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
    return student_step(teacher, student, generator, optimizer, z, student_l1, FP32)["loss"]


def generator_update(teacher, student, generator, z, lr=1e-2) -> torch.Tensor:
    optimizer = torch.optim.Adam(generator.parameters(), lr=lr)
    return generator_step(teacher, student, generator, optimizer, z, generator_mae, FP32)["loss"]


def test_the_student_step_lowers_the_discrepancy(nets):
    z = torch.randn(16, NZ, 1, 1)
    before = discrepancy(*nets, z)
    assert student_update(*nets, z).item() == pytest.approx(before, rel=1e-5)
    assert discrepancy(*nets, z) < before


def test_the_generator_step_raises_it_and_leaves_the_student_no_gradient(nets):
    teacher, student, generator = nets
    z = torch.randn(16, NZ, 1, 1)
    before = discrepancy(*nets, z)
    assert generator_update(*nets, z).item() == pytest.approx(-before, rel=1e-5)
    assert discrepancy(*nets, z) > before
    assert all(p.grad is None for p in student.parameters())
    assert all(p.requires_grad for p in student.parameters())  # unfrozen again afterwards
    assert all(p.grad is not None for p in generator.parameters())


def test_the_student_update_ignores_stale_gradients(nets):
    teacher, student, generator = nets
    twin, generator_twin = copy.deepcopy(student), copy.deepcopy(generator)
    for p in twin.parameters():  # what a leaked generator-step gradient would look like
        p.grad = torch.full_like(p, 1e3)
    z = torch.randn(8, NZ, 1, 1)
    student_update(teacher, student, generator, z)
    student_update(teacher, twin, generator_twin, z)
    assert all(torch.equal(a, b) for a, b in zip(student.parameters(), twin.parameters(),
                                                 strict=True))


def test_batchnorm_side_effects_are_kept(nets):
    """G's BatchNorm statistics move in student steps, S's in the generator step."""
    teacher, student, generator = nets
    g_stats = generator.conv_blocks0[0].running_mean.clone()
    student_update(*nets, torch.randn(8, NZ, 1, 1), lr=0.0)
    assert not torch.equal(generator.conv_blocks0[0].running_mean, g_stats)
    s_stats = student[1].running_mean.clone()
    generator_update(*nets, torch.randn(8, NZ, 1, 1), lr=0.0)
    assert not torch.equal(student[1].running_mean, s_stats)


def test_a_run_leaves_the_teacher_bit_identical_and_writes_the_experiments_files(nets, mnist_run):
    """Three epochs of an experiment of one's own: the teacher (BatchNorm included) unchanged,
    both learning rates on the one schedule, the CSV row, and the best student and generator
    under the experiment's names."""
    args = DFAD_mnist.get_parser().parse_args([
        "--epochs", "3", "--epoch_itrs", "2", "--batch_size", "8", "--nz", str(NZ), "--lr_S",
        "0.05", "--scheduler", "--num_workers", "0", "--no_visdom", "--device", "cpu"])
    teacher, student, generator = nets
    before = copy.deepcopy(teacher.state_dict())
    loader = DataLoader(TensorDataset(torch.randn(40, 1, 32, 32), torch.arange(40) % 10),
                        batch_size=16)
    experiment = Experiment(
        name="DFAD-tiny", student_ckpt="checkpoint/student/tiny.pt", teacher=teacher,
        student=student, generator=generator, test_loader=loader,
        evaluate=evaluate_classification, metric="acc",
        make_scheduler=lambda optimizer: StepLR(optimizer, 1, 0.5))
    history = distill(args, experiment, setup(args))
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())
    assert all(p.grad is None for p in teacher.parameters())
    state = torch.load("checkpoint/student/tiny-state.pt", weights_only=True)
    assert state["optimizer_S"]["param_groups"][0]["lr"] == pytest.approx(0.05 * 0.5**3)
    assert state["optimizer_G"]["param_groups"][0]["lr"] == pytest.approx(1e-3 * 0.5**3)
    (row,) = read_csv_runs("log/DFAD-tiny.csv")
    assert row.values == pytest.approx(history) and len(history) == 3
    assert row.flags["epochs"] == 3 and row.flags["scheduler"] is True
    assert history[0] > 0  # every class is a tenth of the labels: a best student at epoch 1
    student_file, generator_file = torch.load("checkpoint/student/tiny.pt"), torch.load(
        "checkpoint/student/tiny-generator.pt")
    tiny_classifier(4).load_state_dict(student_file)
    GeneratorA(nz=NZ, ngf=8, nc=1).load_state_dict(generator_file)
