#!/usr/bin/env bash
# NYUv2 row of Table 3
# (docs/original-release.md#segmentation-teacher-training, #dependencies-and-setup): train the
# DeepLabV3-ResNet50 teacher, then distil the DeepLabV3-MobileNetV2 student without data.
# DATA_ROOT is the NYUv2 folder itself (default: data/NYUv2: nyuv2-meta-data/ and the images
# that data/prepare_nyuv2.py exports to 480_640/IMAGE/).
# Extra arguments go to both scripts (e.g. --device cuda); flags for one script only go in
# TEACHER_ARGS or DFAD_ARGS, e.g. TEACHER_ARGS=--cudnn_benchmark DFAD_ARGS="--epoch_itrs 10".
# Run it again after a stop: a finished step is reused, a stopped one continues (--resume);
# FRESH=1 starts over, moving the old files aside. PYTHON picks the interpreter; NPROC=N runs
# each script under torchrun with N processes (scripts/common.sh).
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
