#!/usr/bin/env bash
# The GPU check, one command of at most 10 minutes. Each step writes its file under $OUT and is
# stopped by `timeout` at its own deadline; $OUT/summary.txt has one line per step.
#   env      Python, torch, CUDA, the GPU, nvidia-smi                               env.txt
#   tests    pytest -m cuda, at most TESTS_S s (default 150)                         tests.txt
#   mnist    Table 2's MNIST runs: the README teacher (unless TEACHER_CKPT names one), then
#            METHODS (default "DAFL DFAD") x SEEDS (default "1 2 3") at once on the one GPU, all
#            stopped MNIST_S s (default 210) after the step starts        mnist.txt, mnist_teacher.txt
#   bench    benchmarks/benchmark.py, mnist cifar10 camvid, reference fp32 bf16, at most BENCH_S s
#            (default 150)                                                            bench.txt
#   results  get_results.py --table mnist; the logs and plot          results.txt, mnist_logs.tar.gz
# A stopped run keeps its last complete epoch: the same command again (same WORK) continues each
# run with --resume, e.g. STEPS="mnist results" (default: all five).
#
#   OUT=/some/dir DATA_ROOT=local_data bash scripts/gpu_check.sh
#   bash scripts/gpu_check.sh --device cpu --tiny     # tiny sizes on the CPU (tests/test_gpu_check.py)
#
# Environment: OUT (default results/gpu_check), WORK (the runs; default runs/gpu_check), DATA_ROOT
# (MNIST/raw/ under it: the idx files, or .gz; default local_data; --tiny writes a tiny MNIST when
# unset), PYTHON (default .venv/bin/python, else python3), and those above.

set -uo pipefail  # no -e: a failed step is recorded and the next one runs
cd "$(dirname "$0")/.."
REPO=$(pwd)
DEVICE=cuda
TINY=0
while [ $# -gt 0 ]; do
  case $1 in
    --device) DEVICE=${2:-}; shift; shift ;;
    --tiny) TINY=1; shift ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown argument '$1' (see bash scripts/gpu_check.sh --help)" >&2; exit 2 ;;
  esac
done
case $DEVICE in cpu|cuda) ;; *) echo "error: --device must be cpu or cuda, got '$DEVICE'" >&2; exit 2 ;; esac
[ -z "${TEACHER_CKPT:-}" ] || [ -f "$TEACHER_CKPT" ] || { echo "error: TEACHER_CKPT=$TEACHER_CKPT \
does not exist (unset it to train the teacher here)" >&2; exit 2; }
PYTHON=${PYTHON:-$(if [ -x .venv/bin/python ]; then echo "$REPO/.venv/bin/python"; else echo python3; fi)}
mkdir -p "${OUT:=results/gpu_check}" "${WORK:=runs/gpu_check}" || exit 2
OUT=$(realpath "$OUT") WORK=$(realpath "$WORK")
METHODS=${METHODS:-DAFL DFAD}
SEEDS=${SEEDS:-1 2 3}
RUN=(--device "$DEVICE" --no_visdom)
TEACHER_SIZE=()
BENCH=(--configs mnist cifar10 camvid --iters 3 --warmup 2)
if [ "$TINY" = 1 ]; then
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # tiny sizes: threads of several runs only fight
  TEACHER_SIZE=(--epochs 1 --batch_size 8 --test_batch_size 8 --num_workers 0)
  RUN+=(--epochs 1 --epoch_itrs 2 --batch_size 4 --test_batch_size 8 --num_workers 0)
  BENCH=(--configs mnist --modes reference fp32 --batch_size 4 --iters 1 --warmup 0)
  [ -n "${DATA_ROOT:-}" ] || { DATA_ROOT=$WORK/data; PYTHONPATH=. "$PYTHON" -c "import sys
from tests.helpers.mnist_fixtures import write_tiny_mnist; write_tiny_mnist(sys.argv[1], 32, 16)" \
    "$DATA_ROOT" || exit 2; }
fi
source scripts/table2_methods.sh

step() {  # NAME: step_NAME's output into $OUT/NAME.txt, its status into summary.txt
  local t0=$SECONDS rc status
  echo "===== $1 ($(date -u +%FT%TZ))" >"$OUT/$1.txt"
  "step_$1" >>"$OUT/$1.txt" 2>&1
  rc=$?
  case $rc in 0) status=ok ;; 124|137) status="stopped at its deadline" ;;
    *) status="failed (exit $rc)" ;; esac
  printf '%-8s %s, %d s\n' "$1" "$status" $((SECONDS - t0)) | tee -a "$OUT/summary.txt"
  return "$rc"
}

