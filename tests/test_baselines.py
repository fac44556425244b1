"""The Table 2 baselines on a tiny MNIST, in-process: each writes exactly its files (a generator
file only where a generator is trained), DAFL's terms reach the logs, KD-ORI resumes bit for bit,
a bad input is one line; DAFL's objectives and the KD-ORI input stream."""
import json
from pathlib import Path

import pytest
import torch
from torch.utils.data import TensorDataset

from baselines import dafl_mnist, kd_mnist
from baselines.kd_mnist import RealImages
from network.gan import GeneratorA
from runtime.cli import run_main
from tests.helpers.local import free_port
from tests.helpers.mnist_fixtures import write_random_teacher, write_tiny_mnist

TINY = ["--epoch_itrs", "1", "--batch_size", "4", "--test_batch_size", "8", "--device", "cpu",
        "--num_workers", "0"]


@pytest.fixture
def work(tmp_path: Path, monkeypatch) -> Path:
    # 20 test images, labels 0-9 twice: any constant prediction scores > 0, so epoch 1 is a best
    write_tiny_mnist(tmp_path / "data", n_train=16, n_test=20)
    write_random_teacher(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def train(module, *flags: str) -> list[float]:
    args = module.get_parser().parse_args([*TINY, "--visdom_port", str(free_port()), *flags])
    return module.main(args)


def written(work: Path) -> set[str]:
    """What a run wrote: every file but the data and the teacher."""
    return {str(p.relative_to(work)) for p in work.rglob("*") if p.is_file()
            and p.parts[len(work.parts)] != "data" and "teacher" not in p.parts}


@pytest.mark.parametrize("module, flags, method, generator", [
    (kd_mnist, ["--inputs", "original"], "KD_ORI", False),
    (kd_mnist, ["--inputs", "random", "--original_numerics"], "RANDOM", False),
    (dafl_mnist, [], "DAFL", True),
], ids=["KD_ORI", "RANDOM", "DAFL"])
def test_each_baseline_writes_exactly_its_files(work, module, flags, method, generator):
    history = train(module, *flags, "--epochs", "2")
    assert len(history) == 2
    stem = f"checkpoint/baselines/{method.lower()}-mnist-lenet5_half"
    assert written(work) == {
        f"{stem}.pt", f"{stem}-state.pt", *([f"{stem}-generator.pt"] if generator else []),
        *(f"log/{method}-mnist.{kind}"
          for kind in ("csv", "metrics.jsonl", "config.json", "visdom.log", "lock")),
        f"results/{method}-mnist/latest-input.png", f"results/{method}-mnist/latest-generated.png"}
    state = torch.load(f"{stem}-state.pt", weights_only=True)
    assert state["epochs_done"] == 2 and "student" in state and "generator" in state
    assert ("optimizer_G" in state) == generator


def test_dafl_terms_reach_console_visdom_and_metrics_file(work, capsys):
    train(dafl_mnist, "--epochs", "1")
    keys = ("loss_G", "G_one_hot", "G_entropy", "G_activation", "loss_S")
    line = json.loads(Path("log/DAFL-mnist.metrics.jsonl").read_text())
    assert all(isinstance(line[k], float) for k in keys)
    console = capsys.readouterr().out
    assert all(f"{k}=" in console for k in keys)
    plots = Path("log/DAFL-mnist.visdom.log").read_text()
    assert all(f'"{window}"' in plots for window in ("Loss_G", "G_one_hot", "G_entropy",
                                                     "G_activation", "Loss_S"))


def test_kd_ori_resumed_after_epoch_1_ends_as_an_uninterrupted_run(work, monkeypatch, capsys):
    state = "checkpoint/baselines/kd_ori-mnist-lenet5_half-state.pt"
    train(kd_mnist, "--inputs", "original", "--epochs", "2")
    whole = torch.load(state, weights_only=True)
    parts = work / "parts"
    write_tiny_mnist(parts / "data", n_train=16, n_test=20)
    write_random_teacher(parts)
    monkeypatch.chdir(parts)
    train(kd_mnist, "--inputs", "original", "--epochs", "1")
    train(kd_mnist, "--inputs", "original", "--epochs", "2", "--resume")
    assert "resumed from" in capsys.readouterr().out
    resumed = torch.load(state, weights_only=True)
    # 2 epochs x 1 iteration x 5 steps x 4 images: epoch 2 starts 4 images into the second pass
    assert whole["generator"]["drawn"] == resumed["generator"]["drawn"] == 40
    assert whole["history"] == resumed["history"]
    for key, value in whole["student"].items():
        assert torch.equal(value, resumed["student"][key]), key


@pytest.mark.parametrize("module, argv, code, message", [
    (kd_mnist, [], 2, "error: the following arguments are required: --inputs"),
    (dafl_mnist, ["--data_root", "nowhere"], 1, "error: MNIST not found in nowhere/MNIST/raw"),
], ids=["no-inputs", "no-data"])
def test_a_bad_input_is_one_line_and_writes_nothing(work, capsys, module, argv, code, message):
    with pytest.raises(SystemExit) as stop:
        run_main(module.get_parser, module.main, [*TINY, "--no_visdom", *argv])
    error = capsys.readouterr().err
    assert stop.value.code == code
    assert error.startswith(message) and error.count("\n") == 1, error
    assert written(work) == set()


def test_dafl_objectives_are_the_authors_formulas():
    torch.manual_seed(0)
    t, s, feature = torch.randn(6, 10), torch.randn(6, 10), torch.randn(6, 120)
    p_t, p_s = t.softmax(1), s.softmax(1)
    one_hot = -p_t[range(6), t.argmax(1)].log().mean()
    entropy = (p_t.mean(0) * p_t.mean(0).log() / torch.log(torch.tensor(10.0))).sum()
    terms = dafl_mnist.generator_terms(t, feature)
    torch.testing.assert_close(terms["one_hot"], one_hot)
    torch.testing.assert_close(terms["entropy"], entropy)
    torch.testing.assert_close(terms["activation"], -feature.abs().mean())
    torch.testing.assert_close(terms["loss"], one_hot + 5 * entropy - 0.1 * feature.abs().mean())
    kl = (p_t * (p_t.log() - p_s.log())).sum() / 6
    torch.testing.assert_close(dafl_mnist.student_kl(s, t), kl)
    balanced = torch.eye(10) * 20  # each class once, confidently
    collapsed = torch.zeros(10, 10).index_fill_(1, torch.tensor(3), 20)
    assert (dafl_mnist.generator_terms(balanced, feature[:1])["entropy"]
            < dafl_mnist.generator_terms(collapsed, feature[:1])["entropy"])


def test_dafl_generator_has_eps_08_in_two_layers_and_generator_a_keys():
    generator = dafl_mnist.dafl_generator(nz=100)
    assert generator.conv_blocks1[1].eps == generator.conv_blocks2[1].eps == 0.8
    assert generator.conv_blocks0[0].eps == generator.conv_blocks2[5].eps == 1e-5
    GeneratorA(nz=100).load_state_dict(generator.state_dict(), strict=True)


def test_real_images_cover_each_pass_once_and_eval_mode_does_not_consume():
    images = TensorDataset(torch.arange(10.0).view(10, 1, 1, 1), torch.zeros(10))
    source, z = RealImages(images, seed=3), torch.zeros(4, 1)
    drawn = torch.cat([source(z) for _ in range(5)]).flatten()  # 20 images: two passes
    assert sorted(drawn[:10].tolist()) == sorted(drawn[10:].tolist()) == list(range(10))
    assert not torch.equal(drawn[:10], drawn[10:])  # reshuffled every pass
    source.eval()
    assert torch.equal(source(z), source(z)) and int(source.drawn) == 20
    assert list(source.state_dict()) == ["drawn"]  # the images stay out of checkpoints
