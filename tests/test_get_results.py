"""get_results.py: mean +- std of each run's best epoch, next to the paper's number."""
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "get_results.py"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def test_summary_and_paper_row(tmp_path):
    log = tmp_path / "DFAD-mnist.csv"
    log.write_text("0.5,0.98,0.97\n0.6,0.975,0.985\n")
    result = run("--log", str(log), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    bests = [0.98, 0.985]
    assert f"Mean={np.mean(bests):.4f}, Std={np.std(bests):.4f}, Best=0.9850" in result.stdout
    assert "last per run: 0.9700, 0.9850" in result.stdout
    assert "paper (mnist, acc): DFAD 0.983 ± 0.002, teacher 0.989" in result.stdout


def test_missing_log_is_one_clear_line(tmp_path):
    result = run("--log", "log/DFAD-cifar10.csv", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: no such log: log/DFAD-cifar10.csv (DFAD scripts write log/DFAD-<dataset>.csv)")
