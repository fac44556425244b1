#!/usr/bin/env bash
# NYUv2 row of Table 3: the DeepLabV3-ResNet50 teacher, then DFAD to DeepLabV3-MobileNetV2.
# DATA_ROOT is the NYUv2 folder itself (default: data/NYUv2; docs/data.md#layouts).
# Other variables and re-runs: scripts/common.sh, docs/experiments.md.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA_ROOT=${DATA_ROOT:-data/NYUv2}
source scripts/common.sh
teacher_ckpt=checkpoint/teacher/nyuv2-deeplabv3_resnet50.pt  # the teacher writes it, DFAD reads it
student_ckpt=checkpoint/student/nyuv2-deeplabv3_mobilenet.pt

teacher=(train_teacher_seg.py --dataset nyuv2 --data_root "$DATA_ROOT" --scheduler --lr 0.05 \
  --num_classes 13 "$@" "${TEACHER_FLAGS[@]}")

dfad=(DFAD_nyu_deeplab.py --ckpt "$teacher_ckpt" \
  --data_root "$DATA_ROOT" --scheduler "$@" "${DFAD_FLAGS[@]}")

run_row
