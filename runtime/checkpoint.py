"""Checkpoints as plain state_dicts (the original's format), written atomically, loaded safely."""
from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from torch import nn

from runtime.errors import UserError


def companion_path(ckpt: str | Path, tag: str) -> str:
    """A file that travels with a checkpoint: `x.pt` -> `x-<tag>.pt` (generator, state)."""
    return f"{Path(ckpt).with_suffix('')}-{tag}.pt"


def tmp_pattern(path: str | Path) -> str:
    """The glob of the temporary files `save_atomic` writes next to `path`."""
    return f".{Path(path).name}.*.tmp"


def _write_tmp(obj: object, path: Path) -> str:
    """`obj` in a complete temporary file next to `path`; a failed write (a full disk) is one
    line naming the path, and leaves no temporary file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not mkstemp, which makes 0600 files: created like open() creates them (0666 less the
    # umask), the file gets the mode torch.save(obj, path) would give it.
    tmp = str(path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
    except BaseException as err:
        os.unlink(tmp)
        if isinstance(err, (OSError, RuntimeError)):  # torch's zip writer: RuntimeError
            reason = ((err.strerror or str(err)) if isinstance(err, OSError)
                      else "the write stopped short")
            free = shutil.disk_usage(path.parent).free / 2**20
            raise UserError(f"cannot write {path} ({reason}; {free:.0f} MiB free on its disk): "
                            "the file there, if any, is the last complete one") from err
        raise
    return tmp


def save_atomic(obj: object, path: str | Path) -> None:
    """Write a temporary file in the same folder, then rename: a kill never leaves half a file."""
    save_all_atomic([(obj, path)])


def save_all_atomic(items: Iterable[tuple[object, str | Path]]) -> None:
    """Files that belong together (a best student and its generator): every temporary file is
    written before the first rename, so a failed write replaces none of them."""
    written: list[tuple[str, Path]] = []
    try:
        for obj, path in items:
            written.append((_write_tmp(obj, Path(path)), Path(path)))
    except BaseException:
        for tmp, _ in written:
            os.unlink(tmp)
        raise
    for tmp, path in written:
        os.replace(tmp, path)


def file_sha256(path: str | Path) -> str:
    """A file's content hash: what a resume compares, so a moved teacher is still the same."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_state_dict(path: str | Path) -> Mapping[str, torch.Tensor]:
    """Load a state_dict with weights_only=True; accepts the original release's plain dicts."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"checkpoint {path} is a directory: pass the .pt file in it")
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    state = load_tensors(path, "checkpoint")
    if not isinstance(state, Mapping) or not all(torch.is_tensor(v) for v in state.values()):
        raise UserError(f"{path} is not a state_dict (expected a mapping of names to tensors)")
    return state


def load_tensors(path: Path, what: str) -> object:
    """torch.load(weights_only=True) on the CPU; a file it cannot read is one UserError line
    ("cannot read <what> <path>: why"), with torch's warnings about odd pickles kept quiet."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for corrupt or foreign files
        raise UserError(f"cannot read {what} {path}: {load_failure(err)}") from err


def load_failure(err: Exception) -> str:
    """Why torch.load refused a file, in one line. A file-level error (permissions, a folder)
    says so; anything else is a file torch cannot read as tensors, whatever its unpickler
    happened to trip on (random bytes give a different message each time, some of them torch's
    advice to load with weights_only=False, which would run whatever code the file holds: we
    never do)."""
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return "not a PyTorch checkpoint of tensors (corrupt, truncated, or another kind of file)"


def _head_sizes(
    state: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor]
) -> tuple[str, int, int] | None:
    """(module, checkpoint classes, model classes) when the model ends in an output layer whose
    weight differs from the checkpoint's in the first dimension only; else None."""
    keys = list(expected)
    weights = [k for k in keys if k.endswith("weight") and expected[k].dim() >= 2]
    if not weights or weights[-1] not in state:
        return None
    key = weights[-1]
    module = key.rpartition(".")[0]
    if any(k.rpartition(".")[0] != module for k in keys[keys.index(key):]):
        return None  # something (e.g. a generator's final BatchNorm) follows: not a class head
    ours, theirs = expected[key].shape, state[key].shape
    if len(ours) != len(theirs) or ours[0] == theirs[0] or ours[1:] != theirs[1:]:
        return None
    return module, theirs[0], ours[0]


def load_weights(model: nn.Module, path: str | Path) -> nn.Module:
    """Strict load that names the first mismatching keys and shapes instead of a traceback."""
    state = read_state_dict(path)
    expected = model.state_dict()
    name = type(model).__name__
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched_keys = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    mismatched = [
        f"{k}: checkpoint {list(state[k].shape)} vs model {list(expected[k].shape)}"
        for k in mismatched_keys
    ]
    problems = []
    head = _head_sizes(state, expected)
    if head is not None:
        module, theirs, ours = head
        sizes = f"has a {theirs}-class head, the model ({name}) has {ours} classes"
        if not missing and not unexpected and all(
            k.rpartition(".")[0] == module for k in mismatched_keys
        ):
            # Only the output layer differs: most likely a teacher of another dataset.
            raise UserError(f"checkpoint {path} {sizes} ({mismatched[0]}): "
                            "is it a checkpoint for another dataset?")
        problems.append(f"it {sizes}")
    if mismatched:
        problems.append("shape mismatch " + "; ".join(mismatched[:3]))
    if missing:
        problems.append(f"missing keys {missing[:3]}")
    if unexpected:
        problems.append(f"unexpected keys {unexpected[:3]}")
    if problems:
        raise UserError(
            f"checkpoint {path} does not match {name}: {', '.join(problems)}"
            " (is it a checkpoint of another architecture or dataset?)"
        )
    model.load_state_dict(state, strict=True)
    return model


def load_teacher(model: nn.Module, path: str | Path, device: torch.device) -> nn.Module:
    """The fixed teacher: strict load, eval mode, no parameter gradients
    (docs/original-release.md#gradient-hygiene, FIX)."""
    if not Path(path).is_file() and not Path(path).is_dir():
        raise UserError(
            f"teacher checkpoint not found: {path} (train one with train_teacher.py, or put the "
            "authors' released teachers in checkpoint/teacher/, or pass --ckpt)"
        )
    load_weights(model, path)
    model.requires_grad_(False)
    return model.to(device).eval()
