#!/usr/bin/env bash
# Two sweep processes on one machine (two `--task` lanes, or two sweeps), one
# run each (BP, HIDDEN default 2x800, 3 epochs of MNIST): each process left to
# use every core (a single-cell sweep gives its run all of them) against each
# pinned to its own cores with taskset (the run then sees only those).
# Alternates the two REPEATS times (default 3) and prints each wall time and
# the medians. Run on an otherwise idle machine with at least 2 cores.
#   bash bench/sweep_lanes.sh [REPEATS]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bin=${BIPROP_BIN:-target/release/biprop}
repeats=${1:-3}
cores=$(nproc)
half=$((cores / 2))
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/s.toml" <<TOML
[base]
epochs = 3
hidden = "${HIDDEN:-2x800}"
alignment = false
[grid]
seed = [1, 2]
TOML
lanes() { # $1: "pinned" or "free"
  rm -rf "$tmp/out"
  local start end
  start=$(date +%s.%N)
  if [ "$1" = pinned ]; then
    taskset -c "0-$((half - 1))" "$bin" sweep -q "$tmp/s.toml" --out "$tmp/out" --task 0 >/dev/null &
    taskset -c "$half-$((cores - 1))" "$bin" sweep -q "$tmp/s.toml" --out "$tmp/out" --task 1 >/dev/null &
  else
    "$bin" sweep -q "$tmp/s.toml" --out "$tmp/out" --task 0 >/dev/null &
    "$bin" sweep -q "$tmp/s.toml" --out "$tmp/out" --task 1 >/dev/null &
  fi
  wait
  end=$(date +%s.%N)
  awk -v s="$start" -v e="$end" 'BEGIN { printf "%.2f\n", e - s }'
}
: >"$tmp/free"; : >"$tmp/pinned"
for _ in $(seq "$repeats"); do
  lanes free | tee -a "$tmp/free" | sed 's/^/free:   /'
  lanes pinned | tee -a "$tmp/pinned" | sed 's/^/pinned: /'
done
echo "two processes, each on every core ($cores threads each): median $(median <"$tmp/free") s"
echo "two processes, each pinned to $half core(s): median $(median <"$tmp/pinned") s"
