# Sourced by run_table2_mnist.sh and gpu_check.sh (REPO set): the training script of each method
# of Table 2's MNIST column, with its fixed flags.
table2_script() {
  case $1 in
    KD_ORI) echo "$REPO/baselines/kd_mnist.py --inputs original" ;;
    RANDOM) echo "$REPO/baselines/kd_mnist.py --inputs random" ;;
    DAFL) echo "$REPO/baselines/dafl_mnist.py" ;;
    DFAD) echo "$REPO/DFAD_mnist.py" ;;
    *) echo "unknown method $1 (use KD_ORI RANDOM DAFL DFAD)" >&2; return 1 ;;
  esac
}
