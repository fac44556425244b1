"""Bad inputs and faults, as a new user meets them: each case is one command (a process of its
own, forked from a warm interpreter: tests/helpers/forked_runs.py) in a folder that already
holds a finished teacher and a finished DFAD run (tiny MNIST). Every case asserts the
exit code, one truthful line on stderr (none for the cases that succeed) with no traceback, and
that every file in the folder before is unchanged after (sha256). The lock files are left out:
each run that gets as far as taking the lock writes its pid into it."""
from __future__ import annotations

import hashlib
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from network.lenet import LeNet5Half
from tests.helpers.forked_runs import ForkedRunner
from tests.helpers.mnist_fixtures import write_random_teacher, write_tiny_mnist
from tests.helpers.waiting import wait_for_file

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
TINY = ["--device", "cpu", "--num_workers", "0", "--no_visdom", "--data_root", "data",
        "--test_batch_size", "20"]
DFAD = ["DFAD_mnist.py", *TINY, "--epochs", "2", "--epoch_itrs", "1", "--batch_size", "4"]
TEACHER = ["train_teacher.py", *TINY, "--epochs", "1", "--batch_size", "8"]
TEACHER_STATE = "checkpoint/teacher/mnist-lenet5-state.pt"
STUDENT_STATE = "checkpoint/student/mnist-lenet5_half-state.pt"
CSV = "log/DFAD-mnist.csv"
GOOD_ROW = 'run=good,"{""seed"": 1}",0.5,0.9\n'


RUNNER: ForkedRunner | None = None


@pytest.fixture(scope="module", autouse=True)
def runner(tmp_path_factory) -> Iterator[None]:
    """One warm interpreter for the module's runs (tests/helpers/forked_runs.py)."""
    global RUNNER
    RUNNER = ForkedRunner(ENV, tmp_path_factory.mktemp("warm"))
    yield
    RUNNER.close()
    RUNNER = None


