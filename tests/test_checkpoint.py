"""Checkpoint files: atomic writes and strict, safe loading with one-line errors."""
import random
import warnings

import pytest
import torch

from network.gan import GeneratorA
from network.lenet import LeNet5, LeNet5Half
from runtime.checkpoint import load_teacher, load_weights, read_state_dict, save_atomic
from runtime.errors import UserError


def test_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "model.pt"
    good = LeNet5().state_dict()
    save_atomic(good, path)

    def broken_save(obj, f):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(UserError, match=r"cannot write .*model.pt \(disk full; .* MiB free"):
        save_atomic(LeNet5().state_dict(), path)
    monkeypatch.undo()
    reloaded = torch.load(path, weights_only=True)
    assert all(torch.equal(reloaded[k], good[k]) for k in good)
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]  # no temporary file left


def test_teacher_is_frozen_and_in_eval_mode(tmp_path):
    torch.save(LeNet5().state_dict(), tmp_path / "t.pt")
    teacher = load_teacher(LeNet5(), tmp_path / "t.pt", torch.device("cpu"))
    assert not teacher.training
    assert not any(p.requires_grad for p in teacher.parameters())


def test_wrong_architecture_names_keys_and_shapes(tmp_path):
    torch.save(LeNet5().state_dict(), tmp_path / "t.pt")
    with pytest.raises(UserError, match=r"conv1.weight: checkpoint \[6, 1, 5, 5\] vs model"):
        load_weights(LeNet5Half(), tmp_path / "t.pt")


def test_not_a_checkpoint(tmp_path):
    (tmp_path / "junk.pt").write_text("hello")
    with pytest.raises(UserError, match="cannot read checkpoint"):
        load_weights(LeNet5(), tmp_path / "junk.pt")


def test_random_bytes_are_always_the_same_one_line_and_no_warning(tmp_path):
    """torch's unpickler trips on random bytes in many ways (a pop from an empty list, an odd
    protocol it warns about, its weights_only advice): each is the same one line here."""
    rng = random.Random(0)
    for i in range(300):
        path = tmp_path / f"r{i}.pt"
        path.write_bytes(rng.randbytes(256))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(UserError) as err:
                read_state_dict(path)
        assert str(err.value) == (f"cannot read checkpoint {path}: not a PyTorch checkpoint of "
                                  "tensors (corrupt, truncated, or another kind of file)")


def test_other_head_size_names_both_sizes(tmp_path):
    torch.save(LeNet5(num_classes=100).state_dict(), tmp_path / "t.pt")
    with pytest.raises(UserError, match=r"has a 100-class head, the model \(LeNet5\) has 10 "
                                        r"classes \(fc2.weight: checkpoint \[100, 84\]"):
        load_weights(LeNet5(), tmp_path / "t.pt")


def test_last_layer_before_a_batchnorm_is_not_called_a_head(tmp_path):
    torch.save(GeneratorA(nz=8, ngf=4, nc=1).state_dict(), tmp_path / "g.pt")
    with pytest.raises(UserError, match="does not match GeneratorA: shape mismatch") as err:
        load_weights(GeneratorA(nz=8, ngf=4, nc=3), tmp_path / "g.pt")
    assert "head" not in str(err.value)
