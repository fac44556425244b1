"""What a new user meets first: every script's --help ends with an example and the files it
writes, and a first DFAD_mnist run writes exactly those, in the original's plain formats; the
original flags are all there; MNIST missing with no network ends in one line that says what to
do, and leaves nothing behind."""
import importlib
import re
from pathlib import Path
from urllib.error import URLError

import pytest
import torch
from torchvision.datasets import mnist

import DFAD_mnist
import get_results
from engine.flags import COMPAT_TITLE
from network.gan import GeneratorA
from network.lenet import LeNet5Half
from runtime.cli import run_main
from tests.helpers.mnist_fixtures import write_random_teacher

ENTRY_SCRIPTS = ["DFAD_mnist", "DFAD_cifar", "DFAD_caltech101", "DFAD_camvid_deeplab",
                 "DFAD_nyu_deeplab", "train_teacher", "train_teacher_seg", "baselines.kd_mnist",
                 "baselines.dafl_mnist"]


@pytest.mark.parametrize("module", ENTRY_SCRIPTS)
def test_help_ends_with_an_example_and_what_the_run_writes(module):
    text = importlib.import_module(module).get_parser().format_help()
    script = module.replace(".", "/") + ".py"
    writes = text[text.index(f"example:\n  .venv/bin/python {script} "):]
    assert "checkpoint/" in writes and "log/" in writes and "results/" in writes


def test_get_results_help_ends_with_an_example(capsys):
    with pytest.raises(SystemExit):
        get_results.main(["--help"])
    tail = capsys.readouterr().out.split("example:\n")[-1]
    assert tail.startswith("  .venv/bin/python get_results.py --log log/DFAD-mnist.csv")


def promised_files(help_text: str) -> set[str]:
    """The paths under "writes" in --help, `{a,b}` expanded, `<panel>` as a glob."""
    paths = help_text.split("writes (relative to the working directory):\n")[1].split()
    expanded = set()
    for path in paths:
        braces = re.search(r"\{(.*?)\}", path)
        options = braces.group(1).split(",") if braces else [""]
        expanded |= {re.sub(r"\{.*?\}", option, path).replace("<panel>", "*")
                     for option in options}
    return expanded


def test_a_first_dfad_mnist_run_writes_what_its_help_promises(mnist_run):
    port = "9"  # discard: nothing listens, the plots go to the visdom log
    history = DFAD_mnist.main(DFAD_mnist.get_parser().parse_args([
        "--epochs", "1", "--epoch_itrs", "1", "--batch_size", "4", "--test_batch_size", "4",
        "--num_workers", "0", "--device", "cpu", "--visdom_port", port]))
    assert history[0] > 0  # the original saves a best student only above 0
    for pattern in promised_files(DFAD_mnist.get_parser().format_help()):
        assert list(Path().glob(pattern)), f"{pattern} not written"
    student = torch.load("checkpoint/student/mnist-lenet5_half.pt", weights_only=True)
    LeNet5Half().load_state_dict(student, strict=True)
    generator = torch.load("checkpoint/student/mnist-lenet5_half-generator.pt", weights_only=True)
    GeneratorA(nz=100, nc=1, img_size=32).load_state_dict(generator, strict=True)


def test_help_keeps_the_original_flags_and_groups_the_ignored_ones():
    text = DFAD_mnist.get_parser().format_help()
    for flag in ("--lr_S", "--lr_G", "--epoch_itrs", "--nz", "--scheduler", "--log-interval",
                 "--test-only", "--no-cuda", "--device", "--stu_ckpt", "--momentum", "--verbose"):
        assert flag in text
    ignored = text[text.index(COMPAT_TITLE + ":"):text.index("example:")]
    assert re.findall(r"^  (--\w+)", ignored, re.M) == ["--momentum", "--verbose"]


def test_a_failed_mnist_download_says_why_names_data_root_and_leaves_no_folder(
        tmp_path, monkeypatch, capsys):
    def offline(url, **kwargs):
        raise URLError(ConnectionRefusedError(111, "Connection refused"))

    monkeypatch.setattr(mnist, "download_and_extract_archive", offline)
    monkeypatch.chdir(tmp_path)
    write_random_teacher(tmp_path)
    with pytest.raises(SystemExit) as stop:
        run_main(DFAD_mnist.get_parser, DFAD_mnist.main,
                 ["--data_root", "data", "--download", "--device", "cpu", "--no_visdom"])
    (line,) = capsys.readouterr().err.splitlines()
    assert stop.value.code == 1
    assert line.startswith("error: MNIST is not in data/MNIST/raw and the download failed "
                           "(<urlopen error [Errno 111] Connection refused>)")
    assert "DATA_ROOT=" in line and "--data_root" in line
    assert not (tmp_path / "data").exists()  # no empty data/MNIST/raw left behind
