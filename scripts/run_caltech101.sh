#!/usr/bin/env bash
# Caltech101 (Table 2): the ResNet-34 teacher at 128 px, then DFAD to ResNet-18. Needs
# <DATA_ROOT>/caltech101 with the authors' split (docs/data.md#layouts); DATA_ROOT=/path/to/data
# (default: data). Other variables and re-runs: scripts/common.sh, docs/experiments.md.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA_ROOT=${DATA_ROOT:-data}
source scripts/common.sh
teacher_ckpt=checkpoint/teacher/caltech101-resnet34.pt  # the teacher writes it, DFAD reads it
student_ckpt=checkpoint/student/caltech101-resnet18.pt

# The original README command: no --scheduler (constant LR 0.1), from scratch
# (docs/original-release.md#teacher-training-recipes; TEACHER_ARGS=--pretrained for ImageNet).
teacher=(train_teacher.py --dataset caltech101 --batch_size 128 --num_classes 101 \
  --step_size 50 --epochs 150 --model resnet34 --data_root "$DATA_ROOT" "$@" "${TEACHER_FLAGS[@]}")

# The README's --lr_S 0.05, not the script default 0.1 (docs/original-release.md#script-defaults).
dfad=(DFAD_caltech101.py --lr_S 0.05 --lr_G 1e-3 --scheduler --batch_size 64 \
  --ckpt "$teacher_ckpt" --data_root "$DATA_ROOT" "$@" "${DFAD_FLAGS[@]}")

run_row
