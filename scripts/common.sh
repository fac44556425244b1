# Sourced by run_mnist.sh and scripts/run_*.sh, from the repository (docs/experiments.md):
#   PYTHON        the interpreter (default: the repo's .venv when present, else python3)
#   TEACHER_ARGS  flags for the teacher script only (split on spaces); DFAD_ARGS: the DFAD one's
#   NPROC=N       launch each script under torchrun with N processes on this machine (one GPU each)
#   FRESH=1       start the row over, moving its checkpoints and state files aside to
#                 <name>.old-<time> first (nothing is deleted); FRESH=dfad keeps the teacher
# A run script's own arguments go to both scripts; both scripts' flags are checked before the
# teacher starts. Running a row again never destroys work (docs/stopping-and-resuming.md).
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=$PWD/.venv/bin/python; else PYTHON=python3; fi
fi
read -r -a TEACHER_FLAGS <<< "${TEACHER_ARGS:-}"
read -r -a DFAD_FLAGS <<< "${DFAD_ARGS:-}"
if [ -n "${NPROC:-}" ] && ! [[ $NPROC =~ ^[1-9][0-9]*$ ]]; then
  echo "error: NPROC=$NPROC is not a number of processes: use e.g. NPROC=4 (one per GPU)" >&2
  exit 1
fi
case "${FRESH:-}" in
  ""|0|1|dfad) ;;
  *) echo "error: FRESH=$FRESH: use FRESH=1 (teacher and DFAD) or FRESH=dfad (DFAD only)" >&2
     exit 1 ;;
esac

launch() {  # SCRIPT FLAGS...: plain python, or torchrun with NPROC processes
  if [ -n "${NPROC:-}" ]; then
    "$PYTHON" -m torch.distributed.run --standalone --nproc_per_node "$NPROC" "$@"
  else
    "$PYTHON" "$@"
  fi
}

move_aside() {  # CKPT...: each checkpoint and its -generator/-state files become <name>.old-<time>
  local when ckpt file target n
  when=$(date +%Y%m%d-%H%M%S)
  for ckpt in "$@"; do
    for file in "$ckpt" "${ckpt%.pt}-generator.pt" "${ckpt%.pt}-state.pt"; do
      [ -e "$file" ] || continue
      target=$file.old-$when
      n=1
      while [ -e "$target" ]; do target=$file.old-$when-$n; n=$((n + 1)); done
      mv "$file" "$target"
      echo "moved aside: $file -> $target"
    done
  done
}

run_step() {  # NAME CKPT SCRIPT FLAGS...: continue, reuse or start one script of the row
  local name=$1 ckpt=$2
  shift 2
  local state=${ckpt%.pt}-state.pt
  if [ -f "$state" ]; then  # the script says whether it continues or had finished
    echo "===== $name: continuing from $state (--resume) ====="
    launch "$@" --resume
  elif [ -f "$ckpt" ] && [ "$name" = Teacher ]; then
    echo "===== $name: reusing $ckpt (no state file beside it: trained elsewhere; FRESH=1" \
      "trains a new one) ====="
  else
    if [ -f "$ckpt" ]; then move_aside "$ckpt"; fi  # a best student with no state beside it
    echo "===== $name ====="
    launch "$@"
  fi
}

run_row() {  # check both scripts' flags, then the teacher, then DFAD: the caller sets the arrays
  # `teacher` and `dfad` (script + flags), and `teacher_ckpt`, `student_ckpt` (what they write)
  "$PYTHON" scripts/check_flags.py "${teacher[@]}" || exit 1
  "$PYTHON" scripts/check_flags.py "${dfad[@]}" || exit 1
  case "${FRESH:-}" in
    1) move_aside "$teacher_ckpt" "$student_ckpt" ;;
    dfad) move_aside "$student_ckpt" ;;
  esac
  run_step Teacher "$teacher_ckpt" "${teacher[@]}"
  run_step DFAD "$student_ckpt" "${dfad[@]}"
}
