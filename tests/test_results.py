"""What a run leaves for the results: its CSV row records every flag that defines it, and
get_results.py summarises rows apart when their flags differ (--log), filters them (--where) and
prints Table 2's MNIST column from run folders (--table mnist)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import DFAD_mnist
import get_results
from engine.dfad import distill
from reporting.results_csv import append_csv_row, read_csv_runs
from runtime.device import setup
from runtime.state import RUN_CONTROL
from tests.helpers.mnist_fixtures import write_random_teacher, write_tiny_mnist

CSV = "log/DFAD-mnist.csv"


def mnist_args(*flags: str, parser=None):
    parser = parser or DFAD_mnist.get_parser()
    return parser.parse_args(["--epochs", "2", "--epoch_itrs", "1", "--batch_size", "8",
                              "--device", "cpu", "--num_workers", "0", "--no_visdom", *flags])


def fresh_run(*flags: str) -> list[float]:
    """A finished DFAD_mnist run in the current folder; the last one's files moved aside first,
    as a user starting another run in the same folder does."""
    shutil.rmtree("checkpoint/student", ignore_errors=True)
    return DFAD_mnist.main(mnist_args(*flags))


def test_the_csv_row_records_every_flag_that_defines_the_run(mnist_run):
    """A flag added to the parser (a new method's knob) reaches the row with no other change;
    the run-control flags stay out; epochs and processes are in."""
    parser = DFAD_mnist.get_parser()
    parser.add_argument("--my_knob", type=float, default=0.5)
    history = DFAD_mnist.main(mnist_args("--my_knob", "0.25", parser=parser))
    (row,) = read_csv_runs(CSV)
    assert row.values == history
    assert row.flags["my_knob"] == 0.25
    assert (row.flags["epochs"], row.flags["processes"], row.flags["batch_size"]) == (2, 1, 8)
    assert not RUN_CONTROL & row.flags.keys() - {"epochs"}
    config = json.loads(Path("log/DFAD-mnist.config.json").read_text())
    assert config[row.run_id]["my_knob"] == 0.25  # the config file is keyed by the run id


def test_get_results_groups_runs_by_their_flags_and_where_filters(mnist_run, capsys):
    """A --stu_ckpt run is not a scratch run, an --original_numerics run not a default one:
    each is summarised in a group of its own; seeds are pooled."""
    bests = [max(fresh_run("--seed", seed)) for seed in ("1", "2")]
    shutil.copy("checkpoint/student/mnist-lenet5_half.pt", "start.pt")
    fresh_run("--stu_ckpt", "start.pt")
    fresh_run("--original_numerics")
    capsys.readouterr()
    assert get_results.main(["--log", CSV]) == 0
    out = capsys.readouterr().out
    assert "runs: 4 in 3 group(s) of the same flags" in out
    assert "[1] 2 run(s): original_numerics=false stu_ckpt=null (seeds 1, 2)" in out
    assert f"Mean={np.mean(bests):.4f}, Std={np.std(bests):.4f}" in out
    assert '1 run(s): original_numerics=false stu_ckpt="start.pt" (seeds 1)' in out
    assert "1 run(s): original_numerics=true stu_ckpt=null (seeds 1)" in out

    assert get_results.main(["--log", CSV, "--where", "original_numerics=true"]) == 0
    out = capsys.readouterr().out
    assert "runs: 1 in 1 group(s) of the same flags, 3 left out by --where" in out
    assert get_results.main(["--log", CSV, "--where", "stu_ckpt=null", "seed=2"]) == 0
    assert f"best per run: {bests[1]:.4f}\n" in capsys.readouterr().out
    assert get_results.main(["--log", CSV, "--where", "epochs=7"]) == 1
    assert capsys.readouterr().err.startswith("error: none of the 4 runs in log/DFAD-mnist.csv")


def test_csv_rows_by_run_id_old_rows_and_bad_rows(tmp_path, capsys):
    """A longer resume replaces its run's row in place; rows of plain numbers (before run ids)
    still count, in a group of their own; a bad row is one warning; a run with a NaN is left out
    of the summary with one."""
    path = tmp_path / CSV
    path.parent.mkdir()
    path.write_bytes(b"0.5,0.6\n\xff\xfe\n")
    append_csv_row(path, [0.7], "a", {"seed": 1})
    append_csv_row(path, [0.1, float("nan")], "b", {"seed": 2})
    append_csv_row(path, [0.7, 0.8], "a", {"seed": 1})
    assert [(r.run_id, len(r.values)) for r in read_csv_runs(path)] == [("", 2), ("a", 2), ("b", 2)]
    assert capsys.readouterr().err.count("line 2 is not a run") == 1
    assert get_results.main(["--log", str(path)]) == 0
    out, err = capsys.readouterr()
    assert err.count("warning: ") == 2 and "run b has a value that is not a number" in err
    assert "runs: 2 in 2 group(s)" in out and "[1] 1 run(s): (seeds 1)\nbest per run: 0.8000" in out
    assert "[2] 1 run(s): no flags recorded" in out and "paper (mnist, acc): DFAD 0.983" in out


class Stop(Exception):
    """Ends a run between epochs, as a kill would."""


def stopped_run(epochs: int, stop_after: int) -> None:
    """A run of `epochs` that stops after `stop_after` epochs: its metrics file and config say
    how far it got, its CSV has no row. Uses the extension point: the experiment's evaluate."""
    args = mnist_args("--epochs", str(epochs), "--seed", "3")
    device = setup(args)
    exp = DFAD_mnist.build(args)
    evaluate, calls = exp.evaluate, []

    def evaluate_then_stop(*a):
        calls.append(1)
        if len(calls) > stop_after:
            raise Stop
        return evaluate(*a)

    exp.evaluate = evaluate_then_stop
    with pytest.raises(Stop):
        distill(args, exp, device)


def metrics_accs(folder: Path) -> list[float]:
    lines = (folder / "log/DFAD-mnist.metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["acc"] for line in lines]


def test_table_mnist_from_run_folders(tmp_path, monkeypatch, capsys):
    """Two finished DFAD runs and a stopped one, each in its own folder as
    scripts/run_table2_mnist.sh leaves them, and a teacher's metrics file."""
    histories = []
    for name in ("DFAD-s1", "DFAD-s2", "DFAD-s3"):
        folder = tmp_path / "runs" / name
        write_tiny_mnist(folder / "data", n_train=16, n_test=8)
        write_random_teacher(folder)
        monkeypatch.chdir(folder)
        if name == "DFAD-s3":
            stopped_run(epochs=3, stop_after=2)
        else:
            histories.append(fresh_run("--seed", name[-1]))
    teacher = tmp_path / "runs/teacher/log/teacher-mnist-lenet5.metrics.jsonl"
    teacher.parent.mkdir(parents=True)
    teacher.write_text('{"epoch": 1, "acc": 0.98}\n{"epoch": 2, "acc": 0.989}\n')
    capsys.readouterr()
    assert get_results.main(["--table", "mnist", "--root", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    rows = {line.split("|")[1].strip(): line for line in out.splitlines()
            if line.startswith("| ") and "Method" not in line}
    assert list(rows) == ["Teacher", "KD-ORI", "KD-REL", "KD-UNR", "RANDOM", "DAFL", "DFAD"]
    bests, lasts = [max(h) for h in histories], [h[-1] for h in histories]
    stopped = metrics_accs(tmp_path / "runs/DFAD-s3")
    assert len(stopped) == 2
    assert rows["DFAD"] == (
        f"| DFAD | 0.983 ± 0.002 | {np.mean(bests):.4f} ± {np.std(bests):.4f} | "
        f"{np.mean(lasts):.4f} ± {np.std(lasts):.4f} | 2; unfinished: epoch 2/3, best so far "
        f"{max(stopped):.4f} |")
    assert rows["Teacher"].startswith("| Teacher | 0.989 | 0.9890 ± 0.0000 |")
    assert "not reproduced" in rows["KD-REL"] and rows["RANDOM"].endswith("| 0 |")
    assert (tmp_path / "runs/table2-mnist.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert torch.load(tmp_path / "runs/DFAD-s3/checkpoint/student/mnist-lenet5_half-state.pt",
                      weights_only=True)["epochs_done"] == 2
