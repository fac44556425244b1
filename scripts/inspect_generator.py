"""Look at a saved generator through its teacher's eyes: one PNG (not in the original).

The experiment comes from the file name (`<dataset>-<student>-generator.pt`) or --experiment; its
DFAD script's `build(args)` makes the generator and the teacher, reading the test set under
--data_root as a run does. Classification: a row per teacher class with its share of the samples
and its most confident ones. Segmentation: image / teacher prediction pairs, and a legend.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python scripts/inspect_...py`

import numpy as np
import torch
from PIL import Image, ImageDraw

import DFAD_caltech101
import DFAD_camvid_deeplab
import DFAD_cifar
import DFAD_mnist
import DFAD_nyu_deeplab
from dataset import camvid, nyu
from reporting.generator_health import class_histogram, normalized_entropy
from reporting.sample_grids import write_image
from runtime.cli import help_example, int_at_least, run_main
from runtime.device import setup
from runtime.errors import UserError
from runtime.files import load_weights

LABEL_W = 80  # classification: the class index and its share of the samples
CHUNK = 64  # samples per forward pass: bounded memory for the 128 px networks
EXPERIMENTS = {"mnist": (DFAD_mnist, []), "cifar10": (DFAD_cifar, ["--dataset", "cifar10"]),
               "cifar100": (DFAD_cifar, ["--dataset", "cifar100"]),
               "caltech101": (DFAD_caltech101, []), "camvid": (DFAD_camvid_deeplab, []),
               "nyuv2": (DFAD_nyu_deeplab, [])}  # name -> the DFAD script and its flags
CLASS_NAMES = {"camvid": camvid.CLASSES, "nyuv2": nyu.CLASSES}  # the segmentation legend
SCRIPT_FLAGS = ("ckpt", "nz", "data_root", "device")  # passed on to the DFAD script


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], **help_example(
        ".venv/bin/python -m scripts.inspect_generator "
        "checkpoint/student/mnist-lenet5_half-generator.pt --data_root data",
        ["results/inspect-mnist-lenet5_half-generator.png"]))
    parser.add_argument("generator", help="a <student>-generator.pt the DFAD scripts save")
    parser.add_argument("--experiment", choices=tuple(EXPERIMENTS),
                        help="the DFAD script it comes from (default: from the file name)")
    for flag in SCRIPT_FLAGS:  # checked by the DFAD script's parser
        parser.add_argument(f"--{flag}", help="passed on to the DFAD script (default: its own)")
    parser.add_argument("--samples", type=int_at_least(1), help="default: 512, segmentation 8")
    parser.add_argument("--per_class", type=int_at_least(1), default=8,
                        help="classification: samples shown per teacher class (default: 8)")
    parser.add_argument("--seed", type=int, default=0, help="latent seed (default: 0)")
    parser.add_argument("--out", help="PNG to write (default: results/inspect-<file stem>.png)")
    return parser


@torch.no_grad()
def generate(generator: torch.nn.Module, teacher: torch.nn.Module, n: int, nz: int, seed: int,
             device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(samples, teacher logits) for n latents from a private seeded RNG."""
    z = torch.randn(n, nz, 1, 1, generator=torch.Generator().manual_seed(seed))
    pairs = [(x.float().cpu(), teacher(x).float().cpu())
             for x in map(generator, z.to(device).split(CHUNK))]
    return torch.cat([x for x, _ in pairs]), torch.cat([t for _, t in pairs])


def classification_picture(images: np.ndarray, logits: torch.Tensor, per_class: int) -> Image.Image:
    """A row per class: its index and share of all samples, then its most confident samples."""
    _, h, w, _ = images.shape
    confidence, pred = logits.softmax(dim=1).max(dim=1)
    canvas = Image.new("RGB", (LABEL_W + per_class * w, logits.shape[1] * h))
    for c, share in enumerate(class_histogram(logits).tolist()):
        ImageDraw.Draw(canvas).text((4, c * h + h // 2 - 5), f"{c}: {share:.1%}")
        members = (pred == c).nonzero().flatten()
        best = members[confidence[members].argsort(descending=True)][:per_class]
        for k, i in enumerate(best.tolist()):
            canvas.paste(Image.fromarray(images[i]), (LABEL_W + k * w, c * h))
    return canvas


def segmentation_picture(images: np.ndarray, logits: torch.Tensor,
                         decode_target: Callable[[np.ndarray], np.ndarray],
                         classes: Sequence[str]) -> Image.Image:
    """Image / teacher prediction pairs, then a legend: class colour, name, share of pixels."""
    n, h, w, _ = images.shape
    canvas = Image.new("RGB", (2 * w + 200, max(n * h, 16 * len(classes) + 8)))
    for i, pred in enumerate(logits.argmax(dim=1).numpy()):
        canvas.paste(Image.fromarray(images[i]), (0, i * h))
        canvas.paste(Image.fromarray(decode_target(pred)), (w, i * h))
    draw = ImageDraw.Draw(canvas)
    colours = decode_target(np.arange(len(classes))).tolist()
    for c, (name, share) in enumerate(zip(classes, class_histogram(logits), strict=True)):
        top = 4 + 16 * c
        draw.rectangle((2 * w + 8, top, 2 * w + 20, top + 12), fill=tuple(colours[c]))
        draw.text((2 * w + 26, top), f"{name} {share:.1%}")
    return canvas


def main(args: argparse.Namespace) -> Path:
    name = args.experiment or Path(args.generator).name.split("-")[0]
    if name not in EXPERIMENTS:
        raise UserError(f"cannot tell the experiment from the file name {args.generator}: pass "
                        f"--experiment ({', '.join(EXPERIMENTS)})")
    module, flags = EXPERIMENTS[name]
    for flag in SCRIPT_FLAGS:
        flags = flags + ([f"--{flag}", getattr(args, flag)] if getattr(args, flag) else [])
    script_args = module.get_parser().parse_args(flags)
    device = setup(script_args)
    exp = module.build(script_args)
    generator = load_weights(exp.generator, args.generator).to(device).eval()
    n = args.samples or (8 if name in CLASS_NAMES else 512)
    images, logits = generate(generator, exp.teacher.to(device), n, script_args.nz, args.seed,
                              device)
    rgb = exp.panels.to_unit(images).clamp(0, 1).expand(-1, 3, -1, -1).mul(255).round().byte()
    rgb = rgb.permute(0, 2, 3, 1).numpy()
    picture = (segmentation_picture(rgb, logits, exp.panels.decode_target, CLASS_NAMES[name])
               if name in CLASS_NAMES else classification_picture(rgb, logits, args.per_class))
    out = Path(args.out or f"results/inspect-{Path(args.generator).stem}.png")
    write_image(picture, out)
    print(f"wrote {out} ({picture.width}x{picture.height}): {n} samples of the {name} generator, "
          f"teacher class entropy {normalized_entropy(class_histogram(logits)):.3f} "
          "(1 = balanced, 0 = one class)")
    return out


if __name__ == "__main__":
    run_main(get_parser, main)
