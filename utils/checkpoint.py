"""Checkpoints as plain state_dicts (the original's format), written atomically, loaded safely."""
from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from utils.misc import UserError

_UMASK = os.umask(0)
os.umask(_UMASK)


def save_atomic(obj: object, path: str | Path) -> None:
    """Write a temporary file in the same folder, then rename: a kill never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give it torch.save's usual mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_state_dict(path: str | Path) -> Mapping[str, torch.Tensor]:
    """Load a state_dict with weights_only=True; accepts the original release's plain dicts."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for corrupt or foreign files
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"cannot read checkpoint {path}: {first_line}") from err
    if not isinstance(state, Mapping) or not all(torch.is_tensor(v) for v in state.values()):
        raise UserError(f"{path} is not a state_dict (expected a mapping of names to tensors)")
    return state


def load_weights(model: nn.Module, path: str | Path) -> nn.Module:
    """Strict load that names the first mismatching keys and shapes instead of a traceback."""
    state = read_state_dict(path)
    expected = model.state_dict()
    name = type(model).__name__
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [
        f"{k}: checkpoint {list(state[k].shape)} vs model {list(expected[k].shape)}"
        for k in expected
        if k in state and state[k].shape != expected[k].shape
    ]
    problems = []
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
    """The fixed teacher: strict load, eval mode, no parameter gradients (SPEC §10.12 FIX)."""
    if not Path(path).is_file():
        raise UserError(
            f"teacher checkpoint not found: {path} (train one with train_teacher.py, or put the "
            "authors' released teachers in checkpoint/teacher/, or pass --ckpt)"
        )
    load_weights(model, path)
    model.requires_grad_(False)
    return model.to(device).eval()
