"""Checkpoint files (runtime/files.py): atomic writes, the best pair replaced both or neither, and
strict, safe loading with one-line errors."""
import random
import warnings

import pytest
import torch

from network.gan import GeneratorA
from network.lenet import LeNet5, LeNet5Half
from runtime.errors import UserError
from runtime.files import load_teacher, load_tensors, load_weights, save_atomic


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_failed_write_of_a_pair_replaces_neither_file(tmp_path, monkeypatch):
    student, generator = tmp_path / "s.pt", tmp_path / "s-generator.pt"
    old = LeNet5Half().state_dict(), GeneratorA(nz=8, ngf=4).state_dict()
    save_atomic((old[0], student), (old[1], generator))
    real_save = torch.save

    def full_disk_at_the_second_file(obj, f):
        if "generator" in f.name:
            f.write(b"half a checkpoint")
            raise OSError("disk full")
        real_save(obj, f)

    monkeypatch.setattr(torch, "save", full_disk_at_the_second_file)
    with pytest.raises(UserError, match=r"cannot write .*s-generator.pt \(disk full; .* MiB free"):
        save_atomic((LeNet5Half().state_dict(), student),
                    (GeneratorA(nz=8, ngf=4).state_dict(), generator))
    monkeypatch.undo()
    assert same(torch.load(student, weights_only=True), old[0])
    assert same(torch.load(generator, weights_only=True), old[1])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s-generator.pt", "s.pt"]  # no tmp


def test_the_teacher_is_frozen_and_in_eval_mode(tmp_path):
    torch.save(LeNet5().state_dict(), tmp_path / "t.pt")
    teacher = load_teacher(LeNet5().train(), tmp_path / "t.pt")
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())


def test_another_architecture_names_keys_and_shapes(tmp_path):
    torch.save(LeNet5().state_dict(), tmp_path / "t.pt")
    with pytest.raises(UserError, match=r"conv1.weight: checkpoint \[6, 1, 5, 5\] vs model"):
        load_weights(LeNet5Half(), tmp_path / "t.pt")


def test_another_head_size_names_both_sizes(tmp_path):
    torch.save(LeNet5(num_classes=100).state_dict(), tmp_path / "t.pt")
    with pytest.raises(UserError, match=r"has a 100-class head, the model \(LeNet5\) has 10 "
                                        r"classes \(fc2.weight: checkpoint \[100, 84\]"):
        load_weights(LeNet5(), tmp_path / "t.pt")


def test_the_last_layer_before_a_batchnorm_is_not_called_a_head(tmp_path):
    torch.save(GeneratorA(nz=8, ngf=4, nc=1).state_dict(), tmp_path / "g.pt")
    with pytest.raises(UserError, match="does not match GeneratorA: shape mismatch") as err:
        load_weights(GeneratorA(nz=8, ngf=4, nc=3), tmp_path / "g.pt")
    assert "head" not in str(err.value)


def test_random_bytes_are_always_the_same_one_line_and_no_warning(tmp_path):
    """torch's unpickler trips on random bytes in many ways (a pop from an empty list, an odd
    protocol it warns about, its weights_only advice): each is the same one line here."""
    rng = random.Random(0)
    messages = set()
    for i in range(100):
        path = tmp_path / f"r{i}.pt"
        path.write_bytes(rng.randbytes(256))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(UserError) as err:
                load_tensors(path, "checkpoint")
        messages.add(str(err.value).replace(str(path), "FILE"))
    (message,) = messages
    assert message.startswith("cannot read checkpoint FILE: not a PyTorch checkpoint of tensors "
                              "(corrupt, truncated, or another kind of file)")
    assert "\n" not in message
