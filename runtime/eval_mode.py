"""One way to put networks in eval mode for a block and back: evaluation, sample images and the
generator-health measurement all need it, and DFAD's BatchNorm behaviour depends on the mode."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn


@contextmanager
def eval_mode(*modules: nn.Module) -> Iterator[None]:
    """Eval mode inside the block; afterwards (also on an error) every module is back in the
    mode it had, so a caller in the middle of training never finds BatchNorm switched."""
    modes = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        yield
    finally:
        for m, mode in zip(modules, modes, strict=True):
            m.train(mode)
