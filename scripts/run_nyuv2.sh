#!/usr/bin/env bash
# NYUv2 row of Table 3 (SPEC §3.4, §7): train the DeepLabV3-ResNet50 teacher, then distil the
# DeepLabV3-MobileNetV2 student without data. Extra arguments go to both scripts.
# DATA_ROOT is the NYUv2 folder itself (default: data/NYUv2: nyuv2-meta-data/ and the images
# that data/prepare_nyuv2.py exports to 480_640/IMAGE/).
# PYTHON picks the interpreter (default: the repo's .venv when present, else python3).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA_ROOT=${DATA_ROOT:-data/NYUv2}
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi

echo "===== Teacher ====="
"$PYTHON" train_teacher_seg.py --dataset nyuv2 --data_root "$DATA_ROOT" --scheduler --lr 0.05 \
  --num_classes 13 "$@"

echo "===== DFAD ====="
"$PYTHON" DFAD_nyu_deeplab.py --ckpt checkpoint/teacher/nyuv2-deeplabv3_resnet50.pt \
  --data_root "$DATA_ROOT" --scheduler "$@"
