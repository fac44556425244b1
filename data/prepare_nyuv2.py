"""Export the 1449 NYUv2 RGB images as <out>/480_640/IMAGE/<i>.png (i = 0..1448, .mat order).

The original reads these PNGs but never says how they were made; this script makes them from
the official labelled dataset, `nyu_depth_v2_labeled.mat` (2.8 GB):

    python data/prepare_nyuv2.py --mat nyu_depth_v2_labeled.mat --out data/NYUv2

The file is MATLAB v7.3, i.e. HDF5. MATLAB stores arrays column-major, so the 480x640x3x1449
(H x W x C x N) MATLAB array `images` appears in HDF5 (row-major) order as N x 3 x 640 x 480,
that is N x C x W x H: one image is `images[i].transpose(2, 1, 0)`, read one at a time.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image


def export_images(mat_path: str | Path, out_root: str | Path, overwrite: bool = False) -> int:
    """Write every image of the .mat file; returns how many were written (existing ones are
    kept unless `overwrite`, so an interrupted export can simply be run again)."""
    import h5py  # only this script needs h5py

    out_dir = Path(out_root) / "480_640" / "IMAGE"
    out_dir.mkdir(parents=True, exist_ok=True)
    written = 0
    with h5py.File(mat_path, "r") as mat:
        images = mat.get("images")
        if images is None or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"{mat_path} has no N x 3 x W x H 'images' dataset: is it "
                             "nyu_depth_v2_labeled.mat?")
        for i in range(images.shape[0]):
            path = out_dir / f"{i}.png"
            if path.exists() and not overwrite:
                continue
            tmp = path.with_name(f".{path.name}.tmp")
            Image.fromarray(np.ascontiguousarray(images[i].transpose(2, 1, 0))).save(tmp, "PNG")
            tmp.replace(path)  # never leave half a PNG behind
            written += 1
            if (i + 1) % 100 == 0:
                print(f"{i + 1}/{images.shape[0]}", flush=True)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mat", default="data/NYUv2/nyu_depth_v2_labeled.mat",
                        help="the official labelled NYUv2 file (default: %(default)s)")
    parser.add_argument("--out", default="data/NYUv2",
                        help="the NYUv2 data root; images go to <out>/480_640/IMAGE "
                             "(default: %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="rewrite existing PNGs")
    args = parser.parse_args(argv)
    if not Path(args.mat).is_file():
        print(f"error: {args.mat} not found (the official NYU Depth V2 labelled dataset, "
              "nyu_depth_v2_labeled.mat): pass --mat", file=sys.stderr)
        return 1
    try:
        count = export_images(args.mat, args.out, args.overwrite)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {count} images to {Path(args.out) / '480_640' / 'IMAGE'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
