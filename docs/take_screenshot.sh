#!/usr/bin/env bash
# Reproduces docs/visdom-mnist.png: a 1-epoch teacher, a 4 x 10-iteration real-MNIST DFAD run
# plotted to a local visdom server, then a headless-Chromium screenshot of its env. CPU only.
# Usage: docs/take_screenshot.sh [DATA_ROOT, default ../shared/data]; needs Chromium and the .venv
# of scripts/install.sh (visdom and its offline assets).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
DATA_ROOT=$(cd "${1:-$REPO/../shared/data}" && pwd)
PORT=${PORT:-15560} PY=$REPO/.venv/bin/python
BROWSER=$(command -v chromium || command -v chromium-browser || command -v google-chrome) || {
  echo "error: no Chromium: apt-get install chromium" >&2; exit 1; }
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
WORK=$(mktemp -d)
# run_server.main skips visdom's online asset download
"$PY" -c "from visdom.server.run_server import main; main()" \
    -port "$PORT" --hostname 127.0.0.1 -bind_local -env_path "$WORK/envs" >"$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 30); do curl -sf -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 1; done
cd "$WORK"
"$PY" "$REPO/train_teacher.py" --dataset mnist --model lenet5 --data_root "$DATA_ROOT" --no_visdom \
    --batch_size 256 --lr 0.01 --weight_decay 1e-4 --epochs 1 --device cpu --num_workers 0
"$PY" "$REPO/DFAD_mnist.py" --data_root "$DATA_ROOT" --device cpu --num_workers 0 \
    --visdom_port "$PORT" --epochs 4 --epoch_itrs 10 --batch_size 128 --log_interval 2
"$BROWSER" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-sync \
    --disable-background-networking --disable-component-update --user-data-dir="$WORK/profile" \
    --virtual-time-budget=10000 --window-size=1300,1060 --screenshot="$REPO/docs/visdom-mnist.png" \
    "http://127.0.0.1:$PORT/env/DFAD-mnist" 2>/dev/null
echo "wrote $REPO/docs/visdom-mnist.png"
