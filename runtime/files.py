"""The files a run reads and writes: checkpoints as plain state_dicts (the original's format),
every write atomic, every load `weights_only=True`, one lock per run folder."""
from __future__ import annotations

import fcntl
import hashlib
import os
import secrets
import shlex
import shutil
import sys
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import IO

import torch
from torch import nn

from runtime.errors import UserError


def companion_path(ckpt: str | Path, tag: str) -> str:
    """A file that travels with a checkpoint: `x.pt` -> `x-<tag>.pt` (generator, state)."""
    return f"{Path(ckpt).with_suffix('')}-{tag}.pt"


def _write_tmp(path: Path, write: Callable[[IO[bytes]], object]) -> str:
    """A complete temporary file next to `path`; a failed write (a full disk) is one line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = str(path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        with open(tmp, "xb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, (OSError, RuntimeError)):  # torch's zip writer raises RuntimeError
            free = shutil.disk_usage(path.parent).free / 2**20
            raise UserError(f"cannot write {path} ({err}; {free:.0f} MiB free on its disk): the "
                            "file there, if any, is the last complete one") from err
        raise
    return tmp


def write_all_atomic(items: Iterable[tuple[str | Path, Callable[[IO[bytes]], object]]]) -> None:
    """Files that belong together (a best student and its generator): every one is written in
    full before the first takes its place, so a failed write replaces none, a kill never leaves
    half a file."""
    written: list[tuple[str, Path]] = []
    try:
        for path, write in items:
            written.append((_write_tmp(Path(path), write), Path(path)))
    except BaseException:
        for tmp, _ in written:
            os.unlink(tmp)
        raise
    for tmp, path in written:
        os.replace(tmp, path)


def save_atomic(*items: tuple[object, str | Path]) -> None:
    """torch.save each (object, path) with `write_all_atomic`."""
    write_all_atomic((path, lambda f, obj=obj: torch.save(obj, f)) for obj, path in items)


def write_text_atomic(path: str | Path, text: str) -> None:
    write_all_atomic([(path, lambda f: f.write(text.encode()))])


def remove_stale_tmp(*paths: str | Path) -> None:
    """Temporary files of writes to `paths` that a kill interrupted; called under the lock."""
    for path in map(Path, paths):
        for tmp in path.parent.glob(f".{path.name}.*.tmp"):
            tmp.unlink(missing_ok=True)


def file_sha256(path: str | Path) -> str:
    """A file's content hash: a resume compares it, so a moved teacher is still the same."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_tensors(path: str | Path, what: str) -> object:
    """torch.load(weights_only=True) on the CPU; a file it cannot read is one line. We never
    retry with weights_only=False, which would run whatever code the file holds."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{what} {path} is a directory: pass the .pt file in it")
    if not path.is_file():
        raise UserError(f"{what} not found: {path}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for corrupt or foreign files
        reason = (err.strerror if isinstance(err, OSError) and err.strerror else
                  "not a PyTorch checkpoint of tensors (corrupt, truncated, or another kind of "
                  "file): write it again, or pass another one")
        raise UserError(f"cannot read {what} {path}: {reason}") from err


def load_weights(model: nn.Module, path: str | Path) -> nn.Module:
    """Strict load that names what differs (keys, shapes, a class head of another dataset)
    in one line instead of a traceback."""
    state = load_tensors(path, "checkpoint")
    if not isinstance(state, Mapping) or not all(torch.is_tensor(v) for v in state.values()):
        raise UserError(f"{path} is not a state_dict (expected a mapping of names to tensors)")
    expected = model.state_dict()
    name = type(model).__name__
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k}: checkpoint {list(state[k].shape)} vs model {list(expected[k].shape)}"
              for k in expected if k in state and state[k].shape != expected[k].shape]
    if not (missing or unexpected or shapes):
        model.load_state_dict(state, strict=True)
        return model
    weights = [k for k, v in expected.items() if k.endswith("weight") and v.dim() >= 2]
    head = weights[-1] if weights else ""
    module = head.rpartition(".")[0]
    differing = {k.rpartition(".")[0] for k in expected
                 if k in state and state[k].shape != expected[k].shape}
    if (head and not missing and not unexpected and differing == {module}
            and list(expected)[-1].rpartition(".")[0] == module):
        raise UserError(f"checkpoint {path} has a {state[head].shape[0]}-class head, the model "
                        f"({name}) has {expected[head].shape[0]} classes ({shapes[0]}): is it a "
                        "checkpoint for another dataset? pass one trained on this script's dataset")
    problems = ([f"shape mismatch {'; '.join(shapes[:3])}"] if shapes else []) + (
        [f"missing keys {missing[:3]}"] if missing else []) + (
        [f"unexpected keys {unexpected[:3]}"] if unexpected else [])
    raise UserError(f"checkpoint {path} does not match {name}: {', '.join(problems)} (is it a "
                    "checkpoint of another architecture or dataset?)")


def load_teacher(model: nn.Module, path: str | Path) -> nn.Module:
    """The fixed teacher: strict load, eval mode, no parameter gradients
    (docs/original-release.md#gradient-hygiene, FIX)."""
    if not Path(path).exists():
        raise UserError(f"teacher checkpoint not found: {path} (train one with train_teacher.py, "
                        "put the authors' released teachers in checkpoint/teacher/, or pass "
                        "--ckpt)")
    load_weights(model, path)
    return model.requires_grad_(False).eval()


_LOCKS: dict[Path, int] = {}  # held until this process ends, however it ends


def lock_run(path: str | Path) -> None:
    """Refuse a second run that would write the same files, naming the one that holds them.
    A POSIX record lock (lockf): it dies with this process, so a killed run never blocks the
    next, even while its data-loader workers wind down."""
    path = Path(path).absolute()
    if path in _LOCKS:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.read(fd, 4096).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise UserError(f"another run is writing this run's files ({holder}): wait for it, stop "
                        "it, or run from another folder") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()}: {shlex.join([sys.executable, *sys.argv])}\n".encode())
    _LOCKS[path] = fd


def ensure_writable(*folders: str | Path) -> None:
    """Fail at start, in one line, when an output folder cannot be created or written."""
    for folder in folders:
        try:
            Path(folder).mkdir(parents=True, exist_ok=True)
            probe = Path(folder) / f".write-test-{os.getpid()}"
            probe.touch()
            probe.unlink()
        except OSError as err:
            raise UserError(f"cannot write to the output folder {folder}/ ({err.strerror}): run "
                            "from a folder where checkpoint/ and log/ can be written") from err
