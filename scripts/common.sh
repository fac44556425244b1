# Sourced by the run scripts, from the repository: the interpreter, each script's own flags, and
# torchrun.
#   PYTHON        the interpreter (default: the repo's .venv when present, else python3)
#   TEACHER_ARGS  flags for the teacher script only (split on spaces), e.g. "--lr 0.05"
#   DFAD_ARGS     flags for the DFAD script only, e.g. "--epoch_itrs 10"
#   NPROC=N       launch each script under torchrun with N processes on this machine (one GPU each)
#   FRESH=1       start the row over: its teacher's and its student's checkpoints and state files
#                 are moved aside to <name>.old-<time> first (nothing is deleted); FRESH=dfad
#                 keeps the teacher
# A run script's own arguments go to both scripts. Both scripts' flags are checked before the
# teacher starts, so a flag the other script would refuse fails at once, in one line.
# Running a row again never destroys work (docs/stopping-and-resuming.md): where a state file is,
# the script runs with --resume and either continues or says it finished before (and writes
# nothing); a teacher checkpoint without a state file (trained elsewhere) is reused, a student
# checkpoint without one is moved aside (the DFAD script refuses to replace it).
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
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

check_flags() {  # SCRIPT FLAGS...: exits with one line when SCRIPT would refuse FLAGS
  "$PYTHON" scripts/check_flags.py "$@" || exit 1
}

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

run_row() {  # the row: check both scripts' flags, then the teacher, then DFAD
  # (the caller's arrays `teacher` and `dfad` hold each script and its flags, `teacher_ckpt` and
  # `student_ckpt` the checkpoints they write; the DFAD line reads the teacher's)
  check_flags "${teacher[@]}"
  check_flags "${dfad[@]}"
  case "${FRESH:-}" in
    1) move_aside "$teacher_ckpt" "$student_ckpt" ;;
    dfad) move_aside "$student_ckpt" ;;
  esac
  run_step Teacher "$teacher_ckpt" "${teacher[@]}"
  run_step DFAD "$student_ckpt" "${dfad[@]}"
}
