"""scripts/gpu_check.sh --device cpu --tiny end to end (a bash script: a subprocess), so the
one-call GPU check cannot rot: every step writes its file under OUT (flat, at most 8 files: what
the device tool brings back), and a budget that is used up skips the remaining steps and says so."""
import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tables.csv_rows import read_csv_runs

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
FILES = {"summary.txt", "env.txt", "cuda_tests.txt", "bench.txt", "mnist_teacher.txt",
         "mnist_runs.txt", "mnist_results.txt", "mnist_logs.tar.gz"}
COMPILE_STEPS = [f"bench_compile_{c}" for c in ("mnist", "cifar10", "caltech101", "camvid")]
STEPS = ["env", "mnist_start", "cuda_tests", "mnist_wait", "mnist_results", "upsample_conv",
         "bench", "bench_cudnn_autotune", *COMPILE_STEPS]
METHODS = ("KD_ORI", "RANDOM", "DAFL", "DFAD")


def gpu_check(tmp_path: Path, timeout: int = 600, **env: str) -> tuple[int, str, Path]:
    """Exit code, stderr and OUT of `gpu_check.sh --device cpu --tiny`, one seed per method."""
    out = tmp_path / "out"
    env = {**os.environ, "OUT": str(out), "WORK": str(tmp_path / "work"), "PYTHON": sys.executable,
           "TABLE_SEEDS": "1", **env}
    env.pop("DATA_ROOT", None)  # --tiny writes its own tiny MNIST
    result = subprocess.run(["bash", str(REPO / "scripts" / "gpu_check.sh"), "--device", "cpu",
                             "--tiny"], env=env, capture_output=True, text=True, timeout=timeout)
    return result.returncode, result.stdout[-3000:] + result.stderr[-3000:], out


def statuses(out: Path) -> dict[str, str]:
    """summary.txt: every file there, each plain and flat, and one status line per step."""
    assert {p.name for p in out.iterdir()} == FILES
    assert all(p.is_file() and re.fullmatch(r"[A-Za-z0-9._-]+", p.name) for p in out.iterdir())
    lines = (out / "summary.txt").read_text().splitlines()[2:]  # after the two header lines
    return dict(re.split(r"\s+", line, maxsplit=1) for line in lines)


def test_a_tiny_run_writes_every_steps_results(tmp_path):
    code, output, out = gpu_check(tmp_path)
    assert code == 0, output
    status = statuses(out)
    assert list(status) == [*STEPS, "gpu_check"]
    assert all(status[s].startswith("skipped: --tiny leaves torch.compile out")
               for s in COMPILE_STEPS)
    assert status["cuda_tests"].startswith("ok")  # none run here: each marked and skipped
    timed = [s for s in STEPS if s not in COMPILE_STEPS and s != "cuda_tests"]
    assert all(re.fullmatch(r"ok, \d+ s", status[s]) for s in timed), status
    assert "CUDA available: False" in (out / "env.txt").read_text()
    bench = (out / "bench.txt").read_text()
    assert all(re.search(rf"^mnist {dtype}, per DFAD iteration .*: plain [\d.]+ ms, phase "
                         r"kernels [\d.]+ ms", bench, re.M) for dtype in ("fp32", "bf16"))
    assert all(re.search(rf"^mnist +{mode} +4 +[\d.]+", bench, re.M)
               for mode in ("reference", "fp32"))
    assert "deterministic=False benchmark=True" in bench  # the autotune step
    runs = (out / "mnist_runs.txt").read_text()
    for run in [*(f"table2/{m}-s1" for m in METHODS), "bf16/DFAD-s1", "teacher (README command)"]:
        assert re.search(rf"===== {re.escape(run)}: exit 0 after \d+ s", runs), run
    work = tmp_path / "work"
    (config,) = json.loads((work / "bf16/DFAD-s1/log/DFAD-mnist.config.json").read_text()).values()
    assert config["amp"] == "bf16"
    # The table: every method's best beside the paper, from its CSV row.
    results = (out / "mnist_results.txt").read_text()
    for method in METHODS:
        (run,) = read_csv_runs(work / f"table2/{method}-s1/log/{method}-mnist.csv")
        row = next(line for line in results.splitlines()
                   if line.startswith(f"| {method.replace('_', '-')} |"))
        assert f"| {max(run.values):.4f} ± 0.0000 |" in row and row.endswith("| 1 |"), row
    with tarfile.open(out / "mnist_logs.tar.gz") as tar:
        assert "table2/DAFL-s1/log/DAFL-mnist.metrics.jsonl" in tar.getnames()


def test_a_used_up_budget_skips_steps_and_says_so(tmp_path):
    code, output, out = gpu_check(tmp_path, BUDGET_S="0")
    assert code == 0, output
    status = statuses(out)  # a skipped step still leaves its file, saying why
    assert status["env"].startswith("ok")  # always recorded: it says what the rest ran on
    for name in ("mnist_start", "cuda_tests", "upsample_conv", "bench", "bench_cudnn_autotune"):
        assert re.fullmatch(r"skipped: needs about \d+ s, 0 s of the 0 s budget left",
                            status[name]), (name, status[name])
    assert status["mnist_wait"].startswith("skipped: no MNIST runs")


def test_a_missing_teacher_file_is_one_line(tmp_path):
    code, output, _ = gpu_check(tmp_path, timeout=60, TEACHER_CKPT=str(tmp_path / "none.pt"))
    assert code == 2 and output.strip().splitlines() == [
        f"error: TEACHER_CKPT={tmp_path / 'none.pt'} does not exist "
        "(unset it to train the teacher here)"]
