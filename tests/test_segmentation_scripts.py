"""End to end as a user runs them: train_teacher_seg.py, then DFAD_camvid_deeplab.py and
DFAD_nyu_deeplab.py, on tiny CamVid/NYUv2 trees in the real layouts (full-size networks)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

import DFAD_camvid_deeplab
import DFAD_nyu_deeplab
import train_teacher_seg
from network.gan import GeneratorB
from network.segmentation import deeplabv3_mobilenet, deeplabv3_resnet50
from tables.csv_rows import read_csv_runs
from tests.helpers.segmentation_fixtures import write_tiny_camvid, write_tiny_nyuv2

REPO = Path(__file__).resolve().parents[1]
FAST = ["--device", "cpu", "--num_workers", "0"]
TINY_DFAD = ["--batch_size", "2", "--epochs", "1", "--epoch_itrs", "1", "--test_batch_size", "2",
             *FAST]


def run(script: str, *args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / script), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def load_strict(model: torch.nn.Module, path: Path) -> None:
    model.load_state_dict(torch.load(path, weights_only=True), strict=True)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """Tiny CamVid (2 train, 1 test image) and a teacher trained on it for one step; a tiny NYUv2
    and a randomly initialised 13-class teacher (training a second one adds nothing but time)."""
    work = tmp_path_factory.mktemp("seg_run")
    write_tiny_camvid(work / "data" / "CamVid", n_train=2, n_test=1)
    write_tiny_nyuv2(work / "data" / "NYUv2", train=(1, 3), test=(2,))
    result = run("train_teacher_seg.py", "--dataset", "camvid", "--data_root", "data/CamVid",
                 "--no_pretrained", "--epochs", "1", "--batch_size", "2", "--test_batch_size", "2",
                 *FAST, cwd=work)
    assert result.returncode == 0, result.stderr
    assert "Best mIoU=" in result.stdout
    torch.manual_seed(0)
    torch.save(deeplabv3_resnet50(13).state_dict(),
               work / "checkpoint" / "teacher" / "nyuv2-deeplabv3_resnet50.pt")
    return work


def test_teacher_checkpoint_and_config(workdir):
    load_strict(deeplabv3_resnet50(11), workdir / "checkpoint/teacher/camvid-deeplabv3_resnet50.pt")
    assert (workdir / "log/teacher-camvid-deeplabv3_resnet50.config.json").is_file()


def test_dfad_camvid_end_to_end_with_save_img(workdir):
    result = run("DFAD_camvid_deeplab.py", "--data_root", "data/CamVid", "--save_img",
                 *TINY_DFAD, cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert "Epoch 1 test: mIoU=" in result.stdout and "Best mIoU=" in result.stdout
    row = read_csv_runs(workdir / "log/DFAD-camvid.csv")[-1].values
    assert len(row) == 1 and 0.0 < float(row[0]) <= 1.0  # random labels: every class occurs
    student = workdir / "checkpoint/student/camvid-deeplabv3_mobilenet.pt"
    load_strict(deeplabv3_mobilenet(11), student)
    load_strict(GeneratorB(nz=256, nc=3, img_size=128),
                workdir / "checkpoint/student/camvid-deeplabv3_mobilenet-generator.pt")
    for kind in ("img", "target", "pred", "teacher"):
        with Image.open(workdir / "results/DFAD-camvid" / f"0_{kind}.png") as image:
            assert image.size == (341, 256) and image.mode == "RGB"
    assert not (workdir / "results/DFAD-camvid/1_img.png").exists()  # one test image


def test_dfad_nyu_end_to_end_writes_the_csv_row(workdir):
    """docs/original-release.md#nyuv2-crash-before-the-csv-row: the original crashed here before
    writing its CSV row."""
    result = run("DFAD_nyu_deeplab.py", "--data_root", "data/NYUv2", *TINY_DFAD, cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert "Best mIoU=" in result.stdout
    row = read_csv_runs(workdir / "log/DFAD-nyuv2.csv")[-1].values
    assert len(row) == 1 and 0.0 < float(row[0]) <= 1.0
    load_strict(deeplabv3_mobilenet(13),
                workdir / "checkpoint/student/nyuv2-deeplabv3_mobilenet.pt")
    assert not (workdir / "results").joinpath("nyu-DFAD").exists()  # no --save_img


def test_offline_imagenet_backbone_is_one_clear_line(workdir, tmp_path):
    """Without --no_pretrained the teacher wants ImageNet weights; with no way to fetch them the
    run ends with one line that says where to put the file and how to skip it. A proxy on a
    closed local port makes the failure immediate and certain, online or not."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("no_proxy", "all_proxy")}
    env.update(TORCH_HOME=str(tmp_path / "torch"), HTTPS_PROXY="http://127.0.0.1:9",
               https_proxy="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9",
               http_proxy="http://127.0.0.1:9")
    result = run("train_teacher_seg.py", "--dataset", "camvid", "--data_root", "data/CamVid",
                 "--epochs", "1", *FAST, cwd=workdir, env=env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and result.stderr.strip().endswith(errors[0]), result.stderr
    assert "could not load the ImageNet ResNet-50 weights" in errors[0]
    assert str(tmp_path / "torch" / "hub" / "checkpoints" / "resnet50-0676ba61.pth") in errors[0]
    assert "--no_pretrained" in errors[0]
    assert not list((tmp_path / "torch").rglob("*.pth"))


def test_dfad_camvid_data_root_convention_is_explained(workdir):
    """The README passes the CamVid folder itself; `--data_root data` names what is missing."""
    result = run("DFAD_camvid_deeplab.py", "--data_root", "data", *TINY_DFAD, cwd=workdir)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "expected data/test/*.png" in lines[0] and "--data_root ./data/CamVid" in lines[0]


def test_help_lists_the_original_flags():
    """In-process: three --help subprocesses would import torch three times for nothing."""
    teacher = train_teacher_seg.get_parser().format_help()
    for flag in ("--num_classes", "--gamma", "--step_size", "--scheduler", "--no_pretrained",
                 "--no-cuda", "--no_cuda", "--test-only", "--test_only", "--log-interval",
                 "--log_interval", "--device", "SegNet"):
        assert flag in teacher, flag
    for script in (DFAD_camvid_deeplab, DFAD_nyu_deeplab):
        text = script.get_parser().format_help()
        for flag in ("--lr_S", "--lr_G", "--epoch_itrs", "--nz", "--scheduler", "--stu_ckpt",
                     "--save_img", "--test_only", "--no_cuda", "--device"):
            assert flag in text, (script.__name__, flag)
    nyu = DFAD_nyu_deeplab.get_parser().parse_args([])
    assert (nyu.weight_decay, nyu.test_batch_size, nyu.lr_S, nyu.nz) == (5e-5, 9, 0.1, 256)
    # docs/original-release.md#segmentation-teacher-file-names: no -256
    assert nyu.ckpt == "checkpoint/teacher/nyuv2-deeplabv3_resnet50.pt"
    camvid = DFAD_camvid_deeplab.get_parser().parse_args([])
    assert (camvid.weight_decay, camvid.test_batch_size, camvid.batch_size) == (5e-4, 16, 64)
    assert camvid.ckpt == "checkpoint/teacher/camvid-deeplabv3_resnet50.pt"
