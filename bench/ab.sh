#!/usr/bin/env bash
# Before/after of a change: alternates two biprop binaries on the same
# `biprop bench` cell, N times each, and prints each one's median s/epoch and
# the ratio. Alternating makes a slow spell of a shared machine hit both.
#   bench/ab.sh OLD_BINARY NEW_BINARY [N] -- [biprop bench options]
#   e.g. bench/ab.sh /tmp/biprop-old target/release/biprop 8 -- --rule bp --hidden 2x800 --threads 2 --seconds 1.5
# Options must be ones both binaries know (the old one may lack --passes).
set -euo pipefail
old=$1; new=$2; n=${3:-8}
shift 3 || shift $#
[ "${1:-}" = "--" ] && shift
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for i in $(seq "$n"); do
  for side in old new; do
    bin=$old; [ "$side" = new ] && bin=$new
    # The last table row; its 5th column is s/epoch.
    "$bin" bench "$@" 2>/dev/null | tail -n 1 | awk -F'|' '{gsub(/ /, "", $6); print $6}' >>"$tmp/$side"
  done
done
median() { sort -g "$1" | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
mo=$(median "$tmp/old"); mn=$(median "$tmp/new")
echo "old $old: median $mo s/epoch over $n ($(tr '\n' ' ' <"$tmp/old"))"
echo "new $new: median $mn s/epoch over $n ($(tr '\n' ' ' <"$tmp/new"))"
awk -v o="$mo" -v n="$mn" 'BEGIN {printf "new/old = %.3f\n", n / o}'
