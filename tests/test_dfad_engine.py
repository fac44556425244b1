"""The adversarial loop of engine/dfad.py on tiny networks: what each step does and must not do."""
import argparse
import copy

import pytest
import torch
from torch import nn

from engine.dfad import (
    Recipe,
    discrepancy,
    distill,
    generator_loss_log_mae,
    generator_loss_mae,
    generator_step,
    setup_distillation,
    student_step,
    train_epoch,
)
from engine.evaluation import evaluate_classification
from network.gan import GeneratorA
from tables.csv_rows import read_csv_runs
from tests.helpers.script_args import dfad_args

NZ = 16


def tiny_classifier(width: int) -> nn.Module:
    """A conv net with BatchNorm, so the BN side effects of
    docs/original-release.md#batchnorm-side-effects are observable."""
    return nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(4 * width, 10),
    )


@pytest.fixture
def nets():
    torch.manual_seed(0)
    teacher = tiny_classifier(8).eval().requires_grad_(False)
    student = tiny_classifier(4).train()
    generator = GeneratorA(nz=NZ, ngf=8, nc=1, img_size=32).train()
    return teacher, student, generator


def current_discrepancy(teacher, student, generator, z) -> float:
    with torch.no_grad():
        x = generator(z)
        return discrepancy(student(x), teacher(x)).item()


def test_student_step_lowers_discrepancy(nets):
    teacher, student, generator = nets
    z = torch.randn(16, NZ, 1, 1)
    optimizer = torch.optim.SGD(student.parameters(), lr=0.05, momentum=0.9)
    before = current_discrepancy(teacher, student, generator, z)
    loss = student_step(teacher, student, generator, optimizer, z)
    assert loss.item() == pytest.approx(before, rel=1e-5)
    assert current_discrepancy(teacher, student, generator, z) < before


def test_generator_step_raises_discrepancy(nets):
    teacher, student, generator = nets
    z = torch.randn(16, NZ, 1, 1)
    optimizer = torch.optim.Adam(generator.parameters(), lr=1e-2)
    before = current_discrepancy(teacher, student, generator, z)
    loss = generator_step(teacher, student, generator, optimizer, z, generator_loss_mae)
    assert loss.item() == pytest.approx(-before, rel=1e-5)
    assert current_discrepancy(teacher, student, generator, z) > before


def test_generator_step_leaves_no_student_gradient(nets):
    teacher, student, generator = nets
    optimizer = torch.optim.Adam(generator.parameters(), lr=1e-3)
    generator_step(teacher, student, generator, optimizer, torch.randn(8, NZ, 1, 1),
                   generator_loss_mae)
    assert all(p.grad is None for p in student.parameters())
    assert all(p.requires_grad for p in student.parameters())  # unfrozen again afterwards
    assert all(p.grad is not None for p in generator.parameters())


def test_student_update_ignores_stale_gradients(nets):
    teacher, student, generator = nets
    twin = copy.deepcopy(student)
    generator_twin = copy.deepcopy(generator)
    for p in twin.parameters():  # what a leaked generator-step gradient would look like
        p.grad = torch.full_like(p, 1e3)
    z = torch.randn(8, NZ, 1, 1)
    for s, g in ((student, generator), (twin, generator_twin)):
        opt = torch.optim.SGD(s.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
        student_step(teacher, s, g, opt, z)
    for a, b in zip(student.parameters(), twin.parameters(), strict=True):
        assert torch.equal(a, b)


def test_batchnorm_side_effects_are_kept(nets):
    """docs/original-release.md#batchnorm-side-effects: G's BN stats move in student steps, S's BN
    stats move in the G step."""
    teacher, student, generator = nets
    g_stats = generator.conv_blocks0[0].running_mean.clone()
    student_step(teacher, student, generator,
                 torch.optim.SGD(student.parameters(), lr=0.0), torch.randn(8, NZ, 1, 1))
    assert not torch.equal(generator.conv_blocks0[0].running_mean, g_stats)
    s_stats = student[1].running_mean.clone()
    generator_step(teacher, student, generator,
                   torch.optim.Adam(generator.parameters(), lr=0.0),
                   torch.randn(8, NZ, 1, 1), generator_loss_mae)
    assert not torch.equal(student[1].running_mean, s_stats)


def test_log_mae_loss():
    s, t = torch.zeros(2, 3), torch.full((2, 3), 2.0)
    assert generator_loss_mae(s, t).item() == pytest.approx(-2.0)
    assert generator_loss_log_mae(s, t).item() == pytest.approx(-torch.log(torch.tensor(3.0)))


def engine_args(**overrides) -> argparse.Namespace:
    defaults = dict(epoch_itrs=2, batch_size=8, nz=NZ, log_interval=1, lr_S=0.05, lr_G=1e-3,
                    weight_decay=1e-4, epochs=2)
    defaults.update(overrides)
    return dfad_args(**defaults)


def test_teacher_is_bit_identical_after_training(nets):
    teacher, student, generator = nets
    before = copy.deepcopy(teacher.state_dict())
    recipe = Recipe(name="t", student_ckpt="s.pt", generator_loss=generator_loss_mae,
                    evaluate=evaluate_classification, metric="acc")
    run = setup_distillation(engine_args(), teacher, student, generator, recipe,
                             torch.device("cpu"), test_loader=None)
    train_epoch(run, epoch=1)
    after = teacher.state_dict()
    assert before.keys() == after.keys()
    for k in before:
        assert torch.equal(before[k], after[k]), k
    assert all(p.grad is None for p in teacher.parameters())


def test_distill_writes_checkpoints_and_csv(nets, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    teacher, student, generator = nets
    images = torch.randn(40, 1, 32, 32)
    labels = torch.arange(40) % 10
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, labels),
                                         batch_size=16)
    recipe = Recipe(name="tiny", student_ckpt="checkpoint/student/tiny-s.pt",
                    generator_loss=generator_loss_mae, evaluate=evaluate_classification,
                    metric="acc",
                    make_scheduler=lambda opt: torch.optim.lr_scheduler.StepLR(opt, 1, 0.5))
    history = distill(engine_args(epochs=3, scheduler=True), teacher, student, generator,
                      loader, recipe, torch.device("cpu"))
    assert len(history) == 3 and all(0.0 <= v <= 1.0 for v in history)
    (row,) = read_csv_runs(tmp_path / "log" / "DFAD-tiny.csv")
    assert row.values == pytest.approx(history)
    assert row.flags["epochs"] == 3 and row.flags["scheduler"] is True and row.run_id
    saved_student = torch.load("checkpoint/student/tiny-s.pt", weights_only=True)
    saved_generator = torch.load("checkpoint/student/tiny-s-generator.pt", weights_only=True)
    tiny_classifier(4).load_state_dict(saved_student)
    GeneratorA(nz=NZ, ngf=8, nc=1, img_size=32).load_state_dict(saved_generator)
