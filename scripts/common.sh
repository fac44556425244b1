# Sourced by the run scripts, from the repository: the interpreter, each script's own flags, and
# torchrun.
#   PYTHON        the interpreter (default: the repo's .venv when present, else python3)
#   TEACHER_ARGS  flags for the teacher script only (split on spaces), e.g. "--lr 0.05"
#   DFAD_ARGS     flags for the DFAD script only, e.g. "--epoch_itrs 10"
#   NPROC=N       launch each script under torchrun with N processes on this machine (one GPU each)
# A run script's own arguments go to both scripts. Both scripts' flags are checked before the
# teacher starts, so a flag the other script would refuse fails at once, in one line.
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
read -r -a TEACHER_FLAGS <<< "${TEACHER_ARGS:-}"
read -r -a DFAD_FLAGS <<< "${DFAD_ARGS:-}"
if [ -n "${NPROC:-}" ] && ! [[ $NPROC =~ ^[1-9][0-9]*$ ]]; then
  echo "error: NPROC=$NPROC is not a number of processes: use e.g. NPROC=4 (one per GPU)" >&2
  exit 1
fi

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

run_row() {  # the row: check both scripts' flags, then the teacher, then DFAD
  # (the caller's arrays `teacher` and `dfad` hold each script and its flags)
  check_flags "${teacher[@]}"
  check_flags "${dfad[@]}"
  echo "===== Teacher ====="
  launch "${teacher[@]}"
  echo "===== DFAD ====="
  launch "${dfad[@]}"
}
