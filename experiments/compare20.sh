#!/usr/bin/env bash
# The five rules side by side: 20 epochs of MNIST with the paper's settings
# (tanh, sigmoid-BCE, SGD lr 0.0128 on the mean gradient, batch 128, 50k/10k/10k),
# seed 1, on each architecture given (default 1x800 and 2x800). Prints a
# Markdown table; the runs stay in OUT_DIR.
#   experiments/compare20.sh OUT_DIR [HIDDEN ...]
set -euo pipefail
source "$(dirname "$0")/../bench/lib.sh"
out=${1:?usage: compare20.sh OUT_DIR [HIDDEN ...]}; shift
archs=("$@"); [ $# -gt 0 ] || archs=(800 2x800)
bin=${BIPROP_BIN:-target/release/biprop}
epochs=${EPOCHS:-20}
mkdir -p "$out"
for h in "${archs[@]}"; do
  for r in bp fa dfa bfa bdfa; do
    # --resume: a finished run is kept, an interrupted one continues.
    "$bin" train -q --resume --rule "$r" --hidden "$h" --epochs "$epochs" --seed 1 --out "$out/$r-$h" >/dev/null
  done
done
echo "| hidden | rule | test error, last epoch | test error at best val epoch | train s/epoch (median) |"
echo "|---|---|---|---|---|"
for h in "${archs[@]}"; do
  for r in bp fa dfa bfa bdfa; do
    m="$out/$r-$h/metrics.csv"
    last=$(tail -n 1 "$m" | cut -d, -f7)
    best=$(tail -n +2 "$m" | sort -t, -k5,5g -k1,1n | head -n 1 | cut -d, -f7)
    secs=$(tail -n +2 "$m" | cut -d, -f8 | median)
    awk -v h="$h" -v r="$r" -v l="$last" -v b="$best" -v s="$secs" \
      'BEGIN { printf "| %s | %s | %.2f%% | %.2f%% | %.2f |\n", h, r, 100*l, 100*b, s }' 
  done
done
