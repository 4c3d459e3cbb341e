#!/usr/bin/env bash
# Before/after of a change: alternates two biprop binaries on the same
# `biprop bench` cell, N times each (default 8), and prints each one's median
# s/epoch and the ratio. Alternating makes a slow spell of a shared machine
# hit both.
#   bench/ab.sh OLD_BINARY NEW_BINARY [N] -- [biprop bench options naming one cell]
#   e.g. bench/ab.sh /tmp/biprop-old target/release/biprop 8 -- --rule bp --hidden 2x800 --threads 2 --seconds 1.5
# Options must be ones both binaries know (an old one may lack --passes).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
usage="usage: bench/ab.sh OLD_BINARY NEW_BINARY [N] -- [biprop bench options]"
old=${1:?$usage}; new=${2:?$usage}; shift 2
n=8
if [[ ${1:-} =~ ^[0-9]+$ ]]; then n=$1; shift; fi
[ "${1:-}" = "--" ] && shift
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for i in $(seq "$n"); do
  for side in old new; do
    bin=$old; [ "$side" = new ] && bin=$new
    if ! "$bin" bench "$@" >"$tmp/out" 2>"$tmp/err"; then
      echo "ab.sh: $bin bench $* failed:" >&2; cat "$tmp/err" >&2; exit 1
    fi
    # Step rows are the ones of nine columns whose third (threads) starts
    # with a digit; the per-product and per-layer tables and the headers
    # are not.
    awk -F'|' 'NF == 11 && $4 ~ /^ *[0-9]/' "$tmp/out" >"$tmp/rows"
    rows=$(wc -l <"$tmp/rows")
    if [ "$rows" -ne 1 ]; then
      echo "ab.sh: the options must name one cell (one --rule, --hidden, --threads); got $rows rows" >&2
      exit 1
    fi
    # The 5th column of the cell's row is s/epoch.
    awk -F'|' '{gsub(/ /, "", $6); print $6}' "$tmp/rows" >>"$tmp/$side"
  done
done
mo=$(median <"$tmp/old"); mn=$(median <"$tmp/new")
echo "old $old: median $mo s/epoch over $n ($(tr '\n' ' ' <"$tmp/old"))"
echo "new $new: median $mn s/epoch over $n ($(tr '\n' ' ' <"$tmp/new"))"
awk -v o="$mo" -v n="$mn" 'BEGIN {printf "new/old = %.3f\n", n / o}'
