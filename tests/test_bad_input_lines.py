"""Each bad input: exit code 1 (or 2, a bad flag), one line on stderr, "error: ...", saying what
to do, and no file of the run written."""
import os
from pathlib import Path

import pytest
import torch

import DFAD_mnist
from network.lenet import LeNet5
from runtime.cli import run_main
from tests.helpers.mnist_fixtures import write_random_teacher, write_tiny_mnist

TEACHER = "checkpoint/teacher/mnist-lenet5.pt"
TINY = ["--epochs", "1", "--epoch_itrs", "1", "--batch_size", "4", "--test_batch_size", "4",
        "--num_workers", "0", "--no_visdom", "--data_root", "data"]


def read_only(work: Path) -> None:
    work.chmod(0o555)
    if os.access(work, os.W_OK):
        pytest.skip("this user (root) writes to read-only folders")


CASES = {  # flags, what makes the input bad, exit code, the hint that says what to do
    "missing teacher": (["--ckpt", "nowhere.pt"], None, 1, "train one with train_teacher.py"),
    "teacher of another dataset": (
        [], lambda w: torch.save(LeNet5(num_classes=100).state_dict(), w / TEACHER), 1,
        "pass one trained on this script's dataset"),
    "corrupt checkpoint": ([], lambda w: (w / TEACHER).write_bytes(b"PK\3\4" * 64), 1,
                           "write it again"),
    "resume a directory": (["--resume", "checkpoint"], None, 1, "pass the .pt file in it"),
    "resume a non-state file": (["--resume", TEACHER], None, 1, "use --ckpt or --stu_ckpt"),
    "batch size 0": (["--batch_size", "0"], None, 2, "must be >= 2"),
    "missing MNIST": (["--data_root", "nowhere"], None, 1, "pass --download"),
    "cuda without CUDA": (["--device", "cuda"], None, 1, "use --device cpu"),
    "original numerics with amp": (["--original_numerics", "--amp", "bf16"], None, 1,
                                   "drop one"),
    "sync_bn on the CPU": (["--sync_bn"], None, 1, "drop the flag"),
    "unwritable output folder": ([], read_only, 1, "run from a folder where"),
    "a file where an output folder goes": (
        [], lambda w: (w / "log").write_text("not a folder"), 1, "run from a folder where"),
}


def contents(work: Path) -> dict[str, bytes]:
    return {str(p.relative_to(work)): p.read_bytes() for p in work.rglob("*")
            if p.is_file() and p.suffix != ".lock"}


@pytest.mark.parametrize("case", CASES)
def test_a_bad_input_is_one_line_that_says_what_to_do(case, tmp_path, monkeypatch, capsys):
    flags, make_bad, code, hint = CASES[case]
    if case == "cuda without CUDA" and torch.cuda.is_available():
        pytest.skip("CUDA is available")
    write_tiny_mnist(tmp_path / "data", n_train=16, n_test=8)
    write_random_teacher(tmp_path)
    monkeypatch.chdir(tmp_path)
    try:
        if make_bad:
            make_bad(tmp_path)
        before = contents(tmp_path)
        with pytest.raises(SystemExit) as stop:
            run_main(DFAD_mnist.get_parser, DFAD_mnist.main, [*TINY, *flags])
    finally:
        tmp_path.chmod(0o755)
    err = capsys.readouterr().err
    assert stop.value.code == code
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and hint in err, err
    assert contents(tmp_path) == before  # the lock aside, nothing written
