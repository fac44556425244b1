"""Look at a saved generator through its teacher's eyes: one PNG (not in the original).

    python -m scripts.inspect_generator checkpoint/student/mnist-lenet5_half-generator.pt

Run from the repository root. The experiment (generator and teacher architecture, default
teacher checkpoint, latent size) comes from the file name the DFAD scripts write,
`<dataset>-<student>-generator.pt`, or from --experiment. Classification: one row per teacher
class with up to --per_class of the samples the teacher assigns to it, most confident first, and
a bar with the class's share of all samples (the thin mark is a uniform share). Segmentation:
image / teacher prediction pairs in the dataset's class colours, and each class's share of pixels.
"""
from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torch import nn

import DFAD_caltech101
import DFAD_camvid_deeplab
import DFAD_cifar
import DFAD_mnist
import DFAD_nyu_deeplab
from dataloader import CIFAR_MEAN, CIFAR_STD
from dataset import camvid, nyu
from network import gan, lenet, resnet_8x, torchvision_resnet
from network.segmentation import deeplabv3_resnet50
from reporting.generator_health import class_histogram, normalized_entropy
from reporting.sample_grids import MINUS_ONE_TO_ONE, MNIST_TO_UNIT, Denormalize, save_png
from runtime.checkpoint import load_teacher, load_weights
from runtime.cli import int_at_least, run_main
from runtime.errors import UserError
from runtime.startup import resolve_device

LABEL_W = 40  # class index column of the classification grid
BAR_W = 160  # histogram column: the bar, then the share as text
BAR_LEN = 100
LEGEND_W = 200  # class colour legend of the segmentation picture
LEGEND_ROW_H = 16
TEXT_H = 11  # PIL's default font
CHUNK = 64  # samples per forward pass: bounded memory for the 128 px networks
TEXT, BAR, MARK = (230, 230, 230), (70, 130, 220), (230, 80, 80)


@dataclass(frozen=True)
class Experiment:
    """What a DFAD script builds, as far as its generator and teacher go."""

    teacher: Callable[[], nn.Module]
    generator: Callable[[int], nn.Module]  # nz -> generator
    teacher_ckpt: str
    nz: int
    to_unit: Callable[[torch.Tensor], torch.Tensor]
    decode_target: Callable[[np.ndarray], np.ndarray] | None = None  # segmentation only
    classes: Sequence[str] = ()


def _defaults(module: ModuleType, dataset: str | None = None) -> tuple[str, int]:
    """The script's own --ckpt and --nz defaults, so the two never drift apart."""
    parser = module.get_parser()
    ckpt = parser.get_default("ckpt") or module.teacher_ckpt(dataset)
    return ckpt, parser.get_default("nz")


def _experiments() -> dict[str, Experiment]:
    cifar = Denormalize(CIFAR_MEAN, CIFAR_STD)
    table = {
        "mnist": Experiment(lenet.LeNet5, lambda nz: gan.GeneratorA(nz=nz, nc=1, img_size=32),
                            *_defaults(DFAD_mnist), MNIST_TO_UNIT),
        "cifar10": Experiment(lambda: resnet_8x.ResNet34_8x(10),
                              lambda nz: gan.GeneratorA(nz=nz, nc=3, img_size=32),
                              *_defaults(DFAD_cifar, "cifar10"), cifar),
        "cifar100": Experiment(lambda: resnet_8x.ResNet34_8x(100),
                               lambda nz: gan.GeneratorA(nz=nz, nc=3, img_size=32),
                               *_defaults(DFAD_cifar, "cifar100"), cifar),
        "caltech101": Experiment(lambda: torchvision_resnet.resnet34(101),
                                 lambda nz: gan.GeneratorB(nz=nz, nc=3, img_size=128),
                                 *_defaults(DFAD_caltech101), MINUS_ONE_TO_ONE),
    }
    for name, script, data in (("camvid", DFAD_camvid_deeplab, camvid),
                               ("nyuv2", DFAD_nyu_deeplab, nyu)):
        table[name] = Experiment(
            partial(deeplabv3_resnet50, len(data.CLASSES), pretrained_backbone=False),
            lambda nz: gan.GeneratorB(nz=nz, nc=3, img_size=128),
            *_defaults(script), MINUS_ONE_TO_ONE, data.decode_target, data.CLASSES)
    return table


EXPERIMENTS = _experiments()


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
    exp = EXPERIMENTS[name]
    device = resolve_device(args.device)
    nz = args.nz or exp.nz
    generator = load_weights(exp.generator(nz), args.generator).to(device).eval()
    teacher = load_teacher(exp.teacher(), args.ckpt or exp.teacher_ckpt, device)
    segmentation = exp.decode_target is not None
    n = args.samples or (8 if segmentation else 512)
    images, logits = generate(generator, teacher, n, nz, args.seed, device)
    rgb = _rgb(images, exp.to_unit)
    if segmentation:
        picture = segmentation_picture(rgb, logits, exp.decode_target, exp.classes)
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
