#!/usr/bin/env bash
# Seconds per training epoch (evaluation excluded) of every rule on each
# architecture: MNIST 50k, batch 128, paper settings, THREADS threads (default 2).
# Prints the median over EPOCHS epochs (default 3) of one run per cell.
#   bench/rule_seconds.sh [HIDDEN ...]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bin=${BIPROP_BIN:-target/release/biprop}
threads=${THREADS:-2}; epochs=${EPOCHS:-3}
archs=("$@"); [ $# -gt 0 ] || archs=(800 2x800)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
echo "| hidden | rule | train s/epoch ($threads threads) | x BP |"
echo "|---|---|---|---|"
for h in "${archs[@]}"; do
  bp=""
  for r in bp fa dfa bfa bdfa; do
    "$bin" train -q --rule "$r" --hidden "$h" --epochs "$epochs" --threads "$threads" --out "$tmp/$r-$h" >/dev/null
    s=$(tail -n +2 "$tmp/$r-$h/metrics.csv" | cut -d, -f8 | median)
    [ -n "$bp" ] || bp=$s
    awk -v h="$h" -v r="$r" -v s="$s" -v b="$bp" 'BEGIN { printf "| %s | %s | %.2f | %.2f |\n", h, r, s, s/b }'
  done
done