def run(argv: list[str], cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    """`python <REPO/argv[0]> argv[1:]` in `cwd`: forked from the warm interpreter, or a fresh
    one when `kwargs` (e.g. a preexec_fn) need subprocess.run."""
    argv = [str(REPO / argv[0]), *argv[1:]]
    if not kwargs:
        return RUNNER.run(argv, cwd)
    return subprocess.run([sys.executable, *argv], cwd=cwd, env=ENV, capture_output=True,
                          text=True, timeout=300, **kwargs)


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A folder after `run_mnist.sh`, in tiny: a 1-epoch teacher, a 2-epoch DFAD run."""
    work = tmp_path_factory.mktemp("finished")
    write_tiny_mnist(work / "data", n_train=16, n_test=20)
    for argv in (TEACHER, DFAD):
        result = run(argv, work)
        assert result.returncode == 0, result.stderr
    return work


def hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.suffix != ".lock"}


def append(path: str, data: bytes) -> Callable[[Path], None]:
    def setup(work: Path) -> None:
        with open(work / path, "ab") as f:
            f.write(data)
    return setup


def write(path: str, data: bytes) -> Callable[[Path], None]:
    def setup(work: Path) -> None:
        (work / path).parent.mkdir(parents=True, exist_ok=True)
        (work / path).write_bytes(data)
    return setup


def swap(a: str, b: str) -> Callable[[Path], None]:
    def setup(work: Path) -> None:
        pa, pb = work / a, work / b
        tmp = pa.with_name("swap")
        pa.rename(tmp)
        pb.rename(pa)
        tmp.rename(pb)
    return setup


def truncate(path: str, size: int) -> Callable[[Path], None]:
    def setup(work: Path) -> None:
        with open(work / path, "r+b") as f:
            f.truncate(size)
    return setup


def csv_is_a_folder(work: Path) -> None:
    (work / CSV).unlink()
    (work / CSV).mkdir()


def other_teacher(work: Path) -> None:
    write_random_teacher(work / "other", seed=7)


def moved_teacher(work: Path) -> None:
    (work / "checkpoint/teacher/mnist-lenet5.pt").rename(work / "moved-teacher.pt")


def a_student_file(work: Path) -> None:
    torch.save(LeNet5Half().state_dict(), work / "student.pt")


RAW = "data/MNIST/raw"
RANDOM = random.Random(0).randbytes(4096)  # fixed: tests/test_checkpoint.py fuzzes


@dataclass(frozen=True)
class Case:
    id: str
    argv: list[str]
    code: int
    stderr: str | None  # a fragment of the one stderr line; None: nothing on stderr
    setup: Callable[[Path], None] | None = None
    stdout: str | None = None  # a fragment stdout must hold
    never: str | None = None  # a fragment stderr must not hold


CASES = [
    # flags, one line from argparse (exit 2)
    Case("seed_negative", [*DFAD, "--seed", "-1"], 2, "--seed: must be >= 0, got -1"),
    Case("seed_beyond_numpy", [*DFAD, "--seed", str(2**32)], 2, "--seed: must be < 2**32"),
    Case("teacher_seed_negative", [*TEACHER, "--seed", "-1"], 2, "--seed: must be >= 0"),
    Case("epochs_zero", [*DFAD, "--epochs", "0"], 2, "--epochs: must be >= 1"),
    Case("batch_size_one", [*DFAD, "--batch_size", "1"], 2, "--batch_size: must be >= 2"),
    Case("save_every_zero", [*DFAD, "--save_every", "0"], 2, "--save_every: must be >= 1"),
    Case("unknown_flag", [*DFAD, "--epoch-itrs-typo", "3"], 2, "unrecognized arguments"),
    Case("bad_dataset", [*DFAD, "--dataset", "imagenet"], 2, "invalid choice: 'imagenet'"),
    # data files
    Case("mnist_swapped", DFAD, 1, "are the image and label files swapped?",
         swap(f"{RAW}/t10k-images-idx3-ubyte", f"{RAW}/t10k-labels-idx1-ubyte")),
    Case("mnist_truncated", DFAD, 1, "t10k-images-idx3-ubyte is truncated or corrupt",
         truncate(f"{RAW}/t10k-images-idx3-ubyte", 5000), never="not found"),
    Case("mnist_header_only", DFAD, 1, "is not an idx file",
         truncate(f"{RAW}/t10k-labels-idx1-ubyte", 2)),
    Case("teacher_mnist_swapped", TEACHER, 1, "swapped",
         swap(f"{RAW}/train-images-idx3-ubyte", f"{RAW}/train-labels-idx1-ubyte")),
    Case("mnist_missing", [*DFAD, "--data_root", "nowhere"], 1, "MNIST not found in nowhere"),
    # the teacher checkpoint
    Case("ckpt_directory", [*DFAD, "--ckpt", "checkpoint/teacher"], 1, "is a directory"),
    Case("ckpt_random_bytes", [*DFAD, "--ckpt", "random.pt"], 1,
         "not a PyTorch checkpoint of tensors", write("random.pt", RANDOM),
         never="weights_only"),
    Case("ckpt_empty", [*DFAD, "--ckpt", "empty.pt"], 1, "cannot read checkpoint empty.pt",
         write("empty.pt", b"")),
    Case("ckpt_missing", [*DFAD, "--ckpt", "nope.pt"], 1, "teacher checkpoint not found"),
    Case("ckpt_a_student", [*DFAD, "--ckpt", "student.pt"], 1, "does not match LeNet5",
         a_student_file),
    Case("teacher_ckpt_directory", [*TEACHER, "--ckpt", "checkpoint"], 1, "is a directory"),
    # state files and resume rules
    Case("teacher_state_to_dfad", [*DFAD, "--resume", TEACHER_STATE], 1,
         "it is a teacher's state"),
    Case("dfad_state_to_teacher", [*TEACHER, "--resume", STUDENT_STATE], 1,
         "it is a DFAD run's state"),
    Case("resume_random_bytes", [*DFAD, "--resume", "random.pt"], 1, "cannot read state file",
         write("random.pt", RANDOM), never="weights_only"),
    Case("resume_directory", [*DFAD, "--resume", "checkpoint/student"], 1, "is a directory"),
    Case("resume_plain_checkpoint", [*DFAD, "--resume", "checkpoint/teacher/mnist-lenet5.pt"],
         1, "is not a resumable state"),
    Case("resume_other_flags", [*DFAD, "--resume", "--batch_size", "8"], 1,
         "belongs to a run with other flags (--batch_size 4 -> 8)"),
    Case("resume_fewer_epochs", [*DFAD, "--resume", "--epochs", "1"], 1,
         "--epochs 1 is below the 2 epochs"),
    Case("resume_other_teacher",
         [*DFAD, "--resume", "--ckpt", "other/checkpoint/teacher/mnist-lenet5.pt"], 1,
         "is not the teacher", other_teacher),
    Case("resume_finished", [*DFAD, "--resume"], 0, None,
         stdout="finished before: 2 of 2 epochs"),
    Case("resume_moved_teacher", [*DFAD, "--resume", "--ckpt", "moved-teacher.pt"], 0, None,
         moved_teacher, stdout="finished before"),
    Case("teacher_resume_finished", [*TEACHER, "--resume"], 0, None,
         stdout="teacher finished before: 1 of 1 epochs"),
    # results that could not be written: said before any training
    Case("csv_is_a_folder", DFAD, 1, "cannot write results to log/DFAD-mnist.csv",
         csv_is_a_folder),
    Case("log_is_a_file", DFAD, 1, "cannot write to the output folder",
         lambda work: (shutil.rmtree(work / "log"), (work / "log").write_text("x"))),
    # get_results.py: bad rows are skipped with a warning naming the file and line
    Case("results_flags_not_object", ["get_results.py", "--log", CSV], 0,
         "log/DFAD-mnist.csv line 2 is not a run (its flags cell is not a JSON object",
         append(CSV, b'run=x,"[1, 2]",0.5\n'), stdout="runs: 1 in 1 group"),
    Case("results_row_without_values", ["get_results.py", "--log", CSV], 0,
         "line 2 is not a run (no values)", append(CSV, b'run=x,"{}"\n')),
    Case("results_not_utf8", ["get_results.py", "--log", CSV], 0,
         "line 2 is not a run (not UTF-8 text)", append(CSV, b"run=\xff\xfe,\x80\n")),
    Case("results_bad_json", ["get_results.py", "--log", CSV], 0, "line 2 is not a run",
         append(CSV, b'run=x,"{not json",0.5\n')),
    Case("results_nan", ["get_results.py", "--log", CSV], 0,
         "run nan-run has nan at epoch 2: left out", append(CSV, b'run=nan-run,"{}",0.5,nan\n'),
         stdout="runs: 1 in 1 group"),
    Case("results_only_bad_rows", ["get_results.py", "--log", "bad.csv"], 1, None,
         write("bad.csv", b"not,a,run\n")),  # two lines: the warning and the error, below
    Case("results_missing_log", ["get_results.py", "--log", "nope.csv"], 1, "no such log"),
    Case("table_one_malformed_csv",
         ["get_results.py", "--table", "mnist", "--root", "runs", "--plot", "runs/t.png"], 0,
         "runs/KD_ORI-s1/log/KD_ORI-mnist.csv line 1 is not a run",
         lambda work: (write("runs/DFAD-s1/log/DFAD-mnist.csv", GOOD_ROW.encode())(work),
                       write("runs/KD_ORI-s1/log/KD_ORI-mnist.csv", b"run=x,{\n")(work)),
         stdout="DFAD"),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input(case: Case, finished: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    shutil.copytree(finished, work)
    if case.setup is not None:
        case.setup(work)
    before = hashes(work)
    result = run(case.argv, work)
    lines = result.stderr.splitlines()
    assert result.returncode == case.code, result.stderr + result.stdout[-2000:]
    assert "Traceback" not in result.stderr
    if case.id == "results_only_bad_rows":
        assert len(lines) == 2 and "line 1 is not a run" in lines[0]
        assert "holds no runs yet" in lines[1]
    elif case.stderr is None:
        assert lines == [], result.stderr
    else:
        assert len(lines) == 1, result.stderr
        assert case.stderr in lines[0], lines[0]
        if case.code:
            assert lines[0].startswith("error: ")
    if case.never is not None:
        assert case.never not in result.stderr
    if case.stdout is not None:
        assert case.stdout in result.stdout, result.stdout
    after = hashes(work)
    changed = [name for name in before if after.get(name) != before[name]]
    assert changed == [], f"changed or removed: {changed}"
    new = set(after) - set(before)
    if case.id == "table_one_malformed_csv":
        new -= {"runs/t.png"}
    assert new == set(), f"new files: {new}"


def test_cases_are_at_least_thirty() -> None:
    assert len(CASES) >= 30 and len({case.id for case in CASES}) == len(CASES)


@pytest.fixture
def empty(tmp_path: Path) -> Path:
    """A folder with tiny MNIST and a teacher, no run yet."""
    work = tmp_path / "empty"
    write_tiny_mnist(work / "data", n_train=16, n_test=20)
    write_random_teacher(work)
    return work


def test_a_nan_stop_names_no_state_file_this_run_did_not_write(finished, tmp_path):
    """A fresh start in a folder with an old run: the old run's state is no good state of it."""
    work = tmp_path / "work"
    shutil.copytree(finished, work)
    result = run([*DFAD, "--lr_S", "1e38", "--log_interval", "1"], work)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    assert "is nan: stopping; no state was saved yet" in line
    assert STUDENT_STATE not in line


def test_a_full_disk_is_one_line_and_the_best_pair_is_written_both_or_neither(empty):
    """A file-size limit (EFBIG, the way a full disk fails a write): the student (66 kB) fits,
    its generator (4 MB) does not, so neither replaces anything."""
    import resource
    import signal

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))

    result = run(DFAD, empty, preexec_fn=limit)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: cannot write checkpoint/student/mnist-lenet5_half")
    assert "MiB free on its disk" in line and "inline_container" not in line
    assert list((empty / "checkpoint/student").iterdir()) == []  # no student, no .tmp


