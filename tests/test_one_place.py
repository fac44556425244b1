"""What the old machinery wrote several times is written once (each of these failed on the code
before the redesign): one atomic write, one ignore index, the teacher flags declared once, the
networks of an experiment built by its own build(args) alone."""
from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PRODUCT = sorted(p for p in REPO.rglob("*.py")
                 if not {".venv", "tests", "data"} & set(p.relative_to(REPO).parts))


def files_with(pattern: str) -> list[str]:
    return [str(p.relative_to(REPO)) for p in PRODUCT if re.search(pattern, p.read_text())]


def test_every_file_is_written_through_one_atomic_helper():
    assert files_with(r"os\.replace\(") == ["runtime/files.py"]
    assert files_with(r"torch\.save\(") == ["runtime/files.py"]


def test_the_ignore_index_is_one_named_constant():
    literal = [f"{p.relative_to(REPO)}: {line.strip()}" for p in PRODUCT
               for line in p.read_text().splitlines()
               if re.search(r"\b255\b", line) and "ignore" in line.lower()]
    assert literal == ["dataset/image_label_pairs.py: IGNORE_INDEX = 255  # the label of "
                       "unlabelled pixels in CamVid and NYUv2"]


def test_the_teacher_flags_are_declared_once():
    for flag in ("--lr", "--momentum", "--step_size", "--num_classes", "--test_batch_size"):
        declared = [path for path in ("train_teacher.py", "train_teacher_seg.py")
                    if f'"{flag}"' in (REPO / path).read_text()]
        assert declared == [], (flag, declared)


def test_tools_get_their_networks_from_the_experiments_build():
    for tool in ("benchmarks/benchmark.py", "scripts/inspect_generator.py"):
        text = (REPO / tool).read_text()
        assert ".build(" in text
        networks = r"\b(LeNet5|ResNet\w+|resnet\d+|GeneratorA|GeneratorB|deeplabv3_\w+)\("
        assert not re.search(networks, text), tool
