"""The DFAD scripts of Tables 2 and 3 end to end, in-process, on tiny data in the real layouts
with the full-size networks: one epoch of one iteration writes the original file names, and the
flags given are the ones the run recorded (its state file's config, its CSV row)."""
import importlib.util
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

import DFAD_caltech101
import DFAD_camvid_deeplab
import DFAD_cifar
import DFAD_nyu_deeplab
from network.gan import GeneratorA, GeneratorB
from network.resnet_8x import ResNet18_8x, ResNet34_8x
from network.segmentation import deeplabv3_mobilenet, deeplabv3_resnet50
from network.torchvision_resnet import resnet18, resnet34
from reporting.results_csv import read_csv_runs
from runtime.errors import UserError
from runtime.state import RUN_CONTROL
from tests.helpers.caltech_fixtures import write_tiny_caltech
from tests.helpers.cifar_fixtures import cifar_checksums_for, write_tiny_cifar10
from tests.helpers.segmentation_fixtures import write_tiny_camvid, write_tiny_nyuv2

REPO = Path(__file__).resolve().parents[1]
# Port 9 (discard) is closed: the visdom plots go to log/<run>.visdom.log, one of the outputs.
TINY = ["--device", "cpu", "--num_workers", "0", "--visdom_port", "9", "--epochs", "1",
        "--epoch_itrs", "1"]
SEGMENTATION = ["--batch_size", "2", "--test_batch_size", "2", "--lr_G", "0.002", "--scheduler",
                "--step_size", "7", "--nz", "16"]


def run(script, *flags: str) -> list[float]:
    return script.main(script.get_parser().parse_args([*TINY, *flags]))


def saying_class_0(model: nn.Module, head: nn.Linear, path: str) -> None:
    """A student whose head says class 0 for every input; with --lr_S 1e-12 it still does after
    its step, so its accuracy is the test set's share of class 0, above 0: it is saved."""
    nn.init.zeros_(head.weight)
    with torch.no_grad():
        head.bias.zero_()
        head.bias[0] = 10.0
    torch.save(model.state_dict(), path)


def load_strict(model: nn.Module, path: str) -> None:
    model.load_state_dict(torch.load(path, weights_only=True), strict=True)


def assert_run_files(run_name: str, student_ckpt: str, values: list[float],
                     **flags: object) -> dict:
    """The original's outputs and ours, each once; `flags` in the CSV row and the state's
    config. Returns the config."""
    stem = student_ckpt.removesuffix(".pt")
    for path in (student_ckpt, f"{stem}-generator.pt", f"{stem}-state.pt",
                 *(f"log/{run_name}.{ext}" for ext in ("csv", "metrics.jsonl", "config.json",
                                                       "visdom.log"))):
        assert Path(path).is_file(), path
    [row] = read_csv_runs(f"log/{run_name}.csv")
    assert row.values == pytest.approx(values)
    config = torch.load(f"{stem}-state.pt", weights_only=True)["config"]
    for name, value in flags.items():
        assert config[name] == value, name
        if name not in RUN_CONTROL:  # every flag that defines the run is in its row
            assert row.flags[name] == value, name
    return config


