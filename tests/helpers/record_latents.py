"""Run a DFAD script and append every latent batch it draws to <out>/latents-rank<R>.bin.

    python tests/helpers/record_latents.py <out> <script.py> [args...]

Under torchrun each rank records its own stream (the whole batch, before its slice is taken), so
a test can compare what every rank drew, across a stop and a resume, with a single process.
"""
from __future__ import annotations

import os
import runpy
import sys
from pathlib import Path

import torch


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        sys.exit(f"usage: {os.path.basename(__file__)} <out> <script.py> [args...]")
    out, script = Path(argv[0]), argv[1]
    sys.argv = [script, *argv[2:]]
    # As `python script.py` does: the script's own folder comes first on sys.path.
    sys.path[0] = os.path.dirname(os.path.abspath(script))
    from engine import dfad

    path = out / f"latents-rank{os.environ.get('RANK', '0')}.bin"
    draw = dfad.sample_noise

    def recorded(batch_size: int, nz: int, device: torch.device) -> torch.Tensor:
        z = draw(batch_size, nz, device)
        with open(path, "ab") as f:
            f.write(z.cpu().numpy().tobytes())
        return z

    dfad.sample_noise = recorded
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
