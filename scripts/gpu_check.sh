#!/usr/bin/env bash
# The GPU evidence in one run (issue 18): CUDA tests, the benchmark at the paper's batch sizes,
# and the MNIST row (teacher, DFAD seeds 1-3 in fp32, seed 1 in bf16, get_results.py).
#
#   OUT=/some/dir DATA_ROOT=local_data BUDGET_S=480 bash scripts/gpu_check.sh
#   bash scripts/gpu_check.sh --device cpu --tiny          # what the tests run: tiny data, about a minute
#
# Steps run in order of value per second of device time. Each one writes its file under $OUT
# when it ends; a step that would not fit in what is left of the budget (--budget / BUDGET_S
# seconds for the whole run) is skipped and says so, and one still running at the deadline is
# stopped, so a partial run returns what it measured. $OUT/summary.txt has one line per step.
# At most 8 files, all directly under $OUT.
#
# Environment: OUT (default results/gpu_check), DATA_ROOT (MNIST as <DATA_ROOT>/MNIST/raw/, the
# four idx files, or the same names with .gz; default local_data; --tiny writes a tiny MNIST when
# it is unset), PYTHON (default python3), BUDGET_S (default 480), WORK (checkpoints and logs of the
# runs; default a new folder under runs/gpu_check/).
set -uo pipefail  # no -e: a failed step is recorded and the next one runs
cd "$(dirname "$0")/.."
REPO=$(pwd)

usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; }

DEVICE=cuda
TINY=0
BUDGET_S=${BUDGET_S:-480}
while [ $# -gt 0 ]; do
  case $1 in
    --device) DEVICE=${2:-}; shift 2 || { echo "error: --device needs cpu or cuda" >&2; exit 2; } ;;
    --tiny) TINY=1; shift ;;
    --budget) BUDGET_S=${2:-}; shift 2 || { echo "error: --budget needs seconds" >&2; exit 2; } ;;
    -h|--help) usage; exit 0 ;;
    *) echo "error: unknown argument '$1' (see bash scripts/gpu_check.sh --help)" >&2; exit 2 ;;
  esac
done
case $DEVICE in cpu|cuda) ;; *) echo "error: --device must be cpu or cuda, got '$DEVICE'" >&2; exit 2 ;; esac
case $BUDGET_S in ''|*[!0-9]*) echo "error: the budget must be whole seconds, got '$BUDGET_S'" >&2; exit 2 ;; esac

PYTHON=${PYTHON:-python3}
if ! command -v "$PYTHON" >/dev/null; then
  echo "error: no Python interpreter '$PYTHON': set PYTHON=/path/to/python" >&2; exit 2
fi
OUT=${OUT:-results/gpu_check}
WORK=${WORK:-runs/gpu_check/$(date -u +%Y%m%dT%H%M%SZ)-$$}
mkdir -p "$OUT" "$WORK" || { echo "error: cannot create OUT=$OUT or WORK=$WORK" >&2; exit 2; }
OUT=$(cd "$OUT" && pwd)
WORK=$(cd "$WORK" && pwd)
FILES="summary.txt env.txt cuda_tests.txt upsample_conv.txt bench.txt mnist_teacher.txt
mnist_dfad.txt mnist_results.txt"
for f in $FILES; do rm -f "$OUT/$f"; done
export PYTHONUNBUFFERED=1
START=$(date +%s)
DEADLINE=$((START + BUDGET_S))

left() { echo $((DEADLINE - $(date +%s))); }

# A command stopped (TERM, then KILL 15 s later) when the budget runs out; `timeout 0` would
# mean no limit, so at least 1 s.
limited() {
  local s; s=$(left)
  [ "$s" -ge 1 ] || s=1
  timeout --kill-after=15 "$s" "$@"
}

# --tiny: the same steps at tiny sizes, for the CPU test (tests/test_gpu_check.py).
if [ "$TINY" = 1 ]; then
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # tiny sizes: threads only fight (4 runs at once)
  BENCH_CONFIGS="mnist"; BENCH=(--batch_size 4 --iters 1 --warmup 0)
  PHASE=(--configs mnist --batch_size 4 --iters 1 --warmup 0)
  BENCH_MODES=(reference fp32)
  AUTOTUNE_MODES=(fp32)
  TEACHER_SIZE=(--epochs 1 --batch_size 8 --test_batch_size 8 --num_workers 0)
  DFAD_SIZE=(--epochs 1 --epoch_itrs 2 --batch_size 4 --test_batch_size 8 --num_workers 0)
