"""Look at a saved generator through its teacher's eyes: one PNG (not in the original).

    python -m scripts.inspect_generator checkpoint/student/mnist-lenet5_half-generator.pt

Run from the repository root. The experiment comes from the file name the DFAD scripts write,
`<dataset>-<student>-generator.pt`, or from --experiment; its DFAD script's `build(args)` makes
the generator and the teacher (no dataset needed). Classification: one row per teacher class
with up to --per_class of the samples the teacher assigns to it, most confident first, and a bar
with the class's share of all samples (the thin mark is a uniform share). Segmentation: image /
teacher prediction pairs in the dataset's class colours, and each class's share of pixels.
"""
from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import ModuleType
from unittest import mock

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torch import nn
from torch.utils.data import DataLoader

import DFAD_caltech101
import DFAD_camvid_deeplab
import DFAD_cifar
import DFAD_mnist
import DFAD_nyu_deeplab
from dataset import camvid, nyu
from engine import dfad_segmentation
from engine.dfad import Experiment
from reporting.generator_health import class_histogram, normalized_entropy
from reporting.sample_grids import save_png
from runtime.cli import int_at_least, run_main
from runtime.device import setup
from runtime.errors import UserError
from runtime.files import load_weights

LABEL_W = 40  # class index column of the classification grid
BAR_W = 160  # histogram column: the bar, then the share as text
BAR_LEN = 100
LEGEND_W = 200  # class colour legend of the segmentation picture
LEGEND_ROW_H = 16
TEXT_H = 11  # PIL's default font
CHUNK = 64  # samples per forward pass: bounded memory for the 128 px networks
TEXT, BAR, MARK = (230, 230, 230), (70, 130, 220), (230, 80, 80)


# name -> the DFAD script and its flags that make the experiment
EXPERIMENTS: dict[str, tuple[ModuleType, list[str]]] = {
    "mnist": (DFAD_mnist, []),
    "cifar10": (DFAD_cifar, ["--dataset", "cifar10"]),
    "cifar100": (DFAD_cifar, ["--dataset", "cifar100"]),
    "caltech101": (DFAD_caltech101, []),
    "camvid": (DFAD_camvid_deeplab, []),
    "nyuv2": (DFAD_nyu_deeplab, []),
}
CLASS_NAMES = {"camvid": camvid.CLASSES, "nyuv2": nyu.CLASSES}  # for the segmentation legend


@contextmanager
def without_test_set(module: ModuleType) -> Iterator[None]:
    """The script's `build(args)` with an empty test set: a generator is inspected where no
    dataset need be on disk."""
    with ExitStack() as stack:
        for where in (module, dfad_segmentation):
            if hasattr(where, "get_dataloader"):
                stack.enter_context(mock.patch.object(
                    where, "get_dataloader", lambda args, train: (None, DataLoader([]))))
        yield


def build(name: str, args: argparse.Namespace
          ) -> tuple[argparse.Namespace, Experiment, torch.device]:
    """The experiment as its DFAD script builds it (teacher loaded strictly, frozen), from the
    script's own defaults and this command's --ckpt, --nz and --device."""
    module, flags = EXPERIMENTS[name]
    flags = [*flags, "--device", args.device, *(["--ckpt", args.ckpt] if args.ckpt else []),
             *(["--nz", str(args.nz)] if args.nz else [])]
    script_args = module.get_parser().parse_args(flags)
    device = setup(script_args)
    with without_test_set(module):
        return script_args, module.build(script_args), device