def test_leftover_tmp_files_are_removed_at_the_next_start(finished, tmp_path):
    work = tmp_path / "work"
    shutil.copytree(finished, work)
    stale = [work / "checkpoint/student/.mnist-lenet5_half.pt.x1y2.tmp",
             work / "checkpoint/student/.mnist-lenet5_half-state.pt.z3.tmp"]
    for path in stale:
        path.write_bytes(b"half a save")
    keep = work / "checkpoint/student/.someone-else.pt.q.tmp"  # not this run's
    keep.write_bytes(b"x")
    result = run([*DFAD, "--resume"], work)
    assert result.returncode == 0, result.stderr
    assert "removed 2 temporary file(s) an interrupted save left" in result.stdout
    assert not any(path.exists() for path in stale) and keep.exists()


def test_a_resume_may_train_longer_and_the_run_keeps_one_row(finished, tmp_path):
    work = tmp_path / "work"
    shutil.copytree(finished, work)
    from tables.csv_rows import read_csv_runs
    (before,) = read_csv_runs(work / CSV)
    result = run([*DFAD, "--resume", "--epochs", "3"], work)
    assert result.returncode == 0, result.stderr
    (after,) = read_csv_runs(work / CSV)
    assert after.run_id == before.run_id and after.values[:2] == before.values
    assert len(after.values) == 3 and after.flags["epochs"] == 3
    again = run([*DFAD, "--resume", "--epochs", "3"], work)
    assert "finished before: 3 of 3 epochs" in again.stdout
    assert len(read_csv_runs(work / CSV)) == 1