else
  BENCH_CONFIGS="mnist cifar10 caltech101 camvid"; BENCH=(--iters 3 --warmup 2)
  PHASE=(--configs mnist cifar10 --iters 20 --warmup 3)
  BENCH_MODES=(reference fp32 bf16)
  AUTOTUNE_MODES=(fp32 bf16)
  TEACHER_SIZE=()
  DFAD_SIZE=()
fi
# est GPU TINY: a step's expected seconds on one H100-class GPU (guesses until measured: the
# step is skipped when fewer are left) or under --tiny.
est() { if [ "$TINY" = 1 ]; then echo "$2"; else echo "$1"; fi; }

summary() { printf '%-24s %s\n' "$1" "$2" | tee -a "$OUT/summary.txt"; }

# step NAME FILE SECONDS FUNCTION [ARGS]: run FUNCTION with its output appended to $OUT/FILE,
# if about SECONDS of the budget are left (or SECONDS is "always": cheap and needed); its status
# goes to summary.txt.
step() {
  local name=$1 file=$2 need=$3; shift 3
  local remaining t0 rc status
  remaining=$(left)
  if [ "$need" != always ] && [ "$remaining" -lt "$need" ]; then
    [ "$remaining" -ge 0 ] || remaining=0
    status="skipped: needs about ${need} s, ${remaining} s of the ${BUDGET_S} s budget left"
    echo "===== $name: $status" >>"$OUT/$file"
    summary "$name" "$status"
    return 0
  fi
  echo "===== $name ($(date -u +%FT%TZ), ${remaining} s of the budget left)" | tee -a "$OUT/$file"
  t0=$(date +%s)
  # The step runs in this shell (not in a pipeline's subshell), so it can set STEP_NOTE.
  local fd tee_pid
  exec {fd}> >(tee -a "$OUT/$file")
  tee_pid=$!
  "$@" >&"$fd" 2>&1
  rc=$?
  exec {fd}>&-
  wait "$tee_pid" 2>/dev/null  # tee has written everything
  case $rc in
    0) status="ok" ;;
    124|137) status="stopped at the deadline (what it printed is kept)" ;;
    *) status="failed (exit $rc)" ;;
  esac
  [ -z "${STEP_NOTE:-}" ] || status="$status; $STEP_NOTE"
  STEP_NOTE=
  summary "$name" "$status, $(($(date +%s) - t0)) s"
}

skip() {  # skip NAME FILE REASON
  echo "===== $1: skipped: $3" >>"$OUT/$2"
  summary "$1" "skipped: $3"
}

environment() {
  date -u +"date: %FT%TZ"
  echo "command: scripts/gpu_check.sh --device $DEVICE$([ "$TINY" = 1 ] && echo ' --tiny') (budget ${BUDGET_S} s)"
  echo "commit: $(git rev-parse HEAD 2>/dev/null || echo 'unknown (no git here)')"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2-) x $(nproc 2>/dev/null)"
  "$PYTHON" - "$DEVICE" <<'EOF'
import os, platform, sys
import torch, torchvision
print(f"python {platform.python_version()} ({sys.executable})")
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, "
      f"cuDNN {torch.backends.cudnn.version()}, torchvision {torchvision.__version__}")
print(f"CUDA available: {torch.cuda.is_available()}, torch threads {torch.get_num_threads()}, "
      f"os.cpu_count {os.cpu_count()}")
for i in range(torch.cuda.device_count()):
    p = torch.cuda.get_device_properties(i)
    print(f"cuda:{i} {p.name}, {p.total_memory / 2**30:.1f} GiB, capability {p.major}.{p.minor},"
          f" {p.multi_processor_count} SMs")
if sys.argv[1] == "cuda" and not torch.cuda.is_available():
    sys.exit("error: --device cuda but torch sees no CUDA GPU "
             "(run bash scripts/gpu_check.sh --device cpu --tiny to check the script itself)")
EOF
  local rc=$?
  if command -v nvidia-smi >/dev/null; then nvidia-smi; else echo "nvidia-smi: not found"; fi
  return $rc
}