def experiment_name(path: str | Path, given: str | None) -> str:
    """--experiment, or the dataset the DFAD file name starts with."""
    if given is not None:
        return given
    prefix = Path(path).name.split("-")[0]
    if prefix not in EXPERIMENTS:
        raise UserError(f"cannot tell the experiment from the file name {Path(path).name}: "
                        f"pass --experiment ({', '.join(EXPERIMENTS)})")
    return prefix


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Write a PNG of what a saved DFAD generator "
                                                 "makes, as its teacher sees it")
    parser.add_argument("generator", help="a <student>-generator.pt the DFAD scripts save")
    parser.add_argument("--experiment", choices=tuple(EXPERIMENTS), default=None,
                        help="the DFAD script it comes from (default: from the file name)")
    parser.add_argument("--ckpt", default=None,
                        help="teacher state_dict (default: the experiment script's --ckpt)")
    parser.add_argument("--nz", type=int_at_least(1), default=None,
                        help="latent size (default: the experiment script's --nz)")
    parser.add_argument("--samples", type=int_at_least(1), default=None,
                        help="generated samples (default: 512 for classification, 8 image / "
                             "prediction pairs for segmentation)")
    parser.add_argument("--per_class", type=int_at_least(1), default=8,
                        help="classification: samples shown per teacher class (default: 8)")
    parser.add_argument("--seed", type=int, default=0, help="latent seed (default: 0)")
    parser.add_argument("--out", default=None,
                        help="PNG to write (default: results/inspect-<generator file stem>.png)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="auto = cuda when available (default: auto)")
    return parser


@torch.no_grad()
def generate(generator: nn.Module, teacher: nn.Module, n: int, nz: int, seed: int,
             device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(samples, teacher logits) for n latents from a private seeded RNG (the global stream is
    not touched); the caller puts both networks in eval mode."""
    rng = torch.Generator(device="cpu").manual_seed(seed)
    z = torch.randn(n, nz, 1, 1, generator=rng)
    images, logits = [], []
    for chunk in z.split(CHUNK):
        x = generator(chunk.to(device))
        images.append(x.float().cpu())
        logits.append(teacher(x).float().cpu())
    return torch.cat(images), torch.cat(logits)


def _rgb(images: torch.Tensor, to_unit: Callable[[torch.Tensor], torch.Tensor]) -> np.ndarray:
    """N x H x W x 3 uint8 (grey images repeated over the channels)."""
    unit = to_unit(images).clamp(0, 1)
    if unit.shape[1] == 1:
        unit = unit.repeat(1, 3, 1, 1)
    return unit.mul(255).round().byte().permute(0, 2, 3, 1).numpy()


def classification_picture(images: np.ndarray, logits: torch.Tensor,
                           per_class: int) -> Image.Image:
    """One row per class: label, its most confident samples, its share of all samples."""
    _, h, w, _ = images.shape
    num_classes = logits.shape[1]
    confidence, pred = logits.softmax(dim=1).max(dim=1)
    hist = class_histogram(logits)
    canvas = Image.new("RGB", (LABEL_W + per_class * w + BAR_W, num_classes * h))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    scale = BAR_LEN / max(hist.max().item(), 1e-12)  # the largest share fills the bar
    for c in range(num_classes):
        top = c * h
        draw.text((4, top + h // 2 - TEXT_H // 2), str(c), fill=TEXT, font=font)
        members = (pred == c).nonzero().flatten()
        order = members[confidence[members].argsort(descending=True)][:per_class]
        for k, i in enumerate(order.tolist()):
            canvas.paste(Image.fromarray(images[i]), (LABEL_W + k * w, top))
        left = LABEL_W + per_class * w + 4
        share = hist[c].item()
        if share > 0:
            draw.rectangle((left, top + h // 4, left + round(share * scale), top + 3 * h // 4),
                           fill=BAR)
        mark = left + round(scale / num_classes)
        if mark <= left + BAR_LEN:
            draw.line((mark, top + h // 4 - 2, mark, top + 3 * h // 4 + 2), fill=MARK)
        draw.text((left + BAR_LEN + 6, top + h // 2 - TEXT_H // 2), f"{share:.1%}", fill=TEXT,
                  font=font)
    return canvas


def segmentation_picture(images: np.ndarray, logits: torch.Tensor,
                         decode_target: Callable[[np.ndarray], np.ndarray],
                         classes: Sequence[str]) -> Image.Image:
    """Image / teacher prediction pairs, then a legend: class colour, name, share of pixels."""
    n, h, w, _ = images.shape
    pred = logits.argmax(dim=1)
    hist = class_histogram(logits)
    height = max(n * h, len(classes) * LEGEND_ROW_H + 8)
    canvas = Image.new("RGB", (2 * w + LEGEND_W, height))
    for i in range(n):
        canvas.paste(Image.fromarray(images[i]), (0, i * h))
        canvas.paste(Image.fromarray(decode_target(pred[i].numpy())), (w, i * h))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    colours = decode_target(np.arange(len(classes)))
    for c, name in enumerate(classes):
        top = 4 + c * LEGEND_ROW_H
        draw.rectangle((2 * w + 8, top, 2 * w + 20, top + 12), fill=tuple(colours[c].tolist()),
                       outline=TEXT)
        draw.text((2 * w + 26, top), f"{name} {hist[c].item():.1%}", fill=TEXT, font=font)
    return canvas


def main(args: argparse.Namespace) -> Path:
    name = experiment_name(args.generator, args.experiment)
    script_args, exp, device = build(name, args)
    generator = load_weights(exp.generator, args.generator).to(device).eval()
    segmentation = name in CLASS_NAMES
    n = args.samples or (8 if segmentation else 512)
    images, logits = generate(generator, exp.teacher.to(device), n, script_args.nz, args.seed,
                              device)
    rgb = _rgb(images, exp.panels.to_unit)
    if segmentation:
        picture = segmentation_picture(rgb, logits, exp.panels.decode_target, CLASS_NAMES[name])
    else:
        picture = classification_picture(rgb, logits, args.per_class)
    out = Path(args.out or f"results/inspect-{Path(args.generator).stem}.png")
    save_png(np.asarray(picture).transpose(2, 0, 1) / 255.0, out)
    entropy = normalized_entropy(class_histogram(logits))
    print(f"wrote {out} ({picture.width}x{picture.height}): {n} samples of the {name} "
          f"generator, teacher class entropy {entropy:.3f} (1 = balanced, 0 = one class)")
    return out


if __name__ == "__main__":
    run_main(get_parser, main)
