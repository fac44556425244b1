"""scripts/gpu_check.sh --device cpu --tiny end to end, so the one-call GPU check cannot rot: every
step writes its file under OUT (flat, at most 8 files: what the device tool brings back), and a
budget that is used up skips the remaining steps and says so."""
import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np

from tables.csv_rows import read_csv_runs

REPO = Path(__file__).resolve().parents[1]
FILES = {"summary.txt", "env.txt", "cuda_tests.txt", "bench.txt", "mnist_teacher.txt",
         "mnist_runs.txt", "mnist_results.txt", "mnist_logs.tar.gz"}
COMPILE_STEPS = [f"bench_compile_{c}" for c in ("mnist", "cifar10", "caltech101", "camvid")]
STEPS = ["env", "mnist_start", "cuda_tests", "mnist_wait", "mnist_results", "upsample_conv",
         "bench", "bench_cudnn_autotune", *COMPILE_STEPS]
METHODS = ("KD_ORI", "RANDOM", "DAFL", "DFAD")


def run_check(tmp_path: Path, budget: int) -> tuple[subprocess.CompletedProcess, Path, Path]:
    out, work = tmp_path / "out", tmp_path / "work"
    env = {**os.environ, "OUT": str(out), "WORK": str(work), "PYTHON": sys.executable,
           "BUDGET_S": str(budget)}
    env.pop("DATA_ROOT", None)  # --tiny writes its own tiny MNIST
    result = subprocess.run(["bash", str(REPO / "scripts" / "gpu_check.sh"), "--device", "cpu",
                             "--tiny"], env=env, capture_output=True, text=True, timeout=900)
    return result, out, work


def statuses(out: Path) -> dict[str, str]:
    lines = (out / "summary.txt").read_text().splitlines()[2:]  # after the two header lines
    return dict(re.split(r"\s+", line, maxsplit=1) for line in lines)


def assert_fetchable(out: Path) -> None:
    """The device tool returns at most 8 plain files with plain names; ours are all flat."""
    entries = list(out.iterdir())
    assert {p.name for p in entries} == FILES
    assert all(p.is_file() and re.fullmatch(r"[A-Za-z0-9._-]+", p.name) for p in entries)


def test_tiny_run_writes_every_steps_results(tmp_path):
    result, out, work = run_check(tmp_path, budget=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert_fetchable(out)
    status = statuses(out)
    assert list(status) == [*STEPS, "gpu_check"]
    for name in STEPS:
        if name in COMPILE_STEPS:
            assert status[name].startswith("skipped: --tiny leaves torch.compile out"), name
        elif name == "cuda_tests":  # none run here: deselected, or marked and skipped (no GPU)
            assert status[name].startswith("ok"), status[name]
        else:
            assert re.fullmatch(r"ok, \d+ s", status[name]), (name, status[name])

    assert "CUDA available: False" in (out / "env.txt").read_text()
    cuda_tests = (out / "cuda_tests.txt").read_text()
    assert "no test in the suite carries the cuda marker" in cuda_tests or "skipped" in cuda_tests
    phases = (out / "bench.txt").read_text()
    for layer in ("conv_blocks1 128->128 8px", "conv_blocks2 128->64 16px"):
        for dtype in ("fp32", "bf16"):
            assert re.search(rf"mnist +{layer} +{dtype} +fwd\+bwd +[\d.]+ +[\d.]+", phases)
    assert phases.count("per DFAD iteration") == 2
    bench = (out / "bench.txt").read_text()
    for mode in ("reference", "fp32"):  # bf16 runs on a GPU; here the MNIST row runs it
        assert re.search(rf"^mnist +{mode} +4 +[\d.]+", bench, re.M), mode
    assert "deterministic=True benchmark=False" in bench  # the scripts' cuDNN default
    assert "deterministic=False benchmark=True" in bench  # the autotune step
    assert "Best acc=" in (out / "mnist_teacher.txt").read_text()
    runs = (out / "mnist_runs.txt").read_text()
    for run in [f"table2/{m}-s{seed}" for m in METHODS for seed in (1, 2)] + ["bf16/DFAD-s1"]:
        assert re.search(rf"===== {run}: exit 0 after \d+ s", runs), run
    assert "===== teacher (README command): exit 0" in runs
    bf16_config = json.loads((work / "bf16/DFAD-s1/log/DFAD-mnist.config.json").read_text())
    assert bf16_config["amp"] == "bf16"

    # The table: every row of the column, our mean over the two seeds' CSV rows beside the paper.
    results = (out / "mnist_results.txt").read_text()
    for method in METHODS:
        bests = [max(run.values) for seed in (1, 2) for run in
                 read_csv_runs(work / f"table2/{method}-s{seed}/log/{method}-mnist.csv")]
        assert len(bests) == 2, method
        row = next(line for line in results.splitlines()
                   if line.startswith(f"| {method.replace('_', '-')} |"))
        assert f"{np.mean(bests):.4f} ± {np.std(bests):.4f}" in row and row.endswith("| 2 |"), row
    assert "| KD-REL |" in results and "| Teacher |" in results
    assert "DFAD-s1: 1 epochs" in results  # the bf16 run's curve
    with tarfile.open(out / "mnist_logs.tar.gz") as tar:
        names = tar.getnames()
    assert "table2/DAFL-s2/log/DAFL-mnist.metrics.jsonl" in names
    assert "teacher/log/teacher-mnist-lenet5.metrics.jsonl" in names


def test_a_missing_teacher_file_is_one_line(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "OUT": str(out), "TEACHER_CKPT": str(tmp_path / "none.pt")}
    result = subprocess.run(["bash", str(REPO / "scripts" / "gpu_check.sh"), "--device", "cpu",
                             "--tiny"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: TEACHER_CKPT={tmp_path / 'none.pt'} does not exist "
        "(unset it to train the teacher here)"]


def test_a_used_up_budget_skips_steps_and_says_so(tmp_path):
    result, out, _ = run_check(tmp_path, budget=0)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert_fetchable(out)  # a skipped step still leaves its file, saying why
    status = statuses(out)
    assert status["env"].startswith("ok")  # always recorded: it says what the rest ran on
    for name in ("mnist_start", "cuda_tests", "upsample_conv", "bench", "bench_cudnn_autotune"):
        assert re.fullmatch(r"skipped: needs about \d+ s, 0 s of the 0 s budget left",
                            status[name]), (name, status[name])
    assert status["mnist_wait"].startswith("skipped: no MNIST runs")
    assert "===== bench: skipped: needs about" in (out / "bench.txt").read_text()
    assert "===== upsample_conv: skipped: needs about" in (out / "bench.txt").read_text()
