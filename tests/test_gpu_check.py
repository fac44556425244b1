"""scripts/gpu_check.sh --device cpu --tiny end to end (a bash script: a subprocess), so the GPU
check cannot rot: every step writes its file under OUT and one summary line, a step past its
deadline is stopped and says so, and the same command again continues."""
import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
STEPS = ["env", "tests", "mnist", "bench", "results"]
METHODS = ("DAFL", "DFAD")


def gpu_check(tmp_path: Path, **env: str) -> tuple[int, str, dict[str, str]]:
    """Exit code, output and summary lines ({step: status}) of `gpu_check.sh --device cpu
    --tiny` with one seed, in tmp_path/out and tmp_path/work."""
    env = {**os.environ, "OUT": str(tmp_path / "out"), "WORK": str(tmp_path / "work"),
           "PYTHON": sys.executable, "SEEDS": "1", **env}
    env.pop("DATA_ROOT", None)  # --tiny writes its own tiny MNIST
    result = subprocess.run(["bash", str(REPO / "scripts" / "gpu_check.sh"), "--device", "cpu",
                             "--tiny"], env=env, capture_output=True, text=True, timeout=300)
    lines = (tmp_path / "out" / "summary.txt").read_text().splitlines()[1:]  # after the header
    return (result.returncode, result.stdout + result.stderr,
            dict(re.split(r"\s+", line, maxsplit=1) for line in lines))


def test_a_tiny_run_writes_every_steps_results(tmp_path):
    code, output, status = gpu_check(tmp_path)
    assert code == 0, output
    assert list(status) == STEPS and all(re.fullmatch(r"ok, \d+ s", s) for s in status.values())
    out, work = tmp_path / "out", tmp_path / "work"
    assert {p.name for p in out.iterdir()} == {
        "summary.txt", *(f"{s}.txt" for s in STEPS), "mnist_teacher.txt", "mnist_logs.tar.gz"}
    assert "device: cpu" in (out / "env.txt").read_text()
    assert "skipped" in (out / "tests.txt").read_text()  # CUDA tests, collected and skipped
    bench = (out / "bench.txt").read_text()
    assert all(re.search(rf"^mnist +{mode} +4 +[\d.]+ \(", bench, re.M)
               for mode in ("reference", "fp32")), bench
    runs = (out / "mnist.txt").read_text()
    assert all(f"===== {m}-s1: exit 0" in runs for m in METHODS), runs
    # The table: each method's best epoch beside the paper.
    results = (out / "results.txt").read_text()
    for method in METHODS:
        lines = (work / f"{method}-s1/log/{method}-mnist.metrics.jsonl").read_text().splitlines()
        best = max(json.loads(line)["acc"] for line in lines)
        row = next(line for line in results.splitlines() if line.startswith(f"| {method} |"))
        assert f"| {best:.4f} ± 0.0000 |" in row, row
    with tarfile.open(out / "mnist_logs.tar.gz") as tar:
        assert "./DAFL-s1/log/DAFL-mnist.metrics.jsonl" in tar.getnames()


def test_a_step_past_its_deadline_is_stopped_and_the_same_command_finishes_it(tmp_path):
    code, output, status = gpu_check(tmp_path, STEPS="mnist", MNIST_S="1")
    assert code == 0, output
    assert re.fullmatch(r"stopped at its deadline, \d+ s", status["mnist"]), status
    runs = (tmp_path / "out" / "mnist.txt").read_text()
    assert "the teacher did not finish (exit 124): run again to continue it" in runs
    code, output, status = gpu_check(tmp_path, STEPS="mnist")
    assert code == 0 and status["mnist"].startswith("ok"), output
    runs = (tmp_path / "out" / "mnist.txt").read_text()
    assert all(f"===== {m}-s1: exit 0" in runs for m in METHODS), runs


def test_a_missing_teacher_file_is_one_line(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path / "out"), "TEACHER_CKPT": str(tmp_path / "none.pt")}
    result = subprocess.run(["bash", str(REPO / "scripts" / "gpu_check.sh")], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and result.stderr.splitlines() == [
        f"error: TEACHER_CKPT={tmp_path / 'none.pt'} does not exist "
        "(unset it to train the teacher here)"]
    assert not (tmp_path / "out").exists()  # nothing started