step_env() {
  echo "commit $(git rev-parse HEAD); $(nproc --all) CPUs:$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
  "$PYTHON" -c "import sys, torch, torchvision
from runtime.device import describe_device, why_no_cuda
if sys.argv[1] == 'cuda' and not torch.cuda.is_available():
    sys.exit('error: --device cuda, but ' + why_no_cuda())
print(describe_device(torch.device(sys.argv[1])), '| torchvision', torchvision.__version__,
      '| python', sys.version.split()[0])" "$DEVICE" || return
  nvidia-smi 2>&1 || true
}

step_tests() {
  # shellcheck disable=SC2046  # the test files that have CUDA tests
  timeout --kill-after=15 "${TESTS_S:-150}" "$PYTHON" -m pytest -m cuda -q -p no:cacheprovider \
    $(grep -l "pytest.mark.cuda" tests/test_*.py)
}

resume_if_stopped() {  # --resume where the current folder has a state file (a finished run says so)
  if compgen -G "checkpoint/*/*-state.pt" >/dev/null; then echo --resume; fi
}

step_mnist() {
  local deadline=$((SECONDS + ${MNIST_S:-210})) teacher=${TEACHER_CKPT:-} data runs=() run r rc=0
  left() { local s=$((deadline - SECONDS)); echo $((s > 1 ? s : 1)); }
  local -x OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}  # many processes: their CPU threads only fight
  data=$(realpath -m "${DATA_ROOT:-local_data}")
  for f in "$data"/MNIST/raw/*.gz; do [ ! -e "$f" ] || [ -e "${f%.gz}" ] || gzip -dk "$f"; done
  if [ -z "$teacher" ]; then
    teacher=$WORK/teacher/checkpoint/teacher/mnist-lenet5.pt
    echo "the README teacher (run_mnist.sh's command): its output in mnist_teacher.txt"
    mkdir -p "$WORK/teacher"
    # shellcheck disable=SC2046
    (cd "$WORK/teacher" && timeout --kill-after=15 "$(left)" "$PYTHON" "$REPO/train_teacher.py" \
      --batch_size 256 --epochs 10 --lr 0.01 --dataset mnist --model lenet5 --weight_decay 1e-4 \
      --data_root "$data" --device "$DEVICE" --no_visdom "${TEACHER_SIZE[@]}" \
      $(resume_if_stopped)) >"$OUT/mnist_teacher.txt" 2>&1
    r=$?
    [ "$r" = 0 ] || { echo "the teacher did not finish (exit $r): run again to continue it"; return "$r"; }
  fi
  echo "$METHODS x seeds $SEEDS at once, stopped in $(left) s; teacher $teacher"
  for seed in $SEEDS; do
    for method in $METHODS; do
      run=$WORK/$method-s$seed
      runs+=("$run")
      mkdir -p "$run/checkpoint/teacher"
      ln -sf "$(realpath "$teacher")" "$run/checkpoint/teacher/mnist-lenet5.pt"
      # shellcheck disable=SC2046  # the script and its fixed flags; --resume or nothing
      (cd "$run" && timeout --kill-after=15 "$(left)" "$PYTHON" $(table2_script "$method") \
        --ckpt checkpoint/teacher/mnist-lenet5.pt --data_root "$data" --seed "$seed" "${RUN[@]}" \
        $(resume_if_stopped) >stdout.log 2>&1; echo $? >exit_status) &
    done
  done
  wait
  for run in "${runs[@]}"; do
    r=$(cat "$run/exit_status")
    echo "===== ${run##*/}: exit $r"
    tail -n 2 "$run/stdout.log"
    case $r in 0) ;; 124|137) [ "$rc" != 0 ] || rc=124 ;; *) rc=1 ;; esac
  done
  return "$rc"
}

step_bench() {
  timeout --kill-after=15 "${BENCH_S:-150}" "$PYTHON" benchmarks/benchmark.py \
    --device "$DEVICE" "${BENCH[@]}"
}

step_results() {
  "$PYTHON" get_results.py --table mnist --root "$WORK" || return
  (cd "$WORK" && tar czf "$OUT/mnist_logs.tar.gz" ./*/log table2-mnist.png)
}

STEPS=${STEPS:-env tests mnist bench results}
for name in $STEPS; do
  declare -F "step_$name" >/dev/null || {
    echo "error: unknown step '$name' in STEPS (env tests mnist bench results)" >&2; exit 2; }
done
echo "gpu_check --device $DEVICE$([ "$TINY" = 1 ] && echo ' --tiny'): $(date -u +%FT%TZ), OUT=$OUT WORK=$WORK" |
  tee "$OUT/summary.txt"
for name in $STEPS; do
  step "$name" || [ "$name" != env ] || exit 1  # nothing else can run where env fails
done