@pytest.mark.slow
def test_cifar10(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_tiny_cifar10("data", n_train=4, n_test=10)  # every class once in the test set
    torch.manual_seed(0)
    torch.save(ResNet34_8x(10).state_dict(), "teacher.pt")
    student = ResNet18_8x(10)
    saying_class_0(student, student.linear, "start.pt")
    with cifar_checksums_for("data"):
        history = run(DFAD_cifar, "--batch_size", "4", "--test_batch_size", "4", "--ckpt",
                      "teacher.pt", "--stu_ckpt", "start.pt", "--lr_S", "1e-12", "--nz", "32")
    assert history == [pytest.approx(0.1)]
    assert_run_files("DFAD-cifar10", "checkpoint/student/cifar10-resnet18_8x.pt", history,
                     ckpt="teacher.pt", stu_ckpt="start.pt", lr_S=1e-12, nz=32, batch_size=4,
                     epoch_itrs=1, dataset="cifar10")
    load_strict(ResNet18_8x(10), "checkpoint/student/cifar10-resnet18_8x.pt")
    load_strict(GeneratorA(nz=32, nc=3, img_size=32),
                "checkpoint/student/cifar10-resnet18_8x-generator.pt")
    assert Path("results/DFAD-cifar10/latest-generated.png").is_file()


def test_cifar_help_names_the_datasets_teacher():
    text = " ".join(DFAD_cifar.get_parser().format_help().split())
    assert "teacher state_dict (default: checkpoint/teacher/<dataset>-resnet34_8x.pt)" in text
    assert "cifar10-resnet34_8x.pt)" not in text


def test_cifar100_without_ckpt_uses_the_cifar100_teacher(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = DFAD_cifar.get_parser().parse_args(["--dataset", "cifar100", "--device", "cpu"])
    with pytest.raises(UserError, match="teacher checkpoint not found: "
                                        "checkpoint/teacher/cifar100-resnet34_8x.pt"):
        DFAD_cifar.main(args)
    assert "using the cifar100 teacher checkpoint/teacher/cifar100-resnet34_8x.pt" in (
        capsys.readouterr().out)
    assert args.ckpt == "checkpoint/teacher/cifar100-resnet34_8x.pt"  # and so in the config


@pytest.mark.slow
def test_caltech101(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_tiny_caltech("data")
    spec = importlib.util.spec_from_file_location("split", REPO / "data/split_caltech101.py")
    split = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(split)
    test_set = split.main(["--root", "data"]) / "test"
    share_of_class_0 = (len(list((test_set / "Faces_easy").iterdir()))
                        / len(list(test_set.rglob("*.jpg"))))
    torch.manual_seed(0)
    torch.save(resnet34(101).state_dict(), "teacher.pt")
    student = resnet18(101)
    saying_class_0(student, student.fc, "start.pt")
    history = run(DFAD_caltech101, "--batch_size", "2", "--test_batch_size", "4", "--ckpt",
                  "teacher.pt", "--stu_ckpt", "start.pt", "--lr_S", "1e-12", "--lr_G", "0.002")
    assert history == [pytest.approx(share_of_class_0)]
    assert_run_files("DFAD-caltech101", "checkpoint/student/caltech101-resnet18.pt", history,
                     lr_S=1e-12, lr_G=0.002, batch_size=2, test_batch_size=4, num_classes=101)
    load_strict(resnet18(101), "checkpoint/student/caltech101-resnet18.pt")
    load_strict(GeneratorB(nz=256, nc=3, img_size=128),
                "checkpoint/student/caltech101-resnet18-generator.pt")


def seg_teacher(num_classes: int) -> None:
    torch.manual_seed(0)
    torch.save(deeplabv3_resnet50(num_classes).state_dict(), "teacher.pt")


def student_files_load(dataset: str, num_classes: int) -> None:
    load_strict(deeplabv3_mobilenet(num_classes), f"checkpoint/student/{dataset}"
                                                  "-deeplabv3_mobilenet.pt")
    load_strict(GeneratorB(nz=16, nc=3, img_size=128),
                f"checkpoint/student/{dataset}-deeplabv3_mobilenet-generator.pt")


@pytest.mark.slow
def test_camvid_with_save_img(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_tiny_camvid("data/CamVid", n_train=2, n_test=1)  # random labels: every class occurs
    seg_teacher(11)
    flags = ["--data_root", "data/CamVid", "--ckpt", "teacher.pt", "--save_img", *SEGMENTATION]
    history = run(DFAD_camvid_deeplab, *flags)
    assert len(history) == 1 and 0.0 < history[0] <= 1.0
    assert_run_files("DFAD-camvid", "checkpoint/student/camvid-deeplabv3_mobilenet.pt",
                     history, lr_G=0.002, scheduler=True, step_size=7, nz=16, save_img=True)
    student_files_load("camvid", 11)
    images = Path("results/DFAD-camvid")
    for kind in ("img", "target", "pred", "teacher"):
        with Image.open(images / f"0_{kind}.png") as image:
            assert image.size == (341, 256) and image.mode == "RGB"
    assert not (images / "1_img.png").exists()  # one test image
    # Again: finished before, and the images are still the run's last student's.
    pred = (images / "0_pred.png").read_bytes()
    run(DFAD_camvid_deeplab, *flags)
    assert "finished before: 1 of 1 epochs" in capsys.readouterr().out
    assert (images / "0_pred.png").read_bytes() == pred


@pytest.mark.slow
def test_nyuv2(tmp_path, monkeypatch):
    """docs/original-release.md#nyuv2-crash-before-the-csv-row: the original crashed here before
    writing its CSV row."""
    monkeypatch.chdir(tmp_path)
    write_tiny_nyuv2("data/NYUv2", train=(1, 3), test=(2,))
    seg_teacher(13)
    history = run(DFAD_nyu_deeplab, "--data_root", "data/NYUv2", "--ckpt", "teacher.pt",
                  "--weight_decay", "0.001", *SEGMENTATION)
    assert len(history) == 1 and 0.0 < history[0] <= 1.0
    config = assert_run_files("DFAD-nyuv2", "checkpoint/student/nyuv2-deeplabv3_mobilenet.pt",
                              history, weight_decay=0.001, lr_G=0.002, step_size=7, nz=16)
    assert config["test_batch_size"] == 2 and not config["save_img"]
    student_files_load("nyuv2", 13)
    assert not Path("results/nyu-DFAD").exists()  # no --save_img