cuda_tests() {
  limited "$PYTHON" -m pytest -m cuda -q -p no:cacheprovider tests
  local rc=$?
  if [ "$rc" = 5 ]; then
    echo "no test in the suite carries the cuda marker yet"
    STEP_NOTE="no CUDA-marked tests"
    return 0
  fi
  return $rc
}

upsample_conv() {
  limited "$PYTHON" benchmark.py --upsample_conv --device "$DEVICE" "${PHASE[@]}"
}

bench() {  # bench MODES... [-- EXTRA FLAGS]
  local modes=() extra=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do modes+=("$1"); shift; done
  [ $# -gt 0 ] && { shift; extra=("$@"); }
  # shellcheck disable=SC2086
  limited "$PYTHON" benchmark.py --device "$DEVICE" --configs ${CONFIGS:-$BENCH_CONFIGS} \
    --modes "${modes[@]}" "${BENCH[@]}" "${extra[@]}"
}

# MNIST: $DATA is a folder holding MNIST/raw with the four idx files.
find_mnist() {
  local raw names="train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte
t10k-labels-idx1-ubyte" n missing=0
  if [ "$TINY" = 1 ] && [ -z "${DATA_ROOT:-}" ]; then
    DATA=$WORK/data
    PYTHONPATH=tests "$PYTHON" -c "import sys; from mnist_fixtures import write_tiny_mnist; \
write_tiny_mnist(sys.argv[1], n_train=32, n_test=16)" "$DATA" && return 0
    return 1
  fi
  raw=${DATA_ROOT:-local_data}/MNIST/raw
  for n in $names; do [ -f "$raw/$n" ] || missing=1; done
  if [ "$missing" = 0 ]; then DATA=$(cd "${DATA_ROOT:-local_data}" && pwd); return 0; fi
  for n in $names; do [ -f "$raw/$n.gz" ] || return 1; done
  DATA=$WORK/data  # only .gz files (smaller to carry): unpack them here
  mkdir -p "$DATA/MNIST/raw"
  for n in $names; do gzip -dc "$raw/$n.gz" >"$DATA/MNIST/raw/$n" || return 1; done
}

device_flags() { echo --device "$DEVICE" --no_visdom; }

mnist_teacher() {
  mkdir -p "$WORK/teacher" && cd "$WORK/teacher" || return 1
  # The README command (run_mnist.sh), with MNIST already on disk and no visdom.
  # shellcheck disable=SC2046
  limited "$PYTHON" "$REPO/train_teacher.py" --batch_size 256 --epochs 10 --lr 0.01 \
    --dataset mnist --model lenet5 --weight_decay 1e-4 --data_root "$DATA" \
    $(device_flags) "${TEACHER_SIZE[@]}"
  local rc=$?
  cd "$REPO" || return 1
  [ -f "$TEACHER" ] || { echo "no teacher checkpoint at $TEACHER"; return 1; }
  return $rc
}

DFAD_RUNS="fp32-seed1 fp32-seed2 fp32-seed3 bf16-seed1"

# The four runs at once: one small network each leaves most of the GPU idle, so together they
# take about the time of one (their wall times are not single-run figures).
mnist_dfad() {
  local run dir seed amp rc=0 pids=()
  for run in $DFAD_RUNS; do
    dir=$WORK/$run; seed=${run##*seed}; amp=${run%%-*}
    [ "$amp" = fp32 ] && amp=off
    mkdir -p "$dir"
    (
      cd "$dir" || exit 1
      t0=$(date +%s)
      # shellcheck disable=SC2046
      limited "$PYTHON" "$REPO/DFAD_mnist.py" --ckpt "$TEACHER" --data_root "$DATA" \
        --seed "$seed" --amp "$amp" $(device_flags) "${DFAD_SIZE[@]}" >stdout.log 2>&1
      r=$?
      echo "$r $(($(date +%s) - t0))" >exit_and_seconds
      exit $r
    ) &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || rc=$?; done
  for run in $DFAD_RUNS; do
    read -r r s <"$WORK/$run/exit_and_seconds" 2>/dev/null || { r=?; s=?; }
    echo "===== $run: exit $r after $s s (the four ran at once)"
    cat "$WORK/$run/stdout.log"
  done
  return $rc
}

mnist_results() {
  local run csv found=0
  mkdir -p "$WORK/fp32" "$WORK/bf16"
  : >"$WORK/fp32/DFAD-mnist.csv"
  : >"$WORK/bf16/DFAD-mnist.csv"
  echo "teacher: $(grep -h '^Best acc=' "$OUT/mnist_teacher.txt" 2>/dev/null | tail -1)"
  for run in $DFAD_RUNS; do
    csv=$WORK/$run/log/DFAD-mnist.csv
    read -r r s <"$WORK/$run/exit_and_seconds" 2>/dev/null || { r="not run"; s=?; }
    echo "$run: exit $r, $s s; test acc per epoch:"
    if [ -f "$WORK/$run/log/DFAD-mnist.metrics.jsonl" ]; then
      "$PYTHON" -c "import json, sys; rows = [json.loads(l) for l in open(sys.argv[1])]; \
print('  ' + ' '.join(f\"{r['acc']:.4f}\" for r in rows) + f'  ({len(rows)} epochs)')" \
        "$WORK/$run/log/DFAD-mnist.metrics.jsonl"
    else
      echo "  none: no epoch ended"
    fi
    if [ -s "$csv" ]; then
      cat "$csv" >>"$WORK/${run%%-*}/DFAD-mnist.csv"; found=1
    else
      echo "  no CSV row: the run did not finish"
    fi
  done
  if [ "$found" = 0 ]; then
    echo "no DFAD run finished: nothing for get_results.py"
    STEP_NOTE="no DFAD run finished"
    return 0
  fi
  for kind in fp32 bf16; do
    [ -s "$WORK/$kind/DFAD-mnist.csv" ] || continue
    echo "===== get_results.py --log DFAD-mnist.csv ($kind runs)"
    "$PYTHON" get_results.py --log "$WORK/$kind/DFAD-mnist.csv"
  done
}

{
  echo "gpu_check: device $DEVICE$([ "$TINY" = 1 ] && echo ', tiny'), budget ${BUDGET_S} s, started $(date -u +%FT%TZ)"
  echo "OUT=$OUT WORK=$WORK PYTHON=$PYTHON"
} | tee "$OUT/summary.txt"

step env env.txt always environment
if ! grep -q '^env  *ok' "$OUT/summary.txt"; then
  summary "gpu_check" "stopped: see env.txt"
  exit 1
fi
step cuda_tests cuda_tests.txt "$(est 60 5)" cuda_tests
step upsample_conv upsample_conv.txt "$(est 30 5)" upsample_conv
step bench bench.txt "$(est 150 10)" bench "${BENCH_MODES[@]}"

TEACHER=$WORK/teacher/checkpoint/teacher/mnist-lenet5.pt
if find_mnist; then
  step mnist_teacher mnist_teacher.txt "$(est 90 5)" mnist_teacher
  if [ -f "$TEACHER" ]; then
    step mnist_dfad mnist_dfad.txt "$(est 200 10)" mnist_dfad
  else
    skip mnist_dfad mnist_dfad.txt "no teacher checkpoint (see mnist_teacher.txt)"
  fi
  if [ -d "$WORK/fp32-seed1" ]; then
    step mnist_results mnist_results.txt always mnist_results
  else
    skip mnist_results mnist_results.txt "no DFAD runs"
  fi
else
  why="no MNIST at ${DATA_ROOT:-local_data}/MNIST/raw (the four idx files, or .gz): set DATA_ROOT and carry it"
  for s in mnist_teacher mnist_dfad mnist_results; do skip "$s" "$s.txt" "$why"; done
fi

# torch.compile: minutes of compilation per config, so last, one config at a time.
for config in mnist cifar10 caltech101 camvid; do
  if [ "$TINY" = 1 ]; then
    skip "bench_compile_$config" bench.txt "--tiny leaves torch.compile out (minutes on a CPU)"
    continue
  fi
  need=$(case $config in mnist) echo 60 ;; camvid) echo 150 ;; *) echo 100 ;; esac)
  CONFIGS=$config step "bench_compile_$config" bench.txt "$need" bench compile
done
step bench_cudnn_autotune bench.txt "$(est 100 10)" bench "${AUTOTUNE_MODES[@]}" -- --cudnn_benchmark

summary "gpu_check" "done in $(($(date +%s) - START)) s; files in $OUT"
