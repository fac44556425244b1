#!/usr/bin/env bash
# Reproduces docs/visdom-mnist.png: a short real-MNIST DFAD run plotted to a
# local visdom server, then a headless-Chromium screenshot of its env.
# Usage (from anywhere): docs/take_screenshot.sh [DATA_ROOT]   (default ../shared/data)
# Needs: .venv with torch + visdom 0.2.4 (static assets installed), /usr/bin/chromium.
# CPU only, ~4-5 min on 2 cores. Writes git-ignored log/ results/ checkpoint/ files.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA_ROOT=${1:-../shared/data}
PORT=${PORT:-15560}
PY=.venv/bin/python
export OMP_NUM_THREADS=1

ENVS=$(mktemp -d); PROFILE=$(mktemp -d)
# run_server.main skips visdom's online asset download (assets are already installed)
$PY -c "from visdom.server.run_server import main; main()" \
    -port "$PORT" --hostname 127.0.0.1 -bind_local -env_path "$ENVS" >"$ENVS/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; rm -rf "$ENVS" "$PROFILE"' EXIT
for _ in $(seq 30); do curl -sf -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 1; done

# a quick teacher (1 epoch, ~95% test acc) if none exists yet
[ -f checkpoint/teacher/mnist-lenet5.pt ] ||
  $PY train_teacher.py --dataset mnist --model lenet5 --data_root "$DATA_ROOT" \
      --epochs 1 --device cpu --num_workers 0 --no_visdom

# 4 epochs x 10 iterations: 40 Loss_S/Loss_G points, 4 Acc points, input/generated images
$PY DFAD_mnist.py --data_root "$DATA_ROOT" --device cpu --num_workers 0 \
    --visdom_port "$PORT" --epochs 4 --epoch_itrs 10 --batch_size 128 --log_interval 2

mkdir -p docs
/usr/bin/chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$PROFILE" --virtual-time-budget=10000 --window-size=1600,1200 \
    --screenshot=docs/visdom-mnist.png "http://127.0.0.1:$PORT/env/DFAD-mnist" 2>/dev/null
echo "wrote docs/visdom-mnist.png"
