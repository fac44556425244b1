"""The life of a run (docs/stopping-and-resuming.md): resume bit-identical after a stop or a kill,
the refusals that keep a run's files, the lock, the configs kept, --test_only."""
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import DFAD_mnist
import engine.dfad
from network.lenet import LeNet5Half
from reporting.results_csv import read_csv_runs
from runtime.cli import run_main
from tests.helpers.local import free_port, snapshot
from tests.helpers.mnist_fixtures import write_random_teacher, write_tiny_mnist
from tests.helpers.waiting import wait_for_file

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
STATE = "checkpoint/student/mnist-lenet5_half-state.pt"
BEST = "checkpoint/student/mnist-lenet5_half.pt"
TINY = ["--epoch_itrs", "1", "--batch_size", "4", "--test_batch_size", "4", "--num_workers",
        "0", "--data_root", "data", "--scheduler", "--step_size", "2"]


def prepare(folder: Path) -> Path:
    write_tiny_mnist(folder / "data", n_train=16, n_test=10)  # every class: acc > 0
    write_random_teacher(folder)
    return folder


@pytest.fixture
def work(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(prepare(tmp_path))
    return tmp_path


def parser_with_my_flag():
    """Flags added to the script, in no list: recorded with their run all the same."""
    parser = DFAD_mnist.get_parser()
    parser.add_argument("--my_flag", type=float, default=1.0)
    parser.add_argument("--my_list", type=int, nargs="+", default=[1])
    return parser


def run(*flags: str, visdom: bool = False, parser=None) -> list[float]:
    args = (parser or DFAD_mnist.get_parser()).parse_args(
        [*TINY, *flags, *([] if visdom else ["--no_visdom"])])
    return DFAD_mnist.main(args)


def run_cli(capsys, *flags: str, get_parser=DFAD_mnist.get_parser) -> tuple[int, str, str]:
    """The script as its command line runs it: exit code, stdout, stderr."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        run_main(get_parser, DFAD_mnist.main, [*TINY, "--no_visdom", *flags])
    out, err = capsys.readouterr()
    return stop.value.code, out, err


def one_line(err: str) -> bool:
    return len(err.strip().splitlines()) == 1 and err.strip().startswith("error: ")


def same(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return torch.equal(a, b) if torch.is_tensor(a) else a == b


def assert_same_run(ours: Path, theirs: Path) -> None:
    """Weights, optimizers, schedulers, RNGs, history and best of the last state, the best
    student and generator, and the CSV row's flags and values: all equal."""
    a, b = (torch.load(p / STATE, weights_only=True) for p in (ours, theirs))
    assert a["epochs_done"] == 3 and a.keys() == b.keys()
    for key in a.keys() - {"config", "run_id"}:  # `resume` is in the config
        assert same(a[key], b[key]), key
    for name in (BEST, BEST.replace(".pt", "-generator.pt")):
        assert same(*(torch.load(p / name, weights_only=True) for p in (ours, theirs))), name
    rows = [[(r.values, r.flags) for r in read_csv_runs(p / "log/DFAD-mnist.csv")]
            for p in (ours, theirs)]
    assert len(rows[0]) == 1 and len(rows[0][0][0]) == 3 and rows[0] == rows[1]


def stop_in_epoch(monkeypatch, epoch: int) -> None:
    """Ctrl-C in the middle of `epoch`."""
    train = engine.dfad.train_one_epoch

    def interrupted(*args, **kwargs):
        if args[8] == epoch:
            raise KeyboardInterrupt
        return train(*args, **kwargs)

    monkeypatch.setattr(engine.dfad, "train_one_epoch", interrupted)


def test_resume_after_an_epoch_end_is_bit_identical(tmp_path, monkeypatch):
    for name, runs in (("straight", [["--epochs", "3"]]),
                       ("resumed", [["--epochs", "2"], ["--resume", "--epochs", "3"]])):
        monkeypatch.chdir(prepare(tmp_path / name))
        for flags in runs:
            history = run(*flags)
    assert len(history) == 3
    assert_same_run(tmp_path / "resumed", tmp_path / "straight")


def script(folder: Path, *flags: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(REPO / "DFAD_mnist.py"), *TINY, "--no_visdom",
                             "--epochs", "3", "--epoch_itrs", "10", *flags], cwd=folder,
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_sigkill_in_epoch_2_then_resume_is_bit_identical(tmp_path):
    killed, straight = prepare(tmp_path / "killed"), prepare(tmp_path / "straight")
    reference, proc = script(straight), script(killed)
    wait_for_file(killed / STATE, proc)
    proc.kill()
    proc.wait()
    assert torch.load(killed / STATE, weights_only=True)["epochs_done"] == 1
    assert not (killed / "log/DFAD-mnist.csv").exists()
    resumed = script(killed, "--resume")
    outs = [finished.communicate(timeout=300) for finished in (resumed, reference)]
    assert resumed.returncode == reference.returncode == 0, outs
    assert f"resumed from {STATE}: 1 epochs done" in outs[0][0]
    assert_same_run(killed, straight)


@pytest.mark.slow
def test_ctrl_c_is_one_line_naming_resume_and_exit_code_130(tmp_path):
    proc = script(prepare(tmp_path))
    wait_for_file(tmp_path / STATE, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert len(err.strip().splitlines()) == 1 and "--resume" in err, err


def test_same_command_after_a_stop_is_refused_and_changes_nothing(work, monkeypatch, capsys):
    with monkeypatch.context() as patch:
        stop_in_epoch(patch, 2)
        code, _, err = run_cli(capsys, "--epochs", "3")
    assert code == 130 and "--resume" in err
    before = snapshot(work)
    code, _, err = run_cli(capsys, "--epochs", "3")
    assert code == 1 and one_line(err) and "--resume" in err
    assert snapshot(work) == before


def test_a_finished_run_run_again_or_resumed_writes_nothing(work, capsys):
    run("--epochs", "2")
    before = snapshot(work)
    for again in ([], ["--resume"]):
        capsys.readouterr()
        run("--epochs", "2", *again)
        assert "finished before" in capsys.readouterr().out
        assert snapshot(work) == before
    assert len(read_csv_runs("log/DFAD-mnist.csv")) == 1


def test_a_resume_to_fewer_epochs_than_done_is_refused(work, capsys):
    run("--epochs", "2")
    before = snapshot(work)
    code, _, err = run_cli(capsys, "--resume", "--epochs", "1")
    assert code == 1 and one_line(err) and "below the 2 epochs" in err
    assert snapshot(work) == before


def test_another_setting_after_a_finished_run_is_refused_not_skipped(work, capsys):
    run("--epochs", "1")
    before = snapshot(work)
    for again in ([], ["--resume"]):
        code, out, err = run_cli(capsys, "--epochs", "1", "--seed", "2", *again)
        assert code == 1 and one_line(err) and "--seed 1 -> 2" in err
        assert "finished before" not in out and snapshot(work) == before


def test_resume_from_another_state_file_never_overwrites_this_runs_state(work, capsys):
    run("--epochs", "1")
    Path("elsewhere").mkdir()
    shutil.copy(STATE, "elsewhere/x-state.pt")
    before = snapshot(work)
    code, _, err = run_cli(capsys, "--epochs", "2", "--resume", "elsewhere/x-state.pt")
    assert code == 1 and one_line(err) and "move it aside" in err
    assert snapshot(work) == before


def test_a_flag_accepted_for_compatibility_only_is_no_run_flag(work):
    run("--epochs", "1", "--momentum", "0.5")  # ignored: the student's momentum is fixed
    assert len(run("--epochs", "2", "--resume")) == 2
    (row,) = read_csv_runs("log/DFAD-mnist.csv")
    assert "lr_S" in row.flags and not any("momentum" in k for k in row.flags)


def test_a_resume_may_change_the_health_batch(work):
    run("--epochs", "1", "--health_batch", "0")
    assert len(run("--epochs", "2", "--resume")) == 2  # now measured, from a fresh batch


def test_a_best_checkpoint_without_its_state_is_refused(work, capsys):
    Path(BEST).parent.mkdir(parents=True)
    torch.save(LeNet5Half().state_dict(), BEST)
    before = snapshot(work)
    code, _, err = run_cli(capsys, "--epochs", "1")
    assert code == 1 and one_line(err) and "move it aside" in err
    assert snapshot(work) == before


def test_a_second_run_while_one_holds_the_lock_is_refused(work, capsys):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import time; from runtime.files import lock_run; "
         "lock_run('log/DFAD-mnist.lock'); print('locked', flush=True); time.sleep(120)"],
        cwd=work, env=ENV, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "locked\n"
        code, _, err = run_cli(capsys, "--epochs", "1")
    finally:
        holder.kill()
        holder.wait()
    assert code == 1 and one_line(err) and f"pid {holder.pid}" in err
    assert not Path(STATE).exists() and not Path("log/DFAD-mnist.config.json").exists()
    assert len(run("--epochs", "1")) == 1  # a killed holder leaves no lock behind


def test_every_run_keeps_its_config(work, monkeypatch):
    monkeypatch.setattr("runtime.state.time.strftime", lambda _: "20250101-000000")  # one second
    run("--epochs", "1")
    Path("checkpoint/student").rename("checkpoint/first-run")
    run("--epochs", "1", "--lr_S", "0.02")
    runs = json.loads(Path("log/DFAD-mnist.config.json").read_text())
    assert sorted(config["lr_S"] for config in runs.values()) == [0.01, 0.02]
    ids = {torch.load(p, weights_only=True)["run_id"]
           for p in ("checkpoint/first-run/mnist-lenet5_half-state.pt", STATE)}
    assert ids == runs.keys()


def test_test_only_tests_the_runs_best_student_and_writes_nothing(work, capsys):
    visdom = ["--visdom_port", str(free_port())]
    history = run("--epochs", "3", *visdom, visdom=True)
    assert Path("log/DFAD-mnist.visdom.log").stat().st_size > 0
    before = snapshot(work)
    capsys.readouterr()
    assert run("--epochs", "3", "--test_only", *visdom, visdom=True) == [max(history)]
    out = capsys.readouterr().out
    best = next(json.loads(line) for line in Path("log/DFAD-mnist.metrics.jsonl").open()
                if json.loads(line)["acc"] == max(history))
    assert f"Test ({BEST}): acc={best['acc']:.4f} loss={best['loss']:.4f}" in out
    assert snapshot(work) == before


def test_test_only_without_a_trained_student_is_one_line(work, capsys):
    code, _, err = run_cli(capsys, "--test_only")
    assert code == 1 and one_line(err) and "--stu_ckpt" in err


def test_a_resume_with_other_flags_is_refused_new_flags_included(work, capsys):
    run("--epochs", "1", parser=parser_with_my_flag())
    before = snapshot(work)
    for changed in (["--lr_S", "0.02"], ["--my_flag", "2"], ["--my_list", "1", "2"]):
        code, _, err = run_cli(capsys, "--resume", "--epochs", "2", *changed,
                               get_parser=parser_with_my_flag)
        assert code == 1 and one_line(err) and f"{changed[0]} " in err, err
    assert snapshot(work) == before
    resumed = run("--resume", "--epochs", "2", "--my_flag", "1", "--my_list", "1",
                  parser=parser_with_my_flag())
    assert len(resumed) == 2  # the flags unchanged: resumed


def test_a_resume_with_another_teacher_is_refused(work, capsys):
    run("--epochs", "1")
    write_random_teacher(work, seed=1)  # the same path, other weights
    before = snapshot(work)
    code, _, err = run_cli(capsys, "--resume", "--epochs", "2")
    assert code == 1 and one_line(err) and "teacher" in err
    assert snapshot(work) == before


def test_a_stale_temporary_file_of_an_interrupted_save_is_removed(work):
    stale = Path("checkpoint/student/.mnist-lenet5_half-state.pt.abcd.tmp")
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"half a state")
    run("--epochs", "1")
    assert not stale.exists() and Path(STATE).is_file()
