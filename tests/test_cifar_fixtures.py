"""The tiny CIFAR files load through the real torchvision classes, only with their checksums."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from PIL import Image
from torchvision.datasets import CIFAR10, CIFAR100

from tests.helpers.cifar_fixtures import (
    cifar_checksums_for,
    write_tiny_cifar10,
    write_tiny_cifar100,
)

LAUNCHER = Path(__file__).parent / "helpers" / "run_with_tiny_cifar.py"


@pytest.fixture
def no_download() -> Iterator[None]:
    """Fail loudly if torchvision would fall back to downloading."""
    with mock.patch(
        "torchvision.datasets.cifar.download_and_extract_archive",
        side_effect=AssertionError("tried to download"),
    ):
        yield


def test_cifar10_loads_through_real_class(tmp_path: Path, no_download) -> None:
    labels = write_tiny_cifar10(tmp_path, n_train=7, n_test=5)
    with cifar_checksums_for(tmp_path):
        train = CIFAR10(tmp_path, train=True, download=False)
        test = CIFAR10(tmp_path, train=False, download=True)
    assert len(train) == 7 and len(test) == 5
    assert train.targets == labels["train"] == [0, 1, 2, 3, 4, 5, 6]
    assert test.targets == labels["test"] == [3, 4, 5, 6, 7]
    assert train.classes[0] == "airplane" and len(train.classes) == 10
    assert train.data.shape == (7, 32, 32, 3) and train.data.dtype == np.uint8
    image, target = test[4]
    assert isinstance(image, Image.Image) and image.size == (32, 32) and target == 7


def test_cifar100_loads_through_real_class(tmp_path: Path, no_download) -> None:
    labels = write_tiny_cifar100(tmp_path, n_train=6, n_test=4)
    with cifar_checksums_for(tmp_path):
        train = CIFAR100(tmp_path, train=True, download=True)
        test = CIFAR100(tmp_path, train=False, download=False)
    assert len(train) == 6 and len(test) == 4
    assert train.targets == labels["train"] == [0, 1, 2, 3, 4, 5]
    assert test.targets == labels["test"] == [50, 51, 52, 53]
    assert len(train.classes) == 100
    assert test.data.shape == (4, 32, 32, 3)


def test_one_root_can_hold_both(tmp_path: Path) -> None:
    write_tiny_cifar10(tmp_path)
    write_tiny_cifar100(tmp_path)
    with cifar_checksums_for(tmp_path):
        assert len(CIFAR10(tmp_path)) == 8
        assert len(CIFAR100(tmp_path, train=False)) == 8


def test_real_class_rejects_tiny_files_without_fixture(tmp_path: Path) -> None:
    write_tiny_cifar10(tmp_path)
    write_tiny_cifar100(tmp_path)
    for cls in (CIFAR10, CIFAR100):
        with pytest.raises(RuntimeError, match="corrupted"):
            cls(tmp_path, train=True, download=False)


def test_integrity_check_stays_on_inside_fixture(tmp_path: Path) -> None:
    write_tiny_cifar10(tmp_path)
    with cifar_checksums_for(tmp_path):
        batch = tmp_path / CIFAR10.base_folder / "test_batch"
        batch.write_bytes(batch.read_bytes() + b"\0")
        with pytest.raises(RuntimeError, match="corrupted"):
            CIFAR10(tmp_path, train=False, download=False)


def test_fixture_restores_original_checksums(tmp_path: Path) -> None:
    write_tiny_cifar10(tmp_path)
    before = (CIFAR10.train_list, CIFAR10.test_list, CIFAR10.meta, CIFAR100.meta)
    with cifar_checksums_for(tmp_path):
        assert CIFAR10.train_list != before[0]
        assert CIFAR100.meta is before[3]  # no cifar-100 folder: left alone
    assert (CIFAR10.train_list, CIFAR10.test_list, CIFAR10.meta, CIFAR100.meta) == before
    assert CIFAR10.meta["md5"] == "5ff9c542aee3614f3951f8cda6e48888"


def test_fixture_rejects_root_without_cifar(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError), cifar_checksums_for(tmp_path):
        pass


def test_launcher_runs_script_with_checksums(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_tiny_cifar10(data, n_train=5, n_test=3)
    script_dir = tmp_path / "project"
    script_dir.mkdir()
    (script_dir / "sibling.py").write_text("VALUE = 'sibling imported'\n")
    script = script_dir / "entry.py"
    script.write_text(textwrap.dedent("""
        import sys
        from torchvision.datasets import CIFAR10
        import sibling
        train = CIFAR10(sys.argv[1], train=True, download=True)
        print(len(train), sys.argv[0].endswith("entry.py"), sys.argv[2:], sibling.VALUE)
        sys.exit(3)
    """))
    result = subprocess.run(
        [sys.executable, str(LAUNCHER), str(data), str(script), str(data), "--epochs", "1"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 3, result.stderr
    assert result.stdout.strip() == "5 True ['--epochs', '1'] sibling imported"
