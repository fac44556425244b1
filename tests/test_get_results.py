"""get_results.py: mean +- std of each run's best epoch, next to the paper's number."""
import subprocess
import sys
from pathlib import Path

import numpy as np

from tables.csv_rows import append_csv_row
from tables.paper_table import collect

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


def write_run(folder: Path, method: str, accs: list[float], finished: bool, epochs: int) -> None:
    log = folder / "log"
    log.mkdir(parents=True)
    (log / f"{method}-mnist.config.json").write_text(f'{{"epochs": {epochs}, "epoch_itrs": 50}}')
    lines = [f'{{"run_id": "x", "epoch": {e}, "acc": {a}}}' for e, a in enumerate(accs, 1)]
    (log / f"{method}-mnist.metrics.jsonl").write_text("\n".join(lines) + "\n")
    if finished:
        (log / f"{method}-mnist.csv").write_text(",".join(map(str, accs)) + "\n")


def test_mnist_table_every_row_finished_and_unfinished_runs(tmp_path):
    write_run(tmp_path / "DFAD-s1", "DFAD", [0.5, 0.98, 0.97], True, 3)
    write_run(tmp_path / "DFAD-s2", "DFAD", [0.6, 0.975, 0.985], True, 3)
    write_run(tmp_path / "DFAD-s3", "DFAD", [0.4, 0.9], False, 3)
    write_run(tmp_path / "KD_ORI-s1", "KD_ORI", [0.9, 0.99], True, 2)
    (tmp_path / "teacher/log").mkdir(parents=True)
    (tmp_path / "teacher/log/teacher-mnist-lenet5.metrics.jsonl").write_text(
        '{"epoch": 1, "acc": 0.98}\n{"epoch": 2, "acc": 0.989}\n')
    result = run("--table", "mnist", "--root", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = {line.split("|")[1].strip(): line for line in result.stdout.splitlines()
            if line.startswith("| ") and "Method" not in line}
    assert list(rows) == ["Teacher", "KD-ORI", "KD-REL", "KD-UNR", "RANDOM", "DAFL", "DFAD"]
    bests, lasts = [0.98, 0.985], [0.97, 0.985]
    assert rows["DFAD"] == (
        f"| DFAD | 0.983 ± 0.002 | {np.mean(bests):.4f} ± {np.std(bests):.4f} | "
        f"{np.mean(lasts):.4f} ± {np.std(lasts):.4f} | 2; unfinished: epoch 2/3, best so far "
        "0.9000 |")
    assert rows["Teacher"].startswith("| Teacher | 0.989 | 0.9890 ± 0.0000 |")
    assert "not reproduced" in rows["KD-REL"] and rows["RANDOM"].endswith("| 0 |")
    png = tmp_path / "table2-mnist.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The unfinished run's curve goes to the plot too (dashed).
    assert collect(tmp_path, "DFAD").partial == [[(1, 0.4), (2, 0.9)]]


def test_mnist_table_without_runs_is_one_line(tmp_path):
    result = run("--table", "mnist", "--root", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "no MNIST runs under" in result.stderr


FLAGS = {"dataset": "mnist", "batch_size": 512, "epochs": 40, "epoch_itrs": 50, "lr_S": 0.01}


def test_runs_with_other_flags_are_summarised_apart(tmp_path):
    log = tmp_path / "DFAD-mnist.csv"
    log.write_text("0.1,0.2\n")  # a row from before run ids: still read
    append_csv_row(log, [0.9, 0.98], "a", {**FLAGS, "seed": 1})
    append_csv_row(log, [0.5, 0.3], "smoke", {**FLAGS, "epochs": 2, "seed": 1})
    append_csv_row(log, [0.97, 0.96], "b", {**FLAGS, "seed": 2})
    result = run("--log", str(log), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "runs: 4 in 3 group(s) of the same flags" in out
    assert "[1] 2 run(s): epochs=40 (seeds 1, 2)" in out
    bests = [0.98, 0.97]
    assert f"Mean={np.mean(bests):.4f}, Std={np.std(bests):.4f}, Best=0.9800 over 2 run(s)" in out
    assert "[3] 1 run(s): no flags recorded (rows from before run ids)" in out
    assert (f"reproduced: [1] {np.mean(bests):.3f} ± {np.std(bests):.3f} over 2 run(s); "
            "[2] 0.500 ± 0.000 over 1 run(s); [3] 0.200 ± 0.000 over 1 run(s)") in out

    only = run("--log", str(log), "--where", "epochs=40", "batch_size=512", cwd=tmp_path)
    assert only.returncode == 0, only.stderr
    assert "runs: 2 in 1 group(s) of the same flags, 2 left out by --where" in only.stdout
    assert "[1] 2 run(s): batch_size=512 dataset=\"mnist\" epoch_itrs=50 epochs=40" in only.stdout

    none = run("--log", str(log), "--where", "epochs=7", cwd=tmp_path)
    assert none.returncode == 1 and none.stderr.count("\n") == 1
    assert none.stderr.startswith("error: none of the 4 runs in ")


def test_a_row_that_is_not_a_run_is_skipped_with_a_warning_naming_its_line(tmp_path):
    log = tmp_path / "DFAD-mnist.csv"
    log.write_text("0.5,oops\n")
    result = run("--log", str(log), cwd=tmp_path)
    assert result.returncode == 1 and result.stderr.count("\n") == 2
    warning, error = result.stderr.splitlines()
    assert warning.startswith(f"warning: {log} line 1 is not a run (could not convert")
    assert error == f"error: {log} holds no runs yet"


def test_mnist_table_reads_rows_with_run_ids(tmp_path):
    write_run(tmp_path / "DFAD-s1", "DFAD", [0.5, 0.98], False, 2)
    append_csv_row(tmp_path / "DFAD-s1/log/DFAD-mnist.csv", [0.5, 0.98], "x",
                   {**FLAGS, "seed": 1})
    result = run("--table", "mnist", "--root", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "| DFAD | 0.983 ± 0.002 | 0.9800 ± 0.0000 | 0.9800 ± 0.0000 | 1 |" in result.stdout
