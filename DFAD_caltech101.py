"""DFAD on Caltech101: ResNet-34 teacher -> ResNet-18 student (torchvision), GeneratorB, 128 px.

Paper (Table 2): teacher 0.766, DFAD 0.735 +- 0.008, on the authors' split
(docs/original-release.md#reports-from-users). Defaults are the original's (#script-defaults);
its README passes --lr_S 0.05 (scripts/run_caltech101.sh).
"""
from __future__ import annotations

import argparse

from torch.optim.lr_scheduler import StepLR

from dataloader import check_num_classes, get_dataloader
from engine.dfad import Experiment, distill
from engine.evaluation import evaluate_classification
from engine.flags import add_dfad_args
from network import gan, torchvision_resnet
from reporting.sample_grids import MINUS_ONE_TO_ONE, ClassificationPanels
from runtime.cli import help_example, int_at_least, run_main
from runtime.device import setup
from runtime.files import load_teacher


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="DFAD Caltech101", **help_example(
        ".venv/bin/python DFAD_caltech101.py --lr_S 0.05 --scheduler --data_root data",
        ["checkpoint/student/caltech101-resnet18{,-generator,-state}.pt",
         "log/DFAD-caltech101.{csv,metrics.jsonl,config.json,visdom.log}",
         "results/DFAD-caltech101/latest-<panel>.png"]))
    add_dfad_args(parser, datasets=("caltech101",), model="resnet18",
                  ckpt="checkpoint/teacher/caltech101-resnet34.pt", batch_size=64,
                  test_batch_size=32, epochs=300, lr_S=0.1, weight_decay=5e-4, nz=256,
                  schedule="StepLR(--step_size, gamma 0.1), stepped at epoch start")
    parser.add_argument("--num_classes", type=int_at_least(2), default=101,
                        help="outputs of teacher and student (default: 101, as the original)")
    return parser


def build(args: argparse.Namespace) -> Experiment:
    """The networks in the original's order (fixing their initial weights), the test set."""
    teacher = load_teacher(torchvision_resnet.resnet34(args.num_classes), args.ckpt)
    student = torchvision_resnet.resnet18(args.num_classes)
    generator = gan.GeneratorB(nz=args.nz, nc=3, img_size=128)
    _, test_loader = get_dataloader(args, train=False)
    check_num_classes(test_loader, args.num_classes)
    return Experiment(
        name="DFAD-caltech101",
        student_ckpt="checkpoint/student/caltech101-resnet18.pt",
        teacher=teacher, student=student, generator=generator, test_loader=test_loader,
        evaluate=evaluate_classification, metric="acc",
        make_scheduler=lambda optimizer: StepLR(optimizer, args.step_size, 0.1),
        panels=ClassificationPanels(MINUS_ONE_TO_ONE, nz=args.nz),
    )


def main(args: argparse.Namespace) -> list[float]:
    # The original seeded torch only (docs/original-release.md#caltech101-seeding): seeding
    # every RNG draws the same torch stream.
    device = setup(args)
    return distill(args, build(args), device)


if __name__ == "__main__":
    run_main(get_parser, main)