def test_a_resume_writes_the_row_a_kill_lost(finished, tmp_path):
    """Killed between its last state and its CSV row: the resume writes the row, once."""
    work = tmp_path / "work"
    shutil.copytree(finished, work)
    (work / CSV).unlink()
    result = run([*DFAD, "--resume"], work)
    assert result.returncode == 0 and "its row was missing" in result.stdout
    from tables.csv_rows import read_csv_runs
    (row,) = read_csv_runs(work / CSV)
    assert len(row.values) == 2


def test_a_state_file_without_the_teacher_hash_still_resumes(finished, tmp_path):
    work = tmp_path / "work"
    shutil.copytree(finished, work)
    state = torch.load(work / STUDENT_STATE, weights_only=True)
    assert len(state.pop("teacher_sha256")) == 64
    torch.save(state, work / STUDENT_STATE)
    other_teacher(work)
    result = run([*DFAD, "--resume", "--epochs", "3", "--ckpt",
                  "other/checkpoint/teacher/mnist-lenet5.pt"], work)
    assert result.returncode == 0, result.stderr


def test_a_second_ctrl_c_stops_at_once_in_one_line(empty):
    import signal
    import time
    # As a user does: Ctrl-C, the run says it will stop after the step, Ctrl-C again. (Two
    # signals inside one long torch call reach Python as one, so the test waits for the line.)
    # Batches of 2048 make the step outlast the wait.
    proc = subprocess.Popen([sys.executable, str(REPO / "DFAD_mnist.py"), *DFAD[1:],
                             "--epochs", "50", "--epoch_itrs", "50", "--batch_size", "2048"],
                            cwd=empty, env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    wait_for_file(empty / "log/DFAD-mnist.config.json", proc, 120)  # training has started
    time.sleep(1)
    proc.send_signal(signal.SIGINT)
    first = ""
    while not first.strip():
        first = proc.stderr.readline()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGINT, err
    assert "Traceback" not in err
    lines = [line for line in (first + err).splitlines() if line]
    assert lines[0].startswith("SIGINT received: stopping after the current step")
    assert len(lines) == 2 and lines[1].startswith("second Ctrl-C: stopped at once"), err


def test_two_runs_in_one_folder_the_second_stops_at_once_naming_the_first(empty):
    """A real race: the first run holds the lock while it trains; the second stops in one line,
    changing nothing; once the first is killed (SIGKILL), its lock is gone with it."""
    import signal
    long = [sys.executable, str(REPO / "DFAD_mnist.py"), *DFAD[1:], "--epochs", "50",
            "--epoch_itrs", "50"]
    first = subprocess.Popen(long, cwd=empty, env=ENV, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    try:
        wait_for_file(empty / "log/DFAD-mnist.config.json", first, 120)
        before = hashes(empty)
        lock = (empty / "log/DFAD-mnist.lock").read_text()
        second = run([*DFAD, "--epochs", "50"], empty)
        assert second.returncode == 1 and "Traceback" not in second.stderr
        (line,) = second.stderr.splitlines()
        assert f"another run is writing this run's files (pid {first.pid}: " in line
        assert "DFAD_mnist.py" in line and "run from another folder" in line
        assert (empty / "log/DFAD-mnist.lock").read_text() == lock
        assert hashes(empty)["log/DFAD-mnist.config.json"] == before["log/DFAD-mnist.config.json"]
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=60)
    third = run([*DFAD, "--epochs", "1"], empty)
    assert third.returncode == 0, third.stderr


def test_a_port_answered_by_something_else_than_visdom_warns_once(empty):
    import socket
    import time
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind",
                               "127.0.0.1"], cwd=empty / "data", stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        argv = [arg for arg in DFAD if arg != "--no_visdom"]
        result = run([*argv, "--visdom_port", str(port)], empty)
    finally:
        server.terminate()
        server.wait(timeout=30)
    if "visdom is not installed" in result.stderr:
        pytest.skip("visdom is not installed")
    assert result.returncode == 0, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("warning: visdom server") and "is it a visdom server?" in line
