#!/usr/bin/env bash
# Which split of the cores is fastest for a sweep: one BP 1x800 run per core
# (3 epochs, MNIST 50k, HIDDEN to change the width) as one job at a time on
# all cores, against all jobs at once on one core each. Prints wall seconds for each; run on an otherwise idle machine.
set -euo pipefail
bin=${BIPROP_BIN:-target/release/biprop}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cores=$(nproc)
cat >"$tmp/s.toml" <<TOML
[base]
epochs = 3
hidden = "${HIDDEN:-1x800}"
alignment = false
[grid]
seed = [$(seq -s, 1 "$cores")]
TOML
for jobs in 1 "$cores" 1 "$cores"; do
  rm -rf "$tmp/out"
  start=$(date +%s.%N)
  "$bin" sweep -q "$tmp/s.toml" --out "$tmp/out" --jobs "$jobs" >/dev/null
  end=$(date +%s.%N)
  awk -v j="$jobs" -v c="$cores" -v s="$start" -v e="$end" \
    'BEGIN { printf "jobs %d x threads %d: %.1f s for %d runs\n", j, c / j, e - s, c }'
done
