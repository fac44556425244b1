"""What a new user meets first: every script's --help ends with an example and the files it
writes; a wrong turn (a segmentation dataset given to train_teacher.py, MNIST missing with no
network) ends in one line that says what to do, and leaves nothing behind."""
import importlib
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import get_results

REPO = Path(__file__).resolve().parents[1]
ENTRY_SCRIPTS = ["DFAD_mnist", "DFAD_cifar", "DFAD_caltech101", "DFAD_camvid_deeplab",
                 "DFAD_nyu_deeplab", "train_teacher", "train_teacher_seg", "baselines.kd_mnist",
                 "baselines.dafl_mnist"]


def run(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1", **env})


@pytest.mark.parametrize("module", ENTRY_SCRIPTS)
def test_help_ends_with_an_example_and_what_the_run_writes(module):
    text = importlib.import_module(module).get_parser().format_help()
    script = module.replace(".", "/") + ".py"
    example = text.index(f"example:\n  .venv/bin/python {script} ")
    writes = text[example:]
    assert "checkpoint/" in writes and "log/" in writes and "results/" in writes


def test_get_results_help_ends_with_an_example(capsys):
    with pytest.raises(SystemExit):
        get_results.main(["--help"])
    tail = capsys.readouterr().out.split("example:\n")[-1]
    assert tail.startswith("  .venv/bin/python get_results.py --log log/DFAD-mnist.csv")


@pytest.mark.parametrize("dataset", ["camvid", "nyuv2"])
def test_train_teacher_points_segmentation_at_its_own_script(dataset, tmp_path):
    result = run(str(REPO / "train_teacher.py"), "--dataset", dataset, "--device", "cpu",
                 cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"error: --dataset {dataset} is a segmentation dataset: train its teacher with "
        f"train_teacher_seg.py --dataset {dataset}"]
    assert list(tmp_path.iterdir()) == []  # not even a config file


def test_a_failed_mnist_download_says_why_names_data_root_and_leaves_no_folder(tmp_path):
    with socket.socket() as s:  # a port nothing listens on: the download fails at once
        s.bind(("127.0.0.1", 0))
        proxy = f"http://127.0.0.1:{s.getsockname()[1]}"
    result = run(str(REPO / "train_teacher.py"), "--dataset", "mnist", "--data_root", "data",
                 "--download", "--device", "cpu", "--num_workers", "0", "--no_visdom",
                 cwd=tmp_path, http_proxy=proxy, https_proxy=proxy, HTTP_PROXY=proxy,
                 HTTPS_PROXY=proxy, no_proxy="", NO_PROXY="")
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: MNIST is not in data/MNIST/raw and the download failed (")
    assert "()" not in line and "DATA_ROOT=" in line and "--data_root" in line
    assert not (tmp_path / "data").exists()  # no empty data/MNIST/raw left behind
