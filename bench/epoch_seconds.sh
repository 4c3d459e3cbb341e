#!/usr/bin/env bash
# Seconds per training epoch (evaluation excluded) of one rule on one
# architecture, 50k MNIST samples, batch 128, with 1 and 2 threads,
# alternated so that both see the same machine load. Prints the median of
# every epoch of every repeat.
#   bench/epoch_seconds.sh [RULE] [HIDDEN] [EPOCHS] [REPEATS]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
rule=${1:-bp}; hidden=${2:-2x800}; epochs=${3:-3}; repeats=${4:-2}
bin=${BIPROP_BIN:-target/release/biprop}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for r in $(seq "$repeats"); do
  for t in 1 2; do
    "$bin" train -q --rule "$rule" --hidden "$hidden" --epochs "$epochs" --threads "$t" \
      --out "$tmp/t$t-$r" >/dev/null
    tail -n +2 "$tmp/t$t-$r/metrics.csv" | cut -d, -f8 >>"$tmp/seconds-$t"
  done
done
for t in 1 2; do
  median=$(median <"$tmp/seconds-$t")
  echo "$rule $hidden threads=$t: median $median s/epoch over $(wc -l <"$tmp/seconds-$t") epochs"
done
